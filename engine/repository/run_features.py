"""Run a repository's data side by name: ingest a source, backfill a pipeline.

Each runner reads the registry once (through :func:`engine.repository.planning.plan`) and uses only
objects that ``apply`` registered: a definition that is missing or changed in the repository
is an error telling to run ``apply`` first, never an implicit registration.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError, NotFoundError
from engine.repository.build import time_range
from engine.repository.loader import REPO_FILE, Repository
from engine.repository.planning import Plan, plan
from engine.temporal.ranges import TimeRange

if TYPE_CHECKING:
    from engine.store.feature_store import FeatureStore

__all__ = ["backfill", "ingest", "ingest_order", "registered"]

log = logging.getLogger(__name__)


def registered(fs: FeatureStore, repo: Repository, kind: str, name: str, *, current: Plan | None = None) -> Any:
    """The registered object ``kind``/``name`` as the repository defines it (group, pipeline or
    view); a definition not yet applied is a NotFoundError naming the apply command."""
    current = current if current is not None else plan(fs, repo)
    for change in current.changes:
        if (change.kind, change.name) == (kind, name):
            # a pipeline's "update" is a changed transform / inputs: it must be applied first
            if change.action == "unchanged" or (change.action == "update" and kind != "pipeline"):
                if change.action == "update":
                    log.warning("%s %s: metadata changed in the repository and not applied yet", kind, name)
                return current._objects[(kind, name)]
            raise NotFoundError(
                kind=kind.replace("_", " "), name=f"{name} (as the repository defines it: {change.action}"
                + ("" if change.version is None else f" v{change.version}") + ")",
                hint=f"Run `python -m jobs.plan --repo {repo.folder}` to see the change and "
                f"`python -m jobs.apply --repo {repo.folder}` to register it.",
            )
    raise NotFoundError(kind=kind.replace("_", " "), name=repr(name), hint=f"Not defined in {repo.folder / REPO_FILE}.")


def ingest_order(repo: Repository, names: list[str] | None = None) -> list[str]:
    """Sources with a loader, inputs first (``names``: those and what they read)."""
    wanted = list(names) if names is not None else [n for n, s in repo.sources.items() if s.loader]
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in path:
            raise ConfigError(source=str(repo.folder / REPO_FILE), key=f"sources.{name}.inputs",
                              expected="no cycle between sources", found=" -> ".join([*path, name]))
        for used in repo.get("sources", name).inputs:
            if repo.sources[used].loader:
                visit(used, (*path, name))
        order.append(name)

    for name in wanted:
        visit(name, ())
    return order


def ingest(fs: FeatureStore, repo: Repository, source: str, *, only_missing: bool = False) -> dict[str, Any]:
    """Write source ``source`` from its loader in one Delta commit (replacing the table).

    With ``only_missing`` a table that already holds a commit is left as it is."""
    from engine.store import delta
    from engine.store._group_commits import rows_written
    from engine.store.registry import Node

    repo.activate()
    spec = repo.get("sources", source, argument="--source")
    if spec.loader is None:
        raise ConfigError(source=str(repo.folder / REPO_FILE), key=f"sources.{source}.loader",
                          expected="a loader 'module:function' to ingest with", found="none (the table is only read)")
    path = repo.source_path(source, fs)
    if only_missing and delta.table_exists(fs.spark, path):
        return {"source": source, "path": path, "status": "exists", "delta_version": delta.current_version(fs.spark, path)}
    loader = repo.function(spec.loader, argument=f"sources.{source}.loader")
    inputs = {name: delta.read(fs.spark, repo.source_path(name, fs)) for name in spec.inputs}
    began = time.monotonic()
    frame = loader(fs.spark, inputs, **spec.options)
    if not hasattr(frame, "schema") or not hasattr(frame, "write"):
        raise ConfigError(source=str(repo.folder / REPO_FILE), key=f"sources.{source}.loader",
                          expected="a function returning a Spark DataFrame",
                          found=f"{type(frame).__module__}.{type(frame).__qualname__} from {spec.loader}")
    version = delta.overwrite(fs.spark, path, frame)
    rows = rows_written(fs.spark, path, version, otherwise=delta.read(fs.spark, path, version=version))
    if spec.inputs:  # the source's version was committed just now: its edges are new
        fs.registry.record_lineage([Node("delta_table", repo.source_path(n, fs)) for n in spec.inputs],
                                   Node("delta_table", path, version), properties={"loader": spec.loader}, new=True)
    log.info("ingested source %s: %d rows -> %s (Delta v%d) in %.1fs", source, rows, path, version, time.monotonic() - began)
    return {"source": source, "path": path, "status": "written", "rows": rows, "delta_version": version}


def backfill(fs: FeatureStore, repo: Repository, pipeline: str, *, start: datetime | None = None,
             end: datetime | None = None, force: bool = False, current: Plan | None = None) -> dict[str, Any]:
    """Run pipeline ``pipeline`` over ``[start, end)`` (default: its ``backfill`` range) in chunks
    of its step; chunks done earlier are skipped unless ``force``."""
    spec = repo.get("pipelines", pipeline, argument="--pipeline")
    if start is None or end is None:
        if spec.backfill is None:
            raise ConfigError(source=str(repo.folder / REPO_FILE), key=f"pipelines.{pipeline}.backfill",
                              expected="a default range (start, end), or --start and --end", found="none")
        declared = time_range(spec.backfill, key=f"pipelines.{pipeline}.backfill", source=str(repo.folder / REPO_FILE))
        start, end = start or declared.start, end or declared.end
    window = TimeRange(start, end)  # naive or backwards instants fail here, before anything runs
    current = current if current is not None else plan(fs, repo)
    registered(fs, repo, "feature_group", spec.output, current=current)
    runner = registered(fs, repo, "pipeline", pipeline, current=current)
    chunks = runner.run(window.start, window.end, force=force)
    group = runner.output
    return {
        "pipeline": pipeline, "feature_group": f"{group.name}:v{group.version}",
        "range": [window.start.isoformat(), window.end.isoformat()],
        "chunks_done": sum(c.status == "done" for c in chunks), "chunks_skipped": sum(c.status == "skipped" for c in chunks),
        "rows": sum(c.rows or 0 for c in chunks), "delta_version": group.delta_version(),
    }
