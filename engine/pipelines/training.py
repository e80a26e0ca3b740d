"""The training pipeline: tune a model with hyperopt on Spark, track it in MLflow, register it.

::

    from engine.pipelines.training import load_training_config, register_best, train

    config = load_training_config("conf/training/demo_gbt.yaml")   # checked here, before anything runs
    result = train(spark, train_df, validation_df, features=[...], label="delayed",
                   config=config, experiment="flights_delay",
                   model_metadata={"feature_view": {"name": "flights", "version": 3}})
    reg = register_best(result, "flights_delay", tags={"feature_view": "flights", ...})

How a search runs, by family:

* ``sklearn_gbt`` (HistGradientBoostingClassifier) / ``sklearn_logreg`` (median imputation ->
  standard scaling -> LogisticRegression): the train and validation sets are collected to the driver
  ONCE (at most ``max_driver_rows`` rows each, else an error suggesting a ``spark_*`` family),
  broadcast once, and ``hyperopt.fmin`` runs with ``SparkTrials(parallelism=..., spark_session=spark)``:
  each trial is one Spark task fitting one model on an executor (``threads_per_trial`` BLAS/OpenMP
  threads). The best parameters are refitted on the driver and logged with ``mlflow.sklearn``
  (pyfunc ``predict`` returns ``predict_proba``: column 1 is P(label = 1)).
* ``spark_gbt`` (GBTClassifier) / ``spark_logreg`` (LogisticRegression): for data too large for one
  executor. A Spark ML fit launches Spark jobs, which an executor task cannot do, so SparkTrials
  cannot run it; instead hyperopt uses driver-side ``Trials()`` and each trial is one distributed fit
  on the cached, assembled DataFrame (trials run one after another; ``parallelism`` is not used).
  The preprocessing (cast to double, median imputation, vector assembly) is fitted once. The best
  fitted model is logged with ``mlflow.spark`` as one PipelineModel whose ``prediction`` column is
  the probability vector ``[P(0), P(1)]``.

Either way every trial is logged as a nested MLflow run (params, metrics, duration) under one parent
run, from the driver, as trials finish (see ``engine.pipelines._trials``). The parent run holds the
config, dataset sizes, label positive rates, the feature list, the trivial baseline's metrics (always
predict the train positive rate), the best parameters and validation metrics, and the model with
signature, input example and ``model_metadata`` in its MLmodel metadata.

Checks: the config, the columns and their types are checked before any Spark job; label values
(0/1, no NULLs, both classes) and the driver row limit by the first Spark job; all before any MLflow
run starts.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from engine.config import from_mapping, load_yaml
from engine.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    ConfigError,
    InvalidArgumentError,
    TrainingFailedError,
)
from engine.pipelines._models import FAMILIES, SKLEARN_FAMILIES, accepted_params
from engine.pipelines._search_space import ParamSpace, check_param_space
from engine.redaction import redact

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.pipelines._trials import TrialLogger, TrialRecord

__all__ = [
    "ParamSpace",
    "RegistrationResult",
    "TrainingConfig",
    "TrainingResult",
    "check_training_config",
    "load_training_config",
    "register_best",
    "train",
    "training_config",
]

log = logging.getLogger(__name__)

Family = Literal["sklearn_gbt", "sklearn_logreg", "spark_gbt", "spark_logreg"]
Metric = Literal["roc_auc", "log_loss"]
GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False}
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,255}")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,255}")
_NUMERIC = re.compile(r"(tinyint|smallint|int|bigint|float|double|boolean|decimal\(\d+,\s*\d+\))")


@dataclass(frozen=True)
class TrainingConfig:
    """One training run (``conf/training/*.yaml``). See the module docstring for the families."""

    family: Family
    search_space: dict[str, ParamSpace]
    params: dict[str, Any] = field(default_factory=dict)  # fixed estimator params, not tuned
    max_evals: int = 8
    parallelism: int = 2  # concurrent trials (SparkTrials); sklearn families only
    metric: Metric = "roc_auc"  # what hyperopt optimises; roc_auc and log_loss are both logged
    seed: int = 42
    algo: Literal["tpe", "random"] = "tpe"
    threads_per_trial: int = 1  # BLAS/OpenMP threads per sklearn trial (parallelism x threads <= cores)
    max_driver_rows: int = 2_000_000  # per data set, sklearn families (collected to the driver)
    timeout: timedelta | None = None  # stop launching trials after this long


@dataclass(frozen=True)
class TrainingResult:
    """What :func:`train` did: the parent run, the logged model, the best params and metrics."""

    run_id: str
    experiment_id: str
    model_uri: str
    family: str
    metric: str
    best_params: dict[str, Any]
    metrics: dict[str, float]  # validation: roc_auc, log_loss
    baseline_metrics: dict[str, float]  # validation, always predicting the train positive rate
    features: tuple[str, ...]
    label: str
    train_rows: int
    validation_rows: int
    train_positive_rate: float
    trials: tuple[TrialRecord, ...]
    best_trial: int
    tuning_seconds: float


@dataclass(frozen=True)
class RegistrationResult:
    """One model version registered by :func:`register_best`, and whether it took the alias."""

    name: str
    version: int
    promoted: bool
    previous_champion_version: int | None
    previous_metric: float | None
    alias: str = "champion"
    metric: str = "roc_auc"
    value: float = math.nan


# ---------------------------------------------------------------------------------------------
# config


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
    if config.family not in FAMILIES:
        raise ConfigError(source=source, key="family", expected=f"one of {list(FAMILIES)}", found=repr(config.family))
    if config.metric not in GREATER_IS_BETTER:
        raise ConfigError(source=source, key="metric", expected=f"one of {list(GREATER_IS_BETTER)}",
                          found=repr(config.metric))
    for key in ("max_evals", "parallelism", "threads_per_trial", "max_driver_rows"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(source=source, key=key, expected="an integer >= 1", found=repr(value))
    if config.timeout is not None and config.timeout <= timedelta(0):
        raise ConfigError(source=source, key="timeout", expected="a positive duration", found=str(config.timeout))
    if not config.search_space:
        raise ConfigError(source=source, key="search_space", expected="at least one parameter to tune",
                          found="an empty search space", hint="Fixed values go under `params`.")
    accepted = accepted_params(config.family)
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


# ---------------------------------------------------------------------------------------------
# argument checks (schema only: no Spark job)


def _check_inputs(train: DataFrame, validation: DataFrame, features: list[str], label: str) -> list[str]:
    if isinstance(features, str) or not isinstance(features, (list, tuple)) or not features:
        raise InvalidArgumentError(argument="features", expected="a non-empty list of column names", found=repr(features))
    if not all(isinstance(f, str) for f in features):
        raise InvalidArgumentError(argument="features", expected="column names (str)", found=repr(features))
    duplicates = sorted({f for f in features if list(features).count(f) > 1})
    if duplicates:
        raise InvalidArgumentError(argument="features", expected="distinct column names", found=f"duplicates {duplicates}")
    if not isinstance(label, str):
        raise InvalidArgumentError(argument="label", expected="a column name", found=repr(label))
    if label in features:
        raise InvalidArgumentError(argument="features", expected="feature columns without the label",
                                   found=f"the label {label!r} among them")
    for side, df in (("train", train), ("validation", validation)):
        types = dict(df.dtypes)
        for argument, columns in (("features", features), ("label", [label])):
            for column in columns:
                if column not in types:
                    raise ColumnNotFoundError(argument=argument, column=column, side=side, available=sorted(types))
                if not _NUMERIC.fullmatch(types[column]):
                    raise ColumnTypeError(
                        argument=argument, column=column, expected="numeric or boolean",
                        found=f"{types[column]} in {side}", hint="Encode it as numbers first.",
                    )
    return list(features)


def _check_tags(tags: Mapping[str, str] | None, argument: str) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise InvalidArgumentError(argument=argument, expected="a dict of str -> str", found=repr(tags))
    return dict(tags)


def _check_metadata(model_metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    metadata = dict(model_metadata or {})
    if "feature_factory" in metadata:
        raise InvalidArgumentError(argument="model_metadata", expected="keys other than 'feature_factory' (set by train)",
                                   found=sorted(metadata))
    try:
        json.dumps(metadata)
    except TypeError as err:
        raise InvalidArgumentError(argument="model_metadata", expected="JSON-serialisable values", found=str(err)) from None
    return metadata


# ---------------------------------------------------------------------------------------------
# train


def train(
    spark: SparkSession,
    train: DataFrame,
    validation: DataFrame,
    *,
    features: list[str],
    label: str,
    config: TrainingConfig,
    experiment: str,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    model_metadata: dict[str, Any] | None = None,
) -> TrainingResult:
    """Tune, fit and log a binary classifier of ``label`` (0/1 or boolean) from ``features``.

    ``train`` / ``validation``: Spark DataFrames holding the feature and label columns (split by
    time upstream). ``tags`` go on the parent run; ``model_metadata`` (e.g. the feature view
    reference) goes into the logged model's MLmodel metadata. Uses the current MLflow tracking URI,
    or the embedded SQLite default if none was chosen (:func:`engine.tracking.ensure_tracking`).
    """
    if not isinstance(config, TrainingConfig):
        raise InvalidArgumentError(argument="config", expected="a TrainingConfig (see load_training_config)",
                                   found=type(config).__name__)
    check_training_config(config)
    features = _check_inputs(train, validation, features, label)
    run_tags = _check_tags(tags, "tags")
    metadata = _check_metadata(model_metadata)
    if not isinstance(experiment, str) or not experiment.strip():
        raise InvalidArgumentError(argument="experiment", expected="a non-empty experiment name", found=repr(experiment))
    if run_name is not None and not isinstance(run_name, str):
        raise InvalidArgumentError(argument="run_name", expected="a string or None", found=repr(run_name))

    runner: _Runner
    if config.family in SKLEARN_FAMILIES:
        from engine.pipelines._sklearn_run import SklearnRun

        runner = SklearnRun(spark, train, validation, features=features, label=label, config=config)
    else:
        from engine.pipelines._spark_run import SparkRun

        runner = SparkRun(spark, train, validation, features=features, label=label, config=config)
    try:
        started = time.monotonic()
        runner.load()  # Spark jobs: label checks, sizes (and for sklearn the one collection)
        runner.stats["prepare_seconds"] = time.monotonic() - started
        log.info("Data checked%s in %.1fs", " and collected to the driver" if config.family in SKLEARN_FAMILIES else "",
                 runner.stats["prepare_seconds"])
        return _tracked(runner, features=features, label=label, config=config, experiment=experiment,
                        run_name=run_name, tags=run_tags, metadata=metadata)
    finally:
        runner.close()


class _Runner(Protocol):
    """One family kind's way through a run (``_sklearn_run.SklearnRun``, ``_spark_run.SparkRun``)."""

    stats: dict[str, float]  # train/validation rows and positive rates, set by load()
    output_description: str

    def load(self) -> None: ...  # Spark jobs that check labels (and collect, for sklearn)
    def new_trials(self) -> Any: ...
    def search(self, trials: Any, trial_log: TrialLogger) -> None: ...
    def finish(self, best: TrialRecord) -> dict[str, float]: ...  # the best model + validation metrics
    def log_model(self, metadata: dict[str, Any]) -> str: ...  # -> model URI
    def close(self) -> None: ...


def _tracked(runner: _Runner, *, features: list[str], label: str, config: TrainingConfig, experiment: str,
             run_name: str | None, tags: dict[str, str], metadata: dict[str, Any]) -> TrainingResult:
    import mlflow

    from engine.pipelines._models import baseline_metrics
    from engine.pipelines._trials import TrialLogger
    from engine.tracking import ensure_experiment, ensure_tracking

    ensure_tracking()
    experiment_id = ensure_experiment(experiment)
    stats = runner.stats
    baseline = baseline_metrics(stats["train_positive_rate"], stats["validation_positive_rate"])
    nested = mlflow.active_run() is not None
    run_tags = {**tags, "ff.family": config.family, "ff.label": label, "ff.kind": "training"}
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags, nested=nested) as run:
        run_id = run.info.run_id
        log.info("Training %s on %d rows (validation %d), %d features; MLflow run %s", config.family,
                 stats["train_rows"], stats["validation_rows"], len(features), run_id)
        mlflow.log_params(run_params(config, features=features, label=label))
        mlflow.log_dict({"features": features, "label": label}, "features.json")
        mlflow.log_dict(redact(_config_dict(config)), "training_config.json")
        mlflow.log_metrics({**{k: float(v) for k, v in stats.items()}, **{f"baseline_{k}": v for k, v in baseline.items()}})

        started = time.monotonic()
        trials = runner.new_trials()
        trial_log = TrialLogger(trials, experiment_id=experiment_id, parent_run_id=run_id, total=config.max_evals,
                                metric=config.metric, tags={"ff.family": config.family})
        try:
            runner.search(trials, trial_log)
        finally:
            trial_log.flush()
        tuning_seconds = time.monotonic() - started
        best = trial_log.best()
        if best is None:
            first = next((r.error for r in trial_log.records if r.error), "no trial finished")
            raise TrainingFailedError(family=config.family, trials=len(trial_log.records), first_error=first)
        failed = sum(r.status != "ok" for r in trial_log.records)
        log.info("Search done in %.1fs: best trial %d %s=%.4f (%d failed)", tuning_seconds, best.number,
                 config.metric, best.metrics[config.metric], failed)

        started = time.monotonic()
        metrics = runner.finish(best)
        refit_seconds = time.monotonic() - started
        log.info("Best model ready in %.1fs; logging it to MLflow", refit_seconds)
        model_meta = {
            "feature_factory": {
                "family": config.family, "features": features, "label": label, "positive_class": 1,
                "output": runner.output_description, "training_run_id": run_id,
            },
            **metadata,
        }
        started = time.monotonic()
        model_uri = runner.log_model(model_meta)
        log_model_seconds = time.monotonic() - started
        mlflow.log_params(redact({f"best.{k}": v for k, v in best.params.items()}))
        mlflow.log_metrics({**metrics, "tuning_seconds": tuning_seconds, "refit_seconds": refit_seconds,
                            "log_model_seconds": log_model_seconds, "best_trial": best.number,
                            "n_trials_ok": len(trial_log.records) - failed, "n_trials_failed": failed})
        mlflow.set_tags({"ff.best_trial_run_id": best.run_id, "ff.model_uri": model_uri})
    log.info("Validation %s; baseline %s; model %s (logged in %.1fs)", _fmt(metrics), _fmt(baseline), model_uri,
             log_model_seconds)
    return TrainingResult(
        run_id=run_id, experiment_id=experiment_id, model_uri=model_uri, family=config.family, metric=config.metric,
        best_params=dict(best.params), metrics=metrics, baseline_metrics=baseline, features=tuple(features),
        label=label, train_rows=int(stats["train_rows"]), validation_rows=int(stats["validation_rows"]),
        train_positive_rate=float(stats["train_positive_rate"]),
        trials=tuple(sorted(trial_log.records, key=lambda r: r.number)),
        best_trial=best.number, tuning_seconds=tuning_seconds,
    )


def run_params(config: TrainingConfig, *, features: list[str], label: str) -> dict[str, Any]:
    """The parent run's MLflow params; values of secret-named keys (``api_token``...) are redacted."""
    return redact({
        "family": config.family, "max_evals": config.max_evals, "parallelism": config.parallelism,
        "metric": config.metric, "seed": config.seed, "algo": config.algo, "label": label,
        "n_features": len(features), "threads_per_trial": config.threads_per_trial,
        "features": _joined(features),
        **{f"fixed.{k}": v for k, v in config.params.items()},
    })


def _config_dict(config: TrainingConfig) -> dict[str, Any]:
    data = asdict(config)
    data["timeout"] = None if config.timeout is None else config.timeout.total_seconds()
    return data


def _joined(features: list[str], limit: int = 6000) -> str:
    text = ",".join(features)
    return text if len(text) <= limit else f"{len(features)} features: see features.json"


def _fmt(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())


def fmin_kwargs(config: TrainingConfig, trial_log: Any) -> dict[str, Any]:
    """Arguments of ``hyperopt.fmin`` shared by both runners."""
    import numpy as np
    from hyperopt import rand, tpe

    from engine.pipelines._search_space import to_hyperopt

    return {
        "space": to_hyperopt(config.search_space),
        "algo": tpe.suggest if config.algo == "tpe" else rand.suggest,
        "max_evals": config.max_evals,
        "rstate": np.random.default_rng(config.seed),
        "timeout": None if config.timeout is None else config.timeout.total_seconds(),
        "show_progressbar": trial_log.progress,
        "verbose": True,  # hyperopt reports progress only when verbose
        "return_argmin": False,
    }


# ---------------------------------------------------------------------------------------------
# registry


def register_best(
    result: TrainingResult,
    name: str,
    *,
    alias: str = "champion",
    tags: dict[str, str],
    metric: str = "roc_auc",
    greater_is_better: bool = True,
) -> RegistrationResult:
    """Register ``result``'s model as a new version of ``name``, tag it with the lineage ``tags``
    (feature view name/version, training dataset version, source feature group versions...) and
    its metrics, and move ``alias`` to it only if it beats the current alias holder's validation
    ``metric`` (strictly: ties do not promote). With no alias holder yet, the new version gets it;
    a holder whose metric is unknown keeps it (nothing to compare against)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from engine.tracking import ensure_tracking

    if not isinstance(result, TrainingResult):
        raise InvalidArgumentError(argument="result", expected="a TrainingResult from train()", found=type(result).__name__)
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise InvalidArgumentError(
            argument="name", expected="a model name of letters, digits, '_', '.', '-' (starting with a letter, digit or '_')",
            found=repr(name),
        )
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or alias == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InvalidArgumentError(argument="alias", expected="letters, digits, '_', '-' (not 'latest' or 'v<n>')",
                                   found=repr(alias))
    lineage = _check_tags(tags, "tags")
    if metric not in result.metrics:
        raise InvalidArgumentError(argument="metric", expected=f"one of the result's metrics {sorted(result.metrics)}",
                                   found=repr(metric))
    value = float(result.metrics[metric])

    ensure_tracking()
    client = MlflowClient()
    previous_version, previous_metric = None, None
    try:
        champion = client.get_model_version_by_alias(name, alias)
    except MlflowException as err:  # no such model (RESOURCE_DOES_NOT_EXIST) or alias (INVALID_PARAMETER_VALUE)
        if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise
        champion = None
    if champion is not None:
        previous_version = int(champion.version)
        previous_metric = _version_metric(client, champion, metric)

    version_tags = {
        **lineage,
        **{f"metric.{k}": repr(float(v)) for k, v in result.metrics.items()},
        **{f"baseline.{k}": repr(float(v)) for k, v in result.baseline_metrics.items()},
        "ff.family": result.family, "ff.run_id": result.run_id, "ff.features": ",".join(result.features)[:4000],
        "ff.label": result.label,
    }
    import mlflow

    version = mlflow.register_model(result.model_uri, name, tags=version_tags)
    if champion is None:
        promoted, reason = True, f"no version had alias {alias!r}"
    elif previous_metric is None:
        promoted, reason = False, f"version {previous_version} holds {alias!r} with no recorded {metric}"
    else:
        better = value > previous_metric if greater_is_better else value < previous_metric
        promoted = better
        reason = (f"{metric} {value:.6f} {'beats' if better else 'does not beat'} version {previous_version}'s "
                  f"{previous_metric:.6f} ({'higher' if greater_is_better else 'lower'} is better)")
    if promoted:
        client.set_registered_model_alias(name, alias, version.version)
    client.set_model_version_tag(name, version.version, "ff.alias_decision", f"{'promoted' if promoted else 'kept'}: {reason}")
    log.info("Registered %s version %s; alias %r %s: %s", name, version.version, alias,
             "moved" if promoted else "unchanged", reason)
    return RegistrationResult(
        name=name, version=int(version.version), promoted=promoted, previous_champion_version=previous_version,
        previous_metric=previous_metric, alias=alias, metric=metric, value=value,
    )


def _version_metric(client: Any, version: Any, metric: str) -> float | None:
    """A version's validation metric: its ``metric.<name>`` tag, else its run's metric."""
    tagged = (version.tags or {}).get(f"metric.{metric}")
    if tagged is not None:
        try:
            return float(tagged)
        except ValueError:
            pass
    if version.run_id:
        try:
            value = client.get_run(version.run_id).data.metrics.get(metric)
        except Exception:  # the run may live in another workspace or be gone
            value = None
        return None if value is None else float(value)
    return None
