"""The flights example's feature transformations: plain functions ``(spark, inputs, time_range) -> DataFrame``.

``feature_repo.yaml`` names them as pipeline transforms; each chunk of a backfill or incremental
run calls them with the chunk's inputs (read for ``[start - lookback, end)``) and its range.

* ``weather_transform`` -- the raw hourly observations of the chunk (lookback 0).
* ``route_delay_transform`` / ``carrier_delay_transform`` -- rolling 7- and 30-day mean departure
  delay, share of departures delayed > 15 min and number of departures per route / carrier, at
  every departure, with event time ``departed_at`` = the *actual* departure instant: a flight's own
  delay becomes visible only once it has departed, so a lookup as of a flight's scheduled
  departure sees only flights that had already left (lookback 30 days = the longest window).
* ``planes_transform`` -- static plane attributes; event time ``valid_from`` is a fixed instant,
  the start of the data (2013-01-01T00:00Z): the table is a snapshot without registration dates,
  and every 2013 flight can see it (it was published after 2013 -- for static attributes an
  accepted leak).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from engine.temporal import Agg, window_aggregates

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.temporal import TimeRange

__all__ = ["carrier_delay_transform", "planes_transform", "route_delay_transform", "weather_transform"]

WINDOWS = (timedelta(days=7), timedelta(days=30))
PLANES_VALID_FROM = datetime(2013, 1, 1, tzinfo=UTC)
WEATHER_FEATURES = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")
PLANE_FEATURES = ("year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine")


def weather_transform(spark: SparkSession, inputs: dict[str, DataFrame], time_range: TimeRange) -> DataFrame:
    """The raw hourly observations of the chunk, feature columns only."""
    return inputs["weather"].select("origin", "time_hour", *WEATHER_FEATURES)


def planes_transform(spark: SparkSession, inputs: dict[str, DataFrame], time_range: TimeRange) -> DataFrame:
    """The plane attributes, valid from the start of the data."""
    from pyspark.sql import functions as F

    return inputs["planes"].select(
        "tailnum", F.lit(PLANES_VALID_FROM).cast("timestamp").alias("valid_from"), *PLANE_FEATURES
    )


def route_delay_transform(spark: SparkSession, inputs: dict[str, DataFrame], time_range: TimeRange) -> DataFrame:
    """Rolling delay statistics per (origin, dest) at every departure of the chunk."""
    return _delay_stats(inputs["flights"], ["origin", "dest"], time_range)


def carrier_delay_transform(spark: SparkSession, inputs: dict[str, DataFrame], time_range: TimeRange) -> DataFrame:
    """Rolling delay statistics per carrier at every departure of the chunk."""
    return _delay_stats(inputs["flights"], ["carrier"], time_range)


def _delay_stats(flights: DataFrame, by: list[str], time_range: TimeRange) -> DataFrame:
    from pyspark.sql import functions as F

    events = flights.where(F.col("dep_utc").isNotNull()).select(
        *by, F.col("dep_utc").alias("departed_at"), "dep_delay",
        F.when(F.col("dep_delay").isNotNull(), (F.col("dep_delay") > 15).cast("double")).alias("delayed"),
    )
    # One target per (key, departure instant) of the chunk: two flights of a route leaving in the
    # same minute share one row (their windows are the same set of flights).
    t = F.col("departed_at")
    spine = events.where((t >= F.lit(time_range.start)) & (t < F.lit(time_range.end))).select(*by, "departed_at").distinct()
    aggs = [Agg(column, fn, window) for column, fn in (("dep_delay", "mean"), ("delayed", "mean")) for window in WINDOWS]
    aggs += [Agg("dep_delay", "count", window) for window in WINDOWS]
    return window_aggregates(events, spine, by=by, event_time="departed_at", spine_time="departed_at", aggs=aggs)
