"""Training datasets: a feature view's training data materialised as a versioned Delta table.

``create_training_dataset(store, view, spine=... | time_range=..., split=...)`` looks features up
for the spine (or for the view's ``spine_source`` rows in a time range), adds a ``split`` column,
writes the table in one commit (through :func:`engine.store.delta.write_table`) and records, in
the registry, the Delta version of every source feature group it read (and of the spine source).
:meth:`TrainingDataset.rebuild` recomputes it from exactly those versions, so it is reproducible
bit for bit after the groups have changed: before the dataset is registered, each source group's
expired-log clean-up is turned off, so Delta's log retention never deletes the log of those
versions (see :mod:`engine.store._group_commits`; VACUUM is guarded by ``FeatureGroup.vacuum``).

Splits: :class:`TimeSplit` (train / validation / test time ranges; between consecutive ranges a
gap at least as long as the view's longest lookback, and at least ``min_gap``, so no feature of a
later split is computed from rows inside an earlier split's horizon) or :class:`RandomSplit`
(deterministic: a hash of the spine columns, not ``rand()``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import AlreadyExistsError, ColumnNotFoundError, InvalidArgumentError, NotFoundError, TimeRangeError
from engine.store import delta
from engine.store._group_commits import protect_time_travel, rows_written
from engine.store.registry import Edge, Entity, Node
from engine.temporal.ranges import TimeRange

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from engine.store.feature_store import FeatureStore
    from engine.store.feature_view import FeatureView

__all__ = ["RandomSplit", "TimeSplit", "TrainingDataset", "create_training_dataset", "get_training_dataset"]

log = logging.getLogger(__name__)
SPLIT = "split"


@dataclass(frozen=True)
class TimeSplit:
    """Split by the spine time: rows in ``train``, ``validation`` (and ``test``); rows in the gaps
    are dropped. Gaps must be >= max(view's longest lookback, ``min_gap``)."""

    train: TimeRange
    validation: TimeRange
    test: TimeRange | None = None
    min_gap: timedelta = timedelta(0)

    def ranges(self) -> dict[str, TimeRange]:
        out = {"train": self.train, "validation": self.validation}
        if self.test is not None:
            out["test"] = self.test
        return out

    def check(self, required_gap: timedelta) -> None:
        gap = max(required_gap, self.min_gap)
        ordered = list(self.ranges().items())
        for name, value in ordered:
            if not isinstance(value, TimeRange):
                raise InvalidArgumentError(argument=f"split.{name}", expected="a TimeRange", found=repr(value))
        for (first, a), (second, b) in itertools.pairwise(ordered):
            if b.start - a.end < gap:
                raise TimeRangeError(
                    argument=f"split.{second}",
                    expected=f"{second} to start at least {gap} after {first} ends (the longest lookback/window)",
                    start=b.start.isoformat(), end=a.end.isoformat(),
                    hint=f"Found a gap of {b.start - a.end}.",
                )

    def column(self, time_col: Column) -> Column:
        from pyspark.sql import functions as F

        expr = None
        for name, rng in self.ranges().items():
            cond = (time_col >= F.lit(rng.start)) & (time_col < F.lit(rng.end))
            expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
        assert expr is not None
        return expr

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "time", **{k: [v.start.isoformat(), v.end.isoformat()] for k, v in self.ranges().items()},
            "min_gap_seconds": self.min_gap.total_seconds(),
        }


@dataclass(frozen=True)
class RandomSplit:
    """Deterministic random split by a hash of the spine columns: ``{"train": 0.8, "validation": 0.2}``."""

    fractions: Mapping[str, float] = field(default_factory=lambda: {"train": 0.8, "validation": 0.2})
    seed: int = 42

    def check(self, required_gap: timedelta) -> None:
        values = list(self.fractions.values())
        if not values or any(not isinstance(v, (int, float)) or v <= 0 for v in values) or abs(sum(values) - 1) > 1e-9:
            raise InvalidArgumentError(
                argument="split.fractions", expected="positive fractions summing to 1", found=dict(self.fractions)
            )

    def column(self, spine_cols: list[str]) -> Column:
        from pyspark.sql import functions as F

        bucket = F.pmod(F.xxhash64(F.lit(self.seed), *[F.col(_q(c)) for c in spine_cols]), F.lit(1_000_000)) / 1_000_000
        expr = None
        upper = 0.0
        for name, fraction in self.fractions.items():
            upper += fraction
            cond = bucket < F.lit(upper)
            expr = F.when(cond, F.lit(name)) if expr is None else expr.when(cond, F.lit(name))
        assert expr is not None
        return expr.otherwise(F.lit(list(self.fractions)[-1]))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "random", "fractions": dict(self.fractions), "seed": self.seed}


