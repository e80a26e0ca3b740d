"""Bring your own model: log a model you trained yourself so that ``score_batch`` can serve it.

::

    from engine.pipelines.models import log_model, training_set

    dataset = fs.create_training_dataset(view, spine=spine, split=split)      # or:
    ts = training_set(view, spine)            # pins the groups' current Delta versions
    pdf = ts.load_df().toPandas()             # (or dataset.read("train"))
    clf = make_pipeline(...).fit(pdf[view.model_features], pdf["label"])
    logged = log_model(clf, training_set=dataset, flavor="sklearn", registered_name="churn", store=fs)
    scored = score_batch(spark, "models:/churn@champion", new_spine, store=fs)

``flavor``: ``"sklearn"`` (any fitted estimator or Pipeline; classifiers are served by
``predict_proba``), ``"spark"`` (a fitted ``pyspark.ml.PipelineModel``; served by ``transform`` on
the executors) or ``"pyfunc"`` (an ``mlflow.pyfunc.PythonModel``; its ``predict`` returns one
probability per class in ``classes`` order for classification, or one value per row).
The model receives the view's features (default :attr:`FeatureView.model_features`) as the
training data holds them -- Python models: numbers as float64, strings as str/None.

The logged model carries, in its MLmodel metadata and as registry tags, its feature view (store
root, name, version), the training dataset version and the Delta version of every source feature
group, and its scoring contract (``engine.pipelines._contract``). Registration follows the
built-in pipeline's rule (:mod:`engine.pipelines.promotion`): the alias moves only if the new
version beats the holder on the task's primary metric -- taken from ``metrics=`` or, by default,
computed on the training dataset's ``validation`` split.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import ColumnNotFoundError, InvalidArgumentError
from engine.pipelines._contract import FLAVORS, ModelContract

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.pipelines.promotion import RegistrationResult
    from engine.store.feature_store import FeatureStore
    from engine.store.feature_view import FeatureView
    from engine.store.training_dataset import TrainingDataset

__all__ = ["LoggedModel", "TrainingSet", "as_model_inputs", "log_model", "training_set"]

log = logging.getLogger(__name__)
MAX_EVALUATION_ROWS = 1_000_000


@dataclass(frozen=True)
class TrainingSet:
    """A view's training data for a spine, not materialised, at pinned source versions."""

    view: FeatureView
    spine: DataFrame
    source_versions: dict[str, int]

    def load_df(self) -> DataFrame:
        """The training rows: spine (with labels) + features, read at ``source_versions``."""
        return self.view.training_data(self.spine, as_of_versions=self.source_versions)


def training_set(view: FeatureView, spine: DataFrame) -> TrainingSet:
    """``view.training_data(spine)`` as a :class:`TrainingSet` pinned to the groups' current Delta
    versions, so the model logged from it records exactly the data it saw."""
    return TrainingSet(view=view, spine=spine, source_versions=view.source_versions())


def as_model_inputs(frame: DataFrame, features: Sequence[str], *, label: str | None = None) -> DataFrame:
    """``features`` of ``frame`` as Python models receive them at scoring time: numbers and
    booleans as DOUBLE (float64 in pandas, NULL -> NaN), strings as STRING (str / None); then
    ``label`` unchanged, if given. Train on
    ``as_model_inputs(dataset.read("train"), view.model_features, label=...).toPandas()``."""
    from pyspark.sql import functions as F

    from engine.pipelines._labels import feature_kinds
    from engine.pipelines._sklearn_run import model_inputs

    features = list(features)
    missing = [f for f in [*features, *([label] if label else [])] if f not in frame.columns]
    if missing:
        raise ColumnNotFoundError(argument="features", column=missing[0], side="frame", available=frame.columns)
    kinds = feature_kinds(dict(frame.dtypes), features, side="frame")
    return frame.select(*model_inputs(features, kinds), *([F.col(_q(label))] if label else []))


@dataclass(frozen=True)
class LoggedModel:
    model_uri: str  # the run's model (models:/m-... or runs:/...)
    run_id: str
    task: str
    metrics: dict[str, float]
    registration: RegistrationResult | None

    @property
    def registered_uri(self) -> str | None:
        """``models:/<name>/<version>`` of the registered version."""
        r = self.registration
        return None if r is None else f"models:/{r.name}/{r.version}"


