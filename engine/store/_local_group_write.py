"""A feature group's small writes without Delta's Spark MERGE or ``replaceWhere``: the batch
collected once as Arrow, the touched files rewritten with pyarrow, one commit put into
``_delta_log`` by Delta's optimistic protocol (:mod:`engine.store._local_commit`).

An insert of a few thousand rows through Delta's MERGE is 1.2-1.6 s on local[2] whatever its
size (materialise the source, a snapshot state job, a scan of the candidate files, a write job);
a pipeline chunk's ``replaceWhere`` about 1 s. The same commit written here is the batch's
``toArrow`` (one job over rows already computed) and a few milliseconds of pyarrow. What is
written is what Delta's own writers write for these tables:

* per partition (the group's hash bucket, :mod:`engine.store.bucketing`), the stored files whose
  statistics say they may hold a row the write replaces -- for an upsert an event time within
  the batch's [least, greatest] and then an equal (key, event time); for a range replacement an
  event time in the range -- are read; those that do hold one are removed and their other rows
  copied, with the batch's rows of that partition, into one new file sorted by (key, event time);
* each new file's ``add`` carries Delta's statistics (``numRecords``, and per column
  ``nullCount``, ``minValues`` / ``maxValues`` where they are exact as Delta writes them:
  integers, floats without NaN, dates, timestamps truncated to milliseconds, strings of at most
  32 characters), so later MERGEs, range replacements and reads skip files as before;
* ``commitInfo`` names the operation as Delta does (``MERGE``, or ``WRITE`` with mode
  ``Overwrite`` and the predicate) with the metrics the registry reads; any concurrent commit
  makes the attempt start over from the new snapshot.

The functions return None -- and the caller writes through Spark -- wherever Spark must judge:
everything :func:`engine.store._local_commit.check_writable` refuses, partitions other than the
bucket column, a column type outside the flat ones above (plus booleans, decimals and binary,
written without min / max), a floating-point key (Spark's MERGE equates NaNs), a NULL or repeated
key, a batch over :data:`MAX_ROWS`, files to rewrite over :data:`MAX_REWRITE_BYTES`, a remote
(Spark Connect) session or a path not on the local file system, any error. A commit at a
checkpoint version is followed by Delta's own checkpoint (:func:`engine.store.delta.checkpoint`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.store import _local_commit, _local_delta
from engine.store.bucketing import BUCKET_COLUMN

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.temporal.ranges import TimeRange

__all__ = ["MAX_REWRITE_BYTES", "MAX_ROWS", "write"]

log = logging.getLogger(__name__)

MAX_ROWS = 250_000
"""Batches up to this many rows are collected to the driver and written here; larger ones by
Spark. 0: every write by Spark."""
MAX_REWRITE_BYTES = 256 << 20
"""Stored files to copy-on-write up to this size in all; more is Spark's (parallel) work."""
STRING_STATS = 32  # Delta truncates longer strings in its statistics: no exact bound to write
_FLAT = ("string", "boolean", "tinyint", "smallint", "int", "bigint", "float", "double", "date", "timestamp", "binary")
_MS = timedelta(milliseconds=1)


def write(spark: SparkSession, path: str, rows: DataFrame, *, primary_key: Sequence[str], event_time: str,
          time_range: TimeRange | None, within: tuple[str, datetime, datetime] | None,
          count: int) -> tuple[int, Any] | None:
    """Commit ``rows`` (``count`` of them, final: checked, validated, with the bucket column) to
    the group's table at ``path`` in one commit and return its version and the rows as the
    pyarrow Table written (the table's columns, UTC timestamps), or None if Spark must.

    ``time_range`` None: upsert on (primary key, event time), every event time in ``within``'s
    [least, greatest] (aware instants); else replace the rows with event time in ``time_range``."""
    order = [*primary_key, event_time]
    if time_range is None:
        if within is None or count == 0:
            return None
        column, least, greatest = within
        span = (column, least, greatest + timedelta(microseconds=1))  # [least, greatest] half-open
        return _write(spark, path, rows, count=count, match=order, span=span, order=order, operation="MERGE")
    span = (event_time, time_range.start.astimezone(UTC), time_range.end.astimezone(UTC))
    return _write(spark, path, rows, count=count, match=None, span=span, order=order, operation="WRITE")


def _write(spark: SparkSession, path: str, rows: DataFrame, *, count: int, match: list[str] | None,
           span: tuple[str, datetime, datetime], order: list[str], operation: str) -> tuple[int, Any] | None:
    from engine.remote import is_remote

    root = _local_delta.local_root(path)
    if root is None or is_remote(spark) or count > MAX_ROWS or MAX_ROWS < 1:
        return None
    prepared: list[Any] = []
    version = _local_commit.attempts(spark, path, lambda: prepared.append(_prepare(root, rows, match)) or prepared[0],
                                     lambda batch: _attempt(root, batch, match, span, order, operation))
    return None if version is None else (version, prepared[0][2])


