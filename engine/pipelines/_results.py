"""The result of one training run (kept apart so training and promotion need not import each other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.pipelines._trials import TrialRecord

__all__ = ["TrainingResult"]


@dataclass(frozen=True)
class TrainingResult:
    """What :func:`train` did: the parent run, the logged model, the best params and metrics."""

    run_id: str
    experiment_id: str
    model_uri: str
    family: str
    metric: str  # the metric hyperopt optimised
    best_params: dict[str, Any]
    metrics: dict[str, float]  # validation metrics of the task (e.g. roc_auc, log_loss)
    baseline_metrics: dict[str, float]  # validation, the trivial model (train class rates / train mean)
    features: tuple[str, ...]
    label: str
    train_rows: int
    validation_rows: int
    train_positive_rate: float  # binary: P(classes[1]) in train; NaN for the other tasks
    trials: tuple[TrialRecord, ...]
    best_trial: int
    tuning_seconds: float
    task: str = "binary"
    classes: tuple[Any, ...] | None = None
    tracking_uri: str | None = None
    registry_uri: str | None = None
