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

The ``whole`` variant (:func:`whole_join`) is for right tables that are small together (their
row counts known, at most :data:`WHOLE_ROWS`): the spine is not shuffled by key at all, and each
task reads every bucket of every lookup (once per Python worker and query) and matches its spine
rows against them. A view's passes over small groups then cost no key shuffle each: the caller
(:func:`engine.temporal.asof.asof_join_many`) spreads the spine over the cores once, round robin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.temporal._asof_numpy import TIME, PartitionSpec, SideSpec, match
from engine.temporal._asof_sweep import KEY, RightSide

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.temporal.layout import BucketedSource

__all__ = ["FUSED_ROWS", "WHOLE_ROWS", "layout_blocker", "layout_join", "whole_join", "whole_rows"]

BUCKET = "__ff_bucket"
TARGET = "__ff_target"  # the shuffle partition of the spine row's bucket
BATCH_ROWS = 65_536
WHOLE_ROWS = 1_000_000
"""A pass whose laid-out right tables hold at most this many rows together reads them whole in
every task (strategy ``whole``) instead of shuffling the spine by bucket. 0: never."""
FUSED_ROWS = 2 * WHOLE_ROWS
"""The passes of one query read whole together hold at most this many rows (a Python worker
holds them for the query's tasks); further small passes take the layout strategy."""
_WHOLE_CACHE: dict[tuple[str, tuple[str, ...]], Any] = {}  # per Python worker: the latest queries' tables
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

    reads, schema, final = _reads(left, left_payload, rights)
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

    return spine.mapInArrow(run, schema).select(*final)


def whole_rows(sources: Sequence[BucketedSource | None]) -> int | None:
    """The rows of a pass's right tables together if they may be read whole (every one laid out,
    its count known, at most :data:`WHOLE_ROWS` in all), else None."""
    rows = [source.rows if source is not None else None for source in sources]
    total = None if None in rows else sum(r or 0 for r in rows)
    return total if total is not None and total <= WHOLE_ROWS else None


def whole_join(left: DataFrame, passes: Sequence[tuple[Sequence[str], str, Sequence[RightSide]]]) -> DataFrame:
    """Several passes of the ``whole`` strategy in ONE Python round trip, without a key shuffle:
    ``passes`` are (the spine's key columns, its TIMESTAMP time column, the pass's right sides).
    Each task matches its spine rows (as they are partitioned) against every bucket of every
    lookup, read whole; the result is ``left``'s columns, then each pass's payloads."""
    import uuid

    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    payload = list(left.columns)
    query = uuid.uuid4().hex  # the cache key: files are immutable, but a cache never outlives its query's tables
    wholes: dict[int, _Whole] = {}  # lookups of one table share its reader (and its read)
    plans, fields, final = [], [], [F.col(_q(c)) for c in payload]
    for p, (by, on, rights) in enumerate(passes):
        reads, schema, renames = _reads(left, [], rights, tag=f"{p}_")
        readers = [wholes.setdefault(id(side.source.read_bucket),
                                     _Whole(side.source.read_bucket, side.source.buckets, f"{query}/{len(wholes)}"))
                   for side in rights if side.source is not None]
        plans.append((list(by), on, reads, readers))
        fields += schema.fields
        final += renames
    schema = StructType([*left.schema.fields, *fields])

    def run(batches: Any) -> Any:
        import pyarrow as pa

        received = list(batches)  # one match per task and side: each sorts a whole right table
        if not received or not sum(b.num_rows for b in received):
            return
        table = pa.Table.from_batches(received)
        columns, names = list(table.columns), list(table.column_names)
        for p, (by, on, reads, readers) in enumerate(plans):
            keys = [KEY.format(i) for i in range(len(by))]
            spine = pa.Table.from_arrays([*[table.column(c) for c in by], _micros(table.column(on))],
                                         names=[*keys, TIME])
            found = _bucket_result(spine, 0, keys, [], reads, readers, tag=f"{p}_")
            columns += found.columns
            names += found.column_names
        yield from pa.Table.from_arrays(columns, names=names).to_batches(max_chunksize=BATCH_ROWS)

    return left.mapInArrow(run, schema).select(*final)


@dataclass(frozen=True)
class _Whole:
    """A reader of every bucket at once, cached in the Python worker for the tasks of one query."""

    read_bucket: Any
    buckets: int
    token: str

    def __call__(self, _bucket: int, columns: Sequence[str]) -> Any:
        import pyarrow as pa

        key = (self.token, tuple(columns))
        if key not in _WHOLE_CACHE:
            table = pa.concat_tables([self.read_bucket(b, list(columns)) for b in range(self.buckets)],
                                     promote_options="default")
            # earlier queries' tables leave first, while more than this query may hold is cached
            for old in [k for k in _WHOLE_CACHE if k[0].split("/")[0] != self.token.split("/")[0]]:
                if sum(t.num_rows for t in _WHOLE_CACHE.values()) + table.num_rows <= FUSED_ROWS:
                    break
                del _WHOLE_CACHE[old]
            _WHOLE_CACHE[key] = table
        return _WHOLE_CACHE[key]


def _reads(left: DataFrame, left_payload: Sequence[str], rights: Sequence[RightSide],
           tag: str = "") -> tuple[list[_SideRead], Any, list[Any]]:
    """What each task reads per side, the mapInArrow schema and the final renaming select
    (payload columns ``__ff_o<tag><side>_<i>``)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_type
    from pyspark.sql.types import StructField, StructType

    reads, out_fields = [], []
    for j, side in enumerate(rights):
        types = {c: to_arrow_type(side.frame.schema[c].dataType, timezone="UTC") for c in [*side.payload, *side.tie_breaker]}
        reads.append(_SideRead(pairs=tuple(side.read_columns), types=types, spec=SideSpec(
            payload=list(side.payload), ties=list(side.tie_breaker), direction=side.direction,
            allow_exact_matches=side.allow_exact_matches, tolerance=side.tolerance)))
        out_fields += [StructField(f"__ff_o{tag}{j}_{i}", side.frame.schema[c].dataType, True)
                       for i, c in enumerate(side.payload)]
    schema = StructType([*[left.schema[c] for c in left_payload], *out_fields])
    final = [F.col(_q(c)) for c in left_payload]
    final += [F.col(f"__ff_o{tag}{j}_{i}").alias(c) for j, side in enumerate(rights) for i, c in enumerate(side.payload)]
    return reads, schema, final


def _bucket_result(left: Any, bucket: int, keys: list[str], left_names: list[str], reads: Sequence[_SideRead],
                   readers: Sequence[Any], tag: str = "") -> Any:
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
        names += [f"__ff_o{tag}{j}_{i}" for i in range(len(read.spec.payload))]
    return pa.Table.from_arrays(columns, names=names)


def _right_table(raw: Any, read: _SideRead, left: Any, keys: list[str]) -> Any:
    """The side's rows of one bucket (``raw``: as read), renamed as its frame and typed as Spark
    would send them."""
    import pyarrow as pa

    arrays, names = [], []
    for src, name in read.pairs:
        column = raw.column(src)
        if name == TIME:
            column = _micros(column)
        elif name in keys:
            column = column.cast(left.schema.field(name).type)
        else:
            column = column.cast(read.types[name])
        arrays.append(column)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def _micros(column: Any) -> Any:
    """A time column as microseconds since the epoch (Spark's ``unix_micros``), as int64."""
    import pyarrow as pa

    return column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
