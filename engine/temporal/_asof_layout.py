"""The layout as-of strategy: right tables laid out in hash buckets, only the spine shuffled.

When every right table of a pass is a :class:`~engine.temporal.layout.BucketedSource` with the
same bucket count and key columns (feature groups written by the store), the right rows are
already where a lookup needs them. The spine rows get the same bucket number (Spark's
``pmod(hash(keys), buckets)``, over the spine's key columns, which have the right keys' types),
are shuffled into one partition per bucket (adaptive execution merges small neighbouring
partitions and splits skewed ones), and each task

1. gathers its spine rows (one bucket, or several buckets' one after the other),
2. reads that bucket's right rows of every lookup with the source's own reader (Arrow, only the
   columns the lookup needs: keys, time, payload, tie-breakers),
3. matches them with the same numpy code as the kernel strategy
   (:func:`engine.temporal._asof_numpy.match`) and returns its spine rows with the payloads.

No right row crosses a Spark shuffle or the JVM -> Python conversion; the spine is the only side
that moves. Hot keys are not sliced by time here: a hot key's right rows are one bucket's read,
while adaptive execution may split a skewed bucket's spine rows over several tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.temporal._asof_numpy import TIME, PartitionSpec, SideSpec, match
from engine.temporal._asof_sweep import KEY, RightSide

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["layout_blocker", "layout_join"]

BUCKET = "__ff_bucket"
TARGET = "__ff_target"  # the shuffle partition of the spine row's bucket
BATCH_ROWS = 65_536
_SIMPLE = ("boolean", "tinyint", "smallint", "int", "bigint", "float", "double", "string", "binary", "date",
           "timestamp", "timestamp_ntz")


@dataclass(frozen=True)
class _SideRead:
    """What a task reads for one right side and how it renames it: ``pairs`` are (column of the
    source, column of the side's frame); the time column appears twice (as the number ``__ff_t``
    and as its output column)."""

    pairs: tuple[tuple[str, str], ...]
    types: dict[str, Any]  # frame column -> the Arrow type Spark expects (payload and tie columns)
    spec: SideSpec


def hash_order(side: RightSide, n_keys: int) -> tuple[int, ...] | None:
    """The positions of the pass's key columns in the source's hash order, or None when the
    source is not bucketed on exactly these keys."""
    source = side.source
    if source is None:
        return None
    by_frame = {frame: src for src, frame in side.read_columns}
    names = [by_frame.get(KEY.format(i)) for i in range(n_keys)]
    frame_keys = {src: i for i, src in enumerate(names) if src is not None}
    if len(frame_keys) != n_keys or set(source.key_columns) != set(frame_keys):
        return None
    return tuple(frame_keys[k] for k in source.key_columns)


def layout_blocker(n_keys: int, rights: Sequence[RightSide], time_kinds: set[str]) -> str | None:
    """Why the layout strategy cannot run this pass, or None."""
    if not n_keys:
        return "no key columns"
    if any(side.source is None for side in rights):
        return "not every lookup reads a table laid out in hash buckets"
    buckets = {side.source.buckets for side in rights if side.source is not None}
    orders = {hash_order(side, n_keys) for side in rights}
    if len(buckets) != 1 or len(orders) != 1 or None in orders:
        return "the lookups' tables are bucketed differently (bucket count or key columns)"
    if time_kinds != {"timestamp"}:
        return f"time columns of kinds {sorted(time_kinds)} (the layout strategy reads TIMESTAMP event times)"
    for side in rights:
        for column in [*side.payload, *side.tie_breaker]:
            dtype = side.frame.schema[column].dataType
            if dtype.simpleString() not in _SIMPLE and not dtype.simpleString().startswith("decimal"):
                return f"column {column!r} is {dtype.simpleString()} (the layout strategy reads atomic types)"
    return None


def layout_join(left: DataFrame, left_payload: Sequence[str], n_keys: int, rights: Sequence[RightSide]) -> DataFrame:
    """Same inputs and result as :func:`engine.temporal._asof_sweep.sweep`; ``layout_blocker``
    must have returned None."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_type
    from pyspark.sql.types import StructField, StructType

    from engine.temporal._asof_kernel import partition_values

    source = rights[0].source
    assert source is not None
    order = hash_order(rights[0], n_keys)
    assert order is not None
    buckets = source.buckets
    keys = [KEY.format(i) for i in range(n_keys)]
    bucket = F.pmod(F.hash(*[F.col(keys[i]) for i in order]), F.lit(buckets)).cast("int")
    # each bucket to the partition of its own number (see engine.temporal._asof_kernel.partition_values),
    # by a rebalance: adaptive execution merges neighbouring small partitions (a small spine is a
    # few tasks, not one per bucket, each paying a Python worker's start) and splits a skewed one
    # (any split of a bucket's spine rows is exact: each part reads the whole bucket)
    target = F.element_at(F.array(*[F.lit(v) for v in partition_values(buckets)]), F.col(BUCKET) + 1)
    spine = left.select(*keys, TIME, *[F.col(_q(c)) for c in left_payload]).withColumn(BUCKET, bucket)
    spine = spine.withColumn(TARGET, target).hint("rebalance", buckets, TARGET).drop(TARGET)

    reads, out_fields = [], []
    for j, side in enumerate(rights):
        types = {c: to_arrow_type(side.frame.schema[c].dataType, timezone="UTC") for c in [*side.payload, *side.tie_breaker]}
        reads.append(_SideRead(pairs=tuple(side.read_columns), types=types, spec=SideSpec(
            payload=list(side.payload), ties=list(side.tie_breaker), direction=side.direction,
            allow_exact_matches=side.allow_exact_matches, tolerance=side.tolerance)))
        out_fields += [StructField(f"__ff_o{j}_{i}", side.frame.schema[c].dataType, True)
                       for i, c in enumerate(side.payload)]
    schema = StructType([*[left.schema[c] for c in left_payload], *out_fields])
    readers = [side.source.read_bucket for side in rights if side.source is not None]
    left_names = list(left_payload)

    def run(batches: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        received = list(batches)
        if not received:
            return
        table = pa.Table.from_batches(received)
        if not table.num_rows:
            return
        numbers = table.column(BUCKET)
        for value in pc.unique(numbers).to_pylist():
            rows = table.filter(pc.equal(numbers, value)) if len(pc.unique(numbers)) > 1 else table
            result = _bucket_result(rows, int(value), keys, left_names, reads, readers)
            yield from result.to_batches(max_chunksize=BATCH_ROWS)

    final = [F.col(_q(c)) for c in left_payload]
    final += [F.col(f"__ff_o{j}_{i}").alias(c) for j, side in enumerate(rights) for i, c in enumerate(side.payload)]
    return spine.mapInArrow(run, schema).select(*final)


def _bucket_result(left: Any, bucket: int, keys: list[str], left_names: list[str], reads: Sequence[_SideRead],
                   readers: Sequence[Any]) -> Any:
    """One bucket: its spine rows with every side's matched payload."""
    import pyarrow as pa

    columns = [left.column(c) for c in left_names]
    names = list(left_names)
    cache: dict[tuple[int, tuple[str, ...]], Any] = {}  # lookups of one table read its files once
    for j, (read, reader) in enumerate(zip(reads, readers, strict=True)):
        wanted = tuple(dict.fromkeys(src for src, _ in read.pairs))
        if (id(reader), wanted) not in cache:
            cache[(id(reader), wanted)] = reader(bucket, list(wanted))
        right = _right_table(cache[(id(reader), wanted)], read, left, keys)
        if right.num_rows:
            found = match(left, right, PartitionSpec(keys=keys, left=left_names, sides=[read.spec]))[0]
            index = pa.array(found, mask=found < 0)
            columns += [right.column(c).take(index) for c in read.spec.payload]
        else:
            columns += [pa.nulls(left.num_rows, read.types[c]) for c in read.spec.payload]
        names += [f"__ff_o{j}_{i}" for i in range(len(read.spec.payload))]
    return pa.Table.from_arrays(columns, names=names)


def _right_table(raw: Any, read: _SideRead, left: Any, keys: list[str]) -> Any:
    """The side's rows of one bucket (``raw``: as read), renamed as its frame and typed as Spark
    would send them."""
    import pyarrow as pa

    arrays, names = [], []
    for src, name in read.pairs:
        column = raw.column(src)
        if name == TIME:  # the event time as microseconds since the epoch (Spark's unix_micros)
            column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        elif name in keys:
            column = column.cast(left.schema.field(name).type)
        else:
            column = column.cast(read.types[name])
        arrays.append(column)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
