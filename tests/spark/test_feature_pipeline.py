"""Feature pipelines on real Delta tables: chunking, a crash between chunks then a resumed run,
the backfill == daily-incremental invariant for a 2-day window that crosses chunk boundaries
(checked against an independent Python reference), idempotent forced re-runs, lineage, and
argument errors raised before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from engine.errors import InvalidArgumentError, NotFoundError, TimeRangeError, UnsafeNameError
from engine.pipelines import FeaturePipeline, Input
from engine.store import delta
from engine.store.feature_store import FeatureStore
from engine.store.registry import Node

EVENTS = "user STRING, ts TIMESTAMP, amount DOUBLE"
OUTPUT = "user STRING, ts TIMESTAMP, amount_sum_2d DOUBLE, n_2d BIGINT"
WINDOW = timedelta(days=2)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2013, 1, day, hour, tzinfo=UTC)


# Events every ~17 hours for two users, from Dec 30 (lookback data) to Jan 5.
DATA = [
    (user, datetime(2012, 12, 30, tzinfo=UTC) + timedelta(hours=17 * i + offset), float(i + offset))
    for user, offset in (("a", 0), ("b", 5))
    for i in range(9)
]


def rolling_sum(spark, inputs, time_range):
    """Per user, sum and count of amounts over (t - 2 days, t] at each event."""
    micros = F.unix_micros("ts")
    window = Window.partitionBy("user").orderBy(micros).rangeBetween(-int(WINDOW.total_seconds() * 1e6) + 1, 0)
    events = inputs["events"]
    return events.select(
        "user", "ts", F.sum("amount").over(window).alias("amount_sum_2d"), F.count("amount").over(window).alias("n_2d")
    )


def reference(start: datetime, end: datetime) -> list[tuple]:
    """The expected rows, computed in plain Python from all events."""
    out = []
    for user, ts, _ in DATA:
        if start <= ts < end:
            inside = [a for u, e, a in DATA if u == user and ts - WINDOW < e <= ts]
            out.append((user, ts.replace(tzinfo=None), float(sum(inside)), len(inside)))
    return sorted(out)


def rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


@pytest.fixture()
def setup(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    raw = str(tmp_path / "raw" / "events")
    delta.create_table(spark, raw, spark.createDataFrame([], EVENTS).schema)
    delta.append(spark, raw, spark.createDataFrame(DATA, EVENTS))
    return store, raw


def group(store, name):
    return store.create_feature_group(name, primary_key="user", event_time="ts", schema=OUTPUT, statistics=False)


def test_resumed_backfill_equals_daily_runs_and_reference(setup):
    store, raw = setup
    crash = {"on_call": 2}
    calls = []

    def flaky(spark, inputs, time_range):
        calls.append(time_range.start)
        if len(calls) == crash["on_call"]:
            raise RuntimeError("simulated crash in chunk 2")
        return rolling_sum(spark, inputs, time_range)

    backfill = FeaturePipeline("backfill", flaky, inputs={"events": Input(raw, time_column="ts")},
                               output=group(store, "sums_backfill"), lookback=WINDOW, step=timedelta(days=2))
    with pytest.raises(RuntimeError, match="simulated crash"):
        backfill.run(at(1), at(5))
    log = backfill.progress()
    assert [(r["chunk_start"], r["status"]) for r in log] == [(at(1), "done"), (at(3), "failed")]
    assert "simulated crash" in log[1]["error"]

    crash["on_call"] = 0
    results = backfill.run(at(1), at(5))  # resumes at the first unfinished chunk
    assert [r.status for r in results] == ["skipped", "done"]
    assert calls == [at(1), at(3), at(3)]

    daily = FeaturePipeline("daily", rolling_sum, inputs={"events": Input(raw, time_column="ts")},
                            output=group(store, "sums_daily"), lookback=WINDOW, step=timedelta(days=7))
    for day in range(1, 5):
        daily.run(at(day), at(day + 1))

    expected = reference(at(1), at(5))
    assert len(expected) == 12
    assert rows(backfill.output.read()) == rows(daily.output.read()) == expected

    version = backfill.output.delta_version()
    again = backfill.run(at(1), at(5), force=True)  # recompute everything: same table, two new commits
    assert [r.status for r in again] == ["done", "done"]
    assert backfill.output.delta_version() == version + 2
    assert rows(backfill.output.read()) == expected


def test_rows_outside_the_chunk_are_dropped_and_lineage_is_registered(setup):
    """Also: a pipeline whose input is a feature group (filtered on its event time)."""
    store, raw = setup
    output = group(store, "sums")
    pipeline = store.register_pipeline(
        FeaturePipeline("sums", rolling_sum, inputs={"events": Input(raw, time_column="ts")}, output=output,
                        lookback=WINDOW, step=timedelta(days=1))
    )
    # the transform returns rows for the whole lookback too; only [Jan 2, Jan 3) is kept
    [result] = pipeline.run(at(2), at(3))
    assert result.rows == len(reference(at(2), at(3))) == 3
    assert rows(output.read()) == reference(at(2), at(3))
    assert [(e.src, e.dst, e.properties) for e in store.lineage("sums")] == [
        (Node("delta_table", raw), output.node, {"pipeline": "sums"})
    ]
    assert [e.name for e in store.registry.entities(kind="pipeline")] == ["sums"]

    # A feature group as the input of another pipeline: read on its event time, lineage chained.
    def doubled(spark, inputs, time_range):
        return inputs["sums"].selectExpr("user", "ts", "2 * amount_sum_2d AS amount_sum_2d", "n_2d")

    second = store.register_pipeline(
        FeaturePipeline("doubled", doubled, inputs={"sums": output}, output=group(store, "doubled"),
                        lookback=timedelta(0), step=timedelta(days=1))
    )
    second.run(at(2), at(3))
    assert rows(second.output.read()) == [(u, ts, 2 * s, n) for u, ts, s, n in reference(at(2), at(3))]
    assert {(e.src, e.dst) for e in store.lineage(second.output.node, direction="upstream")} == {
        (Node("delta_table", raw), output.node), (output.node, second.output.node)
    }


def test_bad_arguments_fail_before_anything_is_written(setup, tmp_path):
    store, raw = setup
    output = group(store, "sums")
    pipeline = FeaturePipeline("sums", rolling_sum, inputs={"events": Input(raw, time_column="ts")}, output=output,
                               lookback=WINDOW, step=timedelta(days=1))
    with pytest.raises(InvalidArgumentError) as err:
        pipeline.run(datetime(2013, 1, 1), at(2))
    assert err.value.params["argument"] == "start"
    with pytest.raises(TimeRangeError):
        pipeline.run(at(2), at(2))
    with pytest.raises(TimeRangeError):
        pipeline.run(at(3), at(2))
    missing = FeaturePipeline("sums", rolling_sum, inputs={"events": str(tmp_path / "nope")}, output=output,
                              lookback=WINDOW, step=timedelta(days=1))
    with pytest.raises(NotFoundError):
        missing.run(at(1), at(2))
    with pytest.raises(UnsafeNameError):
        FeaturePipeline("../sums", rolling_sum, inputs={"events": raw}, output=output, lookback=WINDOW, step=WINDOW)
    with pytest.raises(InvalidArgumentError):
        FeaturePipeline("sums", rolling_sum, inputs={"events": raw}, output=output, lookback=WINDOW, step=timedelta(0))
    assert output.delta_version() == 0
    assert pipeline.progress() == []
