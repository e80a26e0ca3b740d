"""Where the time goes: a per-stage profile of a job or a whole repository run.

Each stage records its wall time, the Spark jobs it ran (classic sessions: the jobs of the
stage's job group, from Spark's status tracker) and the Delta commits it made under the store
root (local roots: commit files counted before and after). ``jobs.*`` print the profile at the
end and put it in their JSON result (``profile``)::

    profiler = Profiler(spark, fs.root)
    with profiler.stage("backfill weather"):
        ...
    profiler.summary()   # {"backfill weather": {"seconds": 12.3, "spark_jobs": 41, "delta_commits": 9}}

Stages may run side by side in threads (each thread sets its own job group, so each counts its
own Spark jobs): open the block as a stage, and each stage inside it with ``within=<block>``.
Delta commits are counted for the block only (commit files cannot tell which thread made them);
the block's Spark jobs are its own plus its stages'; totals add top-level stages only::

    with profiler.stage("backfill"):
        ...threads: with profiler.stage("backfill weather", within="backfill"): ...
"""

from __future__ import annotations

import itertools
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
        self._groups = itertools.count()  # one job group per stage, also for stages of other threads

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
    def stage(self, name: str, *, within: str | None = None) -> Iterator[None]:
        sc = self._context()
        group = f"ff-{self._tag}-{next(self._groups)}"
        previous = sc.getLocalProperty("spark.jobGroup.id") if sc is not None else None
        if sc is not None:
            sc.setJobGroup(group, name, interruptOnCancel=False)
        if within is None:
            self.stages[name] = {}  # the block's place comes before the stages run inside it
        commits_before = self._commits() if within is None else None
        started = time.monotonic()
        try:
            yield
        finally:
            seconds = round(time.monotonic() - started, 2)
            jobs = len(sc.statusTracker().getJobIdsForGroup(group)) if sc is not None else None
            if sc is not None:
                sc.setLocalProperty("spark.jobGroup.id", previous)  # type: ignore[arg-type]
            if within is not None:
                self.stages[name] = {"seconds": seconds, "spark_jobs": jobs, "delta_commits": None, "within": within}
            else:
                after = self._commits()
                commits = None if after is None or commits_before is None else after - commits_before
                inside = [row for row in self.stages.values() if row.get("within") == name]
                if jobs is not None and inside:
                    jobs += sum(row["spark_jobs"] or 0 for row in inside)
                self.stages[name] = {"seconds": seconds, "spark_jobs": jobs, "delta_commits": commits,
                                     **({"stages": len(inside)} if inside else {})}

    def summary(self) -> dict[str, dict[str, Any]]:
        return {name: dict(row) for name, row in self.stages.items() if row}

    def table(self) -> str:
        """The profile as a small text table (for the end of a job's log)."""
        lines = [f"{'stage':<40} {'seconds':>9} {'spark jobs':>11} {'commits':>8}"]
        for name, row in self.stages.items():
            if not row:
                continue  # a block still running
            label = f"  {name}" if row.get("within") else name
            lines.append(f"{label[:40]:<40} {row['seconds']:>9.1f} {_show(row['spark_jobs']):>11} "
                         f"{_show(row['delta_commits']):>8}")
        total = sum(r["seconds"] for r in self.stages.values() if r and not r.get("within"))
        lines.append(f"{'total':<40} {total:>9.1f}")
        return "\n".join(lines)


def _show(value: Any) -> str:
    return "-" if value is None else str(value)
