"""Training pipeline on real Spark, hyperopt SparkTrials, MLflow (SQLite in a temp folder).

Three real trainings are shared by the module (sklearn gradient boosting on a learnable label,
sklearn logistic regression on pure noise, Spark ML GBT on the learnable label); every other
test only checks arguments and config, which must fail before any Spark job or MLflow run.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pyspark.sql import functions as F

# Spark's Python workers must run this interpreter (it has hyperopt/sklearn); without this they run
# `python3` from PATH. Read when the SparkContext starts, i.e. after test collection.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

from engine.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    ConfigError,
    InvalidArgumentError,
    TrainingFailedError,
)
from engine.pipelines.training import (
    ParamSpace,
    TrainingConfig,
    TrainingResult,
    load_training_config,
    register_best,
    train,
    training_config,
)

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["f0", "f1", "f2", "n_int"]
SCHEMA = "f0 DOUBLE, f1 DOUBLE, f2 DOUBLE, n_int INT, label INT"
GBT_SPACE = {
    "learning_rate": {"dist": "loguniform", "low": 0.03, "high": 0.3},
    "max_depth": {"dist": "quniform", "low": 2, "high": 4, "q": 1, "type": "int"},
}


def _rows(n: int, *, seed: int, learnable: bool) -> list[tuple[Any, ...]]:
    """A label that depends on f0, f1 and n_int (learnable) or on nothing (noise); f2 has NULLs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    n_int = rng.integers(0, 5, size=n)
    logit = 2.0 * x[:, 0] - 1.5 * x[:, 1] + 0.8 * (n_int - 2) if learnable else np.zeros(n)
    label = rng.random(n) < 1 / (1 + np.exp(-logit))
    return [
        (float(a), float(b), None if i % 17 == 0 else float(c), int(k), int(y))
        for i, (a, b, c, k, y) in enumerate(zip(x[:, 0], x[:, 1], x[:, 2], n_int, label, strict=True))
    ]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Embedded MLflow (SQLite) in a temp warehouse, whatever the environment says."""
    import mlflow

    from engine.tracking import configure_tracking

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        warehouse = tmp_path_factory.mktemp("warehouse")
        uri = configure_tracking(warehouse)
        yield {"uri": uri, "warehouse": warehouse}
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def data(spark: Any) -> dict[str, Any]:
    return {
        "train": spark.createDataFrame(_rows(2000, seed=1, learnable=True), SCHEMA),
        "validation": spark.createDataFrame(_rows(1000, seed=2, learnable=True), SCHEMA),
        "noise_train": spark.createDataFrame(_rows(2000, seed=3, learnable=False), SCHEMA),
        "noise_validation": spark.createDataFrame(_rows(1000, seed=4, learnable=False), SCHEMA),
    }


@pytest.fixture(scope="module")
def gbt(spark: Any, tracking: Any, data: dict[str, Any]) -> TrainingResult:
    config = training_config({
        "family": "sklearn_gbt", "max_evals": 4, "parallelism": 2, "seed": 7,
        "params": {"max_iter": 40}, "search_space": GBT_SPACE,
    })
    return train(
        spark, data["train"], data["validation"], features=FEATURES, label="label", config=config,
        experiment="test_gbt", run_name="gbt", tags={"feature_view": "fv_test"},
        model_metadata={"feature_view": {"name": "fv_test", "version": 3}},
    )


@pytest.fixture(scope="module")
def noise(spark: Any, tracking: Any, data: dict[str, Any]) -> TrainingResult:
    config = training_config({
        "family": "sklearn_logreg", "max_evals": 2, "parallelism": 2, "seed": 7,  # one wave of 2 trials
        "search_space": {"C": {"dist": "loguniform", "low": 0.01, "high": 10.0}},
    })
    return train(spark, data["noise_train"], data["noise_validation"], features=FEATURES, label="label",
                 config=config, experiment="test_noise")


def _client() -> Any:
    from mlflow import MlflowClient

    return MlflowClient()


def _runs(experiment: str) -> list[Any]:
    experiment_obj = _client().get_experiment_by_name(experiment)
    if experiment_obj is None:
        return []
    return _client().search_runs([experiment_obj.experiment_id])


# ---------------------------------------------------------------------------------------------
# tracking


def test_embedded_tracking_is_sqlite_in_the_warehouse(tracking: Any, gbt: TrainingResult) -> None:
    warehouse = Path(tracking["warehouse"]).resolve()
    assert tracking["uri"] == f"sqlite:///{warehouse / 'mlflow.db'}"
    assert (warehouse / "mlflow.db").is_file()
    experiment = _client().get_experiment(gbt.experiment_id)
    assert experiment.artifact_location.startswith((warehouse / "mlartifacts").as_uri())
    assert any((warehouse / "mlartifacts").rglob("MLmodel"))


def test_configure_tracking_honours_the_environment(tracking: Any, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from engine.tracking import configure_tracking

    try:
        elsewhere = f"sqlite:///{tmp_path / 'server.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
        assert configure_tracking(tmp_path / "ignored") == elsewhere
        assert mlflow.get_tracking_uri() == elsewhere
        assert not (tmp_path / "ignored").exists()
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
        second = configure_tracking(tmp_path / "second")  # a new warehouse, not the previous URI
        assert second == f"sqlite:///{(tmp_path / 'second').resolve() / 'mlflow.db'}"
    finally:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        configure_tracking(tracking["warehouse"])
    assert mlflow.get_tracking_uri() == tracking["uri"]


# ---------------------------------------------------------------------------------------------
# trials, parent run and model


def test_every_trial_is_a_nested_run_with_params_metrics_and_duration(gbt: TrainingResult) -> None:
    from mlflow.entities import ViewType

    client = _client()
    children = client.search_runs(
        [gbt.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{gbt.run_id}'", run_view_type=ViewType.ALL
    )
    assert len(children) == 4 == len(gbt.trials)
    assert {c.info.run_id for c in children} == {t.run_id for t in gbt.trials}
    for child in children:
        assert child.info.status == "FINISHED"
        assert set(child.data.params) == {"learning_rate", "max_depth"}
        assert 2 <= int(child.data.params["max_depth"]) <= 4
        assert 0.03 <= float(child.data.params["learning_rate"]) <= 0.3
        assert {"roc_auc", "log_loss", "duration_s"} <= set(child.data.metrics)
        assert child.data.metrics["duration_s"] > 0
        assert child.info.end_time >= child.info.start_time
    best = max(children, key=lambda c: c.data.metrics["roc_auc"])
    assert gbt.best_params == {"learning_rate": float(best.data.params["learning_rate"]),
                               "max_depth": int(best.data.params["max_depth"])}


def test_parent_run_holds_config_sizes_baseline_and_best(gbt: TrainingResult) -> None:
    run = _client().get_run(gbt.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["feature_view"] == "fv_test"
    assert run.data.params["family"] == "sklearn_gbt"
    assert run.data.params["best.max_depth"] == str(gbt.best_params["max_depth"])
    metrics = run.data.metrics
    assert metrics["train_rows"] == 2000 and metrics["validation_rows"] == 1000
    assert metrics["train_positive_rate"] == pytest.approx(gbt.train_positive_rate)
    assert metrics["roc_auc"] == pytest.approx(gbt.metrics["roc_auc"])
    assert metrics["baseline_roc_auc"] == 0.5
    assert metrics["n_trials_ok"] == 4
    features = _client().download_artifacts(gbt.run_id, "features.json")
    assert '"n_int"' in Path(features).read_text()


def test_learnable_label_beats_the_baseline_and_noise_does_not(gbt: TrainingResult, noise: TrainingResult) -> None:
    assert gbt.metrics["roc_auc"] > 0.8
    assert gbt.metrics["log_loss"] < gbt.baseline_metrics["log_loss"] - 0.1
    assert abs(noise.metrics["roc_auc"] - 0.5) < 0.07
    assert noise.metrics["log_loss"] > noise.baseline_metrics["log_loss"] - 0.02
    # the baseline is the log loss of always predicting the train positive rate
    p, v = noise.train_positive_rate, _positive_rate(noise)
    assert noise.baseline_metrics["log_loss"] == pytest.approx(-(v * math.log(p) + (1 - v) * math.log(1 - p)))


def _positive_rate(result: TrainingResult) -> float:
    return float(_client().get_run(result.run_id).data.metrics["validation_positive_rate"])


def test_best_model_loads_with_signature_metadata_and_reproduces_the_metric(
    gbt: TrainingResult, data: dict[str, Any]
) -> None:
    import mlflow
    from sklearn.metrics import roc_auc_score

    model = mlflow.pyfunc.load_model(gbt.model_uri)
    meta = model.metadata.metadata
    assert meta["feature_view"] == {"name": "fv_test", "version": 3}
    assert meta["feature_factory"]["features"] == FEATURES
    assert meta["feature_factory"]["training_run_id"] == gbt.run_id
    assert model.metadata.signature.inputs.input_names() == FEATURES
    assert model.metadata.saved_input_example_info is not None
    validation = data["validation"].toPandas()
    proba = np.asarray(model.predict(validation[FEATURES].astype("float64")))
    assert proba.shape == (1000, 2)
    assert roc_auc_score(validation["label"], proba[:, 1]) == pytest.approx(gbt.metrics["roc_auc"])


# ---------------------------------------------------------------------------------------------
# registry


def test_alias_moves_only_on_strict_improvement(gbt: TrainingResult, noise: TrainingResult) -> None:
    client = _client()
    lineage = {"feature_view": "fv_test", "feature_view_version": "3", "training_dataset_version": "5",
               "feature_group.flights": "12"}
    first = register_best(noise, "delay_model", tags=lineage)
    assert (first.promoted, first.previous_champion_version) == (True, None)
    better = register_best(gbt, "delay_model", tags=lineage)
    assert better.promoted and better.previous_champion_version == first.version
    assert better.previous_metric == pytest.approx(noise.metrics["roc_auc"])
    assert int(client.get_model_version_by_alias("delay_model", "champion").version) == better.version
    worse = register_best(noise, "delay_model", tags=lineage)
    assert not worse.promoted and worse.previous_champion_version == better.version
    tie = register_best(gbt, "delay_model", tags=lineage)
    assert not tie.promoted and tie.previous_metric == pytest.approx(tie.value)
    assert int(client.get_model_version_by_alias("delay_model", "champion").version) == better.version
    # lower is better for log loss: the noise model does not beat the champion there either
    by_loss = register_best(noise, "delay_model", tags=lineage, metric="log_loss", greater_is_better=False)
    assert not by_loss.promoted

    version = client.get_model_version("delay_model", str(worse.version))
    for key, value in lineage.items():
        assert version.tags[key] == value
    assert float(version.tags["metric.roc_auc"]) == pytest.approx(noise.metrics["roc_auc"])
    assert "log_loss" in " ".join(version.tags)
    assert version.tags["ff.alias_decision"].startswith("kept")
    assert version.run_id == noise.run_id


@pytest.mark.parametrize("name", ["bad name", "models/x", "", "ünïcode", "a;drop"])
def test_unsafe_model_names_are_rejected_before_registering(gbt: TrainingResult, name: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        register_best(gbt, name, tags={})
    assert err.value.params["argument"] == "name"


def test_register_rejects_unknown_metric_and_non_string_tags(gbt: TrainingResult) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        register_best(gbt, "m", tags={}, metric="accuracy")
    assert err.value.params["argument"] == "metric"
    with pytest.raises(InvalidArgumentError) as err:
        register_best(gbt, "m", tags={"version": 3})  # type: ignore[dict-item]
    assert err.value.params["argument"] == "tags"


# ---------------------------------------------------------------------------------------------
# config: checked before any Spark job or MLflow run


def test_demo_configs_load() -> None:
    gbt = load_training_config(ROOT / "conf/training/demo_gbt.yaml")
    logreg = load_training_config(ROOT / "conf/training/demo_logreg.yaml")
    assert (gbt.family, logreg.family) == ("sklearn_gbt", "sklearn_logreg")
    assert gbt.search_space["max_depth"] == ParamSpace(dist="quniform", low=2, high=8, q=1, type="int")
    assert logreg.search_space["class_weight"].options == [None, "balanced"]
    assert load_training_config(ROOT / "conf/training/demo_spark_gbt.yaml").family == "spark_gbt"


BAD_CONFIGS = {
    "unknown key": ({"family": "sklearn_gbt", "search_space": GBT_SPACE, "max_eval": 4}, "max_eval", None),
    "unknown family": ({"family": "xgboost", "search_space": GBT_SPACE}, "family", None),
    "param of another family": (
        {"family": "sklearn_gbt", "search_space": {"C": {"dist": "loguniform", "low": 0.1, "high": 1}}},
        "search_space.C", "C",
    ),
    "sklearn name in spark": (
        {"family": "spark_gbt", "search_space": {"learning_rate": {"dist": "uniform", "low": 0.1, "high": 0.2}}},
        "search_space.learning_rate", "learning_rate",
    ),
    "fixed param unknown": ({"family": "sklearn_logreg", "params": {"n_estimators": 3},
                             "search_space": {"C": {"dist": "uniform", "low": 0.1, "high": 1}}}, "params.n_estimators",
                            "n_estimators"),
    "seed via random_state": (
        {"family": "sklearn_gbt", "search_space": {"random_state": {"dist": "choice", "options": [1, 2]}}},
        "search_space.random_state", "random_state",
    ),
    "unknown dist": ({"family": "sklearn_gbt", "search_space": {"max_depth": {"dist": "normal", "low": 1, "high": 2}}},
                     "search_space.max_depth.dist", None),
    "low >= high": ({"family": "sklearn_gbt", "search_space": {"learning_rate": {"dist": "uniform", "low": 0.3,
                                                                                  "high": 0.3}}},
                    "search_space.learning_rate.low", "learning_rate"),
    "loguniform from 0": ({"family": "sklearn_gbt", "search_space": {"learning_rate": {"dist": "loguniform", "low": 0,
                                                                                        "high": 0.3}}},
                          "search_space.learning_rate.low", "learning_rate"),
    "quniform without q": ({"family": "sklearn_gbt", "search_space": {"max_depth": {"dist": "quniform", "low": 2,
                                                                                     "high": 8}}},
                           "search_space.max_depth.q", "max_depth"),
    "int on a continuous dist": (
        {"family": "sklearn_gbt", "search_space": {"max_depth": {"dist": "uniform", "low": 2, "high": 8, "type": "int"}}},
        "search_space.max_depth.type", "max_depth",
    ),
    "empty choice": ({"family": "sklearn_logreg", "search_space": {"C": {"dist": "choice", "options": []}}},
                     "search_space.C.options", "C"),
    "tuned and fixed": ({"family": "sklearn_gbt", "params": {"max_depth": 3}, "search_space": GBT_SPACE},
                        "params.max_depth", "max_depth"),
    "no search space": ({"family": "sklearn_gbt", "search_space": {}}, "search_space", None),
    "zero evals": ({"family": "sklearn_gbt", "search_space": GBT_SPACE, "max_evals": 0}, "max_evals", None),
}

FAMILY_MISMATCH = ("param of another family", "sklearn name in spark", "fixed param unknown", "seed via random_state")


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_configs_name_the_key(case: str) -> None:
    data, key, parameter = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as err:
        training_config(data, source="demo.yaml")
    assert err.value.params["key"] == key
    assert err.value.params["source"] == "demo.yaml"
    if parameter is not None:
        assert err.value.params["parameter"] == parameter
    if case in FAMILY_MISMATCH:  # a parameter the family does not accept: the error names both
        assert err.value.params["family"] == data["family"]
        assert repr(parameter) in str(err.value) and repr(data["family"]) in str(err.value)


def test_bad_yaml_and_bad_config_object_fail_before_any_run(spark: Any, tracking: Any, data: dict[str, Any],
                                                            tmp_path: Path) -> None:
    from engine.tracking import ensure_experiment

    ensure_experiment("never_runs")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("family: sklearn_gbt\nsearch_space:\n  max_depth: {dist: gamma, low: 1, high: 3}\n")
    with pytest.raises(ConfigError):
        train(spark, data["train"], data["validation"], features=FEATURES, label="label",
              config=load_training_config(bad_yaml), experiment="never_runs")
    # built in Python (no from_mapping): train() checks it again
    wrong_param = TrainingConfig(family="sklearn_logreg",
                                 search_space={"max_depth": ParamSpace(dist="quniform", low=2, high=4, q=1)})
    with pytest.raises(ConfigError) as err:
        train(spark, data["train"], data["validation"], features=FEATURES, label="label", config=wrong_param,
              experiment="never_runs")
    assert (err.value.params["parameter"], err.value.params["family"]) == ("max_depth", "sklearn_logreg")
    with pytest.raises(ConfigError):
        train(spark, data["train"], data["validation"], features=FEATURES, label="label", config=wrong_param,
              experiment="never_created")
    assert _runs("never_runs") == []
    assert _client().get_experiment_by_name("never_created") is None


def test_bad_arguments_fail_before_any_run(spark: Any, tracking: Any, data: dict[str, Any]) -> None:
    config = training_config({"family": "sklearn_logreg", "max_evals": 1,
                              "search_space": {"C": {"dist": "uniform", "low": 0.1, "high": 1}}})
    train_df, validation = data["train"], data["validation"]
    with pytest.raises(ColumnNotFoundError) as err:
        train(spark, train_df, validation.drop("f1"), features=FEATURES, label="label", config=config,
              experiment="bad_args")
    assert (err.value.params["column"], err.value.params["side"]) == ("f1", "validation")
    with pytest.raises(ColumnTypeError) as err:  # STRING features are encoded in the model; arrays are not
        train(spark, train_df.withColumn("f0", F.array(train_df.f0)), validation, features=FEATURES,
              label="label", config=config, experiment="bad_args")
    assert err.value.params["column"] == "f0"
    with pytest.raises(InvalidArgumentError) as err:
        train(spark, train_df, validation, features=[*FEATURES, "label"], label="label", config=config,
              experiment="bad_args")
    assert err.value.params["argument"] == "features"
    with pytest.raises(InvalidArgumentError) as err:  # needs a Spark job to see, still no MLflow run
        train(spark, train_df.withColumn("label", train_df.label + 1), validation, features=FEATURES,
              label="label", config=config, experiment="bad_args")
    assert err.value.params["argument"] == "label"
    small = training_config({"family": "sklearn_logreg", "max_driver_rows": 500,
                             "search_space": {"C": {"dist": "uniform", "low": 0.1, "high": 1}}})
    with pytest.raises(InvalidArgumentError) as err:
        train(spark, train_df, validation, features=FEATURES, label="label", config=small, experiment="bad_args")
    assert err.value.params["argument"] == "train" and "spark_gbt" in str(err.value)
    assert _client().get_experiment_by_name("bad_args") is None


def test_failed_trials_are_logged_and_all_failing_is_an_error(spark: Any, tracking: Any,
                                                               data: dict[str, Any]) -> None:
    from mlflow.entities import ViewType

    # negative C is rejected by scikit-learn inside every trial
    config = training_config({"family": "sklearn_logreg", "max_evals": 2, "parallelism": 2,
                              "search_space": {"C": {"dist": "choice", "options": [-1.0, -2.0]}}})
    with pytest.raises(TrainingFailedError) as err:
        train(spark, data["train"], data["validation"], features=FEATURES, label="label", config=config,
              experiment="all_fail")
    assert "C" in err.value.params["first_error"]
    runs = _client().search_runs([_client().get_experiment_by_name("all_fail").experiment_id],
                                 run_view_type=ViewType.ALL)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [p.info.status for p in parents] == ["FAILED"]
    assert len(children) == 2
    assert all(c.info.status == "FAILED" and "ff.error" in c.data.tags for c in children)


# ---------------------------------------------------------------------------------------------
# Spark ML family


def test_spark_param_names_exist_on_the_estimators(spark: Any) -> None:
    from pyspark.ml.classification import GBTClassifier, LogisticRegression

    from engine.pipelines._models import accepted_params

    for family, estimator in (("spark_gbt", GBTClassifier()), ("spark_logreg", LogisticRegression())):
        for config_name, spark_name in accepted_params(family).items():
            assert estimator.hasParam(spark_name), (family, config_name)


def test_spark_gbt_distributed_fit(spark: Any, tracking: Any, data: dict[str, Any]) -> None:
    import mlflow
    from pyspark.ml.functions import vector_to_array

    config = training_config({
        "family": "spark_gbt", "max_evals": 2, "seed": 7, "params": {"max_iter": 4},
        "search_space": {"max_depth": {"dist": "quniform", "low": 2, "high": 3, "q": 1, "type": "int"},
                         "step_size": {"dist": "uniform", "low": 0.1, "high": 0.3}},
    })
    result = train(spark, data["train"], data["validation"], features=FEATURES, label="label", config=config,
                   experiment="test_spark_gbt", model_metadata={"feature_view": {"name": "fv_test", "version": 3}})
    assert result.metrics["roc_auc"] > 0.8
    assert len(result.trials) == 2 and all(t.status == "ok" for t in result.trials)
    children = _client().search_runs([result.experiment_id],
                                     filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert sorted(c.data.params["max_depth"] for c in children) == sorted(str(t.params["max_depth"])
                                                                           for t in result.trials)
    from sklearn.metrics import roc_auc_score

    from engine.pipelines._spark_models import PROBABILITY

    model = mlflow.spark.load_model(result.model_uri)  # one PipelineModel on the raw feature columns
    scored = model.transform(data["validation"]).select(vector_to_array(PROBABILITY)[1].alias("p"), "label")
    scored_pdf = scored.toPandas()
    assert len(scored_pdf) == 1000
    assert roc_auc_score(scored_pdf["label"], scored_pdf["p"]) == pytest.approx(result.metrics["roc_auc"], abs=1e-3)
    info = mlflow.models.get_model_info(result.model_uri)
    assert info.metadata["feature_view"]["version"] == 3
    assert info.metadata["feature_factory"]["family"] == "spark_gbt"


def test_the_collected_rows_do_not_depend_on_spark_row_order(spark: Any, data: dict[str, Any]) -> None:
    """Early stopping splits its validation rows by position: the same rows in another order (another
    partitioning of the plan that produced them) must reach the estimator in the same order."""
    from engine.pipelines._sklearn_run import SklearnRun

    config = training_config({"family": "sklearn_gbt", "max_evals": 1, "search_space": GBT_SPACE})
    kinds = {"f0": "double", "f1": "double", "f2": "double", "n_int": "double"}
    shuffled = data["train"].withColumn("r", F.rand(3)).repartition(5).sortWithinPartitions("r").drop("r")
    assert [r.f0 for r in shuffled.limit(50).collect()] != [r.f0 for r in data["train"].limit(50).collect()]
    collected = []
    for frame in (data["train"], shuffled):
        run = SklearnRun(spark, frame, data["validation"], features=FEATURES, kinds=kinds, label="label", config=config,
                         summary={"classes": [0, 1]})
        collected.append(run._collect("train", frame))
    (x1, y1), (x2, y2) = collected
    assert len(x1) == 2000
    pd_testing = pytest.importorskip("pandas").testing
    pd_testing.assert_frame_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def _sklearn_run(spark: Any, data: dict[str, Any]) -> Any:
    from engine.pipelines._sklearn_run import SklearnRun

    config = training_config({"family": "sklearn_gbt", "max_evals": 4, "seed": 7, "params": {"max_iter": 40},
                              "search_space": GBT_SPACE})  # the gbt fixture's
    kinds = {"f0": "double", "f1": "double", "f2": "double", "n_int": "double"}
    run = SklearnRun(spark, data["train"], data["validation"], features=FEATURES, kinds=kinds, label="label",
                     config=config, summary={"classes": [0, 1]})
    run.load()
    return run


def test_the_kept_best_trial_model_is_the_model_a_refit_gives(spark: Any, gbt: TrainingResult,
                                                              data: dict[str, Any]) -> None:
    """The logged model is the best trial's own fit (no refit on the driver); refitting its
    parameters on the same rows with the same seed gives the same predictions, so nothing is lost."""
    import mlflow

    from engine.pipelines._models import build_sklearn

    run = _sklearn_run(spark, data)
    refit = build_sklearn("sklearn_gbt", {"max_iter": 40, **gbt.best_params}, seed=7, task="binary", numeric=FEATURES)
    refit.fit(run.x_train, run.y_train)
    logged = mlflow.pyfunc.load_model(gbt.model_uri)
    np.testing.assert_array_equal(np.asarray(logged.predict(run.x_val)), refit.predict_proba(run.x_val))
    best = next(t for t in gbt.trials if t.number == gbt.best_trial)
    assert best.metrics == gbt.metrics  # the trial's validation metrics are the model's
    assert _client().get_run(gbt.run_id).data.tags["ff.model_source"] == "trial"  # kept, not refitted


def test_finish_keeps_the_trial_model_and_refits_only_without_a_usable_one(spark: Any, data: dict[str, Any]) -> None:
    from engine.pipelines._models import build_sklearn, fitted_model
    from engine.pipelines._trials import TrialRecord

    run = _sklearn_run(spark, data)
    best = TrialRecord(number=1, run_id="r", status="ok", params={"learning_rate": 0.1, "max_depth": 3})
    other = build_sklearn("sklearn_gbt", {"max_iter": 3}, seed=1, task="binary", numeric=FEATURES)
    other.fit(run.x_train, run.y_train)  # not what the best parameters give: proves which model is used
    run.finish(best, fitted_model(other))
    assert run.model_source == "trial"
    np.testing.assert_array_equal(run.model.predict_proba(run.x_val), other.predict_proba(run.x_val))

    refit = build_sklearn("sklearn_gbt", {"max_iter": 40, **best.params}, seed=7, task="binary", numeric=FEATURES)
    refit.fit(run.x_train, run.y_train)
    _, blob = fitted_model(other)
    for unusable in (None, ("0.0.1", blob)):  # none came back; pickled by another scikit-learn
        metrics = run.finish(best, unusable)
        assert run.model_source == "refit"
        np.testing.assert_array_equal(run.model.predict_proba(run.x_val), refit.predict_proba(run.x_val))
        assert 0.5 < metrics["roc_auc"] <= 1.0