def log_model(
    model: Any,
    *,
    training_set: TrainingDataset | TrainingSet | tuple[FeatureView, DataFrame],
    flavor: str,
    registered_name: str | None = None,
    store: FeatureStore | None = None,
    label: str | None = None,
    features: Sequence[str] | None = None,
    task: str | None = None,
    classes: Sequence[Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    alias: str = "champion",
    experiment: str | None = None,
    run_name: str | None = None,
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
) -> LoggedModel:
    """Log ``model`` (trained by you on ``training_set``) with its lineage and scoring contract,
    and register it as a new version of ``registered_name`` (if given) under the alias rule.

    ``training_set``: a :class:`~engine.store.training_dataset.TrainingDataset`, a
    :class:`TrainingSet` or ``(view, spine)``. ``store`` (default: the dataset's / view's store)
    gives the MLflow URIs (``tracking_uri`` / ``registry_uri`` override). ``task`` and ``classes``
    are read from sklearn and Spark models and required for ``pyfunc`` classifiers.
    """
    from engine.pipelines._labels import check_label_type, feature_kinds
    from engine.pipelines._metrics import TASK_METRICS
    from engine.pipelines.promotion import check_alias, check_model_name, check_tags
    from engine.tracking import resolve_uris

    if flavor not in FLAVORS:
        raise InvalidArgumentError(argument="flavor", expected=f"one of {list(FLAVORS)}", found=repr(flavor))
    source = _source(training_set)
    view, frame = source["view"], source["frame"]
    store = store or view.store
    if registered_name is not None:
        check_model_name(registered_name, argument="registered_name")
    check_alias(alias)
    label = label or (view.labels[0] if view.labels else None)
    if label is None or label not in view.labels:
        raise InvalidArgumentError(argument="label", expected=f"one of the view's labels {view.labels}", found=repr(label))
    features = list(features) if features is not None else view.model_features
    for column in [*features, label]:
        if column not in frame.columns:
            raise ColumnNotFoundError(argument="features", column=column, side="training set", available=frame.columns)
    unknown = [f for f in features if f not in view.feature_names]
    if unknown:
        raise InvalidArgumentError(argument="features", expected=f"features of view {view.name} v{view.version}",
                                   found=f"{unknown} (not looked up by the view, so scoring could not supply them)")
    types = dict(frame.dtypes)
    if task is not None:
        if task not in TASK_METRICS:
            raise InvalidArgumentError(argument="task", expected=f"one of {list(TASK_METRICS)}", found=repr(task))
        check_label_type(types[label], label=label, task=task, side="training set")
    task, classes, outputs = _describe(model, flavor, task, classes, label, types[label])
    check_label_type(types[label], label=label, task=task, side="training set")
    kinds = feature_kinds(types, features, side="training set")
    metric_values = {k: float(v) for k, v in (metrics or {}).items()}
    if not metric_values and source["validation"] is not None:
        metric_values = _evaluate(model, flavor, task, classes, outputs, source["validation"], features, kinds, label)
    contract = ModelContract(flavor=flavor, task=task, features=tuple(features), input_types=kinds, label=label,
                             classes=classes, spark_prediction=outputs.get("prediction"),
                             spark_probability=outputs.get("probability"),
                             extra={"logged_by": "engine.pipelines.models.log_model", "model_class": type(model).__name__})
    metadata = {"feature_factory": contract.to_metadata(), "feature_view": view.reference,
                "training_dataset": source["dataset"], "features": features, "label": label}
    tags = check_tags(source["tags"])
    uris = resolve_uris(tracking_uri, registry_uri, store=store)
    run_id, model_uri = _log(model, flavor, task, frame, features, kinds, outputs, metadata, tags, metric_values,
                             experiment=experiment or f"feature_view_{view.name}", run_name=run_name, uris=uris)
    registration = None
    if registered_name is not None:
        from engine.pipelines.promotion import register_version
        from engine.pipelines.training_config import primary_metric
        from engine.store.registry import Node

        version_tags = {**tags, "ff.run_id": run_id, "ff.features": ",".join(features)[:4000], "ff.label": label,
                        "ff.task": task, "ff.flavor": flavor}
        registration = register_version(model_uri, registered_name, run_id=run_id, tags=version_tags,
                                        metrics=metric_values, alias=alias, metric=primary_metric(task),
                                        tracking_uri=uris[0], registry_uri=uris[1])
        store.registry.record_lineage(source["node"], Node("model", registration.name, registration.version),
                                      properties={"run_id": run_id, "metrics": metric_values,
                                                  "promoted": registration.promoted, "flavor": flavor},
                                      new=True)  # the model version was registered just now
    return LoggedModel(model_uri=model_uri, run_id=run_id, task=task, metrics=metric_values, registration=registration)


def _source(value: Any) -> dict[str, Any]:
    """The view, the training rows, the dataset metadata, the lineage tags and node of a training set."""
    from engine.pipelines.view_training import lineage_tags
    from engine.store.feature_view import FeatureView
    from engine.store.training_dataset import TrainingDataset

    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], FeatureView):
        value = training_set(value[0], value[1])
    if isinstance(value, TrainingDataset):
        split = value.split
        has_validation = "validation" in (split.get("fractions") or {}) or split.get("validation") is not None
        return {"view": value.view(), "frame": value.read(), "validation": value.read("validation") if has_validation
                else None, "tags": lineage_tags(value), "node": value.node,
                "dataset": {"version": value.version, "path": value.path, "source_versions": value.source_versions}}
    if isinstance(value, TrainingSet):
        view = value.view
        tags = {"feature_view": view.name, "feature_view_version": str(view.version), "training_dataset_version": "none",
                "feature_store_root": view.store.root,
                **{f"source.{k}": str(v) for k, v in sorted(value.source_versions.items())}}
        return {"view": view, "frame": value.load_df(), "validation": None, "tags": tags, "node": view.node,
                "dataset": {"version": None, "path": None, "source_versions": value.source_versions}}
    raise InvalidArgumentError(argument="training_set", expected="a TrainingDataset, a TrainingSet or (view, spine)",
                               found=type(value).__name__)


