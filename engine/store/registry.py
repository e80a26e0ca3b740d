"""The metadata catalog: Delta tables under ``<root>/_registry``.

* ``entities``  -- one row per registered thing: feature groups, their features, pipelines, and
  whatever later code registers (feature views, training datasets, models). Keyed by
  ``(kind, parent, name, version)`` and written with MERGE, so re-registering is idempotent.
* ``commits``   -- every commit of every feature group: group, version, Delta version,
  operation, rows written, commit timestamp (Delta's own), Delta's operation metrics and the
  column statistics of the rows written (:mod:`engine.store.statistics`; NULL when disabled).
  Rows are derived from the group's Delta history, and a commit whose writer died before
  recording it is recorded by the next write (see :mod:`engine.store._group_commits`).
* ``lineage``   -- directed edges ``src -> dst`` between :class:`Node` s of any kind (a raw Delta
  table path, a feature group version, a feature view, a training dataset, a model, a
  predictions table), with optional JSON properties (e.g. the Delta versions read).

Writes go through :mod:`engine.store.delta` (MERGE for keyed rows, blind appends for logs), which
retries Delta's optimistic-concurrency conflicts, so several processes can share one registry.
Tables are created on first write; reading a table that does not exist yet gives no rows.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import AlreadyExistsError, InvalidArgumentError
from engine.store import delta
from engine.store._owned_tables import ensure_table, select_rows, write_rows
from engine.store.statistics import COLUMN_STATISTICS_DDL, ColumnStatistics

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["Commit", "Edge", "Entity", "Node", "Registry", "as_utc", "ensure_table"]

log = logging.getLogger(__name__)

_TABLES = {
    "entities": (
        "kind STRING, parent STRING, name STRING, version INT, description STRING, tags ARRAY<STRING>, "
        "data_type STRING, definition STRING"
    ),
    "commits": (
        "feature_group STRING, version INT, delta_version BIGINT, operation STRING, rows BIGINT, "
        f"timestamp TIMESTAMP, metrics MAP<STRING, STRING>, statistics ARRAY<{COLUMN_STATISTICS_DDL}>"
    ),
    "lineage": (
        "src_kind STRING, src_name STRING, src_version BIGINT, dst_kind STRING, dst_name STRING, "
        "dst_version BIGINT, properties STRING"
    ),
}
_ENTITY_KEYS = ["kind", "parent", "name", "version"]
_REFERENCE = re.compile(r"^(?P<kind>[a-z_]+):(?P<name>.+?)(?:@v(?P<version>\d+))?$")
_EDGE_KEYS = ["src_kind", "src_name", "src_version", "dst_kind", "dst_name", "dst_version"]


@dataclass(frozen=True)
class Node:
    """A lineage node: ``kind`` (e.g. "delta_table", "feature_group", "model"), name, version."""

    kind: str
    name: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" + ("" if self.version is None else f"@v{self.version}")

    @property
    def key(self) -> str:
        """``name:vN`` (or ``name``): how source versions and progress rows key a versioned object."""
        return self.name if self.version is None else f"{self.name}:v{self.version}"

    @classmethod
    def parse(cls, text: str) -> Node:
        """``"kind:name@vN"`` or ``"kind:name"`` -> a Node (the inverse of ``str(node)``)."""
        match = _REFERENCE.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidArgumentError(
                argument="node", expected="a reference 'kind:name@vN' or 'kind:name' (e.g. 'feature_group:weather@v1')",
                found=repr(text),
            )
        return cls(match["kind"], match["name"], None if match["version"] is None else int(match["version"]))


@dataclass(frozen=True)
class Edge:
    """``src -> dst``: ``dst`` was built from ``src``."""

    src: Node
    dst: Node
    properties: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Entity:
    """A registered object. Features have ``kind="feature"`` and their group's name as ``parent``."""

    kind: str
    name: str
    version: int | None = None
    parent: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    data_type: str | None = None
    definition: Mapping[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "parent": self.parent, "name": self.name, "version": self.version,
            "description": self.description, "tags": list(self.tags), "data_type": self.data_type,
            "definition": json.dumps(dict(self.definition), default=str),  # key order kept (suite labels)
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Entity:
        return cls(
            kind=row["kind"], name=row["name"], version=row["version"], parent=row["parent"] or "",
            description=row["description"] or "", tags=tuple(row["tags"] or ()), data_type=row["data_type"],
            definition=json.loads(row["definition"] or "{}"),
        )


@dataclass(frozen=True)
class Commit:
    """One commit of a feature group, as recorded in the registry."""

    feature_group: str
    version: int
    delta_version: int
    operation: str
    rows: int
    timestamp: datetime  # Delta's commit timestamp, UTC
    metrics: Mapping[str, str] = field(default_factory=dict)


def as_utc(value: datetime) -> datetime:
    """A timestamp collected from Spark (naive, in the Python process's local zone) as UTC."""
    return value.astimezone(UTC)


class Registry:
    """The catalog tables of one feature store root."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/") + "/_registry"
        self._ready: set[str] = set()

    def path(self, table: str) -> str:
        return f"{self.root}/{table}"

    # -- table plumbing ------------------------------------------------------------------------

    def _ensure(self, table: str, ddl: str) -> str:
        path = self.path(table)
        if table not in self._ready:
            ensure_table(self.spark, path, ddl)
            self._ready.add(table)
        return path

    def _read(self, table: str) -> DataFrame | None:
        path = self.path(table)
        if table not in self._ready and not delta.table_exists(self.spark, path):
            return None
        self._ready.add(table)
        return delta.read(self.spark, path)

    def _select(self, table: str, where: Mapping[str, Any] | None = None,
                columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Rows of ``table`` (see :func:`select_rows`)."""
        return select_rows(self.spark, self.path(table), where, columns)

    def _write(self, table: str, ddl: str, rows: Sequence[Mapping[str, Any]], *, keys: Sequence[str] | None) -> None:
        """One commit of ``rows`` to ``table`` (see :func:`write_rows`)."""
        write_rows(self.spark, self.path(table), ddl, rows, keys=keys)

    # -- entities ------------------------------------------------------------------------------

    def register(self, entities: Iterable[Entity]) -> None:
        """Insert or replace entity rows (MERGE on kind, parent, name, version) in one commit."""
        rows = [e.to_row() for e in entities]
        keys = [tuple(r[k] for k in _ENTITY_KEYS) for r in rows]
        if len(set(keys)) != len(keys):
            raise AlreadyExistsError(kind="entity", name=str(keys), hint="Each entity may appear once per call.")
        self._write("entities", _TABLES["entities"], rows, keys=_ENTITY_KEYS)

    def entities(
        self, *, kind: str | Sequence[str] | None = None, name: str | None = None, parent: str | None = None
    ) -> list[Entity]:
        """Registered entities, filtered by kind(s), name and parent; sorted by kind, parent, name, version."""
        where: dict[str, Any] = {"kind": [kind] if isinstance(kind, str) else list(kind)} if kind is not None else {}
        where.update({c: v for c, v in (("name", name), ("parent", parent)) if v is not None})
        found = [Entity.from_row(r) for r in self._select("entities", where)]
        return sorted(found, key=lambda e: (e.kind, e.parent, e.name, -1 if e.version is None else e.version))

    # -- commits -------------------------------------------------------------------------------

    def record_commit(self, commit: Commit, statistics: Sequence[ColumnStatistics] | None = None) -> None:
        """Append one commit (and the statistics of the rows it wrote) to the commits table."""
        self.record_commits([(commit, statistics)])

    def record_commits(self, commits: Sequence[tuple[Commit, Sequence[ColumnStatistics] | None]]) -> None:
        """Append several commits (each with its statistics or None) in one registry commit."""
        rows = [{
            "feature_group": c.feature_group, "version": c.version, "delta_version": c.delta_version,
            "operation": c.operation, "rows": c.rows, "timestamp": c.timestamp, "metrics": dict(c.metrics),
            "statistics": None if stats is None else [s.to_row() for s in stats],
        } for c, stats in commits]
        self._write("commits", _TABLES["commits"], rows, keys=None)

    def recorded_versions(self, feature_group: str, version: int) -> set[int]:
        """The Delta versions of one group version that have a commit row."""
        rows = self._select("commits", {"feature_group": feature_group, "version": version}, ["delta_version"])
        return {int(r["delta_version"]) for r in rows}

    def commits(self, feature_group: str | None = None, version: int | None = None) -> list[Commit]:
        """Recorded commits, oldest first (by group, version, Delta version)."""
        where = {c: v for c, v in (("feature_group", feature_group), ("version", version)) if v is not None}
        columns = ["feature_group", "version", "delta_version", "operation", "rows", "timestamp", "metrics"]
        found: dict[tuple[str, int, int], Commit] = {}
        for row in self._select("commits", where, columns):
            row["timestamp"] = as_utc(row["timestamp"])
            row["metrics"] = row["metrics"] or {}
            key = (row["feature_group"], row["version"], row["delta_version"])
            # one row per commit; a writer's own row wins over one reconciled from the Delta history
            if key not in found or found[key].metrics.get("engine.reconciled") == "true":
                found[key] = Commit(**row)
        return [found[k] for k in sorted(found)]

    # -- lineage -------------------------------------------------------------------------------

    def record_lineage(
        self, src: Node | Iterable[Node], dst: Node, *, properties: Mapping[str, Any] | None = None, new: bool = False
    ) -> None:
        """Record ``src -> dst`` (or several sources -> ``dst``) in one MERGE; re-recording replaces
        the properties. ``new``: see :meth:`record_edges`."""
        sources = [src] if isinstance(src, Node) else list(src)
        self.record_edges([Edge(s, dst, dict(properties or {})) for s in sources], new=new)

    def record_edges(self, edges: Iterable[Edge], *, new: bool = False) -> None:
        """Record many edges in one MERGE (keyed by both nodes; properties replaced).

        ``new=True``: the destinations were created just now (e.g. a table version this operation
        committed), so no one else records these edges; if no edge into them is recorded (one small
        read: a re-created table repeats its versions), the rows are appended, about 1 s instead of
        a MERGE's 3-4 s on a small table.
        """
        rows: dict[tuple[Node, Node], dict[str, Any]] = {}
        for edge in edges:
            if not isinstance(edge, Edge) or not all(isinstance(n, Node) for n in (edge.src, edge.dst)):
                raise InvalidArgumentError(argument="edges", expected="Edge(src: Node, dst: Node)", found=repr(edge))
            rows[(edge.src, edge.dst)] = {
                "src_kind": edge.src.kind, "src_name": edge.src.name, "src_version": edge.src.version,
                "dst_kind": edge.dst.kind, "dst_name": edge.dst.name, "dst_version": edge.dst.version,
                "properties": json.dumps(dict(edge.properties), sort_keys=True, default=str),
            }
        fresh = new and not self._edges_into([(r["dst_kind"], r["dst_name"], r["dst_version"]) for r in rows.values()])
        self._write("lineage", _TABLES["lineage"], list(rows.values()), keys=None if fresh else _EDGE_KEYS)

    def _edges_into(self, nodes: Sequence[tuple[str, str, int | None]]) -> bool:
        """Whether any recorded edge ends at one of ``nodes`` (kind, name, version)."""
        if not nodes:
            return False
        wanted = set(nodes)
        rows = self._select("lineage", {"dst_name": sorted({n for _, n, _ in wanted})},
                            ["dst_kind", "dst_name", "dst_version"])
        return any((r["dst_kind"], r["dst_name"], r["dst_version"]) in wanted for r in rows)

    def lineage(
        self, node: Node | str, *, direction: Literal["upstream", "downstream", "both"] = "both"
    ) -> list[Edge]:
        """Every edge reachable from ``node`` upstream, downstream or both, in one Spark read.

        ``node`` is a :class:`Node` (``version=None`` matches every version of it), a reference
        ``"kind:name@vN"`` / ``"kind:name"``, or a bare name that names nodes of one kind only
        (every version); a bare name shared by several kinds is an error listing them.
        """
        if direction not in ("upstream", "downstream", "both"):
            raise InvalidArgumentError(
                argument="direction", expected="'upstream', 'downstream' or 'both'", found=repr(direction)
            )
        edges = [_edge(r) for r in self._select("lineage")]
        target = _resolve_node(node, {n for e in edges for n in (e.src, e.dst)})

        def matches(candidate: Node) -> bool:
            return (candidate.kind, candidate.name) == (target.kind, target.name) and (
                target.version is None or target.version == candidate.version
            )

        found: set[Edge] = set()
        for upstream in ([True] if direction == "upstream" else [False] if direction == "downstream" else [True, False]):
            frontier = {n for e in edges for n in (e.src, e.dst) if matches(n)}
            seen = set(frontier)
            while frontier:
                step = [e for e in edges if (e.dst if upstream else e.src) in frontier]
                found.update(step)
                frontier = {(e.src if upstream else e.dst) for e in step} - seen
                seen |= frontier
        return sorted(found, key=lambda e: (str(e.src), str(e.dst)))

    # -- statistics ----------------------------------------------------------------------------

    def statistics(self, feature_group: str, version: int, delta_version: int | None = None) -> list[ColumnStatistics]:
        """The column statistics of one commit (the latest commit that has them when ``delta_version`` is None)."""
        where: dict[str, Any] = {"feature_group": feature_group, "version": version}
        if delta_version is not None:
            where["delta_version"] = delta_version
        rows = [r for r in self._select("commits", where, ["delta_version", "statistics"]) if r["statistics"] is not None]
        if not rows:
            return []
        return [ColumnStatistics.from_row(s) for s in max(rows, key=lambda r: r["delta_version"])["statistics"]]

    def statistics_frame(self) -> DataFrame | None:
        """All recorded statistics flat, one row per (group, version, Delta version, column), for monitoring."""
        from pyspark.sql import functions as F

        frame = self._read("commits")
        if frame is None:
            return None
        return frame.select(
            "feature_group", "version", "delta_version", "timestamp", F.explode("statistics").alias("s")
        ).select("feature_group", "version", "delta_version", "timestamp", "s.*")


def _resolve_node(node: Node | str, known: set[Node]) -> Node:
    if isinstance(node, Node):
        return node
    if not isinstance(node, str) or not node:
        raise InvalidArgumentError(argument="node", expected="a Node or a reference 'kind:name@vN'", found=repr(node))
    if _REFERENCE.match(node) and node.split(":", 1)[0] in {n.kind for n in known} | _KINDS:
        return Node.parse(node)
    kinds = sorted({n.kind for n in known if n.name == node})
    if len(kinds) > 1:
        raise InvalidArgumentError(
            argument="node", expected="a name of one kind, or a reference 'kind:name@vN'", found=repr(node),
            hint=f"{node!r} names nodes of kinds {kinds}: pass e.g. '{kinds[0]}:{node}'.",
        )
    return Node(kinds[0] if kinds else "feature_group", node)


_KINDS = {"delta_table", "feature_group", "feature_view", "training_dataset", "model", "predictions", "pipeline"}


def _edge(row: Mapping[str, Any]) -> Edge:
    return Edge(
        src=Node(row["src_kind"], row["src_name"], row["src_version"]),
        dst=Node(row["dst_kind"], row["dst_name"], row["dst_version"]),
        properties=json.loads(row["properties"] or "{}"),
    )

