"""Feature Factory: a Spark-native feature store and ML pipeline engine.

The public API in one import; everything is imported lazily so ``import engine`` stays fast and
never touches Spark::

    from engine import build_spark, FeatureStore, FeatureLookup, TimeSplit, asof_join, window_aggregates
    from engine import load_repository, plan, apply, backfill, build_training_data, train, score, monitor
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # session
    "build_spark": "engine.session",
    # temporal core
    "asof_join": "engine.temporal",
    "asof_join_many": "engine.temporal",
    "AsofLookup": "engine.temporal",
    "window_aggregates": "engine.temporal",
    "Agg": "engine.temporal",
    "TimeRange": "engine.temporal.ranges",
    # the store
    "FeatureStore": "engine.store.feature_store",
    "FeatureGroup": "engine.store.feature_group",
    "FeatureLookup": "engine.store.feature_view",
    "FeatureView": "engine.store.feature_view",
    "OnDemandFeature": "engine.store.feature_view",
    "TimeSplit": "engine.store.training_dataset",
    "RandomSplit": "engine.store.training_dataset",
    "TrainingDataset": "engine.store.training_dataset",
    "Node": "engine.store.registry",
    # pipelines
    "FeaturePipeline": "engine.pipelines.feature",
    "Input": "engine.pipelines.feature",
    "train_on_dataset": "engine.pipelines.view_training",
    "load_training_config": "engine.pipelines.training",
    "score_batch": "engine.pipelines.inference",
    "log_model": "engine.pipelines.models",
    "training_set": "engine.pipelines.models",
    # feature repositories
    "Repository": "engine.repository",
    "load_repository": "engine.repository",
    "plan": "engine.repository",
    "apply": "engine.repository",
    "ingest": "engine.repository",
    "backfill": "engine.repository",
    "build_training_data": "engine.repository",
    "train": "engine.repository",
    "score": "engine.repository",
    "monitor": "engine.repository",
    "run_all": "engine.repository",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
