"""Where everything of one store lives: the one object that owns the store's paths.

::

    <root>/feature_groups/<name>/v<version>     one Delta table per feature group version
    <root>/tables/<name>                        named tables: sources, spines, predictions, ...
    <root>/training_datasets/<view>/v<N>/<M>    training dataset M of view version N
    <root>/_registry/{entities,commits,lineage,statistics}
    <root>/_quarantine/<name>/v<version>        rows refused by a ``quarantine`` expectation suite
    <root>/_validation/reports                  validation reports
    <root>/_pipelines/progress                  feature pipeline chunk log
    <root>/_monitoring/{drift,realised}         monitoring results
    <root>/_reports/<name>                      markdown reports and PNG plots (local roots)
    <root>/_mlflow/mlflow.db, _mlflow/artifacts the embedded MLflow tracking store and registry
    <root>/_spark_warehouse                     the embedded Spark SQL warehouse

``root`` is a local folder (made absolute) or any Hadoop-compatible URI (``s3://``, ``abfss://``,
``dbfs:/``). Nothing here depends on the working directory once the layout is built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidArgumentError
from engine.store.names import check_name

__all__ = ["StoreLayout", "is_uri", "normalise_root"]


def is_uri(text: str) -> bool:
    """``s3://...``, ``dbfs:/...``, ``file:/...``: a URI rather than a local path."""
    return "://" in text or (":/" in text and not (len(text) > 1 and text[1] == ":"))


def normalise_root(root: str | os.PathLike[str], *, argument: str = "root") -> str:
    """A local folder made absolute (no trailing slash), or a URI with its trailing slash removed."""
    if not isinstance(root, (str, os.PathLike)) or not str(root).strip():
        raise InvalidArgumentError(argument=argument, expected="a folder path or URI", found=repr(root))
    text = str(root).strip()
    return text.rstrip("/") if is_uri(text) else str(Path(text).expanduser().resolve())


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one store, derived from its root only."""

    root: str

    @classmethod
    def of(cls, root: str | os.PathLike[str]) -> StoreLayout:
        return cls(normalise_root(root))

    @property
    def is_local(self) -> bool:
        return not is_uri(self.root) or self.root.startswith("file:")

    def feature_group(self, name: str, version: int) -> str:
        return f"{self.root}/feature_groups/{check_name(name, argument='name')}/v{int(version)}"

    def table(self, name: str) -> str:
        """A named table of the store (a source, a spine, predictions, ...)."""
        return f"{self.root}/tables/{check_name(name, argument='table')}"

    def training_dataset(self, view: str, view_version: int, version: int) -> str:
        return f"{self.root}/training_datasets/{check_name(view, argument='view')}/v{int(view_version)}/{int(version)}"

    def registry(self, table: str) -> str:
        return f"{self.root}/_registry/{table}"

    def quarantine(self, name: str, version: int) -> str:
        return f"{self.root}/_quarantine/{check_name(name, argument='name')}/v{int(version)}"

    @property
    def validation_reports(self) -> str:
        return f"{self.root}/_validation/reports"

    @property
    def pipeline_progress(self) -> str:
        return f"{self.root}/_pipelines/progress"

    def monitoring(self, table: str) -> str:
        return f"{self.root}/_monitoring/{check_name(table, argument='table')}"

    def reports(self, name: str) -> Path:
        """A local folder for a report's markdown and PNG files (remote roots: under ./reports)."""
        base = Path(self.root.removeprefix("file:")) if self.is_local else Path("reports")
        return base / "_reports" / check_name(name, argument="report")

    @property
    def mlflow_folder(self) -> Path | None:
        """The embedded MLflow folder (local roots only)."""
        return Path(self.root.removeprefix("file:")) / "_mlflow" if self.is_local else None

    @property
    def spark_warehouse(self) -> str:
        return f"{self.root}/_spark_warehouse"
