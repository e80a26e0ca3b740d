"""Expectation suites attached to feature groups: ``reject`` writes nothing and raises,
``quarantine`` sets failing rows aside and writes the rest; reports are stored; a suite given
as YAML survives the round trip through the registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.errors import PrimaryKeyError, ValidationFailedError
from engine.store.feature_store import FeatureStore
from engine.validation import Expectation, ExpectationSuite

SCHEMA = "origin STRING, ts TIMESTAMP, temp DOUBLE"
TEMP_RANGE = Expectation("expect_column_values_to_be_between", {"column": "temp", "min_value": -20, "max_value": 120})


def at(hour: int) -> datetime:
    return datetime(2013, 1, 1, hour, tzinfo=UTC)


def test_reject_policy_raises_and_writes_nothing(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group(
        "weather", primary_key="origin", event_time="ts", schema=SCHEMA, statistics=False,
        expectations=ExpectationSuite("weather", (TEMP_RANGE,), policy="reject"),
    )
    before = group.delta_version()
    with pytest.raises(ValidationFailedError) as err:
        group.insert(spark.createDataFrame([("JFK", at(1), 30.0), ("LGA", at(1), 999.0)], SCHEMA))
    assert err.value.params["failed"] == 1 and TEMP_RANGE.label in err.value.params["failures"][0]
    assert group.delta_version() == before
    reports = group.validation_reports().collect()
    assert [(r["success"], r["target_version"], r["failed_expectations"]) for r in reports] == [(False, before, 1)]


def test_a_key_error_comes_before_a_failing_suite_and_stores_no_report(spark, tmp_path):
    """The key check runs beside the validation; its error is still the one raised, and a batch
    refused for its keys leaves no validation report (as when the check ran first)."""
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group(
        "weather", primary_key="origin", event_time="ts", schema=SCHEMA,
        expectations=ExpectationSuite("weather", (TEMP_RANGE,), policy="reject"),
    )
    before = group.delta_version()
    bad = spark.createDataFrame([("JFK", at(1), 30.0), ("JFK", at(1), 999.0)], SCHEMA)  # duplicate key, bad temp
    with pytest.raises(PrimaryKeyError):
        group.insert(bad)
    assert group.delta_version() == before
    assert group.validation_reports() is None  # no report was ever stored
    commit = group.insert(spark.createDataFrame([("JFK", at(1), 30.0)], SCHEMA))  # the statistics beside the MERGE
    assert commit.rows == 1 and group.statistics()["temp"].max == 30.0


def test_quarantine_policy_sets_failing_rows_aside(spark, tmp_path):
    suite_file = tmp_path / "weather.yaml"
    suite_file.write_text(
        "name: weather\npolicy: quarantine\nexpectations:\n"
        "  - type: expect_column_values_to_be_between\n    kwargs: {column: temp, min_value: -20, max_value: 120}\n"
    )
    store = FeatureStore(spark, tmp_path / "store")
    store.create_feature_group("weather", primary_key="origin", event_time="ts", schema=SCHEMA, statistics=False,
                               expectations=str(suite_file))
    group = store.get_feature_group("weather")  # the suite comes back from the registry
    assert group.expectations.to_dict()["policy"] == "quarantine"

    commit = group.insert(
        spark.createDataFrame([("JFK", at(1), 30.0), ("LGA", at(1), 999.0), ("EWR", at(1), None)], SCHEMA)
    )
    assert commit.rows == 2
    assert sorted(r["origin"] for r in group.read().collect()) == ["EWR", "JFK"]
    quarantined = group.quarantine().collect()
    assert [(r["origin"], r["temp"], r["_failed_expectations"]) for r in quarantined] == [("LGA", 999.0, [TEMP_RANGE.label])]
    [report] = group.validation_reports().collect()
    assert (report["success"], report["quarantined_rows"], report["target_version"]) == (False, 1, commit.delta_version)


@pytest.mark.parametrize("local_rows", [10_000, 0], ids=["engine-commit", "spark-merge"])
def test_quarantined_rows_are_upserted_once_with_exact_instants(spark, tmp_path, monkeypatch, local_rows):
    from engine.store import _owned_tables

    monkeypatch.setattr(_owned_tables, "LOCAL_UPSERT_ROWS", local_rows)  # 0: always the Spark MERGE
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group(
        "weather", primary_key="origin", event_time="ts", schema=SCHEMA, statistics=False,
        expectations=ExpectationSuite("weather", (TEMP_RANGE,), policy="quarantine"))
    odd = datetime(2013, 1, 1, 1, 2, 3, 456789, tzinfo=UTC)  # microseconds survive the trip
    batch = [("JFK", at(1), 30.0), ("LGA", odd, 999.0), ("EWR", at(2), -99.0)]
    for _ in range(2):  # the same batch twice: its refused rows are stored once
        group.insert(spark.createDataFrame(batch, SCHEMA))
    group.insert(spark.createDataFrame([("LGA", odd, 555.0)], SCHEMA))  # the same key refused again: replaced
    got = sorted((r["origin"], r["ts"].replace(tzinfo=UTC) if r["ts"].tzinfo is None else r["ts"], r["temp"],
                  r["_failed_expectations"]) for r in group.quarantine().collect())
    assert got == [("EWR", at(2), -99.0, [TEMP_RANGE.label]), ("LGA", odd, 555.0, [TEMP_RANGE.label])]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{group.quarantine_path}`").collect()
    engines = [h["engineInfo"] or "" for h in sorted(history, key=lambda h: h["version"]) if h["operation"] != "CREATE TABLE"]
    assert len(engines) == 3
    assert all(e.startswith("feature-factory/") == bool(local_rows) for e in engines), engines
