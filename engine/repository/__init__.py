"""Feature repositories: a team's declarations in one reviewable folder, planned and applied.

::

    from engine.repository import load_repository, plan, apply
    repo = load_repository("my_repo")          # feature_repo.yaml + includes + Python modules
    fs = repo.open_store(spark)
    print(plan(fs, repo))                      # what apply would create or change
    apply(fs, repo)                            # exactly that

The runners execute registered objects by name (``backfill``, ``build_training_data``,
``train``, ``score``, ``monitor``, ``run_all``); the ``jobs/`` entry points call them.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Change",
    "Plan",
    "Repository",
    "apply",
    "backfill",
    "build_training_data",
    "ingest",
    "load_repository",
    "monitor",
    "plan",
    "run_all",
    "score",
    "train",
    "training_dataset",
]

_LAZY = {
    "Repository": "engine.repository.loader",
    "load_repository": "engine.repository.loader",
    "Change": "engine.repository.planning",
    "Plan": "engine.repository.planning",
    "apply": "engine.repository.planning",
    "plan": "engine.repository.planning",
    "backfill": "engine.repository.run_features",
    "ingest": "engine.repository.run_features",
    "build_training_data": "engine.repository.run_models",
    "monitor": "engine.repository.run_models",
    "score": "engine.repository.run_models",
    "train": "engine.repository.run_models",
    "training_dataset": "engine.repository.run_models",
    "run_all": "engine.repository.flow",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.repository' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
