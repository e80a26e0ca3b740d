"""Feature views: which features to look up for a spine, point-in-time correct.

A :class:`FeatureView` names a spine time column, the label columns, a list of
:class:`FeatureLookup` (a feature group version, its features, a lookback and a prefix) and
:class:`OnDemandFeature` functions. ``lookup(spine)`` takes, for every spine row, the latest row
of every group at or before the spine row's time within its lookback (the temporal core's as-of
join, all lookups sharing spine keys in one pass), then applies the on-demand functions. The same
code path serves training data (``training_data``) and batch scoring (``batch_data``), so there is
no training/serving skew. Each lookup also returns its source event time (``<prefix><event_time>``)
for audits and for on-demand features such as "minutes since the observation".

On-demand features are plain, importable Python functions (``module:function``) of spine columns
and looked-up features, called once per row; they are stored by reference, so a model that records
its view can apply them again at scoring time. A TIMESTAMP input arrives as a naive ``datetime``
in the session's time zone (UTC for sessions from :func:`engine.session.build_spark`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import ColumnNotFoundError, ColumnTypeError, InvalidArgumentError
from engine.store._view_checks import validate_view
from engine.store.lookups import FeatureLookup, OnDemandFeature
from engine.store.names import check_name
from engine.store.registry import Entity, Node

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.store.feature_group import FeatureGroup
    from engine.store.feature_store import FeatureStore
    from engine.temporal import AsofLookup, AsofPlan

__all__ = ["FeatureLookup", "FeatureView", "OnDemandFeature", "create_feature_view", "get_feature_view", "register_view",
           "validate_view"]

log = logging.getLogger(__name__)


@dataclass
class _ResolvedLookup:
    lookup: FeatureLookup
    group: FeatureGroup
    features: list[str]
    spine_keys: list[str]
    prefix: str
    time_column: str


@dataclass
class FeatureView:
    """A named, versioned set of feature lookups and on-demand features over a spine."""

    store: FeatureStore
    name: str
    version: int
    spine_time: str
    labels: list[str]
    lookups: list[FeatureLookup]
    on_demand: list[OnDemandFeature] = field(default_factory=list)
    description: str = ""
    tags: list[str] = field(default_factory=list)
    spine_source: str | None = None  # a Delta table with the labelled spine, for time-range datasets
    exclude: list[str] = field(default_factory=list)  # looked up and returned (audit), not model inputs
    _resolved: list[_ResolvedLookup] | None = field(default=None, init=False, repr=False, compare=False)

    # -- definition ----------------------------------------------------------------------------

    @property
    def node(self) -> Node:
        return Node("feature_view", self.name, self.version)

    def definition(self) -> dict[str, Any]:
        return {
            "spine_time": self.spine_time, "labels": list(self.labels),
            "lookups": [lk.to_dict() for lk in self.lookups], "on_demand": [od.to_dict() for od in self.on_demand],
            "spine_source": self.spine_source,
        } | ({"exclude": list(self.exclude)} if self.exclude else {})

    def to_entity(self) -> Entity:
        return Entity(
            kind="feature_view", name=self.name, version=self.version, description=self.description,
            tags=tuple(self.tags), definition=self.definition(),
        )

    @classmethod
    def from_entity(cls, store: FeatureStore, entity: Entity) -> FeatureView:
        d = entity.definition
        return cls(
            store=store, name=entity.name, version=int(entity.version or 0), spine_time=d["spine_time"],
            labels=list(d["labels"]), lookups=[FeatureLookup.from_dict(x) for x in d["lookups"]],
            on_demand=[OnDemandFeature.from_dict(x) for x in d["on_demand"]], description=entity.description,
            tags=list(entity.tags), spine_source=d.get("spine_source"), exclude=list(d.get("exclude") or []),
        )

    @property
    def reference(self) -> dict[str, Any]:
        """What a model records to find this view again: store root, name, version."""
        return {"store_root": self.store.root, "name": self.name, "version": self.version}

    def resolved(self) -> list[_ResolvedLookup]:
        """Each lookup with its group, features, spine keys, prefix and output time column
        (validated); resolved against the registry once per view object, then reused."""
        if self._resolved is None:
            self._resolved = self._resolve()
        return list(self._resolved)

    def _resolve(self) -> list[_ResolvedLookup]:
        out = []
        registered = {(e.name, e.version): e for e in self.store.registry.entities(kind="feature_group")}  # one read
        for i, lookup in enumerate(self.lookups):
            found = registered.get((lookup.feature_group, lookup.version))
            group = (self.store._from_entity(found) if found is not None and lookup.version is not None
                     else self.store.get_feature_group(lookup.feature_group, lookup.version))
            features = list(lookup.features) if lookup.features is not None else group.features
            for feature in features:
                if feature not in group.features:
                    raise ColumnNotFoundError(
                        argument=f"lookups[{i}].features", column=feature,
                        side=f"feature group {group.name} v{group.version}", available=group.features,
                    )
            mapping = dict(lookup.keys or {})
            unknown = sorted(set(mapping) - set(group.primary_key))
            if unknown:
                raise ColumnNotFoundError(
                    argument=f"lookups[{i}].keys", column=unknown[0], side=f"primary key of {group.name}",
                    available=group.primary_key,
                )
            prefix = f"{group.name}__" if lookup.prefix is None else lookup.prefix
            out.append(_ResolvedLookup(
                lookup=lookup, group=group, features=features,
                spine_keys=[mapping.get(k, k) for k in group.primary_key], prefix=prefix,
                time_column=f"{prefix}{group.event_time}",
            ))
        return out

    @property
    def feature_names(self) -> list[str]:
        """The model inputs: looked-up features (with prefixes) then on-demand features."""
        names = [r.prefix + f for r in self.resolved() for f in r.features]
        return names + [od.name for od in self.on_demand]

    @property
    def model_features(self) -> list[str]:
        """The model inputs: :attr:`feature_names` without the view's ``exclude`` columns (those are
        still looked up and returned, for audit)."""
        return [name for name in self.feature_names if name not in self.exclude]

    @property
    def spine_columns(self) -> list[str]:
        """Columns a spine must have for scoring: every lookup's keys and the spine time."""
        cols: list[str] = []
        for r in self.resolved():
            cols += [k for k in r.spine_keys if k not in cols]
        return [*cols, self.spine_time] if self.spine_time not in cols else cols

    @property
    def max_lookback(self) -> timedelta:
        return max((lk.lookback for lk in self.lookups if lk.lookback is not None), default=timedelta(0))

    def source_versions(self) -> dict[str, int]:
        """The current Delta version of every source feature group, keyed ``name:v<version>``."""
        return {_group_key(r.group): r.group.delta_version() for r in self.resolved()}

    # -- lookups -------------------------------------------------------------------------------

    def lookup(
        self,
        spine: DataFrame,
        *,
        as_of_versions: Mapping[str, int] | None = None,
        as_of_timestamp: datetime | None = None,
    ) -> DataFrame:
        """Spine + features as of each spine row's time (+ each lookup's source event time) +
        on-demand features. ``as_of_versions`` (``{"group:v1": delta_version}``) reads the
        groups at those Delta versions, e.g. to rebuild a training dataset; ``as_of_timestamp``
        reads them as they were at that instant."""
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        from engine.temporal import asof_join_many

        lookups = self._asof_lookups(spine, as_of_versions=as_of_versions, as_of_timestamp=as_of_timestamp)
        result = asof_join_many(spine, lookups, on=self.spine_time)
        for od in self.on_demand:
            fn = od.resolve()
            missing = [c for c in od.inputs if c not in result.columns]
            if missing:
                raise ColumnNotFoundError(
                    argument=f"on_demand[{od.name}].inputs", column=missing[0], side="spine and looked-up", available=result.columns
                )
            udf = F.udf(fn, T._parse_datatype_string(od.return_type), useArrow=True)
            # a TIMESTAMP reaches the function as a naive datetime of the session's time zone (UTC in
            # sessions from build_spark, whose workers run in UTC too: what Spark's own conversion,
            # to the worker's zone, gives there), cast before the hand-over: Arrow makes naive
            # datetimes 4x faster than zone-aware ones (1.8 s per million values)
            types = dict(result.dtypes)
            inputs = [F.col(_q(c)).cast("timestamp_ntz") if types[c] == "timestamp" else F.col(_q(c)) for c in od.inputs]
            result = result.withColumn(od.name, udf(*inputs))
        return result

    def explain(
        self,
        spine: DataFrame,
        *,
        as_of_versions: Mapping[str, int] | None = None,
        as_of_timestamp: datetime | None = None,
    ) -> tuple[AsofPlan, ...]:
        """How :meth:`lookup` with the same arguments would run, without running it: per pass
        (per spine key set) the strategy and why -- whether the groups' bucket layout is used
        (only the spine shuffled) or not and why not --, tasks, estimated rows, hot keys.
        ``print()`` each plan for a readable summary."""
        from engine.temporal import explain_asof_many

        lookups = self._asof_lookups(spine, as_of_versions=as_of_versions, as_of_timestamp=as_of_timestamp)
        return explain_asof_many(spine, lookups, on=self.spine_time)

    def _asof_lookups(self, spine: DataFrame, *, as_of_versions: Mapping[str, int] | None,
                      as_of_timestamp: datetime | None) -> list[AsofLookup]:
        """One AsofLookup per lookup, each group read at one pinned version (by bucket where laid out)."""
        from pyspark.sql import functions as F

        from engine.temporal import AsofLookup

        resolved = self.resolved()
        self._check_spine(spine, resolved, argument="spine")
        versions = dict(as_of_versions or {})
        lookups, sources = [], {}
        for r in resolved:
            version = versions.get(_group_key(r.group))
            source = None
            if version is not None or as_of_timestamp is None:  # one pinned version, read by bucket where laid out
                pinned = version if version is not None else r.group.delta_version()
                names = dict(zip(r.spine_keys, r.group.primary_key, strict=True))
                slot = (_group_key(r.group), pinned, tuple(names.items()))
                if slot not in sources:  # one reader per table: a task reads a table once for all its lookups
                    sources[slot] = r.group.lookup_source(pinned, names=names)
                source = sources[slot]
                version = pinned if source is not None else version
            frame = r.group.read(as_of_version=version, as_of_timestamp=None if version is not None else as_of_timestamp)
            renamed = frame.select(
                *[F.col(k).alias(s) for k, s in zip(r.group.primary_key, r.spine_keys, strict=True)],
                F.col(r.group.event_time),
                *[F.col(f) for f in r.features],
                *([F.col(r.group.tie_breaker)] if r.group.tie_breaker else []),
            )
            payload = list(r.features)
            lookups.append(AsofLookup(
                renamed, on=r.group.event_time, by=r.spine_keys, features=payload,
                tolerance=r.lookup.lookback, tie_breaker=r.group.tie_breaker, prefix=r.prefix,
                time_alias=r.time_column, source=source,
            ))
        return lookups

    def training_data(self, spine: DataFrame, *, as_of_versions: Mapping[str, int] | None = None) -> DataFrame:
        """Point-in-time correct training rows: spine (with its labels) + features."""
        missing = [c for c in self.labels if c not in spine.columns]
        if missing:
            raise ColumnNotFoundError(argument="labels", column=missing[0], side="spine", available=spine.columns)
        return self.lookup(spine, as_of_versions=as_of_versions)

    def batch_data(
        self,
        spine: DataFrame,
        *,
        as_of_versions: Mapping[str, int] | None = None,
        as_of_timestamp: datetime | None = None,
    ) -> DataFrame:
        """Features for scoring: the spine needs only keys and times (labels are not required)."""
        return self.lookup(spine, as_of_versions=as_of_versions, as_of_timestamp=as_of_timestamp)

    def _check_spine(self, spine: DataFrame, resolved: list[_ResolvedLookup], *, argument: str) -> None:
        from pyspark.sql import types as T

        needed = [self.spine_time] + [k for r in resolved for k in r.spine_keys]
        for column in needed:
            if column not in spine.columns:
                raise ColumnNotFoundError(
                    argument=argument, column=column, side="spine", available=spine.columns,
                    hint=f"Feature view {self.name} v{self.version} needs keys and the time column {self.spine_time!r}.",
                )
        dtype = spine.schema[self.spine_time].dataType
        if not isinstance(dtype, T.TimestampType) or isinstance(dtype, T.TimestampNTZType):
            raise ColumnTypeError(
                argument=argument, column=self.spine_time, expected="TIMESTAMP (a UTC instant)", found=dtype.simpleString()
            )


