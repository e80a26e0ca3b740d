"""A feature group's small writes committed by the engine (engine.store._local_group_write): the
same rows as Delta's own MERGE / replaceWhere after every step of a random sequence of inserts
and range replacements (ties with stored rows, NULL features, boundary instants, buckets that
get no new row), file statistics Delta's data skipping can trust, and Spark's write wherever it
must judge (new columns, partition columns, a large batch); at a checkpoint version the engine commits
and Delta writes the checkpoint."""

from __future__ import annotations

import json
import os
import random
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.store import _local_delta, _local_group_write, delta
from engine.store.feature_store import FeatureStore
from engine.temporal.ranges import TimeRange

SCHEMA = ("device STRING, ts TIMESTAMP, temp DOUBLE, cnt BIGINT, day DATE, ok BOOLEAN, price DECIMAL(10,2), "
          "note STRING")
T0 = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _rows(rng: random.Random, n: int, start: datetime, hours: int, devices: int) -> list[tuple]:
    """``n`` rows with distinct (device, ts), on whole hours from ``start`` (boundaries included)."""
    keys = rng.sample([(d, h) for d in range(devices) for h in range(hours)], n)
    return [(f"dev-{d}", start + h * HOUR, None if rng.random() < 0.2 else rng.uniform(-5, 40), rng.randrange(9),
             (start + h * HOUR).date(), rng.random() < 0.5, Decimal(f"{rng.randrange(10_000)}.25"),
             None if rng.random() < 0.3 else "x" * rng.choice([1, 32, 33]))
            for d, h in keys]


def _engine_written(spark, group) -> dict[int, bool]:
    """Delta version -> whether the engine (not Spark) wrote the commit."""
    log_dir = os.path.join(group.path, "_delta_log")
    return {v: "feature-factory" in json.dumps(_local_delta.commit_actions(log_dir, v)[0])
            for v in range(1, delta.current_version(spark, group.path) + 1)}


def _content(group) -> list[tuple]:
    return sorted(tuple(r) for r in group.read().collect())


@pytest.mark.parametrize("buckets", [4, None])
def test_engine_commits_equal_deltas_own_merge_and_replace_where(spark, tmp_path, monkeypatch, buckets):
    store = FeatureStore(spark, tmp_path / "store")
    ours = store.create_feature_group("ours", primary_key="device", event_time="ts", schema=SCHEMA, buckets=buckets)
    theirs = store.create_feature_group("theirs", primary_key="device", event_time="ts", schema=SCHEMA, buckets=buckets)
    rng = random.Random(7 if buckets else 8)
    steps = [("insert", T0, 48, 40), ("insert", T0 + 24 * HOUR, 48, 40), ("insert", T0 + 12 * HOUR, 30, 30),
             ("replace", T0 + 24 * HOUR, 24, 12), ("insert", T0, 72, 60), ("replace", T0, 48, 0),
             ("replace", T0 + 36 * HOUR, 12, 20), ("insert", T0 + 30 * HOUR, 12, 25)]
    engine_limit = _local_group_write.MAX_ROWS
    for operation, start, hours, n in steps:
        rows = _rows(rng, n, start, hours, devices=6)
        for group, limit in ((ours, engine_limit), (theirs, 0)):
            monkeypatch.setattr(_local_group_write, "MAX_ROWS", limit)
            frame = spark.createDataFrame(rows, SCHEMA)
            if operation == "insert":
                group.insert(frame) if rows else None
            else:  # the range's end is exclusive: rows at exactly `end` stay
                group.replace_range(frame.where(frame.ts < start + hours * HOUR), TimeRange(start, start + hours * HOUR))
        assert _content(ours) == _content(theirs), (operation, start)
    written = _engine_written(spark, ours)
    assert all(written.values()), written  # every commit of `ours` was the engine's
    assert not any(_engine_written(spark, theirs).values())
    assert [c.rows for c in ours.commits()] == [c.rows for c in theirs.commits()]
    assert [c.operation for c in ours.commits()] == [c.operation for c in theirs.commits()]
    for version in range(1, len(steps) + 1):  # statistics from the collected rows equal Spark's
        _same_statistics(list(ours.statistics(version).values()), list(theirs.statistics(version).values()))