@dataclass
class TrainingDataset:
    """One materialised training dataset of a feature view."""

    store: FeatureStore
    view_name: str
    view_version: int
    version: int
    path: str
    source_versions: dict[str, int]
    spine_source: str | None
    spine_version: int | None
    split: dict[str, Any]
    rows: int
    time_range: list[str] | None = None
    description: str = ""

    @property
    def node(self) -> Node:
        return Node("training_dataset", f"{self.view_name}_v{self.view_version}", self.version)

    def read(self, split: str | None = None) -> DataFrame:
        """The stored rows (one split if given)."""
        from pyspark.sql import functions as F

        frame = delta.read(self.store.spark, self.path)
        return frame if split is None else frame.where(F.col(SPLIT) == split)

    def view(self) -> FeatureView:
        return self.store.get_feature_view(self.view_name, self.view_version)

    def rebuild(self) -> DataFrame:
        """Recompute the dataset from the recorded source versions (not the groups' current state)."""
        stored = self.read()
        spine = stored.select(*[c for c in self._spine_columns(stored)])
        view = self.view()
        return _with_split(view.training_data(spine, as_of_versions=self.source_versions), self._split_obj(), view,
                           spine.columns).select(*stored.columns)

    def _spine_columns(self, stored: DataFrame) -> list[str]:
        return list(self.split.get("spine_columns") or [])

    def _split_obj(self) -> TimeSplit | RandomSplit | None:
        kind = self.split.get("kind")
        if kind == "time":
            from engine.config import parse_instant

            def rng(name: str) -> TimeRange | None:
                v = self.split.get(name)
                return None if v is None else TimeRange(parse_instant(v[0]), parse_instant(v[1]))

            train, validation = rng("train"), rng("validation")
            assert train is not None and validation is not None
            return TimeSplit(train, validation, rng("test"), timedelta(seconds=self.split.get("min_gap_seconds", 0)))
        if kind == "random":
            return RandomSplit(self.split["fractions"], self.split["seed"])
        return None

    def to_entity(self) -> Entity:
        return Entity(
            kind="training_dataset", name=self.view_name, version=self.version, parent=f"v{self.view_version}",
            description=self.description, definition={
                "path": self.path, "source_versions": self.source_versions, "spine_source": self.spine_source,
                "spine_version": self.spine_version, "split": self.split, "rows": self.rows, "time_range": self.time_range,
            },
        )


def _with_split(frame: DataFrame, split: TimeSplit | RandomSplit | None, view: FeatureView, spine_cols: list[str]) -> DataFrame:
    from pyspark.sql import functions as F

    if split is None:
        return frame.withColumn(SPLIT, F.lit("train"))
    if isinstance(split, TimeSplit):
        labelled = frame.withColumn(SPLIT, split.column(F.col(_q(view.spine_time))))
    else:
        labelled = frame.withColumn(SPLIT, split.column(spine_cols))
    return labelled.where(F.col(SPLIT).isNotNull())


