"""Model registry: register a logged model with its lineage and move the alias only on improvement.

The rule (the same for built-in and bring-your-own models): a new version takes ``alias``
(default ``champion``) when no version holds it yet, or when it strictly beats the holder on the
*primary metric of its task* (``roc_auc`` for binary, ``f1_macro`` for multiclass, ``rmse`` for
regression; see :mod:`engine.pipelines.training_config`); ties do not promote; a holder whose
metric is unknown keeps the alias (nothing to compare against), and so does a holder when the new
version's metric is unknown. The decision and its reason are tagged on the version
(``ff.alias_decision``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidArgumentError
from engine.pipelines._results import TrainingResult

__all__ = [
    "RegistrationResult",
    "check_alias",
    "check_model_name",
    "check_tags",
    "register_best",
    "register_version",
]

log = logging.getLogger(__name__)

_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,255}")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,255}")


@dataclass(frozen=True)
class RegistrationResult:
    """One model version registered, and whether it took the alias."""

    name: str
    version: int
    promoted: bool
    previous_champion_version: int | None
    previous_metric: float | None
    alias: str = "champion"
    metric: str = "roc_auc"
    value: float = math.nan


def check_model_name(name: Any, argument: str = "name") -> str:
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise InvalidArgumentError(
            argument=argument,
            expected="a model name of letters, digits, '_', '.', '-' (starting with a letter, digit or '_')",
            found=repr(name),
        )
    return name


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or alias == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InvalidArgumentError(argument="alias", expected="letters, digits, '_', '-' (not 'latest' or 'v<n>')",
                                   found=repr(alias))
    return alias


def register_best(
    result: TrainingResult,
    name: str,
    *,
    alias: str = "champion",
    tags: dict[str, str],
    metric: str | None = None,
    greater_is_better: bool | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> RegistrationResult:
    """Register ``result``'s model as a new version of ``name``, tag it with the lineage ``tags``
    (feature view name/version, training dataset version, source feature group versions...) and
    its metrics, and move ``alias`` by the rule above. ``metric`` (default: the task's primary
    metric) and ``greater_is_better`` (default: from the metric) override the comparison. The
    registry is ``registry_uri``, default the one the training run used."""
    from engine.pipelines.training_config import primary_metric

    if not isinstance(result, TrainingResult):
        raise InvalidArgumentError(argument="result", expected="a TrainingResult from train()", found=type(result).__name__)
    metric = metric or primary_metric(result.task)
    if metric not in result.metrics:
        raise InvalidArgumentError(argument="metric", expected=f"one of the result's metrics {sorted(result.metrics)}",
                                   found=repr(metric))
    version_tags = {
        **check_tags(tags),
        **{f"baseline.{k}": repr(float(v)) for k, v in result.baseline_metrics.items()},
        "ff.family": result.family, "ff.run_id": result.run_id, "ff.features": ",".join(result.features)[:4000],
        "ff.label": result.label, "ff.task": result.task,
    }
    return register_version(
        result.model_uri, name, run_id=result.run_id, tags=version_tags, metrics=result.metrics, alias=alias,
        metric=metric, greater_is_better=greater_is_better,
        tracking_uri=tracking_uri or result.tracking_uri, registry_uri=registry_uri or result.registry_uri,
    )


def register_version(
    model_uri: str,
    name: str,
    *,
    run_id: str | None,
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    alias: str,
    metric: str,
    greater_is_better: bool | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> RegistrationResult:
    """Register ``model_uri`` as a new version of ``name`` with ``tags`` and ``metric.<name>`` tags,
    then apply the alias rule on ``metric``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from engine.pipelines._metrics import GREATER_IS_BETTER
    from engine.tracking import client, mlflow_uris, resolve_uris

    check_model_name(name)
    check_alias(alias)
    lineage = check_tags(tags)
    if greater_is_better is None:
        greater_is_better = GREATER_IS_BETTER.get(metric, True)
    value = float(metrics[metric]) if metric in metrics else math.nan

    uris = resolve_uris(tracking_uri, registry_uri)
    registry = client(*uris)
    previous_version, previous_metric = None, None
    try:
        champion = registry.get_model_version_by_alias(name, alias)
    except MlflowException as err:  # no such model (RESOURCE_DOES_NOT_EXIST) or alias (INVALID_PARAMETER_VALUE)
        if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise
        champion = None
    if champion is not None:
        previous_version = int(champion.version)
        previous_metric = _version_metric(registry, champion, metric)

    version_tags = {**lineage, **{f"metric.{k}": repr(float(v)) for k, v in metrics.items()}}
    with mlflow_uris(*uris):  # register_model resolves logged-model URIs through the fluent API
        version = mlflow.register_model(model_uri, name, tags=version_tags)
    if champion is None:
        promoted, reason = True, f"no version had alias {alias!r}"
    elif previous_metric is None:
        promoted, reason = False, f"version {previous_version} holds {alias!r} with no recorded {metric}"
    elif math.isnan(value):
        promoted, reason = False, f"this version has no {metric} to compare with version {previous_version}'s"
    else:
        better = value > previous_metric if greater_is_better else value < previous_metric
        promoted = better
        reason = (f"{metric} {value:.6f} {'beats' if better else 'does not beat'} version {previous_version}'s "
                  f"{previous_metric:.6f} ({'higher' if greater_is_better else 'lower'} is better)")
    if promoted:
        registry.set_registered_model_alias(name, alias, version.version)
    registry.set_model_version_tag(name, version.version, "ff.alias_decision",
                                   f"{'promoted' if promoted else 'kept'}: {reason}")
    log.info("Registered %s version %s; alias %r %s: %s", name, version.version, alias,
             "moved" if promoted else "unchanged", reason)
    return RegistrationResult(
        name=name, version=int(version.version), promoted=promoted, previous_champion_version=previous_version,
        previous_metric=previous_metric, alias=alias, metric=metric, value=value,
    )


def check_tags(tags: Mapping[str, str] | None, argument: str = "tags") -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise InvalidArgumentError(argument=argument, expected="a dict of str -> str", found=repr(tags))
    return dict(tags)


def _version_metric(registry: Any, version: Any, metric: str) -> float | None:
    """A version's validation metric: its ``metric.<name>`` tag, else its run's metric."""
    tagged = (version.tags or {}).get(f"metric.{metric}")
    if tagged is not None:
        try:
            return float(tagged)
        except ValueError:
            pass
    if version.run_id:
        try:
            value = registry.get_run(version.run_id).data.metrics.get(metric)
        except Exception:  # the run may live in another workspace or be gone
            value = None
        return None if value is None else float(value)
    return None