def _group_key(group: FeatureGroup) -> str:
    return group.node.key  # "name:vN", the one form source versions are keyed by


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def create_feature_view(
    store: FeatureStore,
    name: str,
    version: int = 1,
    *,
    spine_time: str,
    labels: Sequence[str] = (),
    lookups: Sequence[FeatureLookup] = (),
    on_demand: Sequence[OnDemandFeature] = (),
    description: str = "",
    tags: Sequence[str] = (),
    spine_source: str | None = None,
    exclude: Sequence[str] = (),
    exist_ok: bool = False,
) -> FeatureView:
    """Define, check and register a feature view (see :class:`FeatureView`). Lookups without a
    version are pinned to the group's latest version now, so the view's meaning never drifts.
    ``exclude``: features looked up and returned (e.g. for audit, or as on-demand inputs) that are
    not model inputs (:attr:`FeatureView.model_features`)."""
    check_name(name, argument="name")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgumentError(argument="version", expected="an integer >= 1", found=repr(version))
    if isinstance(labels, str):
        labels = [labels]
    pinned = []
    for i, lookup in enumerate(lookups):
        if not isinstance(lookup, FeatureLookup):
            raise InvalidArgumentError(argument=f"lookups[{i}]", expected="a FeatureLookup", found=repr(lookup))
        group = store.get_feature_group(lookup.feature_group, lookup.version)
        pinned.append(FeatureLookup(
            feature_group=lookup.feature_group, version=group.version,
            features=None if lookup.features is None else list(lookup.features), lookback=lookup.lookback,
            prefix=lookup.prefix, keys=None if lookup.keys is None else dict(lookup.keys),
        ))
    view = FeatureView(
        store=store, name=name, version=version, spine_time=spine_time, labels=list(labels), lookups=pinned,
        on_demand=list(on_demand), description=description, tags=list(tags), spine_source=spine_source,
        exclude=[exclude] if isinstance(exclude, str) else list(exclude),
    )
    return register_view(store, view, exist_ok=exist_ok)


