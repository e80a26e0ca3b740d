"""The vectorised as-of strategy: one shuffle by key bucket, then numpy per bucket
(``cogroup().applyInArrow``).

Spark does what it is good at -- distributing rows by key -- and little else: the left rows
(keys, the time as a number, the left columns) and the right rows of every table of the group
(keys, time, payload and tie-breakers; one frame with a side tag when there are several tables)
are hashed into ``partitions`` buckets of keys; each bucket's two Arrow tables are matched at
once by :mod:`engine.temporal._asof_numpy`: a sort of the right rows by (key, time) and a
``searchsorted`` per left row, in native code. Left and right travel as separate tables, so no
row carries NULL padding for the other side's columns through the Arrow conversion (measured:
the conversion costs in proportion to the columns, NULL ones included).

Hot keys (backward lookups only) are cut into time slices: a slice is partitioned on its own and
receives, per right side, the latest right row of the earlier slices of its key (the carried-in
row), so no task holds a hot key's whole history -- as in the sweep strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.temporal._asof_numpy import SIDE, TIME, PartitionSpec, SideSpec, asof_partition
from engine.temporal._asof_sweep import BOUNDS, KEY, SLICE, RightSide

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["kernel_join"]

BUCKET = "__ff_bucket"


def kernel_join(
    left: DataFrame,
    left_payload: Sequence[str],
    n_keys: int,
    rights: Sequence[RightSide],
    *,
    partitions: int,
    hot_slices: DataFrame | None = None,
) -> DataFrame:
    """Same inputs and result as :func:`engine.temporal._asof_sweep.sweep`."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField, StructType

    keys = [KEY.format(i) for i in range(n_keys)]
    names = iter(f"__ff_c{j}" for j in range(10**9))
    left_cols = {c: next(names) for c in left_payload}
    lframe = left.select(*keys, TIME, *[F.col(_q(c)).alias(n) for c, n in left_cols.items()])
    parts, sides = [], []
    out_names = list(left_cols.values())
    final = [F.col(n).alias(c) for c, n in left_cols.items()]
    shared: list[tuple[str, Any]] = []  # the right frame's columns: (name, type), shared by sides
    for i, side in enumerate(rights):
        used: set[str] = set()

        def column_for(c: str, side: RightSide = side, used: set[str] = used) -> str:
            """A right-frame column of c's type not yet used by this side (tables of one key set
            share columns instead of padding each other's with NULLs)."""
            dtype = side.frame.schema[c].dataType
            name = next((n for n, t in shared if t == dtype and n not in used), None)
            if name is None:
                name = next(names)
                shared.append((name, dtype))
            used.add(name)
            return name

        payload = {c: column_for(c) for c in side.payload}
        ties = {c: column_for(c) for c in side.tie_breaker}
        frame = side.frame.where(F.col(TIME).isNotNull())
        for key in keys:
            frame = frame.where(F.col(key).isNotNull())
        tag = [F.lit(i + 1).cast("byte").alias(SIDE)] if len(rights) > 1 else []
        parts.append(frame.select(
            *keys, TIME, *tag, *[F.col(_q(c)).alias(n) for c, n in payload.items()],
            *[F.col(_q(c)).alias(n) for c, n in ties.items()],
        ))
        sides.append(SideSpec(payload=list(payload.values()), ties=list(ties.values()), direction=side.direction,
                              allow_exact_matches=side.allow_exact_matches, tolerance=side.tolerance))
        outs = [f"__ff_o{i}_{j}" for j in range(len(payload))]
        out_names += outs
        final += [F.col(o).alias(c) for o, c in zip(outs, payload, strict=True)]
    rframe = parts[0]
    for part in parts[1:]:  # several tables on these keys: one right frame
        rframe = rframe.unionByName(part, allowMissingColumns=True)

    if hot_slices is not None:
        if any(side.direction != "backward" for side in rights):
            raise ValueError("hot-key slicing supports backward lookups only")
        lframe, rframe = _slice(lframe, rframe, hot_slices, keys, sides)
        by = [*keys, SLICE]
    else:
        by = keys
    # one group per shuffle partition (``partitions`` is the session's shuffle partitions, the
    # count the cogroup's exchanges use): the keys (and slice) hashed into ``partitions`` buckets,
    # each bucket named by a value that Spark's exchange sends to the partition of its own number
    # (hashing a bucket number again would pile several buckets into some partitions and none
    # into others)
    if by:
        names_of = F.array(*[F.lit(v) for v in partition_values(partitions)])
        bucket = F.element_at(names_of, F.pmod(F.hash(*[F.col(c) for c in by]), F.lit(partitions)) + 1)
    else:
        bucket = F.lit(0)
    lframe = lframe.withColumn(BUCKET, bucket)
    rframe = rframe.withColumn(BUCKET, bucket)

    schema = StructType([*[lframe.schema[n] for n in left_cols.values()],
                         *[StructField(o, rframe.schema[n].dataType, True)
                           for o, n in zip(out_names[len(left_cols):], [n for s in sides for n in s.payload], strict=True)]])
    spec = PartitionSpec(keys=keys, left=list(left_cols.values()), sides=sides)

    def run(left_rows: Any, right_rows: Any) -> Any:
        return asof_partition(left_rows, right_rows, spec, out_names)

    grouped = lframe.groupBy(BUCKET).cogroup(rframe.groupBy(BUCKET))
    return grouped.applyInArrow(run, schema).select(*final)


