"""The log facts every write needs -- the table's latest version, the entry of one commit, the
replayed log and its table properties -- read through Delta's own JVM classes, without a Spark job.

``DeltaTable.history(n)`` runs a Spark job that reads commit files in parallel (about 0.35 s on
local[2], whatever ``n``); after every write the engine needs only the new version and that one
commit's entry. On a classic session both come from Delta's cached ``DeltaLog``:

* :func:`latest_version`: ``DeltaLog.update()`` lists the log (so commits of other processes are
  seen) and returns the snapshot's version -- about 20 ms;
* :func:`commit_entry`: the ``commitInfo`` action of one commit file, read through the table's
  Hadoop file system, with the timestamp ``history()`` would give: the in-commit timestamp when
  the table records one, else the commit file's modification time (kept after the previous
  commit's, as Delta's history makes them increase);
* :func:`log_properties`: what :func:`engine.store._commit.check_log` needs -- every commit file
  since the last checkpoint read (through the checksummed file system: a short write fails its
  ``.crc``) and parsed, and the table properties from the snapshot's metadata -- about 40 ms
  where ``DeltaTable.detail()`` takes 0.2-1 s and several Spark jobs.

All return None when the fast path is not available (Spark Connect has no JVM on the client;
a Delta release whose classes differ), and the caller uses ``history()`` / ``detail()``. A test
checks that they agree with those and that a classic session takes this path.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.errors import CorruptTableError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["commit_entry", "corrupt", "latest_version", "log_properties"]

log = logging.getLogger("engine.store.delta")


def _delta_log(spark: SparkSession, path: str) -> Any:
    from engine.remote import is_remote

    if is_remote(spark):
        return None
    try:
        return spark._jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, str(path))  # type: ignore[union-attr]
    except Exception as err:  # a Delta release without this entry point: history() instead
        log.debug("DeltaLog not reachable through py4j (%s); using history()", err)
        return None


def _snapshot(spark: SparkSession, delta_log: Any) -> Any:
    empty = spark._jvm.scala.Option.empty()  # type: ignore[union-attr]
    return delta_log.update(False, empty, empty)  # stalenessAcceptable=False: list the log now


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest version, or None if only ``history()`` can tell (or no table is there:
    ``history()`` then raises the error the caller has always seen)."""
    delta_log = _delta_log(spark, path)
    if delta_log is None:
        return None
    try:
        version = int(_snapshot(spark, delta_log).version())
    except Exception as err:
        log.debug("DeltaLog.update failed (%s); using history()", err)
        return None
    return version if version >= 0 else None


def corrupt(table: str, version: int | str, reason: str) -> CorruptTableError:
    """The error for an unreadable commit file of ``table`` (``version`` "unknown" if not known)."""
    hint = (f"Restore _delta_log/{version:020d}.json from a backup (or from the writer that produced it), then re-run."
            if isinstance(version, int) else "Restore the damaged _delta_log file from a backup, then re-run.")
    return CorruptTableError(table=table, version=version, reason=reason, hint=hint)


def _log_file(spark: SparkSession, delta_log: Any, version: int) -> tuple[Any, Any]:
    """Commit ``version``'s file in the log and the Hadoop file system it lives on."""
    file = spark._jvm.org.apache.hadoop.fs.Path(delta_log.logPath(), f"{version:020d}.json")  # type: ignore[union-attr]
    return file, file.getFileSystem(delta_log.newDeltaHadoopConf())


def _modified(fs: Any, file: Any) -> int | None:
    """A file's modification time (ms), or None if it does not exist."""
    return int(fs.getFileStatus(file).getModificationTime()) if fs.exists(file) else None


def _file_text(spark: SparkSession, fs: Any, file: Any) -> str:
    """A file's text through a Hadoop file system (a checksummed one verifies the ``.crc`` sidecar)."""
    jvm = spark._jvm  # type: ignore[union-attr]
    stream = fs.open(file)
    try:
        text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    return str(text)