def _describe(model: Any, flavor: str, task: str | None, classes: Sequence[Any] | None, label: str,
              label_type: str) -> tuple[str, list[Any] | None, dict[str, str]]:
    """The model's task, classes and (Spark) output columns, read from the model where possible."""
    outputs: dict[str, str] = {}
    if flavor == "sklearn":
        from sklearn.base import is_classifier, is_regressor

        if not hasattr(model, "predict"):
            raise InvalidArgumentError(argument="model", expected="a fitted scikit-learn estimator", found=type(model).__name__)
        if hasattr(model, "fit"):  # sklearn's own NotFittedError would come from inside the MLflow run
            from sklearn.exceptions import NotFittedError
            from sklearn.utils.validation import check_is_fitted

            try:
                check_is_fitted(model)
            except NotFittedError:
                raise InvalidArgumentError(argument="model", expected="a fitted scikit-learn estimator",
                                           found=f"an unfitted {type(model).__name__}", hint="Call fit() first.") from None
        if is_classifier(model):
            found = [_plain(c) for c in getattr(model, "classes_", [])]
            task = task or ("binary" if len(found) == 2 else "multiclass")
            classes = list(classes) if classes is not None else found
        elif is_regressor(model):
            task = task or "regression"
    elif flavor == "spark":
        from pyspark.ml import PipelineModel

        if not isinstance(model, PipelineModel):
            raise InvalidArgumentError(argument="model", expected="a fitted pyspark.ml.PipelineModel",
                                       found=type(model).__name__)
        stage = next((s for s in reversed(model.stages) if s.hasParam("predictionCol")), None)
        if stage is None:
            raise InvalidArgumentError(argument="model", expected="a PipelineModel with a predictor stage",
                                       found=[type(s).__name__ for s in model.stages])
        outputs["prediction"] = stage.getPredictionCol()
        if hasattr(stage, "numClasses") and stage.hasParam("probabilityCol"):
            outputs["probability"] = stage.getProbabilityCol()
            task = task or ("binary" if stage.numClasses == 2 else "multiclass")
            if classes is None:
                indexer = next((s for s in model.stages if type(s).__name__ == "StringIndexerModel"
                                and s.hasParam("inputCol") and s.isSet("inputCol") and s.getInputCol() == label), None)
                raw = list(indexer.labels) if indexer is not None else list(range(stage.numClasses))
                classes = [_typed(c, label_type) for c in raw]
        else:
            task = task or "regression"
    elif not hasattr(model, "predict"):
        raise InvalidArgumentError(argument="model", expected="an mlflow.pyfunc.PythonModel", found=type(model).__name__)
    if task is None:
        raise InvalidArgumentError(argument="task", expected="'binary', 'multiclass' or 'regression' (not readable "
                                   "from this model)", found="None")
    if task != "regression" and not classes:
        raise InvalidArgumentError(argument="classes", expected=f"the class values in probability order for task {task!r}",
                                   found=repr(classes))
    if task == "binary" and len(classes or []) != 2:
        raise InvalidArgumentError(argument="classes", expected="two classes for task 'binary'", found=repr(classes))
    return task, (None if task == "regression" else [_plain(c) for c in classes or []]), outputs