def _prepare(root: str, rows: DataFrame, match: list[str] | None) -> Any:
    """The batch as a pyarrow Table of the stored schema (checked before the job that collects it)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    state = _local_delta.snapshot(root)
    if state is None or state.metadata is None:
        raise _local_delta.NeedsSparkError("no table yet")
    stored = StructType.fromJson(json.loads(state.metadata["schemaString"]))
    found = sorted((f.name, f.dataType.simpleString()) for f in rows.schema.fields)  # (evolved columns follow the bucket)
    if found != sorted((f.name, f.dataType.simpleString()) for f in stored.fields) or len(set(rows.columns)) != len(found):
        raise _local_delta.NeedsSparkError(f"rows {rows.schema.simpleString()} are not the table's {stored.simpleString()}")
    odd = [f.name for f in stored.fields if f.dataType.simpleString().split("(")[0] not in (*_FLAT, "decimal")]
    if odd:
        raise _local_delta.NeedsSparkError(f"columns of nested or unusual types: {odd}")
    if match and any(f.dataType.typeName() in ("float", "double") for f in stored.fields if f.name in match):
        raise _local_delta.NeedsSparkError("a floating-point key (Spark's MERGE equates NaNs)")
    target = to_arrow_schema(stored, timezone="UTC")
    collected = rows.toArrow()
    batch = pa.table([collected.column(f.name).cast(f.type) for f in target], schema=target)
    for field in stored.fields:
        if not field.nullable and batch.column(field.name).null_count:
            raise _local_delta.NeedsSparkError(f"NULL in NOT NULL column {field.name} (Spark names the violation)")
    if match:
        if any(batch.column(k).null_count for k in match):
            raise _local_delta.NeedsSparkError("a NULL key")
        if batch.group_by(match).aggregate([]).num_rows != batch.num_rows:
            raise _local_delta.NeedsSparkError("the rows repeat a key (Spark's MERGE names them)")
    return state.metadata["id"], stored, batch


def _attempt(root: str, prepared: Any, match: list[str] | None, span: tuple[str, datetime, datetime],
             order: list[str], operation: str) -> _local_commit.Commit | None:
    """One try against the newest snapshot; None: another writer committed first."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table_id, stored, batch = prepared
    state = _local_delta.snapshot(root)
    if state is None or state.metadata is None or state.metadata["id"] != table_id:
        raise _local_delta.NeedsSparkError("the table was replaced")
    partitions = list(state.metadata.get("partitionColumns") or ())
    if partitions not in ([], [BUCKET_COLUMN]):
        raise _local_delta.NeedsSparkError(f"partition columns {partitions}")
    _local_commit.check_writable(state, stored, upsert=True, partitions=partitions)
    fields = state.fields(partitions)
    commit = _local_commit.next_commit(state)
    column, start, end = span
    groups = _partitions(batch, partitions)
    # an upsert replaces rows of its keys' partitions only; a range replacement, in any partition
    candidates = [a for a in state.files.values()
                  if (match is None or _partition_key(a, partitions) in groups) and _may_hold(a, column, start, end)]
    if sum(int(a.get("size") or 0) for a in candidates) > MAX_REWRITE_BYTES:
        raise _local_delta.NeedsSparkError(f"{len(candidates)} stored files to rewrite")
    removed, copied, added = [], {}, []
    for add in candidates:
        table = _local_delta.read_file(root, add, fields).cast(pa.schema([batch.schema.field(f) for f in fields]))
        hit = _replaced(table, batch, match, column, start, end)
        if pc.any(hit).as_py():
            removed.append(add)
            copied.setdefault(_partition_key(add, partitions), []).append(table.filter(pc.invert(hit)))
    try:
        for key in dict.fromkeys([*groups, *copied]):
            parts = [*copied.get(key, []), *([groups[key].select(fields)] if key in groups else [])]
            data = pa.concat_tables(parts).sort_by([(c, "ascending") for c in order])
            if data.num_rows:
                added.append(_local_commit.write_file(root, data, partition=dict(zip(partitions, key, strict=True)),
                                                      stats=_stats(data, state.configuration, fields)))
        info = _commit_info(state.version, operation, batch, match, span, removed, added, copied)
    except BaseException:
        _local_commit.discard(root, added)
        raise
    committed = _local_commit.publish(root, commit.version, info, removed, added)
    return commit if committed else None


def _partitions(batch: Any, partitions: list[str]) -> dict[tuple[str, ...], Any]:
    """The batch's rows by partition values (as the log writes them: strings)."""
    import pyarrow.compute as pc

    if not partitions:
        return {(): batch}
    values = batch.column(BUCKET_COLUMN)
    return {(str(v),): batch.filter(pc.equal(values, v)) for v in pc.unique(values).to_pylist()}


def _partition_key(add: Mapping[str, Any], partitions: list[str]) -> tuple[str, ...]:
    values = add.get("partitionValues") or {}
    return tuple(str(values.get(p)) for p in partitions)


