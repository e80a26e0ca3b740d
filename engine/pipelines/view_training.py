"""Train a model on a feature view's training dataset and register it with full lineage.

``train_on_dataset(store, dataset, config=...)`` reads the dataset's train and validation splits,
tunes and fits with :func:`engine.pipelines.training.train` (hyperopt on Spark, every trial a
nested MLflow run), then registers the best model under the feature view's name with
:func:`~engine.pipelines.training.register_best` -- tagged with the feature view, the training
dataset version and the Delta version of every source feature group -- and moves the alias only if
it beats the current champion. The logged model carries the feature view reference in its MLmodel
metadata, so :func:`engine.pipelines.inference.score_batch` needs only keys and timestamps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import ColumnNotFoundError, InvalidArgumentError
from engine.store.registry import Node

if TYPE_CHECKING:
    from engine.pipelines.training import RegistrationResult, TrainingConfig, TrainingResult
    from engine.store.feature_store import FeatureStore
    from engine.store.training_dataset import TrainingDataset

__all__ = ["ModelTrainingResult", "lineage_tags", "train_on_dataset"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelTrainingResult:
    training: TrainingResult
    registration: RegistrationResult | None

    @property
    def model_uri(self) -> str:
        """``models:/<name>/<version>`` of the registered version (or the run's model URI)."""
        if self.registration is None:
            return self.training.model_uri
        return f"models:/{self.registration.name}/{self.registration.version}"


def lineage_tags(dataset: TrainingDataset) -> dict[str, str]:
    """Registry tags that tie a model version to its data: view, dataset, source versions."""
    tags = {
        "feature_view": dataset.view_name,
        "feature_view_version": str(dataset.view_version),
        "training_dataset_version": str(dataset.version),
        "training_dataset_path": dataset.path,
        "feature_store_root": dataset.store.root,
    }
    for group, version in sorted(dataset.source_versions.items()):
        tags[f"source.{group}"] = str(version)
    return tags


def train_on_dataset(
    store: FeatureStore,
    dataset: TrainingDataset,
    *,
    config: TrainingConfig,
    label: str | None = None,
    experiment: str | None = None,
    model_name: str | None = None,
    alias: str = "champion",
    register: bool = True,
) -> ModelTrainingResult:
    """Tune, fit, log and (by default) register a model on ``dataset``'s train/validation splits.

    The model inputs are the view's :attr:`~engine.store.feature_view.FeatureView.model_features`
    (its features without ``exclude``); MLflow runs and the registry are the store's
    (``store.tracking_uri`` / ``store.registry_uri``)."""
    from engine.pipelines.training import register_best, train

    view = dataset.view()
    label = label or (view.labels[0] if view.labels else None)
    if label is None or label not in view.labels:
        raise InvalidArgumentError(argument="label", expected=f"one of the view's labels {view.labels}", found=repr(label))
    features = view.model_features
    stored_columns = delta_columns(dataset)
    for column in [*features, label]:
        if column not in stored_columns:
            raise ColumnNotFoundError(argument="features", column=column, side="training dataset", available=stored_columns)
    metadata: dict[str, Any] = {
        "feature_view": view.reference,
        "training_dataset": {"version": dataset.version, "path": dataset.path, "source_versions": dataset.source_versions},
        "features": features,
        "label": label,
    }
    tags = lineage_tags(dataset)
    uris = {"tracking_uri": store.tracking_uri, "registry_uri": store.registry_uri}
    result = train(
        store.spark, dataset.read("train"), dataset.read("validation"), features=features, label=label, config=config,
        experiment=experiment or f"feature_view_{view.name}", run_name=f"{view.name}_v{view.version}_td{dataset.version}",
        tags=tags, model_metadata=metadata, **uris,
    )
    registration = None
    if register:
        registration = register_best(result, model_name or view.name, alias=alias, tags=tags, **uris)
        store.registry.record_lineage(
            dataset.node, Node("model", registration.name, int(registration.version)),
            properties={"run_id": result.run_id, "metrics": result.metrics, "promoted": registration.promoted},
            new=True,  # the model version was registered just now
        )
        log.info(
            "model %s v%s: val %s (baseline %s); alias %s %s", registration.name, registration.version,
            result.metrics, result.baseline_metrics, alias, "moved" if registration.promoted else "kept",
        )
    return ModelTrainingResult(training=result, registration=registration)


def delta_columns(dataset: TrainingDataset) -> list[str]:
    return dataset.read().columns
