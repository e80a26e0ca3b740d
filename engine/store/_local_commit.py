"""Small commits to the store's own local Delta tables (the registry, validation reports) without
a Spark job: the rows written with pyarrow, the commit file put into ``_delta_log`` by Delta's
optimistic protocol.

Each operation of the store records a few rows (a commit row, a report, an entity); through Spark
each is a write job plus a snapshot update, 0.4-1 s on local[2] (a MERGE more), while the same
commit written here takes a few milliseconds. What is written is what Delta's protocol defines
for a writer of these tables:

* the new rows in one Parquet file in the table's directory (the table's schema, timestamps as
  microseconds adjusted to UTC), then one commit file ``<version>.json`` holding ``commitInfo``
  and the ``add`` (and, for an upsert, the ``remove`` of each rewritten file) actions;
* the commit file is created atomically and only if absent (``os.link`` of a finished temporary
  file), so of two writers of the same version exactly one wins; the other re-reads the log:
  a blind append retries at the next version unless the winner changed the table's metadata or
  protocol, an upsert starts over from the new snapshot (every concurrent commit is a conflict);
* an upsert replaces rows whose keys equal a new row's (NULL equals NULL, as ``<=>`` in the Spark
  MERGE of :func:`engine.store.delta.upsert`): the files holding such rows are removed and their
  other rows copied into the new file, as Delta's copy-on-write MERGE does.

The functions return None -- and the caller writes through Spark, whose errors the user has
always seen -- wherever this writer could differ from Delta's: a path not on the local file
system, a writer protocol needing more than appends of plain rows (constraints, generated or
identity columns, column mapping, row tracking, in-commit timestamps, partition columns, ...),
a schema other than the caller's, rows Spark would refuse (a NULL in a NOT NULL column, a wrong
type), too many lost races, or any error on the way
(the Parquet file is deleted; nothing was committed). A commit at a checkpoint version (every
``delta.checkpointInterval``-th, as read by the committing attempt) is followed by Delta's own
checkpoint, written through Spark's JVM (:func:`engine.store.delta.checkpoint`), so the log stays
short to replay. Tests check that Spark reads every commit
written here, interleaved with its own writes and checkpoints, and under concurrent writers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.store import _local_delta
from engine.store._log_files import commit_info
from engine.store._log_files import put_commit as _put_commit

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

__all__ = ["ATTEMPTS", "Commit", "append", "attempts", "check_writable", "commit_info", "discard", "next_commit", "publish", "upsert",
           "upsert_arrow", "write_file"]

log = logging.getLogger(__name__)

ATTEMPTS = 8
_WRITER_FEATURES = {"appendOnly", "invariants", "timestampNtz", "deletionVectors", "vacuumProtocolCheck"}
_FIELD_METADATA = ("delta.invariants", "delta.generationExpression", "delta.identity", "CURRENT_DEFAULT",
                   "__CHAR_VARCHAR_TYPE_STRING")  # CHAR / VARCHAR lengths: Spark enforces them
_CONFIG_REFUSED = ("delta.constraints.", "delta.enableRowTracking", "delta.enableInCommitTimestamps",
                   "delta.enableChangeDataFeed", "delta.columnMapping.mode")


class Commit(NamedTuple):
    """The version a commit attempt writes, and whether Delta's writers checkpoint it."""

    version: int
    checkpoint: bool


def append(spark: SparkSession, path: str, rows: Sequence[Mapping[str, Any]], schema: StructType) -> int | None:
    """Append ``rows`` (dicts, as ``spark.createDataFrame(rows, schema)`` takes them) to the local
    Delta table at ``path`` in one commit; return its version, or None if Spark must write them."""
    return _commit(spark, path, rows, schema, keys=None)


def upsert(spark: SparkSession, path: str, rows: Sequence[Mapping[str, Any]], schema: StructType,
           keys: Sequence[str]) -> int | None:
    """Insert ``rows``, replacing stored rows with equal ``keys`` (NULL-safe), in one commit;
    return its version, or None if Spark must write them. ``rows`` hold each key once."""
    return _commit(spark, path, rows, schema, keys=list(keys))


def upsert_arrow(spark: SparkSession, path: str, arrow: Callable[[], Any], schema: StructType,
                 keys: Sequence[str]) -> int | None:
    """:func:`upsert` for rows that come as a pyarrow table of ``schema`` from ``arrow()`` (e.g. a
    DataFrame's ``toArrow``, called only where this writer can commit: a local path), cast to the
    Arrow types of ``schema`` (instants stay UTC microseconds, no Python datetimes on the way);
    None if Spark must write them. The table holds at least one row."""
    from pyspark.sql.pandas.types import to_arrow_schema

    root = _local_delta.local_root(path)
    if root is None:
        return None
    return attempts(spark, path, lambda: arrow().cast(to_arrow_schema(schema, timezone="UTC")),
                    lambda batch: _attempt(root, batch, schema, list(keys)))


