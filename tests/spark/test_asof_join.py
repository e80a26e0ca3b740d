"""asof_join: golden edge cases (tests/golden/asof/cases.json), output columns, ties, several
lookups in one pass, and argument errors raised before any Spark job."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from engine.errors import ColumnNotFoundError, ColumnTypeError, IncompatibleTypesError, InvalidArgumentError
from engine.temporal import AsofLookup, asof_join, asof_join_many

BASE = datetime(2013, 1, 1, tzinfo=timezone.utc)
CASES = json.loads((Path(__file__).parents[1] / "golden" / "asof" / "cases.json").read_text())
CASES.pop("_doc")


def minutes(m):
    return None if m is None else BASE + timedelta(minutes=m)


@pytest.fixture(scope="module")
def simple(spark):
    left = spark.createDataFrame([(1, "a", minutes(10), 1.0)], "lid long, k string, ts timestamp, x double")
    right = spark.createDataFrame([("a", minutes(5), 2.0, 7)], "k string, ts timestamp, x double, seq int")
    return left, right


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_case(spark, name):
    case = CASES[name]
    left = spark.createDataFrame([(lid, k, minutes(t)) for lid, k, t in case["left"]], "lid long, k string, ts timestamp")
    right = spark.createDataFrame([(k, minutes(t), rid) for k, t, rid in case["right"]], "k string, ts timestamp, rid string")
    args = dict(case["args"])
    if "tolerance_minutes" in args:
        args["tolerance"] = timedelta(minutes=args.pop("tolerance_minutes"))
    rows = asof_join(left, right, on="ts", by="k", **args).collect()
    assert len(rows) == len(case["left"])
    assert {str(r.lid): r.rid for r in rows} == case["expected"]
    for lid, t in case.get("expected_time", {}).items():
        (row,) = [r for r in rows if str(r.lid) == lid]
        assert row.ts_right == minutes(t).replace(tzinfo=None)


def test_output_columns_follow_pandas_naming(spark, simple):
    left, right = simple
    out = asof_join(left, right, on="ts", by="k")
    assert out.columns == ["lid", "k", "ts", "x", "ts_right", "x_right", "seq"]
    out = asof_join(left, right, on="ts", by="k", suffixes=("_l", "_r"))
    assert out.columns == ["lid", "k", "ts", "x_l", "ts_r", "x_r", "seq"]
    renamed = right.withColumnRenamed("k", "key").withColumnRenamed("ts", "event_time")
    out = asof_join(left, renamed, left_on="ts", right_on="event_time", left_by="k", right_by="key")
    assert out.columns == ["lid", "k", "ts", "x", "key", "event_time", "x_right", "seq"]
    row = out.first()
    assert (row.key, row.x_right, row.seq) == ("a", 2.0, 7)


def test_ties_greatest_tie_breaker_wins_regardless_of_order(spark):
    left = spark.createDataFrame([(1, "a", minutes(10))], "lid long, k string, ts timestamp")
    rows = [("a", minutes(10), float(v), s) for v, s in [(1.0, 3), (2.0, 9), (3.0, 1)]]
    for perm in (rows, rows[::-1], rows[1:] + rows[:1]):
        right = spark.createDataFrame(perm, "k string, ts timestamp, v double, seq int").repartition(3)
        assert asof_join(left, right, on="ts", by="k", tie_breaker="seq").first().v == 2.0
        # without a tie breaker: the greatest payload (ts, v, seq in column order) -- deterministic
        assert asof_join(left, right, on="ts", by="k").first().v == 3.0


def test_several_tie_breaker_columns(spark):
    left = spark.createDataFrame([(1, "a", minutes(10))], "lid long, k string, ts timestamp")
    right = spark.createDataFrame(
        [("a", minutes(10), 1.0, 2, 1), ("a", minutes(10), 2.0, 2, 5), ("a", minutes(10), 3.0, 1, 9)],
        "k string, ts timestamp, v double, ingest int, seq int",
    )
    assert asof_join(left, right, on="ts", by="k", tie_breaker=["ingest", "seq"]).first().v == 2.0


def test_duplicate_left_rows_each_come_out(spark):
    left = spark.createDataFrame([(1, "a", minutes(10))] * 3, "lid long, k string, ts timestamp")
    right = spark.createDataFrame([("a", minutes(1), 5.0)], "k string, ts timestamp, v double")
    assert [r.v for r in asof_join(left, right, on="ts", by="k").collect()] == [5.0, 5.0, 5.0]


def test_no_by_and_numeric_times(spark):
    left = spark.createDataFrame([(1, 10), (2, 3)], "lid long, t long")
    right = spark.createDataFrame([(2.5, "x"), (9.5, "y")], "t double, v string")
    got = {r.lid: r.v for r in asof_join(left, right, on="t").collect()}
    assert got == {1: "y", 2: "x"}
    got = {r.lid: r.v for r in asof_join(left, right, on="t", tolerance=0.4).collect()}
    assert got == {1: None, 2: None}


def test_date_times(spark):
    from datetime import date

    left = spark.createDataFrame([(1, "a", date(2013, 1, 10))], "lid long, k string, d date")
    right = spark.createDataFrame([("a", date(2013, 1, 3), 1), ("a", date(2013, 1, 8), 2)], "k string, d date, v int")
    assert asof_join(left, right, on="d", by="k", tolerance=timedelta(days=2)).first().v == 2
    assert asof_join(left, right, on="d", by="k", tolerance=timedelta(days=1)).first().v is None


def test_many_lookups_one_pass_equals_separate_joins(spark):
    spine = spark.createDataFrame(
        [(i, "a" if i % 2 else "b", minutes(i * 7), "o" if i % 3 else "p") for i in range(12)],
        "sid long, k string, ts timestamp, other string",
    )
    f1 = spark.createDataFrame([("a", minutes(5), 1.0), ("b", minutes(20), 2.0), ("a", minutes(50), 3.0)], "k string, ts timestamp, v double")
    f2 = spark.createDataFrame([("a", minutes(0), 10), ("b", minutes(30), 20), ("b", minutes(77), 30)], "k string, t2 timestamp, w int")
    f3 = spark.createDataFrame([("o", minutes(3), "x"), ("p", minutes(40), "y")], "o string, t3 timestamp, z string")
    lookups = [
        AsofLookup(f1, on="ts", by="k", prefix="f1_", tolerance=timedelta(minutes=30)),
        AsofLookup(f2, on="t2", by="k", prefix="f2_", allow_exact_matches=False),
        AsofLookup(f3, on="t3", by="o", left_by="other", prefix="f3_"),
    ]
    many = asof_join_many(spine, lookups, on="ts")
    assert many.columns == ["sid", "k", "ts", "other", "f1_v", "f1_ts", "f2_w", "f2_t2", "f3_z", "f3_t3"]
    one = asof_join(spine, f1, on="ts", by="k", tolerance=timedelta(minutes=30)).select("sid", "v", "ts_right")
    two = asof_join(spine, f2, left_on="ts", right_on="t2", by="k", allow_exact_matches=False).select("sid", "w", "t2")
    three = asof_join(spine, f3, left_on="ts", right_on="t3", left_by="other", right_by="o").select("sid", "z", "t3")
    expected = one.join(two, "sid").join(three, "sid")
    got = sorted(tuple(r) for r in many.select("sid", "f1_v", "f1_ts", "f2_w", "f2_t2", "f3_z", "f3_t3").collect())
    assert got == sorted(tuple(r) for r in expected.collect())
    assert many.count() == 12


def test_many_lookups_share_one_spine_shuffle(spark):
    """Lookups keyed like the spine are swept together: one Exchange of the spine, not one per table
    (100 keys of 1% each: none is hot, so no time slicing either)."""
    spine = spark.createDataFrame([(k, f"k{k}", minutes(10)) for k in range(100)], "sid long, k string, ts timestamp")
    tables = [
        spark.createDataFrame([(f"k{k}", minutes(i), float(i)) for k in range(100)], "k string, ts timestamp, v double")
        for i in range(4)
    ]
    lookups = [AsofLookup(t, on="ts", by="k", prefix=f"g{i}_") for i, t in enumerate(tables)]
    out = asof_join_many(spine, lookups, on="ts")
    plan = out._jdf.queryExecution().executedPlan().toString()
    # the kernel: one Exchange of the spine and one of the four tables together (cogroup)
    assert plan.count("Exchange hashpartitioning") == 2 and "FlatMapCoGroupsInArrow" in plan, plan
    assert {r["g3_v"] for r in out.collect()} == {3.0}
    from engine.temporal._asof_strategy import forced

    with forced("sweep"):  # the sweep: one Exchange of everything
        plan = asof_join_many(spine, lookups, on="ts")._jdf.queryExecution().executedPlan().toString()
    assert plan.count("Exchange hashpartitioning") == 1


def test_hot_key_is_sliced_and_exact(spark):
    """One key owning every row is split into time slices (rows carried across slice bounds) and
    still gives merge_asof's rows."""
    import pandas as pd

    spine = spark.createDataFrame([(i, "a", minutes(3 * i + 1)) for i in range(300)], "sid long, k string, ts timestamp")
    right = spark.createDataFrame([("a", minutes(7 * i), float(i)) for i in range(100)], "k string, ts timestamp, v double")
    out = asof_join(spine, right, on="ts", by="k", hot_key_share=0.0)
    assert "__ff_slice" in out._jdf.queryExecution().executedPlan().toString()
    got = out.toPandas().sort_values("sid").reset_index(drop=True)
    expected = pd.merge_asof(spine.toPandas().sort_values("ts"), right.toPandas().sort_values("ts"), on="ts", by="k")
    expected = expected.sort_values("sid").reset_index(drop=True)
    assert got["v"].tolist() == expected["v"].tolist()


