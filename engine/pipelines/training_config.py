"""Training configs (``conf/training/*.yaml``): the task, the model family, the search, checked.

::

    task: multiclass          # binary (default) | multiclass | regression
    family: sklearn_gbt       # see FAMILY_TASKS
    metric: log_loss          # what hyperopt optimises; default: the task's primary metric
    search_space: {learning_rate: {dist: loguniform, low: 0.01, high: 0.3}}

Metrics per task (both are computed on validation and logged; the first is the *primary* metric,
the one the champion alias is decided on, see :mod:`engine.pipelines.promotion`):

* ``binary``: ``roc_auc`` (higher is better), ``log_loss``;
* ``multiclass``: ``f1_macro`` (higher is better), ``log_loss``;
* ``regression``: ``rmse`` (lower is better), ``mae``.

Checking needs no Spark, MLflow or hyperopt: a config that cannot run fails before anything starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from engine.config import from_mapping, load_yaml
from engine.errors import ConfigError
from engine.pipelines._metrics import GREATER_IS_BETTER, TASK_METRICS
from engine.pipelines._models import FAMILIES, FAMILY_TASKS, accepted_params
from engine.pipelines._search_space import ParamSpace, check_param_space
from engine.redaction import redact

__all__ = [
    "GREATER_IS_BETTER",
    "TASKS",
    "TASK_METRICS",
    "ParamSpace",
    "TrainingConfig",
    "check_training_config",
    "load_training_config",
    "primary_metric",
    "run_params",
    "training_config",
]

Task = Literal["binary", "multiclass", "regression"]
Family = Literal["sklearn_gbt", "sklearn_logreg", "sklearn_linear", "spark_gbt", "spark_logreg", "spark_linear"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")


def primary_metric(task: str) -> str:
    """The metric a task's champion is chosen on: roc_auc, f1_macro or rmse."""
    return TASK_METRICS[task][0]


@dataclass(frozen=True)
class TrainingConfig:
    """One training run (``conf/training/*.yaml``). See the module docstring for tasks and metrics."""

    family: Family
    search_space: dict[str, ParamSpace]
    task: Task = "binary"
    params: dict[str, Any] = field(default_factory=dict)  # fixed estimator params, not tuned
    max_evals: int = 8
    parallelism: int = 2  # concurrent trials (SparkTrials); sklearn families only
    metric: str | None = None  # what hyperopt optimises; None: the task's primary metric
    seed: int = 42
    algo: Literal["tpe", "random"] = "tpe"
    threads_per_trial: int = 1  # BLAS/OpenMP threads per sklearn trial (parallelism x threads <= cores)
    max_driver_rows: int = 2_000_000  # per data set, sklearn families (collected to the driver)
    timeout: timedelta | None = None  # stop launching trials after this long

    @property
    def objective(self) -> str:
        """The metric hyperopt optimises: ``metric``, else the task's primary metric."""
        return self.metric if self.metric is not None else primary_metric(self.task)


def training_config(data: Mapping[str, Any], *, source: str = "config") -> TrainingConfig:
    """A checked :class:`TrainingConfig` from a mapping (parsed YAML)."""
    config = from_mapping(TrainingConfig, data, source=source)
    check_training_config(config, source=source)
    return config


def load_training_config(path: str | Path) -> TrainingConfig:
    """Read and check ``conf/training/<name>.yaml`` (or any path)."""
    return training_config(load_yaml(path), source=str(path))


def check_training_config(config: TrainingConfig, *, source: str = "config") -> None:
    """Raise :class:`ConfigError` naming the key (and for parameters, the parameter and the family)
    unless the config can run. Needs no Spark, MLflow or hyperopt."""
    if config.task not in TASKS:
        raise ConfigError(source=source, key="task", expected=f"one of {list(TASKS)}", found=repr(config.task))
    if config.family not in FAMILIES:
        raise ConfigError(source=source, key="family", expected=f"one of {list(FAMILIES)}", found=repr(config.family))
    if config.task not in FAMILY_TASKS[config.family]:
        fits = [f for f in FAMILIES if config.task in FAMILY_TASKS[f]]
        raise ConfigError(source=source, key="family", expected=f"a family for task {config.task!r}: one of {fits}",
                          found=repr(config.family), family=config.family, task=config.task)
    if config.metric is not None and config.metric not in TASK_METRICS[config.task]:
        raise ConfigError(source=source, key="metric", expected=f"one of {list(TASK_METRICS[config.task])} "
                          f"for task {config.task!r} (or none: the primary metric)", found=repr(config.metric))
    for key in ("max_evals", "parallelism", "threads_per_trial", "max_driver_rows"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(source=source, key=key, expected="an integer >= 1", found=repr(value))
    if config.timeout is not None and config.timeout <= timedelta(0):
        raise ConfigError(source=source, key="timeout", expected="a positive duration", found=str(config.timeout))
    if not config.search_space:
        raise ConfigError(source=source, key="search_space", expected="at least one parameter to tune",
                          found="an empty search space", hint="Fixed values go under `params`.")
    accepted = accepted_params(config.family, config.task)
    for section, names in (("search_space", config.search_space), ("params", config.params)):
        for name in names:
            if name not in accepted:
                raise ConfigError(
                    source=source, key=f"{section}.{name}",
                    expected=f"a parameter of model family {config.family!r}: one of {sorted(accepted)}",
                    found=repr(name), parameter=name, family=config.family,
                    hint="random_state/seed come from the config's `seed`." if name in ("random_state", "seed") else "",
                )
    both = sorted(set(config.search_space) & set(config.params))
    if both:
        raise ConfigError(source=source, key=f"params.{both[0]}", expected="a parameter either tuned or fixed",
                          found="both in search_space and params", parameter=both[0], family=config.family)
    for name, space in config.search_space.items():
        if not isinstance(space, ParamSpace):
            raise ConfigError(source=source, key=f"search_space.{name}", expected="a ParamSpace",
                              found=type(space).__name__, parameter=name)
        check_param_space(name, space, source=source, key=f"search_space.{name}")


def run_params(config: TrainingConfig, *, features: list[str], label: str) -> dict[str, Any]:
    """The parent run's MLflow params; values of secret-named keys (``api_token``...) are redacted."""
    return redact({
        "task": config.task, "family": config.family, "max_evals": config.max_evals,
        "parallelism": config.parallelism, "metric": config.objective, "seed": config.seed, "algo": config.algo,
        "label": label, "n_features": len(features), "threads_per_trial": config.threads_per_trial,
        "features": _joined(features),
        **{f"fixed.{k}": v for k, v in config.params.items()},
    })


def config_dict(config: TrainingConfig) -> dict[str, Any]:
    """The config as JSON-ready data (for the run's ``training_config.json``), secrets redacted."""
    data = asdict(config)
    data["timeout"] = None if config.timeout is None else config.timeout.total_seconds()
    return redact(data)


def _joined(features: list[str], limit: int = 6000) -> str:
    text = ",".join(features)
    return text if len(text) <= limit else f"{len(features)} features: see features.json"
