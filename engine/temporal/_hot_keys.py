"""Hot keys, priced from what is known: plan statistics first, a sampling job only when needed.

A key is *hot* when it owns more rows than one task's fair share: ``rows(key) > total / tasks``
with ``tasks = min(partitions, 2 * cores)`` (and more than ``hot_key_share * total``, and more
than :data:`MIN_HOT_ROWS` rows). The cores count because a stage's time is about
``(total - rows(key)) / cores + rows(key)`` when the big task runs last: below ``1 / (2 * cores)``
of the rows a key costs at most ``1.5 - 1 / (2 * cores)`` times an even spread (1.25x on 2
cores), less than slicing it did where measured (the slices' joins and carried-in rows: 1.8x on 2
cores with one key of 20 %, 1.4x unsliced). So on 2 cores a key is hot from 25 % of the rows, on a
64-core cluster with 200 partitions from 0.8 % (where ``hot_key_share``, 2 % by default, allows).
Evenly spread keys are never hot, however few they are (46 keys of equal size: each is 1/46 of the rows). A
hot key is cut into about ``rows(key) / (total / tasks) + 1`` time slices (at most 64).

What is known before any job runs: Spark's size estimate of each input's plan (file sizes for
Parquet / Delta scans, exact for local data). When the estimate says the inputs are small
(fewer than :data:`MIN_ROWS_FOR_SKEW` rows in all) no key can make a task long enough to matter
and no job runs. Otherwise one aggregate job over a sample counts rows per key and returns the
total and the top keys in one row (no global window, so no "No Partition Defined" warning); a
second, small job computes time quantiles for the hot keys alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.temporal._asof_sweep import BOUNDS, KEY, TIME, RightSide

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

MIN_ROWS_FOR_SKEW = 2_000_000
MIN_HOT_ROWS = 100_000  # a key with fewer rows cannot stall a task, whatever its share
MAX_SLICES = 64
TOP_KEYS = 64


@dataclass(frozen=True)
class HotKey:
    """One hot key: its values, its share of all rows (left + right) and its number of slices."""

    key: tuple[Any, ...]
    share: float
    slices: int


def estimated_rows(df: DataFrame, *, optimized: bool = True) -> int | None:
    """Spark's row estimate of ``df``'s optimized plan (no job): its row count when known, else
    its size in bytes over the schema's default row size. None where the plan is not reachable
    (e.g. Spark Connect). ``optimized=False``: the analyzed plan's estimate, which costs nothing
    (the plan exists already) where optimizing costs 0.2-1 s (e.g. Delta prepares its scan, and
    the query that runs later optimizes its own plan again); filters do not lower it."""
    try:
        jdf = df._jdf  # classic sessions only
        execution = jdf.queryExecution()
        stats = (execution.optimizedPlan() if optimized else execution.analyzed()).stats()
        count = stats.rowCount()
        if count.isDefined():
            return int(str(count.get()))
        size = int(str(stats.sizeInBytes()))
        if size >= 2**62:  # Spark's "unknown" (spark.sql.defaultSizeInBytes), e.g. an RDD scan
            return None
        width = int(jdf.schema().defaultSize()) + 8
        return size // max(width, 1)
    except Exception:  # an estimate is optional
        return None


def threshold_share(share: float, partitions: int, cores: int | None = None) -> float:
    """The share of all rows above which a key is hot: one task's fair share (``partitions``
    tasks, at most twice the ``cores`` that run them), or ``share`` if larger; ``share == 0``
    forces every key to be hot (a testing aid)."""
    tasks = partitions if cores is None else min(partitions, 2 * cores)
    return 0.0 if share == 0 else max(share, 1.0 / max(tasks, 1))


def session_cores(spark: Any) -> int | None:
    """The cores the session's tasks run on (``defaultParallelism``), None where unknown."""
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect: no SparkContext on the client
        return None


def find_hot_keys(
    left: DataFrame,
    rights: Sequence[RightSide],
    n_keys: int,
    *,
    share: float,
    partitions: int,
    fraction: float = 0.02,
    min_sample: int = 20_000,
) -> tuple[DataFrame | None, list[HotKey]]:
    """Sample rows per key, keep the keys above :func:`threshold_share`, and cut them by time.

    Returns a tiny DataFrame (key columns + ``__ff_bounds``, ascending slice starts) for the
    strategies, or None, and the hot keys for ``explain``.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType

    keys = [KEY.format(i) for i in range(n_keys)]
    both = left.select(*keys, TIME)
    for right in rights:
        both = both.unionByName(right.frame.select(*keys, TIME))
    both = both.where(F.col(TIME).isNotNull())
    limit = threshold_share(share, partitions, session_cores(left.sparkSession))
    hot: list[tuple[Any, ...]] = []
    for frac in (fraction, 1.0):
        sample = both.sample(fraction=frac, seed=17) if frac < 1.0 else both
        counts = sample.groupBy(*keys).agg(F.count(F.lit(1)).alias("n"))
        row = counts.agg(F.sum("n").alias("total"), F.max_by(F.struct(*keys, "n"), "n", TOP_KEYS).alias("top")).first()
        total = (row["total"] or 0) if row is not None else 0
        tops = (row["top"] or []) if row is not None else []
        floor = 0 if limit == 0 else MIN_HOT_ROWS * frac  # in sampled rows
        hot = [
            (tuple(r[k] for k in keys), r["n"] / total) for r in tops
            if r["n"] > total * limit and r["n"] > floor and all(r[k] is not None for k in keys)
        ]
        if frac == 1.0 or total >= min_sample:
            break
    log.debug("hot-key check: %d hot key(s) above %.4f of the rows", len(hot), limit)
    if not hot:
        return None, []
    grid = [i / MAX_SLICES for i in range(1, MAX_SLICES)]
    spark = left.sparkSession
    wanted = spark.createDataFrame([(*k, s) for k, s in hot], left.select(*keys).schema.add("__ff_share", "double"))
    quantiles = (
        both.join(F.broadcast(wanted), on=keys)
        .groupBy(*keys)
        .agg(F.first("__ff_share").alias("share"), F.percentile_approx(TIME, grid, 1000).alias("q"))
        .collect()
    )
    sliced, found = [], []
    for row in quantiles:
        goal = MAX_SLICES if limit == 0 else row["share"] / limit + 1
        slices = min(MAX_SLICES, max(2, int(goal)))
        step = MAX_SLICES / slices
        bounds = sorted({row["q"][round(step * j) - 1] for j in range(1, slices)})
        key = tuple(row[k] for k in keys)
        sliced.append((*key, bounds))
        found.append(HotKey(key=key, share=row["share"], slices=len(bounds) + 1))
    schema = left.select(*keys).schema.add(BOUNDS, ArrayType(left.schema[TIME].dataType))
    return spark.createDataFrame(sliced, schema), found


def partitions_for(rows: int | None, configured: int, *, rows_per_task: int = 4_000_000) -> int:
    """Tasks for ``rows`` rows: the session's shuffle partitions, more when tasks would be big."""
    if rows is None:
        return configured
    return max(configured, math.ceil(rows / rows_per_task))
