"""The key check of a feature group write: one aggregation finds NULL keys, duplicate (primary key,
event time) rows and rows outside the range a pipeline chunk replaces, before anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError, PrimaryKeyError
from engine.store import delta

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.temporal.ranges import TimeRange

__all__ = ["check_keys", "resolve_ties"]


def check_keys(data: DataFrame, primary_key: Sequence[str], event_time: str, tie_breaker: str | None,
               time_range: TimeRange | None, *, target: str) -> tuple[Any, Any, int]:
    """One aggregation: NULL keys, duplicate (key, event time) rows, rows outside ``time_range``.

    Returns the least and greatest event time of the rows (None, None without rows) -- an upsert
    reads only the stored files whose event times overlap them -- and the number of rows."""
    from pyspark.sql import functions as F

    keys = [*primary_key, event_time]
    ident = [*keys, *([tie_breaker] if tie_breaker else [])]
    cols = [F.col(delta.quote_identifier(c)) for c in ident]
    # NULL fields kept, so a NULL key shows as "device":null in the error's example
    example = F.to_json(F.struct(*cols, F.col("__n").alias("rows")), {"ignoreNullFields": "false"})
    has_null = F.lit(False)
    for c in keys:
        has_null = has_null | F.col(delta.quote_identifier(c)).isNull()
    aggs = [
        F.sum(F.when(has_null, F.col("__n"))).alias("null_rows"),
        F.first(F.when(has_null, example), ignorenulls=True).alias("null_example"),
        F.sum(F.when(~has_null & (F.col("__n") > 1), F.col("__n"))).alias("dup_rows"),
        F.first(F.when(~has_null & (F.col("__n") > 1), example), ignorenulls=True).alias("dup_example"),
        F.min(delta.quote_identifier(event_time)).alias("least"), F.max(delta.quote_identifier(event_time)).alias("greatest"),
        F.sum("__n").alias("rows"),
    ]
    if time_range is not None:
        outside = ~F.expr(delta.range_predicate(event_time, time_range)) & ~has_null
        aggs += [
            F.sum(F.when(outside, F.col("__n"))).alias("out_rows"),
            F.first(F.when(outside, example), ignorenulls=True).alias("out_example"),
        ]
    found = data.groupBy(*cols).agg(F.count(F.lit(1)).alias("__n")).agg(*aggs).collect()[0]
    if found["null_rows"]:
        raise PrimaryKeyError(
            target=target, problem="NULL values", columns=keys, count=found["null_rows"],
            example=found["null_example"], hint="Every row needs its primary key and event time.",
        )
    if found["dup_rows"]:
        hint = (
            "Rows with equal key, event time and tie breaker are ambiguous."
            if tie_breaker
            else "Deduplicate first, or create the group with a tie_breaker column."
        )
        raise PrimaryKeyError(
            target=target, problem="duplicate (primary key, event time)", columns=ident,
            count=found["dup_rows"], example=found["dup_example"], hint=hint,
        )
    if time_range is not None and found["out_rows"]:
        raise InvalidArgumentError(
            argument="df", expected=f"only rows with {event_time} in {time_range}",
            found=f"{found['out_rows']} row(s) outside it, e.g. {found['out_example']}",
            hint="Filter the data to the range first. Nothing was written.",
        )
    return found["least"], found["greatest"], int(found["rows"] or 0)


def resolve_ties(data: DataFrame, keys: Sequence[str], tie_breaker: str, stored: DataFrame | None) -> DataFrame:
    """Keep, per ``keys`` (primary key and event time), the row with the greatest tie breaker;
    with ``stored`` (an upsert: the group's rows) also against the stored row, which wins with a
    greater tie breaker. (A ``replace_range`` passes None: the write deletes the range's rows.)"""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    tb = delta.quote_identifier(tie_breaker)
    quoted = [delta.quote_identifier(c) for c in keys]
    rank = F.row_number().over(Window.partitionBy(*quoted).orderBy(F.col(tb).desc_nulls_last()))
    newest = data.withColumn("__rank", rank).where("__rank = 1").drop("__rank")
    if stored is None:
        return newest
    kept = newest.join(stored.select(*quoted, F.col(tb).alias("__stored_tb")), on=list(keys), how="left").where(
        F.col("__stored_tb").isNull() | (F.col(tb) >= F.col("__stored_tb"))
    )
    return kept.select(*[delta.quote_identifier(c) for c in data.columns])

