"""Pipelines side by side: dependency order, the worker limit, failures (engine.repository.schedule)."""

from __future__ import annotations

import threading
import time

import pytest

from engine.errors import ConfigError, InvalidArgumentError
from engine.repository.schedule import dependencies, run_ordered

# a: raw -> g_a; b: g_a -> g_b; c: raw -> g_c; d: g_b, g_c -> g_d; e: raw -> g_a again (after a)
PIPELINES = {
    "a": ("g_a", ["raw"]),
    "b": ("g_b", ["g_a", "raw"]),
    "c": ("g_c", ["raw"]),
    "d": ("g_d", ["g_b", "g_c"]),
    "e": ("g_a", ["raw"]),
}


def test_dependencies_are_producers_of_inputs_and_earlier_writers_of_the_same_group() -> None:
    after = dependencies(PIPELINES)
    assert after == {"a": [], "b": ["a", "e"], "c": [], "d": ["b", "c"], "e": ["a"]}


def test_a_pipeline_reading_its_own_group_does_not_wait_for_itself() -> None:
    assert dependencies({"inc": ("g", ["g", "raw"])}) == {"inc": []}


def test_a_cycle_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as err:
        dependencies({"x": ("g_x", ["g_y"]), "y": ("g_y", ["g_z"]), "z": ("g_z", ["g_x"])}, source="repo.yaml")
    found = err.value.params["found"]
    assert err.value.params["source"] == "repo.yaml"
    assert found.count("->") == 3 and {"x", "y", "z"} <= set(found.replace(" ", "").split("->"))


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_every_pipeline_runs_once_after_its_dependencies_within_the_worker_limit(workers: int) -> None:
    after = dependencies(PIPELINES)
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    lock = threading.Lock()
    active = [0, 0]  # now, most at once
    threads: set[int] = set()

    def run(name: str) -> str:
        with lock:
            assert name not in started
            started[name] = time.monotonic()
            active[0] += 1
            active[1] = max(active[1], active[0])
            threads.add(threading.get_ident())
        time.sleep(0.05)
        with lock:
            active[0] -= 1
            finished[name] = time.monotonic()
        return name.upper()

    results = run_ordered(after, run, workers=workers)
    assert results == {n: n.upper() for n in PIPELINES}  # in the declared order
    assert list(results) == list(PIPELINES)
    for name, first in after.items():
        assert all(finished[f] <= started[name] for f in first), (name, first)
    assert active[1] <= workers
    if workers == 1:
        assert threads == {threading.get_ident()}  # no thread at all
    else:
        assert active[1] >= 2  # a and c are independent: they ran together


def test_a_failure_stops_new_starts_lets_running_ones_finish_and_is_raised() -> None:
    after = {"slow": [], "bad": [], "later": ["bad"], "queued": []}
    ran: list[str] = []

    def run(name: str) -> str:
        if name == "bad":
            raise ValueError("bad input in chunk 1")
        if name == "slow":
            time.sleep(0.3)
        ran.append(name)
        return name

    with pytest.raises(ValueError, match="bad input in chunk 1"):
        run_ordered(after, run, workers=2)
    assert ran == ["slow"]  # finished although 'bad' failed first; 'later' and 'queued' never started


def test_bad_arguments_are_refused_before_anything_runs() -> None:
    calls: list[str] = []
    for workers in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidArgumentError, match="workers"):
            run_ordered({"a": []}, calls.append, workers=workers)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="missing"):
        run_ordered({"a": ["missing"]}, calls.append, workers=2)
    for workers in (1, 2):
        with pytest.raises(InvalidArgumentError, match="cycle"):
            run_ordered({"a": ["b"], "b": ["a"]}, calls.append, workers=workers)
    assert calls == []