def _evaluate(model: Any, flavor: str, task: str, classes: list[Any] | None, outputs: dict[str, str],
              validation: DataFrame, features: list[str], kinds: dict[str, str], label: str) -> dict[str, float]:
    """The task's metrics on the validation split, from the model in memory (at most 1M rows)."""
    from pyspark.sql import functions as F

    from engine.pipelines._metrics import task_metrics
    from engine.pipelines._sklearn_run import input_frame, model_inputs

    rows = validation.limit(MAX_EVALUATION_ROWS)
    if flavor == "spark":
        from pyspark.ml.functions import vector_to_array

        scored = model.transform(rows)
        out = vector_to_array(outputs["probability"]) if task != "regression" else F.col(outputs["prediction"])
        pdf = scored.select(out.alias("__ff_out"), F.col(_q(label)).alias("__ff_y")).toArrow().to_pandas()
        if pdf.empty:
            return {}
        values = list(pdf["__ff_out"]) if task != "regression" else pdf["__ff_out"]
        return task_metrics(task, pdf["__ff_y"].to_numpy(), values, classes)
    pdf = rows.select(*model_inputs(features, kinds), F.col(_q(label)).alias("__ff_y")).toArrow().to_pandas()
    if pdf.empty:
        return {}
    y = pdf.pop("__ff_y").to_numpy()
    x = input_frame(pdf, kinds)
    if flavor == "sklearn":
        output = model.predict(x) if task == "regression" else model.predict_proba(x)
    else:
        output = model.predict(None, x)
    return task_metrics(task, y, output, classes)


def _log(model: Any, flavor: str, task: str, frame: DataFrame, features: list[str], kinds: dict[str, str],
         outputs: dict[str, str], metadata: dict[str, Any], tags: dict[str, str], metrics: dict[str, float], *,
         experiment: str, run_name: str | None, uris: tuple[str, str]) -> tuple[str, str]:
    import mlflow

    from engine.pipelines._sklearn_run import input_frame, log_sklearn, model_inputs
    from engine.tracking import client, ensure_experiment, mlflow_uris

    with mlflow_uris(*uris):
        experiment_id = ensure_experiment(experiment, mlflow_client=client(*uris))
        run_tags = {**tags, "ff.kind": "log_model", "ff.flavor": flavor, "ff.task": task}
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags,
                              nested=mlflow.active_run() is not None) as run:
            if metrics:
                mlflow.log_metrics(metrics)
            mlflow.log_dict({"features": features, "input_types": kinds, "label": metadata["label"]}, "features.json")
            if flavor == "spark":
                from engine.pipelines._spark_run import log_spark

                cols = [c for c in (outputs.get("probability"), outputs["prediction"]) if c]
                uri = log_spark(model, frame.select(*[_q(f) for f in features]), outputs=cols, metadata=metadata)
            else:
                example = input_frame(frame.select(*model_inputs(features, kinds)).limit(5).toArrow().to_pandas(), kinds)
                if flavor == "sklearn":
                    uri = log_sklearn(model, example, task=task, metadata=metadata)
                else:
                    uri = _log_pyfunc(model, example, metadata)
            return run.info.run_id, uri


def _log_pyfunc(model: Any, example: Any, metadata: dict[str, Any]) -> str:
    import mlflow
    from mlflow.models import infer_signature

    from engine.pipelines._sklearn_run import requirements

    try:
        signature = infer_signature(example, model.predict(None, example))
    except Exception:  # a model that needs its context to predict: describe the inputs only
        signature = infer_signature(example)
    info = mlflow.pyfunc.log_model(name="model", python_model=model, signature=signature, input_example=example,
                                   metadata=metadata, pip_requirements=requirements())
    return str(info.model_uri)


def _typed(value: Any, dtype: str) -> Any:
    """A Spark StringIndexer label (a string) as a value of the label's type."""
    if dtype == "boolean":
        return str(value).lower() == "true"
    if dtype in ("tinyint", "smallint", "int", "bigint"):
        return int(float(value))
    if dtype in ("float", "double") or dtype.startswith("decimal"):
        return float(value)
    return value


def _plain(value: Any) -> Any:
    """numpy scalars -> Python values (JSON-ready)."""
    return value.item() if hasattr(value, "item") else value


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
