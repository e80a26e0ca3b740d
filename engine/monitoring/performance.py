"""Realised model performance once the true labels of scored rows arrive.

:func:`realised_metrics` joins predictions to labels on the key columns and computes, per group
(e.g. per month or per batch), in one Spark job:

* ``rows``, ``positives``, ``positive_rate`` and ``mean_prediction``;
* ``roc_auc``, exactly (the Mann-Whitney form, ties counted half, which is what
  ``sklearn.metrics.roc_auc_score`` computes): rows are first reduced to one row per distinct
  score with its positive and negative counts, a running sum over the scores in order gives the
  negatives below each score, and ``sum(pos * (neg_below + neg_equal / 2)) / (P * N)``;
  ``None`` when a group has only one class;
* ``log_loss``: the mean of ``-(y ln p + (1 - y) ln(1 - p))`` with ``p`` clipped to
  ``[eps, 1 - eps]`` (float64 machine epsilon, as scikit-learn does).

Only one row per group reaches the driver. The running sum is a window per group ordered by
score, so each group's distinct scores are sorted in one task.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ColumnNotFoundError, ColumnTypeError, InvalidArgumentError
from engine.temporal.ranges import to_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["REALISED_TABLE_DDL", "read_realised", "realised_metrics", "write_realised"]

log = logging.getLogger(__name__)

REALISED_TABLE_DDL = (
    "model_name STRING, model_version STRING, evaluated_at TIMESTAMP, group_by STRING, group_value STRING, "
    "rows BIGINT, positives BIGINT, positive_rate DOUBLE, mean_prediction DOUBLE, roc_auc DOUBLE, log_loss DOUBLE"
)
_EPS = sys.float_info.epsilon
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


def realised_metrics(
    predictions: DataFrame,
    labels: DataFrame,
    *,
    on: Sequence[str],
    prediction: str,
    label: str,
    by: str | None = None,
) -> list[dict[str, Any]]:
    """Realised metrics of ``predictions`` (probabilities in [0, 1]) against ``labels`` (0/1 or
    boolean), inner-joined on ``on``, per value of ``by`` (a column of either side) or overall.

    Returns one dict per group, ordered by group: ``by``, ``group``, ``rows``, ``positives``,
    ``positive_rate``, ``mean_prediction``, ``roc_auc``, ``log_loss``; ``[]`` when no row has a
    label yet. Rows whose prediction or label is NULL are left out. Keys must be unique in
    ``labels`` (a duplicate counts a prediction twice).
    """
    from pyspark.sql import DataFrame, Window
    from pyspark.sql import functions as F

    for argument, frame in (("predictions", predictions), ("labels", labels)):
        if not isinstance(frame, DataFrame):
            raise InvalidArgumentError(argument=argument, expected="a Spark DataFrame", found=type(frame).__name__)
    keys = [on] if isinstance(on, str) else list(on) if isinstance(on, Sequence) else []
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise InvalidArgumentError(argument="on", expected="a non-empty list of key column names", found=repr(on))
    for argument, value in (("prediction", prediction), ("label", label)):
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(argument=argument, expected="a column name", found=repr(value))
    if prediction == label:
        raise InvalidArgumentError(argument="label", expected="a column other than the prediction's", found=repr(label))
    pred_types = {f.name: f.dataType.simpleString() for f in predictions.schema.fields}
    label_types = {f.name: f.dataType.simpleString() for f in labels.schema.fields}
    for key in keys:
        for side, types in (("predictions", pred_types), ("labels", label_types)):
            if key not in types:
                raise ColumnNotFoundError(argument="on", column=key, side=side, available=sorted(types))
    if prediction not in pred_types:
        raise ColumnNotFoundError(argument="prediction", column=prediction, side="predictions", available=sorted(pred_types))
    if label not in label_types:
        raise ColumnNotFoundError(argument="label", column=label, side="labels", available=sorted(label_types))
    if pred_types[prediction].split("(")[0] not in _NUMERIC:
        raise ColumnTypeError(argument="prediction", column=prediction, expected="a numeric probability", found=pred_types[prediction])
    if label_types[label].split("(")[0] not in (*_NUMERIC, "boolean"):
        raise ColumnTypeError(argument="label", column=label, expected="a 0/1 or boolean column", found=label_types[label])
    by_side = None
    if by is not None:
        if not isinstance(by, str) or not by:
            raise InvalidArgumentError(argument="by", expected="a column name or None", found=repr(by))
        by_side = "predictions" if by in pred_types else "labels" if by in label_types else None
        if by_side is None:
            raise ColumnNotFoundError(argument="by", column=by, side="predictions or labels", available=sorted({*pred_types, *label_types}))

    def quoted(name: str) -> Any:
        return F.col("`" + name.replace("`", "``") + "`")

    extra = [by] if by is not None and by not in keys else []
    left = predictions.select(*[quoted(k) for k in keys], quoted(prediction).alias("__p"), *[quoted(c) for c in extra if by_side == "predictions"])
    right = labels.select(*[quoted(k) for k in keys], quoted(label).alias("__y"), *[quoted(c) for c in extra if by_side == "labels"])
    group = quoted(by).cast("string") if by is not None else F.lit(None).cast("string")
    scored = (
        left.join(right, on=keys, how="inner")
        .select(group.alias("g"), F.col("__p").cast("double").alias("p"), F.col("__y").cast("double").alias("y"))
        .where(F.col("p").isNotNull() & F.col("y").isNotNull())
    )
    per_score = scored.groupBy("g", "p").agg(
        F.sum(F.when(F.col("y") == 1, 1).otherwise(0)).alias("pos"),
        F.sum(F.when(F.col("y") == 0, 1).otherwise(0)).alias("neg"),
        F.sum(F.when((F.col("y") != 0) & (F.col("y") != 1), 1).otherwise(0)).alias("bad"),
    )
    below = Window.partitionBy("g").orderBy("p").rowsBetween(Window.unboundedPreceding, -1)
    clipped = F.least(F.greatest(F.col("p"), F.lit(_EPS)), F.lit(1 - _EPS))
    per_group = (
        per_score.withColumn("neg_below", F.coalesce(F.sum("neg").over(below), F.lit(0)))
        .groupBy("g")
        .agg(
            F.sum(F.col("pos") + F.col("neg")).alias("rows"), F.sum("pos").alias("positives"),
            F.sum("neg").alias("negatives"), F.sum("bad").alias("bad"),
            F.sum(F.col("pos") * (F.col("neg_below") + F.col("neg") / 2)).alias("auc_sum"),
            F.sum(-(F.col("pos") * F.log(clipped) + F.col("neg") * F.log(1 - clipped))).alias("loss_sum"),
            F.sum((F.col("pos") + F.col("neg")) * F.col("p")).alias("p_sum"),
            F.min("p").alias("p_min"), F.max("p").alias("p_max"),
        )
    )
    found = per_group.collect()
    bad = sum(int(r["bad"]) for r in found)
    if bad:
        raise InvalidArgumentError(
            argument="label", expected=f"column {label} holding 0/1 or true/false", found=f"{bad} row(s) with other values",
        )
    lows = [r["p_min"] for r in found if r["p_min"] is not None]
    highs = [r["p_max"] for r in found if r["p_max"] is not None]
    if (lows and min(lows) < 0) or (highs and max(highs) > 1):
        raise InvalidArgumentError(
            argument="prediction", expected=f"column {prediction} holding probabilities in [0, 1]",
            found=f"values from {min(lows)} to {max(highs)}",
        )
    out = []
    for r in sorted(found, key=lambda r: (r["g"] is None, r["g"] or "")):
        rows, positives, negatives = int(r["rows"]), int(r["positives"]), int(r["negatives"])
        out.append({
            "by": by, "group": r["g"], "rows": rows, "positives": positives,
            "positive_rate": positives / rows, "mean_prediction": float(r["p_sum"]) / rows,
            "roc_auc": float(r["auc_sum"]) / (positives * negatives) if positives and negatives else None,
            "log_loss": float(r["loss_sum"]) / rows,
        })
    if not out:
        log.warning("realised metrics: no prediction has a label yet")
    return out


def write_realised(
    spark: SparkSession,
    path: str | Path,
    metrics: Sequence[dict[str, Any]],
    *,
    model_name: str,
    model_version: str | int,
    evaluated_at: datetime,
) -> int:
    """Append ``metrics`` (from :func:`realised_metrics`) to the Delta table at ``path`` (created on
    first use) in one commit; return the table version. An empty ``metrics`` is an error."""
    from engine.store._owned_tables import write_rows

    if isinstance(metrics, dict) or not isinstance(metrics, Sequence) or not metrics:
        raise InvalidArgumentError(
            argument="metrics", expected="a non-empty list from realised_metrics", found=repr(metrics),
            hint="No labelled rows: nothing to write.",
        )
    if not isinstance(model_name, str) or not model_name.strip():
        raise InvalidArgumentError(argument="model_name", expected="a non-empty string", found=repr(model_name))
    if isinstance(model_version, bool) or not isinstance(model_version, (str, int)) or not str(model_version).strip():
        raise InvalidArgumentError(argument="model_version", expected="a version number or string", found=repr(model_version))
    when = to_utc(evaluated_at, argument="evaluated_at")
    fields = ("by", "group", "rows", "positives", "positive_rate", "mean_prediction", "roc_auc", "log_loss")
    rows = []
    for item in metrics:
        if not isinstance(item, dict) or any(k not in item for k in fields):
            raise InvalidArgumentError(argument="metrics", expected=f"dicts with keys {list(fields)}", found=repr(item))
        rows.append({
            "model_name": model_name, "model_version": str(model_version), "evaluated_at": when,
            "group_by": item["by"], "group_value": None if item["group"] is None else str(item["group"]),
            **{k: item[k] for k in fields[2:]},
        })
    version = write_rows(spark, str(path), REALISED_TABLE_DDL, rows, comment="Feature Factory realised model metrics")
    log.info("realised metrics of %s v%s (%d group(s)) -> %s v%d", model_name, model_version, len(rows), path, version)
    return version


def read_realised(spark: SparkSession, path: str | Path) -> DataFrame:
    """The realised-metrics table."""
    from engine.store import delta

    return delta.read(spark, str(path))
