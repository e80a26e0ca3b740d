"""The tables a feature store owns besides its groups -- the registry's, the validation reports,
the pipelines' progress log: created on first use, appended or upserted a few rows at a time,
read by equality filters. On a local store both go without a Spark job
(:mod:`engine.store._local_commit`, :mod:`engine.store._local_delta`); elsewhere, or wherever only
Spark can judge, through Spark."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.store import _local_commit, _local_delta, delta

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["ensure_table", "select_rows", "upsert_frame", "write_rows"]

log = logging.getLogger("engine.store.registry")


def ensure_table(spark: SparkSession, path: str, schema: str | StructType, *, comment: str | None = None) -> None:
    """Create an empty Delta table at ``path`` unless it exists (tolerating a concurrent creator)."""
    if delta.table_exists(spark, path):
        return
    if isinstance(schema, str):
        schema = spark.createDataFrame([], schema).schema
    try:
        delta.create_table(spark, path, schema, exist_ok=True, comment=comment)
    except Exception as err:  # another process created it between our check and our create
        if not delta.table_exists(spark, path):
            raise
        log.debug("%s was created concurrently: %s", path, err)


_SCHEMAS: dict[str, StructType] = {}


def _schema(spark: SparkSession, ddl: str) -> StructType:
    """The StructType of a DDL string (parsed by Spark once per process)."""
    if ddl not in _SCHEMAS:
        _SCHEMAS[ddl] = spark.createDataFrame([], ddl).schema
    return _SCHEMAS[ddl]


def write_rows(spark: SparkSession, path: str, ddl: str, rows: Sequence[Mapping[str, Any]], *,
               keys: Sequence[str] | None = None, comment: str | None = None) -> int | None:
    """Append ``rows`` to a table the store owns (created on first use, with ``comment``), or
    upsert them on ``keys``, in one commit; return its version (None: no rows). On a local store
    without a Spark job (:mod:`engine.store._local_commit`, milliseconds instead of 0.4-2 s);
    otherwise, or where only Spark can judge (a stored schema other than ``ddl``: Spark's error
    names it), through Spark."""
    from engine.remote import is_remote

    if not rows:
        return None
    root = None if is_remote(spark) else _local_delta.local_root(path)
    if root is not None:
        if not os.path.isdir(os.path.join(root, "_delta_log")):
            ensure_table(spark, path, ddl, comment=comment)  # the rows still committed without a MERGE
        schema = _schema(spark, ddl)
        written = (_local_commit.upsert(spark, path, rows, schema, keys) if keys
                   else _local_commit.append(spark, path, rows, schema))
        if written is not None:
            return written
    ensure_table(spark, path, ddl, comment=comment)
    frame = spark.createDataFrame([dict(r) for r in rows], ddl)
    if keys:
        return delta.upsert(spark, path, frame, keys=keys)
    return delta.append(spark, path, frame)


LOCAL_UPSERT_ROWS = 10_000  # rows of a DataFrame upserted without a Spark MERGE (collected as Arrow)


def upsert_frame(spark: SparkSession, path: str, frame: DataFrame, *, keys: Sequence[str], rows: int) -> None:
    """Upsert ``frame`` (``rows`` rows, each key once) on ``keys`` into a table the store owns,
    created on first use, in one commit: on a local store and up to :data:`LOCAL_UPSERT_ROWS`
    rows collected as Arrow and committed without a Spark job (a Spark MERGE costs 1-4 s on
    local[2], the first of a process the most); otherwise, or where only Spark can judge, a MERGE."""
    from engine.remote import is_remote

    ensure_table(spark, path, frame.schema)
    local = 0 < rows <= LOCAL_UPSERT_ROWS and not is_remote(spark)
    if local and _local_commit.upsert_arrow(spark, path, frame.toArrow, frame.schema, keys) is not None:
        return
    delta.upsert(spark, path, frame, keys=keys)


def select_rows(spark: SparkSession, path: str, where: Mapping[str, Any] | None = None,
                columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a table the store owns whose columns equal ``where``'s values (a list: any of
    them), as dicts of ``columns`` (all by default); none if no table is there. Read without a
    Spark job where the table is local (:mod:`engine.store._local_delta`, a few ms instead of
    0.2-0.5 s), else through Spark."""
    from engine.remote import is_remote

    where = dict(where or {})
    local = None if is_remote(spark) else _local_delta.read_current(path)
    if local is not None:
        return _local_delta.select(local, where, columns)
    from pyspark.sql import functions as F

    if not delta.table_exists(spark, path):
        return []
    frame = delta.read(spark, path)
    for column, value in where.items():
        frame = frame.where(F.col(column).isin(list(value)) if isinstance(value, list | tuple | set)
                            else F.col(column) == value)
    if columns is not None:
        frame = frame.select(*columns)
    return [r.asDict(recursive=True) for r in frame.collect()]
