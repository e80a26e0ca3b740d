"""The as-of sweep: one shuffle, one sort, one streaming window per direction.

Left (spine) rows and the rows of one or several right tables that share the same key columns
are unioned into one narrow frame, hash-partitioned by the keys and sorted by time. Walking a key
in time order, the latest right row seen so far *is* the backward as-of match, so a running
``last(right_struct, ignorenulls=True)`` over ``ROWS UNBOUNDED PRECEDING .. CURRENT ROW`` finds
it for every spine row in O(n) per key -- no per-key quadratic blow-up as in the range-join plan.
The right payload travels as one struct, so the whole matched row (with its NULLs) comes back,
not a per-column last non-null value.

Order within equal times decides visibility and ties (``_ord``):
0 = right rows that may match exactly, 1 = left rows, 2 = right rows that may not match exactly;
then each right table's tie-breaker ascending, so the greatest tie-breaker is the last one seen.
Forward joins are backward joins on the negated time; nearest computes both and keeps the closer
(the backward one on equal distance, as pandas does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

LEFT_ID = "__ff_left"
ORDER = "__ff_ord"
TIME = "__ff_t"
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


def sweep(left: DataFrame, left_payload: Sequence[str], n_keys: int, rights: Sequence[RightSide]) -> DataFrame:
    """Join every right side onto ``left`` (key columns ``__ff_k*``, time ``__ff_t``) in one pass.

    Returns the left payload columns followed by each right side's payload columns.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = [KEY.format(i) for i in range(n_keys)]
    structs = [f"__ff_r{i}" for i in range(len(rights))]
    ties = [f"__ff_tb{i}" for i in range(len(rights))]
    valid = F.lit(True)
    for key in keys:
        valid = valid & F.col(key).isNotNull()
    valid = valid & F.col(TIME).isNotNull()

    def null_of(frame_struct: Column) -> Column:
        return F.lit(None).cast(frame_struct)

    left_struct = F.struct(*[F.col(_q(c)) for c in left_payload])
    parts: list[DataFrame] = []
    left_part = left.select(
        *keys, TIME, F.lit(1).cast("byte").alias(ORDER), valid.alias("__ff_valid"),
        left_struct.alias(LEFT_ID),
    )
    # right structs: the payload plus the matched time (for tolerance and nearest)
    right_structs = []
    tie_types = []
    for side in rights:
        rs = F.struct(*[F.col(_q(c)) for c in side.payload], F.col(TIME).alias("__ff_e"))
        right_structs.append(rs)
        tie_cols = [F.col(c) for c in side.tie_breaker] or [F.col(_q(c)) for c in side.payload]
        tie_types.append(F.struct(*tie_cols) if tie_cols else F.lit(0))
    schemas = []
    for i, side in enumerate(rights):
        schemas.append(side.frame.select(right_structs[i].alias("s"), tie_types[i].alias("t")).schema)

    left_cols = [left_part[c] for c in [*keys, TIME, ORDER, "__ff_valid", LEFT_ID]]
    null_rights = [null_of(schemas[i]["s"].dataType).alias(structs[i]) for i in range(len(rights))]
    null_ties = [null_of(schemas[i]["t"].dataType).alias(ties[i]) for i in range(len(rights))]
    parts.append(left_part.select(*left_cols, *null_rights, *null_ties))
    left_type = left_part.schema[LEFT_ID].dataType
    for i, side in enumerate(rights):
        frame = side.frame.where(F.col(TIME).isNotNull())
        for key in keys:
            frame = frame.where(F.col(key).isNotNull())
        order = 0 if side.allow_exact_matches else 2
        cols = [F.col(k) for k in keys] + [
            F.col(TIME), F.lit(order).cast("byte").alias(ORDER), F.lit(None).cast("boolean").alias("__ff_valid"),
            F.lit(None).cast(left_type).alias(LEFT_ID),
        ]
        for j in range(len(rights)):
            cols.append(right_structs[i].alias(structs[j]) if j == i else null_rights[j])
        for j in range(len(rights)):
            cols.append(tie_types[i].alias(ties[j]) if j == i else null_ties[j])
        parts.append(frame.select(*cols))

    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    partition_cols = [F.col(k) for k in keys]

    # Backward and forward need different sort orders; Spark sorts twice within the same
    # partitioning (one shuffle). Only build the windows that are needed.
    def window(sign: int) -> Any:
        order = [(F.col(TIME) * sign).asc_nulls_first(), F.col(ORDER).asc(), *[F.col(t).asc_nulls_first() for t in ties]]
        return Window.partitionBy(*partition_cols).orderBy(*order).rowsBetween(Window.unboundedPreceding, Window.currentRow)

    windows: dict[int, Any] = {}
    matched: list[Column] = []
    for i, side in enumerate(rights):
        candidates = []
        for sign in ((1,) if side.direction == "backward" else (-1,) if side.direction == "forward" else (1, -1)):
            if sign not in windows:
                windows[sign] = window(sign)
            found = F.last(F.col(structs[i]), ignorenulls=True).over(windows[sign])
            candidates.append(found)
        matched.append(_pick(candidates, side.tolerance).alias(structs[i]))

    swept = union.select(LEFT_ID, "__ff_valid", ORDER, *matched).where(F.col(ORDER) == 1)
    out = [F.col(f"{LEFT_ID}.{_q(c)}").alias(c) for c in left_payload]
    for i, side in enumerate(rights):
        ok = F.col("__ff_valid")
        out.extend(F.when(ok, F.col(structs[i])[c]).alias(c) for c in side.payload)
    return swept.select(*out)


def _pick(candidates: list[Column], tolerance: float | int | None) -> Column:
    """Apply the tolerance to each candidate; for nearest pick the closer (backward on a tie)."""
    from pyspark.sql import functions as F

    def distance(found: Column) -> Column:
        return F.abs(F.col(TIME) - found["__ff_e"])

    def within(found: Column) -> Column:
        if tolerance is None:
            return found
        return F.when(distance(found) <= F.lit(tolerance), found)

    if len(candidates) == 1:
        return within(candidates[0])
    back, fwd = (within(c) for c in candidates)
    return F.when(back.isNull(), fwd).when(fwd.isNull(), back).when(distance(fwd) < distance(back), fwd).otherwise(back)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
