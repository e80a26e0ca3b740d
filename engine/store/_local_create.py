"""An empty Delta table created without a Spark job, where that is exactly what Delta would write.

``DeltaTable.create(...).execute()`` costs 0.5-1 s on local[2] (0.8 s cold), for a commit of three
actions. A store creates many small tables (each group version, the registry's, the validation
reports', the quarantine's, the pipelines' progress): on a local path, and only for tables that
need nothing beyond Delta's oldest protocol (reader 1, writer 2), :func:`create` writes version 0
itself, ``commitInfo`` + ``metaData`` + ``protocol`` as Delta 4 writes them, created whole and only if
absent (:func:`engine.store._log_files.put_commit`). Anything else -- a column type, field
metadata or table property that needs a table feature or that Delta interprets, session defaults
for new tables (``spark.databricks.delta.properties.defaults.*``), a remote or non-local path --
returns None and Spark creates the table.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = ["create"]

# table properties Delta only stores (or, for these delta.* ones, reads without a table feature)
_PLAIN_PROPERTIES = ("delta.checkpointInterval", "delta.logRetentionDuration", "delta.deletedFileRetentionDuration",
                     "delta.checkpointRetentionDuration")
_SESSION_DEFAULTS = "spark.databricks.delta.properties.defaults."
_ATOMIC = frozenset({"string", "binary", "boolean", "tinyint", "smallint", "int", "bigint", "float", "double",
                     "date", "timestamp"})


def create(spark: SparkSession, path: str, schema: StructType, *, partition_by: Sequence[str] = (),
           properties: Mapping[str, str] | None = None, comment: str | None = None) -> bool | None:
    """Create the empty table at local ``path``: True if created here, False if a table (or another
    creator's version 0) is already there, None if Spark must create it (see the module docs)."""
    from engine.remote import is_remote
    from engine.store import _local_delta, _log_files

    root = None if is_remote(spark) else _local_delta.local_root(path)
    properties = {k: str(v) for k, v in (properties or {}).items()}
    if root is None or not _plain(schema, properties) or _session_defaults(spark):
        return None
    log_dir = os.path.join(root, "_delta_log")
    if os.path.isdir(log_dir) and any(n.endswith(".json") or n.endswith(".checkpoint.parquet") for n in os.listdir(log_dir)):
        return False
    os.makedirs(log_dir, exist_ok=True)
    now = int(time.time() * 1000)
    table_id = str(uuid.uuid4())
    parameters = {"partitionBy": json.dumps(list(partition_by)), "clusterBy": "[]", "isManaged": "false",
                  "properties": json.dumps(properties, separators=(",", ":"))}
    if comment:
        parameters["description"] = comment
    info = _log_files.commit_info(-1, "CREATE TABLE", parameters, {}, blind_append=True)
    info["commitInfo"].pop("readVersion")  # a creation reads nothing (as Delta writes it)
    schema_string = json.dumps(schema.jsonValue(), separators=(",", ":"))  # Spark's key order, as Delta writes it
    meta: dict[str, Any] = {"id": table_id, "format": {"provider": "parquet", "options": {}},
                            "schemaString": schema_string, "partitionColumns": list(partition_by),
                            "configuration": properties, "createdTime": now}
    if comment:
        meta["description"] = comment
    actions = [info, {"metaData": meta}, {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}]
    return bool(_log_files.put_commit(root, 0, actions))


def _plain(schema: StructType, properties: Mapping[str, str]) -> bool:
    """Nothing in the schema or the properties needs more than protocol (1, 2)."""
    for key, value in properties.items():
        if key.startswith("delta."):
            if key == "delta.enableDeletionVectors" and value.lower() == "false":
                continue
            if key not in _PLAIN_PROPERTIES:
                return False
    return all(set(f.metadata) <= {"comment"} and _plain_type(f.dataType) for f in schema.fields)


def _plain_type(data_type: DataType) -> bool:
    from pyspark.sql.types import ArrayType, DecimalType, MapType, StructType

    if isinstance(data_type, StructType):
        return all(set(f.metadata) <= {"comment"} and _plain_type(f.dataType) for f in data_type.fields)
    if isinstance(data_type, ArrayType):
        return _plain_type(data_type.elementType)
    if isinstance(data_type, MapType):
        return _plain_type(data_type.keyType) and _plain_type(data_type.valueType)
    return isinstance(data_type, DecimalType) or data_type.simpleString() in _ATOMIC  # no collation, NTZ, variant


def _session_defaults(spark: SparkSession) -> bool:
    """The session sets defaults for new tables' properties or protocol: Spark applies them."""
    try:
        return any(key.startswith(_SESSION_DEFAULTS) for key in spark.conf.getAll)
    except Exception:  # pragma: no cover - a session that cannot list its settings: let Spark decide
        return True
