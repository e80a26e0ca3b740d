"""One sklearn_* training run: collect once, broadcast once, SparkTrials, keep the best trial's model.

On a Spark Connect session (no ``sparkContext``: no broadcast, no ``SparkTrials``) the trials
run on the driver with ``hyperopt.Trials()``, one after another: the data is already on the
driver (bounded by ``max_driver_rows``) and each trial fits one small model, so this costs only
the trial-level parallelism; the log says which of the two ran.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from engine.pipelines._trials import TrialLogger, TrialRecord
    from engine.pipelines.training_config import TrainingConfig

log = logging.getLogger(__name__)


class SklearnRun:
    flavor = "sklearn"

    def __init__(self, spark: SparkSession, train: DataFrame, validation: DataFrame, *, features: list[str],
                 kinds: dict[str, str], label: str, config: TrainingConfig, summary: dict[str, Any]) -> None:
        self.spark = spark
        self.frames = {"train": train, "validation": validation}
        self.features = features
        self.kinds = kinds
        self.categorical = [f for f in features if kinds[f] == "string"]
        self.numeric = [f for f in features if kinds[f] != "string"]
        self.label = label
        self.config = config
        self.summary = summary
        self.classes = summary.get("classes")
        self.model: Any = None
        self.model_source = "trial"  # or "refit": the logged model is the best trial's fit, or refitted

    @property
    def output_description(self) -> str:
        if self.config.task == "regression":
            return "pyfunc predict = the predicted value per row"
        return f"pyfunc predict = predict_proba: one probability per class {self.classes} per row"

    def load(self) -> None:
        """Collect both sets to the driver once (bounded by ``max_driver_rows``)."""
        (self.x_train, self.y_train), (self.x_val, self.y_val) = (
            self._collect(side, df) for side, df in self.frames.items()
        )

    def _collect(self, side: str, df: DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        limit = self.config.max_driver_rows
        columns = model_inputs(self.features, self.kinds)
        columns.append(_label_column(self.label, self.config.task))
        table = df.select(*columns).limit(limit + 1).toArrow()  # Arrow whatever the session's settings
        if table.num_rows > limit:
            from engine.pipelines._models import FAMILY_TASKS, SPARK_FAMILIES

            distributed = [f for f in SPARK_FAMILIES if self.config.task in FAMILY_TASKS[f]]
            raise InvalidArgumentError(
                argument=side, expected=f"at most {limit} rows for model family {self.config.family!r} "
                "(collected to the driver; config key `max_driver_rows`)", found=f"more than {limit} rows",
                hint=f"Use model family {' or '.join(map(repr, distributed))} (a distributed fit), or sample the data.",
            )
        # rows in the order of their values, not Spark's (which follows the partitioning): an
        # estimator that splits or shuffles by position (early stopping's validation split, SGD)
        # gets the same model from the same rows however the plan that produced them ran
        table = table.sort_by([(name, "ascending") for name in table.column_names])
        frame = table.to_pandas()
        y = frame.pop("__ff_label").to_numpy()
        return input_frame(frame, self.kinds), y

    @property
    def on_driver(self) -> bool:
        """Trials on the driver (Spark Connect) rather than as Spark tasks (SparkTrials)."""
        from engine.remote import is_remote

        return is_remote(self.spark)

    def new_trials(self) -> Any:
        if self.on_driver:
            from hyperopt import Trials

            return Trials()
        from hyperopt import SparkTrials

        return SparkTrials(parallelism=self.config.parallelism, spark_session=self.spark)

    def search(self, trials: Any, trial_log: TrialLogger) -> None:
        from hyperopt import fmin
        from hyperopt.exceptions import AllTrialsFailed

        from engine.pipelines._models import sklearn_trial
        from engine.pipelines._search_space import fmin_kwargs, quick_polling

        config = self.config
        arrays = (self.x_train, self.y_train, self.x_val, self.y_val)
        data = _OnDriver(arrays) if self.on_driver else self.spark.sparkContext.broadcast(arrays)
        objective = functools.partial(
            sklearn_trial, data=data, family=config.family, fixed=dict(config.params), seed=config.seed,
            metric=config.objective, threads=config.threads_per_trial, task=config.task, classes=self.classes,
            categorical=self.categorical, numeric=self.numeric,
        )
        if self.on_driver:
            log.info("hyperopt: %d trials, one at a time on the driver (hyperopt.Trials; Spark Connect session: "
                     "no SparkTrials, parallelism %d not used)", config.max_evals, config.parallelism)
        else:
            log.info("hyperopt: %d trials, %d at a time on Spark executors (SparkTrials)", config.max_evals,
                     config.parallelism)
        try:
            with contextlib.nullcontext() if self.on_driver else quick_polling():
                fmin(objective, trials=trials, **fmin_kwargs(config, trial_log))
        except AllTrialsFailed:
            pass  # reported by the caller with the trials' errors
        finally:
            data.unpersist()

    def finish(self, best: TrialRecord, fitted: Any) -> dict[str, float]:
        """The best trial's model as its trial fitted it (``fitted``: the result of
        :func:`~engine.pipelines._models.fitted_model`), else the best parameters refitted on the
        whole train set (driver, all cores); validation metrics."""
        from engine.pipelines._metrics import task_metrics
        from engine.pipelines._models import build_sklearn, sklearn_output, unpickled_model

        config = self.config
        self.model = unpickled_model(fitted)
        if self.model is None:
            log.info("refitting trial %d's parameters on the driver (its fitted model did not come back)", best.number)
            self.model = build_sklearn(config.family, {**config.params, **best.params}, seed=config.seed,
                                       task=config.task, categorical=self.categorical, numeric=self.numeric)
            self.model.fit(self.x_train, self.y_train)
            self.model_source = "refit"
        else:
            log.info("kept trial %d's fitted model (no refit)", best.number)
            self.model_source = "trial"
        return task_metrics(config.task, self.y_val, sklearn_output(self.model, self.x_val, config.task), self.classes)

    def log_model(self, metadata: dict[str, Any]) -> str:
        return log_sklearn(self.model, self.x_val.head(5).reset_index(drop=True), task=self.config.task,
                           metadata=metadata)

    def close(self) -> None:
        pass


class _OnDriver:
    """The training arrays for driver-side trials, with a Broadcast's ``value``/``unpersist``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def unpersist(self) -> None:
        self.value = None


