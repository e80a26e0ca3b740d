"""engine.validation: real Great Expectations 1.x on the real Spark session, tiny explicit data.

GE runs are the expensive part (several Spark jobs each), so the DataFrames and the three GE
results most tests look at are built once per module.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.errors import ColumnNotFoundError, ConfigError, InvalidArgumentError, NotFoundError, ValidationFailedError
from engine.validation import (
    FAILED_COLUMN,
    Expectation,
    ExpectationSuite,
    list_reports,
    load_suite,
    split_by_suite,
    store_report,
    suite_from_dict,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO_SUITES = sorted((ROOT / "examples" / "flights" / "expectations").glob("*.yaml"))
KEYS = ["origin", "time_hour"]
SCHEMA = "origin STRING, time_hour TIMESTAMP, temp DOUBLE, humid DOUBLE, wind_speed DOUBLE"


def _t(hour: int) -> datetime:
    return datetime(2013, 1, 1, hour, tzinfo=timezone.utc)


# (origin, time_hour, temp, humid, wind_speed): rows 2-6 break row-level expectations of SUITE.
ROWS = [
    ("EWR", _t(0), 50.0, 60.0, 10.0),    # good
    ("EWR", _t(1), 130.0, 60.0, 10.0),   # temp too high
    ("JFK", _t(0), 60.0, 50.0, 999.0),   # wind too high
    ("JFK", _t(1), -40.0, 55.0, 999.0),  # temp too low and wind too high
    (None, _t(0), 55.0, 70.0, 5.0),      # NULL origin (a NULL key, too); in-set skips NULLs
    ("XXX", _t(2), 55.0, 70.0, None),    # unknown origin; NULL wind tolerated by `mostly`
    ("LGA", _t(2), None, 80.0, 3.0),     # good: range checks skip NULL temp
    ("LGA", _t(3), 70.0, 90.0, 4.0),     # good
]
NOT_NULL_ORIGIN = Expectation("expect_column_values_to_not_be_null", {"column": "origin"})
IN_SET_ORIGIN = Expectation("expect_column_values_to_be_in_set", {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]})
TEMP = Expectation("expect_column_values_to_be_between", {"column": "temp", "min_value": -20, "max_value": 120})
WIND = Expectation("expect_column_values_to_be_between", {"column": "wind_speed", "min_value": 0, "max_value": 150})
WIND_MOSTLY = Expectation("expect_column_values_to_not_be_null", {"column": "wind_speed", "mostly": 0.5})
SUITE = ExpectationSuite("weather_test", (NOT_NULL_ORIGIN, IN_SET_ORIGIN, TEMP, WIND, WIND_MOSTLY), policy="quarantine")
# Hand-derived golden answer: row -> labels it fails, in suite order.
EXPECTED_QUARANTINE = {
    ("EWR", _t(1)): [TEMP.label],
    ("JFK", _t(0)): [WIND.label],
    ("JFK", _t(1)): [TEMP.label, WIND.label],
    (None, _t(0)): [NOT_NULL_ORIGIN.label],
    ("XXX", _t(2)): [IN_SET_ORIGIN.label],
}


def _naive(value: datetime) -> datetime:
    """Spark hands TIMESTAMPs back as naive datetimes in the process zone (UTC in tests)."""
    return value.replace(tzinfo=None)


def _key(row: object) -> tuple[object, ...]:
    return (row["origin"], row["time_hour"])  # type: ignore[index]


@pytest.fixture(scope="module")
def weather(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


@pytest.fixture(scope="module")
def summary_report(weather):
    """GE's own verdict, SUMMARY format with the keys of the (< 20) unexpected rows."""
    return validate(weather, SUITE, key_columns=KEYS)


@pytest.fixture(scope="module")
def split(weather):
    return split_by_suite(weather, SUITE, key_columns=KEYS, target="weather@v1")


# -- validate / reject ------------------------------------------------------------------------


def test_demo_weather_suite_passes_on_good_rows(spark, capfd):
    suite = load_suite(ROOT / "examples" / "flights" / "expectations" / "weather_hourly.yaml")
    good = spark.createDataFrame([r for i, r in enumerate(ROWS) if i in (0, 6, 7)], SCHEMA)
    capfd.readouterr()

    report = validate(good, suite)

    assert "Calculating Metrics" not in capfd.readouterr().err  # GE's progress bars are off

    assert report.success is True
    assert report.evaluated_rows == 3
    assert [r.success for r in report.results] == [True] * len(suite.expectations)
    assert [r.unexpected_count for r in report.results] == [0] * len(suite.expectations)
    assert report.quarantined_rows is None
    report.raise_if_failed(target="weather_hourly@v1")  # no error


