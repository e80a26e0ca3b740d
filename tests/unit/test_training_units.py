"""No Spark: the metric math per task, the model contract, and MLflow URIs set only for a block."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.pipelines._contract import ModelContract
from engine.pipelines._metrics import baseline_metrics, f1_macro_from_counts, task_metrics
from engine.pipelines.training import training_config


def test_macro_f1_from_counts_matches_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 4, 300), rng.integers(0, 3, 300)  # class 3 is never predicted
    counts: dict[tuple[int, int], int] = {}
    for t, q in zip(y, p, strict=True):
        counts[(int(t), int(q))] = counts.get((int(t), int(q)), 0) + 1
    expected = f1_score(y, p, average="macro", labels=[0, 1, 2, 3], zero_division=0)
    assert f1_macro_from_counts(counts, 4) == pytest.approx(expected)


def test_task_metrics_per_task() -> None:
    y = np.array(["a", "b", "c", "a"], dtype=object)
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.6, 0.3, 0.1]])
    multi = task_metrics("multiclass", y, proba, ["a", "b", "c"])
    assert set(multi) == {"f1_macro", "log_loss"} and multi["f1_macro"] == pytest.approx((0.8 + 1.0 + 0.0) / 3)
    binary = task_metrics("binary", np.array([0, 1, 1, 0]), np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]]),
                          [0, 1])
    assert binary["roc_auc"] == pytest.approx(0.75)
    reg = task_metrics("regression", np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0]), None)
    assert reg == {"rmse": pytest.approx(math.sqrt(5 / 3)), "mae": pytest.approx(1.0)}


def test_baselines_are_the_trivial_models() -> None:
    summary = {"classes": [0, 1], "train_counts": [75, 25], "validation_counts": [60, 40]}
    p, v = 0.25, 0.4
    assert baseline_metrics("binary", summary)["log_loss"] == pytest.approx(-(v * math.log(p) + (1 - v) * math.log(1 - p)))
    multi = baseline_metrics("multiclass", {"classes": ["a", "b", "c"], "train_counts": [5, 3, 2],
                                            "validation_counts": [4, 4, 2]})
    assert multi["f1_macro"] == pytest.approx((2 * 0.4 / 1.4) / 3)  # always "a": precision 0.4, recall 1


def test_task_and_family_are_checked_together() -> None:
    with pytest.raises(ConfigError) as err:
        training_config({"task": "regression", "family": "sklearn_logreg",
                         "search_space": {"C": {"dist": "uniform", "low": 0.1, "high": 1.0}}})
    assert err.value.params["key"] == "family" and "sklearn_linear" in str(err.value)
    with pytest.raises(ConfigError) as err:
        training_config({"task": "regression", "family": "sklearn_gbt", "metric": "roc_auc",
                         "search_space": {"max_depth": {"dist": "choice", "options": [2]}}})
    assert err.value.params["key"] == "metric"


def test_contract_reads_models_logged_before_it() -> None:
    legacy = ModelContract.from_metadata({"feature_factory": {"family": "sklearn_gbt", "features": ["a", "b"]}})
    assert (legacy.flavor, legacy.task, legacy.classes, legacy.input_types) == (
        "sklearn", "binary", [0, 1], {"a": "double", "b": "double"})
    contract = ModelContract(flavor="spark", task="multiclass", features=("a",), input_types={"a": "string"},
                             classes=["x", "y", "z"], spark_prediction="p", spark_probability="q")
    assert ModelContract.from_metadata({"feature_factory": contract.to_metadata()}) == contract


def test_mlflow_uris_are_set_only_inside_the_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from engine.tracking import mlflow_uris

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:///elsewhere.db")
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with mlflow_uris(uri):
        assert mlflow.get_tracking_uri() == uri == mlflow.get_registry_uri() == os.environ["MLFLOW_TRACKING_URI"]
    assert mlflow.get_tracking_uri() == before
    assert "MLFLOW_TRACKING_URI" not in os.environ and os.environ["MLFLOW_REGISTRY_URI"] == "sqlite:///elsewhere.db"


def test_a_trial_model_that_cannot_travel_is_refitted_not_an_error() -> None:
    import pickle

    import sklearn

    from engine.pipelines import _models

    assert _models.fitted_model(lambda: 0) is None  # not picklable: no model comes back
    assert _models.unpickled_model((sklearn.__version__, b"not a pickle")) is None  # unreadable: refit
    assert _models.unpickled_model(("0.0.1", pickle.dumps([1]))) is None  # another scikit-learn's pickle
    assert _models.unpickled_model(None) is None
    assert _models.unpickled_model(_models.fitted_model([1, 2])) == [1, 2]
    big = b"x" * (_models.MAX_FITTED_BYTES + 1)
    assert _models.fitted_model(big) is None  # over the size limit: refitted on the driver


def test_quick_polling_caps_hyperopts_sleeps_only_inside_the_block() -> None:
    import importlib
    import time

    from engine.pipelines._search_space import quick_polling

    fmin, spark = (importlib.import_module(f"hyperopt.{name}") for name in ("fmin", "spark"))
    assert fmin.time is time and spark.time is time  # what the cap relies on
    with quick_polling(0.2):
        for module in (fmin, spark):
            assert module.time is not time
            assert module.time.delay(1.0) == 0.2 and module.time.delay(0.05) == 0.05
            assert module.time.monotonic is time.monotonic  # everything else is the time module's
    assert fmin.time is time and spark.time is time
    with pytest.raises(RuntimeError), quick_polling(0.2):
        raise RuntimeError("a failing search")
    assert fmin.time is time and spark.time is time  # restored after an error too
