"""The layout as-of strategy (right tables read one hash bucket per task, only the spine shuffled)
against the union + window sweep and ``pandas.merge_asof``, and through the feature store.

Differential: random data with time ties, NULL keys and times, NULL payloads, duplicate spine
rows and one dominating key, every direction, with and without a tolerance and a tie breaker,
one and two key columns, one and two lookups in the pass. The right side is written bucketed
by Spark itself (``partitionBy`` of ``pmod(hash(keys), n)``, INT96 timestamps), so the bucket
numbers the strategy hashes the spine with must agree with Spark's.

Feature store: groups are written laid out (one Delta partition per bucket, every file inside
its bucket, the layout in the table properties, the column hidden from readers), views over them
take the layout strategy and give the kernel's rows, also at an older Delta version, after
schema evolution, with renamed keys, and mixed with a group without the layout (fallback).
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from pyspark.sql import functions as F

from engine.store.bucketing import BUCKET_COLUMN, BucketFiles
from engine.store.feature_store import FeatureStore
from engine.store.feature_view import FeatureLookup
from engine.temporal import AsofLookup, BucketedSource, asof_join_many, explain_asof_many
from engine.temporal import _asof_layout as layout
from engine.temporal._asof_strategy import forced
from tests.spark.test_asof_properties import _norm, _reference
from tests.spark.test_temporal_strategies import asof_cases

UTC = timezone.utc
BASE = datetime(2013, 1, 1, tzinfo=UTC)
SETTINGS = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large,
                                                                            HealthCheck.function_scoped_fixture])


def _at(minutes):
    return None if minutes is None else BASE + timedelta(minutes=minutes)


def bucketed(spark, frame, keys, buckets, folder) -> BucketedSource:
    """``frame`` written by Spark in hash buckets of ``keys`` (Parquet, one folder per bucket)."""
    bucket = F.pmod(F.hash(*[F.col(k) for k in keys]), F.lit(buckets))
    frame.withColumn(BUCKET_COLUMN, bucket).write.partitionBy(BUCKET_COLUMN).parquet(str(folder))
    files = {}
    for entry in os.listdir(folder):
        if entry.startswith(BUCKET_COLUMN + "="):
            part = folder / entry
            files[int(entry.split("=")[1])] = tuple(str(part / f) for f in sorted(os.listdir(part)) if f.endswith(".parquet"))
    return BucketedSource(buckets=buckets, key_columns=tuple(keys), read_bucket=BucketFiles(files=files, physical={}))


@settings(SETTINGS, max_examples=20)
@given(case=asof_cases())
def test_layout_sweep_and_pandas_agree(spark, tmp_path_factory, case):
    left, right, direction, exact, tol, use_tie, two_keys, _hot = case
    left = [(lid, k, k2, _at(t)) for lid, k, k2, t in left]
    right = [(k, k2, _at(t), v, seq) for k, k2, t, v, seq in right]
    ldf = spark.createDataFrame(left, "lid long, k string, k2 int, t timestamp")
    rdf = spark.createDataFrame(right, "k string, k2 int, t timestamp, v double, seq long").withColumn("rt", F.col("t"))
    by = ["k", "k2"] if two_keys else ["k"]
    if not two_keys:
        rdf = rdf.drop("k2")
    source = bucketed(spark, rdf, list(reversed(by)), 3, tmp_path_factory.mktemp("bucketed") / "r")
    lookup = AsofLookup(rdf, on="t", by=by, direction=direction, allow_exact_matches=exact, prefix="r_",
                        tolerance=None if tol is None else timedelta(minutes=tol), tie_breaker="seq" if use_tie else None,
                        source=source)
    results = {}
    for run, strategy, conf in RUNS:
        with forced(strategy), _conf(spark, conf):
            rows = asof_join_many(ldf, [lookup], on="t").collect()
        # every left row once, unchanged
        assert Counter((r.lid, r.k, r.k2, r.t) for r in rows) == Counter((a, b, c, _norm(d)) for a, b, c, d in left)
        results[run] = Counter((r.lid, _norm(r.r_rt), _norm(r.r_v), _norm(r.r_seq)) for r in rows)
    expected = _reference([(lid, k, k2, t) for lid, k, k2, t in left], right, by=by, direction=direction, exact=exact,
                          tol=tol, timestamps=True, use_tie=use_tie)
    assert all(result == expected for result in results.values()), {run: r == expected for run, r in results.items()}


# The layout strategy's spine partitions: adaptive execution merges small neighbouring buckets into
# one task (the default), one bucket per task without it, and a skewed bucket's spine rows split
# over several tasks when the advisory partition size is tiny.
RUNS = [
    ("whole: every bucket read by each task, no key shuffle", "whole", {}),
    ("layout, merged buckets", "layout", {}),
    ("layout, one bucket per task", "layout", {"spark.sql.adaptive.enabled": "false"}),
    ("layout, split buckets", "layout", {"spark.sql.adaptive.advisoryPartitionSizeInBytes": "64b",
                                         "spark.sql.adaptive.coalescePartitions.enabled": "false"}),
    ("sweep", "sweep", {}),
]


@contextmanager
def _conf(spark, conf):
    before = {k: spark.conf.get(k, None) for k in conf}
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def test_two_lookups_in_one_pass_and_the_fallback_when_bucketed_differently(spark, tmp_path):
    left = spark.createDataFrame([(i, f"k{i % 5}", _at(i * 7)) for i in range(40)], "lid long, k string, t timestamp")
    right = spark.createDataFrame([(f"k{i % 6}", _at(i * 5), float(i)) for i in range(60)], "k string, t timestamp, v double")
    src4 = bucketed(spark, right, ["k"], 4, tmp_path / "four")
    src3 = bucketed(spark, right, ["k"], 3, tmp_path / "three")
    lookups = [AsofLookup(right, on="t", by="k", prefix="a_", source=src4),
               AsofLookup(right, on="t", by="k", prefix="b_", direction="forward", tolerance=timedelta(minutes=20),
                          source=src4)]
    plan = explain_asof_many(left, lookups, on="t")[0]
    assert plan.strategy == "layout" and plan.partitions == 4 and "only the spine is shuffled" in plan.reason
    got = asof_join_many(left, lookups, on="t")
    with forced("sweep"):
        want = asof_join_many(left, lookups, on="t")
    assert sorted(map(tuple, got.collect())) == sorted(map(tuple, want.collect()))

    mixed = [lookups[0], AsofLookup(right, on="t", by="k", prefix="c_", source=src3)]
    plan = explain_asof_many(left, mixed, on="t")[0]
    assert plan.strategy == "kernel" and "bucketed differently" in plan.reason
    with pytest.raises(ValueError, match="layout strategy cannot run"), forced("layout"):
        asof_join_many(left, mixed, on="t")


# ---------------------------------------------------------------- through the feature store


@pytest.fixture(scope="module")
def store(spark, tmp_path_factory):
    fs = FeatureStore(spark, str(tmp_path_factory.mktemp("layout") / "store"))
    orders = fs.create_feature_group(
        "orders", primary_key=["customer", "shop"], event_time="at", tie_breaker="seq", buckets=4,
        schema="customer STRING, shop INT, at TIMESTAMP, seq BIGINT, amount DOUBLE, note STRING")
    rows = [(f"c{i % 7}", i % 2, _at(i * 3 % 50), i, None if i % 9 == 0 else float(i), f"n{i}") for i in range(80)]
    orders.insert(spark.createDataFrame(rows, orders.schema).dropDuplicates(["customer", "shop", "at"]))
    plain = fs.create_feature_group("plain", primary_key="customer", event_time="at", buckets=None,
                                    schema="customer STRING, at TIMESTAMP, score DOUBLE")
    plain.insert(spark.createDataFrame([(f"c{i % 4}", _at(i * 4), i / 3) for i in range(30)], plain.schema))
    return fs


def _files_stay_in_their_bucket(spark, group, buckets, folder=None):
    """Every file of a bucket (under ``folder``: the group's, or one of its partitions) holds only
    that bucket's keys, sorted by (key, event time)."""
    import pyarrow.parquet as pq

    folder = folder or group.path
    keys = group.read().select(*group.primary_key).schema
    for entry in os.listdir(folder):
        if not entry.startswith(BUCKET_COLUMN + "="):
            continue
        bucket = int(entry.split("=")[1])
        for name in os.listdir(os.path.join(folder, entry)):
            if name.endswith(".parquet"):
                order = [*group.primary_key, group.event_time]
                table = pq.read_table(os.path.join(folder, entry, name), columns=order)
                assert table.equals(table.sort_by([(c, "ascending") for c in order])), (entry, name)
                frame = spark.createDataFrame(table.select(group.primary_key).to_pandas(), keys)
                hashed = frame.select(F.pmod(F.hash(*group.primary_key), F.lit(buckets)).alias("b")).distinct().collect()
                assert {r.b for r in hashed} <= {bucket}, (entry, name)


def test_groups_are_written_in_hash_buckets_and_read_without_the_column(spark, store):
    orders = store.get_feature_group("orders")
    assert orders.buckets == 4 and BUCKET_COLUMN not in orders.read().columns
    assert any(e.startswith(BUCKET_COLUMN + "=") for e in os.listdir(orders.path))
    _files_stay_in_their_bucket(spark, orders, 4)
    from engine.store import delta

    properties = delta.check_log(spark, orders.path)
    assert properties["featurefactory.buckets"] == "4" and properties["delta.enableDeletionVectors"] == "false"
    # the row count from Delta's file statistics: the plan's estimate without Spark's file listing
    assert orders.lookup_source(orders.delta_version()).rows == orders.read().count() > 0
    plain = store.get_feature_group("plain")
    assert plain.buckets is None and plain.lookup_source(plain.delta_version()) is None


def test_spark_writes_each_bucket_file_sorted_by_key_and_time(spark, tmp_path, monkeypatch):
    from engine.store import _local_group_write

    monkeypatch.setattr(_local_group_write, "MAX_ROWS", 0)  # through Spark's writer, not the engine's
    fs = FeatureStore(spark, str(tmp_path / "store"))
    group = fs.create_feature_group("events", primary_key="customer", event_time="at", buckets=3, partition_by=["day"],
                                    schema="customer STRING, day INT, at TIMESTAMP, amount DOUBLE")
    rows = [(f"c{i * 7 % 23}", i % 2, _at(i * 5 % 97), float(i)) for i in range(400)]
    frame = spark.createDataFrame(rows, group.schema).dropDuplicates(["customer", "at"])
    group.insert(frame.repartition(3, F.rand(5)))  # rows in no order, over several tasks
    group.insert(spark.createDataFrame([("c1", 0, _at(98), 1.0), ("c0", 1, _at(99), 2.0)], group.schema)
                 .repartition(2))
    assert group.read().count() == frame.count() + 2
    days = [d for d in os.listdir(group.path) if d.startswith("day=")]
    assert len(days) == 2
    for day in days:
        _files_stay_in_their_bucket(spark, group, 3, os.path.join(group.path, day))


def test_views_over_laid_out_groups_match_the_kernel_at_every_version(spark, store, monkeypatch):
    view = store.create_feature_view(
        "orders_view", spine_time="ts", exist_ok=True,
        lookups=[FeatureLookup("orders", keys={"customer": "cust", "shop": "shop"}, lookback=timedelta(minutes=30), prefix="o_"),
                 FeatureLookup("orders", keys={"customer": "cust", "shop": "shop"}, prefix="all_")])
    spine = spark.createDataFrame([(i, f"c{i % 8}", i % 3, _at(i * 2)) for i in range(70)],
                                  "sid long, cust string, shop int, ts timestamp")
    spine = spine.unionByName(spine.limit(5))  # duplicate spine rows come out once each

    def both(**kwargs):
        got = sorted(map(tuple, view.training_data(spine, **kwargs).collect()), key=repr)  # read whole
        with monkeypatch.context() as m:
            m.setattr(layout, "WHOLE_ROWS", 0)  # the layout strategy: the spine shuffled by bucket
            laid = sorted(map(tuple, view.training_data(spine, **kwargs).collect()), key=repr)
        with forced("kernel"):
            want = sorted(map(tuple, view.training_data(spine, **kwargs).collect()), key=repr)
        assert laid == got
        return got, want

    orders = store.get_feature_group("orders")
    before = orders.delta_version()
    (plan,) = view.explain(spine)  # both lookups share the spine keys: one pass, no job run
    assert plan.strategy == "whole" and plan.lookups == 2 and "each task reads them whole" in plan.reason, str(plan)
    with monkeypatch.context() as m:
        m.setattr(layout, "WHOLE_ROWS", 0)
        (plan,) = view.explain(spine)
    assert plan.strategy == "layout" and plan.lookups == 2 and plan.partitions == 4, str(plan)
    assert plan.estimated_right_rows == 2 * orders.read().count()  # both lookups read the whole group
    assert f"orders@v1 at Delta version {before}" in plan.reason
    got, want = both()
    assert got == want and len(got) == 75
    # a later upsert (with a new column: files written before it lack it) changes the current rows
    from pyspark.sql.types import IntegerType, StructField, StructType

    wider = StructType([*orders.schema.fields, StructField("extra", IntegerType())])
    orders.insert(spark.createDataFrame([("c1", 1, _at(2), 999, -1.0, "late", 7)], wider), evolve_schema=True)
    _files_stay_in_their_bucket(spark, orders, 4)
    now, want_now = both()
    assert now == want_now and now != got
    old, want_old = both(as_of_versions={"orders:v1": before})
    assert old == want_old == got


def test_a_group_without_the_layout_falls_back_in_the_same_view(spark, store):
    view = store.create_feature_view(
        "mixed_view", spine_time="ts", exist_ok=True,
        lookups=[FeatureLookup("orders", keys={"customer": "customer", "shop": "shop"}, prefix="o_"),
                 FeatureLookup("plain", prefix="p_")])
    spine = spark.createDataFrame([(f"c{i % 5}", i % 2, _at(i * 3)) for i in range(40)], "customer string, shop int, ts timestamp")
    laid, flat = view.explain(spine)  # two key sets: two passes
    assert laid.strategy == "whole" and flat.strategy == "kernel", (str(laid), str(flat))
    got = view.training_data(spine)  # the whole pass runs first: the columns come back in the view's order
    with forced("sweep"):
        want = view.training_data(spine)
    assert got.columns == want.columns
    assert sorted(map(tuple, got.collect()), key=repr) == sorted(map(tuple, want.collect()), key=repr)


def test_small_groups_on_several_key_sets_are_read_whole_in_one_python_pass(spark, store, monkeypatch):
    shops = store.create_feature_group("shops", primary_key="shop", event_time="at", buckets=2, exist_ok=True,
                                       schema="shop INT, at TIMESTAMP, rating DOUBLE")
    if not shops.read().count():
        shops.insert(spark.createDataFrame([(i % 3, _at(i * 5), i / 2) for i in range(20)], shops.schema))
    view = store.create_feature_view(
        "three_keys", spine_time="ts", exist_ok=True,  # the flat group first: the whole passes run before it
        lookups=[FeatureLookup("plain", prefix="p_"),
                 FeatureLookup("orders", keys={"customer": "customer", "shop": "shop"}, prefix="o_"),
                 FeatureLookup("shops", lookback=timedelta(minutes=20), prefix="s_")])
    rows = [(f"c{i % 5}" if i % 11 else None, i % 3 if i % 13 else None, _at(i * 3 if i % 17 else None)) for i in range(60)]
    spine = spark.createDataFrame(rows, "customer string, shop int, ts timestamp")
    spine = spine.unionByName(spine.limit(4))  # duplicate spine rows come out once each
    plans = view.explain(spine)
    assert [p.strategy for p in plans] == ["kernel", "whole", "whole"], [str(p) for p in plans]
    got = view.training_data(spine)
    physical = got._jdf.queryExecution().executedPlan().toString()
    assert physical.count("MapInArrow") == 1, physical  # both whole passes in one round trip (the kernel: a cogroup)
    with forced("sweep"):
        want = view.training_data(spine)
    assert got.columns == want.columns
    expected = sorted(map(tuple, want.collect()), key=repr)
    assert sorted(map(tuple, got.collect()), key=repr) == expected
    with monkeypatch.context() as m:  # too much to hold together: each small pass read whole on its own
        m.setattr(layout, "FUSED_ROWS", 0)
        alone = view.training_data(spine)
        assert alone._jdf.queryExecution().executedPlan().toString().count("MapInArrow") == 2
        assert alone.columns == want.columns and sorted(map(tuple, alone.collect()), key=repr) == expected