def test_failing_suite_under_reject_raises_with_failed_expectations_and_counts(summary_report):
    assert summary_report.success is False
    assert summary_report.evaluated_rows == len(ROWS)
    counts = {r.expectation: r.unexpected_count for r in summary_report.results}
    assert counts == {
        NOT_NULL_ORIGIN.label: 1, IN_SET_ORIGIN.label: 1, TEMP.label: 2, WIND.label: 2, WIND_MOSTLY.label: 1,
    }
    # `mostly` 0.5 tolerates one NULL in 8 rows: unexpected, yet the expectation succeeds
    assert [r.success for r in summary_report.results] == [False, False, False, False, True]

    with pytest.raises(ValidationFailedError) as caught:
        summary_report.raise_if_failed(target="weather@v1")

    params = caught.value.params
    assert (params["target"], params["failed"], params["total"]) == ("weather@v1", 4, 5)
    assert params["report"] is summary_report
    assert [line.split(": ")[0] for line in params["failures"]] == [
        NOT_NULL_ORIGIN.label, IN_SET_ORIGIN.label, TEMP.label, WIND.label,
    ]
    assert f"{TEMP.label}: 2 unexpected of 8" in params["failures"][2]
    assert caught.value.error_class == "VALIDATION_FAILED"


def test_report_names_the_keys_of_unexpected_rows(summary_report):
    by_label = {r.expectation: r for r in summary_report.results}
    temp = by_label[TEMP.label]
    assert sorted(temp.partial_unexpected_values) == [-40.0, 130.0]
    assert sorted((k["origin"], k["time_hour"]) for k in temp.partial_unexpected_keys) == [
        ("EWR", _naive(_t(1))), ("JFK", _naive(_t(1))),
    ]
    data = json.loads(summary_report.to_json())
    assert data["results"][2]["expectation"] == TEMP.label
    assert data["results"][2]["unexpected_count"] == 2
    assert "FAIL " + TEMP.label in summary_report.summary()


def test_threads_validate_side_by_side_with_the_same_verdicts(spark, weather, summary_report):
    """Pipelines backfilled side by side validate at the same time: each thread has its own GE
    context, the verdicts equal a run alone, and GE's warning filters are removed afterwards."""
    import threading
    import warnings

    other = spark.createDataFrame([r for i, r in enumerate(ROWS) if i in (0, 2, 6, 7)], SCHEMA)
    other_suite = ExpectationSuite("other", (TEMP, WIND, NOT_NULL_ORIGIN))
    alone = {"weather": summary_report, "other": validate(other, other_suite, key_columns=KEYS)}
    filters = list(warnings.filters)
    start = threading.Barrier(4, timeout=120)
    reports: dict[str, list] = {"weather": [], "other": []}
    errors: list[BaseException] = []

    def work(name, df, suite):
        try:
            start.wait()
            for _ in range(2):
                reports[name].append(validate(df, suite, key_columns=KEYS))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=args) for args in
               [("weather", weather, SUITE), ("other", other, other_suite)] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for name, runs in reports.items():
        assert len(runs) == 4
        for report in runs:
            assert report == alone[name]  # every field (results, counts, keys) but GE's version
    assert [r.success for r in alone["other"].results] == [True, False, True]
    assert list(warnings.filters) == filters


# -- quarantine split -------------------------------------------------------------------------


def test_split_quarantines_exactly_the_rows_ge_reports(split, summary_report, weather):
    passing, quarantined, report = split
    assert quarantined.columns == [*weather.columns, FAILED_COLUMN]
    assert quarantined.schema[FAILED_COLUMN].dataType.simpleString() == "array<string>"
    bad_rows = quarantined.collect()
    bad = {_key(r): r[FAILED_COLUMN] for r in bad_rows}
    good = [_key(r) for r in passing.collect()]

    # the golden answer
    assert bad == {(o, _naive(t)): labels for (o, t), labels in EXPECTED_QUARANTINE.items()}
    assert report.quarantined_rows == len(EXPECTED_QUARANTINE)
    # GE's own verdict, from a separate run and result format: per failed expectation, the
    # quarantined rows carrying its label are exactly the rows GE listed as unexpected
    for result in summary_report.failed:
        ge_keys = {(k["origin"], k["time_hour"]) for k in result.partial_unexpected_keys}
        assert len(ge_keys) == result.unexpected_count
        assert {k for k, labels in bad.items() if result.expectation in labels} == ge_keys
    # the split report carries the same counts as the SUMMARY run
    assert [r.unexpected_count for r in report.results] == [r.unexpected_count for r in summary_report.results]
    # an exact partition of the input: nothing lost, nothing duplicated
    assert Counter(good) + Counter(_key(r) for r in bad_rows) == Counter((r[0], _naive(r[1])) for r in ROWS)
    assert len(good) + len(bad_rows) == len(ROWS)


