"""Feature Factory: a Spark-native feature store and ML pipeline engine.

The public surface is small; everything is imported lazily so ``import engine`` stays fast and
never touches Spark::

    from engine import build_spark, asof_join, window_aggregates, Agg, TimeRange
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "build_spark": "engine.session",
    "asof_join": "engine.temporal",
    "asof_join_many": "engine.temporal",
    "AsofLookup": "engine.temporal",
    "window_aggregates": "engine.temporal",
    "Agg": "engine.temporal",
    "TimeRange": "engine.temporal.ranges",
    "FeatureStore": "engine.store.feature_store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
