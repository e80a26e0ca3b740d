"""Read a feature repository folder into one checked :class:`Repository` value.

A repository is a folder a team reviews in pull requests::

    my_repo/
      feature_repo.yaml     project, store, include: [...], and any definitions
      groups.yaml ...       more definitions (listed under include)
      my_features.py        transformations, on-demand functions, loaders (module:function)
      expectations/*.yaml   expectation suites referenced by the groups

Why YAML beside Python: the declarations (groups, views, training and scoring configs) are data
that ``plan`` can diff against the registry without running user code, and that reviewers read
as a diff; the logic (transformations, on-demand features) stays plain, testable Python that the
YAML names by ``module:function``. YAML is parsed with ``safe_load`` only.

Loading checks everything that needs no Spark: unknown keys and types, safe names, names defined
twice, and every cross reference (a pipeline's output group, its inputs, a view's groups, a
training config's view, ...). An unknown name is an error listing the known ones.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import from_mapping, load_yaml
from engine.errors import ConfigError, InvalidArgumentError, NotFoundError
from engine.redaction import register_secrets, secret_values
from engine.repository.spec import (
    GroupSpec,
    InputSpec,
    MonitoringSpec,
    PipelineSpec,
    RepositoryFile,
    ScoringSpec,
    SourceSpec,
    StoreSpec,
    TrainingSpec,
    ViewSpec,
)
from engine.store.layout import is_uri
from engine.store.names import check_name

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from engine.store.feature_store import FeatureStore

__all__ = ["REPO_FILE", "Repository", "load_repository"]

REPO_FILE = "feature_repo.yaml"
_SECTIONS = ("sources", "feature_groups", "pipelines", "views", "training", "scoring", "monitoring")
_KIND = {
    "sources": "source", "feature_groups": "feature group", "pipelines": "pipeline", "views": "feature view",
    "training": "training config", "scoring": "scoring job", "monitoring": "monitoring job",
}


@dataclass(frozen=True)
class Repository:
    """A loaded, checked feature repository (frozen: no store, no session inside)."""

    folder: Path
    project: str
    store: StoreSpec
    files: tuple[Path, ...]
    python_paths: tuple[Path, ...]
    sources: Mapping[str, SourceSpec] = field(default_factory=dict)
    feature_groups: Mapping[str, GroupSpec] = field(default_factory=dict)
    pipelines: Mapping[str, PipelineSpec] = field(default_factory=dict)
    views: Mapping[str, ViewSpec] = field(default_factory=dict)
    training: Mapping[str, TrainingSpec] = field(default_factory=dict)
    scoring: Mapping[str, ScoringSpec] = field(default_factory=dict)
    monitoring: Mapping[str, MonitoringSpec] = field(default_factory=dict)

    # -- lookups by name -------------------------------------------------------------------------

    def get(self, section: str, name: str, *, argument: str | None = None) -> Any:
        """The definition ``name`` of ``section`` (e.g. ``"pipelines"``); unknown: NotFoundError."""
        items: Mapping[str, Any] = getattr(self, section)
        if name not in items:
            raise NotFoundError(
                kind=_KIND[section], name=repr(name),
                hint=f"Known {section} in {self.folder / REPO_FILE}: {sorted(items)}"
                + (f" (argument {argument})." if argument else "."),
            )
        return items[name]

    # -- locations ---------------------------------------------------------------------------------

    @property
    def store_root(self) -> str:
        root = self.store.root
        return root if is_uri(root) or os.path.isabs(root) else str((self.folder / root).resolve())

    def open_store(self, spark: SparkSession) -> FeatureStore:
        """The repository's :class:`FeatureStore` on ``spark`` (nothing is created); activates the
        repository's Python modules (:meth:`activate`)."""
        from engine.store.feature_store import FeatureStore

        self.activate()
        return FeatureStore(spark, self.store_root, tracking_uri=self.store.tracking_uri,
                            registry_uri=self.store.registry_uri)

    def source_path(self, name: str, store: FeatureStore) -> str:
        """Where source ``name`` lives: its ``path`` (relative to the store root) or ``tables/<name>``."""
        spec = self.get("sources", name)
        if spec.path is None:
            return store.table_path(name)
        return spec.path if is_uri(spec.path) or os.path.isabs(spec.path) else f"{store.root}/{spec.path}"

    def table_path(self, name_or_path: str, store: FeatureStore) -> str:
        """A source name, a table name of the store, or an explicit path/URI -> a path."""
        if name_or_path in self.sources:
            return self.source_path(name_or_path, store)
        if is_uri(name_or_path) or os.path.isabs(name_or_path) or "/" in name_or_path:
            return name_or_path if is_uri(name_or_path) else str(Path(name_or_path).resolve())
        return store.table_path(name_or_path)

    def file(self, relative: str) -> Path:
        """A file named in the repository (e.g. an expectation suite), relative to its folder."""
        path = Path(relative)
        return path if path.is_absolute() else (self.folder / path).resolve()

    # -- user code ---------------------------------------------------------------------------------

    def function(self, reference: str, *, argument: str) -> Callable[..., Any]:
        """Import ``module:function`` from the repository's Python paths. Modules that live in the
        repository are pickled by value, so Spark's Python workers need not have them installed."""
        module_name, _, qualname = reference.partition(":")
        if not module_name or not qualname:
            raise InvalidArgumentError(argument=argument, expected="'module:function'", found=repr(reference))
        self.activate()
        self._forget_foreign(module_name)
        try:
            module = importlib.import_module(module_name)
            target: Any = module
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as err:
            raise InvalidArgumentError(
                argument=argument, expected=f"an importable function (looked in {[str(p) for p in self.python_paths]})",
                found=repr(reference), hint=f"{type(err).__name__}: {err}",
            ) from None
        if not callable(target):
            raise InvalidArgumentError(argument=argument, expected="a callable", found=repr(reference))
        self._pickle_by_value()
        return target

    def activate(self) -> None:
        """Put the repository's Python paths first on ``sys.path`` and import its top-level modules,
        pickled by value: an on-demand feature or a transform's UDF then runs on Spark's Python
        workers without the repository on their path (executors of a cluster included)."""
        for path in reversed(self.python_paths):
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))
        for path in self.python_paths:
            for file in sorted(path.glob("*.py")):
                name = file.stem
                if name.startswith(("test_", "conftest", "setup")) or not name.isidentifier():
                    continue
                self._forget_foreign(name)
                if name not in sys.modules:
                    try:
                        importlib.import_module(name)
                    except Exception as err:
                        raise InvalidArgumentError(
                            argument=f"repository module {file}", expected="an importable Python module",
                            found=f"{type(err).__name__}: {err}",
                        ) from err
        self._pickle_by_value()

    def _forget_foreign(self, module_name: str) -> None:
        """A module of this name imported earlier from elsewhere (another repository in the same
        session) is dropped when this repository has its own, so the repository's file is used."""
        loaded = sys.modules.get(module_name)
        file = getattr(loaded, "__file__", None) or ""
        top = module_name.split(".")[0]
        own = [p for p in self.python_paths if (p / f"{top}.py").is_file() or (p / top / "__init__.py").is_file()]
        if loaded is not None and own and not any(file.startswith(str(p) + os.sep) for p in own):
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                del sys.modules[name]
                _BY_VALUE.discard(name)

    def _pickle_by_value(self) -> None:
        from pyspark import cloudpickle

        roots = [str(p) for p in self.python_paths]
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            if file and any(file.startswith(r + os.sep) for r in roots) and name not in _BY_VALUE:
                cloudpickle.register_pickle_by_value(module)
                _BY_VALUE.add(name)


