"""Pure DataFrame -> DataFrame time logic: as-of joins, point-in-time windows, time ranges.

The point-in-time contract is stated once, in :mod:`engine.temporal.asof`.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.temporal.ranges import TimeRange

__all__ = [
    "Agg", "AsofLookup", "AsofPlan", "BucketedSource", "TimeRange", "asof_join", "asof_join_many", "explain_asof", "explain_asof_many",
    "window_aggregates",
]

_LAZY = {
    "asof_join": "engine.temporal.asof",
    "asof_join_many": "engine.temporal.asof",
    "AsofLookup": "engine.temporal.asof",
    "AsofPlan": "engine.temporal.asof",
    "explain_asof": "engine.temporal.asof",
    "explain_asof_many": "engine.temporal.asof",
    "BucketedSource": "engine.temporal.layout",
    "window_aggregates": "engine.temporal.windows",
    "Agg": "engine.temporal.windows",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.temporal' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
