"""The whole flow of a repository in one call (what ``jobs.run`` and ``make demo`` do).

1. ingest every source that has a loader and no table yet;
2. ``apply`` (registers exactly what ``plan`` shows);
3. backfill every pipeline over its declared ``backfill`` range;
4. for every training config: build its training dataset, tune, train and register;
5. run every scoring job, then every monitoring job.

Each stage is profiled (wall time, Spark jobs, Delta commits: :mod:`engine.repository.profile`); the
summary holds the profile and every result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from engine.repository.loader import Repository
from engine.repository.planning import apply, plan
from engine.repository.run_features import backfill, ingest, ingest_order
from engine.repository.run_models import build_training_data, monitor, score, train

if TYPE_CHECKING:
    from engine.store.feature_store import FeatureStore

__all__ = ["run_all"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def run_all(fs: FeatureStore, repo: Repository, *, scored_at: datetime,
            training_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run the repository end to end on ``fs`` and return the summary (see the module docs)."""
    from engine.repository.profile import Profiler

    began = time.monotonic()
    profiler = Profiler(fs.spark, fs.root)
    stages = (["ingest"] if ingest_order(repo) else []) + ["apply"] + [f"backfill {p}" for p in repo.pipelines] \
        + [f"{s} {t}" for t in repo.training for s in ("training data", "train")] \
        + [f"score {s}" for s in repo.scoring] + [f"monitor {m}" for m in repo.monitoring]

    def stage(name: str, fn: Callable[[], T]) -> T:
        index = len(profiler.stages) + 1
        log.info("stage %d/%d: %s ...", index, len(stages), name)
        with profiler.stage(name):
            result = fn()
        done = profiler.stages[name]
        log.info("stage %d/%d: %s done in %.1fs (%s Spark jobs, %s Delta commits)", index, len(stages), name,
                 done["seconds"], done["spark_jobs"], done["delta_commits"])
        return result

    summary: dict[str, Any] = {"repository": str(repo.folder), "store": fs.root}
    if ingest_order(repo):
        summary["ingested"] = stage("ingest", lambda: [ingest(fs, repo, s, only_missing=True) for s in ingest_order(repo)])
    applied = stage("apply", lambda: apply(fs, repo))
    summary["applied"] = [str(c).splitlines()[0] for c in applied.changed]
    current = plan(fs, repo)
    summary["backfill"] = {p: stage(f"backfill {p}", lambda p=p: backfill(fs, repo, p, current=current))
                           for p in repo.pipelines}
    summary["training"] = {}
    for name in repo.training:
        dataset = stage(f"training data {name}", lambda name=name: build_training_data(fs, repo, name))
        trained = stage(f"train {name}", lambda name=name: train(fs, repo, name, overrides=training_overrides))
        reg = trained.registration
        summary["training"][name] = {
            "dataset": f"{dataset.view_name} v{dataset.view_version} #{dataset.version}", "rows": dataset.rows,
            "model": trained.model_uri, "metrics": trained.training.metrics,
            "baseline_metrics": trained.training.baseline_metrics, "champion": None if reg is None else reg.promoted,
        }
    summary["scoring"] = {s: stage(f"score {s}", lambda s=s: score(fs, repo, s, scored_at=scored_at)) for s in repo.scoring}
    summary["monitoring"] = {m: stage(f"monitor {m}", lambda m=m: monitor(fs, repo, m, scored_at=scored_at))
                             for m in repo.monitoring}
    summary["profile"] = profiler.summary()
    summary["seconds"] = round(time.monotonic() - began, 1)
    log.info("profile:\n%s", profiler.table())
    return summary
