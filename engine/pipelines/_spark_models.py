"""Spark ML families: preprocessing fitted once, one trial = one distributed fit from the driver.

The preprocessing casts numbers to double and imputes the median, indexes STRING features
(``StringIndexer``, unknown and NULL values in an extra bucket; one-hot encoded for the linear
models, used as categorical splits by the trees), and assembles one vector. The label is the
index of its class in the sorted train classes (classification) or a double (regression). The
final model is ONE ``PipelineModel`` on the raw feature columns: preprocessing + the fitted
estimator, writing ``PREDICTION`` (class index or value) and, for classifiers, ``PROBABILITY``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import Column, DataFrame

__all__ = ["LABEL_COL", "PREDICTION", "PROBABILITY", "build_spark", "spark_final_model", "spark_prepare", "spark_trial"]

FEATURES_COL = "__ff_features"
LABEL_COL = "__ff_label"
PREDICTION = "__ff_prediction"
PROBABILITY = "__ff_probability"
RAW = "__ff_raw"
_EPS = 1e-15


def label_index(label: str, task: str, classes: Sequence[Any] | None, dtype: Any) -> Column:
    """The label as Spark ML wants it: the class index (0-based, double) or the value (double)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    column = F.col(_q(label))
    if task == "regression":
        return column.cast("double").alias(LABEL_COL)
    values = F.array(*[F.lit(c) for c in classes or []]).cast(T.ArrayType(dtype))
    return (F.array_position(values, column) - 1).cast("double").alias(LABEL_COL)


def spark_prepare(train: DataFrame, validation: DataFrame, *, features: list[str], kinds: Mapping[str, str],
                  label: Column, one_hot: bool) -> tuple[PipelineModel, DataFrame, DataFrame]:
    """Fit the preprocessing once and return it with the cached, assembled train and validation
    sets every trial reuses."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import Imputer, OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler

    numeric = [f for f in features if kinds[f] != "string"]
    strings = [f for f in features if kinds[f] == "string"]
    casted = [f"__ff_x{i}" for i in range(len(numeric))]
    imputed = [f"__ff_imputed{i}" for i in range(len(numeric))]
    indexed = [f"__ff_idx{i}" for i in range(len(strings))]
    encoded = [f"__ff_onehot{i}" for i in range(len(strings))]
    stages: list[Any] = []
    if numeric:
        select = ", ".join(f"CAST({_q(f)} AS DOUBLE) AS `{c}`" for f, c in zip(numeric, casted, strict=True))
        stages += [SQLTransformer(statement=f"SELECT *, {select} FROM __THIS__"),
                   Imputer(strategy="median", inputCols=casted, outputCols=imputed)]
    if strings:
        stages.append(StringIndexer(inputCols=strings, outputCols=indexed, handleInvalid="keep",
                                    stringOrderType="alphabetAsc"))
        if one_hot:
            stages.append(OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"))
    vectors = imputed + (encoded if one_hot else indexed)
    stages.append(VectorAssembler(inputCols=vectors, outputCol=FEATURES_COL, handleInvalid="keep"))
    prep = Pipeline(stages=stages).fit(train)
    train_vec = prep.transform(train).select(FEATURES_COL, label).cache()
    val_vec = prep.transform(validation).select(FEATURES_COL, label).cache()
    return prep, train_vec, val_vec


def build_spark(family: str, params: Mapping[str, Any], *, seed: int, task: str = "binary") -> Any:
    from pyspark.ml.classification import GBTClassifier, LogisticRegression
    from pyspark.ml.regression import GBTRegressor, LinearRegression

    from engine.pipelines._models import accepted_params

    names = accepted_params(family, task)
    kwargs = {names[k]: v for k, v in params.items()}
    common = {"featuresCol": FEATURES_COL, "labelCol": LABEL_COL, "predictionCol": PREDICTION}
    if family == "spark_gbt" and task == "regression":
        return GBTRegressor(seed=seed, **common, **kwargs)
    if family == "spark_linear":
        return LinearRegression(**common, **kwargs)
    estimator = GBTClassifier(seed=seed, **common, **kwargs) if family == "spark_gbt" else LogisticRegression(
        **common, **kwargs)
    return estimator.setProbabilityCol(PROBABILITY).setRawPredictionCol(RAW)  # not constructor params of GBT


def spark_metrics(predictions: DataFrame, task: str, n_classes: int) -> dict[str, float]:
    """Validation metrics of a scored validation set, as Spark aggregations (see ``_metrics``)."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from engine.pipelines._metrics import f1_macro_from_counts

    y, pred = F.col(LABEL_COL), F.col(PREDICTION)
    if task == "regression":
        row = predictions.select(F.sqrt(F.avg((pred - y) * (pred - y))).alias("rmse"),
                                 F.avg(F.abs(pred - y)).alias("mae")).first()
        return {"rmse": float(row["rmse"]), "mae": float(row["mae"])}  # type: ignore[index]
    p_true = F.element_at(vector_to_array(PROBABILITY), (y + 1).cast("int"))
    loss_row = predictions.select(F.avg(-F.log(F.least(F.greatest(p_true, F.lit(_EPS)), F.lit(1 - _EPS)))).alias("ll"))
    loss = float(loss_row.first()["ll"])  # type: ignore[index]
    if task == "binary":
        auc = BinaryClassificationEvaluator(rawPredictionCol=PROBABILITY, labelCol=LABEL_COL,
                                            metricName="areaUnderROC").evaluate(predictions)
        return {"roc_auc": float(auc), "log_loss": loss}
    rows = predictions.groupBy(y.cast("int").alias("t"), pred.cast("int").alias("p")).count().collect()
    counts = {(r["t"], r["p"]): int(r["count"]) for r in rows}
    return {"f1_macro": f1_macro_from_counts(counts, n_classes), "log_loss": loss}


def spark_trial(
    params: dict[str, Any], *, train: DataFrame, validation: DataFrame, family: str, fixed: Mapping[str, Any],
    seed: int, metric: str, best: dict[str, Any], task: str = "binary", n_classes: int = 2,
) -> dict[str, Any]:
    """Hyperopt objective run on the driver: one distributed fit + evaluation. The best fitted
    model so far is kept in ``best["model"]`` so it need not be refitted."""
    from hyperopt import STATUS_FAIL, STATUS_OK

    from engine.pipelines._models import trial_ok

    start = time.time()
    try:
        model = build_spark(family, {**fixed, **params}, seed=seed, task=task).fit(train)
        metrics = spark_metrics(model.transform(validation), task, n_classes)
    except Exception as err:
        return {
            "status": STATUS_FAIL, "params": params, "error": f"{type(err).__name__}: {err}"[:2000],
            "start_time": start, "end_time": time.time(),
        }
    result = trial_ok(STATUS_OK, params, metrics, metric, start)
    if "loss" not in best or result["loss"] < best["loss"]:
        best.update(loss=result["loss"], model=model)
    return result


def spark_final_model(prep: PipelineModel, fitted: Any) -> PipelineModel:
    """Preprocessing + the chosen estimator: one PipelineModel on the raw feature columns."""
    from pyspark.ml import PipelineModel

    return PipelineModel(stages=[*prep.stages, fitted])


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
