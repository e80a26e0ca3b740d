"""Validation metrics per task and the trivial baselines: pure numpy / scikit-learn, no Spark.

* binary: ``roc_auc`` of P(classes[1]), ``log_loss``;
* multiclass: ``f1_macro`` of the arg-max class (every training class counts, absent ones as 0),
  ``log_loss``;
* regression: ``rmse``, ``mae``.

Baselines (what a model must beat to be worth anything), on validation: always predict the train
class frequencies (binary, multiclass: the majority class for F1) or the train mean (regression).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "GREATER_IS_BETTER",
    "TASK_METRICS",
    "baseline_metrics",
    "f1_macro_from_counts",
    "task_metrics",
]

TASK_METRICS: dict[str, tuple[str, str]] = {
    "binary": ("roc_auc", "log_loss"),
    "multiclass": ("f1_macro", "log_loss"),
    "regression": ("rmse", "mae"),
}
GREATER_IS_BETTER = {"roc_auc": True, "f1_macro": True, "log_loss": False, "rmse": False, "mae": False}
EPS = 1e-15


def task_metrics(task: str, y_true: Any, output: Any, classes: Sequence[Any] | None) -> dict[str, float]:
    """Metrics of ``output`` -- class probabilities (n x k, in ``classes`` order) or values."""
    import numpy as np
    from sklearn.metrics import f1_score, log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

    y = np.asarray(y_true)
    if task == "regression":
        pred = np.asarray(output, dtype="float64")
        return {"rmse": float(math.sqrt(mean_squared_error(y, pred))), "mae": float(mean_absolute_error(y, pred))}
    labels = list(classes or [])
    proba = np.asarray(output, dtype="float64")
    loss = float(log_loss(y, proba, labels=labels))
    if task == "binary":
        return {"roc_auc": float(roc_auc_score(y == labels[1], proba[:, 1])), "log_loss": loss}
    predicted = np.asarray(labels, dtype=object)[np.argmax(proba, axis=1)]
    f1 = f1_score(y.astype(object), predicted, average="macro", labels=labels, zero_division=0)
    return {"f1_macro": float(f1), "log_loss": loss}


def f1_macro_from_counts(counts: Mapping[tuple[int, int], int], n_classes: int) -> float:
    """Macro F1 from confusion counts ``{(true index, predicted index): rows}`` over ``n_classes``."""
    total = 0.0
    for c in range(n_classes):
        tp = counts.get((c, c), 0)
        predicted = sum(v for (_, p), v in counts.items() if p == c)
        actual = sum(v for (t, _), v in counts.items() if t == c)
        total += 0.0 if tp == 0 else 2 * tp / (predicted + actual)
    return total / n_classes


def baseline_metrics(task: str, summary: Mapping[str, Any]) -> dict[str, float]:
    """The trivial model's validation metrics, from a label summary (``engine.pipelines._labels``)."""
    if task == "regression":
        return {"rmse": float(summary["baseline_rmse"]), "mae": float(summary["baseline_mae"])}
    classes = list(summary["classes"])
    train = _frequencies(summary["train_counts"], classes)
    val = _frequencies(summary["validation_counts"], classes)
    loss = -sum(v * math.log(min(max(p, EPS), 1 - EPS)) for p, v in zip(train, val, strict=True) if v > 0)
    if task == "binary":
        return {"roc_auc": 0.5, "log_loss": loss}
    majority = max(range(len(classes)), key=lambda i: (train[i], -i))
    share = val[majority]
    return {"f1_macro": (2 * share / (1 + share)) / len(classes) if share > 0 else 0.0, "log_loss": loss}


def _frequencies(counts: Sequence[int], classes: Sequence[Any]) -> list[float]:
    total = sum(counts) or 1
    return [c / total for c in counts]