def model_inputs(features: list[str], kinds: dict[str, str]) -> list[Any]:
    """The feature columns as models receive them: numbers as DOUBLE, strings as STRING."""
    from pyspark.sql import functions as F

    return [F.col(_q(f)).cast("string" if kinds[f] == "string" else "double").alias(f) for f in features]


def input_frame(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Numbers as float64 and strings as Python objects (None for NULL), whatever Arrow produced."""
    out = frame.copy()
    for column, kind in kinds.items():
        if kind == "string":
            out[column] = out[column].astype(object).where(out[column].notna(), None)
        else:
            out[column] = out[column].astype("float64")
    return out


def log_sklearn(model: Any, example: pd.DataFrame, *, task: str, metadata: dict[str, Any], name: str = "model",
                registered_model_name: str | None = None) -> str:
    """Log a scikit-learn model with signature, input example, ``metadata`` and skops
    serialisation; pyfunc ``predict`` is ``predict_proba`` for classifiers. Needs an active run
    (inside :func:`engine.tracking.mlflow_uris`). Returns the model URI."""
    import mlflow
    from mlflow.models import infer_signature

    from engine.pipelines._models import sklearn_output

    predict_fn = "predict" if task == "regression" else "predict_proba"
    signature = infer_signature(example, sklearn_output(model, example, task))
    info = mlflow.sklearn.log_model(
        model, name=name, signature=signature, input_example=example, pyfunc_predict_fn=predict_fn, metadata=metadata,
        pip_requirements=requirements("scikit-learn", "skops"), skops_trusted_types=_skops_types(model),
        registered_model_name=registered_model_name,
    )
    return str(info.model_uri)


def _label_column(label: str, task: str) -> Any:
    from pyspark.sql import functions as F

    column = F.col(_q(label))
    return (column.cast("double") if task == "regression" else column).alias("__ff_label")


def _skops_types(model: Any) -> list[str] | None:
    """The types skops does not trust by default in the model fitted just now, in this process
    (e.g. gradient boosting's tree arrays); MLflow checks the saved file reloads with exactly these."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    log.debug("skops types trusted for the logged model: %s", untrusted)
    return list(untrusted) or None


def requirements(*packages: str) -> list[str]:
    """Pinned requirements of the logged model (skips MLflow's slow inference by model reloading)."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for package in ("mlflow", "numpy", "pandas", "cloudpickle", *packages):
        try:
            pinned.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pinned.append(package)
    return pinned


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
