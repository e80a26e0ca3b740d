"""The current rows of a small local Delta table without a Spark job, for the store's own tables
(the registry): its log replayed in Python, its live files read with pyarrow.

A registry read through Spark costs a snapshot update and a job, 0.2-0.5 s on local[2], and an
operation of the store makes several (get a group, check what is recorded, find its statistics);
the same rows read here take a few milliseconds. The replay is the one Delta's protocol defines:
the newest classic checkpoint named by ``_delta_log/_last_checkpoint`` (or none: every commit
from version 0), then each commit file after it, in order; ``add`` makes a file live, ``remove``
ends it. Commit files appear whole (Delta writes them by rename), so a listing is a consistent
version even while another process commits.

:func:`read_current` returns None -- and the caller reads through Spark -- wherever this reader
would not give exactly Delta's rows: a path that is not on the local file system, a table whose
reader protocol needs more than this reader knows (column mapping, type widening, ...), a live
file with a deletion vector, partition columns (their values are not in the files), a log that
does not replay (a gap, a v2 or multi-part checkpoint only), or any error on the way. A test
checks that it agrees with Spark's read after appends, MERGEs, a checkpoint and schema evolution.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["NeedsSparkError", "commit_actions", "live_files", "local_root", "read_current", "read_file", "select", "snapshot",
           "utc_timestamps"]

log = logging.getLogger(__name__)

_READER_FEATURES = {"timestampNtz", "deletionVectors", "vacuumProtocolCheck"}  # DVs: refused per file below


class NeedsSparkError(Exception):
    """Only Delta's own reader (or writer) is exact for this table."""


def local_root(path: str) -> str | None:
    """The local directory of ``path`` (a plain path or a ``file:`` URI), None for other schemes."""
    parsed = urlparse(str(path))
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme == "" and str(path).startswith("/"):
        return str(path)
    return None


def read_current(path: str) -> Any | None:
    """The rows of the latest version of the local Delta table at ``path`` as a pyarrow Table
    (timestamps as UTC), an empty Table with no columns when no table is there, or None when only
    Spark can read it exactly (see the module docstring)."""
    root = local_root(path)
    if root is None:
        return None
    try:
        return _read(root)
    except NeedsSparkError as why:
        log.debug("%s: read through Spark (%s)", path, why)
    except Exception as err:  # a reader that cannot be sure reads nothing: Spark's read is the answer
        log.debug("%s: local replay failed (%r); read through Spark", path, err)
    return None


def _read(root: str) -> Any:
    import pyarrow as pa

    state = snapshot(root)
    return pa.table({}) if state is None else state.rows(root)


def snapshot(root: str, version: int | None = None) -> _State | None:
    """The replayed log of the table in directory ``root`` at ``version`` (the latest by default;
    None if no commit is there); raises :class:`NeedsSparkError` where Delta's own reader is needed."""
    log_dir = os.path.join(root, "_delta_log")
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return None
    commits = {int(n[:20]) for n in names if len(n) == 25 and n.endswith(".json") and n[:20].isdigit()}
    if not commits:
        return None
    latest = max(commits) if version is None else version
    if latest not in commits:
        raise NeedsSparkError(f"no commit file for version {latest}")
    state = _State()
    start = _checkpoint(log_dir, names, latest, state)
    missing = [v for v in range(start, latest + 1) if v not in commits]
    if missing:
        raise NeedsSparkError(f"commit files missing from the log: {missing[:3]}")
    for version in range(start, latest + 1):
        for action in commit_actions(log_dir, version):
            state.apply(action)
    state.version = latest
    return state


def live_files(path: str, version: int) -> list[dict[str, Any]] | None:
    """The ``add`` actions of the files live at ``version`` of the local table at ``path`` (paths
    decoded, partition values as dicts), or None where only Delta can list them exactly (not
    local, a reader feature unknown here, a file with a deletion vector, a log that does not
    replay to ``version``)."""
    root = local_root(path)
    if root is None:
        return None
    try:
        state = snapshot(root, version)
        if state is None or state.metadata is None:
            return None
        if any(add.get("deletionVector") for add in state.files.values()):
            raise NeedsSparkError("a live file has a deletion vector")
        return [{**add, "path": relative} for (relative, _), add in state.files.items()]
    except NeedsSparkError as why:
        log.debug("%s@v%d: files listed by Spark (%s)", path, version, why)
    except Exception as err:  # an unsure listing lists nothing: Spark's is the answer
        log.debug("%s@v%d: local replay failed (%r); files listed by Spark", path, version, err)
    return None


