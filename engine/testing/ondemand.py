"""Small importable on-demand feature functions for users' tests and the engine's own."""

from __future__ import annotations

from datetime import datetime


def hour_of_day(ts: datetime | None) -> int | None:
    """The UTC hour of ``ts`` (0-23)."""
    return None if ts is None else ts.hour


def minutes_between(later: datetime | None, earlier: datetime | None) -> float | None:
    """Minutes from ``earlier`` to ``later`` (e.g. the age of a looked-up feature)."""
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds() / 60.0


def as_text(value: object) -> str | None:
    """``value`` as the function receives it: ``repr`` (e.g. to check how Spark hands it over)."""
    return None if value is None else repr(value)
