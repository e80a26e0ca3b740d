"""window_aggregates on real Spark: golden edge cases (tests/golden/windows/cases.json, keyed by
case name, expected values worked out by hand), output types, the plan's shape, and every
argument error -- raised before any Spark job."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import types as T

from engine.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    EngineError,
    IncompatibleTypesError,
    InvalidArgumentError,
)
from engine.temporal.windows import Agg, window_aggregates

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "windows" / "cases.json").read_text())
DAY = timedelta(days=1)


# ----------------------------------------------------------------------------------- helpers


def _value(raw: Any, dtype: T.DataType) -> Any:
    """A JSON value as the Python value Spark expects for ``dtype``."""
    if raw is None:
        return None
    if isinstance(dtype, T.TimestampNTZType):
        return datetime.fromisoformat(raw)
    if isinstance(dtype, T.TimestampType):
        return datetime.fromisoformat(raw).replace(tzinfo=timezone.utc)
    if isinstance(dtype, T.DateType):
        return date.fromisoformat(raw)
    if isinstance(dtype, T.DecimalType):
        return Decimal(raw)
    return raw


def _frame(spark, spec: dict[str, Any] | None):
    if spec is None:
        return None
    schema = T.StructType.fromDDL(spec["schema"])
    rows = [tuple(_value(v, f.dataType) for v, f in zip(row, schema.fields, strict=True)) for row in spec["rows"]]
    return spark.createDataFrame(rows, schema)


def _window(raw: Any) -> Any:
    return timedelta(**raw) if isinstance(raw, dict) else raw


def _plain(value: Any) -> Any:
    """A collected value in the golden file's JSON form (TZ is UTC in the test process)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def _assert_same_rows(actual: list[list[Any]], expected: list[list[Any]]) -> None:
    """Equal as multisets of rows, floats within a tolerance."""
    left = list(actual)
    for row in expected:
        match = next((i for i, got in enumerate(left) if all(_close(g, e) for g, e in zip(got, row, strict=True))), None)
        assert match is not None, f"expected row {row} not in the output (remaining: {left})"
        left.pop(match)
    assert not left, f"unexpected extra rows: {left}"


def _jobs_during(spark, action: Callable[[], Any]) -> list[int]:
    """The ids of the Spark jobs that ``action`` started."""
    sc = spark.sparkContext
    group = f"windows-{uuid.uuid4().hex}"
    sc.setJobGroup(group, "test_windows")
    try:
        action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return list(sc.statusTracker().getJobIdsForGroup(group))


def _run_case(spark, case: dict[str, Any]):
    aggs = [Agg(a[0], a[1], _window(a[2]), *a[3:]) for a in case["aggs"]]
    return window_aggregates(_frame(spark, case["events"]), _frame(spark, case["spine"]), aggs=aggs, **case["args"])


# ------------------------------------------------------------------------------ golden cases


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden(spark, name: str) -> None:
    case = GOLDEN[name]
    out = _run_case(spark, case)
    assert out.columns == case["columns"]
    if "types" in case:
        assert [f.dataType.simpleString() for f in out.schema.fields] == case["types"]
    actual = [[_plain(v) for v in row] for row in out.collect()]
    _assert_same_rows(actual, case["expected"])


def test_timestamp_ntz_does_not_depend_on_the_session_time_zone(spark) -> None:
    case = GOLDEN["timestamp_ntz_both_sides"]
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")  # 2013-03-10 02:30 does not exist there
    try:
        actual = [[_plain(v) for v in row] for row in _run_case(spark, case).collect()]
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    _assert_same_rows(actual, case["expected"])