def _commit(spark: SparkSession, path: str, rows: Sequence[Mapping[str, Any]], schema: StructType, *,
            keys: list[str] | None) -> int | None:
    root = _local_delta.local_root(path)
    if root is None or not rows:
        return None
    return attempts(spark, path, lambda: _arrow_rows(rows, schema), lambda batch: _attempt(root, batch, schema, keys))


def attempts(spark: SparkSession, path: str, prepare: Callable[[], Any],
             attempt: Callable[[Any], Commit | None]) -> int | None:
    """``attempt(prepare())`` until it commits (a :class:`Commit`: its version is returned, after
    Delta's checkpoint where one is due) or lost :data:`ATTEMPTS` races (None each time; jittered
    backoff between); None where Spark must write instead (a
    :class:`~engine.store._local_delta.NeedsSparkError` or any error: nothing was committed)."""
    from engine.store import delta

    try:
        prepared = prepare()
        for tried in range(ATTEMPTS):
            commit = attempt(prepared)
            if commit is not None:
                if commit.checkpoint:
                    delta.checkpoint(spark, path)
                return commit.version
            delay = random.uniform(0, 0.002 * 2**tried)  # jittered backoff after a lost race
            log.info("%s: concurrent commit conflict (attempt %d/%d), retrying in %.3fs", path, tried + 1, ATTEMPTS, delay)
            time.sleep(delay)
        log.debug("%s: lost %d commit races; written through Spark", path, ATTEMPTS)
    except _local_delta.NeedsSparkError as why:
        log.debug("%s: written through Spark (%s)", path, why)
    except Exception as err:  # nothing committed: Spark's write is the answer (and its errors)
        log.debug("%s: local commit failed (%r); written through Spark", path, err)
    return None


def _arrow_rows(rows: Sequence[Mapping[str, Any]], schema: StructType) -> Any:
    """The rows as a pyarrow Table of ``schema``, checked and converted as PySpark does
    (types and NOT NULL verified, naive datetimes read in the local zone)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import _make_type_verifier

    verify = _make_type_verifier(schema)
    internal = []
    for row in rows:
        try:
            verify(dict(row))
        except Exception as err:
            raise _local_delta.NeedsSparkError(f"a row Spark refuses: {err}") from err
        internal.append(schema.toInternal(dict(row)))
    arrow = to_arrow_schema(schema, timezone="UTC")
    columns = list(zip(*internal, strict=True)) if internal else [() for _ in schema.fields]
    return pa.table([pa.array(list(values), type=f.type) for values, f in zip(columns, arrow, strict=True)],
                    schema=arrow)


def _attempt(root: str, batch: Any, schema: StructType, keys: list[str] | None) -> Commit | None:
    """One try: read the snapshot, write the file, commit the next version. None: lost a race."""
    state = _local_delta.snapshot(root)
    if state is None:
        raise _local_delta.NeedsSparkError("no table yet")
    check_writable(state, schema, upsert=keys is not None)
    commit = next_commit(state)
    removed, copied = ([], None) if keys is None else _replaced(root, state, batch, keys)
    data = batch if copied is None else _concat(copied, batch)
    add = write_file(root, data)
    info = _commit_info(state.version, batch, add, removed, copied, keys)
    return commit if publish(root, commit.version, info, removed, [add]) else None  # None: the next try reads the winner's


def next_commit(state: Any) -> Commit:
    """The commit after ``state``: its version, and whether it is one Delta's writers checkpoint
    (every ``delta.checkpointInterval``-th, 10 by default, as ``state`` configures it)."""
    version = int(state.version) + 1
    interval = int(state.configuration.get("delta.checkpointInterval", "10"))
    return Commit(version, version % max(interval, 1) == 0)


def publish(root: str, version: int, info: dict[str, Any], removed: Sequence[Mapping[str, Any]],
            added: Sequence[Mapping[str, Any]]) -> bool:
    """Commit ``version`` (``info``, the ``remove`` of each of ``removed``, the ``add`` actions)
    if no other writer has it; False after a lost race. The added data files are deleted unless
    the commit is in the log (a lost race or an error: the files are nobody's)."""
    committed = False
    try:
        actions = [info, *({"remove": _remove(r)} for r in removed), *({"add": a} for a in added)]
        committed = _put_commit(root, version, actions)
    finally:
        if not committed and not _is_ours(root, version, info["commitInfo"]["txnId"]):
            discard(root, added)
    return committed


def discard(root: str, added: Sequence[Mapping[str, Any]]) -> None:
    """Delete the data files of ``added`` (written for a commit that did not happen)."""
    for add in added:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(root, add["path"]))


