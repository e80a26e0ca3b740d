"""Delta table maintenance: compaction (``OPTIMIZE``) and file clean-up (``VACUUM``), each one
commit or none; part of :mod:`engine.store.delta`'s API (re-exported there)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError
from engine.store._commit import require_table as _require_table
from engine.store._commit import retry as _retry
from engine.store._delta_sql import delta_table_api

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["optimize", "vacuum"]


def optimize(spark: SparkSession, path: str) -> dict[str, Any]:
    """Compact the table's small files (``OPTIMIZE``) in one commit; return Delta's metrics
    (``numFilesAdded``, ``numFilesRemoved``, ...). Reads at any version are unchanged: only the
    file layout of the new version differs (old files stay until :func:`vacuum`)."""
    DeltaTable = delta_table_api(spark)  # noqa: N806 - Delta's own class, or its SQL twin on Spark Connect

    _require_table(spark, path)
    result = _retry(lambda: DeltaTable.forPath(spark, str(path)).optimize().executeCompaction(), target=str(path))
    metrics = result.select("metrics").first()
    return metrics["metrics"].asDict(recursive=True) if metrics else {}


def vacuum(spark: SparkSession, path: str, *, retention: timedelta) -> None:
    """``VACUUM``: delete files no version newer than ``now - retention`` needs.

    ``retention`` is rounded UP to whole hours (Delta rounds hours to a whole number: 20 minutes
    would become 0). Time travel to a version older than the retention may fail afterwards. When
    the session keeps ``spark.databricks.delta.retentionDurationCheck.enabled`` on and Delta refuses
    a short retention, that is an :class:`InvalidArgumentError` (no session setting is changed).
    """
    DeltaTable = delta_table_api(spark)  # noqa: N806 - Delta's own class, or its SQL twin on Spark Connect

    _require_table(spark, path)
    if not isinstance(retention, timedelta) or retention < timedelta(0):
        raise InvalidArgumentError(argument="retention", expected="a timedelta >= 0", found=repr(retention))
    try:
        DeltaTable.forPath(spark, str(path)).vacuum(float(math.ceil(retention / timedelta(hours=1))))
    except Exception as err:
        if "retentionDurationCheck" in str(err) or "DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT" in str(err):
            raise InvalidArgumentError(
                argument="retention", expected="at least the table's delta.deletedFileRetentionDuration (7 days by default)",
                found=repr(retention), hint=(
                    "Shorter retentions need spark.databricks.delta.retentionDurationCheck.enabled=false "
                    "in the session (and no concurrent reader of older versions)."
                ),
            ) from None
        raise
