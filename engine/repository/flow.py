"""The whole flow of a repository in one call (what ``jobs.run`` and ``make demo`` do).

1. ingest every source that has a loader and no table yet;
2. ``apply`` (registers exactly what ``plan`` shows);
3. backfill every pipeline over its declared ``backfill`` range, up to ``workers`` pipelines at a
   time, each after the pipelines whose groups it reads (:mod:`engine.repository.schedule`);
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

from engine.repository.loader import REPO_FILE, Repository
from engine.repository.planning import apply, plan
from engine.repository.run_features import backfill, ingest, ingest_order
from engine.repository.run_models import build_training_data, monitor, score, train
from engine.repository.schedule import WORKERS

if TYPE_CHECKING:
    from engine.store.feature_store import FeatureStore

__all__ = ["pipeline_dependencies", "run_all"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def pipeline_dependencies(repo: Repository, names: list[str] | None = None) -> dict[str, list[str]]:
    """The pipelines (of ``names``, default all) each of them runs after (see :mod:`engine.repository.schedule`);
    a cycle is a ConfigError."""
    from engine.repository.schedule import dependencies

    chosen = list(repo.pipelines) if names is None else names
    return dependencies({p: (repo.pipelines[p].output, [str(getattr(i, "source", i)) for i in repo.pipelines[p].inputs.values()])
                         for p in chosen}, source=str(repo.folder / REPO_FILE))


def run_all(fs: FeatureStore, repo: Repository, *, scored_at: datetime,
            training_overrides: Mapping[str, Any] | None = None, workers: int = WORKERS) -> dict[str, Any]:
    """Run the repository end to end on ``fs`` and return the summary (see the module docs)."""
    from engine.repository.profile import Profiler
    from engine.repository.schedule import run_ordered

    began = time.monotonic()
    after = pipeline_dependencies(repo)  # a cycle fails before anything runs
    profiler = Profiler(fs.spark, fs.root)
    stages = (["ingest"] if ingest_order(repo) else []) + ["apply"] + (["backfill"] if repo.pipelines else []) \
        + [f"{s} {t}" for t in repo.training for s in ("training data", "train")] \
        + [f"score {s}" for s in repo.scoring] + [f"monitor {m}" for m in repo.monitoring]

    def stage(name: str, fn: Callable[[], T]) -> T:
        index = stages.index(name) + 1
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

    def backfill_one(p: str) -> dict[str, Any]:
        with profiler.stage(f"backfill {p}", within="backfill"):
            result = backfill(fs, repo, p, current=current)
        done = profiler.stages[f"backfill {p}"]
        log.info("backfill %s done in %.1fs (%s Spark jobs)", p, done["seconds"], done["spark_jobs"])
        return result

    summary["backfill"] = stage("backfill", lambda: run_ordered(after, backfill_one, workers=workers)) \
        if repo.pipelines else {}
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