def _verified_local_text(uri: str) -> str | None:
    """A local commit file's text read in Python when its Hadoop ``.crc`` sidecar (CRC32 per
    512-byte chunk) confirms it -- no py4j round trip (20-30 ms per file); None, and the caller
    reads it through Hadoop (which raises a mismatch), when not local, no sidecar or any doubt."""
    from engine.store._local_delta import local_root

    local = local_root(uri)
    if local is None:
        return None
    try:
        with open(local, "rb") as handle:
            data = handle.read()
        with open(os.path.join(os.path.dirname(local), f".{os.path.basename(local)}.crc"), "rb") as handle:
            sidecar = handle.read()
    except OSError:
        return None
    if sidecar[:4] != b"crc\x00" or len(sidecar) < 8:
        return None
    chunk = int.from_bytes(sidecar[4:8], "big")
    sums = [int.from_bytes(sidecar[i:i + 4], "big") for i in range(8, len(sidecar), 4)]
    if chunk <= 0 or sums != [zlib.crc32(data[i:i + chunk]) for i in range(0, len(data), chunk)]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _local_commit_file(path: str, version: int) -> tuple[str, int, int | None] | None:
    """Commit ``version`` of a local table read in Python: its verified text, its modification
    time and the previous commit file's (ms, as Hadoop's local file system gives them); None
    where the JVM must read it."""
    from engine.store._local_delta import local_root

    root = local_root(path)
    if root is None:
        return None
    file = os.path.join(root, "_delta_log", f"{version:020d}.json")
    text = _verified_local_text(file)
    if text is None:
        return None
    try:
        modified = os.stat(file).st_mtime_ns // 1_000_000
        before = os.path.join(root, "_delta_log", f"{version - 1:020d}.json")
        previous = os.stat(before).st_mtime_ns // 1_000_000 if version > 0 and os.path.exists(before) else None
    except OSError:
        return None
    return text, modified, previous


def commit_entry(spark: SparkSession, path: str, version: int) -> dict[str, Any] | None:
    """Commit ``version``'s entry as ``delta.history`` gives it (version, timestamp, operation,
    operationParameters, operationMetrics), or None if only ``history()`` can tell."""
    from engine.remote import is_remote

    found = None if is_remote(spark) else _local_commit_file(path, version)  # a server's paths are not ours
    if found is None:
        delta_log = _delta_log(spark, path)
        if delta_log is None:
            return None
        try:
            file, fs = _log_file(spark, delta_log, version)
            modified = _modified(fs, file)
            if modified is None:
                return None
            text = _file_text(spark, fs, file)
            previous = _modified(fs, _log_file(spark, delta_log, version - 1)[0]) if version > 0 else None
        except Exception as err:
            log.debug("commit file %d of %s not readable through the JVM (%s); using history()", version, path, err)
            return None
    else:
        text, modified, previous = found
    info = next((action["commitInfo"] for action in map(json.loads, filter(None, text.splitlines()))
                 if "commitInfo" in action), None)  # Delta writes it first: the rest is not parsed
    if info is None:
        return None
    millis = info.get("inCommitTimestamp")
    if millis is None:
        millis = modified if previous is None else max(modified, previous + 1)
    return {
        "version": version,
        "timestamp": datetime.fromtimestamp(int(millis) / 1000, tz=UTC),
        "operation": info.get("operation"),
        "operationParameters": {k: _text(v) for k, v in (info.get("operationParameters") or {}).items()},
        "operationMetrics": {k: _text(v) for k, v in (info.get("operationMetrics") or {}).items()} or None,
    }


def _text(value: Any) -> str | None:
    """A map value as history()'s map<string, string> holds it."""
    return value if isinstance(value, str) or value is None else json.dumps(value, separators=(",", ":"))


def log_properties(spark: SparkSession, path: str) -> dict[str, str] | None:
    """Replay the latest snapshot's commit files and return the table properties; None if only
    ``detail()`` can tell. An unreadable commit file is a :class:`CorruptTableError`."""
    from py4j.protocol import Py4JJavaError

    delta_log = _delta_log(spark, path)
    if delta_log is None:
        return None
    try:
        snapshot = _snapshot(spark, delta_log)
        if int(snapshot.version()) < 0:
            return None  # no table here: detail() gives the error
        deltas = snapshot.logSegment().deltas()
        fs = _log_file(spark, delta_log, 0)[1]
        for i in range(int(deltas.length())):
            file = deltas.apply(i).getPath()
            name = str(file.getName())
            try:
                text = _verified_local_text(str(file.toUri()))
                for line in filter(None, (_file_text(spark, fs, file) if text is None else text).splitlines()):
                    json.loads(line)
            except ValueError as err:
                version = int(name.split(".")[0]) if name.split(".")[0].isdigit() else "unknown"
                raise corrupt(str(path), version, f"{name} is not JSON: {err}") from None
        configuration = snapshot.metadata().configuration()
        return {str(k): str(v) for k, v in
                spark._jvm.scala.jdk.javaapi.CollectionConverters.asJava(configuration).items()}  # type: ignore[union-attr]
    except (Py4JJavaError, CorruptTableError):
        raise  # the caller translates a Java error (a checksum mismatch, a missing commit) or asks detail()
    except Exception as err:  # py4j could not reach a class or method of this Delta release
        log.debug("Delta log of %s not replayable through py4j (%s); using detail()", path, err)
        return None
