"""Batch inference: score a spine of keys and timestamps with any registered model; get a DataFrame.

::

    scored = score_batch(spark, "models:/alarm@champion", spine, store=fs)            # a DataFrame
    scored = score_batch(spark, "models:/alarm@champion", spine, store=fs,
                         output=f"{fs.root}/predictions/alarm", batch_id="b1", scored_at=now)
    scored.score_result.delta_version                                              # what was written

``score_batch`` reads the feature view reference from the model's MLmodel metadata, looks every
feature up as of each spine row's time through the same :meth:`FeatureView.batch_data` path that
built the training data (no training/serving skew), applies the same on-demand functions, and
scores in one distributed plan, nothing collected to the driver:

* Spark ML models (``flavor: spark``): ``mlflow.spark.load_model`` -> ``PipelineModel.transform``
  on the executors -- JVM only, no Python UDF;
* scikit-learn models (``sklearn``): a pandas UDF over Arrow batches that calls the estimator's
  pyfunc method (``predict_proba`` for classifiers) directly -- the estimator loaded once on the
  driver and shipped with the UDF, class probabilities returned as columns, not per-row arrays;
* other Python models (``pyfunc``): ``mlflow.pyfunc.spark_udf`` -- Arrow batches, the model
  loaded once per Python worker and reused across batches.

The returned DataFrame has the spine's key and time columns (plus ``passthrough`` columns), every
feature of the view (excluded ones too, for audit), the predictions and ``model_name`` /
``model_version``. Predictions: ``prediction`` (the predicted class, of the label's type, or the
predicted value for regression); classification adds ``probabilities`` (array of P(class), in the
order of the model's ``classes``) and, binary, ``probability`` (P of the positive class, the
greater of the two class values, e.g. 1 or True).

Writing is optional: with ``output``, ``batch_id`` and ``scored_at`` the batch goes to a Delta
table partitioned by scoring date in ONE commit (re-scoring a batch id replaces exactly that
batch), its lineage (model -> predictions table version) is recorded in the view's store, and the
returned DataFrame is the batch as written, read back at that Delta version, with the write's
:class:`ScoreResult` as its ``score_result`` attribute.

Every check runs before any Spark job: the model URI, the registered version or alias, the model's
feature view and features (still in the store), the spine's columns; with ``output`` also the
batch id, ``scored_at`` and a non-empty batch (one small job), before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from engine.errors import ColumnNotFoundError, InvalidArgumentError
from engine.pipelines._resolve import ResolvedModel, model_feature_view, resolve_model

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from engine.store.feature_store import FeatureStore

__all__ = ["PREDICTION", "PROBABILITIES", "PROBABILITY", "ResolvedModel", "ScoreResult", "predict", "resolve_model",
           "score_batch"]

log = logging.getLogger(__name__)

PREDICTION = "prediction"
PROBABILITIES = "probabilities"
PROBABILITY = "probability"
MAX_PLAN_MODEL_BYTES = 64 * 2**20  # a bigger sklearn model goes through MLflow's UDF on Spark Connect


@dataclass(frozen=True)
class ScoreResult:
    """What one written batch is: its rows, table and Delta version, and the model."""

    batch_id: str
    rows: int
    output: str
    delta_version: int
    model_name: str
    model_version: int
    features: tuple[str, ...]


def score_batch(
    spark: SparkSession,
    model_uri: str,
    spine: DataFrame,
    *,
    store: FeatureStore | None = None,
    output: str | None = None,
    batch_id: str | None = None,
    scored_at: datetime | None = None,
    as_of: datetime | None = None,
    passthrough: Sequence[str] | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> DataFrame:
    """Score ``spine`` (keys + timestamps [+ ``passthrough`` columns]) with ``model_uri``
    (``models:/name@alias`` or ``models:/name/version``) and return the scored DataFrame.

    ``store``: the feature store of the model's view (default: the store root recorded in the
    model) and the source of the MLflow URIs; ``tracking_uri`` / ``registry_uri`` override them.
    ``as_of`` reads the feature groups as they were at that instant (Delta time travel); by default
    their current state. ``output`` + ``batch_id`` + ``scored_at`` (an explicit instant: no hidden
    clock; it sets the ``scoring_date`` partition) write the batch: see the module docstring.
    """
    from pyspark.sql import functions as F

    from engine.temporal.ranges import to_utc

    writing = _check_write_arguments(output, batch_id, scored_at)
    if as_of is not None:
        as_of = to_utc(as_of, argument="as_of")
    if passthrough is not None and (isinstance(passthrough, str) or not all(isinstance(c, str) for c in passthrough)):
        raise InvalidArgumentError(argument="passthrough", expected="a list of spine column names", found=repr(passthrough))
    model = resolve_model(model_uri, tracking_uri=tracking_uri, registry_uri=registry_uri, store=store)
    view = model_feature_view(spark, model, store)
    keep = list(dict.fromkeys([*view.spine_columns, *(passthrough or [])]))
    for column in keep:
        if column not in spine.columns:
            raise ColumnNotFoundError(argument="spine", column=column, side="spine", available=spine.columns,
                                      hint=f"Model {model.uri} looks features up by {view.spine_columns}.")
    if writing and spine.isEmpty():
        raise InvalidArgumentError(argument="spine", expected="at least one row to score", found="an empty batch")

    frame = view.batch_data(spine.select(*[F.col(_q(c)) for c in keep]), as_of_timestamp=as_of)
    scored = predict(spark, model, frame)
    outputs = [c for c in (PREDICTION, PROBABILITIES, PROBABILITY) if c in scored.columns]
    result = scored.select(
        *[F.col(_q(c)) for c in keep], *[F.col(_q(c)) for c in view.feature_names if c not in keep], *outputs,
        F.lit(model.name).alias("model_name"), F.lit(model.version).alias("model_version"),
    )
    if not writing:
        return result
    return _write(spark, result, model=model, view=view, output=str(output), batch_id=str(batch_id),
                  scored_at=cast(datetime, scored_at), as_of=as_of)  # all three checked above


def predict(spark: SparkSession, model: ResolvedModel, frame: DataFrame, features: Sequence[str] | None = None) -> DataFrame:
    """``frame`` + the model's prediction columns (see the module docstring), scored on the
    executors: Spark ML models by ``transform``, sklearn models by a pandas UDF, other Python
    models by ``mlflow.pyfunc.spark_udf``.
    The model reads its own inputs (``features``, if given, must be exactly those)."""
    from pyspark.sql import functions as F

    contract = model.contract
    if features is not None and list(features) != list(contract.features):
        raise InvalidArgumentError(argument="features", expected=f"the model's inputs {list(contract.features)}",
                                   found=list(features), hint="Leave it out: the model knows its inputs.")
    features = list(contract.features)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ColumnNotFoundError(argument="frame", column=missing[0], side="frame", available=frame.columns,
                                  hint=f"Model {model.uri} reads {features}.")
    from engine.tracking import mlflow_uris, resolve_uris

    classes = contract.classes or []
    with mlflow_uris(*resolve_uris(model.tracking_uri or None, model.registry_uri or None)):  # MLflow's loaders
        if contract.flavor == "spark":
            probabilities, index, value, transformed = _spark_outputs(model, frame)
        else:
            outputs = _sklearn_outputs(spark, model, frame, features)
            if outputs is None:
                outputs = _python_outputs(spark, model, frame, features)
            probabilities, index, value, transformed = outputs
    columns = [F.col(_q(c)) for c in frame.columns if c not in (PREDICTION, PROBABILITIES, PROBABILITY)]
    if not contract.is_classifier:
        return transformed.select(*columns, value.cast("double").alias(PREDICTION))
    labels = F.array(*[F.lit(c) for c in classes])
    out = [F.element_at(labels, index + 1).alias(PREDICTION), probabilities.alias(PROBABILITIES)]
    if contract.task == "binary":
        out.append(F.element_at(probabilities, 2).alias(PROBABILITY))
    return transformed.select(*columns, *out)


def _spark_outputs(model: ResolvedModel, frame: DataFrame) -> tuple[Column | None, Column | None, Column | None, DataFrame]:
    """Probabilities (array), predicted class index (0-based int) and value columns of a Spark ML model."""
    import mlflow
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    contract = model.contract
    transformed = mlflow.spark.load_model(model.download_uri).transform(frame)
    if not contract.is_classifier:
        return None, None, F.col(_q(contract.spark_prediction or PREDICTION)), transformed
    probabilities = vector_to_array(F.col(_q(contract.spark_probability or "probability")))
    if contract.spark_prediction:
        index = F.col(_q(contract.spark_prediction)).cast("int")
    else:
        index = F.array_position(probabilities, F.array_max(probabilities)).cast("int") - 1
    tmp_prob, tmp_index = "__ff_scored_probabilities", "__ff_scored_index"
    transformed = transformed.withColumn(tmp_prob, probabilities).withColumn(tmp_index, index)
    return F.col(tmp_prob), F.col(tmp_index), None, transformed


def _sklearn_outputs(spark: SparkSession, model: ResolvedModel, frame: DataFrame,
                     features: list[str]) -> tuple[Column | None, Column | None, Column | None, DataFrame] | None:
    """A scikit-learn model without MLflow's per-batch wrapper: the estimator is loaded once on
    the driver and shipped with the UDF (PySpark broadcasts a large one), and each Arrow batch
    goes straight to the method the model's pyfunc flavour names (``predict_fn``: ``predict_proba``
    for classifiers); class probabilities come back as one DOUBLE column per class, not as an
    array per row. The same numbers as ``mlflow.pyfunc.spark_udf``, about 3x faster. None (use
    :func:`_python_outputs`) for anything else, or for a model too big to send through Spark
    Connect in a plan."""
    import mlflow
    from pyspark.sql import functions as F

    from engine.pipelines._sklearn_run import model_inputs
    from engine.pipelines._sklearn_udf import sklearn_udf
    from engine.remote import is_remote

    flavors = mlflow.models.Model.load(model.download_uri).flavors
    pyfunc = flavors.get("python_function") or {}
    if "sklearn" not in flavors or pyfunc.get("loader_module") != "mlflow.sklearn":
        return None
    estimator = mlflow.sklearn.load_model(model.download_uri)
    if is_remote(spark):
        import cloudpickle

        if len(cloudpickle.dumps(estimator)) > MAX_PLAN_MODEL_BYTES:
            return None
    contract = model.contract
    kinds = {f: contract.input_types.get(f, "double") for f in features}
    method = str(pyfunc.get("predict_fn") or "predict")
    width = len(contract.classes or []) if contract.is_classifier else 0
    udf = sklearn_udf(estimator, method, kinds, width, model.uri)
    tmp = "__ff_scored_output"
    transformed = frame.withColumn(tmp, udf(F.struct(*model_inputs(features, kinds))))
    if not contract.is_classifier:
        return None, None, F.col(tmp), transformed
    probabilities = F.array(*[F.col(f"{tmp}.p{i}") for i in range(width)])
    index = F.array_position(probabilities, F.array_max(probabilities)).cast("int") - 1
    return probabilities, index, None, transformed


def _python_outputs(spark: SparkSession, model: ResolvedModel, frame: DataFrame,
                    features: list[str]) -> tuple[Column | None, Column | None, Column | None, DataFrame]:
    """The same for a Python model, through ``mlflow.pyfunc.spark_udf`` (Arrow batches, the model
    loaded once per worker). Inputs as at training: numbers DOUBLE, strings STRING."""
    import mlflow
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from engine.pipelines._sklearn_run import model_inputs

    contract = model.contract
    kinds = {f: contract.input_types.get(f, "double") for f in features}
    result_type = T.ArrayType(T.DoubleType()) if contract.is_classifier else T.DoubleType()
    udf = mlflow.pyfunc.spark_udf(spark, model.download_uri, result_type=result_type, env_manager="local")
    tmp = "__ff_scored_output"
    transformed = frame.withColumn(tmp, udf(F.struct(*model_inputs(features, kinds))))
    if not contract.is_classifier:
        return None, None, F.col(tmp), transformed
    probabilities = F.col(tmp)
    index = F.array_position(probabilities, F.array_max(probabilities)).cast("int") - 1
    return probabilities, index, None, transformed


def _check_write_arguments(output: str | None, batch_id: str | None, scored_at: datetime | None) -> bool:
    from engine.store.names import check_name

    given = {"output": output, "batch_id": batch_id, "scored_at": scored_at}
    if all(v is None for v in given.values()):
        return False
    if batch_id is not None:
        check_name(batch_id, argument="batch_id")
    absent = [k for k, v in given.items() if v is None]
    if absent:
        raise InvalidArgumentError(argument=absent[0], expected="output, batch_id and scored_at together (to write)",
                                   found=f"{sorted(k for k, v in given.items() if v is not None)} without {absent}")
    if not isinstance(output, str) or not output.strip():
        raise InvalidArgumentError(argument="output", expected="a Delta table path", found=repr(output))
    from engine.temporal.ranges import to_utc

    to_utc(scored_at, argument="scored_at")  # naive or not a datetime: refused now, not after the scoring
    return True


def _write(spark: SparkSession, scored: DataFrame, *, model: ResolvedModel, view: Any, output: str, batch_id: str,
           scored_at: datetime, as_of: datetime | None) -> DataFrame:
    """One Delta commit replacing batch ``batch_id``; lineage; the batch read back at that version."""
    from pyspark.sql import functions as F

    from engine.store import delta
    from engine.store._group_commits import rows_written
    from engine.store.registry import Node
    from engine.temporal.ranges import to_utc

    scored_at = to_utc(scored_at, argument="scored_at")
    frame = scored.select(
        "*", F.lit(batch_id).alias("batch_id"), F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(scored_at.date()).alias("scoring_date"),
    )
    delta.create_table(spark, output, frame.schema, partition_by=["scoring_date"], exist_ok=True)
    version = delta.replace_where(spark, output, frame, column="batch_id", value=batch_id)
    written = delta.read(spark, output, version=version).where(F.col("batch_id") == batch_id)
    rows = rows_written(spark, output, version, otherwise=written)  # the batch is exactly what this commit wrote
    view.store.registry.record_lineage(
        Node("model", model.name, model.version), Node("predictions", output, version),
        properties={"batch_id": batch_id, "rows": rows, "as_of": None if as_of is None else as_of.isoformat()},
        new=True,  # the predictions version was committed just now
    )
    log.info("scored batch %s: %d rows with %s -> %s (Delta v%d)", batch_id, rows, model.uri, output, version)
    written.score_result = ScoreResult(  # type: ignore[attr-defined]
        batch_id=batch_id, rows=rows, output=output, delta_version=version, model_name=model.name,
        model_version=model.version, features=tuple(model.contract.features),
    )
    return written


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
