"""Half-open UTC time ranges and their chunking, for backfills and incremental runs.

A :class:`TimeRange` is ``[start, end)`` with both ends timezone-aware instants (normalised to
UTC). Naive datetimes are rejected rather than guessed: a backfill that silently shifts by the
machine's zone offset writes the wrong hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from engine.errors import InvalidArgumentError, TimeRangeError

__all__ = ["TimeRange", "to_utc"]


def to_utc(value: datetime, *, argument: str) -> datetime:
    """Return ``value`` in UTC; a naive or non-datetime value is an error naming ``argument``."""
    if not isinstance(value, datetime):
        raise InvalidArgumentError(
            argument=argument, expected="a timezone-aware datetime", found=f"{value!r} ({type(value).__name__})"
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidArgumentError(
            argument=argument, expected="a timezone-aware datetime (e.g. tzinfo=timezone.utc)",
            found=f"the naive datetime {value.isoformat()}",
            hint="Naive times are ambiguous; attach a time zone.",
        )
    return value.astimezone(timezone.utc)


@dataclass(frozen=True)
class TimeRange:
    """The half-open interval ``[start, end)`` of UTC instants."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start = to_utc(self.start, argument="start")
        end = to_utc(self.end, argument="end")
        if start >= end:
            raise TimeRangeError(
                argument="start/end", expected="start < end (a non-empty, forward range)",
                start=start.isoformat(), end=end.isoformat(),
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def contains(self, instant: datetime) -> bool:
        return self.start <= to_utc(instant, argument="instant") < self.end

    def widen(self, lookback: timedelta) -> TimeRange:
        """The range that also covers ``lookback`` before ``start`` (the input a chunk needs)."""
        if not isinstance(lookback, timedelta) or lookback < timedelta(0):
            raise InvalidArgumentError(
                argument="lookback", expected="a timedelta >= 0", found=repr(lookback)
            )
        return TimeRange(self.start - lookback, self.end)

    def chunks(self, step: timedelta) -> list[TimeRange]:
        """Consecutive sub-ranges of length ``step`` (the last one may be shorter)."""
        return list(self.iter_chunks(step))

    def iter_chunks(self, step: timedelta) -> Iterator[TimeRange]:
        if not isinstance(step, timedelta) or step <= timedelta(0):
            raise InvalidArgumentError(argument="step", expected="a timedelta > 0", found=repr(step))
        cursor = self.start
        while cursor < self.end:
            upper = min(cursor + step, self.end)
            yield TimeRange(cursor, upper)
            cursor = upper

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"