def test_split_of_passing_data_quarantines_nothing(spark):
    good = spark.createDataFrame([r for i, r in enumerate(ROWS) if i in (0, 7)], SCHEMA)
    suite = ExpectationSuite("ok", (TEMP,), policy="quarantine")

    passing, quarantined, report = split_by_suite(good, suite, key_columns=KEYS)

    assert report.success is True and report.quarantined_rows == 0
    assert passing.count() == 2
    assert quarantined.count() == 0
    assert quarantined.columns == [*good.columns, FAILED_COLUMN]


def test_failures_that_cannot_be_split_by_row_reject_the_whole_batch(weather):
    suite = ExpectationSuite(
        "mixed",
        (
            TEMP,  # row-level: alone it would be quarantined
            Expectation("expect_table_row_count_to_be_between", {"min_value": 100}),
            Expectation("expect_column_values_to_be_unique", {"column": "origin"}),  # depends on other rows
            Expectation("expect_column_values_to_be_between", {"column": "origin", "min_value": 0}),  # GE error
        ),
        policy="quarantine",
    )

    with pytest.raises(ValidationFailedError) as caught:
        split_by_suite(weather, suite, key_columns=KEYS, target="weather@v1")

    report = caught.value.params["report"]
    assert caught.value.params["target"] == "weather@v1"
    assert caught.value.params["failed"] == 4
    assert [r.row_level for r in report.results] == [True, False, False, True]
    assert report.results[1].observed_value == len(ROWS)
    assert report.results[2].unexpected_count == 6  # EWR, JFK and LGA twice each
    assert "cannot be computed on column of type StringType" in report.results[3].error
    assert caught.value.params["reason"] == (
        f"table-level or not evaluable: {[r.expectation for r in report.results[1:]]}"
    )


def test_split_with_keys_that_do_not_identify_rows_raises(spark):
    rows = [("EWR", _t(0), 50.0, 60.0, 10.0), ("EWR", _t(0), 500.0, 60.0, 10.0)]
    df = spark.createDataFrame(rows, SCHEMA)

    with pytest.raises(InvalidArgumentError) as caught:
        split_by_suite(df, ExpectationSuite("s", (TEMP,)), key_columns=KEYS)

    assert caught.value.params["argument"] == "key_columns"
    assert "2 row(s) with the keys of the 1 row(s)" in caught.value.params["found"]


# -- column checks (before any Spark job) -----------------------------------------------------


def test_missing_column_names_expectation_and_column(weather):
    suite = ExpectationSuite("s", (TEMP, Expectation("expect_column_values_to_not_be_null", {"column": "dewp"})))

    with pytest.raises(ColumnNotFoundError) as caught:
        validate(weather, suite)

    params = caught.value.params
    assert params["argument"] == "expect_column_values_to_not_be_null.column"
    assert params["column"] == "dewp"
    assert params["expectation"] == "expect_column_values_to_not_be_null(column=dewp)"
    assert params["available"] == weather.columns


