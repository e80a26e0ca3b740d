"""One spark_* training run: preprocessing fitted once, each trial a distributed Spark ML fit.

Why not SparkTrials here: SparkTrials runs each trial inside one Spark *task*, and a Spark ML fit
launches Spark *jobs*, which only the driver can do. So hyperopt uses the driver-side ``Trials()``
and evaluates the trials one after another, each fit using the whole cluster.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.pipelines._trials import TrialLogger, TrialRecord
    from engine.pipelines.training import TrainingConfig

log = logging.getLogger(__name__)


class SparkRun:
    output_description = (
        "mlflow.spark PipelineModel on the raw feature columns: column `prediction` is the probability "
        "vector [P(label=0), P(label=1)] (pyfunc returns it as an array)"
    )

    def __init__(self, spark: SparkSession, train: DataFrame, validation: DataFrame, *, features: list[str],
                 label: str, config: TrainingConfig) -> None:
        self.spark = spark
        self.frames = {"train": train, "validation": validation}
        self.features = features
        self.label = label
        self.config = config
        self.stats: dict[str, float] = {}
        self._cached: list[DataFrame] = []
        self._best: dict[str, Any] = {}
        self.model: Any = None

    def load(self) -> None:
        """One aggregation per data set: rows, positives, labels that are not 0/1."""
        from pyspark.sql import functions as F

        y = F.col(f"`{self.label}`").cast("double")
        counts = {}
        for side, df in self.frames.items():
            row = df.select(
                F.count(F.lit(1)).alias("rows"),
                F.count(F.when(y == 1, 1)).alias("positives"),
                F.count(F.when(y.isNull(), 1)).alias("nulls"),
                F.count(F.when(~y.isin(0.0, 1.0), 1)).alias("other"),
                F.min(F.when(~y.isin(0.0, 1.0), y)).alias("example"),
            ).first()
            rows, positives = int(row["rows"]), int(row["positives"])  # type: ignore[index]
            if rows == 0:
                raise InvalidArgumentError(argument=side, expected="at least one row", found="an empty DataFrame")
            if row["nulls"]:  # type: ignore[index]
                raise InvalidArgumentError(argument="label", expected=f"no NULL labels in {side}",
                                           found=f"{row['nulls']} NULL(s) in {self.label!r}")  # type: ignore[index]
            if row["other"]:  # type: ignore[index]
                raise InvalidArgumentError(argument="label", expected=f"values 0/1 (or booleans) in {self.label!r}",
                                           found=f"{row['other']} other value(s) in {side}, e.g. {row['example']!r}")  # type: ignore[index]
            if positives in (0, rows):
                raise InvalidArgumentError(argument=side, expected=f"both label values 0 and 1 in {self.label!r}",
                                           found=f"only {int(positives > 0)}")
            counts[side] = (rows, positives)
        self.stats = {
            "train_rows": counts["train"][0], "validation_rows": counts["validation"][0],
            "train_positive_rate": counts["train"][1] / counts["train"][0],
            "validation_positive_rate": counts["validation"][1] / counts["validation"][0],
        }

    def new_trials(self) -> Any:
        from hyperopt import Trials

        return Trials()

    def search(self, trials: Any, trial_log: TrialLogger) -> None:
        from hyperopt import fmin
        from hyperopt.exceptions import AllTrialsFailed

        from engine.pipelines._models import spark_prepare, spark_trial
        from engine.pipelines.training import fmin_kwargs

        config = self.config
        self.prep, train_vec, val_vec = spark_prepare(
            self.frames["train"], self.frames["validation"], features=self.features, label=self.label
        )
        self._cached = [train_vec, val_vec]
        objective = functools.partial(
            spark_trial, train=train_vec, validation=val_vec, family=config.family, fixed=dict(config.params),
            seed=config.seed, metric=config.metric, best=self._best,
        )
        log.info("hyperopt: %d trials one after another on the driver, each a distributed Spark ML fit "
                 "(`parallelism` applies to sklearn families only)", config.max_evals)
        with contextlib.suppress(AllTrialsFailed):  # reported by the caller with the trials' errors
            fmin(objective, trials=trials, **fmin_kwargs(config, trial_log))

    def finish(self, best: TrialRecord) -> dict[str, float]:
        """The best trial's fitted model (kept, not refitted) behind the fitted preprocessing."""
        from engine.pipelines._models import spark_final_model

        self.model = spark_final_model(self.prep, self._best["model"])
        self.close()
        return dict(best.metrics)

    def log_model(self, metadata: dict[str, Any]) -> str:
        import mlflow
        from mlflow.models import infer_signature

        from engine.pipelines._sklearn_run import _requirements

        example_df = self.frames["validation"].select(*[f"`{f}`" for f in self.features]).limit(5).cache()
        example = example_df.toArrow().to_pandas()
        # the signature from the in-memory model (else MLflow reloads the saved model to infer it)
        signature = infer_signature(example_df, self.model.transform(example_df).select("prediction"))
        example_df.unpersist()
        info = mlflow.spark.log_model(
            self.model, "model", signature=signature, input_example=example, metadata=metadata,
            pip_requirements=_requirements("pyspark"),
        )
        return str(info.model_uri)

    def close(self) -> None:
        for df in self._cached:
            df.unpersist()
        self._cached = []
