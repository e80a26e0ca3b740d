"""Any model, any label (issue 13) on real Spark, Delta, MLflow and hyperopt.

One module-scoped store (MLflow in the store: ``<root>/_mlflow``) with a feature group holding a
numeric and a STRING feature, and a view that excludes a third feature from the model inputs but
keeps it for audit. Models: a user's own scikit-learn classifier and Spark ML pipeline logged with
``log_model``; a regression and a multiclass model from the built-in pipeline (2 trials each).
Each is registered and scored by ``score_batch``; its predictions must equal the model's own
prediction on ``training_data()`` features for the same spine, every spine row scored once.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import functions as F

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from engine.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    ConfigError,
    InvalidArgumentError,
    ModelLineageError,
    NotFoundError,
)
from engine.pipelines.inference import score_batch
from engine.pipelines.models import log_model
from engine.pipelines.training import training_config
from engine.pipelines.view_training import train_on_dataset
from engine.store.feature_store import FeatureStore
from engine.store.feature_view import FeatureLookup
from engine.store.training_dataset import TimeSplit
from engine.temporal.ranges import TimeRange

UTC = timezone.utc
T0 = datetime(2024, 1, 1, tzinfo=UTC)
USERS, HOURS = 30, 24
SEGMENTS = ["gold", "silver", "bronze", None]
FEATURES = ["x", "segment"]  # the model inputs; "noise" is looked up but excluded


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _world_rows() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rng = np.random.default_rng(13)
    features, spine = [], []
    effect = {"gold": 1.5, "silver": 0.0, "bronze": -1.5, None: 0.5}
    for u in range(USERS):
        for i in range(HOURS):
            x = float(rng.normal())
            segment = SEGMENTS[(u + i) % 4]
            features.append((u, h(i), x, segment, float(rng.normal())))
            score = 1.5 * x + effect[segment]
            y_multi = "high" if score > 1.0 else "mid" if score > -0.7 else "low"
            y_reg = 2.0 * x + effect[segment] + float(rng.normal()) * 0.1
            y_bin = int(score + float(rng.normal()) * 0.3 > 0)
            spine.append((u * 1000 + i, u, h(i + 0.5), y_bin, y_multi, y_reg))
    return features, spine


@pytest.fixture(scope="module")
def world(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import mlflow

    tmp = tmp_path_factory.mktemp("any_model")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        fs = FeatureStore(spark, str(tmp / "store"))
        group = fs.create_feature_group(
            "acct", primary_key="user", event_time="at", statistics=False,
            schema="user INT, at TIMESTAMP, x DOUBLE, segment STRING, noise DOUBLE",
        )
        feature_rows, spine_rows = _world_rows()
        group.insert(spark.createDataFrame(feature_rows, group.schema))
        view = fs.create_feature_view(
            "acct", spine_time="ts", labels=["y_bin", "y_multi", "y_reg"], exclude=["noise"],
            lookups=[FeatureLookup("acct", prefix="", lookback=timedelta(hours=1))],
        )
        spine = spark.createDataFrame(
            spine_rows, "event_id BIGINT, user INT, ts TIMESTAMP, y_bin INT, y_multi STRING, y_reg DOUBLE"
        ).cache()
        split = TimeSplit(TimeRange(h(0), h(16)), TimeRange(h(17), h(HOURS)), min_gap=timedelta(hours=1))
        dataset = fs.create_training_dataset(view, spine=spine, split=split)
        before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
        yield {"fs": fs, "view": view, "spine": spine, "dataset": dataset, "tmp": tmp, "before": before}


def _client(fs: FeatureStore) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=fs.tracking_uri, registry_uri=fs.registry_uri)


def _reference(world: Any) -> Any:
    """The view's training data for the whole spine, as the model sees it (numbers float64)."""
    from engine.pipelines._sklearn_run import input_frame

    pdf = world["view"].training_data(world["spine"]).toPandas().sort_values("event_id").reset_index(drop=True)
    return pdf, input_frame(pdf[FEATURES], {"x": "double", "segment": "string"})


