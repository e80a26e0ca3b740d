"""Descriptive statistics of the rows one commit wrote, in two Spark passes -- or, for a batch the
engine committed itself (already collected as Arrow), computed from those rows without a job
(:func:`statistics_of_arrow`, the same definitions).

Pass 1 is one ``agg`` over every column: count, NULLs, min, max, approximate distinct count, and
mean and standard deviation for numeric columns. Pass 2 is one ``groupBy`` over an exploded
``(column, value)`` array: equal-width histogram bins for numeric columns (edges from pass 1)
and the most frequent values for string columns. No loop of per-column jobs.

The registry stores them with the commit they describe (an array of :data:`COLUMN_STATISTICS_DDL`
structs in the row keyed by group, version and Delta version); min and max are stored as text and
parsed back to Python values by :meth:`ColumnStatistics.from_row`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

__all__ = ["COLUMN_STATISTICS_DDL", "ColumnStatistics", "compute_statistics", "statistics_of_arrow", "statistics_of_rows"]

log = logging.getLogger(__name__)

# One column's statistics; the registry's commits table holds an array of these per commit.
COLUMN_STATISTICS_DDL = (
    "STRUCT<column: STRING, data_type: STRING, count: BIGINT, null_count: BIGINT, min: STRING, max: STRING, "
    "mean: DOUBLE, stddev: DOUBLE, approx_distinct: BIGINT, "
    "histogram: ARRAY<STRUCT<lower: DOUBLE, upper: DOUBLE, count: BIGINT>>, "
    "top_values: ARRAY<STRUCT<value: STRING, count: BIGINT>>>"
)
_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
_ORDERED = (*_NUMERIC, "string", "boolean", "date", "timestamp", "timestamp_ntz")


@dataclass(frozen=True)
class ColumnStatistics:
    """Statistics of one column over the rows of one commit."""

    column: str
    data_type: str
    count: int
    null_count: int
    min: Any = None
    max: Any = None
    mean: float | None = None
    stddev: float | None = None
    approx_distinct: int | None = None
    histogram: list[tuple[float, float, int]] = field(default_factory=list)  # (lower, upper, count)
    top_values: list[tuple[str, int]] = field(default_factory=list)  # (value, count), most frequent first

    def to_row(self) -> dict[str, Any]:
        return {
            "column": self.column, "data_type": self.data_type, "count": self.count,
            "null_count": self.null_count, "min": _to_text(self.min), "max": _to_text(self.max),
            "mean": self.mean, "stddev": self.stddev, "approx_distinct": self.approx_distinct,
            "histogram": [{"lower": lo, "upper": hi, "count": n} for lo, hi, n in self.histogram],
            "top_values": [{"value": v, "count": n} for v, n in self.top_values],
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ColumnStatistics:
        dtype = row["data_type"]
        return cls(
            column=row["column"], data_type=dtype, count=row["count"], null_count=row["null_count"],
            min=_from_text(row["min"], dtype), max=_from_text(row["max"], dtype), mean=row["mean"],
            stddev=row["stddev"], approx_distinct=row["approx_distinct"],
            histogram=[(h["lower"], h["upper"], h["count"]) for h in row["histogram"] or []],
            top_values=[(t["value"], t["count"]) for t in row["top_values"] or []],
        )


def _kind(dtype: str) -> str:
    base = dtype.split("(")[0]
    if base in _NUMERIC:
        return "numeric"
    if base == "string":
        return "string"
    return "ordered" if base in _ORDERED else "other"


def _to_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _from_text(text: str | None, dtype: str) -> Any:
    if text is None:
        return None
    base = dtype.split("(")[0]
    if base in ("tinyint", "smallint", "int", "bigint"):
        return int(text)
    if base in _NUMERIC:
        return float(text)
    if base == "boolean":
        return text.lower() == "true"
    if base == "date":
        return date.fromisoformat(text)
    if base in ("timestamp", "timestamp_ntz"):
        return datetime.fromisoformat(text)
    return text


def compute_statistics(df: DataFrame, *, bins: int = 10, top_k: int = 5) -> list[ColumnStatistics]:
    """Statistics of every column of ``df`` (two Spark jobs; one if ``df`` is empty)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    columns = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
    exprs = [F.count(F.lit(1)).alias("__rows")]
    for i, (name, dtype) in enumerate(columns):
        col = F.col("`" + name.replace("`", "``") + "`")
        kind = _kind(dtype)
        exprs.append(F.count(col).alias(f"c{i}"))
        if kind != "other":
            exprs += [_text(F.min(col), dtype).alias(f"lo{i}"), _text(F.max(col), dtype).alias(f"hi{i}")]
            exprs.append(F.approx_count_distinct(col).alias(f"d{i}"))
        if kind == "numeric":
            exprs += [F.avg(col.cast("double")).alias(f"m{i}"), F.stddev_samp(col.cast("double")).alias(f"s{i}")]
    first = df.agg(*exprs).collect()[0]  # an aggregate without grouping returns exactly one row
    rows = int(first["__rows"])
    stats: dict[str, dict[str, Any]] = {}
    for i, (name, dtype) in enumerate(columns):
        kind = _kind(dtype)
        entry: dict[str, Any] = {"column": name, "data_type": dtype, "count": int(first[f"c{i}"])}
        entry["null_count"] = rows - entry["count"]
        if kind != "other":
            entry.update(
                min=_from_text(first[f"lo{i}"], dtype), max=_from_text(first[f"hi{i}"], dtype),
                approx_distinct=int(first[f"d{i}"]),
            )
        if kind == "numeric":
            entry.update(mean=_finite(first[f"m{i}"]), stddev=_finite(first[f"s{i}"]))
        stats[name] = entry

    # Pass 2: histogram bins of numeric columns and value counts of string columns, in one job.
    parts = []
    edges: dict[str, tuple[float, float]] = {}
    for name, dtype in columns:
        col = F.col("`" + name.replace("`", "``") + "`")
        kind = _kind(dtype)
        if kind == "numeric" and stats[name]["count"] > 0:
            lo, hi = float(stats[name]["min"]), float(stats[name]["max"])
            if not (math.isfinite(lo) and math.isfinite(hi)):
                continue
            edges[name] = (lo, hi)
            width = (hi - lo) / bins if hi > lo else 1.0
            x = col.cast("double")
            index = F.when(x.isNotNull() & ~F.isnan(x), F.least(F.floor((x - F.lit(lo)) / F.lit(width)), F.lit(bins - 1)))
            parts.append(F.struct(F.lit(name).alias("column"), index.cast("string").alias("value")))
        elif kind == "string" and stats[name]["count"] > 0:
            parts.append(F.struct(F.lit(name).alias("column"), col.alias("value")))
    if parts:
        counts = (
            df.select(F.explode(F.array(*parts)).alias("p"))
            .select("p.column", "p.value")
            .where(F.col("value").isNotNull())
            .groupBy("column", "value").count()
        )
        rank = F.row_number().over(Window.partitionBy("column").orderBy(F.desc("count"), "value"))
        kept = counts.withColumn("rank", rank).where(F.col("rank") <= max(top_k, bins)).collect()
        for row in sorted(kept, key=lambda r: (r["column"], r["rank"])):
            name = row["column"]
            if name in edges:
                lo, hi = edges[name]
                width = (hi - lo) / bins if hi > lo else 0.0
                index = int(row["value"])
                stats[name].setdefault("histogram", []).append((lo + index * width, lo + (index + 1) * width, row["count"]))
            elif row["rank"] <= top_k:
                stats[name].setdefault("top_values", []).append((row["value"], row["count"]))
    for name in edges:
        stats[name]["histogram"] = _dense(stats[name].get("histogram", []), edges[name], bins)
    return [ColumnStatistics(**stats[name]) for name, _ in columns]


