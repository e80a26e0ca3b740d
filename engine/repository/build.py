"""Turn a repository's declarations into engine objects (groups, pipelines, views, splits).

Nothing here writes: ``plan`` uses these to compare with the registry, ``apply`` to register,
and the runners to execute. Each function takes the store and the repository explicitly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError
from engine.repository.loader import REPO_FILE, Repository
from engine.repository.spec import InputSpec, RangeSpec, TrainingSpec
from engine.temporal.ranges import TimeRange

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.pipelines.feature import FeaturePipeline
    from engine.store.feature_group import FeatureGroup
    from engine.store.feature_store import FeatureStore
    from engine.store.feature_view import FeatureView
    from engine.store.training_dataset import RandomSplit, TimeSplit

__all__ = [
    "SqlTransform",
    "define_group",
    "define_pipeline",
    "define_view",
    "time_range",
    "training_split",
    "training_time_range",
]


def time_range(spec: RangeSpec, *, key: str, source: str) -> TimeRange:
    if spec.start >= spec.end:
        raise ConfigError(source=source, key=key, expected="start < end", found=f"{spec.start} .. {spec.end}")
    return TimeRange(spec.start, spec.end)


def define_group(fs: FeatureStore, repo: Repository, name: str, version: int) -> FeatureGroup:
    """Feature group ``name`` of the repository as version ``version`` (checked, not created)."""
    spec = repo.get("feature_groups", name)
    expectations = str(repo.file(spec.expectations)) if spec.expectations else None
    return fs.define_feature_group(
        name, version, primary_key=spec.primary_key, event_time=spec.event_time, schema=spec.schema,
        partition_by=spec.partition_by or None, description=spec.description, tags=spec.tags,
        expectations=expectations, tie_breaker=spec.tie_breaker, statistics=spec.statistics, buckets=spec.buckets,
    )


class SqlTransform:
    """A pipeline transformation written as SQL: ``{name}`` is an input DataFrame, ``{start}`` and
    ``{end}`` the chunk's bounds (TIMESTAMP literals). Runs with ``spark.sql(text, **frames)``."""

    def __init__(self, sql: str, *, pipeline: str) -> None:
        self.sql = sql
        self.pipeline = pipeline
        # how the registry names the transform: a change of the SQL text is a change of the pipeline
        self.__module__ = "sql"
        self.__qualname__ = f"{pipeline}_{hashlib.sha1(sql.encode()).hexdigest()[:12]}"

    def __call__(self, spark: SparkSession, inputs: dict[str, DataFrame], time_range: TimeRange) -> DataFrame:
        return spark.sql(self.sql, start=_SqlLiteral(time_range.start), end=_SqlLiteral(time_range.end), **inputs)


class _SqlLiteral:
    """An instant that ``spark.sql``'s formatter inserts as a TIMESTAMP literal (not a quoted string)."""

    def __init__(self, instant: Any) -> None:
        self.text = "TIMESTAMP '" + instant.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00:00'"

    def __format__(self, spec: str) -> str:
        return self.text


def define_pipeline(fs: FeatureStore, repo: Repository, name: str, groups: Mapping[str, FeatureGroup]) -> FeaturePipeline:
    """Pipeline ``name`` writing into ``groups[output]`` (the group versions of this operation)."""
    from engine.pipelines.feature import FeaturePipeline, Input

    spec = repo.get("pipelines", name)
    transform = (
        repo.function(spec.transform, argument=f"pipelines.{name}.transform")
        if spec.transform is not None else SqlTransform(spec.sql or "", pipeline=name)
    )
    inputs = {}
    for key, value in spec.inputs.items():
        used = value if isinstance(value, InputSpec) else InputSpec(source=value)
        if used.source in repo.feature_groups:
            inputs[key] = Input(groups[used.source], time_column=used.time_column)
        else:
            source = repo.get("sources", used.source)
            inputs[key] = Input(repo.source_path(used.source, fs), time_column=used.time_column or source.time_column)
    return FeaturePipeline(name, transform, inputs=inputs, output=groups[spec.output], lookback=spec.lookback,
                           step=spec.step)


def define_view(fs: FeatureStore, repo: Repository, name: str, version: int, group_versions: Mapping[str, int]) -> FeatureView:
    """View ``name`` as version ``version``, lookups pinned to ``group_versions`` (not registered)."""
    from engine.store.feature_view import FeatureLookup, FeatureView, OnDemandFeature

    spec = repo.get("views", name)
    lookups = [
        FeatureLookup(
            feature_group=lk.feature_group, version=lk.version or group_versions[lk.feature_group],
            features=None if lk.features is None else list(lk.features), lookback=lk.lookback, prefix=lk.prefix,
            keys=None if lk.keys is None else dict(lk.keys),
        )
        for lk in spec.lookups
    ]
    on_demand = []
    for od in spec.on_demand:
        repo.function(od.function, argument=f"views.{name}.on_demand[{od.name}].function")  # importable now
        on_demand.append(OnDemandFeature(od.name, od.function, tuple(od.inputs), od.return_type))
    extra: dict[str, Any] = {"exclude": list(spec.exclude)} if spec.exclude else {}
    return FeatureView(
        store=fs, name=name, version=version, spine_time=spec.spine_time, labels=list(spec.labels), lookups=lookups,
        on_demand=on_demand, description=spec.description, tags=list(spec.tags),
        spine_source=None if spec.spine_source is None else repo.source_path(spec.spine_source, fs), **extra,
    )


def training_split(repo: Repository, name: str) -> TimeSplit | RandomSplit | None:
    """The split of training config ``name``."""
    from engine.store.training_dataset import RandomSplit, TimeSplit

    spec: TrainingSpec = repo.get("training", name)
    source = str(repo.folder / REPO_FILE)
    split = spec.split
    if split.kind == "random":
        return RandomSplit(fractions={"train": 1 - split.validation_fraction, "validation": split.validation_fraction},
                           seed=split.seed)
    if split.train is None or split.validation is None:
        raise ConfigError(source=source, key=f"training.{name}.split", expected="train and validation ranges for a time split",
                          found=f"train={split.train}, validation={split.validation}")
    kwargs: dict[str, Any] = {} if split.min_gap is None else {"min_gap": split.min_gap}
    return TimeSplit(
        train=time_range(split.train, key=f"training.{name}.split.train", source=source),
        validation=time_range(split.validation, key=f"training.{name}.split.validation", source=source), **kwargs,
    )


def training_time_range(repo: Repository, name: str) -> TimeRange:
    """The spine rows a training config reads: ``time_range``, else train start .. validation end."""
    spec: TrainingSpec = repo.get("training", name)
    source = str(repo.folder / REPO_FILE)
    if spec.time_range is not None:
        return time_range(spec.time_range, key=f"training.{name}.time_range", source=source)
    if spec.split.train is None or spec.split.validation is None:
        raise ConfigError(source=source, key=f"training.{name}.time_range", expected="a time range (or a time split)",
                          found="nothing")
    return TimeRange(min(spec.split.train.start, spec.split.validation.start),
                     max(spec.split.train.end, spec.split.validation.end))
