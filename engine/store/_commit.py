"""Running one-commit Delta writes: optimistic-concurrency conflicts retried, and the failures a
caller can act on turned into :mod:`engine.errors` errors.

* a conflict with a concurrent writer is retried with jittered backoff (the losing attempt
  committed nothing, every write of :mod:`engine.store.delta` is safe to repeat); after
  ``MAX_ATTEMPTS`` it is a :class:`ConcurrentWriteError`;
* an unreadable commit file in ``_delta_log`` (truncated, not JSON, checksum mismatch) is a
  :class:`CorruptTableError` naming the table and the version, raised at once (never retried:
  a retry would fail the same way);
* a file system that refuses the write (no space left, read-only, no permission) is a
  :class:`StorageError`; Delta commits only after every data file is written, so the table
  is still at its previous version.

:func:`check_log` replays the log of the latest snapshot (Delta caches it for the write that
follows) so a corrupt log is refused before anything is written: Delta alone would happily
append a new version on top of an unreadable one.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from engine.errors import AlreadyExistsError, ConcurrentWriteError, CorruptTableError, NotFoundError, StorageError
from engine.store._delta_log import corrupt, log_properties
from engine.store._delta_sql import delta_table_api

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("engine.store.delta")
T = TypeVar("T")

MAX_ATTEMPTS = 5
_CONFLICTS = ("ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
              "ConcurrentTransactionException", "ProtocolChangedException", "MetadataChangedException",
              "DELTA_CONCURRENT_")
_CORRUPT = ("MALFORMED_RECORD_IN_PARSING", "ChecksumException", "JsonParseException", "JsonEOFException",
            "JsonMappingException", "DELTA_LOG_FILE_NOT_FOUND", "DELTA_VERSIONS_NOT_CONTIGUOUS",
            "DELTA_STATE_RECOVER_ERROR")
_STORAGE = {"No space left on device": "no space left on device", "Read-only file system": "read-only file system",
            "Permission denied": "permission denied", "Disk quota exceeded": "disk quota exceeded"}
_LOG_FILE = re.compile(r"_delta_log/(\d{20})\.(?:json|checkpoint)")


def is_conflict(err: BaseException) -> bool:
    try:
        from delta.exceptions import DeltaConcurrentModificationException

        if isinstance(err, DeltaConcurrentModificationException):
            return True
    except ImportError:  # pragma: no cover
        pass
    return any(marker in str(err) for marker in _CONFLICTS)


def translate(err: BaseException, *, target: str) -> BaseException:
    """The engine error for ``err`` (a corrupt log, a refusing file system), or ``err`` itself."""
    text = str(err)
    if "_delta_log" in text and any(marker in text for marker in _CORRUPT):  # the log, not the data read
        files = _LOG_FILE.findall(text)
        return corrupt(target, int(files[0]) if files else "unknown", next((m for m in _CORRUPT if m in text), "unreadable"))
    for marker, reason in _STORAGE.items():
        if marker in text:
            return StorageError(target=target, reason=reason,
                                hint="Free space (or fix the permissions) and re-run: the write is safe to repeat.")
    return err


def retry(action: Callable[[], T], *, target: str, attempts: int = MAX_ATTEMPTS) -> T:
    """Run a one-commit write, retrying conflicts with concurrent writers with jittered backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as err:
            if not is_conflict(err):
                found = translate(err, target=target)
                if found is err:
                    raise
                raise found from err
            if attempt == attempts:
                raise ConcurrentWriteError(target=target, attempts=attempts, reason=str(err).splitlines()[0][:200]) from err
            delay = min(8.0, 0.2 * 2**attempt) * (0.5 + random.random())
            log.warning("%s: concurrent commit conflict (attempt %d/%d), retrying in %.1fs", target, attempt, attempts, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def check_log(spark: SparkSession, path: str) -> dict[str, str]:
    """Replay the table's latest snapshot; return its table properties.

    A log Delta cannot replay is a :class:`CorruptTableError` naming the table and the version.
    On a classic session the commit files are read through Delta's JVM classes (no Spark job:
    :func:`engine.store._delta_log.log_properties`), else through ``DeltaTable.detail()``.
    """
    from engine.store._delta_sql import delta_table_api

    try:
        properties = log_properties(spark, path)
    except CorruptTableError:
        raise
    except Exception as err:  # a Java error: a corrupt log is reported, anything else is detail()'s to tell
        found = translate(err, target=path)
        if found is not err:
            raise found from None
        properties = None
    if properties is not None:
        return properties
    try:
        row = delta_table_api(spark).forPath(spark, path).detail().select("properties").first()
    except Exception as err:
        found = translate(err, target=path)
        if found is err:
            raise
        raise found from None
    return dict(row["properties"] or {}) if row else {}


def created_concurrently(spark: SparkSession, path: str, err: BaseException) -> bool:
    """Whether ``err`` (from creating a table at ``path``) means another writer created it at the
    same time: then wait (bounded) until its commit is visible and return True.

    Visibility is checked with a read, which refreshes Delta's cached view of the log
    (``DeltaTable.isDeltaTable`` may answer from a stale one when another *process* created it).
    """
    if not any(m in str(err) for m in ("ALREADY_EXISTS", "NON_EMPTY_LOCATION", "DELTA_PATH_EXISTS")):
        return False
    for delay in (0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0):
        try:
            _ = spark.read.format("delta").load(path).schema
            return True
        except Exception:
            time.sleep(delay)
    raise AlreadyExistsError(kind="folder", name=path, hint="It holds files but no Delta table.") from None


def table_exists(spark: SparkSession, path: str) -> bool:
    DeltaTable = delta_table_api(spark)  # noqa: N806 - Delta's own class, or its SQL twin on Spark Connect
    return bool(DeltaTable.isDeltaTable(spark, str(path)))


def require_table(spark: SparkSession, path: str, *, write: bool = False) -> None:
    """The table exists (and, before a write, its log replays: a corrupt log is refused)."""
    if not table_exists(spark, path):
        raise NotFoundError(kind="Delta table", name=str(path), hint="Create it first (create_table).")
    if write:
        check_log(spark, str(path))