def statistics_of_rows(df: DataFrame, table: Any) -> list[ColumnStatistics]:
    """The statistics of ``df``, whose rows were collected as the pyarrow ``table`` (its columns
    and maybe more): computed from the table where :func:`statistics_of_arrow` can, else by
    :func:`compute_statistics`' Spark jobs."""
    try:
        found = statistics_of_arrow(table, df.schema)
    except Exception as err:  # the rows are committed: a statistic must not fail the write -- Spark's
        log.debug("statistics from Arrow failed (%r); computed by Spark", err)
        found = None
    return compute_statistics(df) if found is None else found


def statistics_of_arrow(table: Any, schema: StructType, *, bins: int = 10, top_k: int = 5) -> list[ColumnStatistics] | None:
    """The statistics :func:`compute_statistics` gives for a frame of ``schema`` whose rows are
    the pyarrow ``table`` -- computed here, without a Spark job, for a batch already collected
    (a small write committed by the engine). The same definitions: min / max in Spark's order,
    the mean and sample standard deviation of the values as doubles, the same histogram bins
    and top values; ``approx_distinct`` is exact (an estimate with no error). None where Spark's
    answer could differ: a floating-point column holding NaN (Spark orders NaN above every
    number), a column type outside the flat ones."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    result = []
    for column in schema.fields:
        dtype = column.dataType.simpleString()
        kind = _kind(dtype)
        values = table.column(column.name)
        if pa.types.is_floating(values.type) and pc.any(pc.is_nan(values)).as_py():
            return None
        if kind == "other" and not pa.types.is_binary(values.type):
            return None
        entry: dict[str, Any] = {"column": column.name, "data_type": dtype, "count": len(values) - values.null_count,
                                 "null_count": values.null_count}
        if kind != "other":
            bounds = pc.min_max(values).as_py()
            low, high = bounds["min"], bounds["max"]
            if kind == "numeric" and low is not None:
                low, high = (int(low), int(high)) if dtype.split("(")[0] in ("tinyint", "smallint", "int", "bigint") \
                    else (float(low), float(high))
            distinct = pc.add(values, 0.0) if pa.types.is_floating(values.type) else values  # -0.0 is 0.0
            entry.update(min=low, max=high, approx_distinct=pc.count_distinct(distinct, mode="only_valid").as_py())
        if kind == "numeric":
            doubles = (pa.array([None if v is None else float(v) for v in values.to_pylist()], pa.float64())
                       if pa.types.is_decimal(values.type) else values.cast(pa.float64()))  # as Spark rounds them
            entry.update(mean=_finite(pc.mean(doubles).as_py()), stddev=_finite(pc.stddev(doubles, ddof=1).as_py()))
            if entry["count"] and math.isfinite(float(entry["min"])) and math.isfinite(float(entry["max"])):
                lo, hi = float(entry["min"]), float(entry["max"])
                width = (hi - lo) / bins if hi > lo else 1.0
                x = doubles.drop_null().to_numpy(zero_copy_only=False)
                index, counts = np.unique(np.minimum(np.floor((x - lo) / width), bins - 1).astype(np.int64), return_counts=True)
                step = (hi - lo) / bins if hi > lo else 0.0
                found = [(lo + int(i) * step, lo + (int(i) + 1) * step, int(n)) for i, n in zip(index, counts, strict=True)]
                entry["histogram"] = _dense(found, (lo, hi), bins)
        elif kind == "string" and entry["count"]:
            counted = pc.value_counts(values.drop_null()).to_pylist()
            ranked = sorted(((c["values"], c["counts"]) for c in counted), key=lambda vc: (-vc[1], vc[0].encode("utf-8")))
            entry["top_values"] = ranked[:top_k]
        result.append(ColumnStatistics(**entry))
    return result


def _dense(found: list[tuple[float, float, int]], edges: tuple[float, float], bins: int) -> list[tuple[float, float, int]]:
    """All bins in order, empty ones with count 0 (a single bin when min == max)."""
    lo, hi = edges
    if hi <= lo:
        return [(lo, hi, sum(n for _, _, n in found))]
    width = (hi - lo) / bins
    by_lower = {round((b_lo - lo) / width): n for b_lo, _, n in found}
    return [(lo + i * width, hi if i == bins - 1 else lo + (i + 1) * width, by_lower.get(i, 0)) for i in range(bins)]


def _text(column: Column, dtype: str) -> Column:
    """min/max as text; TIMESTAMP with its UTC offset, so no Python-side time zone is involved."""
    from pyspark.sql import functions as F

    if dtype == "timestamp":
        return F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
    return column.cast("string")


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None
