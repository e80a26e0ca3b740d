"""Delta Lake I/O used by everything else: create, append, upsert, replace a time range, read
at a version or timestamp, history.

Every write is exactly one Delta commit, so a failure (or a kill) leaves the table at its previous
version. Arguments are checked before any Spark job: missing key columns, a data schema that does
not match the table, an empty or backwards range are :mod:`engine.errors` errors and nothing is
written. Writes that lose a race with a concurrent writer are retried a bounded number of times
(every write here is safe to repeat: the losing attempt committed nothing). Before a write the
log is replayed: a corrupt commit file is a ``CorruptTableError``, a file system refusing the write
a ``StorageError`` (see :mod:`engine.store._commit`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.errors import (
    AlreadyExistsError,
    ColumnNotFoundError,
    InvalidArgumentError,
)
from engine.store import _delta_log
from engine.store._commit import MAX_ATTEMPTS, check_log, created_concurrently, table_exists
from engine.store._commit import require_table as _require_table
from engine.store._commit import retry as _retry
from engine.store._delta_sql import delta_table_api
from engine.store._maintenance import optimize, vacuum
from engine.store._schema import check_schema
from engine.temporal.ranges import TimeRange, to_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = [
    "MAX_ATTEMPTS",
    "append",
    "check_log",
    "check_schema",
    "create_table",
    "current_version",
    "history",
    "optimize",
    "overwrite",
    "quote_identifier",
    "range_predicate",
    "read",
    "replace_range",
    "replace_where",
    "set_properties",
    "table_exists",
    "upsert",
    "vacuum",
    "write_table",
]

log = logging.getLogger(__name__)


def quote_identifier(name: str) -> str:
    """Backtick-quote a column name for Spark SQL (embedded backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def create_table(
    spark: SparkSession,
    path: str,
    schema: StructType,
    *,
    partition_by: Sequence[str] = (),
    properties: Mapping[str, str] | None = None,
    comment: str | None = None,
    exist_ok: bool = False,
) -> int:
    """Create an empty Delta table at ``path``; return its version (0).

    With ``exist_ok``, an existing table with the same column names and types is accepted as is
    and its current version returned; a different schema is a :class:`SchemaMismatchError`.
    """
    DeltaTable = delta_table_api(spark)  # noqa: N806 - Delta's own class, or its SQL twin on Spark Connect

    names = [f.name for f in schema.fields]
    for column in partition_by:
        if column not in names:
            raise ColumnNotFoundError(argument="partition_by", column=column, side="schema", available=names)
    if table_exists(spark, path):
        return _existing(spark, path, schema, exist_ok=exist_ok)
    from engine.store import _local_create

    made = _local_create.create(spark, str(path), schema, partition_by=partition_by, properties=properties,
                                comment=comment)
    if made is not None:  # a local table Delta's oldest protocol holds: version 0 written without a Spark job
        return 0 if made else _existing(spark, path, schema, exist_ok=exist_ok)
    builder = DeltaTable.create(spark).location(str(path)).addColumns(schema)
    if partition_by:
        builder = builder.partitionedBy(*partition_by)
    for key, value in (properties or {}).items():
        builder = builder.property(key, str(value))
    if comment:
        builder = builder.comment(comment)
    try:
        _retry(lambda: builder.execute(), target=str(path))
    except Exception as err:
        if not created_concurrently(spark, str(path), err):
            raise
        return _existing(spark, path, schema, exist_ok=exist_ok)  # as if the other creator had been first
    return current_version(spark, path)


def _existing(spark: SparkSession, path: str, schema: StructType, *, exist_ok: bool) -> int:
    if not exist_ok:
        raise AlreadyExistsError(kind="Delta table", name=str(path), hint="Pass exist_ok=True to reuse it.")
    check_schema(schema, read(spark, path).schema, target=str(path))
    return current_version(spark, path)


def write_table(spark: SparkSession, path: str, df: DataFrame, *, properties: Mapping[str, str] | None = None) -> int:
    """Create a new table at ``path`` holding ``df``, in exactly one commit (version 0).

    A table already at ``path`` (also one created concurrently) is an :class:`AlreadyExistsError`
    and is left untouched.
    """
    if table_exists(spark, path):
        raise AlreadyExistsError(kind="Delta table", name=str(path), hint="Write to a new path.")
    writer = df.write.format("delta").mode("error")  # = errorifexists; the Spark Connect client knows only this alias
    for key, value in (properties or {}).items():
        writer = writer.option(key, str(value))
    try:
        _retry(lambda: writer.save(str(path)), target=str(path))
    except Exception as err:
        if "DELTA_PATH_EXISTS" in str(err) or "ALREADY_EXISTS" in str(err):
            raise AlreadyExistsError(kind="Delta table", name=str(path), hint="Write to a new path.") from None
        raise
    latest = current_version(spark, path)
    if latest != 0:  # the single-commit guarantee, checked
        raise AlreadyExistsError(kind="Delta table", name=str(path),
                                 hint=f"Another writer committed to it at once (versions 0 to {latest}).")
    return 0


def set_properties(spark: SparkSession, path: str, properties: Mapping[str, str]) -> int:
    """Set table properties (``ALTER TABLE ... SET TBLPROPERTIES``) in one commit; return the version."""
    _require_table(spark, path, write=True)
    items = ", ".join(f"'{_sql_string(k)}' = '{_sql_string(str(v))}'" for k, v in properties.items())
    if not items:
        return current_version(spark, path)
    _retry(lambda: spark.sql(f"ALTER TABLE delta.{quote_identifier(str(path))} SET TBLPROPERTIES ({items})"),
           target=str(path))
    return current_version(spark, path)


def _sql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def append(spark: SparkSession, path: str, df: DataFrame, *, merge_schema: bool = False) -> int:
    """Append ``df`` to the table in one commit; return the new version."""
    _require_table(spark, path, write=True)
    check_schema(df.schema, read(spark, path).schema, target=str(path), allow_extra=merge_schema)
    writer = df.write.format("delta").mode("append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    _retry(lambda: writer.save(str(path)), target=str(path))
    return current_version(spark, path)


def overwrite(spark: SparkSession, path: str, df: DataFrame, *, replace_schema: bool = False) -> int:
    """Replace the whole table with ``df`` in one commit (creating it if missing); return the new
    version. The schema must match the table's unless ``replace_schema``; the old rows stay
    readable by time travel."""
    writer = df.write.format("delta").mode("overwrite")
    if table_exists(spark, path):
        if replace_schema:
            writer = writer.option("overwriteSchema", "true")
        else:
            check_schema(df.schema, read(spark, path).schema, target=str(path))
    _retry(lambda: writer.save(str(path)), target=str(path))
    return current_version(spark, path)


def upsert(
    spark: SparkSession,
    path: str,
    df: DataFrame,
    *,
    keys: Sequence[str],
    merge_schema: bool = False,
    log_checked: bool = False,
    within: tuple[str, datetime, datetime] | None = None,
) -> int:
    """MERGE ``df`` into the table on ``keys`` (NULL-safe equality) in one commit.

    Matching rows are replaced by the new ones, others inserted. ``df`` must not hold two rows
    with the same keys (Delta refuses the merge and nothing is written). ``log_checked``: the
    caller ran :func:`check_log` on this table in the same operation (it is not replayed twice).
    ``within=(column, least, greatest)``: ``column`` is one of ``keys`` and every row of ``df``
    has it in [least, greatest], so a stored row outside cannot match; the condition says so and
    Delta reads (and checks for conflicts) only the files whose statistics overlap the range,
    not the whole table.
    """
    DeltaTable = delta_table_api(spark)  # noqa: N806 - Delta's own class, or its SQL twin on Spark Connect

    _require_table(spark, path, write=not log_checked)
    if isinstance(keys, str) or not keys:
        raise InvalidArgumentError(argument="keys", expected="a non-empty list of column names", found=repr(keys))
    table_schema = read(spark, path).schema
    for key in keys:
        if key not in df.columns:
            raise ColumnNotFoundError(argument="keys", column=key, side="data", available=df.columns)
        if key not in table_schema.fieldNames():
            raise ColumnNotFoundError(argument="keys", column=key, side="table", available=table_schema.fieldNames())
    check_schema(df.schema, table_schema, target=str(path), allow_extra=merge_schema)
    condition = " AND ".join(f"t.{quote_identifier(k)} <=> s.{quote_identifier(k)}" for k in keys)
    if within is not None:
        column, least, greatest = within
        if column not in keys:
            raise InvalidArgumentError(argument="within", expected=f"a column of keys {list(keys)}", found=repr(column))
        condition += (f" AND t.{quote_identifier(column)} >= {_timestamp_literal(least)}"
                      f" AND t.{quote_identifier(column)} <= {_timestamp_literal(greatest)}")

    def run() -> None:
        builder = DeltaTable.forPath(spark, str(path)).alias("t").merge(df.alias("s"), condition)
        if merge_schema:  # per MERGE, not a session setting
            builder = builder.withSchemaEvolution()
        builder.whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()

    _retry(run, target=str(path))
    return current_version(spark, path)


def range_predicate(column: str, time_range: TimeRange) -> str:
    """``column >= start AND column < end`` as Spark SQL, built from typed instants only."""
    if not isinstance(time_range, TimeRange):
        raise InvalidArgumentError(argument="time_range", expected="a TimeRange", found=repr(time_range))
    start, end = _timestamp_literal(time_range.start), _timestamp_literal(time_range.end)
    return f"{quote_identifier(column)} >= {start} AND {quote_identifier(column)} < {end}"


def _timestamp_literal(instant: datetime) -> str:
    utc = to_utc(instant, argument="instant")
    return "TIMESTAMP '" + utc.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00:00'"


def replace_range(
    spark: SparkSession,
    path: str,
    df: DataFrame,
    *,
    column: str,
    time_range: TimeRange,
    log_checked: bool = False,
) -> int:
    """Replace exactly the rows with ``column`` in ``time_range`` by ``df``, in one commit.

    Idempotent: writing the same data for the same range twice gives the same table. Every row
    of ``df`` must lie inside the range (checked by Delta during the write; on a violation the
    commit is abandoned and the table is unchanged). ``log_checked`` as for :func:`upsert`.
    """
    from pyspark.sql.types import TimestampType

    _require_table(spark, path, write=not log_checked)
    table_schema = read(spark, path).schema
    if column not in table_schema.fieldNames():
        raise ColumnNotFoundError(argument="column", column=column, side="table", available=table_schema.fieldNames())
    if not isinstance(table_schema[column].dataType, TimestampType):
        raise InvalidArgumentError(
            argument="column", expected="a TIMESTAMP column (UTC instants)",
            found=f"{column} of type {table_schema[column].dataType.simpleString()}",
        )
    predicate = range_predicate(column, time_range)
    check_schema(df.schema, table_schema, target=str(path))
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    try:
        _retry(lambda: writer.save(str(path)), target=str(path))
    except Exception as err:
        if "replaceWhere" in str(err) or "DELTA_REPLACE_WHERE_MISMATCH" in str(err):
            raise InvalidArgumentError(
                argument="df", expected=f"only rows with {column} in {time_range}",
                found="rows outside the range", hint="Nothing was written.",
            ) from err
        raise
    return current_version(spark, path)


def replace_where(spark: SparkSession, path: str, df: DataFrame, *, column: str, value: str | int) -> int:
    """Replace exactly the rows with ``column == value`` by ``df`` (all of whose rows must have
    that value), in one commit. Idempotent; used to re-write one batch of predictions."""
    import re

    _require_table(spark, path, write=True)
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.:\-]{1,200}", value))
    ):
        raise InvalidArgumentError(
            argument="value", expected="an integer or a string of letters, digits, '_', '.', ':', '-'", found=repr(value)
        )
    table_schema = read(spark, path).schema
    if column not in table_schema.fieldNames():
        raise ColumnNotFoundError(argument="column", column=column, side="table", available=table_schema.fieldNames())
    check_schema(df.schema, table_schema, target=str(path))
    literal = str(value) if isinstance(value, int) else f"'{value}'"
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", f"{quote_identifier(column)} = {literal}")
    _retry(lambda: writer.save(str(path)), target=str(path))
    return current_version(spark, path)


