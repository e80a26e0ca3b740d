"""The vectorised as-of strategy: one shuffle by key, then numpy per partition (``mapInArrow``).

Spark does what it is good at -- distributing rows by key -- and nothing else: the left rows and
the rows of every right table of the group are unioned into one narrow frame (keys, the time as
a number, a side tag, and the columns that come out: the left columns and each side's payload
and tie-breakers, NULL in other sides' rows), hash-partitioned by the keys (one Exchange, no
sort), and each partition is matched at once by :mod:`engine.temporal._asof_numpy`: a sort of
the right rows by (key, time, tie order) and a ``searchsorted`` per left row, in native code.

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
    from pyspark.sql.types import StructType

    keys = [KEY.format(i) for i in range(n_keys)]
    names = iter(f"__ff_c{j}" for j in range(10**9))
    left_cols = {c: next(names) for c in left_payload}
    parts = [left.select(*keys, TIME, F.lit(0).cast("byte").alias(SIDE),
                         *[F.col(_q(c)).alias(n) for c, n in left_cols.items()])]
    sides: list[SideSpec] = []
    out_names = list(left_cols.values())
    final = [F.col(n).alias(c) for c, n in left_cols.items()]
    for i, side in enumerate(rights):
        payload = {c: next(names) for c in side.payload}
        ties = {c: next(names) for c in side.tie_breaker}
        frame = side.frame.where(F.col(TIME).isNotNull())
        for key in keys:
            frame = frame.where(F.col(key).isNotNull())
        parts.append(frame.select(
            *keys, TIME, F.lit(i + 1).cast("byte").alias(SIDE),
            *[F.col(_q(c)).alias(n) for c, n in payload.items()], *[F.col(c).alias(n) for c, n in ties.items()],
        ))
        sides.append(SideSpec(payload=list(payload.values()), ties=list(ties.values()), direction=side.direction,
                              allow_exact_matches=side.allow_exact_matches, tolerance=side.tolerance))
        out_names += list(payload.values())
        final += [F.col(n).alias(c) for c, n in payload.items()]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part, allowMissingColumns=True)

    if not keys:
        union = union.repartition(1)
    elif hot_slices is not None:
        if any(side.direction != "backward" for side in rights):
            raise ValueError("hot-key slicing supports backward lookups only")
        union = _slice(union, hot_slices, keys, sides).repartition(partitions, *keys, SLICE).drop(SLICE)
    else:
        union = union.repartition(partitions, *keys)

    schema = StructType([union.schema[n] for n in out_names])
    spec = PartitionSpec(keys=keys, left=list(left_cols.values()), sides=sides)

    def run(batches: Any) -> Any:
        return asof_partition(batches, spec, out_names)

    return union.mapInArrow(run, schema).select(*final)


def _slice(union: DataFrame, hot_slices: DataFrame, keys: list[str], sides: list[SideSpec]) -> DataFrame:
    """Give every row a time slice (0 for keys that are not hot) and add, for each hot key, slice
    and right side, the latest right row (greatest time, then tie order) of the earlier slices."""
    from pyspark.sql import functions as F

    joined = union.join(F.broadcast(hot_slices), on=keys, how="left")
    count_le = F.aggregate(F.col(BOUNDS), F.lit(0), lambda acc, b: acc + F.when(F.col(TIME) >= b, 1).otherwise(0))
    slice_no = F.when(F.col(BOUNDS).isNull() | F.col(TIME).isNull(), F.lit(0)).otherwise(count_le)
    sliced = joined.withColumn(SLICE, slice_no.cast("int"))
    result = sliced.drop(BOUNDS)
    hot = sliced.where(F.col(BOUNDS).isNotNull())
    row_cols = [c for c in result.columns if c not in (*keys, SLICE)]
    for i, side in enumerate(sides):
        order = F.struct(F.col(TIME), *[F.col(c) for c in (side.ties or side.payload)])
        last = (
            hot.where(F.col(SIDE) == i + 1)
            .groupBy(*keys, SLICE)
            .agg(F.max_by(F.struct(*row_cols), order).alias("__ff_row"), F.first(F.size(BOUNDS)).alias("__ff_n"))
            .where(F.col(SLICE) < F.col("__ff_n"))
        )
        carried = last.select(
            *keys, F.col(SLICE).alias("__ff_src"), "__ff_row",
            F.explode(F.sequence(F.col(SLICE) + 1, F.col("__ff_n"))).alias(SLICE),
        )
        best = carried.groupBy(*keys, SLICE).agg(F.max_by("__ff_row", "__ff_src").alias("__ff_row"))
        result = result.unionByName(best.select(*keys, SLICE, "__ff_row.*"))
    return result


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
