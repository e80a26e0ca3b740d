"""Batch inference: score a spine of keys and timestamps with a registered model.

``score_batch(spark, "models:/flight_delay@champion", spine, output=..., batch_id=..., scored_at=...)``
reads the feature view reference from the model's MLmodel metadata, looks every feature up as of
each spine row's time through the same :meth:`FeatureView.batch_data` path that built the training
data (no training/serving skew), applies the same on-demand functions, and scores on the
executors with ``mlflow.pyfunc.spark_udf`` -- one distributed plan, nothing collected to the driver.

Predictions go to a Delta table partitioned by scoring date, in one commit per batch; re-scoring
a batch id replaces exactly that batch. Every check (model URI, model exists and has a view,
spine columns, features still in their groups, non-empty batch) runs before anything is written.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.errors import ColumnNotFoundError, InvalidArgumentError, NotFoundError
from engine.store import delta
from engine.store.names import check_name
from engine.store.registry import Node
from engine.temporal.ranges import to_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.store.feature_view import FeatureView

__all__ = ["ResolvedModel", "ScoreResult", "predict", "resolve_model", "score_batch"]

log = logging.getLogger(__name__)

PREDICTION = "prediction"
_URI = re.compile(r"^models:/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)(?:@(?P<alias>[A-Za-z0-9_\-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    version: int
    uri: str  # models:/<name>/<version>
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ScoreResult:
    batch_id: str
    rows: int
    output: str
    delta_version: int
    model_name: str
    model_version: int
    features: tuple[str, ...]


def resolve_model(model_uri: str) -> ResolvedModel:
    """``models:/name@alias`` or ``models:/name/version`` -> the version and its MLmodel metadata."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from engine.tracking import ensure_tracking

    match = _URI.match(model_uri) if isinstance(model_uri, str) else None
    if match is None:
        raise InvalidArgumentError(
            argument="model_uri", expected="'models:/<name>@<alias>' or 'models:/<name>/<version>'", found=repr(model_uri)
        )
    ensure_tracking()
    client = MlflowClient()
    name = match["name"]
    try:
        if match["alias"]:
            found = client.get_model_version_by_alias(name, match["alias"])
        else:
            found = client.get_model_version(name, match["version"])
    except MlflowException as err:
        raise NotFoundError(kind="model", name=model_uri, hint=str(err).splitlines()[0][:200]) from None
    uri = f"models:/{name}/{found.version}"
    metadata = mlflow.models.get_model_info(uri).metadata or {}
    if "feature_view" not in metadata:
        raise NotFoundError(
            kind="feature view reference in model", name=uri,
            hint="Score models trained with engine.pipelines.view_training (they carry their feature view).",
        )
    return ResolvedModel(name=name, version=int(found.version), uri=uri, metadata=dict(metadata))


def model_feature_view(spark: SparkSession, model: ResolvedModel) -> FeatureView:
    from engine.store.feature_store import FeatureStore

    ref = model.metadata["feature_view"]
    return FeatureStore(spark, ref["store_root"]).get_feature_view(ref["name"], int(ref["version"]))


def score_batch(
    spark: SparkSession,
    model_uri: str,
    spine: DataFrame,
    *,
    output: str,
    batch_id: str,
    scored_at: datetime,
    as_of: datetime | None = None,
    passthrough: list[str] | None = None,
) -> ScoreResult:
    """Score ``spine`` (keys + timestamps [+ ``passthrough`` columns]) and write the predictions.

    ``as_of`` reads the feature groups as they were at that instant (Delta time travel);
    by default their current state. ``scored_at`` (an explicit instant: no hidden clock) sets
    the ``scoring_date`` partition. Returns what was written.
    """
    from pyspark.sql import functions as F

    check_name(batch_id, argument="batch_id")
    scored_at = to_utc(scored_at, argument="scored_at")
    if as_of is not None:
        as_of = to_utc(as_of, argument="as_of")
    model = resolve_model(model_uri)
    view = model_feature_view(spark, model)
    features = view.feature_names  # raises if a feature no longer exists in its group
    expected = list(model.metadata.get("features") or features)
    if expected != features:
        raise InvalidArgumentError(
            argument="model_uri", expected=f"a model trained on the view's features {features}", found=expected
        )
    keep = [*view.spine_columns, *(passthrough or [])]
    for column in keep:
        if column not in spine.columns:
            raise ColumnNotFoundError(argument="spine", column=column, side="spine", available=spine.columns,
                                      hint=f"Model {model.uri} looks features up by {view.spine_columns}.")
    if spine.isEmpty():
        raise InvalidArgumentError(argument="spine", expected="at least one row to score", found="an empty batch")

    frame = view.batch_data(spine.select(*[F.col(_q(c)) for c in dict.fromkeys(keep)]), as_of_timestamp=as_of)
    scored = predict(spark, model, frame, features).select(
        *[F.col(_q(c)) for c in dict.fromkeys(keep)], *[F.col(_q(c)) for c in features], PREDICTION,
        F.lit(model.name).alias("model_name"), F.lit(model.version).alias("model_version"),
        F.lit(batch_id).alias("batch_id"), F.lit(scored_at).cast("timestamp").alias("scored_at"),
        F.lit(scored_at.date()).alias("scoring_date"),
    )
    delta.create_table(spark, output, scored.schema, partition_by=["scoring_date"], exist_ok=True)
    version = delta.replace_where(spark, output, scored, column="batch_id", value=batch_id)
    rows = delta.read(spark, output, version=version).where(F.col("batch_id") == batch_id).count()
    from engine.store.feature_store import FeatureStore

    FeatureStore(spark, view.store.root).registry.record_lineage(
        Node("model", model.name, model.version), Node("predictions", output, version),
        properties={"batch_id": batch_id, "rows": rows, "as_of": None if as_of is None else as_of.isoformat()},
    )
    log.info("scored batch %s: %d rows with %s -> %s (Delta v%d)", batch_id, rows, model.uri, output, version)
    return ScoreResult(batch_id=batch_id, rows=rows, output=output, delta_version=version, model_name=model.name,
                       model_version=model.version, features=tuple(features))


def predict(spark: SparkSession, model: ResolvedModel, frame: DataFrame, features: list[str]) -> DataFrame:
    """``frame`` + a ``prediction`` column = P(label = 1), scored on the executors."""
    import mlflow
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    udf = mlflow.pyfunc.spark_udf(spark, model.uri, result_type=T.ArrayType(T.DoubleType()), env_manager="local")
    inputs = F.struct(*[F.col(_q(c)).cast("double").alias(c) for c in features])
    return frame.withColumn(PREDICTION, udf(inputs)[1].cast(T.DoubleType()))


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