def test_output_types_and_spine_columns(spark) -> None:
    events = spark.createDataFrame(
        [("a", datetime(2013, 1, 1, tzinfo=timezone.utc), 3, 1.5, "x")],
        "k string, ts timestamp, n int, f float, s string",
    )
    spine = spark.createDataFrame([("a", datetime(2013, 1, 1, tzinfo=timezone.utc), 7)], "k string, ts timestamp, id short")
    fns = ["count", "sum", "mean", "stddev", "min", "max", "last"]
    aggs = [Agg(c, fn, DAY) for c in ("n", "f") for fn in fns] + [Agg("s", "max", DAY), Agg("s", "last", DAY)]
    out = window_aggregates(events, spine, by="k", event_time="ts", aggs=aggs)
    types = {f.name: f.dataType.simpleString() for f in out.schema.fields}
    assert types == {
        "k": "string", "ts": "timestamp", "id": "smallint",
        "n_count_1d": "bigint", "n_sum_1d": "bigint", "n_mean_1d": "double", "n_stddev_1d": "double",
        "n_min_1d": "int", "n_max_1d": "int", "n_last_1d": "int",
        "f_count_1d": "bigint", "f_sum_1d": "double", "f_mean_1d": "double", "f_stddev_1d": "double",
        "f_min_1d": "float", "f_max_1d": "float", "f_last_1d": "float",
        "s_max_1d": "string", "s_last_1d": "string",
    }
    (row,) = out.collect()
    assert (row.id, row.n_sum_1d, row.f_last_1d, row.s_last_1d, row.n_stddev_1d) == (7, 3, 1.5, "x", None)


def test_default_names_and_labels() -> None:
    assert Agg("dep_delay", "mean", timedelta(days=7)).output_name == "dep_delay_mean_7d"
    assert Agg(None, "count", timedelta(hours=36)).output_name == "rows_count_36h"
    assert Agg("v", "max", timedelta(minutes=90)).output_name == "v_max_90m"
    assert Agg("v", "max", timedelta(seconds=1.5)).output_name == "v_max_1500ms"
    assert Agg("v", "sum", 2.5).output_name == "v_sum_2_5"
    assert Agg("v", "sum", 3.0).output_name == "v_sum_3"
    assert Agg("v", "sum", 3, name="custom").output_name == "custom"


def test_kernel_plan_shuffles_each_input_once_and_has_no_window_operator(spark) -> None:
    """The default (vectorised) strategy: the spine and the events each shuffled once for all
    windows, side by side in one cogroup; without a spine the events alone (the other side is
    empty and reads nothing)."""
    case = GOLDEN["several_windows_at_once"]
    plan = _run_case(spark, case)._jdf.queryExecution().executedPlan().toString()
    assert plan.count("Exchange hashpartitioning") == 2, plan
    assert "FlatMapCoGroupsInArrow" in plan and "Window [" not in plan, plan
    events = _frame(spark, case["events"])
    alone = window_aggregates(events, by="k", event_time="ts", aggs=[Agg("v", "mean", DAY)])
    plan = alone._jdf.queryExecution().executedPlan().toString()
    assert plan.count("Scan ExistingRDD") == 1 and "Window [" not in plan, plan


def test_plan_is_one_shuffle_and_running_frames_only(spark) -> None:
    """The Spark fallback plan: one exchange for all windows, and no sliding frame (which Spark
    re-aggregates per row)."""
    from engine.temporal._asof_strategy import forced

    case = GOLDEN["several_windows_at_once"]
    with forced("sweep"):
        plan = _run_case(spark, case)._jdf.queryExecution().executedPlan().toString()
    assert plan.count("Exchange hashpartitioning") == 1, plan
    assert "specifiedwindowframe(RangeFrame" not in plan, plan  # no RANGE frames at all
    frames = [part.split(",")[0] for part in plan.split("specifiedwindowframe(RowFrame, ")[1:]]
    assert frames and all(f == "unboundedpreceding$()" for f in frames), frames


# ------------------------------------------------------------------------------------ errors

TS = "k string, ts timestamp, v double, s string, m map<string,int>, n int, d double"
EVENTS = [("a", datetime(2013, 1, 1, tzinfo=timezone.utc), 1.0, "x", {"a": 1}, 1, 1.0)]


def _call(spark, *, events: str = TS, spine: str | None = "k string, ts timestamp, id int", aggs=None, **kwargs):
    """A window_aggregates call on empty frames of the given schemas (only schemas are read)."""
    ev = spark.createDataFrame([], events)
    sp = spark.createDataFrame([], spine) if spine is not None else None
    kwargs.setdefault("by", "k")
    kwargs.setdefault("event_time", "ts")
    return lambda: window_aggregates(ev, sp, aggs=aggs if aggs is not None else [Agg("v", "sum", DAY)], **kwargs)


