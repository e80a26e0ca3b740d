"""Pure DataFrame -> DataFrame time logic: as-of joins, point-in-time windows, time ranges."""

from engine.temporal.ranges import TimeRange

__all__ = ["TimeRange"]
