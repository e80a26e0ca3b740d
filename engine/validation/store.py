"""Validation reports as rows of one Delta table (append-only, one commit per report).

Columns: ``target`` (e.g. ``weather_hourly@v1``), ``target_version`` (the target's Delta version
the report belongs to, or NULL), ``suite``, ``policy``, ``success``, ``evaluated_rows``,
``expectations``, ``failed_expectations``, ``quarantined_rows`` (NULL unless the batch was split),
``failures`` (one readable line per failed expectation), ``recorded_at`` (UTC) and ``report``
(the full :meth:`ValidationReport.to_json`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from engine.errors import InvalidArgumentError
from engine.validation.report import ValidationReport

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["list_reports", "report_schema", "store_report"]


def report_schema() -> StructType:
    from pyspark.sql.types import (
        ArrayType,
        BooleanType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    return StructType([
        StructField("target", StringType(), False),
        StructField("target_version", LongType(), True),
        StructField("suite", StringType(), False),
        StructField("policy", StringType(), False),
        StructField("success", BooleanType(), False),
        StructField("evaluated_rows", LongType(), False),
        StructField("expectations", IntegerType(), False),
        StructField("failed_expectations", IntegerType(), False),
        StructField("quarantined_rows", LongType(), True),
        StructField("failures", ArrayType(StringType(), True), False),
        StructField("recorded_at", TimestampType(), False),
        StructField("report", StringType(), False),
    ])


def store_report(
    spark: SparkSession,
    path: str,
    report: ValidationReport,
    *,
    target: str,
    target_version: int | None,
    recorded_at: datetime | None = None,
) -> int:
    """Append ``report`` to the Delta table at ``path`` (created on first use); return its version.

    ``recorded_at`` (a UTC-aware instant; naive values are refused) defaults to the current time:
    it is bookkeeping of the write, like Delta's own commit timestamp.
    """
    from engine.remote import is_remote
    from engine.store import _local_commit, delta

    if not isinstance(report, ValidationReport):
        raise InvalidArgumentError(argument="report", expected="a ValidationReport", found=type(report).__name__)
    if not isinstance(target, str) or not target:
        raise InvalidArgumentError(argument="target", expected="a non-empty name", found=repr(target))
    if target_version is not None and (isinstance(target_version, bool) or not isinstance(target_version, int)):
        raise InvalidArgumentError(argument="target_version", expected="an int or None", found=repr(target_version))
    if recorded_at is None:
        recorded_at = datetime.now(timezone.utc)
    elif not isinstance(recorded_at, datetime) or recorded_at.tzinfo is None:
        raise InvalidArgumentError(argument="recorded_at", expected="a timezone-aware datetime", found=repr(recorded_at))
    schema = report_schema()
    row = (
        target, target_version, report.suite, report.policy, report.success, report.evaluated_rows,
        len(report.results), len(report.failed), report.quarantined_rows, report.failures(),
        recorded_at.astimezone(timezone.utc), report.to_json(),
    )
    if not is_remote(spark):  # an existing local table: one commit without a Spark job
        written = _local_commit.append(spark, path, [dict(zip(schema.fieldNames(), row, strict=True))], schema)
        if written is not None:
            return written
    delta.create_table(spark, path, schema, exist_ok=True, comment="engine.validation reports")
    return delta.append(spark, path, spark.createDataFrame([row], schema))


def list_reports(spark: SparkSession, path: str, *, target: str | None = None) -> DataFrame:
    """The stored reports (all, or those of ``target``), oldest first.

    Raises :class:`~engine.errors.NotFoundError` when no report was ever stored at ``path``.
    """
    from pyspark.sql import functions as F

    from engine.store import delta

    frame = delta.read(spark, path)
    if target is not None:
        frame = frame.where(F.col("target") == F.lit(target))
    return frame.orderBy("recorded_at", "target")