def _may_hold(add: Mapping[str, Any], column: str, start: datetime, end: datetime) -> bool:
    """Whether a file's statistics allow a ``column`` value in [start, end) (no statistics: yes).
    Delta truncates timestamps to milliseconds: a stored maximum m means values below m + 1 ms."""
    try:
        stats = json.loads(add.get("stats") or "{}")
        if int(stats.get("numRecords", 1)) == 0:
            return False
        low, high = (stats.get("minValues") or {}).get(column), (stats.get("maxValues") or {}).get(column)
        if low is None or high is None:
            return True
        return datetime.fromisoformat(low) < end and datetime.fromisoformat(high) + _MS > start
    except (TypeError, ValueError):
        return True


def _replaced(table: Any, batch: Any, match: list[str] | None, column: str, start: datetime, end: datetime) -> Any:
    """A mask of the stored rows the write replaces: equal ``match`` keys, or ``column`` in [start, end)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if match is None:
        values = table.column(column)
        inside = pc.and_(pc.greater_equal(values, pa.scalar(start, values.type)), pc.less(values, pa.scalar(end, values.type)))
        return pc.fill_null(inside, False)
    numbered = table.select(match).append_column("__ff_row", pa.array(range(table.num_rows), pa.int64()))
    found = numbered.join(batch.select(match), keys=match, join_type="left semi").column("__ff_row")
    return pc.is_in(pa.array(range(table.num_rows), pa.int64()), value_set=found.combine_chunks())


def _stats(data: Any, configuration: Mapping[str, str], fields: Sequence[str]) -> dict[str, Any]:
    """Delta's file statistics of ``data``: exact bounds only (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    stats: dict[str, Any] = {"numRecords": data.num_rows}
    if "delta.dataSkippingStatsColumns" in configuration:
        return stats  # the table chose its columns: a reader then skips nothing on ours
    limit = int(configuration.get("delta.dataSkippingNumIndexedCols", "32"))
    indexed = list(fields) if limit < 0 else list(fields)[:limit]
    low, high, nulls = {}, {}, {}
    for name in indexed:
        values = data.column(name)
        nulls[name] = values.null_count
        kind = values.type
        if values.null_count == data.num_rows or pa.types.is_boolean(kind) or pa.types.is_decimal(kind) or pa.types.is_binary(kind):
            continue
        if pa.types.is_floating(kind) and not pc.all(pc.is_finite(values)).as_py():
            continue  # NaN (Spark orders it last) or an infinity (not JSON)
        bounds = pc.min_max(values).as_py()
        least, most = bounds["min"], bounds["max"]
        if pa.types.is_timestamp(kind):
            if kind.tz is None:
                continue
            least, most = (v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" for v in (least, most))
        elif pa.types.is_date(kind):
            least, most = least.isoformat(), most.isoformat()
        elif pa.types.is_string(kind) and max(len(least), len(most)) > STRING_STATS:
            continue
        low[name], high[name] = least, most
    return {**stats, "minValues": low, "maxValues": high, "nullCount": nulls}


def _commit_info(read_version: int, operation: str, batch: Any, match: list[str] | None,
                 span: tuple[str, datetime, datetime], removed: list[Any], added: list[Any],
                 copied: Mapping[Any, list[Any]]) -> dict[str, Any]:
    rows = batch.num_rows
    copied_rows = sum(t.num_rows for tables in copied.values() for t in tables)
    stored = sum(int(json.loads(r.get("stats") or "{}").get("numRecords", 0)) for r in removed)
    replaced = max(stored - copied_rows, 0)
    written = str(sum(int(a["size"]) for a in added))
    column, start, end = span
    if match is not None:
        parameters = {"predicate": json.dumps([" AND ".join(f"t.{k} <=> s.{k}" for k in match)]),
                      "matchedPredicates": json.dumps([{"actionType": "update"}]),
                      "notMatchedPredicates": json.dumps([{"actionType": "insert"}])}
        metrics = {"numSourceRows": str(rows), "numTargetRowsInserted": str(rows - replaced),
                   "numTargetRowsUpdated": str(replaced), "numTargetRowsCopied": str(copied_rows),
                   "numOutputRows": str(rows + copied_rows), "numTargetFilesAdded": str(len(added)),
                   "numTargetFilesRemoved": str(len(removed)), "numTargetBytesAdded": written}
    else:
        predicate = f"({column} >= '{start.isoformat()}') AND ({column} < '{end.isoformat()}')"
        parameters = {"mode": "Overwrite", "partitionBy": "[]", "predicate": json.dumps([predicate])}
        metrics = {"numFiles": str(len(added)), "numOutputRows": str(rows + copied_rows), "numOutputBytes": written,
                   "numCopiedRows": str(copied_rows), "numDeletedRows": str(replaced),
                   "numRemovedFiles": str(len(removed)), "numAddedFiles": str(len(added))}
    return _local_commit.commit_info(read_version, operation, parameters, metrics, blind_append=False)