def register_view(store: FeatureStore, view: FeatureView, *, exist_ok: bool = False) -> FeatureView:
    """Check ``view`` (lookups pinned to group versions) and register it with its lineage."""
    from engine.errors import AlreadyExistsError

    validate_view(view)
    name, version = view.name, view.version
    existing = [e for e in store.registry.entities(kind="feature_view", name=name) if e.version == version]
    if existing:
        if exist_ok and existing[0].definition == view.to_entity().definition:
            return FeatureView.from_entity(store, existing[0])
        raise AlreadyExistsError(
            kind="feature view", name=f"{name} v{version}",
            hint="Create a new version to change it" + ("" if exist_ok else ", or pass exist_ok=True to reuse it") + ".",
        )
    store.registry.register([view.to_entity()])
    store.registry.record_lineage(
        [Node("feature_group", lk.feature_group, lk.version) for lk in view.lookups], view.node,
    )
    log.info("registered feature view %s v%d: %d features", name, version, len(view.feature_names))
    return view


def get_feature_view(store: FeatureStore, name: str, version: int | None = None) -> FeatureView:
    """The registered view ``name`` (its latest version when ``version`` is None)."""
    from engine.errors import NotFoundError

    check_name(name, argument="name")
    found = {e.version: e for e in store.registry.entities(kind="feature_view", name=name)}
    if not found or (version is not None and version not in found):
        known = sorted({e.name for e in store.registry.entities(kind="feature_view")})
        raise NotFoundError(kind="feature view", name=f"{name!r} v{version}", hint=f"Known views: {known}; versions: {sorted(found)}.")
    return FeatureView.from_entity(store, found[max(found) if version is None else version])
