"""Several feature tables onto one spine: the 4-table and 8-table lookups (two key sets).

The feature file is read once per table; half of the tables are keyed by ``key``, the other half
by ``key2 = key + 10,000,000`` (a second key column on the spine as well), so the engine needs
two passes (one per key set) whatever the number of tables, and every table's matches equal the
one-table reference: each prefix's columns are verified against it. tempo chains one
``asofJoin`` per table (its own code; a new TSDF on ``key2`` for the second key set).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.asof_plans import _engine_missing, _tempo_missing
from benchmarks.plan import Plan
from benchmarks.verify import OutputColumns

__all__ = ["MANY_PLANS", "prefixes"]

SHIFT = 10_000_000


def prefixes(n_tables: int) -> list[tuple[str, str]]:
    """(prefix, key column) of each table: the first half on ``key``, the rest on ``key2``."""
    return [(f"t{i}_", "key" if i < n_tables // 2 else "key2") for i in range(n_tables)]


def _frames(spark, features: Path, spine: Path):
    from pyspark.sql import functions as F

    s = spark.read.parquet(str(spine))
    s = s.withColumn("key2", F.col("key") + SHIFT)
    f = spark.read.parquet(str(features))
    f2 = f.select((F.col("key") + SHIFT).alias("key2"), "ts", "f1", "f2", "f3")
    return s, f, f2


def _engine(n_tables: int):
    def build(spark, features: Path, spine: Path):
        from engine.temporal import AsofLookup, asof_join_many

        s, f, f2 = _frames(spark, features, spine)
        lookups = [
            AsofLookup(right=f if key == "key" else f2, on="ts", by=key, prefix=prefix) for prefix, key in prefixes(n_tables)
        ]
        return asof_join_many(s, lookups, on="ts")

    return build


def _tempo(n_tables: int):
    def build(spark, features: Path, spine: Path):
        from tempo import TSDF

        s, f, f2 = _frames(spark, features, spine)
        df = s
        for prefix, key in prefixes(n_tables):
            right = TSDF(f if key == "key" else f2, ts_col="ts", partition_cols=[key])
            df = TSDF(df, ts_col="ts", partition_cols=[key]).asofJoin(right, right_prefix=prefix.rstrip("_")).df
        return df

    return build


def _outputs(n_tables: int) -> tuple[OutputColumns, ...]:
    return tuple(
        OutputColumns(f1=f"{p}f1", f2=f"{p}f2", f3=f"{p}f3", matched_ts=f"{p}ts") for p, _ in prefixes(n_tables)
    )


MANY_PLANS: dict[str, Plan] = {
    p.name: p
    for p in [
        Plan("engine_1", "engine asof_join_many, 1 table", "spark", "this engine", build=_engine(1),
             available=lambda: _engine_missing("asof_join_many"), outputs=_outputs(1)),
        Plan("engine_4", "engine asof_join_many, 4 tables (2 key sets)", "spark", "this engine", build=_engine(4),
             available=lambda: _engine_missing("asof_join_many"), outputs=_outputs(4)),
        Plan("engine_8", "engine asof_join_many, 8 tables (2 key sets)", "spark", "this engine", build=_engine(8),
             available=lambda: _engine_missing("asof_join_many"), outputs=_outputs(8)),
        Plan("tempo_4", "tempo, 4 chained asofJoin (2 key sets)", "spark", "dbl-tempo 0.1.30, its own code",
             build=_tempo(4), available=_tempo_missing, outputs=_outputs(4)),
        Plan("tempo_8", "tempo, 8 chained asofJoin (2 key sets)", "spark", "dbl-tempo 0.1.30, its own code",
             build=_tempo(8), available=_tempo_missing, outputs=_outputs(8)),
    ]
}
