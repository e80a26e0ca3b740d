"""Feature groups on real Delta tables: create/get/list/search, upsert semantics, schema
enforcement and evolution, bad input refused with the table unchanged, time travel, ties,
replace_range, and per-commit statistics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pyspark.sql import types as T

from engine.errors import (
    AlreadyExistsError,
    ColumnNotFoundError,
    ColumnTypeError,
    InvalidArgumentError,
    NotFoundError,
    PrimaryKeyError,
    SchemaMismatchError,
    UnsafeNameError,
)
from engine.store.feature_store import FeatureStore
from engine.temporal.ranges import TimeRange

SCHEMA = T.StructType(
    [
        T.StructField("origin", T.StringType()),
        T.StructField("ts", T.TimestampType()),
        T.StructField("temp", T.DoubleType(), metadata={"comment": "temperature in F"}),
        T.StructField("sky", T.StringType()),
    ]
)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2013, 1, day, hour, tzinfo=UTC)


def rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def naive(day: int, hour: int = 0) -> datetime:
    """What Spark hands back for a TIMESTAMP in a UTC process (conftest pins TZ=UTC)."""
    return datetime(2013, 1, day, hour)


@pytest.fixture()
def store(spark, tmp_path) -> FeatureStore:
    return FeatureStore(spark, tmp_path / "store")


@pytest.fixture()
def weather(store):
    return store.create_feature_group(
        "weather", primary_key="origin", event_time="ts", schema=SCHEMA,
        description="Hourly weather at the airports", tags=["weather", "demo"],
    )


def frame(spark, data, schema=SCHEMA):
    return spark.createDataFrame(data, schema)


def test_create_get_list_search(store, weather):
    assert weather.features == ["temp", "sky"]
    assert weather.path.endswith("/feature_groups/weather/v1")
    store.create_feature_group(
        "planes", 2, primary_key=["tailnum"], event_time="since",
        schema="tailnum STRING, since TIMESTAMP, seats INT COMMENT 'number of seats'", tags=["static"],
    )
    assert store.get_feature_group("planes").version == 2  # latest
    got = store.get_feature_group("weather", 1)
    assert (got.primary_key, got.event_time, got.features, got.tags) == (["origin"], "ts", ["temp", "sky"], ["weather", "demo"])
    assert [(g.name, g.version) for g in store.list_feature_groups()] == [("planes", 2), ("weather", 1)]

    hits = {(e.kind, e.name) for e in store.search("temperature")}
    assert hits == {("feature", "temp")}  # found by its description (the column comment)
    assert {(e.kind, e.name) for e in store.search(tags=["static"])} == {("feature_group", "planes"), ("feature", "seats")}
    assert {e.name for e in store.search("WEATH", tags=["demo"])} == {"weather", "temp", "sky"}  # name or tag
    assert store.search("nothing-like-this") == []

    with pytest.raises(NotFoundError):
        store.get_feature_group("nope")
    with pytest.raises(NotFoundError) as err:
        store.get_feature_group("planes", 1)
    assert "[2]" in str(err.value)
    with pytest.raises(AlreadyExistsError):
        store.create_feature_group("weather", primary_key="origin", event_time="ts", schema=SCHEMA)
    same = store.create_feature_group("weather", primary_key="origin", event_time="ts", schema=SCHEMA, exist_ok=True)
    assert same.path == weather.path
    with pytest.raises(AlreadyExistsError) as err:
        store.create_feature_group("weather", primary_key=["origin", "sky"], event_time="ts", schema=SCHEMA, exist_ok=True)
    assert "primary_key" in str(err.value)


def test_definition_errors_before_anything_is_created(store, tmp_path):
    with pytest.raises(ColumnTypeError) as err:
        store.create_feature_group("w", primary_key="origin", event_time="ts", schema="origin STRING, ts TIMESTAMP_NTZ")
    assert (err.value.params["column"], err.value.params["found"]) == ("ts", "timestamp_ntz")
    with pytest.raises(ColumnNotFoundError) as err:
        store.create_feature_group("w", primary_key="id", event_time="ts", schema=SCHEMA)
    assert err.value.params["argument"] == "primary_key"
    with pytest.raises(UnsafeNameError) as err:
        store.create_feature_group("w", primary_key="origin", event_time="ts", schema="origin STRING, ts TIMESTAMP, `a b` INT")
    assert err.value.params["name"] == "a b"
    with pytest.raises(InvalidArgumentError):
        store.create_feature_group("w", 0, primary_key="origin", event_time="ts", schema=SCHEMA)
    assert store.list_feature_groups() == []
    assert not (tmp_path / "store" / "feature_groups").exists()


@pytest.mark.parametrize("name", ["../x", "a b", "x'", "x;drop", "", "a" * 129, "1abc", "x`y", None])
def test_unsafe_group_names_are_rejected(store, name):
    with pytest.raises(UnsafeNameError) as err:
        store.create_feature_group(name, primary_key="origin", event_time="ts", schema=SCHEMA)
    assert err.value.params["argument"] == "name"
    with pytest.raises(UnsafeNameError):
        store.get_feature_group(name)


def test_insert_upserts_time_travels_records_commits_and_statistics(spark, store, weather):
    first = weather.insert(frame(spark, [("JFK", at(1), 30.0, "clear"), ("JFK", at(1, 1), 31.0, "clear"),
                                         ("LGA", at(1), None, "snow")]))
    second = weather.insert(frame(spark, [("JFK", at(1, 1), 35.0, "rain"), ("EWR", at(1), 28.0, "clear")]))
    assert (first.delta_version, second.delta_version) == (1, 2)
    assert (first.operation, first.rows, second.rows) == ("MERGE", 3, 2)
    assert rows(weather.read()) == [
        ("EWR", naive(1), 28.0, "clear"), ("JFK", naive(1), 30.0, "clear"), ("JFK", naive(1, 1), 35.0, "rain"),
        ("LGA", naive(1), None, "snow"),
    ]
    assert rows(weather.read(as_of_version=1)) == [
        ("JFK", naive(1), 30.0, "clear"), ("JFK", naive(1, 1), 31.0, "clear"), ("LGA", naive(1), None, "snow"),
    ]
    assert rows(weather.read(as_of_timestamp=first.timestamp)) == rows(weather.read(as_of_version=1))
    assert weather.delta_version() == 2
    assert [(c.feature_group, c.delta_version, c.rows) for c in store.commits()] == [("weather", 1, 3), ("weather", 2, 2)]
    assert second.timestamp.tzinfo is not None and second.timestamp >= first.timestamp

    stats = weather.statistics(delta_version=1)
    temp = stats["temp"]
    assert (temp.count, temp.null_count, temp.min, temp.max, temp.mean) == (2, 1, 30.0, 31.0, 30.5)
    assert temp.stddev == pytest.approx(0.7071, abs=1e-4)
    assert sum(n for _, _, n in temp.histogram) == 2 and len(temp.histogram) == 10
    assert (temp.histogram[0][2], temp.histogram[-1][2]) == (1, 1)
    assert stats["sky"].top_values == [("clear", 2), ("snow", 1)]
    assert (stats["ts"].min, stats["ts"].max) == (at(1), at(1, 1))
    assert stats["origin"].approx_distinct == 2
    assert weather.statistics()["temp"].count == 2  # latest commit: the second insert
    assert set(weather.statistics()) == {"origin", "ts", "temp", "sky"}


def test_bad_inserts_are_refused_and_the_table_is_unchanged(spark, weather):
    weather.insert(frame(spark, [("JFK", at(1), 30.0, "clear")]))
    before = weather.delta_version()

    with pytest.raises(PrimaryKeyError) as err:
        weather.insert(frame(spark, [("JFK", at(2), 1.0, "a"), (None, at(2), 2.0, "b"), ("LGA", None, 3.0, "c")]))
    assert (err.value.params["problem"], err.value.params["count"]) == ("NULL values", 2)
    with pytest.raises(PrimaryKeyError) as err:
        weather.insert(frame(spark, [("JFK", at(2), 1.0, "a"), ("JFK", at(2), 2.0, "b"), ("LGA", at(2), 3.0, "c")]))
    assert err.value.params["count"] == 2 and "JFK" in err.value.params["example"]

    wrong_type = T.StructType([*SCHEMA.fields[:2], T.StructField("temp", T.StringType()), SCHEMA.fields[3]])
    with pytest.raises(SchemaMismatchError) as err:
        weather.insert(frame(spark, [("JFK", at(2), "warm", "a")], wrong_type))
    assert (err.value.params["column"], err.value.params["expected"], err.value.params["found"]) == ("temp", "double", "string")
    with pytest.raises(SchemaMismatchError) as err:
        weather.insert(frame(spark, [("JFK", at(2), 1.0, "a")]).drop("sky"))
    assert (err.value.params["column"], err.value.params["found"]) == ("sky", "no such column")
    with pytest.raises(SchemaMismatchError) as err:
        weather.insert(frame(spark, [("JFK", at(2), 1.0, "a")]).selectExpr("*", "1 AS wind"))
    assert err.value.params["column"] == "wind"
    ntz = frame(spark, [("JFK", at(2), 1.0, "a")]).selectExpr("origin", "CAST(ts AS TIMESTAMP_NTZ) AS ts", "temp", "sky")
    with pytest.raises(SchemaMismatchError) as err:
        weather.insert(ntz)
    assert (err.value.params["column"], err.value.params["found"]) == ("ts", "timestamp_ntz")
    with pytest.raises(InvalidArgumentError):
        weather.replace_range(frame(spark, [("JFK", at(5), 1.0, "a")]), TimeRange(at(1), at(2)))
    assert weather.delta_version() == before
    assert rows(weather.read()) == [("JFK", naive(1), 30.0, "clear")]


def test_schema_evolution_is_additive_and_only_when_asked(spark, store, weather):
    weather.insert(frame(spark, [("JFK", at(1), 30.0, "clear")]))
    weather.insert(frame(spark, [("JFK", at(2), 31.0, "rain")]).selectExpr("*", "CAST(12.5 AS DOUBLE) AS wind"), evolve_schema=True)
    assert weather.features == ["temp", "sky", "wind"]
    assert rows(weather.read()) == [("JFK", naive(1), 30.0, "clear", None), ("JFK", naive(2), 31.0, "rain", 12.5)]
    reloaded = store.get_feature_group("weather")
    assert reloaded.features == ["temp", "sky", "wind"]
    assert {e.name for e in store.search(tags=["weather"]) if e.kind == "feature"} == {"temp", "sky", "wind"}
    with pytest.raises(UnsafeNameError):
        bad = frame(spark, [("JFK", at(3), 1.0, "a")]).selectExpr("*", "CAST(1 AS DOUBLE) AS wind", "1 AS `bad name`")
        weather.insert(bad, evolve_schema=True)


def test_tie_breaker_keeps_the_greatest_within_the_insert_and_against_stored_rows(spark, store):
    schema = "id BIGINT, ts TIMESTAMP, seq BIGINT, v STRING"
    group = store.create_feature_group("ticks", primary_key="id", event_time="ts", schema=schema,
                                       tie_breaker="seq", statistics=False)
    assert group.features == ["v"]
    group.insert(spark.createDataFrame([(1, at(1), 5, "stored"), (2, at(1), 1, "old")], schema))
    group.insert(spark.createDataFrame(
        [(1, at(1), 3, "late, older"), (2, at(1), 7, "a"), (2, at(1), 9, "b"), (3, at(1), 1, "new")], schema
    ))
    assert rows(group.read()) == [(1, naive(1), 5, "stored"), (2, naive(1), 9, "b"), (3, naive(1), 1, "new")]
    with pytest.raises(PrimaryKeyError):  # equal tie breakers are still ambiguous
        group.insert(spark.createDataFrame([(4, at(1), 1, "x"), (4, at(1), 1, "y")], schema))


def test_replace_range_replaces_exactly_its_range_idempotently(spark, weather):
    weather.insert(frame(spark, [("JFK", at(1), 1.0, "a"), ("JFK", at(2), 2.0, "b"), ("JFK", at(3), 3.0, "c")]))
    new = frame(spark, [("JFK", at(2, 6), 20.0, "x"), ("LGA", at(2), 21.0, "y")])
    weather.replace_range(new, TimeRange(at(2), at(3)))
    once = rows(weather.read())
    commit = weather.replace_range(new, TimeRange(at(2), at(3)))
    assert (commit.operation, commit.rows) == ("WRITE", 2)
    assert rows(weather.read()) == once == [
        ("JFK", naive(1), 1.0, "a"), ("JFK", naive(2, 6), 20.0, "x"), ("JFK", naive(3), 3.0, "c"), ("LGA", naive(2), 21.0, "y"),
    ]
