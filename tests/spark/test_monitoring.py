"""Monitoring on real Spark, Delta and MLflow (SQLite in a temp folder): drift statistics checked
against independent numpy/scipy computations on the same seeded data, the monitoring tables, the
report, the plots, and realised metrics against scikit-learn.

One drift computation over a reference and a shifted current batch is shared by the module
(`shifted`), one more compares a batch with itself (`identical`); the rest reuse them or fail
before any Spark job.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from engine.errors import ColumnNotFoundError, ColumnTypeError, ConfigError, InvalidArgumentError
from engine.monitoring import (
    DriftResult,
    MonitoringConfig,
    Thresholds,
    _drift_local,
    compute_drift,
    drift_report,
    load_monitoring_config,
    log_to_mlflow,
    monitoring_config,
    plot_drift,
    read_drift,
    read_realised,
    realised_metrics,
    write_drift,
    write_realised,
)

ROOT = Path(__file__).resolve().parents[2]
UTC = timezone.utc
N_REF, N_CUR = 3000, 2000
SCHEMA = (
    "same DOUBLE, shift DOUBLE, mild DOUBLE, ties DOUBLE, small_int INT, nulls DOUBLE, color STRING, "
    "region STRING, flag BOOLEAN, code STRING, hour INT, score DOUBLE"
)
FEATURES = ["same", "shift", "mild", "ties", "small_int", "nulls", "color", "region", "flag", "code", "hour"]
CONFIG = MonitoringConfig(
    categorical=["hour"],
    overrides={"mild": {"psi": 5.0, "ks": None}},  # shifted, but allowed to be
    max_categories=10,
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _frame(seed: int, n: int, *, current: bool) -> pd.DataFrame:
    """Seeded columns; the current batch shifts `shift`, `mild`, `ties`, `small_int`, `nulls`'s
    NULL share, `region` and `score`, and keeps the others' distributions."""
    rng = np.random.default_rng(seed)
    zeros = rng.random(n) < (0.3 if current else 0.6)
    ties = np.where(zeros, 0.0, rng.exponential(2.0 if current else 1.0, n))
    small_int = rng.choice(10, n, p=[0.05] * 5 + [0.15] * 5) if current else rng.integers(0, 10, n)
    nulls = rng.normal(0, 1, n)
    region = (
        rng.choice(["N", "E", "S", "W", "X"], n, p=[0.1, 0.2, 0.3, 0.3, 0.1])
        if current else rng.choice(["N", "E", "S", "W"], n, p=[0.4, 0.3, 0.2, 0.1])
    )
    return pd.DataFrame({
        "same": rng.normal(0, 1, n),
        "shift": rng.normal(1.0 if current else 0.0, 1, n),
        "mild": rng.normal(0.5 if current else 0.0, 1, n),
        "ties": ties,
        "small_int": small_int.astype("int32"),
        "nulls": pd.array(np.where(rng.random(n) < (0.25 if current else 0.10), np.nan, nulls), dtype="Float64"),
        "color": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        "region": region,
        "flag": rng.random(n) < 0.3,
        "code": np.char.add("k", rng.integers(0, 40, n).astype(str)),
        "hour": rng.integers(0, 24, n).astype("int32"),
        "score": rng.beta(3, 4, n) if current else rng.beta(2, 5, n),
    })


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {"reference": _frame(1, N_REF, current=False), "current": _frame(2, N_CUR, current=True)}


