"""The feature store facade: everything lives under one ``root`` as Delta tables.

::

    root/feature_groups/<name>/v<version>   one Delta table per feature group version
    root/_registry/{entities,commits,lineage,statistics}
    root/_quarantine/<name>/v<version>      rows refused by a ``quarantine`` expectation suite
    root/_validation/reports                validation reports
    root/_pipelines/progress                feature pipeline chunk log

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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import (
    AlreadyExistsError,
    ColumnNotFoundError,
    ColumnTypeError,
    InvalidArgumentError,
    NotFoundError,
)
from engine.store import delta
from engine.store.feature_group import FeatureGroup
from engine.store.names import check_name, check_names
from engine.store.registry import Commit, Edge, Entity, Node, Registry

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

    from engine.pipelines.feature import FeaturePipeline
    from engine.store.feature_view import FeatureView
    from engine.store.training_dataset import TrainingDataset

__all__ = ["FeatureStore"]

log = logging.getLogger(__name__)


class FeatureStore:
    """Feature groups, their registry and their pipelines' bookkeeping under one root."""

    def __init__(self, spark: SparkSession, root: str | os.PathLike[str], *, tracking_uri: str | None = None,
                 registry_uri: str | None = None) -> None:
        if not isinstance(root, (str, os.PathLike)) or not str(root).strip():
            raise InvalidArgumentError(argument="root", expected="a folder path or URI", found=repr(root))
        for argument, value in (("tracking_uri", tracking_uri), ("registry_uri", registry_uri)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidArgumentError(argument=argument, expected="an MLflow URI (str) or None", found=repr(value))
        self.spark = spark
        self.root = str(Path(root).resolve()) if "://" not in str(root) and ":/" not in str(root) else str(root).rstrip("/")
        self.registry = Registry(spark, self.root)
        from engine.env import MLFLOW_TRACKING_URI

        # MLflow runs and models of this store: SQLite in <root>/_mlflow (artifacts in <root>/_mlflow/artifacts)
        self._tracking_uri = tracking_uri or MLFLOW_TRACKING_URI.get() or f"sqlite:///{self.root}/_mlflow/mlflow.db"
        self._registry_uri = registry_uri or self._tracking_uri

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI of this store's runs (constructor keyword, $MLFLOW_TRACKING_URI,
        else SQLite in ``<root>/_mlflow/mlflow.db`` with artifacts in ``<root>/_mlflow/artifacts``)."""
        return self._tracking_uri

    @property
    def registry_uri(self) -> str:
        """The MLflow model registry URI (constructor keyword, else the tracking URI)."""
        return self._registry_uri

    def __repr__(self) -> str:
        return f"FeatureStore({self.root!r})"

    # -- locations -----------------------------------------------------------------------------

    def feature_group_path(self, name: str, version: int) -> str:
        return f"{self.root}/feature_groups/{check_name(name, argument='name')}/v{int(version)}"

    def quarantine_path(self, name: str, version: int) -> str:
        return f"{self.root}/_quarantine/{check_name(name, argument='name')}/v{int(version)}"

    @property
    def validation_reports_path(self) -> str:
        return f"{self.root}/_validation/reports"

    @property
    def pipeline_progress_path(self) -> str:
        return f"{self.root}/_pipelines/progress"

    # -- feature groups ------------------------------------------------------------------------

    def create_feature_group(
        self,
        name: str,
        version: int = 1,
        *,
        primary_key: str | Sequence[str],
        event_time: str,
        schema: StructType | str,
        partition_by: str | Sequence[str] | None = None,
        description: str = "",
        tags: Sequence[str] | None = None,
        expectations: Any = None,
        tie_breaker: str | None = None,
        statistics: bool = True,
        exist_ok: bool = False,
    ) -> FeatureGroup:
        """Create a feature group (an empty Delta table plus its registry rows) and return it.

        ``schema`` is a ``StructType`` or a DDL string; column comments become feature
        descriptions. ``event_time`` must be a TIMESTAMP column (a UTC instant). ``expectations``
        is an ``engine.validation.ExpectationSuite`` or the path of a suite YAML file. With
        ``exist_ok=True`` an identical existing definition is returned; a different one is an
        :class:`AlreadyExistsError`.
        """
        from pyspark.sql import types as T

        check_name(name, argument="name")
        _check_version(version)
        struct = self._parse_schema(schema)
        columns = struct.fieldNames()
        check_names(columns, argument="schema (column name)")
        keys = _as_list(primary_key, argument="primary_key")
        if not keys:
            raise InvalidArgumentError(argument="primary_key", expected="at least one column", found="[]")
        for argument, wanted in (("primary_key", keys), ("event_time", [event_time]),
                                 ("partition_by", _as_list(partition_by, argument="partition_by")),
                                 ("tie_breaker", [tie_breaker] if tie_breaker else [])):
            for column in wanted:
                if column not in columns:
                    raise ColumnNotFoundError(argument=argument, column=column, side="schema", available=columns)
        if event_time in keys or (tie_breaker and tie_breaker in [*keys, event_time]):
            raise InvalidArgumentError(
                argument="event_time/tie_breaker", expected="columns distinct from the primary key and each other",
                found=f"primary_key={keys}, event_time={event_time!r}, tie_breaker={tie_breaker!r}",
            )
        event_type = struct[event_time].dataType
        if not isinstance(event_type, T.TimestampType) or isinstance(event_type, T.TimestampNTZType):
            raise ColumnTypeError(
                argument="event_time", column=event_time, expected="TIMESTAMP (a UTC instant)",
                found=event_type.simpleString(),
                hint="TIMESTAMP_NTZ is a wall-clock time: convert it, e.g. to_utc_timestamp(col, 'America/New_York')."
                if isinstance(event_type, T.TimestampNTZType) else "Convert it, e.g. with to_timestamp(col).",
            )
        if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
            raise InvalidArgumentError(argument="tags", expected="a list of strings", found=repr(tags))
        suite = _load_suite(expectations)
        group = FeatureGroup(
            self, name=name, version=version, schema=struct, primary_key=keys, event_time=event_time,
            partition_by=_as_list(partition_by, argument="partition_by"), description=description,
            tags=list(tags or []), tie_breaker=tie_breaker, expectations=suite, statistics=statistics,
        )
        existing = self._group_entity(name, version)
        if existing is not None:
            if not exist_ok:
                raise AlreadyExistsError(
                    kind="feature group", name=f"{name} v{version}",
                    hint=f"Pass exist_ok=True to reuse it, or create version {self._latest_version(name) + 1}.",
                )
            stored = self._from_entity(existing)
            differences = [
                attr for attr in ("primary_key", "event_time", "tie_breaker", "partition_by")
                if getattr(stored, attr) != getattr(group, attr)
            ] + ([] if _same_columns(stored.schema, struct) else ["schema"])
            if differences:
                raise AlreadyExistsError(
                    kind="feature group", name=f"{name} v{version}",
                    hint=f"It has a different {', '.join(differences)}; create a new version instead.",
                )
            return stored
        delta.create_table(self.spark, group.path, struct, partition_by=group.partition_by, comment=description or None,
                           exist_ok=True)
        self._register_group(group)
        log.info("created %r at %s", group, group.path)
        return group

    def get_feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """The feature group ``name`` at ``version`` (the latest version when None)."""
        check_name(name, argument="name")
        if version is not None:
            _check_version(version)
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
        wanted = set(_as_list(tags, argument="tags"))
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
        """All edges reachable from ``node`` (a :class:`Node` or a name) in one call."""
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
            expectations=d.get("expectations"), statistics=d.get("statistics", True),
        )

    def _parse_schema(self, schema: StructType | str) -> StructType:
        from pyspark.sql.types import StructType

        if isinstance(schema, StructType):
            return schema
        if isinstance(schema, str) and schema.strip():
            try:
                return self.spark.createDataFrame([], schema).schema
            except Exception as err:
                raise InvalidArgumentError(
                    argument="schema", expected="a valid DDL string such as 'id BIGINT, ts TIMESTAMP'",
                    found=repr(schema), hint=str(err).splitlines()[0][:200],
                ) from None
        raise InvalidArgumentError(argument="schema", expected="a StructType or a DDL string", found=repr(schema))


def _check_version(version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgumentError(argument="version", expected="an integer >= 1", found=repr(version))


def _as_list(value: str | Sequence[str] | None, *, argument: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgumentError(argument=argument, expected="a column name or a list of them", found=repr(value))


def _same_columns(a: StructType, b: StructType) -> bool:
    return [(f.name, f.dataType) for f in a.fields] == [(f.name, f.dataType) for f in b.fields]


def _load_suite(expectations: Any) -> Any:
    """``None``, an ExpectationSuite, or the path of a suite YAML file -> a suite or None."""
    if expectations is None:
        return None
    from engine import validation

    if isinstance(expectations, (str, os.PathLike)):
        return validation.load_suite(expectations)
    if isinstance(expectations, validation.ExpectationSuite):
        return expectations
    raise InvalidArgumentError(
        argument="expectations", expected="an ExpectationSuite or the path of a suite YAML file",
        found=type(expectations).__name__,
    )
