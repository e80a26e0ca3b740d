"""``plan``: what ``apply`` would create or change in the registry; ``apply``: exactly that.

Nothing is applied implicitly: the runners (backfill, training, scoring) only use what the
registry holds and fail with a hint to run ``apply`` when a definition is missing or stale.

Versions. A feature group or view that pins ``version:`` is compared with that version; one that
does not is compared with its latest registered version. Then:

* ``create``        -- nothing registered under the name (or not that pinned version);
* ``new_version``   -- the columns, keys, event time, tie breaker or partitioning changed (groups),
  or the lookups, labels, spine, on-demand features or exclusions changed (views): the next
  version is proposed, the old one is kept as it is (its data, datasets and models stay valid);
* ``update``        -- only metadata changed (description, tags, comments, expectations):
  re-registered in place;
* ``unchanged``;
* ``conflict``      -- a pinned version exists with a different structure: ``apply`` refuses
  (raise the version in the repository).

Pipelines are not versioned (their progress is kept per output version): ``create``, ``update``
(transform, inputs, lookback or step changed) or ``unchanged``. A view whose group gets a new
version gets a new version too (its lookups are pinned to group versions).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import AlreadyExistsError
from engine.repository.build import define_group, define_pipeline, define_view
from engine.repository.loader import Repository
from engine.store.registry import Entity

if TYPE_CHECKING:
    from engine.store.feature_group import FeatureGroup
    from engine.store.feature_store import FeatureStore

__all__ = ["Change", "Plan", "apply", "plan"]

log = logging.getLogger(__name__)

Action = Literal["create", "new_version", "update", "unchanged", "conflict"]
_SYMBOL = {"create": "+", "new_version": "+", "update": "~", "unchanged": "=", "conflict": "!"}
_STRUCTURE = ("primary_key", "event_time", "tie_breaker", "partition_by")


@dataclass(frozen=True)
class Change:
    """One object of the repository and what ``apply`` does with it."""

    kind: Literal["feature_group", "pipeline", "feature_view"]
    name: str
    action: Action
    version: int | None = None
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        what = f"{self.kind.replace('_', ' ')} {self.name}" + ("" if self.version is None else f" v{self.version}")
        text = f"{_SYMBOL[self.action]} {self.action.replace('_', ' ')} {what}"
        return text + ("".join(f"\n      {d}" for d in self.details) if self.details else "")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "action": self.action, "version": self.version,
                "details": list(self.details)}


@dataclass(frozen=True)
class Plan:
    """The changes of one repository against one store, in the order ``apply`` makes them."""

    repository: str
    store_root: str
    changes: tuple[Change, ...] = ()
    _objects: Mapping[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def changed(self) -> list[Change]:
        return [c for c in self.changes if c.action != "unchanged"]

    @property
    def conflicts(self) -> list[Change]:
        return [c for c in self.changes if c.action == "conflict"]

    def __str__(self) -> str:
        head = f"Plan for {self.repository} -> {self.store_root}:"
        if not self.changed:
            return f"{head} no changes ({len(self.changes)} objects up to date)."
        counts = {a: sum(c.action == a for c in self.changes) for a in _SYMBOL}
        summary = ", ".join(f"{n} {a.replace('_', ' ')}" for a, n in counts.items() if n)
        return "\n".join([head, *(f"  {c}" for c in self.changes), summary])

    def to_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "store": self.store_root, "changes": [c.to_dict() for c in self.changed],
                "unchanged": sum(c.action == "unchanged" for c in self.changes)}


def plan(fs: FeatureStore, repo: Repository) -> Plan:
    """Compare the repository with ``fs``'s registry (one registry read); nothing is written."""
    repo.activate()
    registered = fs.registry.entities(kind=["feature_group", "pipeline", "feature_view"])
    by_kind: dict[str, dict[str, dict[int, Entity]]] = {}
    for entity in registered:
        by_kind.setdefault(entity.kind, {}).setdefault(entity.name, {})[int(entity.version or 0)] = entity
    changes: list[Change] = []
    objects: dict[tuple[str, str], Any] = {}
    groups: dict[str, FeatureGroup] = {}
    for name, spec in repo.feature_groups.items():
        versions = by_kind.get("feature_group", {}).get(name, {})
        change, group = _plan_group(fs, repo, name, spec.version, versions)
        changes.append(change)
        groups[name] = group
        objects[("feature_group", name)] = group
    for name in repo.pipelines:
        pipeline = define_pipeline(fs, repo, name, groups)
        stored = by_kind.get("pipeline", {}).get(name, {})
        definition = _plain(pipeline.definition())
        if not stored:
            changes.append(Change("pipeline", name, "create"))
        else:
            old = dict(next(iter(stored.values())).definition)
            diff = _diff(old, definition)
            changes.append(Change("pipeline", name, "update" if diff else "unchanged", details=tuple(diff)))
        objects[("pipeline", name)] = pipeline
    group_versions = {name: g.version for name, g in groups.items()}
    for name, spec in repo.views.items():
        versions = by_kind.get("feature_view", {}).get(name, {})
        change, view = _plan_view(fs, repo, name, spec.version, versions, group_versions)
        changes.append(change)
        objects[("feature_view", name)] = view
    return Plan(repository=str(repo.folder), store_root=fs.root, changes=tuple(changes), _objects=objects)


def apply(fs: FeatureStore, repo: Repository, *, planned: Plan | None = None) -> Plan:
    """Make the registry match the repository: exactly the changes :func:`plan` shows (computed
    now unless given). A conflict is refused before anything is written."""
    current = planned if planned is not None else plan(fs, repo)
    if current.conflicts:  # refused before anything is written
        first = current.conflicts[0]
        raise AlreadyExistsError(
            kind=first.kind.replace("_", " "), name=f"{first.name} v{first.version}",
            hint="It is registered with a different structure (" + "; ".join(first.details)
            + "): raise its version in the repository, or drop the pinned version to get the next one.",
        )
    _write(fs, current)
    return current


