"""The four Databricks-format notebooks, run locally in order by engine.testing.notebooks on the flights
example repository's slice (tests/flights_slice.py: raw rows and features of 1 Jan - 17 Feb 2013,
train on 1-8 Jan, validate on 7-14 Feb, score 14-17 Feb); plus the runner's own behaviour on tiny
notebooks (no Spark)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from engine.errors import InvalidArgumentError
from engine.testing.notebooks import run_notebook, split_cells
from tests.flights_slice import EXAMPLE, GROUPS, SCORE, overrides, utc

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SCORED_AT = "2013-02-17T06:00:00"


@pytest.mark.slow
def test_the_four_notebooks_in_order_on_a_slice(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    root = tmp_path / "store"
    common = {"repo": str(EXAMPLE), "overrides": "\n".join(overrides(root))}

    # 01: sources, plan/apply, feature backfill.
    out = io.StringIO()
    ns = run_notebook(NOTEBOOKS / "01_feature_pipelines.py", spark, common, out=out)
    rows = ns["feature_group_rows"]
    assert set(rows) == set(GROUPS) and all(n > 0 for n in rows.values()), rows
    assert rows["planes"] == 3322
    assert all(r["chunks_done"] == 1 for r in ns["results"])
    shown = out.getvalue()
    assert "create feature group weather_hourly v1" in shown  # the plan was printed before it was applied
    assert "feature_group" in shown and "route_delay_stats" in shown  # display() printed the tables

    # 02: training dataset, tuning and registration.
    out = io.StringIO()
    ns = run_notebook(NOTEBOOKS / "02_training.py", spark, {**common, "max_evals": "2"}, out=out)
    dataset = ns["dataset"]
    assert dataset.rows > 1000
    splits = {r["split"]: r["count"] for r in dataset.read().groupBy("split").count().collect()}
    assert set(splits) == {"train", "validation"} and sum(splits.values()) == dataset.rows
    assert {k.split(":")[0] for k in dataset.source_versions} >= set(GROUPS)  # "name:vN" keys
    trained = ns["trained"]
    version = trained.registration.version
    assert ns["model_uri"] == f"models:/flight_delay/{version}"
    tracking = f"sqlite:///{root / '_mlflow' / 'mlflow.db'}"  # the store's own MLflow
    champion = mlflow.MlflowClient(tracking_uri=tracking, registry_uri=tracking).get_model_version_by_alias(
        "flight_delay", "champion")
    assert str(champion.version) == str(version)
    assert 0.5 < ns["metrics"]["val_roc_auc"] <= 1.0
    assert "val_roc_auc" in out.getvalue()

    # 03: batch scoring with the champion.
    out = io.StringIO()
    ns = run_notebook(NOTEBOOKS / "03_batch_inference.py", spark, {**common, "scored_at": SCORED_AT}, out=out)
    result = ns["result"]
    assert result["rows"] > 500 and result["model"] == f"models:/flight_delay/{version}"
    predictions = ns["predictions"]
    assert predictions.count() == result["rows"]
    stats = predictions.agg({"prediction": "min", "sched_dep": "min"}).first()
    assert stats["min(prediction)"] >= 0.0
    assert stats["min(sched_dep)"].replace(tzinfo=utc(SCORE[0]).tzinfo) >= utc(SCORE[0])
    assert "mean_prediction" in out.getvalue()

    # 04: drift against the training rows, realised AUC, report and plots.
    out = io.StringIO()
    ns = run_notebook(NOTEBOOKS / "04_monitoring.py", spark, {**common, "scored_at": SCORED_AT}, out=out)
    monitored = ns["result"]
    report = Path(monitored["report"])
    assert report.is_file() and report.is_relative_to(root)
    assert monitored["plots"] and all(Path(p).suffix == ".png" and Path(p).stat().st_size > 0 for p in monitored["plots"])
    features = set(dataset.view().feature_names)
    assert features <= {r["feature"] for r in ns["latest"].select("feature").collect()}  # every input has a drift row
    [month] = monitored["realised"]
    assert month["group"] == "2013-02" and month["rows"] == result["rows"] and 0.0 < month["roc_auc"] < 1.0
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
