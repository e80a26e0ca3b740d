"""The feature store facade: everything lives under one ``root`` as Delta tables.

Where each thing lives is decided in one place, :class:`engine.store.layout.StoreLayout`
(``fs.layout``). A store also knows its MLflow tracking store and model registry
(``fs.tracking_uri``, ``fs.registry_uri``): given explicitly, else ``$MLFLOW_TRACKING_URI`` /
``$MLFLOW_REGISTRY_URI``, else an embedded SQLite database inside a local root
(``<root>/_mlflow/mlflow.db``) -- never anything derived from the working directory.

``root`` is a local folder or any Hadoop-compatible URI (``s3://``, ``abfss://``, ``dbfs:/``).
Example::

    fs = FeatureStore(spark, "warehouse/store")
    weather = fs.create_feature_group(
        "weather_hourly", primary_key="origin", event_time="time_hour",
        schema="origin STRING, time_hour TIMESTAMP, temp DOUBLE COMMENT 'degrees F'",
        description="hourly weather at the three NYC airports", tags=["weather"],
    )
    weather.insert(frame)
    fs.search("temp"), fs.lineage("weather_hourly")
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from engine.env import MLFLOW_REGISTRY_URI, MLFLOW_TRACKING_URI
from engine.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
)
from engine.store.bucketing import DEFAULT_BUCKETS, create_group_table
from engine.store.feature_group import FeatureGroup
from engine.store.group_definition import as_list, check_version, structural_differences
from engine.store.layout import StoreLayout
from engine.store.names import check_name
from engine.store.registry import Commit, Edge, Entity, Node, Registry

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from engine.pipelines.feature import FeaturePipeline
    from engine.store.feature_view import FeatureView
    from engine.store.training_dataset import TrainingDataset

__all__ = ["FeatureStore"]

log = logging.getLogger(__name__)


class FeatureStore:
    """Feature groups, their registry and their pipelines' bookkeeping under one root."""

    def __init__(
        self,
        spark: SparkSession,
        root: str | os.PathLike[str],
        *,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
    ) -> None:
        self.spark = spark
        self.layout = StoreLayout.of(root)
        self.root = self.layout.root
        self._tracking_uri = _check_uri(tracking_uri, "tracking_uri") or MLFLOW_TRACKING_URI.get()
        self._registry_uri = _check_uri(registry_uri, "registry_uri") or MLFLOW_REGISTRY_URI.get()
        self.registry = Registry(spark, self.root)

    def __repr__(self) -> str:
        return f"FeatureStore({self.root!r})"

    # -- locations -----------------------------------------------------------------------------

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI of this store (see the module docs for the order of choice)."""
        if self._tracking_uri:
            return self._tracking_uri
        folder = self.layout.mlflow_folder
        if folder is None:
            raise InvalidArgumentError(
                argument="tracking_uri", expected="an MLflow tracking URI for a store on remote storage",
                found=f"none (root {self.root!r} is not a local folder and $MLFLOW_TRACKING_URI is unset)",
                hint="Pass FeatureStore(spark, root, tracking_uri='databricks' or 'http://mlflow:5000').",
            )
        return f"sqlite:///{folder / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        """The MLflow model registry URI (default: the tracking URI)."""
        return self._registry_uri or self.tracking_uri

    def feature_group_path(self, name: str, version: int) -> str:
        return self.layout.feature_group(name, version)

    def quarantine_path(self, name: str, version: int) -> str:
        return self.layout.quarantine(name, version)

    def table_path(self, name: str) -> str:
        """A named table of this store (``<root>/tables/<name>``)."""
        return self.layout.table(name)

    @property
    def validation_reports_path(self) -> str:
        return self.layout.validation_reports

    @property
    def pipeline_progress_path(self) -> str:
        return self.layout.pipeline_progress

    # -- feature groups ------------------------------------------------------------------------

    def define_feature_group(
        self,
        name: str,
        version: int = 1,
        *,
        primary_key: str | Sequence[str],
        event_time: str,
        schema: StructType | str | DataFrame,
        partition_by: str | Sequence[str] | None = None,
        description: str = "",
        tags: Sequence[str] | None = None,
        expectations: Any = None,
        tie_breaker: str | None = None,
        statistics: bool = True,
        buckets: int | None = DEFAULT_BUCKETS,
    ) -> FeatureGroup:
        """A checked feature group definition, not yet created (no table, no registry row).

        ``schema`` is a ``StructType``, a DDL string or a DataFrame whose schema is taken (as
        hsfs and Databricks Feature Engineering do); column comments become feature
        descriptions. ``event_time`` must be a TIMESTAMP column (a UTC instant). ``expectations``
        is an ``engine.validation.ExpectationSuite`` or the path of a suite YAML file.
        ``buckets``: the table's rows are hash-bucketed by primary key into this many Delta
        partitions so lookups read one bucket per task without shuffling the features (see
        :mod:`engine.store.bucketing`; about the cores lookups should use); None: no layout.
        """
        from engine.store.group_definition import define_group

        return define_group(
            self, name, version, primary_key=primary_key, event_time=event_time, schema=schema,
            partition_by=partition_by, description=description, tags=tags, expectations=expectations,
            tie_breaker=tie_breaker, statistics=statistics, buckets=buckets,
        )

    def update_feature_group(self, group: FeatureGroup) -> FeatureGroup:
        """Re-register ``group``'s metadata (description, tags, column comments, expectations,
        statistics) for an existing version whose columns and keys are unchanged."""
        stored = self.get_feature_group(group.name, group.version)
        differences = structural_differences(stored, group)
        if differences:
            raise AlreadyExistsError(
                kind="feature group", name=f"{group.name} v{group.version}",
                hint=f"It has a different {', '.join(differences)}: only metadata can change in place; create a new version.",
            )
        self._register_group(group)
        return group

    def create_feature_group(
        self,
        name: str,
        version: int = 1,
        *,
        primary_key: str | Sequence[str],
        event_time: str,
        schema: StructType | str | DataFrame,
        partition_by: str | Sequence[str] | None = None,
        description: str = "",
        tags: Sequence[str] | None = None,
        expectations: Any = None,
        tie_breaker: str | None = None,
        statistics: bool = True,
        buckets: int | None = DEFAULT_BUCKETS,
        exist_ok: bool = False,
    ) -> FeatureGroup:
        """Create a feature group (an empty Delta table plus its registry rows) and return it.

        The arguments are those of :meth:`define_feature_group`. With ``exist_ok=True`` an
        identical existing definition is returned; a different one is an :class:`AlreadyExistsError`.
        """
        group = self.define_feature_group(
            name, version, primary_key=primary_key, event_time=event_time, schema=schema, partition_by=partition_by,
            description=description, tags=tags, expectations=expectations, tie_breaker=tie_breaker,
            statistics=statistics, buckets=buckets,
        )
        existing = self._group_entity(name, version)
        if existing is not None:
            if not exist_ok:
                raise AlreadyExistsError(
                    kind="feature group", name=f"{name} v{version}",
                    hint=f"Pass exist_ok=True to reuse it, or create version {self._latest_version(name) + 1}.",
                )
            stored = self._from_entity(existing)
            differences = structural_differences(stored, group)
            if differences:
                raise AlreadyExistsError(
                    kind="feature group", name=f"{name} v{version}",
                    hint=f"It has a different {', '.join(differences)}; create a new version instead.",
                )
            return stored
        create_group_table(self.spark, group)
        self._register_group(group)
        log.info("created %r at %s", group, group.path)
        return group

    def get_feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """The feature group ``name`` at ``version`` (the latest version when None)."""
        check_name(name, argument="name")
        if version is not None:
            check_version(version)
        versions = {e.version: e for e in self.registry.entities(kind="feature_group", name=name)}
        if not versions:
            known = sorted({e.name for e in self.registry.entities(kind="feature_group")})
            raise NotFoundError(kind="feature group", name=repr(name), hint=f"Known feature groups: {known}.")
        chosen = max(versions) if version is None else version
        if chosen not in versions:
            raise NotFoundError(
                kind="feature group", name=f"{name!r} version {version}", hint=f"Known versions: {sorted(versions)}."
            )
        return self._from_entity(versions[chosen])

    def list_feature_groups(self) -> list[FeatureGroup]:
        """Every feature group version, sorted by name and version."""
        return [self._from_entity(e) for e in self.registry.entities(kind="feature_group")]

    def search(self, text: str | None = None, *, tags: Sequence[str] | None = None) -> list[Entity]:
        """Feature groups and features whose name, description or a tag contains ``text``
        (case-insensitive) and that carry every tag in ``tags``."""
        needle = (text or "").lower()
        wanted = set(as_list(tags, argument="tags"))
        hits = []
        for entity in self.registry.entities(kind=["feature_group", "feature"]):
            haystack = [entity.name, entity.description, *entity.tags]
            if needle and not any(needle in h.lower() for h in haystack):
                continue
            if not wanted <= set(entity.tags):
                continue
            hits.append(entity)
        return hits

    # -- registry ------------------------------------------------------------------------------

    def commits(self, feature_group: str | None = None, version: int | None = None) -> list[Commit]:
        """Recorded commits of all groups (or one group / version), oldest first."""
        return self.registry.commits(feature_group, version)

    def record_lineage(
        self, src: Node | Iterable[Node], dst: Node, *, properties: Mapping[str, Any] | None = None
    ) -> None:
        """Record that ``dst`` was built from ``src`` (any kinds: tables, groups, views, models...)."""
        self.registry.record_lineage(src, dst, properties=properties)

    def lineage(
        self, node: Node | str, *, direction: Literal["upstream", "downstream", "both"] = "both"
    ) -> list[Edge]:
        """All edges reachable from ``node`` in one call: a :class:`Node` (``version=None``: every
        version), a reference ``"kind:name@vN"`` / ``"kind:name"``, or a bare name that names exactly
        one node (else an error listing the candidates)."""
        return self.registry.lineage(node, direction=direction)

    def register_pipeline(self, pipeline: FeaturePipeline) -> FeaturePipeline:
        """Register a feature pipeline's definition and its lineage (inputs -> output group)."""
        if pipeline.output.store.root != self.root:
            raise InvalidArgumentError(
                argument="pipeline", expected=f"a pipeline writing into this store ({self.root})",
                found=f"output in {pipeline.output.store.root}",
            )
        self.registry.register([Entity(kind="pipeline", name=pipeline.name, definition=pipeline.definition())])
        self.registry.record_lineage(
            [i.node for i in pipeline.inputs.values()], pipeline.output.node, properties={"pipeline": pipeline.name}
        )
        return pipeline

    # -- feature views and training datasets (engine.store.feature_view / training_dataset) -----

    def create_feature_view(self, name: str, version: int = 1, **kwargs: Any) -> FeatureView:
        """Define and register a feature view; see :func:`engine.store.feature_view.create_feature_view`."""
        from engine.store.feature_view import create_feature_view

        return create_feature_view(self, name, version, **kwargs)

    def get_feature_view(self, name: str, version: int | None = None) -> FeatureView:
        from engine.store.feature_view import get_feature_view

        return get_feature_view(self, name, version)

    def list_feature_views(self) -> list[FeatureView]:
        """Every feature view version, sorted by name and version."""
        from engine.store.feature_view import FeatureView

        return [FeatureView.from_entity(self, e) for e in self.registry.entities(kind="feature_view")]

    def list_training_datasets(self, view_name: str | None = None) -> list[TrainingDataset]:
        """Every recorded training dataset (of one view when ``view_name`` is given), oldest first."""
        from engine.store.training_dataset import dataset_from_entity

        entities = self.registry.entities(kind="training_dataset", name=view_name)
        return [dataset_from_entity(self, e) for e in entities]

    def create_training_dataset(self, view: FeatureView, **kwargs: Any) -> TrainingDataset:
        """Materialise a view's training data; see :func:`engine.store.training_dataset.create_training_dataset`."""
        from engine.store.training_dataset import create_training_dataset

        return create_training_dataset(self, view, **kwargs)

    def get_training_dataset(self, view_name: str, view_version: int, version: int | None = None) -> TrainingDataset:
        from engine.store.training_dataset import get_training_dataset

        return get_training_dataset(self, view_name, view_version, version)

    # -- internals shared with FeatureGroup -----------------------------------------------------

    def _register_group(self, group: FeatureGroup) -> None:
        self.registry.register(group.to_entities())

    def _group_entity(self, name: str, version: int) -> Entity | None:
        found = [e for e in self.registry.entities(kind="feature_group", name=name) if e.version == version]
        return found[0] if found else None

    def _latest_version(self, name: str) -> int:
        return max((e.version or 0 for e in self.registry.entities(kind="feature_group", name=name)), default=0)

    def _from_entity(self, entity: Entity) -> FeatureGroup:
        from pyspark.sql.types import StructType

        d = entity.definition
        return FeatureGroup(
            self, name=entity.name, version=int(entity.version or 0), schema=StructType.fromJson(d["schema"]),
            primary_key=d["primary_key"], event_time=d["event_time"], partition_by=d.get("partition_by") or [],
            description=entity.description, tags=list(entity.tags), tie_breaker=d.get("tie_breaker"),
            expectations=d.get("expectations"), statistics=d.get("statistics", True), buckets=d.get("buckets"),
        )


def _check_uri(value: Any, argument: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(argument=argument, expected="an MLflow URI (sqlite:///..., http(s)://..., databricks)",
                                   found=repr(value))
    return value.strip()
