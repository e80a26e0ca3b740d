"""Where MLflow runs, models and the model registry live.

Embedded default (no server): an SQLite database in the local warehouse,
``<warehouse>/mlflow.db``, with artifacts under ``<warehouse>/mlartifacts``; the model registry
works on the same database. When ``MLFLOW_TRACKING_URI`` is set (a tracking server,
``databricks``), it is honoured instead and the server decides where artifacts go.

The warehouse is ``$FF_WAREHOUSE`` if set, else ``<project root>/warehouse`` (git-ignored).
This module never changes logging levels.

Library code never leaves MLflow's global URIs changed. It is given a tracking URI and a registry
URI (parameters, or a :class:`~engine.store.feature_store.FeatureStore`'s ``tracking_uri`` /
``registry_uri``), talks to them through ``MlflowClient(tracking_uri=..., registry_uri=...)``
(:func:`client`), and where MLflow's fluent API needs the global URI (``mlflow.start_run``,
``log_model``) it runs inside :func:`mlflow_uris`, which sets both for the duration of the block
and restores the previous values (and environment variables) afterwards::

    with mlflow_uris(store.tracking_uri, store.registry_uri):
        with mlflow.start_run(...): ...
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from engine.env import FF_WAREHOUSE, MLFLOW_REGISTRY_URI, MLFLOW_TRACKING_URI
from engine.errors import InvalidArgumentError
from engine.redaction import redact_uri

__all__ = [
    "artifact_root",
    "client",
    "configure_tracking",
    "default_warehouse",
    "ensure_experiment",
    "ensure_tracking",
    "mlflow_uris",
    "resolve_uris",
]

log = logging.getLogger(__name__)

_SQLITE = "sqlite:///"
# MLflow mirrors set_tracking_uri / set_registry_uri into $MLFLOW_TRACKING_URI / $MLFLOW_REGISTRY_URI
# (for subprocesses). Remember what this module set, so a later call with another warehouse is not
# mistaken for a user's explicit choice.
_ours: dict[str, str | None] = {"tracking": None, "registry": None}


def default_warehouse() -> Path:
    """``$FF_WAREHOUSE``, else ``<project root>/warehouse``."""
    from engine.session import project_root

    return FF_WAREHOUSE.get() or project_root() / "warehouse"


def configure_tracking(warehouse: Path | None = None) -> str:
    """Point MLflow (tracking and registry) at ``$MLFLOW_TRACKING_URI`` if set, else at SQLite in
    ``warehouse`` (default :func:`default_warehouse`). Returns the tracking URI."""
    import mlflow

    env_uri = MLFLOW_TRACKING_URI.get()
    if env_uri is not None and env_uri != _ours["tracking"]:
        uri, embedded = env_uri, False
        log.info("MLflow tracking: %s (from $%s)", redact_uri(uri), MLFLOW_TRACKING_URI.name)
    else:
        folder = Path(warehouse if warehouse is not None else default_warehouse()).expanduser().resolve()
        (folder / "mlartifacts").mkdir(parents=True, exist_ok=True)
        uri, embedded = _SQLITE + str(folder / "mlflow.db"), True
        log.info("MLflow tracking and registry: embedded SQLite %s", folder / "mlflow.db")
    mlflow.set_tracking_uri(uri)
    _ours["tracking"] = uri if embedded else None
    registry = MLFLOW_REGISTRY_URI.get()
    if registry is not None and registry != _ours["registry"]:
        mlflow.set_registry_uri(registry)  # the user's choice
        _ours["registry"] = None
    elif embedded:
        mlflow.set_registry_uri(uri)
        _ours["registry"] = uri
    elif _ours["registry"] is not None:  # was an embedded DB: back to MLflow's default for this URI
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        _ours["registry"] = None
    return uri


def ensure_tracking() -> str:
    """The current tracking URI; configures the embedded default first if nothing chose one
    (neither ``$MLFLOW_TRACKING_URI`` nor a ``mlflow.set_tracking_uri`` call)."""
    import mlflow

    try:  # MLflow has no public "was a URI chosen?"; without this, keep what get_tracking_uri says
        from mlflow.tracking._tracking_service.utils import is_tracking_uri_set
    except ImportError:  # pragma: no cover - depends on the MLflow version
        return mlflow.get_tracking_uri()
    if not is_tracking_uri_set():
        return configure_tracking()
    return mlflow.get_tracking_uri()


def artifact_root(tracking_uri: str) -> str | None:
    """Where an SQLite tracking URI ``sqlite:///<folder>/x.db`` keeps artifacts (a file URI):
    ``<folder>/artifacts`` for a store's ``<root>/_mlflow`` folder, else ``<folder>/mlartifacts``
    (the warehouse default); None for servers, which choose their own artifact store."""
    if not tracking_uri.startswith(_SQLITE):
        return None
    db = Path(unquote(tracking_uri[len(_SQLITE):]))
    folder = "artifacts" if db.parent.name == "_mlflow" else "mlartifacts"
    return (db.parent / folder).resolve().as_uri()


def resolve_uris(tracking_uri: str | None = None, registry_uri: str | None = None, *, store: Any = None) -> tuple[str, str]:
    """The ``(tracking URI, registry URI)`` a call uses, without setting anything: the given URIs,
    else ``store``'s, else what MLflow already uses (``$MLFLOW_TRACKING_URI`` or a
    ``mlflow.set_tracking_uri`` by the caller), else the embedded SQLite default in the warehouse."""
    import mlflow

    for argument, value in (("tracking_uri", tracking_uri), ("registry_uri", registry_uri)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidArgumentError(argument=argument, expected="an MLflow URI (str) or None", found=repr(value))
    if tracking_uri is None and store is not None:
        tracking_uri = getattr(store, "tracking_uri", None)
        registry_uri = registry_uri or getattr(store, "registry_uri", None)
    if tracking_uri is None:
        from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

        if is_tracking_uri_set():
            tracking_uri = mlflow.get_tracking_uri()
            registry_uri = registry_uri or mlflow.get_registry_uri()
        else:
            folder = Path(default_warehouse()).expanduser().resolve()
            tracking_uri = _SQLITE + str(folder / "mlflow.db")
    return tracking_uri, registry_uri or MLFLOW_REGISTRY_URI.get() or tracking_uri


def client(tracking_uri: str, registry_uri: str | None = None) -> Any:
    """An ``MlflowClient`` bound to these URIs (no global state); makes an SQLite DB's folder."""
    from mlflow import MlflowClient

    _make_folder(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def _make_folder(uri: str) -> None:
    if uri.startswith(_SQLITE):
        Path(unquote(uri[len(_SQLITE):])).parent.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def mlflow_uris(tracking_uri: str, registry_uri: str | None = None) -> Iterator[None]:
    """Set MLflow's global tracking and registry URIs for the block (MLflow's fluent API reads
    them), then restore the previous values and ``$MLFLOW_TRACKING_URI`` / ``$MLFLOW_REGISTRY_URI``."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    names = (MLFLOW_TRACKING_URI.name, MLFLOW_REGISTRY_URI.name)
    saved_env = {name: os.environ.get(name) for name in names}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    _make_folder(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    try:
        yield
    finally:
        if tracking_utils._tracking_uri != saved[0]:
            mlflow.set_tracking_uri(saved[0])  # type: ignore[arg-type]  # None: back to "not set"
        registry_utils._registry_uri = saved[1]
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ensure_experiment(name: str, *, mlflow_client: Any = None) -> str:
    """The id of experiment ``name``, created if missing (SQLite: artifacts beside the database).
    ``mlflow_client`` (see :func:`client`) chooses the tracking store; default: MLflow's current one."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(argument="experiment", expected="a non-empty experiment name", found=repr(name))
    client = mlflow_client if mlflow_client is not None else MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise InvalidArgumentError(
                argument="experiment", expected="an active experiment", found=f"{name!r} (deleted)",
                hint="Restore it with MlflowClient().restore_experiment(id) or use another name.",
            )
        return str(experiment.experiment_id)
    root = artifact_root(client.tracking_uri if mlflow_client is not None else mlflow.get_tracking_uri())
    location = f"{root}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'experiment'}" if root else None
    log.info("Creating MLflow experiment %r", name)
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:  # created meanwhile by a concurrent run
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)