def check_writable(state: Any, schema: StructType, *, upsert: bool, partitions: Sequence[str] = ()) -> None:
    """Raise :class:`~engine.store._local_delta.NeedsSparkError` unless a commit of plain rows of
    ``schema`` (the table's, ``partitions`` its partition columns) is all this table's protocol,
    properties and columns ask of a writer."""
    from pyspark.sql.types import StructType

    protocol = state.protocol
    features = set(protocol.get("writerFeatures") or ())
    if int(protocol.get("minWriterVersion") or 1) > 7 or features - _WRITER_FEATURES:
        raise _local_delta.NeedsSparkError(f"writer protocol {protocol}")
    configuration = state.configuration
    refused = [k for k in configuration if k.startswith(_CONFIG_REFUSED) and configuration[k].lower() not in ("false", "none")]
    if refused or (upsert and configuration.get("delta.appendOnly", "false").lower() == "true"):
        raise _local_delta.NeedsSparkError(f"table properties {refused or 'delta.appendOnly'}")
    state.fields(partitions)  # partition columns, column mapping
    stored = StructType.fromJson(json.loads(state.metadata["schemaString"]))
    if stored.simpleString() != schema.simpleString() or stored != schema:
        raise _local_delta.NeedsSparkError(f"schema {stored.simpleString()} is not the caller's {schema.simpleString()}")
    if any(k in json.dumps(f.metadata) for f in stored.fields for k in _FIELD_METADATA):
        raise _local_delta.NeedsSparkError("a column with an invariant, a generation expression, an identity, a default or a CHAR / VARCHAR length")


def _replaced(root: str, state: Any, batch: Any, keys: list[str]) -> tuple[list[dict[str, Any]], Any]:
    """The live files holding a row with one of ``batch``'s keys, and their other rows."""
    import pyarrow as pa

    wanted = set(zip(*[batch.column(k).to_pylist() for k in keys], strict=True))
    if len(wanted) != batch.num_rows:
        raise _local_delta.NeedsSparkError("the rows repeat a key (Spark's MERGE names them)")
    removed, kept = [], []
    for add, table in state.file_rows(root):
        found = list(zip(*[table.column(k).to_pylist() for k in keys], strict=True))
        hit = [key in wanted for key in found]
        if any(hit):
            removed.append(add)
            kept.append(table.filter(pa.array([not h for h in hit], type=pa.bool_())))
    return removed, (_concat(*kept) if kept else None)


def _concat(*tables: Any) -> Any:
    import pyarrow as pa

    schema = tables[-1].schema
    return pa.concat_tables([t.select(schema.names).cast(schema) for t in tables])


def write_file(root: str, table: Any, *, partition: Mapping[str, str] | None = None,
               stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``table`` as one Parquet file in the table's directory (in the directory of its
    ``partition`` values, ``col=value/``, as Delta names them); return its ``add`` action."""
    import pyarrow.parquet as pq

    partition = dict(partition or {})
    directory = "/".join(f"{k}={v}" for k, v in partition.items())
    name = (directory + "/" if directory else "") + f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    file = os.path.join(root, name)
    os.makedirs(os.path.dirname(file), exist_ok=True)
    pq.write_table(table, file, compression="snappy")
    info = os.stat(file)
    return {
        "path": name, "partitionValues": partition, "size": info.st_size, "modificationTime": int(info.st_mtime * 1000),
        "dataChange": True, "stats": json.dumps(dict(stats or {"numRecords": table.num_rows}), separators=(",", ":")),
    }


def _remove(add: Mapping[str, Any]) -> dict[str, Any]:
    return {"path": add["path"], "deletionTimestamp": int(time.time() * 1000), "dataChange": True,
            "extendedFileMetadata": True, "partitionValues": add.get("partitionValues") or {}, "size": add.get("size")}


def _commit_info(read_version: int, batch: Any, add: Mapping[str, Any], removed: list[dict[str, Any]],
                 copied: Any, keys: list[str] | None) -> dict[str, Any]:
    rows = batch.num_rows
    if keys is None:
        operation, parameters = "WRITE", {"mode": "Append", "partitionBy": "[]"}
        metrics = {"numFiles": "1", "numOutputRows": str(rows), "numOutputBytes": str(add["size"])}
    else:
        copied_rows = 0 if copied is None else copied.num_rows
        replaced = sum(int(json.loads(r.get("stats") or "{}").get("numRecords", 0)) for r in removed) - copied_rows
        operation = "MERGE"
        parameters = {"predicate": json.dumps([" AND ".join(f"target.{k} <=> source.{k}" for k in keys)]),
                      "matchedPredicates": json.dumps([{"actionType": "update"}]),
                      "notMatchedPredicates": json.dumps([{"actionType": "insert"}])}
        metrics = {"numSourceRows": str(rows), "numTargetRowsInserted": str(rows - max(replaced, 0)),
                   "numTargetRowsUpdated": str(max(replaced, 0)), "numTargetRowsCopied": str(copied_rows),
                   "numOutputRows": str(rows + copied_rows), "numTargetFilesAdded": "1",
                   "numTargetFilesRemoved": str(len(removed))}
    return commit_info(read_version, operation, parameters, metrics, blind_append=keys is None)


def _is_ours(root: str, version: int, txn: str) -> bool:
    """Whether commit ``version`` exists and is the one with transaction id ``txn``."""
    try:
        actions = _local_delta.commit_actions(os.path.join(root, "_delta_log"), version)
    except (OSError, ValueError):
        return False
    return any((a.get("commitInfo") or {}).get("txnId") == txn for a in actions)
