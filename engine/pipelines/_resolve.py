"""From a ``models:/`` URI to a model version, its scoring contract and its feature view.

Every check here runs before any Spark job: the URI's form; the registered model, version or
alias (an unknown alias lists the model's aliases and the tracking URI searched); the feature view
reference in the MLmodel metadata; the view and every feature the model reads still existing in
the store (:class:`~engine.errors.ModelLineageError` otherwise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError, InvalidArgumentError, ModelLineageError, NotFoundError
from engine.pipelines._contract import ModelContract
from engine.redaction import redact_uri

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from engine.store.feature_store import FeatureStore
    from engine.store.feature_view import FeatureView

__all__ = ["ResolvedModel", "model_feature_view", "resolve_model"]

_URI = re.compile(r"^models:/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)(?:@(?P<alias>[A-Za-z0-9_\-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    version: int
    uri: str  # models:/<name>/<version>
    metadata: dict[str, Any]
    download_uri: str = ""  # where the model's files are (loading from it needs no registry)
    tracking_uri: str = ""
    registry_uri: str = ""

    @property
    def contract(self) -> ModelContract:
        return ModelContract.from_metadata(self.metadata)


def resolve_model(model_uri: str, *, tracking_uri: str | None = None, registry_uri: str | None = None,
                  store: FeatureStore | None = None) -> ResolvedModel:
    """``models:/name@alias`` or ``models:/name/version`` -> the version and its MLmodel metadata.

    The registry is ``registry_uri`` (else ``store.registry_uri``, else MLflow's current one);
    nothing global is changed."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from engine.tracking import client, resolve_uris

    match = _URI.match(model_uri) if isinstance(model_uri, str) else None
    if match is None:
        raise InvalidArgumentError(
            argument="model_uri", expected="'models:/<name>@<alias>' or 'models:/<name>/<version>'", found=repr(model_uri)
        )
    uris = resolve_uris(tracking_uri, registry_uri, store=store)
    registry = client(*uris)
    searched = redact_uri(uris[1])
    name = match["name"]
    try:
        registered = registry.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in registry.search_registered_models(max_results=50))
        raise NotFoundError(kind="model", name=model_uri, available=known, tracking_uri=searched,
                            hint=f"Registered models in {searched}: {known}.") from None
    if match["alias"]:
        aliases = dict(registered.aliases or {})
        if match["alias"] not in aliases:
            raise NotFoundError(
                kind="model alias", name=model_uri, available=sorted(aliases), tracking_uri=searched,
                hint=f"Existing aliases of model {name!r}: {sorted(aliases)} (registry searched: {searched}).",
            )
        version = str(aliases[match["alias"]])
    else:
        version = match["version"]
    try:
        found = registry.get_model_version(name, version)
    except MlflowException:
        versions = sorted(int(v.version) for v in registry.search_model_versions(f"name = '{name}'"))
        raise NotFoundError(kind="model version", name=model_uri, available=versions, tracking_uri=searched,
                            hint=f"Versions of model {name!r}: {versions} (registry searched: {searched}).") from None
    uri = f"models:/{name}/{found.version}"
    download_uri = _local(registry.get_model_version_download_uri(name, found.version))
    metadata = mlflow.models.Model.load(download_uri).metadata or {}  # the MLmodel file: no tracking lookup
    if "feature_view" not in metadata:
        raise NotFoundError(
            kind="feature view reference in model", name=uri,
            hint="Score models trained by engine.pipelines.view_training or logged with "
                 "engine.pipelines.models.log_model (they carry their feature view).",
        )
    return ResolvedModel(name=name, version=int(found.version), uri=uri, metadata=dict(metadata),
                         download_uri=download_uri, tracking_uri=uris[0], registry_uri=uris[1])


def _local(uri: str) -> str:
    """``file:///x`` -> ``/x`` (MLflow's loaders take local paths; other schemes are downloaded)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def model_feature_view(spark: SparkSession, model: ResolvedModel, store: FeatureStore | None = None) -> FeatureView:
    """The feature view the model was trained on, checked: it exists, and so does every feature
    the model reads (in its feature groups, or as an on-demand feature)."""
    from engine.store.feature_store import FeatureStore

    ref = model.metadata["feature_view"]
    if store is None:
        store = FeatureStore(spark, ref["store_root"], tracking_uri=model.tracking_uri or None,
                             registry_uri=model.registry_uri or None)
    try:
        view = store.get_feature_view(ref["name"], int(ref["version"]))
        available = view.feature_names  # resolves every lookup: groups and their features
    except NotFoundError as err:
        raise ModelLineageError(
            model=model.uri, problem=f"its feature view {ref['name']} v{ref['version']} is not in the store {store.root}",
            expected="the feature view the model was trained on", found=err.params.get("hint") or str(err),
            hint="Pass store= if the store moved, or train the model again on an existing view.",
        ) from None
    except EngineError as err:  # a feature the view reads is gone from its group
        raise ModelLineageError(
            model=model.uri, problem=f"its feature view {ref['name']} v{ref['version']} no longer resolves",
            expected="every looked-up feature in its feature group", found=str(err),
        ) from None
    missing = [f for f in model.contract.features if f not in available]
    if missing:
        raise ModelLineageError(
            model=model.uri, problem=f"features {missing} are not produced by feature view {view.name} v{view.version}",
            expected=f"model inputs among the view's features {available}", found=missing,
        )
    return view
