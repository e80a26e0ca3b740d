"""Where MLflow runs, models and the model registry live.

Embedded default (no server): an SQLite database in the local warehouse,
``<warehouse>/mlflow.db``, with artifacts under ``<warehouse>/mlartifacts``; the model registry
works on the same database. When ``MLFLOW_TRACKING_URI`` is set (a tracking server,
``databricks``), it is honoured instead and the server decides where artifacts go.

The warehouse is ``$FF_WAREHOUSE`` if set, else ``<project root>/warehouse`` (git-ignored).
This module never changes logging levels.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import unquote

from engine.env import FF_WAREHOUSE, MLFLOW_REGISTRY_URI, MLFLOW_TRACKING_URI
from engine.errors import InvalidArgumentError
from engine.redaction import redact_uri

__all__ = ["artifact_root", "configure_tracking", "default_warehouse", "ensure_experiment", "ensure_tracking"]

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
    """``<folder>/mlartifacts`` (as a file URI) for an SQLite tracking URI ``sqlite:///<folder>/x.db``;
    None for servers, which choose their own artifact store."""
    if not tracking_uri.startswith(_SQLITE):
        return None
    db = Path(unquote(tracking_uri[len(_SQLITE):]))
    return (db.parent / "mlartifacts").resolve().as_uri()


def ensure_experiment(name: str) -> str:
    """The id of experiment ``name``, created if missing (embedded: artifacts in the warehouse)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(argument="experiment", expected="a non-empty experiment name", found=repr(name))
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise InvalidArgumentError(
                argument="experiment", expected="an active experiment", found=f"{name!r} (deleted)",
                hint="Restore it with MlflowClient().restore_experiment(id) or use another name.",
            )
        return str(experiment.experiment_id)
    root = artifact_root(mlflow.get_tracking_uri())
    location = f"{root}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'experiment'}" if root else None
    log.info("Creating MLflow experiment %r", name)
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:  # created meanwhile by a concurrent run
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)
