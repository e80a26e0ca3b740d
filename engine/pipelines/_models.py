"""Model families: which parameters each accepts, how to build it, how one trial is evaluated.

Two kinds of family:

* ``sklearn_*`` run on one machine. The training and validation sets are collected to the driver
  once, broadcast once, and each hyperopt trial (a Spark task under ``SparkTrials``) fits one
  scikit-learn model on an executor: :func:`sklearn_trial`.
* ``spark_*`` run distributed. A Spark ML fit is itself a set of Spark jobs, which cannot be
  launched from inside an executor task, so trials run one after another on the driver (hyperopt
  ``Trials()``), each a distributed fit: :func:`spark_trial`.

Parameter names in configs are the estimator's own constructor names for scikit-learn
(``learning_rate``, ``C``) and the snake_case form of the Spark ML param for Spark
(``max_depth`` -> ``maxDepth``, ``reg_param`` -> ``regParam``).
"""

from __future__ import annotations

import inspect
import math
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

__all__ = [
    "FAMILIES",
    "SKLEARN_FAMILIES",
    "SPARK_FAMILIES",
    "accepted_params",
    "baseline_metrics",
    "binary_metrics",
    "build_sklearn",
    "sklearn_trial",
    "spark_prepare",
    "spark_trial",
]

SKLEARN_FAMILIES = ("sklearn_gbt", "sklearn_logreg")
SPARK_FAMILIES = ("spark_gbt", "spark_logreg")
FAMILIES = SKLEARN_FAMILIES + SPARK_FAMILIES

# Set by the engine, not by a search space: the seed comes from the config, logging from the caller.
_SKLEARN_RESERVED = frozenset({"random_state", "verbose"})
# The Spark ML params a search space may set (everything else -- column names, seed, weights --
# is wired by the engine). tests/spark/test_training.py checks each one against the estimator.
_SPARK_TUNABLE: dict[str, tuple[str, ...]] = {
    "spark_gbt": (
        "maxDepth", "maxBins", "minInstancesPerNode", "minInfoGain", "minWeightFractionPerNode",
        "maxIter", "stepSize", "subsamplingRate", "featureSubsetStrategy", "validationTol",
        "maxMemoryInMB", "cacheNodeIds", "checkpointInterval",
    ),
    "spark_logreg": (
        "maxIter", "regParam", "elasticNetParam", "tol", "fitIntercept", "standardization",
        "aggregationDepth", "maxBlockSizeInMB",
    ),
}  # fmt: skip

# Internal column names of the Spark pipeline (never clash with user columns in practice).
FEATURES_COL = "__ff_features"
LABEL_COL = "__ff_label"
_EPS = 1e-15


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def _sklearn_class(family: str) -> type:
    if family == "sklearn_gbt":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression


def accepted_params(family: str) -> dict[str, str]:
    """Config parameter name -> the estimator's parameter name, for one family."""
    if family in SKLEARN_FAMILIES:
        names = inspect.signature(_sklearn_class(family)).parameters
        return {n: n for n in names if n not in _SKLEARN_RESERVED}
    return {_snake(n): n for n in _SPARK_TUNABLE[family]}


# ---------------------------------------------------------------------------------------------
# metrics


def binary_metrics(y_true: np.ndarray, p_positive: np.ndarray) -> dict[str, float]:
    """ROC AUC and log loss of positive-class probabilities."""
    from sklearn.metrics import log_loss, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y_true, p_positive)),
        "log_loss": float(log_loss(y_true, p_positive, labels=[0, 1])),
    }


def baseline_metrics(train_positive_rate: float, validation_positive_rate: float) -> dict[str, float]:
    """Metrics on validation of the trivial model that always predicts the train positive rate."""
    p = min(max(train_positive_rate, _EPS), 1 - _EPS)
    v = validation_positive_rate
    return {"roc_auc": 0.5, "log_loss": -(v * math.log(p) + (1 - v) * math.log(1 - p))}


# ---------------------------------------------------------------------------------------------
# scikit-learn families: one trial = one fit inside one Spark task


def build_sklearn(family: str, params: Mapping[str, Any], *, seed: int) -> Any:
    """The unfitted estimator: gradient boosting as is (it handles NaN itself), logistic
    regression behind median imputation and standard scaling."""
    cls = _sklearn_class(family)
    if family == "sklearn_gbt":
        return cls(random_state=seed, **params)
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    clf = cls(random_state=seed, **{"max_iter": 1000, **params})
    return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler()), ("clf", clf)])


def sklearn_trial(
    params: dict[str, Any], *, data: Any, family: str, fixed: Mapping[str, Any], seed: int, metric: str,
    threads: int,
) -> dict[str, Any]:
    """Hyperopt objective run on an executor. ``data`` is a Broadcast of
    ``(x_train, y_train, x_validation, y_validation)``. A failing fit becomes a failed trial
    (with its error) rather than an exception, so the search goes on and the failure is logged."""
    from hyperopt import STATUS_FAIL, STATUS_OK

    start = time.time()
    try:
        from threadpoolctl import threadpool_limits

        x_train, y_train, x_val, y_val = data.value
        with threadpool_limits(limits=threads):
            model = build_sklearn(family, {**fixed, **params}, seed=seed)
            model.fit(x_train, y_train)
            proba = model.predict_proba(x_val)[:, 1]
        metrics = binary_metrics(y_val, proba)
    except Exception as err:
        return {
            "status": STATUS_FAIL, "params": params, "error": f"{type(err).__name__}: {err}"[:2000],
            "start_time": start, "end_time": time.time(),
        }
    return _ok(STATUS_OK, params, metrics, metric, start)


