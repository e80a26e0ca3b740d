"""Hyperopt trials -> nested MLflow runs, written from the driver as the trials finish.

Executors never talk to MLflow. Each trial's objective returns its parameters, metrics and its own
start/end times in the hyperopt result; the driver turns every finished trial into a child run
(tag ``mlflow.parentRunId``) of the tuning run, with those times, so the child's duration is the
trial's. This works the same for ``SparkTrials`` (trials on executors, possibly on other machines
that cannot reach an SQLite file or hold tracking credentials) and for driver-side ``Trials``.

:class:`TrialLogger` is given to ``hyperopt.fmin`` as its progress reporter
(``show_progressbar=``), which hyperopt calls on the driver after each batch of finished trials;
:meth:`TrialLogger.flush` after ``fmin`` catches any trial finished after the last report.

An objective may also return its fitted model under :data:`FITTED` (any picklable value); the
logger takes it out of hyperopt's trial documents as each trial arrives and keeps only the best
trial's (:meth:`TrialLogger.fitted`), so the driver holds one model, not one per trial.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FITTED", "TrialLogger", "TrialRecord"]

FITTED = "fitted"  # the key of a trial result's fitted model (not logged; see the module docstring)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial as logged: its child run, parameters and validation metrics."""

    number: int  # 1-based, in hyperopt's order
    run_id: str
    status: str  # "ok", "failed" or "cancelled"
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None
    loss: float | None = None


class TrialLogger:
    """Logs each finished trial of ``trials`` once, as a child run of ``parent_run_id``."""

    def __init__(self, trials: Any, *, experiment_id: str, parent_run_id: str, total: int, metric: str,
                 client: Any, tags: dict[str, str] | None = None) -> None:
        self._client = client  # an MlflowClient bound to the run's tracking URI
        self._trials = trials
        self._experiment_id = experiment_id
        self._parent = parent_run_id
        self._total = total
        self._metric = metric
        self._tags = dict(tags or {})
        self._done: set[int] = set()
        self._fitted: tuple[int, Any] | None = None  # (trial number, its FITTED): the best trial's
        self._started = time.monotonic()
        self.records: list[TrialRecord] = []
        self.postfix = ""  # hyperopt sets this on its progress object

    # hyperopt's progress-callback protocol: callback(initial=, total=) -> context of .update(n)
    @contextlib.contextmanager
    def progress(self, initial: int = 0, total: int = 0) -> Iterator[TrialLogger]:
        yield self

    def update(self, n: int = 0) -> None:
        self.flush()

    def flush(self) -> None:
        """Log every finished trial not logged yet."""
        from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_DONE, JOB_STATE_ERROR

        finished = (JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_CANCEL)
        for trial in sorted(list(self._trials.trials), key=lambda t: t["tid"]):
            if trial["tid"] in self._done or trial["state"] not in finished:
                continue
            self._done.add(trial["tid"])
            fitted = (trial.get("result") or {}).pop(FITTED, None)
            record = self._log(trial, cancelled=trial["state"] == JOB_STATE_CANCEL)
            self.records.append(record)
            if fitted is not None and self.best() is record:
                self._fitted = (record.number, fitted)
            self._report(record)

    def fitted(self, record: TrialRecord) -> Any | None:
        """What ``record``'s objective returned under :data:`FITTED`, if it is the best trial's."""
        return self._fitted[1] if self._fitted is not None and self._fitted[0] == record.number else None

    def best(self) -> TrialRecord | None:
        ok = [r for r in self.records if r.status == "ok" and r.loss is not None and math.isfinite(r.loss)]
        return min(ok, key=lambda r: (r.loss, r.number)) if ok else None

    def _log(self, trial: dict[str, Any], *, cancelled: bool) -> TrialRecord:
        from hyperopt import STATUS_OK
        from mlflow.entities import Metric, Param, RunStatus

        result = trial.get("result") or {}
        number = int(trial["tid"]) + 1
        params = dict(result.get("params") or {k: v[0] for k, v in trial["misc"]["vals"].items() if v})
        start = float(result.get("start_time") or _epoch(trial.get("book_time")) or time.time())
        end = float(result.get("end_time") or _epoch(trial.get("refresh_time")) or start)
        metrics = {k: float(v) for k, v in (result.get("metrics") or {}).items()}
        ok = result.get("status") == STATUS_OK and not cancelled
        error = result.get("error") or (None if ok else _error_text(trial))
        status = "ok" if ok else "cancelled" if cancelled else "failed"
        tags = {**self._tags, "mlflow.parentRunId": self._parent, "ff.trial": str(number), "ff.trial_status": status}
        if error:
            tags["ff.error"] = str(error)[:5000]
        run = self._client.create_run(
            self._experiment_id, start_time=int(start * 1000), tags=tags, run_name=f"trial-{number:03d}"
        )
        run_id = run.info.run_id
        stamp = int(end * 1000)
        logged = {**metrics, "duration_s": end - start}
        if ok:
            logged["loss"] = float(result["loss"])
        self._client.log_batch(
            run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in logged.items() if math.isfinite(v)],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        final = RunStatus.FINISHED if ok else RunStatus.KILLED if cancelled else RunStatus.FAILED
        self._client.set_terminated(run_id, RunStatus.to_string(final), end_time=stamp)
        return TrialRecord(
            number=number, run_id=run_id, status=status, params=params, metrics=metrics,
            duration_s=end - start, error=error, loss=float(result["loss"]) if ok else None,
        )

    def _report(self, record: TrialRecord) -> None:
        best = self.best()
        shown = f"{self._metric}={record.metrics[self._metric]:.4f}" if self._metric in record.metrics else record.status
        best_text = f"{self._metric}={best.metrics[self._metric]:.4f} (trial {best.number})" if best else "none yet"
        log.info(
            "%d/%d trials done: trial %d %s in %.1fs: %s; best %s; %.0fs elapsed", len(self.records), self._total,
            record.number, record.status, record.duration_s, shown, best_text, time.monotonic() - self._started,
        )
        if record.error:
            log.warning("trial %d failed: %s", record.number, record.error)


def _epoch(value: Any) -> float | None:
    return value.timestamp() if hasattr(value, "timestamp") else None


def _error_text(trial: dict[str, Any]) -> str | None:
    error = trial.get("misc", {}).get("error")
    if not error:
        return None
    return " ".join(str(part) for part in error)[:2000]
