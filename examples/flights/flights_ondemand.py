"""On-demand features of the flights example, applied identically in training and in scoring."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

__all__ = ["local_hour", "local_weekday", "minutes_between"]

_NEW_YORK = ZoneInfo("America/New_York")


def _local(ts: datetime) -> datetime:
    # Spark hands TIMESTAMP values to Python UDFs as naive datetimes in the worker's local zone
    # (aware ones when they carry tzinfo); treat naive values as UTC, the session zone.
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return aware.astimezone(_NEW_YORK)


def local_hour(ts: datetime | None) -> int | None:
    """The scheduled departure's hour in New York local time (0-23)."""
    return None if ts is None else _local(ts).hour


def local_weekday(ts: datetime | None) -> int | None:
    """Monday = 0 ... Sunday = 6, in New York local time."""
    return None if ts is None else _local(ts).weekday()


def minutes_between(later: datetime | None, earlier: datetime | None) -> float | None:
    """Minutes from ``earlier`` to ``later`` (e.g. the age of the weather observation)."""
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds() / 60.0
