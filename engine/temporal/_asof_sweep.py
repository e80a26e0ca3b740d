"""The as-of sweep: one shuffle, one sort, one streaming window per direction.

Left (spine) rows and the rows of one or several right tables that share the same key columns
are unioned into one narrow frame, hash-partitioned by the keys and sorted by time. Walking a key
in time order, the latest right row seen so far *is* the backward as-of match, so a running
``last(right_struct, ignorenulls=True)`` over ``ROWS UNBOUNDED PRECEDING .. CURRENT ROW`` finds
it for every spine row in O(n) per key -- no per-key quadratic blow-up as in the range-join plan.
The right payload travels as one struct, so the whole matched row (with its NULLs) comes back,
not a per-column last non-null value.

Order within equal times decides visibility and ties (``ORDER``):
0 = right rows that may match exactly, 1 = left rows, 2 = right rows that may not match exactly;
then each right table's tie-breaker ascending, so the greatest tie-breaker is the last one seen.
Forward joins are backward joins on the negated time; nearest computes both and keeps the closer
(the backward one on equal distance, as pandas does).

Hot keys (backward lookups only) are split into time slices, so no single task holds a hot key's
whole history: the window partitions by (keys, slice), and every slice receives, per right table,
the latest right row of the earlier slices of its key as one carried-in row (the slices come
from :mod:`engine.temporal._hot_keys`).

This is the fallback strategy (types the vectorised kernel does not take) and the reference the
kernel is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from engine.temporal.layout import BucketedSource

LEFT_ID = "__ff_left"
ORDER = "__ff_ord"
TIME = "__ff_t"
VALID = "__ff_valid"
SLICE = "__ff_slice"
BOUNDS = "__ff_bounds"
KEY = "__ff_k{}"


@dataclass(frozen=True)
class RightSide:
    """One right table, already renamed: ``frame`` has key columns ``__ff_k0..``, the time as a
    number in ``__ff_t``, and ``payload`` = the output columns (already carrying their output names)."""

    frame: DataFrame
    payload: Sequence[str]
    tie_breaker: Sequence[str]  # column names in ``frame``; empty -> order by the payload struct
    direction: str
    allow_exact_matches: bool
    tolerance: float | int | None  # in the units of __ff_t
    # the right table laid out in hash buckets (the layout strategy), and how its columns map to
    # ``frame``'s: (source column, frame column) for the keys, the time (twice) and the payload
    source: BucketedSource | None = None
    read_columns: Sequence[tuple[str, str]] = ()


def sweep(
    left: DataFrame,
    left_payload: Sequence[str],
    n_keys: int,
    rights: Sequence[RightSide],
    *,
    hot_slices: DataFrame | None = None,
) -> DataFrame:
    """Join every right side onto ``left`` (key columns ``__ff_k*``, time ``__ff_t``) in one pass.

    Returns the left payload columns followed by each right side's payload columns.
    ``hot_slices``: key columns plus ``__ff_bounds`` (ascending slice start times) for the keys
    to split by time; only valid when every right side is a backward lookup.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = [KEY.format(i) for i in range(n_keys)]
    structs = [f"__ff_r{i}" for i in range(len(rights))]
    ties = [f"__ff_tb{i}" for i in range(len(rights))]
    # the order within equal times: a side's tie-breaker struct, or its payload struct without one
    ties = [f"__ff_tb{i}" if side.tie_breaker else structs[i] for i, side in enumerate(rights)]
    union = _union(left, left_payload, keys, rights, structs, ties)
    partition_cols = [F.col(k) for k in keys]
    if hot_slices is not None:
        if any(side.direction != "backward" for side in rights):
            raise ValueError("hot-key slicing supports backward lookups only")
        union = _slice(union, hot_slices, keys, structs, ties)
        partition_cols.append(F.col(SLICE))

    def window(sign: int) -> Any:
        order = [(F.col(TIME) * sign).asc_nulls_first(), F.col(ORDER).asc(), *[F.col(t).asc_nulls_first() for t in dict.fromkeys(ties)]]
        return Window.partitionBy(*partition_cols).orderBy(*order).rowsBetween(Window.unboundedPreceding, Window.currentRow)

    # Backward and forward need different sort orders: Spark sorts twice within the same
    # partitioning (still one shuffle). Only the windows that are needed are built.
    windows: dict[int, Any] = {}
    matched: list[Column] = []
    for i, side in enumerate(rights):
        signs = {"backward": (1,), "forward": (-1,)}.get(side.direction, (1, -1))
        candidates = []
        for sign in signs:
            if sign not in windows:
                windows[sign] = window(sign)
            candidates.append(F.last(F.col(structs[i]), ignorenulls=True).over(windows[sign]))
        matched.append(_pick(candidates, side.tolerance).alias(structs[i]))

    swept = union.select(LEFT_ID, VALID, ORDER, *matched).where(F.col(ORDER) == 1)
    out = [F.col(f"{LEFT_ID}.{_q(c)}").alias(c) for c in left_payload]
    for i, side in enumerate(rights):
        out.extend(F.when(F.col(VALID), F.col(structs[i])[c]).alias(c) for c in side.payload)
    return swept.select(*out)