def _ok(status: str, params: dict[str, Any], metrics: dict[str, float], metric: str, start: float) -> dict[str, Any]:
    loss = -metrics[metric] if metric == "roc_auc" else metrics[metric]
    return {
        "status": status, "loss": loss, "params": params, "metrics": metrics,
        "start_time": start, "end_time": time.time(),
    }


# ---------------------------------------------------------------------------------------------
# Spark ML families: one trial = one distributed fit launched from the driver


def spark_prepare(train: DataFrame, validation: DataFrame, *, features: list[str], label: str) -> tuple[
    PipelineModel, DataFrame, DataFrame
]:
    """Fit the preprocessing once (cast to double, median imputation, vector assembly) and return
    it with the cached, assembled train and validation sets every trial reuses."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import Imputer, SQLTransformer, VectorAssembler
    from pyspark.sql import functions as F

    casted = [f"__ff_x{i}" for i in range(len(features))]
    imputed = [f"__ff_imputed{i}" for i in range(len(features))]
    select = ", ".join(f"CAST(`{f}` AS DOUBLE) AS `{c}`" for f, c in zip(features, casted, strict=True))
    stages = [
        SQLTransformer(statement=f"SELECT *, {select} FROM __THIS__"),
        Imputer(strategy="median", inputCols=casted, outputCols=imputed),
        VectorAssembler(inputCols=imputed, outputCol=FEATURES_COL, handleInvalid="keep"),
    ]
    prep = Pipeline(stages=stages).fit(train)
    label_double = F.col(f"`{label}`").cast("double").alias(LABEL_COL)
    train_vec = prep.transform(train).select(FEATURES_COL, label_double).cache()
    val_vec = prep.transform(validation).select(FEATURES_COL, label_double).cache()
    return prep, train_vec, val_vec


def build_spark(family: str, params: Mapping[str, Any], *, seed: int) -> Any:
    from pyspark.ml.classification import GBTClassifier, LogisticRegression

    names = accepted_params(family)
    kwargs = {names[k]: v for k, v in params.items()}
    if family == "spark_gbt":
        return GBTClassifier(featuresCol=FEATURES_COL, labelCol=LABEL_COL, seed=seed, **kwargs)
    return LogisticRegression(featuresCol=FEATURES_COL, labelCol=LABEL_COL, **kwargs)


def spark_metrics(predictions: DataFrame) -> dict[str, float]:
    """ROC AUC (Spark's evaluator) and log loss (one aggregation) of a scored validation set."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    auc = BinaryClassificationEvaluator(
        rawPredictionCol="probability", labelCol=LABEL_COL, metricName="areaUnderROC"
    ).evaluate(predictions)
    p = F.least(F.greatest(vector_to_array("probability")[1], F.lit(_EPS)), F.lit(1 - _EPS))
    y = F.col(LABEL_COL)
    loss = predictions.select(F.avg(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("ll")).first()
    return {"roc_auc": float(auc), "log_loss": float(loss["ll"])}  # type: ignore[index]


def spark_trial(
    params: dict[str, Any], *, train: DataFrame, validation: DataFrame, family: str, fixed: Mapping[str, Any],
    seed: int, metric: str, best: dict[str, Any],
) -> dict[str, Any]:
    """Hyperopt objective run on the driver: one distributed fit + evaluation. The best fitted
    model so far is kept in ``best["model"]`` so it need not be refitted."""
    from hyperopt import STATUS_FAIL, STATUS_OK

    start = time.time()
    try:
        model = build_spark(family, {**fixed, **params}, seed=seed).fit(train)
        metrics = spark_metrics(model.transform(validation))
    except Exception as err:
        return {
            "status": STATUS_FAIL, "params": params, "error": f"{type(err).__name__}: {err}"[:2000],
            "start_time": start, "end_time": time.time(),
        }
    result = _ok(STATUS_OK, params, metrics, metric, start)
    if "loss" not in best or result["loss"] < best["loss"]:
        best.update(loss=result["loss"], model=model)
    return result


def spark_final_model(prep: PipelineModel, classifier_model: Any) -> PipelineModel:
    """Preprocessing + the chosen classifier, with the positive-class probability vector written
    to ``prediction`` (what ``mlflow.spark``'s pyfunc returns, like sklearn's predict_proba)."""
    from pyspark.ml import PipelineModel

    scorer = classifier_model.copy()
    scorer.setPredictionCol("")
    scorer.setProbabilityCol("prediction")
    return PipelineModel(stages=[*prep.stages, scorer])
