"""How feature group tables are laid out: rows hash-bucketed by primary key, one Delta partition
per bucket, so a lookup reads one bucket per task and never shuffles the feature side.

A group created with ``buckets=N`` (the default, :data:`DEFAULT_BUCKETS`) has one more column in
its Delta table, ``__ff_bucket INT = pmod(hash(primary key columns...), N)`` (Spark's Murmur3
``hash``), and is partitioned by it (after the group's own ``partition_by`` columns). Delta's own
writers keep every data file inside one bucket -- MERGE, ``replaceWhere``, append and OPTIMIZE
all write per partition, as do the engine's own small commits (:mod:`engine.store._local_group_write`,
which compute the bucket with Spark's expression before collecting the rows) -- so the layout
holds for every version without further care.
Deletion vectors are off (a bucket's files are exactly its rows) and the layout is recorded in
the table's properties (``featurefactory.buckets``, ``featurefactory.bucketKeys``), which Delta
versions with the table. The column is the store's: :meth:`FeatureGroup.read` drops it, and
statistics, validation and key checks run before it is added.

:func:`bucketed_source` turns one Delta version of such a table into a
:class:`~engine.temporal.layout.BucketedSource` whose reader runs on the executors: it reads one
bucket's Parquet files with pyarrow, only the columns a lookup needs. It is offered only where
that read is exactly the table's rows: files on a file system the executors see as local paths
(``file:``), no deletion vectors, no column mapping, no partition columns besides the bucket.
Elsewhere (object stores, ``dbfs:``) lookups take the kernel strategy over the Spark read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError
from engine.store._local_delta import live_files, local_root, utc_timestamps

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from engine.store.feature_group import FeatureGroup
    from engine.temporal.layout import BucketedSource

__all__ = ["BUCKET_COLUMN", "DEFAULT_BUCKETS", "bucketed_source", "check_buckets", "create_group_table", "layout_of",
           "table_layout", "with_bucket"]

BUCKET_COLUMN = "__ff_bucket"
DEFAULT_BUCKETS = 16
MAX_BUCKETS = 4096
PROP_BUCKETS = "featurefactory.buckets"
PROP_KEYS = "featurefactory.bucketKeys"


def check_buckets(value: Any, *, argument: str = "buckets") -> int | None:
    """``None`` (no layout) or a bucket count in [1, 4096]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BUCKETS:
        raise InvalidArgumentError(argument=argument, expected=f"None or an integer in [1, {MAX_BUCKETS}]", found=repr(value),
                                   hint="About the number of cores lookups should use; 16 suits one machine.")
    return value


def table_layout(schema: StructType, primary_key: Sequence[str], partition_by: Sequence[str],
                 buckets: int | None) -> tuple[StructType, list[str], dict[str, str]]:
    """The Delta table's schema, partition columns and properties for a group's layout."""
    from pyspark.sql.types import IntegerType, StructField, StructType

    if buckets is None:
        return schema, list(partition_by), {}
    table = StructType([*schema.fields, StructField(BUCKET_COLUMN, IntegerType(), True)])
    properties = {PROP_BUCKETS: str(buckets), PROP_KEYS: json.dumps(list(primary_key)),
                  "delta.enableDeletionVectors": "false"}
    return table, [*partition_by, BUCKET_COLUMN], properties


def create_group_table(spark: SparkSession, group: FeatureGroup) -> None:
    """Create ``group``'s empty Delta table with its layout (an identical existing one is kept)."""
    from engine.store import delta

    schema, partitions, properties = table_layout(group.schema, group.primary_key, group.partition_by, group.buckets)
    delta.create_table(spark, group.path, schema, partition_by=partitions, properties=properties,
                       comment=group.description or None, exist_ok=True)


def layout_of(properties: Mapping[str, str]) -> tuple[int, list[str]] | None:
    """(buckets, key columns) from a table's properties, or None for a table without the layout."""
    if PROP_BUCKETS not in properties:
        return None
    return int(properties[PROP_BUCKETS]), list(json.loads(properties.get(PROP_KEYS) or "[]"))


def with_bucket(df: DataFrame, buckets: int, keys: Sequence[str], partition_by: Sequence[str],
                event_time: str) -> DataFrame:
    """``df`` with the bucket column (the same expression the lookup hashes the spine with),
    each task's rows sorted by the table's partition columns, then ``keys`` and ``event_time``:
    the writer needs the partition order anyway, and a bucket file sorted by (key, time) is one
    the lookup's match need not sort (:func:`engine.temporal._asof_numpy.sort_order`)."""
    from pyspark.sql import functions as F

    bucket = F.pmod(F.hash(*[F.col(_q(k)) for k in keys]), F.lit(buckets)).cast("int")
    order = [*partition_by, BUCKET_COLUMN, *keys, event_time]
    return df.withColumn(BUCKET_COLUMN, bucket).sortWithinPartitions(*[F.col(_q(c)) for c in order])