def _write(fs: FeatureStore, current: Plan) -> None:
    """New tables first (one commit each), then all registry rows in two MERGEs (groups; pipelines
    and views, which are checked against the groups) and all lineage edges in one."""
    from engine.store.bucketing import create_group_table
    from engine.store.feature_view import validate_view
    from engine.store.registry import Edge, Entity, Node

    todo = [(c, current._objects[(c.kind, c.name)]) for c in current.changed]
    for change, group in todo:
        if change.kind == "feature_group" and change.action != "update":
            log.info("apply: %s", str(change).splitlines()[0])
            create_group_table(fs.spark, group)
    groups = [e for change, group in todo if change.kind == "feature_group" for e in group.to_entities()]
    if groups:
        fs.registry.register(groups)
    entities, edges = [], []
    for change, obj in todo:
        if change.kind == "feature_group":
            continue
        log.info("apply: %s", str(change).splitlines()[0])
        if change.kind == "pipeline":
            entities.append(Entity(kind="pipeline", name=obj.name, definition=obj.definition()))
            edges += [Edge(i.node, obj.output.node, {"pipeline": obj.name}) for i in obj.inputs.values()]
        else:
            validate_view(obj)
            entities.append(obj.to_entity())
            edges += [Edge(Node("feature_group", lk.feature_group, lk.version), obj.node) for lk in obj.lookups]
    if entities:
        fs.registry.register(entities)
    if edges:
        fs.registry.record_edges(edges)


def _plan_group(fs: FeatureStore, repo: Repository, name: str, pinned: int | None,
                versions: Mapping[int, Entity]) -> tuple[Change, FeatureGroup]:
    latest = max(versions, default=0)
    candidate = pinned or latest or 1
    group = define_group(fs, repo, name, candidate)
    if candidate not in versions:
        action: Action = "new_version" if versions else "create"
        return Change("feature_group", name, action, candidate, _columns(group)), group
    stored = versions[candidate].definition
    structure = _group_structure_diff(stored, group)
    if structure:
        if pinned:
            return Change("feature_group", name, "conflict", candidate, tuple(structure)), group
        group = define_group(fs, repo, name, latest + 1)
        return Change("feature_group", name, "new_version", latest + 1, tuple(structure)), group
    entity = group.to_entities()[0]
    meta = _diff({"description": versions[candidate].description, "tags": list(versions[candidate].tags),
                  **{k: stored.get(k) for k in ("schema", "expectations", "statistics")}},
                 {"description": entity.description, "tags": list(entity.tags),
                  **{k: _plain(entity.definition.get(k)) for k in ("schema", "expectations", "statistics")}})
    return Change("feature_group", name, "update" if meta else "unchanged", candidate, tuple(meta)), group


def _group_structure_diff(stored: Mapping[str, Any], group: FeatureGroup) -> list[str]:
    diff = [f"{k}: {stored.get(k)!r} -> {getattr(group, k)!r}" for k in _STRUCTURE
            if (stored.get(k) or None) != (getattr(group, k) or None)]
    old = [(f["name"], _type(f["type"])) for f in stored["schema"]["fields"]]
    new = [(f.name, f.dataType.simpleString()) for f in group.schema.fields]
    if old != new:
        gone = [f"{n} {t}" for n, t in old if (n, t) not in new]
        added = [f"{n} {t}" for n, t in new if (n, t) not in old]
        diff.append("columns: " + ", ".join([*(f"-{c}" for c in gone), *(f"+{c}" for c in added)] or ["reordered"]))
    return diff


def _plan_view(fs: FeatureStore, repo: Repository, name: str, pinned: int | None, versions: Mapping[int, Entity],
               group_versions: Mapping[str, int]) -> tuple[Change, Any]:
    latest = max(versions, default=0)
    candidate = pinned or latest or 1
    view = define_view(fs, repo, name, candidate, group_versions)
    if candidate not in versions:
        return Change("feature_view", name, "new_version" if versions else "create", candidate), view
    structure = _diff(dict(versions[candidate].definition), _plain(view.definition()))
    if structure:
        if pinned:
            return Change("feature_view", name, "conflict", candidate, tuple(structure)), view
        view = define_view(fs, repo, name, latest + 1, group_versions)
        return Change("feature_view", name, "new_version", latest + 1, tuple(structure)), view
    meta = _diff({"description": versions[candidate].description, "tags": list(versions[candidate].tags)},
                 {"description": view.description, "tags": list(view.tags)})
    return Change("feature_view", name, "update" if meta else "unchanged", candidate, tuple(meta)), view


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` for every top-level key whose (JSON-plain) value differs."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = _plain(old.get(key)), _plain(new.get(key))
        if a != b and not (a in (None, [], {}) and b in (None, [], {})):
            out.append(f"{key}: {_short(a)} -> {_short(b)}")
    return out


def _plain(value: Any) -> Any:
    """JSON round trip: tuples become lists, keys strings (what the registry stores)."""
    import json

    return json.loads(json.dumps(value, default=str))


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type(json_type: Any) -> str:
    from pyspark.sql.types import _parse_datatype_json_value

    return _parse_datatype_json_value(json_type).simpleString()


def _columns(group: FeatureGroup) -> tuple[str, ...]:
    return (f"columns: {', '.join(f'{f.name} {f.dataType.simpleString()}' for f in group.schema.fields)}",)