def commit_actions(log_dir: str, version: int) -> list[dict[str, Any]]:
    """The actions of commit ``version`` in ``log_dir``, in file order."""
    with open(os.path.join(log_dir, f"{version:020d}.json"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _checkpoint(log_dir: str, names: list[str], latest: int, state: _State) -> int:
    """Load the checkpoint ``_last_checkpoint`` names (a classic single file at or before
    ``latest``) into ``state``; return the first commit version to replay after it."""
    if "_last_checkpoint" not in names:
        return 0
    with open(os.path.join(log_dir, "_last_checkpoint"), encoding="utf-8") as handle:
        pointer = json.loads(handle.read())
    # the newest classic single-file checkpoint at or before both `latest` and the one the pointer
    # names (a finished checkpoint: a newer file could still be being written)
    bound = min(latest, int(pointer["version"]))
    classic = [int(n[:20]) for n in names if len(n) == 39 and n.endswith(".checkpoint.parquet") and n[:20].isdigit()]
    version = max((v for v in classic if v <= bound), default=None)
    if version is None:
        if all(f"{v:020d}.json" in names for v in range(latest + 1)):
            return 0  # every commit is still there: replay them all
        raise NeedsSparkError(f"no classic single-file checkpoint at or before version {latest} ({pointer})")
    file = os.path.join(log_dir, f"{version:020d}.checkpoint.parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    present = set(pq.read_schema(file).names)
    table = pq.read_table(file, columns=[c for c in ("add", "metaData", "protocol") if c in present])
    if "add" in table.column_names:  # maps read by pyarrow as (key, value) pairs
        table = table.set_column(table.column_names.index("add"), "add", pa.array(
            [None if a is None else {**a, "partitionValues": dict(a.get("partitionValues") or ())}
             for a in table.column("add").to_pylist()]))
    for column in table.column_names:
        for value in table.column(column).to_pylist():
            if value is not None:
                state.apply({column: value})
    return version + 1


class _State:
    """Live files, metadata and protocol while the log is replayed."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], dict[str, Any]] = {}
        self.metadata: dict[str, Any] | None = None
        self.protocol: dict[str, Any] = {}
        self.version = -1

    def apply(self, action: dict[str, Any]) -> None:
        if "add" in action:
            self.files[_identity(action["add"])] = action["add"]
        elif "remove" in action:
            self.files.pop(_identity(action["remove"]), None)
        elif "metaData" in action:
            self.metadata = action["metaData"]
        elif "protocol" in action:
            protocol = self.protocol = action["protocol"]
            unknown = set(protocol.get("readerFeatures") or ()) - _READER_FEATURES
            if int(protocol.get("minReaderVersion") or 1) > 3 or unknown:
                raise NeedsSparkError(f"reader protocol {protocol}")

    @property
    def configuration(self) -> dict[str, str]:
        configuration = (self.metadata or {}).get("configuration") or {}
        if isinstance(configuration, list):  # a checkpoint's map read by pyarrow: (key, value) pairs
            configuration = dict(configuration)
        return dict(configuration)

    def fields(self, partitions: Sequence[str] = ()) -> list[str]:
        """The schema's top-level column names that the files hold (all but ``partitions``, which
        must be exactly the table's partition columns); raises where the files alone do not hold
        the rows."""
        meta = self.metadata
        if meta is None:
            raise NeedsSparkError("no metaData action")
        if list(meta.get("partitionColumns") or ()) != list(partitions):
            raise NeedsSparkError(f"partition columns {meta.get('partitionColumns')}, not {list(partitions)}")
        if self.configuration.get("delta.columnMapping.mode", "none") != "none":
            raise NeedsSparkError("column mapping")
        return [f["name"] for f in json.loads(meta["schemaString"])["fields"] if f["name"] not in partitions]

    def file_rows(self, root: str) -> list[tuple[dict[str, Any], Any]]:
        """Each live file's ``add`` action and its rows (all schema columns, timestamps as UTC)."""
        fields = self.fields()
        return [(add, read_file(root, add, fields)) for _, add in sorted(self.files.items())]

    def rows(self, root: str) -> Any:
        import pyarrow as pa

        fields = self.fields()
        parts = [table for _, table in self.file_rows(root)]
        if not parts:
            return pa.table({f: pa.nulls(0) for f in fields})
        return pa.concat_tables(parts, promote_options="default")


def select(table: Any, where: Mapping[str, Any], columns: Sequence[str] | None) -> list[dict[str, Any]]:
    """Rows of ``table`` (from :func:`read_current`; no columns: no table yet) whose columns equal
    ``where``'s values (a list: any of them), as dicts of ``columns`` (all by default)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_columns == 0 or table.num_rows == 0:  # (a table without files has NULL-typed columns)
        return []
    for column, value in where.items():
        if isinstance(value, list | tuple | set):
            mask = pc.is_in(table.column(column), value_set=pa.array(list(value), type=table.schema.field(column).type))
        else:
            mask = pc.equal(table.column(column), pa.scalar(value, type=table.schema.field(column).type))
        table = table.filter(mask)  # NULL comparisons drop the row, as Spark's filter does
    if columns is not None:
        table = table.select(list(columns))
    return table.to_pylist(maps_as_pydicts="strict")


def _identity(action: dict[str, Any]) -> tuple[str, str]:
    """A logical file: its path and deletion vector (a DELETE with deletion vectors removes the
    file and adds the same path again with one, in the same commit)."""
    dv = action.get("deletionVector") or {}
    return unquote(action["path"]), "" if not dv else f"{dv.get('storageType')}:{dv.get('pathOrInlineDv')}:{dv.get('offset')}"


def read_file(root: str, add: Mapping[str, Any], fields: Sequence[str]) -> Any:
    """The rows of the live file ``add`` of the table in ``root`` as a pyarrow Table of ``fields``
    (a column the file lacks -- written before schema evolution -- is NULL; timestamps as UTC)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if add.get("deletionVector"):
        raise NeedsSparkError("a live file has a deletion vector")
    parsed = urlparse(unquote(add["path"]))
    if parsed.scheme not in ("", "file"):
        raise NeedsSparkError(f"file {add['path']} is not local")
    file = parsed.path if parsed.path.startswith("/") else os.path.join(root, parsed.path)
    table = pq.read_table(file, coerce_int96_timestamp_unit="us", use_threads=False)
    return pa.table({f: utc_timestamps(table.column(f)) if f in table.column_names else pa.nulls(table.num_rows)
                     for f in fields})


def utc_timestamps(column: Any) -> Any:
    """Spark's timestamps (INT96 or microseconds adjusted to UTC) as UTC instants."""
    import pyarrow as pa

    return column.cast(pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(column.type) else column
