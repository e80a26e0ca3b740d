"""Delta log files written whole by the engine: a commit file created atomically and only if absent
(with Hadoop's ``.crc`` sidecar), and the ``commitInfo`` action of the engine's commits. Used by the
engine's commits (:mod:`engine.store._local_commit`) and table creation
(:mod:`engine.store._local_create`); no Spark, no other engine module."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

__all__ = ["commit_info", "put_checksum", "put_commit"]


def commit_info(read_version: int, operation: str, parameters: Mapping[str, str], metrics: Mapping[str, str], *,
                blind_append: bool) -> dict[str, Any]:
    """The ``commitInfo`` action of a commit written here (a new transaction id each call)."""
    from engine import __version__

    return {"commitInfo": {
        "timestamp": int(time.time() * 1000), "operation": operation, "operationParameters": dict(parameters),
        "readVersion": read_version, "isolationLevel": "Serializable", "isBlindAppend": blind_append,
        "operationMetrics": dict(metrics), "engineInfo": f"feature-factory/{__version__} (Python, pyarrow)",
        "txnId": str(uuid.uuid4()),
    }}


def put_commit(root: str, version: int, actions: list[dict[str, Any]]) -> bool:
    """Create ``_delta_log/<version>.json`` whole and only if absent; False if another writer has it."""
    log_dir = os.path.join(root, "_delta_log")
    final = os.path.join(log_dir, f"{version:020d}.json")
    temporary = os.path.join(log_dir, f".{version:020d}.json.{uuid.uuid4()}.tmp")
    text = "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions).encode("utf-8")
    with open(temporary, "wb") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, final)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    with contextlib.suppress(OSError):  # only the winner's: it cannot clobber another writer's
        put_checksum(log_dir, f"{version:020d}.json", text)
    return True


def put_checksum(directory: str, name: str, data: bytes) -> None:
    """Hadoop's ``.<name>.crc`` sidecar (CRC32 per 512-byte chunk, as its local file system writes
    it), put whole by rename: Hadoop then verifies the file and the store's log check reads it in
    Python (:func:`engine.store._delta_log._verified_local_text`) instead of through the JVM."""
    chunk = 512
    sums = b"".join(zlib.crc32(data[i:i + chunk]).to_bytes(4, "big") for i in range(0, len(data), chunk))
    temporary = os.path.join(directory, f".{name}.{uuid.uuid4()}.crc.tmp")
    with open(temporary, "wb") as handle:
        handle.write(b"crc\x00" + chunk.to_bytes(4, "big") + sums)
    os.replace(temporary, os.path.join(directory, f".{name}.crc"))
