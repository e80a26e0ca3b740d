"""The declarations of a feature repository: frozen values, no store inside, no I/O.

A repository file (``feature_repo.yaml``, plus the files it ``include``\\ s) is parsed into these
dataclasses by :func:`engine.config.from_mapping`, so an unknown key or a value of the wrong type
is a :class:`~engine.errors.ConfigError` naming the file and the key path. Durations are
written ``7d``, ``3h``, ``90 min``; instants are ISO dates or datetimes (UTC when naive).

Every mapping of definitions is keyed by name (``feature_groups.<name>``, ``pipelines.<name>``,
...); names follow the engine's safe-name rule (``[A-Za-z_][A-Za-z0-9_]*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

__all__ = [
    "GroupSpec",
    "InputSpec",
    "LookupSpec",
    "MonitoringSpec",
    "OnDemandSpec",
    "PipelineSpec",
    "RangeSpec",
    "RepositoryFile",
    "ScoringSpec",
    "SourceSpec",
    "SplitSpec",
    "StoreSpec",
    "TrainingSpec",
    "ViewSpec",
]


@dataclass(frozen=True)
class RangeSpec:
    """A half-open UTC time range ``[start, end)``."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class StoreSpec:
    """Where the repository's store lives. ``root`` is relative to the repository folder, or
    absolute, or a URI. The MLflow URIs default to the store's own (see FeatureStore)."""

    root: str
    tracking_uri: str | None = None
    registry_uri: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """A Delta table the repository reads: raw data, a labelled spine, ...

    ``path`` (relative to the store root, or absolute / a URI) defaults to ``tables/<name>`` in the
    store. With a ``loader`` (``module:function(spark, inputs, **options) -> DataFrame``, ``inputs``
    the named sources it reads as DataFrames), ``jobs.ingest`` (re)writes the table in one commit;
    without one the table is the user's and is only read.
    """

    path: str | None = None
    time_column: str | None = None
    loader: str | None = None
    inputs: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the loader
    description: str = ""


@dataclass(frozen=True)
class GroupSpec:
    """A feature group. ``version`` pins one; without it ``plan`` compares with the latest
    registered version and proposes the next one when the schema or keys changed."""

    primary_key: list[str]
    event_time: str
    schema: str
    version: int | None = None
    tie_breaker: str | None = None
    partition_by: list[str] = field(default_factory=list)
    description: str = ""
    tags: list[str] = field(default_factory=list)
    expectations: str | None = None  # a suite YAML, relative to the repository folder
    statistics: bool = True
    buckets: int | None = 16  # hash buckets of the primary key (engine.store.bucketing); null: no layout


@dataclass(frozen=True)
class InputSpec:
    """A pipeline input: a source or a feature group of the repository, by name."""

    source: str
    time_column: str | None = None  # default: the source's time column / the group's event time


@dataclass(frozen=True)
class PipelineSpec:
    """A feature pipeline into one group: exactly one of ``transform`` (an importable
    ``module:function(spark, inputs, time_range) -> DataFrame``) or ``sql`` (a SELECT over the
    inputs, written ``{input_name}``, with ``{start}`` and ``{end}`` the chunk's bounds)."""

    output: str
    inputs: dict[str, InputSpec | str]
    transform: str | None = None
    sql: str | None = None
    lookback: timedelta = timedelta(0)
    step: timedelta = timedelta(days=7)
    backfill: RangeSpec | None = None  # the default range of jobs.feature_backfill / jobs.run


@dataclass(frozen=True)
class LookupSpec:
    feature_group: str
    version: int | None = None
    features: list[str] | None = None
    lookback: timedelta | None = None
    prefix: str | None = None
    keys: dict[str, str] | None = None


@dataclass(frozen=True)
class OnDemandSpec:
    name: str
    function: str  # module:function
    inputs: list[str]
    return_type: str = "double"


@dataclass(frozen=True)
class ViewSpec:
    """A feature view. ``spine_source`` names a source holding the labelled spine."""

    spine_time: str
    lookups: list[LookupSpec] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    on_demand: list[OnDemandSpec] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    version: int | None = None
    spine_source: str | None = None
    description: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SplitSpec:
    """``time``: train / validation ranges of the spine time with a gap >= the view's longest
    lookback (``min_gap``); ``random``: fractions by a hash of the spine row."""

    kind: Literal["time", "random"] = "time"
    train: RangeSpec | None = None
    validation: RangeSpec | None = None
    min_gap: timedelta | None = None
    validation_fraction: float = 0.2
    seed: int = 42


@dataclass(frozen=True)
class TrainingSpec:
    """A training config: which view, which rows, how to split, and the model search
    (``model``: the training pipeline's config, e.g. ``family``, ``max_evals``, ``search_space``)."""

    view: str
    model: dict[str, Any]
    split: SplitSpec = field(default_factory=SplitSpec)
    time_range: RangeSpec | None = None  # default: train start .. validation end
    view_version: int | None = None
    label: str | None = None
    experiment: str | None = None  # default: <project>_<training name>
    registered_model: str | None = None  # default: the view's name
    alias: str = "champion"


@dataclass(frozen=True)
class ScoringSpec:
    """A batch scoring job: the model, the spine (a source), where predictions go (a table name
    of the store or a path), and the batches (one commit each; default: one batch, the whole spine)."""

    model: str
    spine: str
    output: str
    passthrough: list[str] = field(default_factory=list)
    batches: list[RangeSpec] = field(default_factory=list)


@dataclass(frozen=True)
class MonitoringSpec:
    """Drift of a scoring job's predictions against a training config's training rows, and the
    realised metrics once labels (a source with ``label``, joined on ``join_keys``) exist."""

    scoring: str
    reference: str  # a training config name
    thresholds: dict[str, Any] = field(default_factory=dict)  # engine.monitoring config keys
    labels: str | None = None
    join_keys: list[str] = field(default_factory=list)
    label: str | None = None
    by: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class RepositoryFile:
    r"""A repository's definitions: ``feature_repo.yaml`` merged with the files it ``include``\ s
    (relative to the repository folder; those hold definitions only)."""

    project: str | None = None
    store: StoreSpec | None = None
    include: list[str] = field(default_factory=list)
    python_paths: list[str] = field(default_factory=list)  # folders put on sys.path (default: the repo)
    sources: dict[str, SourceSpec] = field(default_factory=dict)
    feature_groups: dict[str, GroupSpec] = field(default_factory=dict)
    pipelines: dict[str, PipelineSpec] = field(default_factory=dict)
    views: dict[str, ViewSpec] = field(default_factory=dict)
    training: dict[str, TrainingSpec] = field(default_factory=dict)
    scoring: dict[str, ScoringSpec] = field(default_factory=dict)
    monitoring: dict[str, MonitoringSpec] = field(default_factory=dict)
