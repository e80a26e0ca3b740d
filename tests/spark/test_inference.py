"""Training on a feature view's dataset, registry lineage, and batch scoring on real
Spark/Delta/MLflow/hyperopt: models:/name@alias and models:/name/version, idempotent batches,
the same features in training and scoring, and bad input that writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from engine.errors import ColumnNotFoundError, InvalidArgumentError, NotFoundError, SchemaMismatchError, UnsafeNameError
from engine.pipelines.inference import score_batch
from engine.pipelines.training import training_config
from engine.pipelines.view_training import train_on_dataset
from engine.store import delta
from engine.store.feature_store import FeatureStore
from engine.store.feature_view import FeatureLookup, OnDemandFeature
from engine.store.training_dataset import TimeSplit
from engine.temporal.ranges import TimeRange
from engine.testing.ondemand import hour_of_day

UTC = timezone.utc
T0 = datetime(2013, 1, 1, tzinfo=UTC)
SCORED_AT = datetime(2013, 3, 1, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory) -> dict[str, Any]:
    """A store with one group whose feature predicts the label, a view, a dataset and a model."""
    import mlflow

    from engine.tracking import configure_tracking

    tmp = tmp_path_factory.mktemp("inference")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        configure_tracking(tmp / "warehouse")
        fs = FeatureStore(spark, str(tmp / "store"))
        sensor = fs.create_feature_group(
            "sensor", primary_key="device", event_time="at", schema="device INT, at TIMESTAMP, level DOUBLE", statistics=False
        )
        # level alternates high/low per device and hour; label = level was high just before
        rows = [(d, h(i), float((i + d) % 2) * 10 + (d % 3)) for d in range(20) for i in range(0, 200)]
        sensor.insert(spark.createDataFrame(rows, sensor.schema))
        view = fs.create_feature_view(
            "alarm", spine_time="ts", labels=["alarm"],
            lookups=[FeatureLookup("sensor", prefix="s_", keys={"device": "device"}, lookback=timedelta(hours=2))],
            on_demand=[OnDemandFeature("hour", hour_of_day, ["ts"], "int")],
        )
        spine = spark.createDataFrame(
            [(d * 1000 + i, d, h(i + 0.5), int((i + d) % 2 == 1)) for d in range(20) for i in range(0, 200)],
            "event_id long, device int, ts timestamp, alarm int",
        )
        split = TimeSplit(TimeRange(h(0), h(120)), TimeRange(h(125), h(200)), min_gap=timedelta(hours=2))
        dataset = fs.create_training_dataset(view, spine=spine, split=split)
        config = training_config({"family": "sklearn_logreg", "max_evals": 2, "parallelism": 2,
                                  "search_space": {"C": {"dist": "loguniform", "low": 0.1, "high": 10.0}}})
        trained = train_on_dataset(fs, dataset, config=config)
        yield {"fs": fs, "view": view, "dataset": dataset, "trained": trained, "tmp": tmp, "spine": spine, "config": config}
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def test_model_is_registered_with_lineage(world):
    from mlflow import MlflowClient

    trained = world["trained"]
    reg = trained.registration
    assert reg.name == "alarm" and reg.promoted
    assert trained.training.metrics["roc_auc"] > 0.9 > trained.training.baseline_metrics["roc_auc"]
    version = MlflowClient().get_model_version("alarm", reg.version)
    assert version.tags["feature_view"] == "alarm" and version.tags["training_dataset_version"] == "1"
    assert version.tags["source.sensor:v1"] == str(world["dataset"].source_versions["sensor:v1"])
    with pytest.raises(InvalidArgumentError, match="feature_view:alarm"):  # a bare name of two kinds
        world["fs"].lineage("alarm")
    edges = {(str(e.src), str(e.dst)) for e in world["fs"].lineage("feature_view:alarm")}
    assert ("training_dataset:alarm_v1@v1", f"model:alarm@v{reg.version}") in edges
    assert ("feature_group:sensor@v1", "feature_view:alarm@v1") in edges


def test_score_batch_by_alias_uses_the_training_features(world, spark):
    out = str(world["tmp"] / "predictions")
    spine = world["spine"].where(F.col("ts") >= h(150).replace(tzinfo=None)).select("event_id", "device", "ts")
    written = score_batch(spark, "models:/alarm@champion", spine, output=out, batch_id="b1", scored_at=SCORED_AT,
                          passthrough=["event_id"])
    result = written.score_result  # the write's result rides on the returned DataFrame (the batch as written)
    assert result.rows == spine.count() == written.count() and result.model_name == "alarm"
    scored = delta.read(spark, out)
    assert set(scored.columns) >= {"event_id", "device", "ts", "s_level", "hour", "prediction", "probabilities",
                                   "probability", "model_name", "model_version", "batch_id", "scored_at",
                                   "scoring_date"}
    assert sorted(written.columns) == sorted(scored.columns)
    # the same features as the training data for the same spine rows (no skew)
    training = world["view"].training_data(world["spine"]).select("event_id", "s_level", "hour")
    joined = scored.select("event_id", "s_level", "hour").exceptAll(training)
    assert joined.count() == 0
    labels = world["spine"].select("event_id", "alarm")
    good = scored.join(labels, "event_id").where((F.col("prediction") > 0.5) == (F.col("alarm") == 1)).count()
    assert good / result.rows > 0.9
    # re-scoring the same batch replaces it; another batch is added
    again = score_batch(spark, f"models:/alarm/{result.model_version}", spine, output=out, batch_id="b1",
                        scored_at=SCORED_AT, passthrough=["event_id"]).score_result
    assert delta.read(spark, out).count() == result.rows and again.delta_version == result.delta_version + 1
    score_batch(spark, "models:/alarm@champion", spine.limit(10), output=out, batch_id="b2", scored_at=SCORED_AT,
                passthrough=["event_id"])
    counts = {r.batch_id: r["count"] for r in delta.read(spark, out).groupBy("batch_id").count().collect()}
    assert counts == {"b1": result.rows, "b2": 10}
    # a batch whose columns differ from the table's is refused before writing
    before = delta.current_version(spark, out)
    with pytest.raises(SchemaMismatchError) as err:
        score_batch(spark, "models:/alarm@champion", spine.limit(5), output=out, batch_id="b3", scored_at=SCORED_AT)
    assert err.value.params["column"] == "event_id" and delta.current_version(spark, out) == before


def test_alias_moves_only_on_improvement(world, spark):
    fs, dataset = world["fs"], world["dataset"]
    worse = training_config({"family": "sklearn_logreg", "max_evals": 1, "parallelism": 1,
                             "search_space": {"C": {"dist": "choice", "options": [1e-6]}},
                             "params": {"max_iter": 1}})
    second = train_on_dataset(fs, dataset, config=worse)
    if second.training.metrics["roc_auc"] <= world["trained"].training.metrics["roc_auc"]:
        assert not second.registration.promoted


def test_bad_scoring_input_writes_nothing(world, spark):
    out = str(world["tmp"] / "predictions_bad")
    spine = world["spine"].select("event_id", "device", "ts")
    cases = [
        ("models:/alarm@champion", spine.drop("device"), ColumnNotFoundError),
        ("models:/alarm@champion", spine.drop("ts"), ColumnNotFoundError),
        ("runs:/abc/model", spine, InvalidArgumentError),
        ("models:/no_such_model@champion", spine, NotFoundError),
        ("models:/alarm/999", spine, NotFoundError),
        ("models:/alarm@champion", spine.limit(0), InvalidArgumentError),
    ]
    for uri, frame, error in cases:
        with pytest.raises(error):
            score_batch(spark, uri, frame, output=out, batch_id="bad", scored_at=SCORED_AT)
    assert not Path(out).exists()
    with pytest.raises(UnsafeNameError) as err:
        score_batch(spark, "models:/alarm@champion", spine, output=out, batch_id="../x", scored_at=SCORED_AT)
    assert err.value.params["argument"] == "batch_id" and "../x" in str(err.value)