def _union(left: DataFrame, left_payload: Sequence[str], keys: list[str], rights: Sequence[RightSide],
           structs: list[str], ties: list[str]) -> DataFrame:
    """Left rows and every side's right rows in one frame of identical columns:
    keys, TIME, ORDER, VALID, LEFT_ID (left row struct), one payload struct and one tie struct
    per right side (NULL in rows of other sides)."""
    from pyspark.sql import functions as F

    valid = F.lit(True)
    for key in keys:
        valid = valid & F.col(key).isNotNull()
    valid = valid & F.col(TIME).isNotNull()
    left_part = left.select(
        *keys, TIME, F.lit(1).cast("byte").alias(ORDER), valid.alias(VALID),
        F.struct(*[F.col(_q(c)) for c in left_payload]).alias(LEFT_ID),
    )
    # each right struct: the payload plus the matched time (for tolerance and nearest); sides
    # without a tie breaker order equal times by that struct itself (no second copy shuffled)
    payloads = [F.struct(*[F.col(_q(c)) for c in s.payload], F.col(TIME).alias("__ff_e")) for s in rights]
    tie_values = [F.struct(*[F.col(c) for c in s.tie_breaker]) if s.tie_breaker else None for s in rights]
    null_payloads, null_ties = [], []
    for i, (side, payload, tie) in enumerate(zip(rights, payloads, tie_values, strict=True)):
        schema = side.frame.select(payload.alias("p"), *([tie.alias("t")] if tie is not None else [])).schema
        null_payloads.append(F.lit(None).cast(schema["p"].dataType).alias(structs[i]))
        if tie is not None:
            null_ties.append(F.lit(None).cast(schema["t"].dataType).alias(ties[i]))
    tie_names = [ties[i] for i, tie in enumerate(tie_values) if tie is not None]
    left_type = left_part.schema[LEFT_ID].dataType

    union = left_part.select(*keys, TIME, ORDER, VALID, LEFT_ID, *null_payloads, *null_ties)
    for i, side in enumerate(rights):
        frame = side.frame.where(F.col(TIME).isNotNull())
        for key in keys:
            frame = frame.where(F.col(key).isNotNull())  # NULL keys never match
        cols = [
            *[F.col(k) for k in keys], F.col(TIME),
            F.lit(0 if side.allow_exact_matches else 2).cast("byte").alias(ORDER),
            F.lit(None).cast("boolean").alias(VALID), F.lit(None).cast(left_type).alias(LEFT_ID),
            *[payloads[i].alias(structs[j]) if j == i else null_payloads[j] for j in range(len(rights))],
            *[tie_values[i].alias(name) if name == ties[i] else nulls for name, nulls in zip(tie_names, null_ties, strict=True)],
        ]
        union = union.unionByName(frame.select(*cols))
    return union


def _slice(union: DataFrame, hot_slices: DataFrame, keys: list[str], structs: list[str], ties: list[str]) -> DataFrame:
    """Give every row a time slice (0 for keys that are not hot) and add, for each hot key,
    slice and right side, the latest right row of the earlier slices (the carried-in row)."""
    from pyspark.sql import functions as F

    joined = union.join(F.broadcast(hot_slices), on=keys, how="left")
    count_le = F.aggregate(F.col(BOUNDS), F.lit(0), lambda acc, b: acc + F.when(F.col(TIME) >= b, 1).otherwise(0))
    slice_no = F.when(F.col(BOUNDS).isNull() | F.col(TIME).isNull(), F.lit(0)).otherwise(count_le)
    sliced = joined.withColumn(SLICE, slice_no.cast("int"))
    result = sliced.drop(BOUNDS)
    hot = sliced.where(F.col(BOUNDS).isNotNull())
    row_cols = [c for c in result.columns if c not in (*keys, SLICE)]
    for struct, tie in zip(structs, ties, strict=True):
        last = (
            hot.where(F.col(struct).isNotNull())
            .groupBy(*keys, SLICE)
            .agg(
                F.max_by(F.struct(*row_cols), F.struct(F.col(TIME), F.col(tie))).alias("__ff_row"),
                F.first(F.size(BOUNDS)).alias("__ff_n"),
            )
            .where(F.col(SLICE) < F.col("__ff_n"))
        )
        # carry each slice's last row into every later slice; keep the latest source per target
        carried = last.select(
            *keys, F.col(SLICE).alias("__ff_src"), "__ff_row",
            F.explode(F.sequence(F.col(SLICE) + 1, F.col("__ff_n"))).alias(SLICE),
        )
        best = carried.groupBy(*keys, SLICE).agg(F.max_by("__ff_row", "__ff_src").alias("__ff_row"))
        result = result.unionByName(best.select(*keys, SLICE, "__ff_row.*"))
    return result


def _pick(candidates: list[Column], tolerance: float | int | None) -> Column:
    """Apply the tolerance to each candidate; for nearest pick the closer (backward on a tie)."""
    from pyspark.sql import functions as F

    def distance(found: Column) -> Column:
        return F.abs(F.col(TIME) - found["__ff_e"])

    def within(found: Column) -> Column:
        return found if tolerance is None else F.when(distance(found) <= F.lit(tolerance), found)

    if len(candidates) == 1:
        return within(candidates[0])
    back, fwd = (within(c) for c in candidates)
    return F.when(back.isNull(), fwd).when(fwd.isNull(), back).when(distance(fwd) < distance(back), fwd).otherwise(back)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