def _scored(world: Any, uri: str) -> Any:
    spine = world["spine"].select("event_id", "user", "ts")
    scored = score_batch(world["fs"].spark, uri, spine, store=world["fs"], passthrough=["event_id"])
    pdf = scored.toPandas().sort_values("event_id").reset_index(drop=True)
    assert len(pdf) == spine.count() and pdf["event_id"].is_unique  # every spine row scored once
    return scored, pdf


def _sklearn_classifier(x: Any, y: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer([("num", SimpleImputer(), ["x"]), ("cat", OneHotEncoder(handle_unknown="ignore"),
                                                                   ["segment"])])
    return Pipeline([("encode", encode), ("clf", LogisticRegression())]).fit(x, y)


@pytest.fixture(scope="module")
def byo_sklearn(world: Any) -> Any:
    from engine.pipelines._sklearn_run import input_frame

    train = world["dataset"].read("train").toPandas()
    model = _sklearn_classifier(input_frame(train[FEATURES], {"x": "double", "segment": "string"}), train["y_bin"])
    logged = log_model(model, training_set=world["dataset"], flavor="sklearn", label="y_bin",
                       registered_name="byo_sklearn", store=world["fs"])
    return model, logged


def test_own_sklearn_classifier_is_logged_with_lineage_and_scored(world: Any, byo_sklearn: Any) -> None:
    import mlflow

    model, logged = byo_sklearn
    fs, dataset = world["fs"], world["dataset"]
    assert logged.task == "binary" and logged.registration.promoted and logged.metrics["roc_auc"] > 0.8
    version = _client(fs).get_model_version("byo_sklearn", str(logged.registration.version))
    assert version.tags["feature_view"] == "acct" and version.tags["training_dataset_version"] == str(dataset.version)
    assert version.tags["source.acct:v1"] == str(dataset.source_versions["acct:v1"])
    assert float(version.tags["metric.roc_auc"]) == pytest.approx(logged.metrics["roc_auc"])
    info = mlflow.models.Model.load(_client(fs).get_model_version_download_uri("byo_sklearn", version.version)
                                    .removeprefix("file://"))
    assert info.metadata["feature_view"]["name"] == "acct"
    assert info.metadata["training_dataset"]["source_versions"] == dataset.source_versions
    assert info.metadata["feature_factory"]["classes"] == [0, 1]
    edges = {(str(e.src), str(e.dst)) for e in fs.lineage("feature_view:acct")}
    assert (str(dataset.node), f"model:byo_sklearn@v{logged.registration.version}") in edges

    scored, pdf = _scored(world, "models:/byo_sklearn@champion")
    reference, x = _reference(world)
    proba = model.predict_proba(x)
    got = np.array(pdf["probabilities"].tolist())
    np.testing.assert_allclose(got, proba, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pdf["probability"], proba[:, 1], rtol=0, atol=1e-9)
    assert (pdf["prediction"].to_numpy() == model.classes_[np.argmax(proba, axis=1)]).all()
    # the excluded feature is looked up and returned for audit, but is no model input
    assert "noise" in scored.columns and "noise" not in info.metadata["feature_factory"]["features"]
    np.testing.assert_array_equal(pdf["noise"].to_numpy(), reference["noise"].to_numpy())
    assert set(pdf["model_name"]) == {"byo_sklearn"} and set(pdf["model_version"]) == {logged.registration.version}


def test_no_global_mlflow_state_is_left_behind(world: Any, byo_sklearn: Any) -> None:
    import mlflow

    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == world["before"]
    db = Path(world["fs"].root) / "_mlflow" / "mlflow.db"
    assert world["fs"].tracking_uri == f"sqlite:///{db}" and db.is_file()
    assert any((Path(world["fs"].root) / "_mlflow" / "artifacts").rglob("MLmodel"))


def test_alias_moves_only_when_the_primary_metric_improves(world: Any, byo_sklearn: Any) -> None:
    model, first = byo_sklearn
    common = {"training_set": world["dataset"], "flavor": "sklearn", "label": "y_bin", "registered_name": "byo_sklearn",
              "store": world["fs"]}
    worse = log_model(model, metrics={"roc_auc": first.metrics["roc_auc"] - 0.1}, **common)
    assert not worse.registration.promoted
    assert worse.registration.previous_champion_version == first.registration.version
    better = log_model(model, metrics={"roc_auc": 0.999}, **common)
    assert better.registration.promoted
    champion = _client(world["fs"]).get_model_version_by_alias("byo_sklearn", "champion")
    assert int(champion.version) == better.registration.version


def test_own_spark_pipeline_is_scored_by_transform(world: Any) -> None:
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StringIndexer, VectorAssembler
    from pyspark.ml.functions import vector_to_array

    view, spine = world["view"], world["spine"]
    train = view.training_data(spine).where(F.col("ts") < F.lit(h(16)))
    pipeline = Pipeline(stages=[
        StringIndexer(inputCol="segment", outputCol="segment_idx", handleInvalid="keep"),
        VectorAssembler(inputCols=["x", "segment_idx"], outputCol="vec", handleInvalid="keep"),
        LogisticRegression(featuresCol="vec", labelCol="y_bin", maxIter=20),
    ]).fit(train)
    logged = log_model(pipeline, training_set=(view, spine), flavor="spark", label="y_bin",
                       registered_name="byo_spark", store=world["fs"], metrics={"roc_auc": 0.9})
    assert logged.task == "binary" and logged.registration.promoted
    version = _client(world["fs"]).get_model_version("byo_spark", str(logged.registration.version))
    assert version.tags["training_dataset_version"] == "none" and "source.acct:v1" in version.tags

    _, pdf = _scored(world, "models:/byo_spark/1")
    own = pipeline.transform(view.training_data(spine)).select(
        "event_id", vector_to_array("probability").alias("p"), "prediction").toPandas()
    own = own.sort_values("event_id").reset_index(drop=True)
    np.testing.assert_allclose(np.array(pdf["probabilities"].tolist()), np.array(own["p"].tolist()), rtol=0, atol=1e-9)
    assert (pdf["prediction"].to_numpy() == own["prediction"].astype(int).to_numpy()).all()


def test_builtin_regression_with_a_string_feature(world: Any) -> None:
    import mlflow

    config = training_config({"task": "regression", "family": "sklearn_gbt", "max_evals": 2, "parallelism": 2,
                              "params": {"max_iter": 30},
                              "search_space": {"learning_rate": {"dist": "uniform", "low": 0.1, "high": 0.3}}})
    trained = train_on_dataset(world["fs"], world["dataset"], config=config, label="y_reg", model_name="acct_reg")
    result = trained.training
    assert result.task == "regression" and set(result.metrics) == {"rmse", "mae"}
    assert result.metrics["rmse"] < result.baseline_metrics["rmse"] / 2
    assert trained.registration.promoted and trained.registration.metric == "rmse"

    _, pdf = _scored(world, "models:/acct_reg@champion")
    _, x = _reference(world)
    with _uris(world["fs"]):
        model = mlflow.sklearn.load_model(result.model_uri)
    np.testing.assert_allclose(pdf["prediction"].to_numpy(), model.predict(x), rtol=0, atol=1e-9)
    assert "probabilities" not in pdf.columns


def test_builtin_multiclass_with_string_labels(world: Any) -> None:
    import mlflow

    config = training_config({"task": "multiclass", "family": "sklearn_logreg", "max_evals": 2, "parallelism": 2,
                              "search_space": {"C": {"dist": "loguniform", "low": 0.1, "high": 10.0}}})
    trained = train_on_dataset(world["fs"], world["dataset"], config=config, label="y_multi", model_name="acct_multi")
    result = trained.training
    assert result.task == "multiclass" and result.classes == ("high", "low", "mid")
    assert result.metrics["f1_macro"] > result.baseline_metrics["f1_macro"] + 0.3
    assert trained.registration.metric == "f1_macro"

    _, pdf = _scored(world, "models:/acct_multi@champion")
    _, x = _reference(world)
    with _uris(world["fs"]):
        model = mlflow.sklearn.load_model(result.model_uri)
    np.testing.assert_allclose(np.array(pdf["probabilities"].tolist()), model.predict_proba(x), rtol=0, atol=1e-9)
    assert (pdf["prediction"].to_numpy() == model.predict(x)).all()
    assert "probability" not in pdf.columns  # binary only

    # the estimator's own pandas UDF ran (not MLflow's), and it gives MLflow's numbers exactly
    from engine.pipelines._resolve import resolve_model
    from engine.pipelines.inference import _python_outputs, _sklearn_outputs

    resolved = resolve_model("models:/acct_multi@champion", store=world["fs"])
    frame = world["view"].training_data(world["spine"])
    ours = _sklearn_outputs(world["fs"].spark, resolved, frame, list(FEATURES))
    assert ours is not None and "probabilities(" in ours[3]._jdf.queryExecution().analyzed().toString()
    with _uris(world["fs"]):
        theirs = _python_outputs(world["fs"].spark, resolved, frame, list(FEATURES))
    columns = [(p, i) for p, i, _, _ in (ours, theirs)]
    got = [t.select("event_id", p.alias("p"), i.alias("i")).toPandas().sort_values("event_id") for (p, i), t in
           zip(columns, (ours[3], theirs[3]), strict=True)]
    assert len(got[0]) == len(x)
    np.testing.assert_allclose(np.array(got[0]["p"].tolist()), np.array(got[1]["p"].tolist()), rtol=0, atol=1e-12)
    assert (got[0]["i"].to_numpy() == got[1]["i"].to_numpy()).all()


def _uris(fs: FeatureStore) -> Any:
    from engine.tracking import mlflow_uris

    return mlflow_uris(fs.tracking_uri, fs.registry_uri)


# ---------------------------------------------------------------------------------------------
# model-side checks


def test_unknown_alias_lists_the_aliases_and_the_registry(world: Any, byo_sklearn: Any) -> None:
    with pytest.raises(NotFoundError) as err:
        score_batch(world["fs"].spark, "models:/byo_sklearn@staging", world["spine"], store=world["fs"])
    assert err.value.params["available"] == ["champion"]
    assert err.value.params["tracking_uri"] == world["fs"].registry_uri and "champion" in str(err.value)
    with pytest.raises(NotFoundError) as err:
        score_batch(world["fs"].spark, "models:/byo_sklearn/99", world["spine"], store=world["fs"])
    assert 1 in err.value.params["available"]


def test_spine_without_the_view_keys_is_refused(world: Any, byo_sklearn: Any, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    for missing in ("user", "ts"):
        with pytest.raises(ColumnNotFoundError) as err:
            score_batch(world["fs"].spark, "models:/byo_sklearn@champion", world["spine"].drop(missing),
                        store=world["fs"], output=out, batch_id="b1", scored_at=h(48))
        assert (err.value.params["argument"], err.value.params["column"]) == ("spine", missing)
    with pytest.raises(InvalidArgumentError) as err:  # writing needs all three
        score_batch(world["fs"].spark, "models:/byo_sklearn@champion", world["spine"], store=world["fs"], output=out)
    assert err.value.params["argument"] == "batch_id"
    assert not Path(out).exists()


def test_a_model_whose_view_or_features_are_gone(world: Any, byo_sklearn: Any) -> None:
    spark = world["fs"].spark
    elsewhere = FeatureStore(spark, str(world["tmp"] / "elsewhere"), tracking_uri=world["fs"].tracking_uri)
    with pytest.raises(ModelLineageError) as err:  # no view "acct" in that store
        score_batch(spark, "models:/byo_sklearn@champion", world["spine"], store=elsewhere)
    assert "acct v1" in str(err.value) and err.value.params["model"].startswith("models:/byo_sklearn/")
    group = elsewhere.create_feature_group("acct", primary_key="user", event_time="at", statistics=False,
                                           schema="user INT, at TIMESTAMP, x DOUBLE")
    assert group.version == 1
    elsewhere.create_feature_view("acct", spine_time="ts", lookups=[FeatureLookup("acct", prefix="")])
    with pytest.raises(ModelLineageError) as err:  # the view exists there, without `segment`
        score_batch(spark, "models:/byo_sklearn@champion", world["spine"], store=elsewhere)
    assert err.value.params["found"] == ["segment"]


def test_a_label_of_the_wrong_type_for_the_task(world: Any) -> None:
    config = training_config({"task": "regression", "family": "sklearn_linear", "max_evals": 1,
                              "search_space": {"alpha": {"dist": "uniform", "low": 0.1, "high": 1.0}}})
    with pytest.raises(ColumnTypeError) as err:
        train_on_dataset(world["fs"], world["dataset"], config=config, label="y_multi", register=False)
    assert (err.value.params["argument"], err.value.params["column"]) == ("label", "y_multi")
    with pytest.raises(ColumnTypeError) as err:  # log_model checks the same before logging anything
        log_model(object(), training_set=world["dataset"], flavor="pyfunc", label="y_multi", task="regression",
                  store=world["fs"])
    assert err.value.params["column"] == "y_multi"
    with pytest.raises(ConfigError) as err:
        training_config({"task": "multiclass", "family": "spark_gbt",
                         "search_space": {"max_depth": {"dist": "choice", "options": [2]}}})
    assert "spark_logreg" in str(err.value)


class _Rule:
    """A generic pyfunc model: a hand-written scoring rule (mlflow.pyfunc.PythonModel protocol)."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        bonus = model_input["segment"].map({"gold": 1.0, "bronze": -1.0}).astype("float64").fillna(0.0)
        return (2.0 * model_input["x"].fillna(0.0) + bonus).to_numpy()


def test_own_pyfunc_model_in_arrow_batches(world: Any) -> None:
    import cloudpickle
    from mlflow.pyfunc import PythonModel

    rule = type("Rule", (_Rule, PythonModel), {})()
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers need not import this test module
    logged = log_model(rule, training_set=world["dataset"], flavor="pyfunc", label="y_reg", task="regression",
                       registered_name="byo_rule", store=world["fs"])
    assert logged.metrics["rmse"] < 1.0 and logged.registration.promoted
    _, pdf = _scored(world, "models:/byo_rule@champion")
    _, x = _reference(world)
    np.testing.assert_allclose(pdf["prediction"].to_numpy(), rule.predict(None, x), rtol=0, atol=1e-9)


def test_builtin_spark_multiclass_indexes_the_string_feature(world: Any) -> None:
    import mlflow
    from pyspark.ml.functions import vector_to_array

    from engine.pipelines._spark_models import PREDICTION, PROBABILITY

    config = training_config({"task": "multiclass", "family": "spark_logreg", "max_evals": 2,
                              "params": {"max_iter": 30},
                              "search_space": {"reg_param": {"dist": "loguniform", "low": 0.001, "high": 0.1}}})
    trained = train_on_dataset(world["fs"], world["dataset"], config=config, label="y_multi",
                               model_name="acct_multi_spark")
    result = trained.training
    assert result.classes == ("high", "low", "mid") and result.metrics["f1_macro"] > 0.6
    stages = [type(s).__name__ for s in trained_stages(world["fs"], result.model_uri)]
    assert "StringIndexerModel" in stages and "OneHotEncoderModel" in stages

    _, pdf = _scored(world, "models:/acct_multi_spark@champion")
    with _uris(world["fs"]):
        model = mlflow.spark.load_model(result.model_uri)
    own = model.transform(world["view"].training_data(world["spine"])).select(
        "event_id", vector_to_array(PROBABILITY).alias("p"), PREDICTION).toPandas()
    own = own.sort_values("event_id").reset_index(drop=True)
    np.testing.assert_allclose(np.array(pdf["probabilities"].tolist()), np.array(own["p"].tolist()), rtol=0, atol=1e-9)
    classes = np.array(result.classes, dtype=object)
    assert (pdf["prediction"].to_numpy() == classes[own[PREDICTION].astype(int).to_numpy()]).all()


def trained_stages(fs: FeatureStore, model_uri: str) -> list[Any]:
    import mlflow

    with _uris(fs):
        return list(mlflow.spark.load_model(model_uri).stages)


def test_example_configs_load() -> None:
    from engine.pipelines.training import load_training_config

    conf = Path(__file__).resolve().parents[2] / "conf" / "training"
    regression = load_training_config(conf / "example_regression.yaml")
    multiclass = load_training_config(conf / "example_multiclass.yaml")
    assert (regression.task, regression.objective) == ("regression", "rmse")
    assert (multiclass.task, multiclass.objective) == ("multiclass", "f1_macro")