def bucketed_source(spark: SparkSession, path: str, *, version: int, properties: Mapping[str, str],
                    partition_by: Sequence[str] = (), names: Mapping[str, str] | None = None,
                    description: str = "") -> BucketedSource | None:
    """Version ``version`` of the laid-out table at ``path`` as a BucketedSource, or None where a
    direct read would not be exactly its rows (see the module docstring). ``properties``: the
    table's; ``partition_by``: the group's own partition columns (their values are not in the
    files: no direct read); ``names`` maps the lookup's column names to the table's."""
    from engine.store import delta
    from engine.temporal.layout import BucketedSource

    layout = layout_of(properties)
    if layout is None or partition_by or properties.get("delta.enableDeletionVectors", "false").lower() != "false":
        return None
    if properties.get("delta.columnMapping.mode", "none").lower() != "none":
        return None
    files, rows = _bucket_files_from_log(path, version)
    if files is None:  # listed by Spark: a time-travel snapshot and a job (0.3-1 s per group)
        frame = delta.read(spark, path, version=version)
        if BUCKET_COLUMN not in frame.columns:
            return None
        files = {}
        for uri in frame.inputFiles():
            local = local_root(uri)
            if local is None:
                return None  # not a local path on the executors: the Spark read is the way
            part = next((p for p in local.split("/") if p.startswith(BUCKET_COLUMN + "=")), None)
            if part is None:
                return None
            files.setdefault(int(part.split("=", 1)[1]), []).append(local)
    buckets, keys = layout
    lookup_names = {table: lookup for lookup, table in (names or {}).items()}
    reader = BucketFiles(files={b: tuple(sorted(f)) for b, f in files.items()},
                         physical={lookup: table for lookup, table in (names or {}).items()})
    return BucketedSource(buckets=buckets, key_columns=tuple(lookup_names.get(k, k) for k in keys),
                          read_bucket=reader, description=description or f"{path}@v{version}", rows=rows)


def _bucket_files_from_log(path: str, version: int) -> tuple[dict[int, list[str]] | None, int | None]:
    """Version ``version``'s live files by bucket, from the table's log replayed in Python
    (:func:`engine.store._local_delta.live_files`, a few ms), and its row count where every file
    has Delta's ``numRecords`` statistic; (None, None) where Spark must list them."""
    root = local_root(path)
    adds = None if root is None else live_files(path, version)
    if adds is None:
        return None, None
    files: dict[int, list[str]] = {}
    counts = []
    for add in adds:
        bucket = (add.get("partitionValues") or {}).get(BUCKET_COLUMN)
        relative = add["path"]
        local = local_root(relative) if ":" in relative.split("/", 1)[0] else os.path.join(root, relative)
        if bucket is None or local is None:
            return None, None  # a file outside the layout, or not on a local path
        files.setdefault(int(bucket), []).append(local)
        counts.append(_records(add))
    return files, None if None in counts else sum(c for c in counts if c is not None)


def _records(add: Mapping[str, Any]) -> int | None:
    """An ``add`` action's ``numRecords`` statistic, None where it has none."""
    try:
        count = json.loads(add.get("stats") or "{}").get("numRecords")
    except (TypeError, ValueError):
        return None
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


@dataclass(frozen=True)
class BucketFiles:
    """The reader shipped to the executors: one bucket's Parquet files, read with pyarrow.

    A file written before a column was added (schema evolution) lacks it: its rows get NULLs,
    as Delta's own reader gives them."""

    files: Mapping[int, tuple[str, ...]]
    physical: Mapping[str, str]  # lookup column -> table column, where they differ

    def __call__(self, bucket: int, columns: Sequence[str]) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted = {c: self.physical.get(c, c) for c in columns}
        parts = []
        for file in self.files.get(bucket, ()):
            present = set(pq.read_schema(file).names)
            table = pq.read_table(file, columns=[t for t in dict.fromkeys(wanted.values()) if t in present],
                                  coerce_int96_timestamp_unit="us", use_threads=False)
            parts.append(pa.table({c: utc_timestamps(table.column(t)) if t in present else pa.nulls(table.num_rows)
                                   for c, t in wanted.items()}))
        if not parts:
            return pa.table({c: pa.nulls(0) for c in wanted})
        return pa.concat_tables(parts, promote_options="default")


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
