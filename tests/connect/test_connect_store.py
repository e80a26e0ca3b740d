"""The feature store end to end on Spark Connect: a feature group's create / insert / time
travel, a pipeline backfill, a view's training dataset, a 2-trial tuning run (driver-side
trials: no SparkTrials on Connect) and score_batch -- one small world shared by the tests."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyspark.sql import functions as F

from engine.pipelines import FeaturePipeline, Input
from engine.pipelines.inference import score_batch
from engine.pipelines.training import training_config
from engine.pipelines.view_training import train_on_dataset
from engine.store import delta
from engine.store.feature_store import FeatureStore
from engine.store.feature_view import FeatureLookup
from engine.store.training_dataset import TimeSplit
from engine.temporal.ranges import TimeRange

T0 = datetime(2013, 1, 1, tzinfo=UTC)
DEVICES, HOURS = 6, 80


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def levels(spark, inputs, time_range):
    """The pipeline's transform: the raw readings of the chunk, as the group's rows."""
    return inputs["raw"].select("device", "at", (F.col("reading") * 10).alias("level"))


@pytest.fixture(scope="module")
def world(connect_spark, tmp_path_factory, caplog_module) -> dict[str, Any]:
    import mlflow

    from engine.tracking import configure_tracking

    spark = connect_spark
    tmp = tmp_path_factory.mktemp("connect-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.setenv("SPARK_CONNECT_MODE_ENABLED", "1")  # module-scoped set-up runs outside the per-test switch
        configure_tracking(tmp / "warehouse")
        fs = FeatureStore(spark, str(tmp / "store"))
        raw = str(tmp / "raw")
        readings = [(d, h(i), float((i + d) % 2) + (d % 3) / 10) for d in range(DEVICES) for i in range(HOURS)]
        delta.create_table(spark, raw, spark.createDataFrame([], "device INT, at TIMESTAMP, reading DOUBLE").schema)
        raw_version = delta.append(spark, raw, spark.createDataFrame(readings, "device INT, at TIMESTAMP, reading DOUBLE"))
        sensor = fs.create_feature_group("sensor", primary_key="device", event_time="at",
                                         schema="device INT, at TIMESTAMP, level DOUBLE", statistics=False)
        pipeline = FeaturePipeline("sensor_levels", levels, inputs={"raw": Input(raw, time_column="at")}, output=sensor,
                                   lookback=timedelta(0), step=timedelta(hours=40))
        chunks = pipeline.run(h(0), h(HOURS))
        view = fs.create_feature_view("alarm", spine_time="ts", labels=["alarm"], lookups=[
            FeatureLookup("sensor", prefix="s_", keys={"device": "device"}, lookback=timedelta(hours=2))])
        spine = spark.createDataFrame(
            [(d * 1000 + i, d, h(i + 0.5), int((i + d) % 2 == 1)) for d in range(DEVICES) for i in range(HOURS)],
            "event_id long, device int, ts timestamp, alarm int")
        split = TimeSplit(TimeRange(h(0), h(50)), TimeRange(h(53), h(HOURS)), min_gap=timedelta(hours=2))
        dataset = fs.create_training_dataset(view, spine=spine, split=split)
        config = training_config({"family": "sklearn_logreg", "max_evals": 2, "parallelism": 2,
                                  "search_space": {"C": {"dist": "loguniform", "low": 0.1, "high": 10.0}}})
        with caplog_module.at_level(logging.INFO, logger="engine.pipelines._sklearn_run"):
            trained = train_on_dataset(fs, dataset, config=config)
        yield {"fs": fs, "sensor": sensor, "raw": raw, "raw_version": raw_version, "chunks": chunks, "view": view,
               "spine": spine, "dataset": dataset, "trained": trained, "tuning_log": caplog_module.text,
               "readings": readings}
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def caplog_module() -> Any:
    """A module-scoped log capture (pytest's caplog is per test)."""
    handler = _Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)

    def at_level(self, level: int, logger: str) -> Any:
        import contextlib

        @contextlib.contextmanager
        def scope() -> Any:
            target = logging.getLogger(logger)
            before = target.level
            target.setLevel(level)
            try:
                yield
            finally:
                target.setLevel(before)

        return scope()


def test_backfill_wrote_every_chunk_once(world, connect_spark):
    assert [c.status for c in world["chunks"]] == ["done", "done"]
    expected = sorted((d, at.replace(tzinfo=None), r * 10) for d, at, r in world["readings"])
    assert sorted(tuple(r) for r in world["sensor"].read().collect()) == expected


def test_feature_group_insert_and_time_travel(world, connect_spark):
    spark, sensor = connect_spark, world["sensor"]
    before = sensor.delta_version()
    sensor.insert(spark.createDataFrame([(99, h(1), 1.5), (98, h(2), 2.5)], sensor.schema))
    assert sensor.delta_version() == before + 1
    now = {tuple(r) for r in sensor.read().where(F.col("device") >= 98).collect()}
    assert now == {(99, h(1).replace(tzinfo=None), 1.5), (98, h(2).replace(tzinfo=None), 2.5)}
    assert sensor.read(as_of_version=before).where(F.col("device") >= 98).count() == 0
    assert sensor.read(as_of_version=before).count() == DEVICES * HOURS


def test_training_dataset_of_the_view(world, connect_spark):
    dataset = world["dataset"]
    assert set(dataset.source_versions) == {"sensor:v1"}
    frame = dataset.read()
    assert {"event_id", "device", "ts", "alarm", "s_level"} <= set(frame.columns)
    assert frame.count() == frame.select("event_id").distinct().count() > 0  # spine rows once each
    # the feature is the level of the reading half an hour earlier (as-of, never the future)
    row = frame.where(F.col("event_id") == 1005).first()
    assert row["s_level"] == pytest.approx(((5 + 1) % 2 + 0.1) * 10)


def test_tuning_ran_two_driver_side_trials(world):
    trained = world["trained"]
    assert len(trained.training.trials) == 2 and all(t.status == "ok" for t in trained.training.trials)
    assert trained.training.metrics["roc_auc"] > 0.9
    assert "one at a time on the driver (hyperopt.Trials; Spark Connect session" in world["tuning_log"]
    assert "SparkTrials)" not in world["tuning_log"].replace("no SparkTrials", "")


def test_score_batch_on_connect(world, connect_spark, tmp_path):
    spark, fs = connect_spark, world["fs"]
    spine = world["spine"].where(F.col("ts") >= h(60).replace(tzinfo=None)).select("event_id", "device", "ts")
    out = str(tmp_path / "predictions")
    written = score_batch(spark, "models:/alarm@champion", spine, store=fs, output=out, batch_id="b1",
                          scored_at=datetime(2013, 3, 1, tzinfo=UTC), passthrough=["event_id"])
    assert written.score_result.rows == spine.count() == delta.read(spark, out).count()
    scored = {r["event_id"]: r["probability"] for r in delta.read(spark, out).collect()}
    labels = {r["event_id"]: r["alarm"] for r in world["spine"].collect()}
    right = sum((p > 0.5) == bool(labels[e]) for e, p in scored.items())
    assert right / len(scored) > 0.9
