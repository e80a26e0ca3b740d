"""The window-aggregation plans: mean of ``f1`` and row count over 7 and 30 days per ``key``,
evaluated at each spine row's ``ts`` (window ``t - w < e <= t``). Same plan shapes as
:mod:`benchmarks.asof_plans`; outputs are checked by :func:`benchmarks.verify.verify_windows`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from benchmarks.plan import LOCAL_THREADS, Plan
from benchmarks.verify import WINDOWS_DAYS, window_columns

__all__ = ["EVENT_WINDOW_PLANS", "WINDOW_PLANS"]


def _engine_missing() -> str | None:
    try:
        from engine.temporal import Agg, window_aggregates  # noqa: F401
    except Exception as err:
        return f"engine: not available ({type(err).__name__}: {err})"
    return None


def _aggs():
    from engine.temporal import Agg

    aggs = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        aggs.append(Agg("f1", "mean", timedelta(days=days), name=mean))
        aggs.append(Agg(None, "count", timedelta(days=days), name=count))
    return aggs


def _engine_events(spark, features: Path, spine: Path):
    """No spine: every event evaluated at its own time."""
    from engine.temporal import window_aggregates

    return window_aggregates(spark.read.parquet(str(features)), by="key", event_time="ts", aggs=_aggs())


def _engine_events_sweep(spark, features: Path, spine: Path):
    from engine.temporal._asof_strategy import forced

    with forced("sweep"):
        return _engine_events(spark, features, spine)


def _range_join_events(spark, features: Path, spine: Path):
    """Events LEFT JOIN events on key and ``t - 30d < e <= t``, then GROUP BY the event."""
    from pyspark.sql import functions as F

    s = spark.read.parquet(str(features)).select("key", "ts").alias("s")
    e = spark.read.parquet(str(features)).select("key", F.col("ts").alias("e_ts"), "f1").alias("e")
    widest = max(WINDOWS_DAYS)
    joined = s.join(
        e,
        (F.col("e.key") == F.col("s.key")) & (F.col("e_ts") <= F.col("s.ts"))
        & (F.col("e_ts") > F.col("s.ts") - F.expr(f"INTERVAL {widest} DAYS")),
        "left",
    )
    aggs = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        inside = F.col("e_ts") > F.col("s.ts") - F.expr(f"INTERVAL {days} DAYS")
        aggs.append(F.avg(F.when(inside, F.col("f1"))).alias(mean))
        aggs.append(F.count(F.when(inside, F.lit(1))).alias(count))
    return joined.groupBy(F.col("s.key"), F.col("s.ts")).agg(*aggs)


def _duckdb_events(features: Path, spine: Path, out: Path) -> None:
    import duckdb

    from benchmarks.verify import EVENTS_WINDOWS_SQL

    aggs = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        inside = f"e.ts > s.ts - INTERVAL {days} DAY"
        aggs.append(f"avg(CASE WHEN {inside} THEN e.f1 END) AS {mean}")
        aggs.append(f"count(CASE WHEN {inside} THEN 1 END) AS {count}")
    con = duckdb.connect()
    con.execute(f"SET threads={LOCAL_THREADS}")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    out.mkdir(parents=True, exist_ok=True)
    sql = EVENTS_WINDOWS_SQL.format(aggs=", ".join(aggs), features=f"read_parquet('{features}')", widest=max(WINDOWS_DAYS))
    con.execute(f"COPY ({sql}) TO '{out / 'part-0.parquet'}' (FORMAT parquet)")


def _engine(spark, features: Path, spine: Path):
    from engine.temporal import Agg, window_aggregates

    aggs = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        aggs.append(Agg("f1", "mean", timedelta(days=days), name=mean))
        aggs.append(Agg(None, "count", timedelta(days=days), name=count))
    return window_aggregates(
        spark.read.parquet(str(features)), spark.read.parquet(str(spine)),
        by="key", event_time="ts", spine_time="ts", aggs=aggs,
    )


def _engine_sweep(spark, features: Path, spine: Path):
    """The engine's previous strategy (the two-block Spark window plan), forced."""
    from engine.temporal._asof_strategy import forced

    with forced("sweep"):
        return _engine(spark, features, spine)


def _range_join_groupby(spark, features: Path, spine: Path):
    """Spine LEFT JOIN events on key and ``t - 30d < e <= t`` (the widest window), then one
    ``GROUP BY`` per spine row with conditional aggregates for the narrower window -- one range
    join for all windows, the cheapest form of this baseline."""
    from pyspark.sql import functions as F

    s = spark.read.parquet(str(spine)).alias("s")
    e = spark.read.parquet(str(features)).select("key", F.col("ts").alias("e_ts"), "f1").alias("e")
    widest = max(WINDOWS_DAYS)
    joined = s.join(
        e,
        (F.col("e.key") == F.col("s.key"))
        & (F.col("e_ts") <= F.col("s.ts"))
        & (F.col("e_ts") > F.col("s.ts") - F.expr(f"INTERVAL {widest} DAYS")),
        "left",
    )
    aggs = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        inside = F.col("e_ts") > F.col("s.ts") - F.expr(f"INTERVAL {days} DAYS")
        aggs.append(F.avg(F.when(inside, F.col("f1"))).alias(mean))
        aggs.append(F.count(F.when(inside, F.lit(1))).alias(count))
    return joined.groupBy(F.col("s.spine_id"), F.col("s.key"), F.col("s.ts")).agg(*aggs)


def _duckdb(features: Path, spine: Path, out: Path) -> None:
    import duckdb

    aggs = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        inside = f"e.ts > s.ts - INTERVAL {days} DAY"
        aggs.append(f"avg(CASE WHEN {inside} THEN e.f1 END) AS {mean}")
        aggs.append(f"count(CASE WHEN {inside} THEN 1 END) AS {count}")
    con = duckdb.connect()
    con.execute(f"SET threads={LOCAL_THREADS}")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    out.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"""COPY (SELECT s.spine_id, s.key, s.ts, {", ".join(aggs)}
        FROM read_parquet('{spine}') s LEFT JOIN read_parquet('{features}') e
          ON e.key = s.key AND e.ts <= s.ts AND e.ts > s.ts - INTERVAL {max(WINDOWS_DAYS)} DAY
        GROUP BY s.spine_id, s.key, s.ts) TO '{out / "part-0.parquet"}' (FORMAT parquet)"""
    )


WINDOW_PLANS: dict[str, Plan] = {
    p.name: p
    for p in [
        Plan("engine", "engine window_aggregates", "spark", "this engine", build=_engine, available=_engine_missing),
        Plan("engine_sweep", "engine window_aggregates, two-block Spark plan (previous default)", "spark",
             "this engine", build=_engine_sweep, available=_engine_missing),
        Plan("range_join_groupby", "range join + groupBy", "spark", "baseline written here", build=_range_join_groupby),
        Plan("duckdb", "DuckDB range join + GROUP BY (1 node)", "local", "duckdb, its own code", run=_duckdb),
    ]
}


EVENT_WINDOW_PLANS: dict[str, Plan] = {
    p.name: p
    for p in [
        Plan("engine", "engine window_aggregates, no spine", "spark", "this engine", build=_engine_events,
             available=_engine_missing),
        Plan("engine_sweep", "engine, no spine, two-block Spark plan (previous default)", "spark", "this engine",
             build=_engine_events_sweep, available=_engine_missing),
        Plan("range_join_groupby", "self range join + groupBy", "spark", "baseline written here",
             build=_range_join_events),
        Plan("duckdb", "DuckDB self range join + GROUP BY (1 node)", "local", "duckdb, its own code", run=_duckdb_events),
    ]
}
