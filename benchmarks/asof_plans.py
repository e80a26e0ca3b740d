"""The as-of join plans compared by ``benchmarks.asof_bench``: backward, by ``key``, on ``ts``.

A Spark plan is ``build(spark, features_path, spine_path) -> DataFrame``; the harness reads its
result into a Parquet write, so one timed run is read Parquet -> join -> write Parquet. A local
(single-node) plan is ``run(features_path, spine_path, out_dir)`` and does all three itself.
``available()`` returns None, or why the plan cannot run here (it is then recorded, not timed).

Which plans are the peers' own code and which are re-implementations is stated in ``source``.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.feast_plan import FEAST_PLAN  # imports feast only when the plan runs
from benchmarks.plan import LOCAL_THREADS, Plan
from benchmarks.verify import OutputColumns

__all__ = ["ASOF_PLANS"]


# ---------------------------------------------------------------- the engine


def _engine_missing(*names: str) -> str | None:
    try:
        import engine.temporal as temporal
    except Exception as err:  # any import error means "not available", never a crash
        return f"engine: not available ({type(err).__name__}: {err})"
    missing = [n for n in names if not hasattr(temporal, n)]
    return f"engine: not available (engine.temporal has no {', '.join(missing)})" if missing else None


def _engine(spark, features: Path, spine: Path):
    from engine.temporal import asof_join

    return asof_join(spark.read.parquet(str(spine)), spark.read.parquet(str(features)), on="ts", by="key")


def _engine_sweep(spark, features: Path, spine: Path):
    """The engine's previous strategy (union + window sweep), forced: the kernel's reference."""
    from engine.temporal import asof_join
    from engine.temporal._asof_strategy import forced

    with forced("sweep"):
        return asof_join(spark.read.parquet(str(spine)), spark.read.parquet(str(features)), on="ts", by="key")


def _sweep_missing() -> str | None:
    try:
        from engine.temporal._asof_strategy import forced  # noqa: F401
    except Exception as err:
        return f"engine: no strategy switch ({type(err).__name__})"
    return None


def _engine_no_hot_check(spark, features: Path, spine: Path):
    from engine.temporal import asof_join

    return asof_join(
        spark.read.parquet(str(spine)), spark.read.parquet(str(features)), on="ts", by="key", hot_key_share=None
    )


def _hot_check_missing() -> str | None:
    import inspect

    reason = _engine_missing("asof_join")
    if reason is None:
        from engine.temporal import asof_join

        if "hot_key_share" not in inspect.signature(asof_join).parameters:
            return "engine: asof_join has no hot_key_share parameter"
    return reason


def _engine_many(spark, features: Path, spine: Path):
    from engine.temporal import AsofLookup, asof_join_many

    lookup = AsofLookup(right=spark.read.parquet(str(features)), by="key", on="ts")
    return asof_join_many(spark.read.parquet(str(spine)), [lookup], on="ts")


# ---------------------------------------------------------------- Feast / Hopsworks range join


def _range_join_sql(spark, features: Path, spine: Path):
    """The plan of Feast's Spark offline store (MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN, one
    feature view, no TTL, no created timestamp), re-written here from reading it; Hopsworks
    generates the same shape (equi-join on the key with ``e <= t``, rank per spine row, keep 1):

    1. Feast first collects the spine's time range (an aggregate job) to prune the feature table;
    2. a string row id ``CONCAT(key, ts)`` per spine row, and the distinct (key, ts, id) rows;
    3. feature rows with ``e <= max(t)`` inner-joined to them on ``key`` and ``e <= t`` (every
       older feature row of the key: the per-key quadratic part);
    4. ``ROW_NUMBER() OVER (PARTITION BY id ORDER BY e DESC) = 1`` gives the latest ``e`` per id,
       joined back to (3) on (id, e) to fetch the feature values;
    5. the spine LEFT JOIN that on the id.
    """
    spark.read.parquet(str(spine)).createOrReplaceTempView("bench_spine")
    spark.read.parquet(str(features)).createOrReplaceTempView("bench_features")
    # Without a TTL Feast bounds the feature side from above only; the bound is a UTC string.
    hi = spark.sql("SELECT CAST(min(ts) AS STRING), CAST(max(ts) AS STRING) FROM bench_spine").first()[1]
    spark.sql(
        """CREATE OR REPLACE TEMPORARY VIEW bench_entities AS
        SELECT *, ts AS entity_timestamp, CONCAT(CAST(key AS STRING), CAST(ts AS STRING)) AS fv__row_id
        FROM bench_spine"""
    )
    spark.sql(
        f"""CREATE OR REPLACE TEMPORARY VIEW bench_fv_cleaned AS
        WITH distinct_entities AS (
            SELECT key, entity_timestamp, fv__row_id FROM bench_entities
            GROUP BY key, entity_timestamp, fv__row_id
        ),
        candidates AS (
            SELECT ts AS event_timestamp, key, f1, f2, f3 FROM bench_features
            WHERE ts <= TIMESTAMP '{hi}'
        ),
        base AS (
            SELECT c.*, d.entity_timestamp, d.fv__row_id
            FROM candidates c JOIN distinct_entities d
              ON c.event_timestamp <= d.entity_timestamp AND c.key = d.key
        ),
        latest AS (
            SELECT event_timestamp, fv__row_id FROM (
                SELECT *, ROW_NUMBER() OVER (PARTITION BY fv__row_id ORDER BY event_timestamp DESC) AS rn
                FROM base
            ) WHERE rn = 1
        )
        SELECT base.* FROM base JOIN latest USING (fv__row_id, event_timestamp)"""
    )
    return spark.sql(
        """SELECT key, ts, spine_id, f1, f2, f3 FROM bench_entities
        LEFT JOIN (SELECT fv__row_id, f1, f2, f3 FROM bench_fv_cleaned) USING (fv__row_id)"""
    )


# ---------------------------------------------------------------- tempo


def _tempo_missing() -> str | None:
    try:
        import tempo  # noqa: F401
    except Exception as err:
        return f"dbl-tempo not importable ({type(err).__name__}: {err}); pip install dbl-tempo ipython"
    return None


def _tempo(spark, features: Path, spine: Path):
    from tempo import TSDF

    left = TSDF(spark.read.parquet(str(spine)), ts_col="ts", partition_cols=["key"])
    right = TSDF(spark.read.parquet(str(features)), ts_col="ts", partition_cols=["key"])
    return left.asofJoin(right, right_prefix="right").df


# ---------------------------------------------------------------- pandas API on Spark


def _ps_merge_asof(spark, features: Path, spine: Path):
    import pyspark.pandas as ps

    # "distributed" (monotonically_increasing_id) spares the default index its extra pass.
    ps.set_option("compute.default_index_type", "distributed")
    left = spark.read.parquet(str(spine)).pandas_api()
    right = spark.read.parquet(str(features)).pandas_api()
    return ps.merge_asof(left, right, on="ts", by="key", direction="backward").to_spark()


# ---------------------------------------------------------------- single node


def _duckdb(features: Path, spine: Path, out: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={LOCAL_THREADS}")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET enable_progress_bar=false")
    out.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"""COPY (SELECT s.*, f.ts AS ts_right, f.f1, f.f2, f.f3
        FROM read_parquet('{spine}') s ASOF LEFT JOIN read_parquet('{features}') f
          ON s.key = f.key AND f.ts <= s.ts) TO '{out / "part-0.parquet"}' (FORMAT parquet)"""
    )


def _pandas(features: Path, spine: Path, out: Path) -> None:
    import pandas as pd

    left = pd.read_parquet(spine).sort_values("ts", kind="stable")
    right = pd.read_parquet(features).sort_values("ts", kind="stable")
    joined = pd.merge_asof(left, right, on="ts", by="key", direction="backward")
    out.mkdir(parents=True, exist_ok=True)
    joined.to_parquet(out / "part-0.parquet", index=False)


def _polars_missing() -> str | None:
    try:
        import polars  # noqa: F401
    except Exception as err:
        return f"polars not importable ({type(err).__name__})"
    return None


def _polars(features: Path, spine: Path, out: Path) -> None:
    import polars as pl

    left = pl.read_parquet(spine).sort("ts")
    right = pl.read_parquet(features).sort("ts")
    joined = left.join_asof(right, on="ts", by="key", strategy="backward", check_sortedness=False)
    out.mkdir(parents=True, exist_ok=True)
    joined.write_parquet(out / "part-0.parquet")


# ---------------------------------------------------------------- the list, in run order


ASOF_PLANS: dict[str, Plan] = {
    p.name: p
    for p in [
        Plan(
            "engine", "engine asof_join", "spark", "this engine",
            OutputColumns(matched_ts="ts_right"), build=_engine, available=lambda: _engine_missing("asof_join"),
        ),
        Plan(
            "engine_sweep", "engine asof_join, union + window sweep strategy (previous default)", "spark",
            "this engine", OutputColumns(matched_ts="ts_right"), build=_engine_sweep, available=_sweep_missing,
        ),
        Plan(
            "engine_no_hot_check", "engine asof_join, hot_key_share=None (diagnostic)", "spark", "this engine",
            OutputColumns(matched_ts="ts_right"), build=_engine_no_hot_check, available=_hot_check_missing,
        ),
        Plan(
            "engine_many", "engine asof_join_many (1 table)", "spark", "this engine",
            OutputColumns(matched_ts="ts_right"), build=_engine_many,
            available=lambda: _engine_missing("asof_join_many", "AsofLookup"),
        ),
        FEAST_PLAN,
        Plan(
            "range_join_sql", "range join + row_number (Feast/Hopsworks SQL)", "spark",
            "re-implementation of the SQL Feast's Spark offline store generates",
            build=_range_join_sql,
        ),
        Plan(
            "tempo", "tempo TSDF.asofJoin (union + last ignorenulls)", "spark", "dbl-tempo 0.1.30, its own code",
            OutputColumns(f1="right_f1", f2="right_f2", f3="right_f3", matched_ts="right_ts"),
            build=_tempo, available=_tempo_missing,
        ),
        Plan(
            "ps_merge_asof", "pyspark.pandas.merge_asof", "spark", "pyspark 4.2.0, its own code",
            build=_ps_merge_asof,
        ),
        Plan("duckdb", "DuckDB ASOF JOIN (1 node)", "local", "duckdb, its own code",
             OutputColumns(matched_ts="ts_right"), run=_duckdb),
        Plan("pandas", "pandas.merge_asof (1 node)", "local", "pandas, its own code", run=_pandas),
        Plan("polars", "polars join_asof (1 node)", "local", "polars, its own code", run=_polars,
             available=_polars_missing),
    ]
}