@pytest.fixture(scope="module")
def spark_frames(spark: Any, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    return {side: spark.createDataFrame(frame, SCHEMA) for side, frame in frames.items()}


def _drift_with_jobs(spark: Any, spark_frames: dict[str, Any], group: str) -> dict[str, Any]:
    """The shared drift computation, with the Spark jobs it ran (a job group of its own)."""
    sc = spark.sparkContext
    sc.setJobGroup(group, "compute_drift under test")
    try:
        result = compute_drift(
            spark_frames["reference"], spark_frames["current"], features=FEATURES, prediction="score", config=CONFIG
        )
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    return {"result": result, "jobs": sorted(sc.statusTracker().getJobIdsForGroup(group))}


@pytest.fixture(scope="module")
def shifted(spark: Any, spark_frames: dict[str, Any]) -> dict[str, Any]:
    """The shared drift computation: small sides, computed on the driver from one collect."""
    return _drift_with_jobs(spark, spark_frames, "test-monitoring-drift")


@pytest.fixture(scope="module")
def shifted_on_spark(spark: Any, spark_frames: dict[str, Any]) -> dict[str, Any]:
    """The same computation by the two Spark queries (the path of inputs above LOCAL_CELLS)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_drift_local, "LOCAL_CELLS", 0)
        return _drift_with_jobs(spark, spark_frames, "test-monitoring-drift-on-spark")


@pytest.fixture(scope="module")
def identical(spark_frames: dict[str, Any]) -> DriftResult:
    reference = spark_frames["reference"]
    return compute_drift(reference, reference, features=["shift", "ties", "region", "flag"], prediction="score")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Embedded MLflow (SQLite) in a temp warehouse, whatever the environment says."""
    import mlflow

    from engine.tracking import configure_tracking

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        yield configure_tracking(tmp_path_factory.mktemp("warehouse"))
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# independent references (numpy / scipy on the same data)


def _np_psi(ref: np.ndarray, cur: np.ndarray, eps: float = 1e-4) -> float:
    p = np.maximum(ref / ref.sum(), eps)
    q = np.maximum(cur / cur.sum(), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def _np_binned(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts in the right-closed bins (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


def _non_null(series: pd.Series) -> np.ndarray:
    return series.dropna().to_numpy(dtype=float)


# ---------------------------------------------------------------------------------------------
# drift statistics


def test_identical_batches_do_not_drift(identical: DriftResult) -> None:
    assert not identical.drifted and identical.flagged == []
    for item in identical.features:
        assert item.psi == pytest.approx(0.0, abs=1e-12), item.feature
        assert item.null_share_delta == 0.0
        if item.kind == "numeric":
            assert item.ks == 0.0 and item.ks_pvalue == pytest.approx(1.0)
        else:
            assert item.js == pytest.approx(0.0, abs=1e-7)
    assert [(f.feature, f.role) for f in identical.features][-1] == ("score", "prediction")


def test_kinds_counts_and_flags(shifted: dict[str, Any]) -> None:
    result: DriftResult = shifted["result"]
    kinds = {f.feature: f.kind for f in result.features}
    assert kinds == {
        "same": "numeric", "shift": "numeric", "mild": "numeric", "ties": "numeric", "small_int": "numeric",
        "nulls": "numeric", "color": "categorical", "region": "categorical", "flag": "categorical",
        "code": "categorical", "hour": "categorical", "score": "numeric",
    }
    assert (result.reference_rows, result.current_rows) == (N_REF, N_CUR)
    flags = {f.feature: f.flagged_by for f in result.features}
    assert flags["shift"] == ("psi", "ks")
    assert result["shift"].psi > 0.5  # a one-sigma shift
    assert flags["ties"][:2] == ("psi", "ks")
    assert flags["region"] == ("psi", "js")
    assert flags["nulls"] == ("null_share_delta",)
    assert "psi" in flags["score"] and result["score"].role == "prediction"
    for stable in ("same", "color", "flag", "code", "hour"):
        assert flags[stable] == (), (stable, result[stable])
    # `mild` is shifted (PSI ~0.25 > 0.2, KS ~0.2 > 0.1) but its overrides allow it
    assert result["mild"].psi > 0.2 and result["mild"].ks > 0.1
    assert flags["mild"] == () and result["mild"].thresholds == Thresholds(psi=5.0, ks=None)
    assert set(result.flagged) == {"shift", "ties", "small_int", "nulls", "region", "score"}


def test_two_spark_jobs_per_computation(shifted: dict[str, Any], shifted_on_spark: dict[str, Any]) -> None:
    # Two actions, whatever the number of columns: (1) quantiles and counts per side, (2) bucket
    # counts of every column. Adaptive query execution runs each shuffle's map stage as a job of
    # its own: 1 shuffle in (1); 2 in (2) (the groupBy, and the window ranking categories).
    jobs = shifted_on_spark["jobs"]
    assert 2 <= len(jobs) <= 5 < len(FEATURES), jobs
    # small sides: one collect (a limit: its local limit, then the global one)
    assert 1 <= len(shifted["jobs"]) <= 2, shifted["jobs"]


def test_small_sides_on_the_driver_equal_the_spark_queries(shifted: dict[str, Any], shifted_on_spark: dict[str, Any]) -> None:
    # percentile_approx (accuracy 10,000) is exact below 10,000 rows: both paths agree to the bit
    local, on_spark = shifted["result"], shifted_on_spark["result"]
    assert [f.feature for f in local.features] == [f.feature for f in on_spark.features]
    for a, b in zip(local.features, on_spark.features, strict=True):
        assert a == b, (a.feature, a, b)
    assert local.flagged == on_spark.flagged


def test_only_inputs_within_the_cell_limit_are_collected(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    both = spark.range(0, 50).selectExpr("CAST(id % 2 AS INT) AS side", "CAST(id AS DOUBLE) AS c0")
    monkeypatch.setattr(_drift_local, "LOCAL_CELLS", 49)  # 49 rows of one column
    assert _drift_local.collect(both, 1) is None
    monkeypatch.setattr(_drift_local, "LOCAL_CELLS", 100)  # 50 rows of two columns
    assert _drift_local.collect(both, 2).num_rows == 50
    # ranks as percentile_approx computes them: ceil(p * n), at least 1
    ordered = np.arange(1.0, 11.0)
    assert _drift_local._quantiles(ordered, [0.0, 0.1, 0.25, 0.5, 0.99, 1.0]) == [1.0, 1.0, 3.0, 5.0, 10.0, 10.0]
    assert _drift_local._quantiles(np.array([]), [0.5]) is None


def test_numeric_psi_matches_numpy_on_the_same_bins(shifted: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    result: DriftResult = shifted["result"]
    for name in ("same", "shift", "mild", "ties", "small_int", "nulls", "score"):
        item = result[name]
        edges = [b.upper for b in item.bins[:-1]]
        assert item.bins[0].lower is None and item.bins[-1].upper is None  # open-ended
        ref = _np_binned(_non_null(frames["reference"][name]), edges)
        cur = _np_binned(_non_null(frames["current"][name]), edges)
        assert [b.reference for b in item.bins] == ref.tolist(), name
        assert [b.current for b in item.bins] == cur.tolist(), name
        assert item.psi == pytest.approx(_np_psi(ref, cur), rel=1e-12, abs=1e-15), name


def test_psi_bins_are_reference_deciles(shifted: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    item = shifted["result"]["shift"]
    values = frames["reference"]["shift"].to_numpy()
    expected = np.quantile(values, np.arange(1, 10) / 10, method="inverted_cdf")
    # percentile_approx with accuracy 10,000 has a rank error of at most n/10,000 < 1 row here
    assert [b.upper for b in item.bins[:-1]] == pytest.approx(expected.tolist(), abs=0)
    assert all(abs(b.reference - N_REF / 10) <= 1 for b in item.bins)


def test_psi_bins_with_ties_and_values_outside_the_reference_range(
    shifted: dict[str, Any], frames: dict[str, pd.DataFrame]
) -> None:
    item = shifted["result"]["ties"]
    deciles = np.quantile(frames["reference"]["ties"], np.arange(1, 10) / 10, method="inverted_cdf")
    # ~60 % zeros: the first deciles are all 0 and merge into one edge
    assert len(item.bins) == len(set(deciles.tolist())) + 1 <= 6
    assert item.bins[0].upper == 0.0 and item.bins[0].reference == int((frames["reference"]["ties"] == 0).sum())
    beyond = int((frames["current"]["ties"] > frames["reference"]["ties"].max()).sum())
    assert beyond > 0 and item.bins[-1].current >= beyond  # landed in the open last bin


def test_ks_against_scipy(shifted: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    from scipy.stats import ks_2samp

    result: DriftResult = shifted["result"]
    for name in ("same", "shift", "mild", "ties", "nulls", "score"):
        item = result[name]
        exact = ks_2samp(_non_null(frames["reference"][name]), _non_null(frames["current"][name])).statistic
        # evaluated at grid points only: a lower bound, and within the bound it reports; with
        # 100 quantiles per side no open interval holds much more than 1 % of either side
        assert item.ks <= exact + 1e-12, name
        assert exact <= item.ks + item.ks_error + 1e-12, name
        assert item.ks_error < 0.025, name
    # fewer distinct values than grid points: every value is an edge, the statistic is exact
    item = result["small_int"]
    reference = ks_2samp(frames["reference"]["small_int"], frames["current"]["small_int"], method="asymp")
    assert item.ks == pytest.approx(reference.statistic, abs=1e-12) and item.ks_error == pytest.approx(0.0, abs=1e-12)
    assert item.ks_pvalue == pytest.approx(reference.pvalue, rel=1e-9)


def test_categorical_js_and_psi_against_scipy(shifted: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    from scipy.spatial.distance import jensenshannon

    result: DriftResult = shifted["result"]
    for name in ("color", "region", "flag"):  # (hour and code have more than max_categories)
        item = result[name]
        as_text = {"True": "true", "False": "false"}  # Spark's text for booleans
        ref_counts = frames["reference"][name].astype(str).replace(as_text).value_counts()
        cur_counts = frames["current"][name].astype(str).replace(as_text).value_counts()
        categories = sorted(set(ref_counts.index) | set(cur_counts.index))
        assert sorted(b.label for b in item.bins) == categories, name
        p = np.array([ref_counts.get(c, 0) for c in categories], dtype=float)
        q = np.array([cur_counts.get(c, 0) for c in categories], dtype=float)
        assert item.js == pytest.approx(float(jensenshannon(p / p.sum(), q / q.sum(), base=2)), abs=1e-9), name
        assert item.psi == pytest.approx(_np_psi(p, q), rel=1e-12), name
    region = result["region"]
    assert region.bins[-1].label == "X" and region.bins[-1].reference == 0  # new category: epsilon share
    assert 0.0 <= region.js <= 1.0


def test_rare_categories_are_pooled(shifted: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    item = shifted["result"]["code"]  # 40 codes, max_categories=10
    assert len(item.bins) == 11 and item.bins[-1].label == "__other__"
    assert sum(b.reference for b in item.bins) == N_REF and sum(b.current for b in item.bins) == N_CUR
    top = frames["reference"]["code"].value_counts()
    assert item.bins[0].label == top.index[0] and item.bins[0].reference == int(top.iloc[0])


def test_null_shares(shifted: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    item = shifted["result"]["nulls"]
    ref_share = float(frames["reference"]["nulls"].isna().mean())
    cur_share = float(frames["current"]["nulls"].isna().mean())
    assert (item.reference_null_share, item.current_null_share) == (pytest.approx(ref_share), pytest.approx(cur_share))
    assert item.null_share_delta == pytest.approx(cur_share - ref_share) and item.null_share_delta > 0.05
    assert sum(b.reference for b in item.bins) == round(N_REF * (1 - ref_share))


def test_nan_counts_as_null_and_all_null_columns(spark_frames: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    reference = spark_frames["reference"].withColumn("gone", F.col("shift"))
    current = (
        spark_frames["current"]
        .withColumn("same", F.when(F.col("hour") < 12, F.col("same")).otherwise(F.lit(float("nan"))))
        .withColumn("gone", F.lit(None).cast("double"))
    )
    result = compute_drift(reference, current, features=["same", "gone"])
    assert result["same"].current_null_share == pytest.approx(float((frames["current"]["hour"] >= 12).mean()))
    assert result["same"].flagged_by == ("null_share_delta",) and result["same"].psi < 0.05
    gone = result["gone"]  # nothing to compare but the NULL share
    assert (gone.psi, gone.ks, gone.bins, gone.current_null_share) == (None, None, (), 1.0)
    assert gone.flagged_by == ("null_share_delta",)


# ---------------------------------------------------------------------------------------------
# bad input: all before any Spark job, except emptiness (known only after the first job)


def test_missing_columns_name_the_side(spark_frames: dict[str, Any]) -> None:
    reference, current = spark_frames["reference"], spark_frames["current"]
    with pytest.raises(ColumnNotFoundError) as err:
        compute_drift(reference.drop("ties"), current, features=["same", "ties"])
    assert err.value.params["column"] == "ties" and err.value.params["side"] == "reference"
    with pytest.raises(ColumnNotFoundError) as err:
        compute_drift(reference, current.drop("score"), features=["same"], prediction="score")
    assert (err.value.params["argument"], err.value.params["side"]) == ("prediction", "current")


def test_bad_arguments_and_types(spark_frames: dict[str, Any]) -> None:
    reference, current = spark_frames["reference"], spark_frames["current"]
    for features in ([], "same", ["same", "same"], [None]):
        with pytest.raises(InvalidArgumentError) as err:
            compute_drift(reference, current, features=features)  # type: ignore[arg-type]
        assert err.value.params["argument"] == "features"
    with pytest.raises(InvalidArgumentError):
        compute_drift(reference, current, features=["score"], prediction="score")
    with pytest.raises(InvalidArgumentError):
        compute_drift(object(), current, features=["same"])  # type: ignore[arg-type]
    with pytest.raises(ColumnTypeError) as err:  # a numeric column in one batch, text in the other
        compute_drift(reference, current.withColumn("same", F.col("same").cast("string")), features=["same"])
    assert err.value.params["column"] == "same"
    with pytest.raises(ColumnTypeError):  # timestamps are not binned
        ts = F.timestamp_seconds(F.lit(0))
        compute_drift(reference.withColumn("t", ts), current.withColumn("t", ts), features=["t"])


@pytest.mark.parametrize("side", ["reference", "current"])
def test_empty_side_is_an_error(spark_frames: dict[str, Any], side: str) -> None:
    frames = dict(spark_frames)
    frames[side] = frames[side].limit(0)
    with pytest.raises(InvalidArgumentError) as err:
        compute_drift(frames["reference"], frames["current"], features=["same", "color"])
    assert err.value.params["argument"] == side and "0 rows" in err.value.params["found"]


def test_config_from_yaml_and_errors(tmp_path: Path) -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "examples" / "flights" / "models.yaml").read_text())
    demo = tmp_path / "demo.yaml"  # the flights example's thresholds, as a standalone monitoring config
    demo.write_text(yaml.safe_dump(spec["monitoring"]["nov_dec_drift"]["thresholds"]))
    config = load_monitoring_config(demo)
    assert config.bins == 10 and config.thresholds == Thresholds()
    assert config.thresholds_for("precip").psi == 0.3 and config.thresholds_for("temp").psi == 0.2
    assert "hour" in config.categorical
    for data, key in (
        ({"bins": 1}, "bins"),
        ({"thresholds": {"psx": 0.1}}, "thresholds.psx"),
        ({"overrides": {"temp": {"js": 1.5}}}, "overrides.temp.js"),
        ({"overrides": {"temp": {"kss": 0.1}}}, "overrides.temp.kss"),
        ({"categorical": "hour"}, "categorical"),
        ({"bin": 10}, "bin"),
    ):
        with pytest.raises(ConfigError) as err:
            monitoring_config(data, source="x.yaml")
        assert (err.value.params["key"], err.value.params["source"]) == (key, "x.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("thresholds: {psi: -1}\n")
    with pytest.raises(ConfigError) as err:
        load_monitoring_config(bad)
    assert err.value.params["source"] == str(bad)


# ---------------------------------------------------------------------------------------------
# report, Delta table, plots, MLflow


def test_report_lists_flagged_first_by_psi(shifted: dict[str, Any]) -> None:
    result: DriftResult = shifted["result"]
    text = drift_report(result)
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| column")]
    names = [row.split("|")[1].strip().removesuffix(" (prediction)") for row in rows]
    assert len(names) == len(result.features)
    flagged = len(result.flagged)
    assert set(names[:flagged]) == set(result.flagged) and all("**yes**" in row for row in rows[:flagged])
    psis = [result[name].psi for name in names[:flagged]]
    assert psis == sorted(psis, reverse=True)
    assert f"| {result['shift'].psi:.3f} |" in rows[names.index("shift")]
    assert f"{flagged} of {len(result.features)} columns drifted" in text
    assert "mild: PSI > 5" in text  # the per-column thresholds are stated


def test_write_and_read_drift_one_commit_per_call(spark: Any, shifted: dict[str, Any], tmp_path: Path) -> None:
    result: DriftResult = shifted["result"]
    path = str(tmp_path / "drift")
    at = datetime(2013, 11, 30, tzinfo=UTC)
    first = write_drift(spark, path, result, batch_id="2013-11", model_name="delay", model_version=3, scored_at=at)
    with pytest.raises(InvalidArgumentError):  # naive time: rejected before any write
        write_drift(spark, path, result, batch_id="x", model_name="delay", model_version=3, scored_at=datetime(2013, 12, 31))
    second = write_drift(spark, path, result, batch_id="2013-12", model_name="delay", model_version="3", scored_at=at)
    assert (first, second) == (1, 2)  # version 0 is the empty table; then one commit per call
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert all((h["engineInfo"] or "").startswith("feature-factory/") for h in history)  # no Spark write on a local store
    rows = {r["feature"]: r for r in read_drift(spark, path, batch_id="2013-12").collect()}
    assert set(rows) == {f.feature for f in result.features}
    shift = rows["shift"]
    assert shift["psi"] == result["shift"].psi and shift["drifted"] and list(shift["flagged_by"]) == ["psi", "ks"]
    assert (shift["model_version"], shift["psi_threshold"], shift["role"]) == ("3", 0.2, "feature")
    assert rows["mild"]["ks_threshold"] is None and rows["region"]["ks"] is None
    assert [h["reference"] for h in shift["histogram"]] == [b.reference for b in result["shift"].bins]


@pytest.fixture(scope="module")
def plots(shifted: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return plot_drift(shifted["result"], tmp_path_factory.mktemp("plots"))


def test_plots_are_png_files(shifted: dict[str, Any], plots: list[Path], identical: DriftResult, tmp_path: Path) -> None:
    result: DriftResult = shifted["result"]
    assert len(plots) == len(result.flagged) + 1 and plots[-1].name == "drift_summary.png"
    assert {p.stem.removeprefix("drift_") for p in plots[:-1]} == set(result.flagged)
    for path in plots:
        data = path.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, (path, len(data))
    assert [p.name for p in plot_drift(identical, tmp_path)] == ["drift_summary.png"]  # nothing flagged
    every = plot_drift(identical, tmp_path / "all", only_flagged=False)
    assert [p.name for p in every] == [f"drift_{f.feature}.png" for f in identical.features] + ["drift_summary.png"]


def test_log_to_mlflow(tracking: str, shifted: dict[str, Any], plots: list[Path]) -> None:
    from mlflow import MlflowClient

    result: DriftResult = shifted["result"]
    paths = plots
    run_id = log_to_mlflow(result, paths, run_name="drift 2013-11", experiment="monitoring-test")
    client = MlflowClient()
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["psi.shift"] == pytest.approx(result["shift"].psi)
    assert run.data.metrics["drift.flagged_columns"] == len(result.flagged)
    logged = {a.path for a in client.list_artifacts(run_id, "drift")}
    assert logged == {f"drift/{p.name}" for p in paths} | {"drift/report.md"}
    with pytest.raises(InvalidArgumentError):
        log_to_mlflow(result, str(paths[0]), run_name="x", experiment="monitoring-test")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# realised metrics


@pytest.fixture(scope="module")
def scored(spark: Any) -> dict[str, Any]:
    """Predictions for two months (scores rounded to 2 decimals: many ties), labels for most of
    them, and one month whose labels are all negative."""
    rng = np.random.default_rng(7)
    n = 1200
    month = np.where(np.arange(n) < 700, "2013-11", "2013-12")
    truth = rng.random(n) < 0.25
    score = np.clip(np.round(np.where(truth, rng.beta(4, 3, n), rng.beta(2, 4, n)), 2), 0, 1)
    predictions = pd.DataFrame({"flight_id": np.arange(n), "month": month, "probability": score})
    labelled = rng.random(n) < 0.9
    labels = pd.DataFrame({"flight_id": np.arange(n)[labelled], "delayed": truth[labelled].astype("int32")})
    extra = pd.DataFrame({"flight_id": [n, n + 1], "month": ["2014-01"] * 2, "probability": [0.3, 0.6]})
    extra_labels = pd.DataFrame({"flight_id": [n, n + 1], "delayed": np.array([0, 0], dtype="int32")})
    return {
        "pandas": predictions.merge(labels, on="flight_id"),
        "predictions": spark.createDataFrame(pd.concat([predictions, extra]), "flight_id BIGINT, month STRING, probability DOUBLE"),
        "labels": spark.createDataFrame(pd.concat([labels, extra_labels]), "flight_id BIGINT, delayed INT"),
    }


def test_realised_metrics_match_sklearn(spark: Any, scored: dict[str, Any], tmp_path: Path) -> None:
    from sklearn.metrics import log_loss, roc_auc_score

    metrics = realised_metrics(
        scored["predictions"], scored["labels"], on=["flight_id"], prediction="probability", label="delayed", by="month"
    )
    assert [m["group"] for m in metrics] == ["2013-11", "2013-12", "2014-01"]
    for item in metrics[:2]:
        rows = scored["pandas"][scored["pandas"]["month"] == item["group"]]
        assert item["rows"] == len(rows) and item["positives"] == int(rows["delayed"].sum())
        assert item["roc_auc"] == pytest.approx(roc_auc_score(rows["delayed"], rows["probability"]), abs=1e-12)
        assert item["log_loss"] == pytest.approx(log_loss(rows["delayed"], rows["probability"], labels=[0, 1]), rel=1e-9)
        assert item["positive_rate"] == pytest.approx(rows["delayed"].mean())
        assert item["mean_prediction"] == pytest.approx(rows["probability"].mean())
    single_class = metrics[2]
    assert single_class["rows"] == 2 and single_class["roc_auc"] is None
    assert single_class["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.4)) / 2)

    path = str(tmp_path / "realised")
    at = datetime(2014, 2, 1, tzinfo=UTC)
    version = write_realised(spark, path, metrics, model_name="delay", model_version=3, evaluated_at=at)
    stored = sorted(read_realised(spark, path).collect(), key=lambda r: r["group_value"])
    assert version == 1 and [r["group_value"] for r in stored] == ["2013-11", "2013-12", "2014-01"]
    assert stored[0]["roc_auc"] == metrics[0]["roc_auc"] and stored[2]["roc_auc"] is None
    assert stored[0]["group_by"] == "month" and stored[0]["model_version"] == "3"
    with pytest.raises(InvalidArgumentError):
        write_realised(spark, path, [], model_name="delay", model_version=3, evaluated_at=at)


def test_realised_metrics_bad_input(scored: dict[str, Any]) -> None:
    predictions, labels = scored["predictions"], scored["labels"]
    with pytest.raises(ColumnNotFoundError) as err:
        realised_metrics(predictions, labels.withColumnRenamed("flight_id", "id"), on=["flight_id"], prediction="probability", label="delayed")
    assert err.value.params["side"] == "labels"
    with pytest.raises(ColumnNotFoundError):
        realised_metrics(predictions, labels, on=["flight_id"], prediction="probability", label="delayed", by="week")
    with pytest.raises(ColumnTypeError):
        realised_metrics(predictions, labels, on=["flight_id"], prediction="month", label="delayed")
    with pytest.raises(InvalidArgumentError) as err:  # a label that is not 0/1, found by the job
        realised_metrics(predictions, labels.withColumn("delayed", F.col("delayed") * 2), on=["flight_id"],
                         prediction="probability", label="delayed")
    assert err.value.params["argument"] == "label"
