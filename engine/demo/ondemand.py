"""On-demand features of the demo, applied identically in training and in scoring."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from engine.testing.ondemand import minutes_between

__all__ = ["local_hour", "local_weekday", "minutes_between"]

_NEW_YORK = ZoneInfo("America/New_York")


def _local(ts: datetime) -> datetime:
    # Spark hands TIMESTAMP values to Python UDFs as naive datetimes in the worker's local zone
    # (aware ones when they carry tzinfo); treat naive values as UTC, the session zone.
    from datetime import UTC

    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return aware.astimezone(_NEW_YORK)


def local_hour(ts: datetime | None) -> int | None:
    """The scheduled departure's hour in New York local time (0-23)."""
    return None if ts is None else _local(ts).hour


def local_weekday(ts: datetime | None) -> int | None:
    """Monday = 0 ... Sunday = 6, in New York local time."""
    return None if ts is None else _local(ts).weekday()