_BY_VALUE: set[str] = set()


def load_repository(path: str | os.PathLike[str] | None = None, *, overrides: list[str] | None = None) -> Repository:
    """Load and check the repository in folder ``path`` (or the file ``path``); default ``$FF_REPO``
    or the working directory. ``overrides`` (``key.sub=value``, as the jobs' ``--set``) apply to
    the merged definitions before they are checked, e.g. ``pipelines.weather.backfill.end=2013-02-01``."""
    from engine.config import apply_overrides
    from engine.env import FF_REPO

    chosen = Path(path) if path is not None else (FF_REPO.get() or Path.cwd())
    chosen = chosen.expanduser().resolve()
    main = chosen if chosen.is_file() else chosen / REPO_FILE
    if not main.is_file():
        raise NotFoundError(
            kind="feature repository", name=str(chosen),
            hint=f"A repository is a folder with a {REPO_FILE} (looked for {main}).",
        )
    folder = main.parent
    merged: dict[str, Any] = dict(load_yaml(main))
    files = [main]
    includes = merged.get("include") or []
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(source=str(main), key="include", expected="a list of YAML file names", found=repr(includes))
    origin: dict[tuple[str, str], Path] = {
        (section, name): main for section in _SECTIONS for name in (merged.get(section) or {})
    }
    for relative in includes:
        file = (folder / relative).resolve()
        part = load_yaml(file)
        for key in part:
            if key not in _SECTIONS:
                raise ConfigError(source=str(file), key=key, expected=f"only definitions {list(_SECTIONS)} (the rest is "
                                  f"set in {REPO_FILE})", found="a key of another kind")
        for section, items in part.items():
            if not isinstance(items, Mapping):
                raise ConfigError(source=str(file), key=section, expected="a mapping of name -> definition",
                                  found=repr(items))
            target = merged.setdefault(section, {}) or {}
            merged[section] = target
            for name, spec in items.items():
                if (section, name) in origin:
                    raise ConfigError(source=str(file), key=f"{section}.{name}", expected="each name defined once",
                                      found=f"also defined in {origin[(section, name)]}")
                origin[(section, name)] = file
                target[name] = spec
        files.append(file)
    source = str(main) if len(files) == 1 else f"{main} (+ {len(files) - 1} included)"
    if overrides:
        merged = apply_overrides(merged, overrides, source=f"{source} + --set")
    register_secrets(secret_values(merged))  # e.g. a loader's api_token: never in a log line or an error
    head = from_mapping(RepositoryFile, merged, source=source)
    if head.store is None:
        raise ConfigError(source=str(main), key="store", expected="a mapping with root: <folder or URI>",
                          found="nothing (missing)")
    for section in _SECTIONS:
        for name in getattr(head, section):
            check_name(name, argument=f"{section} (name)")
    project = head.project or folder.name
    python_paths = tuple((folder / p).resolve() for p in head.python_paths) or (folder,)
    repo = Repository(folder=folder, project=check_name(project, argument="project"), store=head.store,
                      files=tuple(files), python_paths=python_paths,
                      **{section: getattr(head, section) for section in _SECTIONS})
    _check_references(repo)
    return repo