def read(
    spark: SparkSession,
    path: str,
    *,
    version: int | None = None,
    timestamp: datetime | str | None = None,
) -> DataFrame:
    """Read the table, optionally as of a version or a timestamp (time travel)."""
    if version is not None and timestamp is not None:
        raise InvalidArgumentError(
            argument="version/timestamp", expected="at most one of them", found=f"version={version!r}, timestamp={timestamp!r}"
        )
    _require_table(spark, path)
    reader = spark.read.format("delta")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidArgumentError(argument="version", expected="an integer >= 0", found=repr(version))
        latest = current_version(spark, path)
        if version > latest:
            raise InvalidArgumentError(
                argument="version", expected=f"a version <= {latest} (the latest)", found=repr(version)
            )
        reader = reader.option("versionAsOf", version)
    if timestamp is not None:
        if isinstance(timestamp, datetime):
            timestamp = to_utc(timestamp, argument="timestamp").strftime("%Y-%m-%d %H:%M:%S.%f")
        reader = reader.option("timestampAsOf", str(timestamp))
    return reader.load(str(path))


def history(spark: SparkSession, path: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The table's commits, oldest first: version, timestamp, operation, parameters, metrics."""
    DeltaTable = delta_table_api(spark)  # noqa: N806 - Delta's own class, or its SQL twin on Spark Connect

    _require_table(spark, path)
    table = DeltaTable.forPath(spark, str(path))
    frame = table.history(limit) if limit else table.history()
    rows = frame.select("version", "timestamp", "operation", "operationParameters", "operationMetrics").collect()
    return sorted((r.asDict(recursive=True) for r in rows), key=lambda r: r["version"])


def current_version(spark: SparkSession, path: str) -> int:
    """The table's latest version (from Delta's cached log on classic sessions: no Spark job)."""
    version = _delta_log.latest_version(spark, path)
    if version is not None:
        return version
    DeltaTable = delta_table_api(spark)  # noqa: N806 - Delta's own class, or its SQL twin on Spark Connect

    row = DeltaTable.forPath(spark, str(path)).history(1).select("version").first()
    return int(row["version"]) if row else -1


def checkpoint(spark: SparkSession, path: str) -> None:
    """Delta's own checkpoint of the table's current version, written through the JVM (the state
    reconstruction and one Parquet file, a second or less, where a Spark write of the commit took
    2-5 s): after a commit the engine wrote at a checkpoint version. A checkpoint is an
    optimisation of log replay, so a failure is logged and the commit stands."""
    try:
        jvm = spark._jvm  # classic sessions only: the engine commits only there
        none = jvm.scala.Option.apply(None)
        delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
        delta_log.checkpoint(delta_log.update(False, none, none), none)
    except Exception as err:  # the commit is in the log; the next checkpoint version tries again
        log.warning("Delta checkpoint of %s failed (%s); readers replay its JSON commits until the next one",
                    path, str(err).splitlines()[0][:200])