ERROR_CASES: dict[str, tuple[Callable[[Any], Callable[[], Any]], type[EngineError], dict[str, Any]]] = {
    "by missing in events": (lambda s: _call(s, by="nope"), ColumnNotFoundError,
                             {"argument": "by", "column": "nope", "side": "events"}),
    "by missing in spine": (lambda s: _call(s, by="n"), ColumnNotFoundError, {"argument": "by", "column": "n", "side": "spine"}),
    "spine_by missing": (lambda s: _call(s, spine_by="nope"), ColumnNotFoundError,
                         {"argument": "spine_by", "column": "nope", "side": "spine"}),
    "event_time missing": (lambda s: _call(s, event_time="nope"), ColumnNotFoundError,
                           {"argument": "event_time", "column": "nope", "side": "events"}),
    "spine_time missing": (lambda s: _call(s, spine_time="nope"), ColumnNotFoundError,
                           {"argument": "spine_time", "column": "nope", "side": "spine"}),
    "agg column missing": (lambda s: _call(s, aggs=[Agg("v", "sum", DAY), Agg("nope", "max", DAY)]), ColumnNotFoundError,
                           {"argument": "aggs[1].column", "column": "nope", "side": "events"}),
    "tie_breaker missing": (lambda s: _call(s, tie_breaker=["n", "nope"]), ColumnNotFoundError,
                            {"argument": "tie_breaker", "column": "nope"}),
    "TIMESTAMP vs TIMESTAMP_NTZ": (lambda s: _call(s, spine="k string, ts timestamp_ntz"), IncompatibleTypesError,
                                   {"argument": "spine_time", "left_type": "timestamp", "right_type": "timestamp_ntz"}),
    "different key types": (lambda s: _call(s, spine="k int, ts timestamp"), IncompatibleTypesError,
                            {"argument": "spine_by", "left_column": "k", "left_type": "string", "right_type": "int"}),
    "key count differs": (lambda s: _call(s, by=["k", "n"], spine_by=["k"], spine="k string, ts timestamp"),
                          InvalidArgumentError, {"argument": "spine_by"}),
    "string event time": (lambda s: _call(s, event_time="s", spine="k string, s string"), ColumnTypeError,
                          {"argument": "event_time", "column": "s", "found": "string"}),
    "string spine time": (lambda s: _call(s, spine="k string, ts string"), ColumnTypeError,
                          {"argument": "spine_time", "column": "ts", "found": "string"}),
    "double event time": (lambda s: _call(s, event_time="d", spine=None, aggs=[Agg("v", "sum", 1)]), ColumnTypeError,
                          {"argument": "event_time", "column": "d", "found": "double"}),
    "sum of a string": (lambda s: _call(s, aggs=[Agg("s", "sum", DAY)]), ColumnTypeError,
                        {"argument": "aggs[0].column", "column": "s", "found": "string"}),
    "min of a map": (lambda s: _call(s, aggs=[Agg("m", "min", DAY)]), ColumnTypeError,
                     {"argument": "aggs[0].column", "column": "m", "found": "map<string,int>"}),
    "map tie_breaker": (lambda s: _call(s, tie_breaker="m"), ColumnTypeError, {"argument": "tie_breaker", "column": "m"}),
    "number window on timestamps": (lambda s: _call(s, aggs=[Agg("v", "sum", 7)]), InvalidArgumentError,
                                    {"argument": "aggs[0].window"}),
    "timedelta window on integers": (lambda s: _call(s, events="k string, t bigint, v double", spine=None,
                                                     event_time="t", aggs=[Agg("v", "sum", DAY)]),
                                     InvalidArgumentError, {"argument": "aggs[0].window"}),
    "duplicate output names": (lambda s: _call(s, aggs=[Agg("v", "sum", DAY), Agg("v", "mean", DAY, name="v_sum_1d")]),
                               InvalidArgumentError, {"argument": "aggs[1].name"}),
    "duplicate output names, other case": (lambda s: _call(s, aggs=[Agg("v", "sum", DAY), Agg("v", "sum", DAY, name="V_SUM_1D")]),
                                           InvalidArgumentError, {"argument": "aggs[1].name"}),
    "output name is a spine column": (lambda s: _call(s, aggs=[Agg("v", "sum", DAY, name="id")]), InvalidArgumentError,
                                      {"argument": "aggs[0].name"}),
    "output name is an event column without spine": (lambda s: _call(s, spine=None, aggs=[Agg("v", "max", DAY, name="s")]),
                                                     InvalidArgumentError, {"argument": "aggs[0].name"}),
    "empty aggs": (lambda s: _call(s, aggs=[]), InvalidArgumentError, {"argument": "aggs"}),
    "a bare Agg": (lambda s: _call(s, aggs=Agg("v", "sum", DAY)), InvalidArgumentError, {"argument": "aggs"}),
    "not an Agg": (lambda s: _call(s, aggs=[("v", "sum", DAY)]), InvalidArgumentError, {"argument": "aggs[0]"}),
    "spine_time without spine": (lambda s: _call(s, spine=None, spine_time="ts"), InvalidArgumentError,
                                 {"argument": "spine_time"}),
    "spine_by without spine": (lambda s: _call(s, spine=None, spine_by="k"), InvalidArgumentError, {"argument": "spine_by"}),
    "no key columns": (lambda s: _call(s, by=[]), InvalidArgumentError, {"argument": "by", "found": "[]"}),
    "by of a wrong type": (lambda s: _call(s, by=1), InvalidArgumentError, {"argument": "by", "found": "1"}),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_argument_errors_before_any_spark_job(spark, name: str) -> None:
    make, error, params = ERROR_CASES[name]
    call = make(spark)

    def expect_error() -> None:
        with pytest.raises(error) as info:
            call()
        assert info.value.error_class == error.error_class
        assert {k: info.value.params.get(k) for k in params} == params, info.value.params
        assert str(params["argument"]) in str(info.value)

    assert _jobs_during(spark, expect_error) == []


@pytest.mark.parametrize(
    ("kwargs", "params"),
    [
        ({"column": "v", "fn": "median", "window": DAY}, {"argument": "fn", "found": "'median'"}),
        ({"column": None, "fn": "mean", "window": DAY}, {"argument": "column"}),
        ({"column": "v", "fn": "sum", "window": timedelta(0)}, {"argument": "window", "found": repr(timedelta(0))}),
        ({"column": "v", "fn": "sum", "window": -DAY}, {"argument": "window"}),
        ({"column": "v", "fn": "sum", "window": 0}, {"argument": "window", "found": "0"}),
        ({"column": "v", "fn": "sum", "window": -2.5}, {"argument": "window"}),
        ({"column": "v", "fn": "sum", "window": float("nan")}, {"argument": "window"}),
        ({"column": "v", "fn": "sum", "window": float("inf")}, {"argument": "window"}),
        ({"column": "v", "fn": "sum", "window": True}, {"argument": "window"}),
        ({"column": "v", "fn": "sum", "window": "7d"}, {"argument": "window"}),
        ({"column": "v", "fn": "sum", "window": DAY, "name": ""}, {"argument": "name"}),
        ({"column": 3, "fn": "sum", "window": DAY}, {"argument": "column"}),
    ],
)
def test_agg_errors(kwargs: dict[str, Any], params: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Agg(**kwargs)
    assert {k: info.value.params.get(k) for k in params} == params, info.value.params


def test_valid_call_is_lazy_and_the_job_probe_sees_jobs(spark) -> None:
    """The check above is meaningful: a valid call starts no job either, its collect does."""
    events = spark.createDataFrame(EVENTS, TS)
    holder: dict[str, Any] = {}

    def build() -> None:
        holder["out"] = window_aggregates(events, by="k", event_time="ts", aggs=[Agg("v", "sum", DAY)])

    assert _jobs_during(spark, build) == []
    assert _jobs_during(spark, lambda: holder["out"].collect()) != []