def create_training_dataset(
    store: FeatureStore,
    view: FeatureView,
    *,
    spine: DataFrame | None = None,
    time_range: TimeRange | None = None,
    split: TimeSplit | RandomSplit | None = None,
    description: str = "",
) -> TrainingDataset:
    """Materialise ``view``'s training data for ``spine`` (or the view's spine source rows in
    ``time_range``) as the next version of its training datasets, in one Delta commit."""
    from pyspark.sql import functions as F

    if (spine is None) == (time_range is None):
        raise InvalidArgumentError(
            argument="spine/time_range", expected="exactly one of a spine DataFrame or a time range",
            found=f"spine={'given' if spine is not None else None}, time_range={time_range}",
        )
    if split is not None and not isinstance(split, (TimeSplit, RandomSplit)):
        raise InvalidArgumentError(argument="split", expected="a TimeSplit, a RandomSplit or None", found=repr(split))
    if split is not None:
        split.check(view.max_lookback)
    spine_version = None
    if time_range is not None:
        if not isinstance(time_range, TimeRange):
            raise InvalidArgumentError(argument="time_range", expected="a TimeRange", found=repr(time_range))
        if view.spine_source is None:
            raise InvalidArgumentError(
                argument="time_range", expected="a feature view with a spine_source table", found="spine_source=None",
                hint="Pass a spine DataFrame instead.",
            )
        spine_version = delta.current_version(store.spark, view.spine_source)
        source = delta.read(store.spark, view.spine_source, version=spine_version)
        if view.spine_time not in source.columns:
            raise ColumnNotFoundError(argument="spine_source", column=view.spine_time, side="spine source", available=source.columns)
        t = F.col(_q(view.spine_time))
        spine = source.where((t >= F.lit(time_range.start)) & (t < F.lit(time_range.end)))
    assert spine is not None
    source_versions = view.source_versions()
    spine_cols = list(spine.columns)
    frame = _with_split(view.training_data(spine, as_of_versions=source_versions), split, view, spine_cols)

    version, path = _write_next_version(store, view, frame)
    rows = rows_written(store.spark, path, 0, otherwise=delta.read(store.spark, path))  # the table's one commit
    split_info = (split.to_dict() if split is not None else {"kind": "none"}) | {"spine_columns": spine_cols}
    dataset = TrainingDataset(
        store=store, view_name=view.name, view_version=view.version, version=version, path=path,
        source_versions=source_versions, spine_source=view.spine_source, spine_version=spine_version, split=split_info,
        rows=rows, time_range=None if time_range is None else [time_range.start.isoformat(), time_range.end.isoformat()],
        description=description,
    )
    sources = [Node("feature_group", key.split(":v")[0], int(key.split(":v")[1])) for key in source_versions]
    for node in sources:  # before registering: a registered dataset's sources always keep their log
        protect_time_travel(store.get_feature_group(node.name, node.version))
    store.registry.register([dataset.to_entity()])
    edges = [Edge(node, dataset.node, {"source_versions": source_versions}) for node in [*sources, view.node]]
    if view.spine_source:
        edges.append(Edge(Node("delta_table", view.spine_source, spine_version), dataset.node, {}))
    store.registry.record_edges(edges, new=True)  # one commit; the dataset version was written just now
    log.info("training dataset %s v%d: %d rows at %s (sources %s)", view.name, version, rows, path, source_versions)
    return dataset


def _write_next_version(store: FeatureStore, view: FeatureView, frame: DataFrame) -> tuple[int, str]:
    """Write ``frame`` as a fresh table (one commit) at the next free dataset version; return it.

    A path that already holds a table -- a concurrent creator's, or one left by an attempt that
    died before registering it (never referenced, so skipped) -- moves on to the next version.
    """
    existing = store.registry.entities(kind="training_dataset", name=view.name, parent=f"v{view.version}")
    version = max((e.version or 0 for e in existing), default=0) + 1
    for _ in range(delta.MAX_ATTEMPTS * 4):
        path = store.layout.training_dataset(view.name, view.version, version)
        try:
            delta.write_table(store.spark, path, frame)
            return version, path
        except AlreadyExistsError:
            log.warning("training dataset %s v%d: %s is taken, trying the next version", view.name, version, path)
            version += 1
    raise AlreadyExistsError(kind="training dataset", name=f"{view.name} v{view.version} #{version}",
                             hint="Every candidate path was taken; remove unregistered dataset tables.")


def get_training_dataset(store: FeatureStore, view_name: str, view_version: int, version: int | None = None) -> TrainingDataset:
    """A recorded training dataset (the latest of the view when ``version`` is None)."""
    found = {e.version: e for e in store.registry.entities(kind="training_dataset", name=view_name, parent=f"v{view_version}")}
    if not found or (version is not None and version not in found):
        raise NotFoundError(
            kind="training dataset", name=f"{view_name} v{view_version} #{version}", hint=f"Known versions: {sorted(found)}."
        )
    return dataset_from_entity(store, found[max(found) if version is None else version])


def dataset_from_entity(store: FeatureStore, entity: Entity) -> TrainingDataset:
    """The :class:`TrainingDataset` a registry entity (kind ``training_dataset``) describes."""
    d = entity.definition
    return TrainingDataset(
        store=store, view_name=entity.name, view_version=int(entity.parent.removeprefix("v")),
        version=int(entity.version or 0), path=d["path"],
        source_versions={k: int(v) for k, v in d["source_versions"].items()}, spine_source=d.get("spine_source"),
        spine_version=d.get("spine_version"), split=d["split"], rows=d["rows"], time_range=d.get("time_range"),
        description=entity.description,
    )


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