def test_file_statistics_are_exact_bounds_and_skipping_reads_the_same_rows(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group("g", primary_key="device", event_time="ts", schema=SCHEMA, buckets=4)
    rng = random.Random(3)
    inserted = []
    for day in range(3):  # three days: no (device, ts) twice
        rows = _rows(rng, 60, T0 + day * 24 * HOUR, 24, 8)
        inserted += rows
        group.insert(spark.createDataFrame(rows, SCHEMA))
    state = _local_delta.snapshot(group.path)
    assert state is not None and len(state.files) > 4
    for add in state.files.values():
        stats = json.loads(add["stats"])
        table = pq.read_table(os.path.join(group.path, add["path"]))
        assert stats["numRecords"] == table.num_rows
        assert stats["nullCount"] == {c: table.column(c).null_count for c in table.column_names}
        for column in ("cnt", "temp", "device", "day"):
            values = [v for v in table.column(column).to_pylist() if v is not None]
            if values:
                low, high = stats["minValues"][column], stats["maxValues"][column]
                assert (low, high) == ((min(values), max(values)) if column != "day"
                                       else (min(values).isoformat(), max(values).isoformat()))
        times = [t.replace(tzinfo=UTC) for t in table.column("ts").to_pylist()]
        low = datetime.fromisoformat(stats["minValues"]["ts"])
        high = datetime.fromisoformat(stats["maxValues"]["ts"])
        assert low <= min(times) and max(times) < high + timedelta(milliseconds=1)
        assert "note" not in stats["minValues"] or len(stats["maxValues"]["note"]) <= 32
    for start, end in [(T0 + 5 * HOUR, T0 + 30 * HOUR), (T0 + 47 * HOUR, T0 + 48 * HOUR)]:
        found = group.read().where(f"ts >= '{start.isoformat()}' AND ts < '{end.isoformat()}'").count()
        assert found == sum(start <= r[1] < end for r in inserted)
    assert group.read().where("cnt > 4 AND device = 'dev-3'").count() == sum(r[3] > 4 and r[0] == "dev-3" for r in inserted)
    assert spark.sql(f"SELECT COUNT(*) AS n FROM delta.`{group.path}`").collect()[0]["n"] == len(inserted)


def test_spark_writes_where_it_must_judge(spark, tmp_path, monkeypatch):
    store = FeatureStore(spark, tmp_path / "store")
    rng = random.Random(5)
    group = store.create_feature_group("g", primary_key="device", event_time="ts", schema=SCHEMA, buckets=2)
    group.insert(spark.createDataFrame(_rows(rng, 10, T0, 24, 4), SCHEMA))  # the engine's
    wider = spark.createDataFrame(_rows(rng, 10, T0, 24, 4), SCHEMA).selectExpr("*", "DOUBLE(1.5) AS extra")
    group.insert(wider, evolve_schema=True)  # new columns: Delta's schema evolution
    monkeypatch.setattr(_local_group_write, "MAX_ROWS", 5)
    group.insert(spark.createDataFrame(_rows(rng, 10, T0, 24, 4), SCHEMA).selectExpr("*", "DOUBLE(2.5) AS extra"))  # too many rows
    monkeypatch.undo()
    parted = store.create_feature_group("p", primary_key="device", event_time="ts", schema=SCHEMA, partition_by=["day"])
    parted.insert(spark.createDataFrame(_rows(rng, 10, T0, 24, 4), SCHEMA))  # a partition column of the group's
    assert list(_engine_written(spark, group).values()) == [True, False, False]
    assert list(_engine_written(spark, parted).values()) == [False]
    # a checkpoint version is the engine's too, and Delta writes the checkpoint after it
    for i in range(8):
        group.insert(spark.createDataFrame(_rows(rng, 5, T0 + (i + 2) * 24 * HOUR, 24, 4), SCHEMA).selectExpr("*", "DOUBLE(0) AS extra"))
    written = _engine_written(spark, group)
    assert all(written[v] for v in range(4, 12))
    assert os.path.exists(os.path.join(group.path, "_delta_log", f"{10:020d}.checkpoint.parquet"))
    with open(os.path.join(group.path, "_delta_log", "_last_checkpoint"), encoding="utf-8") as pointer:
        assert json.load(pointer)["version"] == 10
    adds = _local_delta.live_files(group.path, 11)  # replayed from the checkpoint
    assert sum(json.loads(a["stats"])["numRecords"] for a in adds) == group.read().count()
    after_three = spark.read.format("delta").option("versionAsOf", 3).load(group.path).count()
    assert group.read().count() == after_three + 8 * 5  # eight later days: no row replaced


def test_concurrent_engine_commits_lose_no_row(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group("g", primary_key="device", event_time="ts", schema=SCHEMA, buckets=4,
                                       statistics=False)
    frames = [spark.createDataFrame(_rows(random.Random(i), 20, T0 + i * 24 * HOUR, 24, 5), SCHEMA).cache()
              for i in range(4)]
    for f in frames:
        f.count()
    errors: list[BaseException] = []

    def insert(frame):
        try:
            group.insert(frame)
        except BaseException as err:  # pragma: no cover - shown by the assert
            errors.append(err)

    threads = [threading.Thread(target=insert, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _content(group) == sorted(tuple(r) for f in frames for r in f.collect())
    versions = sorted(c.delta_version for c in group.commits())
    assert versions == [1, 2, 3, 4]


def test_a_batch_not_matching_the_range_or_keys_still_fails_before_anything_is_written(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group("g", primary_key="device", event_time="ts", schema=SCHEMA, buckets=2)
    rows = _rows(random.Random(1), 6, T0, 24, 2)
    group.insert(spark.createDataFrame(rows, SCHEMA))
    before = delta.current_version(spark, group.path)
    from engine.errors import EngineError

    with pytest.raises(EngineError):
        group.replace_range(spark.createDataFrame(rows, SCHEMA), TimeRange(T0 + HOUR, T0 + 2 * HOUR))
    with pytest.raises(EngineError):
        group.insert(spark.createDataFrame(rows + rows[:1], SCHEMA))
    assert delta.current_version(spark, group.path) == before
    assert date(2024, 3, 1) in {r[4] for r in _content(group)}


STATS_SCHEMA = "k STRING, n BIGINT, x DOUBLE, d DECIMAL(8,3), day DATE, ts TIMESTAMP, flag BOOLEAN, empty INT"


def _same_statistics(ours, spark_s) -> None:
    assert [s.column for s in ours] == [s.column for s in spark_s]
    for a, b in zip(ours, spark_s, strict=True):
        assert (a.data_type, a.count, a.null_count, a.min, a.max) == (b.data_type, b.count, b.null_count, b.min, b.max), a.column
        assert (a.histogram, a.top_values) == (b.histogram, b.top_values), a.column
        assert (a.mean is None) == (b.mean is None) and (a.mean is None or a.mean == pytest.approx(b.mean, rel=1e-12))
        assert (a.stddev is None) == (b.stddev is None) and (a.stddev is None or a.stddev == pytest.approx(b.stddev, rel=1e-9))
        # approx_distinct: exact here (checked against a set below), Spark's HyperLogLog++
        # estimate (5 % relative standard deviation) there
        assert (a.approx_distinct is None) == (b.approx_distinct is None)
        assert a.approx_distinct is None or abs(a.approx_distinct - b.approx_distinct) <= max(2, 0.25 * b.approx_distinct)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 300), distinct=st.integers(1, 40))
def test_statistics_of_a_collected_batch_equal_spark_s(spark, seed, rows, distinct):
    from engine.store.statistics import compute_statistics, statistics_of_arrow

    rng = random.Random(seed)
    data = [(None if rng.random() < 0.1 else f"v{rng.randrange(distinct)}", rng.randrange(-distinct, distinct),
             None if rng.random() < 0.2 else rng.choice([0.1, -2.5, 1e9, 3.0]) * rng.randrange(distinct),
             Decimal(rng.randrange(-9999, 9999)) / 1000, date(2024, 1, 1) + timedelta(days=rng.randrange(distinct)),
             T0 + timedelta(microseconds=rng.randrange(10**12)), rng.random() < 0.5, None) for _ in range(rows)]
    frame = spark.createDataFrame(data, STATS_SCHEMA)
    expected = compute_statistics(frame)
    table = frame.toArrow()
    ours = statistics_of_arrow(table, frame.schema)
    _same_statistics(ours, expected)
    for i, found in enumerate(ours):
        assert found.approx_distinct in (None, len({row[i] for row in data if row[i] is not None})), found.column


def test_statistics_with_nan_are_spark_s(spark):
    from engine.store.statistics import statistics_of_arrow

    frame = spark.createDataFrame([(1.0,), (float("nan"),)], "x DOUBLE")
    assert statistics_of_arrow(frame.toArrow(), frame.schema) is None
