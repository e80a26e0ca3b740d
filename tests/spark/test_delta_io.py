"""Delta round trips on real tables: create, append, merge, replace-range, time travel,
history -- and a cross-check with the independent `deltalake` (delta-rs) reader."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import types as T

from engine.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    SchemaMismatchError,
    TimeRangeError,
)
from engine.store import delta
from engine.store._group_commits import commit_entry
from engine.store.registry import as_utc
from engine.temporal.ranges import TimeRange

UTC = timezone.utc
SCHEMA = T.StructType(
    [
        T.StructField("id", T.LongType()),
        T.StructField("ts", T.TimestampType()),
        T.StructField("value", T.DoubleType()),
    ]
)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2013, 1, day, hour, tzinfo=UTC)


def rows(table) -> list[tuple]:
    return sorted(tuple(r) for r in table.collect())


def make(spark, data):
    return spark.createDataFrame(data, SCHEMA)


def test_create_append_read_history(spark, table_path):
    assert delta.create_table(spark, table_path, SCHEMA, partition_by=["id"]) == 0
    assert delta.read(spark, table_path).count() == 0
    v1 = delta.append(spark, table_path, make(spark, [(1, at(1), 1.0), (2, at(1), 2.0)]))
    v2 = delta.append(spark, table_path, make(spark, [(3, at(2), 3.0)]))
    assert (v1, v2) == (1, 2)
    assert delta.read(spark, table_path).count() == 3
    assert delta.read(spark, table_path, version=1).count() == 2
    history = delta.history(spark, table_path)
    assert [h["version"] for h in history] == [0, 1, 2]
    assert [h["operation"] for h in history][1:] == ["WRITE", "WRITE"]
    # time travel by timestamp: the commit time of version 1 sees version 1
    ts1 = history[1]["timestamp"]
    assert delta.read(spark, table_path, timestamp=ts1.replace(tzinfo=UTC)).count() == 2


def test_create_exist_ok_checks_schema(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    assert delta.create_table(spark, table_path, SCHEMA, exist_ok=True) == 0
    other = T.StructType([T.StructField("id", T.StringType())])
    with pytest.raises(SchemaMismatchError) as err:
        delta.create_table(spark, table_path, other, exist_ok=True)
    assert err.value.params["column"] == "id"


def test_upsert_replaces_matches_and_inserts_new(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    delta.append(spark, table_path, make(spark, [(1, at(1), 1.0), (2, at(1), 2.0), (None, at(1), 9.0)]))
    version = delta.upsert(
        spark, table_path, make(spark, [(2, at(1), 20.0), (3, at(1), 3.0), (None, at(1), 90.0)]), keys=["id", "ts"]
    )
    assert version == 2
    got = {r["id"]: r["value"] for r in delta.read(spark, table_path).collect()}
    assert got == {1: 1.0, 2: 20.0, 3: 3.0, None: 90.0}  # NULL key matched NULL-safely
    assert [h["operation"] for h in delta.history(spark, table_path)][-1] == "MERGE"


def test_upsert_within_a_time_range_bounds_the_target_side_of_the_condition(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    for day in (1, 2, 3, 4):  # one file per day: the files' statistics bound their event times
        delta.append(spark, table_path, make(spark, [(i, at(day, i), float(day)) for i in range(5)]).coalesce(1))
    batch = make(spark, [(1, at(4, 1), 40.0), (7, at(4, 7), 7.0)])  # one match, one new row, all on day 4
    delta.upsert(spark, table_path, batch, keys=["id", "ts"], within=("ts", at(4, 1), at(4, 7)))
    got = {(r["id"], r["ts"].day): r["value"] for r in delta.read(spark, table_path).collect()}
    assert len(got) == 21 and got[(1, 4)] == 40.0 and got[(7, 4)] == 7.0 and got[(1, 1)] == 1.0
    predicate = delta.history(spark, table_path)[-1]["operationParameters"]["predicate"]
    assert ">= 2013-01-04 01:00:00)" in predicate and "<= 2013-01-04 07:00:00)" in predicate  # files skipped by it
    with pytest.raises(InvalidArgumentError):
        delta.upsert(spark, table_path, batch, keys=["id", "ts"], within=("value", at(4, 1), at(4, 7)))


def test_upsert_on_missing_key_column_is_an_error_and_table_unchanged(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    delta.append(spark, table_path, make(spark, [(1, at(1), 1.0)]))
    before = delta.current_version(spark, table_path)
    with pytest.raises(ColumnNotFoundError) as err:
        delta.upsert(spark, table_path, make(spark, [(1, at(1), 5.0)]), keys=["id", "entity"])
    assert err.value.error_class == "COLUMN_NOT_FOUND"
    assert err.value.params["column"] == "entity"
    assert "entity" in str(err.value)
    assert delta.current_version(spark, table_path) == before
    assert rows(delta.read(spark, table_path))[0][2] == 1.0


def test_schema_mismatch_is_refused_before_writing(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    wrong = spark.createDataFrame([(1, at(1), "x")], "id long, ts timestamp, value string")
    with pytest.raises(SchemaMismatchError) as err:
        delta.append(spark, table_path, wrong)
    assert err.value.params["column"] == "value"
    assert err.value.params["found"] == "string"
    assert delta.current_version(spark, table_path) == 0


def test_replace_range_is_idempotent_and_touches_only_its_range(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    delta.append(spark, table_path, make(spark, [(1, at(d), float(d)) for d in range(1, 8)]))
    week_2_4 = TimeRange(at(2), at(4))
    new = make(spark, [(1, at(2), 20.0), (1, at(3, 12), 35.0)])
    delta.replace_range(spark, table_path, new, column="ts", time_range=week_2_4)
    first = rows(delta.read(spark, table_path))
    delta.replace_range(spark, table_path, new, column="ts", time_range=week_2_4)
    assert rows(delta.read(spark, table_path)) == first  # same data, same range: same table
    values = {r[1].day + r[1].hour / 24: r[2] for r in first}
    assert values == {1: 1.0, 2: 20.0, 3.5: 35.0, 4: 4.0, 5: 5.0, 6: 6.0, 7: 7.0}
    assert delta.history(spark, table_path)[-1]["operation"] == "WRITE"


def test_replace_range_boundaries_are_half_open(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    delta.append(spark, table_path, make(spark, [(1, at(2), 2.0), (1, at(3), 3.0), (1, at(3) - timedelta(microseconds=1), 2.9)]))
    delta.replace_range(spark, table_path, make(spark, []), column="ts", time_range=TimeRange(at(2), at(3)))
    assert [r[2] for r in delta.read(spark, table_path).collect()] == [3.0]


def test_replace_range_rejects_rows_outside_and_keeps_table(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    delta.append(spark, table_path, make(spark, [(1, at(2), 2.0)]))
    with pytest.raises(InvalidArgumentError) as err:
        delta.replace_range(spark, table_path, make(spark, [(1, at(9), 9.0)]), column="ts", time_range=TimeRange(at(2), at(3)))
    assert err.value.params["argument"] == "df"
    assert delta.current_version(spark, table_path) == 1
    assert rows(delta.read(spark, table_path))[0][2] == 2.0


def test_backwards_range_is_an_error():
    with pytest.raises(TimeRangeError) as err:
        TimeRange(at(3), at(2))
    assert err.value.params["start"].startswith("2013-01-03")
    with pytest.raises(TimeRangeError):
        TimeRange(at(3), at(3))
    with pytest.raises(InvalidArgumentError) as naive:
        TimeRange(datetime(2013, 1, 1), at(2))
    assert naive.value.params["argument"] == "start"


def test_time_travel_bad_version(spark, table_path):
    delta.create_table(spark, table_path, SCHEMA)
    with pytest.raises(InvalidArgumentError) as err:
        delta.read(spark, table_path, version=7)
    assert err.value.params["found"] == "7"
    with pytest.raises(NotFoundError):
        delta.read(spark, table_path + "_nope")


def test_independent_reader_sees_the_same_rows_at_two_versions(spark, table_path):
    """A table written by Spark reads back identically with delta-rs, at two versions."""
    import deltalake

    delta.create_table(spark, table_path, SCHEMA)
    first = [(1, at(1), 1.5), (2, at(2), None)]
    delta.append(spark, table_path, make(spark, first))
    delta.upsert(spark, table_path, make(spark, [(2, at(2), 2.5), (3, at(3, 5), -1.0)]), keys=["id", "ts"])

    def via_delta_rs(version: int) -> list[tuple]:
        frame = deltalake.DeltaTable(table_path, version=version).to_pandas()
        return sorted(
            (int(r.id), r.ts.tz_localize(None).to_pydatetime() if r.ts.tzinfo is None else r.ts.tz_convert("UTC").tz_localize(None).to_pydatetime(),
             None if r.value != r.value else float(r.value))
            for r in frame.itertuples()
        )

    for version in (1, 2):
        spark_rows = sorted(tuple(r) for r in delta.read(spark, table_path, version=version).collect())
        assert via_delta_rs(version) == spark_rows
    assert len(via_delta_rs(1)) == 2 and len(via_delta_rs(2)) == 3


def test_log_facts_read_without_a_job_agree_with_history_and_detail(spark, table_path):
    """The log facts of a write (latest version, one commit's entry, table properties) agree with
    history() and detail(); a classic session reads them from Delta's JVM log (no Spark job), a
    Spark Connect session falls back to history() and detail()."""
    from engine.remote import is_remote
    from engine.store import _delta_log
    from engine.store._delta_sql import delta_table_api

    delta.create_table(spark, table_path, SCHEMA)
    delta.append(spark, table_path, make(spark, [(1, at(1), 1.0), (2, at(1), 2.0)]))
    delta.upsert(spark, table_path, make(spark, [(2, at(1), 20.0), (3, at(2), 3.0)]), keys=["id", "ts"])
    spark.sql(f"ALTER TABLE delta.`{table_path}` SET TBLPROPERTIES ('engine.test' = 'yes')")
    delta.replace_range(spark, table_path, make(spark, [(4, at(2, 5), 4.0)]), column="ts",
                        time_range=TimeRange(at(2), at(3)))
    history = delta.history(spark, table_path)
    assert [h["operation"] for h in history] == ["CREATE TABLE", "WRITE", "MERGE", "SET TBLPROPERTIES", "WRITE"]
    properties = dict(delta_table_api(spark).forPath(spark, table_path).detail().first()["properties"] or {})
    assert properties["engine.test"] == "yes"
    assert delta.current_version(spark, table_path) == 4
    assert delta.check_log(spark, table_path) == properties
    with pytest.raises(NotFoundError):
        commit_entry(spark, table_path, 5)
    for entry in history:
        found = commit_entry(spark, table_path, entry["version"])
        for field in ("version", "operation", "operationParameters"):
            assert found[field] == entry[field], (entry["version"], field)
        assert (found["operationMetrics"] or {}) == (entry["operationMetrics"] or {}), entry["version"]
        assert as_utc(found["timestamp"]) == as_utc(entry["timestamp"]), entry["version"]

    fast = not is_remote(spark)  # Spark Connect has no JVM on the client
    assert (_delta_log.latest_version(spark, table_path) == 4) is fast
    assert (_delta_log.log_properties(spark, table_path) == properties) is fast
    assert (_delta_log.commit_entry(spark, table_path, 2) == commit_entry(spark, table_path, 2)) is fast
    if fast:
        assert _delta_log.commit_entry(spark, table_path, 5) is None
        assert _delta_log.latest_version(spark, f"{table_path}-none") is None  # history() names what is missing
        assert _delta_log.log_properties(spark, f"{table_path}-none") is None  # detail() names what is missing