def _check_references(repo: Repository) -> None:
    """Every name a definition uses exists (and, for pipelines, exactly one of transform / sql)."""
    source = str(repo.folder / REPO_FILE)

    def need(section: str, name: str, key: str) -> None:
        if name not in getattr(repo, section):
            raise ConfigError(source=source, key=key, expected=f"one of the repository's {section} {sorted(getattr(repo, section))}",
                              found=repr(name))

    shared = sorted(set(repo.sources) & set(repo.feature_groups))
    if shared:
        raise ConfigError(source=source, key=f"sources.{shared[0]}", expected="source names distinct from feature group names "
                          "(pipeline inputs name either)", found=f"{shared} used for both")
    for name, src in repo.sources.items():
        for i, used in enumerate(src.inputs):
            need("sources", used, f"sources.{name}.inputs[{i}]")
        if src.inputs and src.loader is None:
            raise ConfigError(source=source, key=f"sources.{name}.inputs", expected="inputs only with a loader",
                              found=repr(src.inputs))
    for name, group in repo.feature_groups.items():
        if group.version is not None and group.version < 1:
            raise ConfigError(source=source, key=f"feature_groups.{name}.version", expected="an integer >= 1",
                              found=repr(group.version))
    for name, pipe in repo.pipelines.items():
        need("feature_groups", pipe.output, f"pipelines.{name}.output")
        if (pipe.transform is None) == (pipe.sql is None):
            raise ConfigError(source=source, key=f"pipelines.{name}", expected="exactly one of transform or sql",
                              found=f"transform={pipe.transform!r}, sql={'set' if pipe.sql else None}")
        for key, value in pipe.inputs.items():
            used = value.source if isinstance(value, InputSpec) else value
            if used not in repo.sources and used not in repo.feature_groups:
                raise ConfigError(source=source, key=f"pipelines.{name}.inputs.{key}",
                                  expected=f"a source {sorted(repo.sources)} or a feature group {sorted(repo.feature_groups)}",
                                  found=repr(used))
    for name, view in repo.views.items():
        for i, lookup in enumerate(view.lookups):
            need("feature_groups", lookup.feature_group, f"views.{name}.lookups[{i}].feature_group")
        if view.spine_source is not None:
            need("sources", view.spine_source, f"views.{name}.spine_source")
    for name, training in repo.training.items():
        need("views", training.view, f"training.{name}.view")
    for name, scoring in repo.scoring.items():
        need("sources", scoring.spine, f"scoring.{name}.spine")
    for name, monitoring in repo.monitoring.items():
        need("scoring", monitoring.scoring, f"monitoring.{name}.scoring")
        need("training", monitoring.reference, f"monitoring.{name}.reference")
        if monitoring.labels is not None:
            need("sources", monitoring.labels, f"monitoring.{name}.labels")

