"""One sklearn_* training run: collect once, broadcast once, SparkTrials, refit on the driver."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from engine.pipelines._trials import TrialLogger, TrialRecord
    from engine.pipelines.training import TrainingConfig

log = logging.getLogger(__name__)


class SklearnRun:
    output_description = "pyfunc predict = predict_proba: [P(label=0), P(label=1)] per row; features as float64"

    def __init__(self, spark: SparkSession, train: DataFrame, validation: DataFrame, *, features: list[str],
                 label: str, config: TrainingConfig) -> None:
        self.spark = spark
        self.frames = {"train": train, "validation": validation}
        self.features = features
        self.label = label
        self.config = config
        self.stats: dict[str, float] = {}
        self.model: Any = None

    def load(self) -> None:
        """Collect both sets to the driver once (bounded by ``max_driver_rows``) and check labels."""
        data = {side: self._collect(side, df) for side, df in self.frames.items()}
        (self.x_train, self.y_train), (self.x_val, self.y_val) = data["train"], data["validation"]
        self.stats = {
            "train_rows": len(self.y_train), "validation_rows": len(self.y_val),
            "train_positive_rate": float(self.y_train.mean()), "validation_positive_rate": float(self.y_val.mean()),
        }

    def _collect(self, side: str, df: DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        from pyspark.sql import functions as F

        limit = self.config.max_driver_rows
        columns = [F.col(f"`{f}`").cast("double").alias(f) for f in self.features]
        columns.append(F.col(f"`{self.label}`").cast("double").alias("__ff_label"))
        table = df.select(*columns).limit(limit + 1).toArrow()  # Arrow whatever the session's settings
        if table.num_rows > limit:
            raise InvalidArgumentError(
                argument=side, expected=f"at most {limit} rows for model family {self.config.family!r} "
                "(collected to the driver; config key `max_driver_rows`)", found=f"more than {limit} rows",
                hint="Use model family 'spark_gbt' or 'spark_logreg' (a distributed fit), or sample the data.",
            )
        frame = table.to_pandas()
        y = _labels(frame.pop("__ff_label").to_numpy(), side=side, label=self.label)
        return frame.astype("float64"), y

    def new_trials(self) -> Any:
        from hyperopt import SparkTrials

        return SparkTrials(parallelism=self.config.parallelism, spark_session=self.spark)

    def search(self, trials: Any, trial_log: TrialLogger) -> None:
        from hyperopt import fmin
        from hyperopt.exceptions import AllTrialsFailed

        from engine.pipelines._models import sklearn_trial
        from engine.pipelines.training import fmin_kwargs

        config = self.config
        data = self.spark.sparkContext.broadcast((self.x_train, self.y_train, self.x_val, self.y_val))
        objective = functools.partial(
            sklearn_trial, data=data, family=config.family, fixed=dict(config.params), seed=config.seed,
            metric=config.metric, threads=config.threads_per_trial,
        )
        log.info("hyperopt: %d trials, %d at a time on Spark executors (SparkTrials)", config.max_evals,
                 config.parallelism)
        try:
            fmin(objective, trials=trials, **fmin_kwargs(config, trial_log))
        except AllTrialsFailed:
            pass  # reported by the caller with the trials' errors
        finally:
            data.unpersist()

    def finish(self, best: TrialRecord) -> dict[str, float]:
        """Refit the best parameters on the whole train set (driver, all cores); validation metrics."""
        from engine.pipelines._models import binary_metrics, build_sklearn

        config = self.config
        self.model = build_sklearn(config.family, {**config.params, **best.params}, seed=config.seed)
        self.model.fit(self.x_train, self.y_train)
        return binary_metrics(self.y_val, self.model.predict_proba(self.x_val)[:, 1])

    def log_model(self, metadata: dict[str, Any]) -> str:
        import mlflow
        from mlflow.models import infer_signature

        example = self.x_val.head(5).reset_index(drop=True)
        signature = infer_signature(example, self.model.predict_proba(example))
        info = mlflow.sklearn.log_model(
            self.model, name="model", signature=signature, input_example=example,
            pyfunc_predict_fn="predict_proba", metadata=metadata, pip_requirements=_requirements("scikit-learn", "skops"),
            skops_trusted_types=_skops_types(self.model),
        )
        return str(info.model_uri)

    def close(self) -> None:
        pass


def _labels(values: np.ndarray, *, side: str, label: str) -> np.ndarray:
    import numpy as np

    if len(values) == 0:
        raise InvalidArgumentError(argument=side, expected="at least one row", found="an empty DataFrame")
    nulls = int(np.isnan(values).sum())
    if nulls:
        raise InvalidArgumentError(argument="label", expected=f"no NULL labels in {side}", found=f"{nulls} NULL(s) in {label!r}")
    other = values[(values != 0) & (values != 1)]
    if len(other):
        raise InvalidArgumentError(argument="label", expected=f"values 0/1 (or booleans) in {label!r}",
                                   found=f"{len(other)} other value(s) in {side}, e.g. {other[0]!r}")
    classes = set(np.unique(values).tolist())
    if classes != {0.0, 1.0}:
        raise InvalidArgumentError(argument=side, expected=f"both label values 0 and 1 in {label!r}",
                                   found=f"only {sorted(int(c) for c in classes)}")
    return values.astype("int64")


def _skops_types(model: Any) -> list[str] | None:
    """The types skops does not trust by default in the model fitted just now, in this process
    (e.g. gradient boosting's tree arrays); MLflow checks the saved file reloads with exactly these."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    log.debug("skops types trusted for the logged model: %s", untrusted)
    return list(untrusted) or None


def _requirements(*packages: str) -> list[str]:
    """Pinned requirements of the logged model (skips MLflow's slow inference by model reloading)."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = []
    for package in ("mlflow", "numpy", "pandas", "cloudpickle", *packages):
        try:
            pinned.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pinned.append(package)
    return pinned
