"""Where the time goes: a per-stage profile of a job or a whole repository run.

Each stage records its wall time, the Spark jobs it ran (classic sessions: the jobs of the
stage's job group, from Spark's status tracker) and the Delta commits it made under the store
root (local roots: commit files counted before and after). ``jobs.*`` print the profile at the
end and put it in their JSON result (``profile``)::

    profiler = Profiler(spark, fs.root)
    with profiler.stage("backfill weather"):
        ...
    profiler.summary()   # {"backfill weather": {"seconds": 12.3, "spark_jobs": 41, "delta_commits": 9}}
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.store.layout import is_uri

__all__ = ["Profiler"]

log = logging.getLogger(__name__)


class Profiler:
    """Per-stage wall time, Spark jobs and Delta commits (see the module docs)."""

    def __init__(self, spark: Any, root: str) -> None:
        self.spark = spark
        self.root = None if is_uri(root) else Path(root)
        self.stages: dict[str, dict[str, Any]] = {}
        self._tag = uuid.uuid4().hex[:8]

    def _context(self) -> Any:
        from engine.remote import is_remote

        if is_remote(self.spark):
            return None  # Spark Connect has no status tracker on the client
        try:
            return self.spark.sparkContext
        except Exception:  # pragma: no cover - sessions without a SparkContext
            return None

    def _commits(self) -> int | None:
        if self.root is None or not self.root.exists():
            return None if self.root is None else 0
        return sum(1 for _ in self.root.rglob("_delta_log/*.json"))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        sc = self._context()
        group = f"ff-{self._tag}-{len(self.stages)}"
        previous = sc.getLocalProperty("spark.jobGroup.id") if sc is not None else None
        if sc is not None:
            sc.setJobGroup(group, name, interruptOnCancel=False)
        commits_before = self._commits()
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = round(time.monotonic() - started, 2)
            jobs = len(sc.statusTracker().getJobIdsForGroup(group)) if sc is not None else None
            if sc is not None:
                sc.setLocalProperty("spark.jobGroup.id", previous)  # type: ignore[arg-type]
            after = self._commits()
            commits = None if after is None or commits_before is None else after - commits_before
            self.stages[name] = {"seconds": seconds, "spark_jobs": jobs, "delta_commits": commits}

    def summary(self) -> dict[str, dict[str, Any]]:
        return dict(self.stages)

    def table(self) -> str:
        """The profile as a small text table (for the end of a job's log)."""
        lines = [f"{'stage':<40} {'seconds':>9} {'spark jobs':>11} {'commits':>8}"]
        for name, row in self.stages.items():
            lines.append(f"{name[:40]:<40} {row['seconds']:>9.1f} {_show(row['spark_jobs']):>11} "
                         f"{_show(row['delta_commits']):>8}")
        total = sum(r["seconds"] for r in self.stages.values())
        lines.append(f"{'total':<40} {total:>9.1f}")
        return "\n".join(lines)


def _show(value: Any) -> str:
    return "-" if value is None else str(value)