def test_columns_with_odd_names(spark):
    left = spark.createDataFrame([(1, "a", minutes(10))], "`l id` long, `k.e y` string, `t s` timestamp")
    right = spark.createDataFrame([("a", minutes(3), 1.5)], "`k.e y` string, `t s` timestamp, `v-1` double")
    row = asof_join(left, right, on="t s", by="k.e y").first()
    assert row["v-1"] == 1.5 and row["t s_right"] == minutes(3).replace(tzinfo=None)


# ---- errors: raised from schemas alone, before any Spark job --------------------------------


def test_missing_columns_are_named(spark, simple):
    left, right = simple
    with pytest.raises(ColumnNotFoundError) as err:
        asof_join(left, right, on="when", by="k")
    assert err.value.params["column"] == "when" and err.value.params["side"] == "left"
    with pytest.raises(ColumnNotFoundError) as err:
        asof_join(left, right.drop("k"), on="ts", by="k")
    assert err.value.params["side"] == "right" and err.value.params["argument"] == "by"
    with pytest.raises(ColumnNotFoundError) as err:
        asof_join(left, right, on="ts", by="k", tie_breaker="ingested_at")
    assert err.value.params["argument"] == "tie_breaker"


def test_key_and_time_type_mismatches(spark, simple):
    left, right = simple
    with pytest.raises(IncompatibleTypesError) as err:
        asof_join(left, right.withColumn("k", F.lit(1)), on="ts", by="k")
    assert err.value.params["left_type"] == "string" and err.value.params["right_type"] == "int"
    with pytest.raises(IncompatibleTypesError) as err:
        asof_join(left, right.withColumn("ts", F.lit(5).cast("long")), on="ts", by="k")
    assert err.value.params["right_type"] == "bigint"
    with pytest.raises(IncompatibleTypesError) as err:
        asof_join(left, right.withColumn("ts", F.col("ts").cast("timestamp_ntz")), on="ts", by="k")
    assert "TIMESTAMP_NTZ" in str(err.value)
    with pytest.raises(ColumnTypeError):
        asof_join(left.withColumn("ts", F.lit("x")), right, on="ts", by="k")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"tolerance": 5}, "tolerance"),
        ({"tolerance": timedelta(minutes=-1)}, "tolerance"),
        ({"direction": "sideways"}, "direction"),
        ({"allow_exact_matches": "yes"}, "allow_exact_matches"),
        ({"suffixes": ("", "")}, "suffixes"),
        ({"suffixes": "x"}, "suffixes"),
    ],
)
def test_bad_arguments(spark, simple, kwargs, argument):
    left, right = simple
    with pytest.raises(InvalidArgumentError) as err:
        asof_join(left, right, on="ts", by="k", **kwargs)
    assert err.value.params["argument"] == argument


def test_on_and_by_combinations(spark, simple):
    left, right = simple
    with pytest.raises(InvalidArgumentError):
        asof_join(left, right, on="ts", left_on="ts", right_on="ts")
    with pytest.raises(InvalidArgumentError):
        asof_join(left, right, left_on="ts")
    with pytest.raises(InvalidArgumentError):
        asof_join(left, right, on="ts", by="k", left_by="k", right_by="k")
    with pytest.raises(InvalidArgumentError):
        asof_join(left, right, on="ts", left_by="k")
    with pytest.raises(InvalidArgumentError):
        asof_join(left, right, on="ts", by=["k", 3])


def test_errors_run_no_spark_job(spark, simple):
    left, right = simple
    tracker = spark.sparkContext.statusTracker()
    before = tracker.getJobIdsForGroup(None)
    with pytest.raises(InvalidArgumentError):
        asof_join(left, right, on="ts", by="k", direction="up")
    assert tracker.getJobIdsForGroup(None) == before
