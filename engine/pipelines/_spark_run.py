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

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.pipelines._trials import TrialLogger, TrialRecord
    from engine.pipelines.training_config import TrainingConfig

log = logging.getLogger(__name__)


class SparkRun:
    flavor = "spark"

    def __init__(self, spark: SparkSession, train: DataFrame, validation: DataFrame, *, features: list[str],
                 kinds: dict[str, str], label: str, config: TrainingConfig, summary: dict[str, Any]) -> None:
        self.spark = spark
        self.frames = {"train": train, "validation": validation}
        self.features = features
        self.kinds = kinds
        self.label = label
        self.config = config
        self.summary = summary
        self.classes = summary.get("classes")
        self._cached: list[DataFrame] = []
        self._best: dict[str, Any] = {}
        self.model: Any = None
        self.model_source = "trial"  # the best trial's fit, kept

    @property
    def output_description(self) -> str:
        from engine.pipelines._spark_models import PREDICTION, PROBABILITY

        if self.config.task == "regression":
            return f"mlflow.spark PipelineModel on the raw feature columns: column `{PREDICTION}` is the value"
        return (f"mlflow.spark PipelineModel on the raw feature columns: `{PROBABILITY}` is the probability vector "
                f"over the classes {self.classes}, `{PREDICTION}` the index of the predicted class")

    def load(self) -> None:
        """Nothing to collect: the label summary (rows, classes) was taken by the caller."""

    def new_trials(self) -> Any:
        from hyperopt import Trials

        return Trials()

    def search(self, trials: Any, trial_log: TrialLogger) -> None:
        from hyperopt import fmin
        from hyperopt.exceptions import AllTrialsFailed

        from engine.pipelines._search_space import fmin_kwargs
        from engine.pipelines._spark_models import label_index, spark_prepare, spark_trial

        config = self.config
        dtype = self.frames["train"].schema[self.label].dataType
        label = label_index(self.label, config.task, self.classes, dtype)
        self.prep, train_vec, val_vec = spark_prepare(
            self.frames["train"], self.frames["validation"], features=self.features, kinds=self.kinds, label=label,
            one_hot=config.family != "spark_gbt",
        )
        self._cached = [train_vec, val_vec]
        objective = functools.partial(
            spark_trial, train=train_vec, validation=val_vec, family=config.family, fixed=dict(config.params),
            seed=config.seed, metric=config.objective, best=self._best, task=config.task,
            n_classes=len(self.classes or []),
        )
        log.info("hyperopt: %d trials one after another on the driver, each a distributed Spark ML fit "
                 "(`parallelism` applies to sklearn families only)", config.max_evals)
        with contextlib.suppress(AllTrialsFailed):  # reported by the caller with the trials' errors
            fmin(objective, trials=trials, **fmin_kwargs(config, trial_log))

    def finish(self, best: TrialRecord, fitted: Any) -> dict[str, float]:
        """The best trial's fitted model (kept, not refitted) behind the fitted preprocessing."""
        from engine.pipelines._spark_models import spark_final_model

        self.model = spark_final_model(self.prep, self._best["model"])
        self.close()
        return dict(best.metrics)

    def log_model(self, metadata: dict[str, Any]) -> str:
        from engine.pipelines._spark_models import PREDICTION, PROBABILITY

        outputs = [PREDICTION] if self.config.task == "regression" else [PROBABILITY, PREDICTION]
        return log_spark(self.model, self.frames["validation"].select(*[_q(f) for f in self.features]), outputs=outputs,
                         metadata=metadata)

    def close(self) -> None:
        for df in self._cached:
            df.unpersist()
        self._cached = []


def log_spark(model: Any, inputs: DataFrame, *, outputs: list[str], metadata: dict[str, Any], name: str = "model",
              registered_model_name: str | None = None) -> str:
    """Log a Spark ML ``PipelineModel`` with signature and input example (from 5 rows of
    ``inputs``) and ``metadata``. Needs an active run. Returns the model URI."""
    import mlflow
    from mlflow.models import infer_signature

    from engine.pipelines._sklearn_run import requirements

    example_df = inputs.limit(5).cache()
    example = example_df.toArrow().to_pandas()
    # the signature from the in-memory model (else MLflow reloads the saved model to infer it)
    signature = infer_signature(example_df, model.transform(example_df).select(*[_q(c) for c in outputs]))
    example_df.unpersist()
    info = mlflow.spark.log_model(
        model, name, signature=signature, input_example=example, metadata=metadata,
        pip_requirements=requirements("pyspark"), registered_model_name=registered_model_name,
    )
    return str(info.model_uri)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
