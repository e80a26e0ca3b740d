"""Every environment variable the engine reads, declared once and typed.

Read a variable through its declaration, never with ``os.environ`` elsewhere::

    from engine.env import FF_WAREHOUSE, MLFLOW_TRACKING_URI
    uri = MLFLOW_TRACKING_URI.get()        # str | None (unset or empty -> None)
    warehouse = FF_WAREHOUSE.get()         # Path | None

Values are read at call time (not import time), so tests can ``monkeypatch.setenv``.
A value that does not parse raises :class:`~engine.errors.InvalidArgumentError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from engine.errors import InvalidArgumentError

__all__ = [
    "FF_JVM_ARCHIVE",
    "FF_PROJECT_ROOT",
    "FF_REPO",
    "FF_SPARK_PROFILES",
    "FF_WAREHOUSE",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_URI",
    "SPARK_REMOTE",
    "VARIABLES",
    "EnvVar",
]

T = TypeVar("T")


@dataclass(frozen=True)
class EnvVar(Generic[T]):
    """One environment variable: its name, how its text becomes a value, what it is for."""

    name: str
    parse: Callable[[str], T]
    description: str

    def get(self) -> T | None:
        """The parsed value, or None when the variable is unset or empty."""
        raw = os.environ.get(self.name, "").strip()
        if not raw:
            return None
        try:
            return self.parse(raw)
        except (TypeError, ValueError) as err:
            raise InvalidArgumentError(
                argument=f"${self.name}", expected=self.description, found=repr(raw), hint=str(err)
            ) from None

    def is_set(self) -> bool:
        return bool(os.environ.get(self.name, "").strip())


def _path(raw: str) -> Path:
    return Path(raw).expanduser().resolve()


FF_PROJECT_ROOT: EnvVar[Path] = EnvVar(
    "FF_PROJECT_ROOT", _path, "the repository root holding conf/ (default: found from the package)"
)
FF_WAREHOUSE: EnvVar[Path] = EnvVar(
    "FF_WAREHOUSE", _path, "the local warehouse folder (default: <project root>/warehouse)"
)
FF_REPO: EnvVar[Path] = EnvVar(
    "FF_REPO", _path, "the feature repository folder the jobs use without --repo (default: the working directory)"
)
FF_SPARK_PROFILES: EnvVar[Path] = EnvVar(
    "FF_SPARK_PROFILES", _path, "a folder of your own Spark profiles <name>.yaml (looked up before the packaged ones)"
)


def _switch(raw: str) -> bool:
    if raw.lower() not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ValueError("one of 0/1, true/false, yes/no, on/off")
    return raw.lower() in ("1", "true", "yes", "on")


FF_JVM_ARCHIVE: EnvVar[bool] = EnvVar(
    "FF_JVM_ARCHIVE", _switch, "0 turns off the local driver JVM's class archive (engine.jvm_archive; default on)"
)
MLFLOW_TRACKING_URI: EnvVar[str] = EnvVar(
    "MLFLOW_TRACKING_URI", str,
    "an MLflow tracking URI (http(s)://server, databricks, sqlite:///...); unset: SQLite in the warehouse",
)
MLFLOW_REGISTRY_URI: EnvVar[str] = EnvVar(
    "MLFLOW_REGISTRY_URI", str, "an MLflow model registry URI (unset: the tracking URI)"
)


def _connect_url(raw: str) -> str:
    if not raw.startswith("sc://"):
        raise ValueError("a Spark Connect URL starts with sc://")
    return raw


SPARK_REMOTE: EnvVar[str] = EnvVar(
    "SPARK_REMOTE", _connect_url,
    "a Spark Connect URL sc://host:port[/;param=value] (the `remote` profile connects to it; PySpark reads it too)",
)

VARIABLES: tuple[EnvVar[object], ...] = (FF_JVM_ARCHIVE, FF_PROJECT_ROOT, FF_REPO, FF_SPARK_PROFILES, FF_WAREHOUSE, MLFLOW_TRACKING_URI, MLFLOW_REGISTRY_URI,
                                         SPARK_REMOTE)
