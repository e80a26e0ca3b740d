"""The training pipeline: tune a model with hyperopt on Spark, track it in MLflow, register it.

::

    from engine.pipelines.training import load_training_config, register_best, train

    config = load_training_config("conf/training/demo_gbt.yaml")   # checked here, before anything runs
    result = train(spark, train_df, validation_df, features=[...], label="delayed",
                   config=config, experiment="flights_delay", tracking_uri=store.tracking_uri,
                   model_metadata={"feature_view": {"name": "flights", "version": 3}})
    reg = register_best(result, "flights_delay", tags={"feature_view": "flights", ...},
                        tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)

Tasks (``config.task``): ``binary``, ``multiclass`` and ``regression``, each with its metrics
(:mod:`engine.pipelines.training_config`). Features are numeric, boolean or STRING; STRING
features are encoded inside the logged model, so scoring needs no extra step.

How a search runs, by family:

* ``sklearn_*`` (gradient boosting, logistic regression, ridge): the train and validation sets are
  collected to the driver ONCE (at most ``max_driver_rows`` rows each, else an error suggesting a
  ``spark_*`` family), broadcast once, and ``hyperopt.fmin`` runs with
  ``SparkTrials(parallelism=..., spark_session=spark)``: each trial is one Spark task fitting one
  model on an executor (``threads_per_trial`` BLAS/OpenMP threads) and returns it pickled (up to
  64 MiB) with its metrics; the best trial's model is kept as it was fitted (the same rows, seed and
  parameters: a refit would repeat it), else -- larger, or another scikit-learn version than the
  driver's -- the best parameters are refitted on the driver. It is logged with
  ``mlflow.sklearn`` (pyfunc ``predict`` is ``predict_proba`` for classifiers, one column per
  class in ``classes`` order). On a Spark Connect session (no ``sparkContext``) the same trials
  run one at a time on the driver with ``hyperopt.Trials()`` instead (the log says so).
* ``spark_*`` (GBT, logistic and linear regression): for data too large for one executor. A Spark
  ML fit launches Spark jobs, which an executor task cannot do, so SparkTrials cannot run it;
  instead hyperopt uses driver-side ``Trials()`` and each trial is one distributed fit on the
  cached, assembled DataFrame. The best fitted model is logged with ``mlflow.spark`` as one
  PipelineModel on the raw feature columns (``engine.pipelines._spark_models``).

Every trial is logged as a nested MLflow run (params, metrics, duration) under one parent run,
from the driver, as trials finish (``engine.pipelines._trials``). The parent run holds the config,
dataset sizes, label statistics, the feature list, the trivial baseline's metrics, the best
parameters and validation metrics, and the model with signature, input example, the scoring
contract (``engine.pipelines._contract``) and ``model_metadata`` in its MLmodel metadata.

MLflow locations are given, never set for good: ``tracking_uri`` / ``registry_uri`` (default:
what MLflow already uses, else the embedded SQLite default; see :func:`engine.tracking.resolve_uris`);
the fluent calls run inside :func:`engine.tracking.mlflow_uris`, which restores the previous URIs.

Checks: the config, the columns and their types (features; the label for the task) before any
Spark job; label values (NULLs, classes) and the driver row limit by the first Spark jobs; all
before any MLflow run starts.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import ColumnNotFoundError, InvalidArgumentError, TrainingFailedError
from engine.pipelines._results import TrainingResult
from engine.pipelines.promotion import RegistrationResult, check_tags, register_best
from engine.pipelines.training_config import (
    ParamSpace,
    TrainingConfig,
    check_training_config,
    load_training_config,
    run_params,
    training_config,
)

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
    "run_params",
    "train",
    "training_config",
]

log = logging.getLogger(__name__)


def check_inputs(train: DataFrame, validation: DataFrame, features: list[str], label: str, task: str) -> dict[str, str]:
    """Schema checks (no Spark job); returns ``{feature: "double" | "string"}``."""
    from engine.pipelines._labels import check_label_type, feature_kinds

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
    kinds: dict[str, str] = {}
    for side, df in (("train", train), ("validation", validation)):
        types = dict(df.dtypes)
        for argument, columns in (("features", features), ("label", [label])):
            for column in columns:
                if column not in types:
                    raise ColumnNotFoundError(argument=argument, column=column, side=side, available=sorted(types))
        side_kinds = feature_kinds(types, list(features), side=side)
        if kinds and side_kinds != kinds:
            changed = next(f for f in features if side_kinds[f] != kinds[f])
            raise InvalidArgumentError(argument="validation", expected=f"column {changed!r} of the same kind as in train",
                                       found=f"{side_kinds[changed]} (train: {kinds[changed]})")
        kinds = side_kinds
        check_label_type(types[label], label=label, task=task, side=side)
    return kinds


def check_metadata(model_metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    metadata = dict(model_metadata or {})
    if "feature_factory" in metadata:
        raise InvalidArgumentError(argument="model_metadata", expected="keys other than 'feature_factory' (set by train)",
                                   found=sorted(metadata))
    try:
        json.dumps(metadata)
    except TypeError as err:
        raise InvalidArgumentError(argument="model_metadata", expected="JSON-serialisable values", found=str(err)) from None
    return metadata


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
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> TrainingResult:
    """Tune, fit and log a model of ``label`` from ``features`` for ``config.task``.

    ``train`` / ``validation``: Spark DataFrames holding the feature and label columns (split by
    time upstream). ``tags`` go on the parent run; ``model_metadata`` (e.g. the feature view
    reference) goes into the logged model's MLmodel metadata.
    """
    from engine.pipelines._labels import summarize_labels
    from engine.tracking import resolve_uris

    if not isinstance(config, TrainingConfig):
        raise InvalidArgumentError(argument="config", expected="a TrainingConfig (see load_training_config)",
                                   found=type(config).__name__)
    check_training_config(config)
    kinds = check_inputs(train, validation, features, label, config.task)
    features = list(features)
    run_tags = check_tags(tags, "tags")
    metadata = check_metadata(model_metadata)
    if not isinstance(experiment, str) or not experiment.strip():
        raise InvalidArgumentError(argument="experiment", expected="a non-empty experiment name", found=repr(experiment))
    if run_name is not None and not isinstance(run_name, str):
        raise InvalidArgumentError(argument="run_name", expected="a string or None", found=repr(run_name))
    uris = resolve_uris(tracking_uri, registry_uri)

    started = time.monotonic()
    summary = summarize_labels({"train": train, "validation": validation}, label=label, task=config.task)
    runner: _Runner
    args = {"features": features, "kinds": kinds, "label": label, "config": config, "summary": summary}
    if config.family.startswith("sklearn_"):
        from engine.pipelines._sklearn_run import SklearnRun

        runner = SklearnRun(spark, train, validation, **args)
    else:
        from engine.pipelines._spark_run import SparkRun

        runner = SparkRun(spark, train, validation, **args)
    try:
        runner.load()  # for sklearn: the one collection to the driver
        prepare_seconds = time.monotonic() - started
        log.info("Data checked%s in %.1fs", " and collected to the driver" if runner.flavor == "sklearn" else "",
                 prepare_seconds)
        return _tracked(runner, features=features, kinds=kinds, label=label, config=config, experiment=experiment,
                        run_name=run_name, tags=run_tags, metadata=metadata, uris=uris,
                        prepare_seconds=prepare_seconds)
    finally:
        runner.close()


class _Runner(Protocol):
    """One family kind's way through a run (``_sklearn_run.SklearnRun``, ``_spark_run.SparkRun``)."""

    flavor: str
    summary: dict[str, Any]
    model_source: str  # after finish: "trial" (the best trial's fit, kept) or "refit"
    output_description: str

    def load(self) -> None: ...  # sklearn: collect to the driver
    def new_trials(self) -> Any: ...
    def search(self, trials: Any, trial_log: TrialLogger) -> None: ...
    def finish(self, best: TrialRecord, fitted: Any) -> dict[str, float]: ...  # the best model + validation metrics
    def log_model(self, metadata: dict[str, Any]) -> str: ...  # -> model URI
    def close(self) -> None: ...