@pytest.mark.parametrize(
    ("expectation", "argument", "column"),
    [
        (Expectation("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "temp", "column_B": "dewp"}),
         "expect_column_pair_values_a_to_be_greater_than_b.column_B", "dewp"),
        (Expectation("expect_compound_columns_to_be_unique", {"column_list": ["origin", "hour"]}),
         "expect_compound_columns_to_be_unique.column_list", "hour"),
    ],
)
def test_missing_column_in_pair_and_multicolumn_expectations(weather, expectation, argument, column):
    with pytest.raises(ColumnNotFoundError) as caught:
        validate(weather, ExpectationSuite("s", (expectation,)))
    assert (caught.value.params["argument"], caught.value.params["column"]) == (argument, column)


def test_missing_key_column_and_column_set_expectations(weather):
    with pytest.raises(ColumnNotFoundError) as caught:
        split_by_suite(weather, ExpectationSuite("s", (TEMP,)), key_columns=["origin", "hour"])
    assert (caught.value.params["argument"], caught.value.params["column"]) == ("key_columns", "hour")
    # a table expectation's column list is data to check, not a reference: no error up front
    from engine.validation.runner import check_columns

    suite = ExpectationSuite("s", (Expectation("expect_table_columns_to_match_set", {"column_set": ["nope"]}),))
    assert check_columns(weather, suite) == []


# -- suites from YAML -------------------------------------------------------------------------


@pytest.mark.parametrize("path", DEMO_SUITES, ids=lambda p: p.stem)
def test_demo_suites_load_and_round_trip(path):
    suite = load_suite(path)
    assert suite.name == path.stem
    assert suite_from_dict(suite.to_dict(), source="round trip") == suite
    assert ExpectationSuite.from_dict(suite.to_dict()) == suite


def test_demo_suites_cover_the_feature_groups():
    assert [p.stem for p in DEMO_SUITES] == ["carrier_delay_stats", "planes", "route_delay_stats", "weather_hourly"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


VALID = """
name: s
policy: quarantine
expectations:
  - type: expect_column_values_to_be_between
    kwargs: {column: temp, min_value: -20, max_value: 120, mostly: 0.9}
"""


def test_load_valid_yaml(tmp_path):
    suite = load_suite(_write(tmp_path, VALID))
    assert suite == ExpectationSuite(
        "s",
        (Expectation("expect_column_values_to_be_between",
                     {"column": "temp", "min_value": -20, "max_value": 120, "mostly": 0.9}),),
        policy="quarantine",
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (VALID.replace("policy: quarantine", "polcy: quarantine"), "polcy"),
        (VALID.replace("    kwargs:", "    kwarg:"), "expectations[0].kwarg"),
        (VALID.replace("policy: quarantine", "policy: drop"), "policy"),
        (VALID.replace("expect_column_values_to_be_between", "expect_column_values_to_be_betwen"),
         "expectations[0].type"),
        (VALID.replace("column: temp", "colum: temp"), "expectations[0].kwargs.colum"),
        (VALID.replace("min_value: -20", "min_value: cold"), "expectations[0].kwargs.min_value"),
        (VALID.replace("mostly: 0.9", "result_format: COMPLETE"), "expectations[0].kwargs.result_format"),
        ("name: s\nexpectations: []\n", "expectations"),
    ],
)
def test_bad_yaml_is_a_config_error_naming_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as caught:
        load_suite(_write(tmp_path, text))
    assert caught.value.params["key"] == key
    assert caught.value.params["source"].endswith("suite.yaml")


def test_unknown_type_suggests_close_names(tmp_path):
    text = VALID.replace("expect_column_values_to_be_between", "expect_column_values_to_be_betwen")
    with pytest.raises(ConfigError) as caught:
        load_suite(_write(tmp_path, text))
    assert "expect_column_values_to_be_between" in caught.value.params["hint"]


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_suite(tmp_path / "nope.yaml")
    assert caught.value.params["key"] == "<file>"


def test_suite_arguments_are_checked():
    with pytest.raises(InvalidArgumentError) as caught:
        ExpectationSuite("s", (TEMP, TEMP))
    assert caught.value.params["argument"] == "expectations"
    with pytest.raises(InvalidArgumentError) as caught:
        ExpectationSuite("s", (TEMP,), policy="drop")  # type: ignore[arg-type]
    assert caught.value.params["argument"] == "policy"


# -- reports in Delta -------------------------------------------------------------------------


def test_reports_are_stored_and_listed(spark, tmp_path, summary_report, split):
    path = str(tmp_path / "reports")
    with pytest.raises(NotFoundError):
        list_reports(spark, path)
    at = datetime(2013, 11, 1, tzinfo=timezone.utc)
    store_report(spark, path, summary_report, target="weather@v1", target_version=3, recorded_at=at)
    version = store_report(spark, path, split[2], target="weather@v2", target_version=None,
                           recorded_at=at.replace(hour=1))

    assert version == 2  # create, then one commit per report
    rows = list_reports(spark, path).collect()
    assert [(r.target, r.target_version, r.success, r.quarantined_rows) for r in rows] == [
        ("weather@v1", 3, False, None), ("weather@v2", None, False, len(EXPECTED_QUARANTINE)),
    ]
    (only,) = list_reports(spark, path, target="weather@v1").collect()
    assert (only.suite, only.policy, only.evaluated_rows) == ("weather_test", "quarantine", len(ROWS))
    assert (only.expectations, only.failed_expectations) == (5, 4)
    assert only.failures == summary_report.failures()
    assert json.loads(only.report) == summary_report.to_dict()
    assert only.recorded_at == _naive(at)

    for hour in range(2, 10):  # to version 10: Delta's checkpoint follows the report's commit
        version = store_report(spark, path, summary_report, target="weather@v1", target_version=3,
                               recorded_at=at.replace(hour=hour))
    assert version == 10
    last = json.loads((tmp_path / "reports" / "_delta_log" / "_last_checkpoint").read_text())
    assert last["version"] == 10
    assert list_reports(spark, path).count() == 10