def _slice(lframe: DataFrame, rframe: DataFrame, hot_slices: DataFrame, keys: list[str],
           sides: list[SideSpec]) -> tuple[DataFrame, DataFrame]:
    """Give every row a time slice (0 for keys that are not hot) and add to the right rows, for
    each hot key, slice and side, the latest right row (greatest time, then tie order) of the
    earlier slices: the carried-in row."""
    from pyspark.sql import functions as F

    def sliced(frame: DataFrame) -> DataFrame:
        joined = frame.join(F.broadcast(hot_slices), on=keys, how="left")
        count_le = F.aggregate(F.col(BOUNDS), F.lit(0), lambda acc, b: acc + F.when(F.col(TIME) >= b, 1).otherwise(0))
        slice_no = F.when(F.col(BOUNDS).isNull() | F.col(TIME).isNull(), F.lit(0)).otherwise(count_le)
        return joined.withColumn(SLICE, slice_no.cast("int"))

    right = sliced(rframe)
    result = right.drop(BOUNDS)
    hot = right.where(F.col(BOUNDS).isNotNull())
    row_cols = [c for c in result.columns if c not in (*keys, SLICE)]
    for i, side in enumerate(sides):
        order = F.struct(F.col(TIME), *[F.col(c) for c in (side.ties or side.payload)])
        mine = hot.where(F.col(SIDE) == i + 1) if len(sides) > 1 else hot
        last = (
            mine.groupBy(*keys, SLICE)
            .agg(F.max_by(F.struct(*row_cols), order).alias("__ff_row"), F.first(F.size(BOUNDS)).alias("__ff_n"))
            .where(F.col(SLICE) < F.col("__ff_n"))
        )
        carried = last.select(
            *keys, F.col(SLICE).alias("__ff_src"), "__ff_row",
            F.explode(F.sequence(F.col(SLICE) + 1, F.col("__ff_n"))).alias(SLICE),
        )
        best = carried.groupBy(*keys, SLICE).agg(F.max_by("__ff_row", "__ff_src").alias("__ff_row"))
        result = result.unionByName(best.select(*keys, SLICE, "__ff_row.*"))
    return sliced(lframe).drop(BOUNDS), result


def _murmur3_int(value: int, seed: int = 42) -> int:
    """Spark's ``Murmur3_x86_32.hashInt`` (the hash its exchanges partition by), as a signed int."""
    mask = 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    k1 = (value & mask) * 0xCC9E2D51 & mask
    k1 = rotl(k1, 15) * 0x1B873593 & mask
    h1 = rotl(seed ^ k1, 13)
    h1 = (h1 * 5 + 0xE6546B64) & mask
    h1 ^= 4
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & mask
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & mask
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def partition_values(partitions: int) -> list[int]:
    """For each partition ``p`` of an exchange into ``partitions``, an int that Spark hashes there."""
    found: dict[int, int] = {}
    value = 0
    while len(found) < partitions:
        found.setdefault(_murmur3_int(value) % partitions, value)
        value += 1
    return [found[p] for p in range(partitions)]


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
