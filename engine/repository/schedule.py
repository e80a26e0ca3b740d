"""Pipelines backfilled side by side, each after the pipelines it reads from.

A backfill chunk is mostly driver-side work between short Spark jobs (planning, validation,
statistics, commits, the registry): on a small cluster one pipeline at a time leaves the executors
idle much of the time. :func:`run_ordered` runs up to ``workers`` pipelines at once, in threads of
the one session (Spark schedules their jobs side by side; each thread has its own job group), and
starts a pipeline only when every pipeline producing a group it reads has finished
(:func:`dependencies`). Two pipelines writing the same group never run together (declared order).

A failure stops new starts; the pipelines already running finish their current work (every chunk
is one atomic commit, so nothing is half-written) and the first error is raised. With
``workers=1`` everything runs in the calling thread, in dependency order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from engine.errors import ConfigError, InvalidArgumentError

__all__ = ["WORKERS", "dependencies", "run_ordered"]

log = logging.getLogger(__name__)
T = TypeVar("T")
WORKERS = 4  # the default: pipelines at once (the demo's four on local[2], see the README)


def dependencies(pipelines: Mapping[str, tuple[str, Sequence[str]]], *, source: str = "pipelines"
                 ) -> dict[str, list[str]]:
    """For each pipeline ``name -> (output group, names it reads)``, the pipelines to finish first:
    those producing a group it reads, and earlier-declared pipelines writing its own group.

    A cycle is a ConfigError naming it."""
    names = list(pipelines)
    producers: dict[str, list[str]] = {}
    for name in names:
        producers.setdefault(pipelines[name][0], []).append(name)
    after: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        output, reads = pipelines[name]
        first = [p for p in producers[output] if names.index(p) < i]
        read = [p for group in reads for p in producers.get(group, ()) if p != name]
        after[name] = list(dict.fromkeys(first + read))
    _check_acyclic(after, source)
    return after


def _check_acyclic(after: Mapping[str, list[str]], source: str) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name):], name]
            raise ConfigError(source=source, key=f"pipelines.{name}.inputs",
                              expected="pipelines that do not read each other's groups in a cycle",
                              found=" -> ".join(cycle))
        state[name] = 1
        for first in after[name]:
            visit(first, (*path, name))
        state[name] = 2

    for name in after:
        visit(name, ())


def run_ordered(after: Mapping[str, Sequence[str]], run: Callable[[str], T], *, workers: int) -> dict[str, T]:
    """``run(name)`` for every name of ``after``, each once all of ``after[name]`` returned, up to
    ``workers`` at a time (see the module docs); the results by name, in ``after``'s order."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidArgumentError(argument="workers", expected="an integer >= 1", found=repr(workers))
    unknown = sorted({d for deps in after.values() for d in deps} - set(after))
    if unknown:
        raise InvalidArgumentError(argument="after", expected="dependencies among the names run", found=unknown)
    results: dict[str, T] = {}
    pending = list(after)

    def ready() -> list[str]:
        return [n for n in pending if all(d in results for d in after[n])]

    if workers == 1:
        while pending:
            if not ready():
                raise _stuck(pending)
            name = ready()[0]
            pending.remove(name)
            results[name] = run(name)
        return {n: results[n] for n in after}
    failures: list[tuple[str, BaseException]] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ff-pipeline") as pool:
        running: dict[Future[T], str] = {}
        while pending or running:
            if not failures:
                for name in ready()[: workers - len(running)]:
                    pending.remove(name)
                    running[pool.submit(run, name)] = name
            if not running:
                if failures:
                    break
                raise _stuck(pending)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                error = future.exception()
                if error is None:
                    results[name] = future.result()
                else:
                    failures.append((name, error))
                    log.error("%s failed (%s: %s); no further pipeline starts, %d still running", name,
                              type(error).__name__, error, len(running))
    if failures:
        for name, error in failures[1:]:
            log.error("%s also failed: %s: %s", name, type(error).__name__, error)
        raise failures[0][1]
    return {n: results[n] for n in after}


def _stuck(pending: Sequence[str]) -> InvalidArgumentError:
    return InvalidArgumentError(argument="after", expected="dependencies without a cycle",
                                found=f"nothing runnable among {list(pending)}")