def _tracked(runner: _Runner, *, features: list[str], kinds: dict[str, str], label: str, config: TrainingConfig,
             experiment: str, run_name: str | None, tags: dict[str, str], metadata: dict[str, Any],
             uris: tuple[str, str], prepare_seconds: float) -> TrainingResult:
    import mlflow

    from engine.pipelines._contract import ModelContract
    from engine.pipelines._labels import run_stats
    from engine.pipelines._metrics import baseline_metrics
    from engine.pipelines._trials import TrialLogger
    from engine.pipelines.training_config import config_dict
    from engine.tracking import client, ensure_experiment, mlflow_uris

    mlflow_client = client(*uris)
    summary, task, metric = runner.summary, config.task, config.objective
    stats = {**run_stats(summary, task), "prepare_seconds": prepare_seconds}
    baseline = baseline_metrics(task, summary)
    classes = summary.get("classes")
    with mlflow_uris(*uris):
        experiment_id = ensure_experiment(experiment, mlflow_client=mlflow_client)
        nested = mlflow.active_run() is not None
        run_tags = {**tags, "ff.family": config.family, "ff.task": task, "ff.label": label, "ff.kind": "training"}
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags, nested=nested) as run:
            run_id = run.info.run_id
            log.info("Training %s (%s) on %d rows (validation %d), %d features; MLflow run %s", config.family, task,
                     stats["train_rows"], stats["validation_rows"], len(features), run_id)
            mlflow.log_params(run_params(config, features=features, label=label))
            mlflow.log_dict({"features": features, "input_types": kinds, "label": label, "classes": classes},
                            "features.json")
            mlflow.log_dict(config_dict(config), "training_config.json")
            mlflow.log_metrics({**stats, **{f"baseline_{k}": v for k, v in baseline.items()}})

            started = time.monotonic()
            trials = runner.new_trials()
            trial_log = TrialLogger(trials, experiment_id=experiment_id, parent_run_id=run_id, total=config.max_evals,
                                    metric=metric, client=mlflow_client, tags={"ff.family": config.family})
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
                     metric, best.metrics[metric], failed)

            started = time.monotonic()
            metrics = runner.finish(best, trial_log.fitted(best))
            refit_seconds = time.monotonic() - started
            log.info("Best model ready in %.1fs; logging it to MLflow", refit_seconds)
            from engine.pipelines._spark_models import PREDICTION, PROBABILITY

            contract = ModelContract(
                flavor=runner.flavor, task=task, features=tuple(features), input_types=kinds, label=label,
                classes=classes, spark_prediction=PREDICTION if runner.flavor == "spark" else None,
                spark_probability=PROBABILITY if runner.flavor == "spark" and task != "regression" else None,
                extra={"family": config.family, "output": runner.output_description, "training_run_id": run_id},
            )
            started = time.monotonic()
            model_uri = runner.log_model({"feature_factory": contract.to_metadata(), **metadata})
            log_model_seconds = time.monotonic() - started
            from engine.redaction import redact

            mlflow.log_params(redact({f"best.{k}": v for k, v in best.params.items()}))
            mlflow.log_metrics({**metrics, "tuning_seconds": tuning_seconds, "refit_seconds": refit_seconds,
                                "log_model_seconds": log_model_seconds, "best_trial": best.number,
                                "n_trials_ok": len(trial_log.records) - failed, "n_trials_failed": failed})
            mlflow.set_tags({"ff.best_trial_run_id": best.run_id, "ff.model_uri": model_uri,
                             "ff.model_source": runner.model_source})
    log.info("Validation %s; baseline %s; model %s (logged in %.1fs)", _fmt(metrics), _fmt(baseline), model_uri,
             log_model_seconds)
    return TrainingResult(
        run_id=run_id, experiment_id=experiment_id, model_uri=model_uri, family=config.family, metric=metric,
        best_params=dict(best.params), metrics=metrics, baseline_metrics=baseline, features=tuple(features),
        label=label, train_rows=int(stats["train_rows"]), validation_rows=int(stats["validation_rows"]),
        train_positive_rate=float(summary.get("train_positive_rate", math.nan)),
        trials=tuple(sorted(trial_log.records, key=lambda r: r.number)), best_trial=best.number,
        tuning_seconds=tuning_seconds, task=task, classes=None if classes is None else tuple(classes),
        tracking_uri=uris[0], registry_uri=uris[1],
    )


def _fmt(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
