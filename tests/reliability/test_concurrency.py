"""Concurrency: two real processes (each its own Spark) writing into one feature store at once.

Both workers run the same phases in lock step (a file barrier before each phase, see
:func:`tests.reliability._workers.concurrent`): create the same feature group, insert disjoint
keys into one group, insert the *same* keys into another, backfill disjoint time ranges of one
pipeline into one group, and backfill the *same* range of another pipeline at once. The disjoint
inserts and the same-range backfill are small batches the engine commits itself
(:mod:`engine.store._local_group_write`); the same-key inserts and the disjoint backfill go
through Delta's MERGE and ``replaceWhere`` (the worker sets the size limit per phase). Delta's optimistic-concurrency conflicts are retried with bounded,
jittered backoff (:func:`engine.store.delta._retry`); a call that still loses raises
:class:`~engine.errors.ConcurrentWriteError` and writes nothing. The tests check that every
successful call is in the table exactly once, that nothing else is, and that the registry agrees.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from engine.pipelines import FeaturePipeline, Input
from engine.store import delta
from engine.store.feature_store import FeatureStore
from tests.reliability import _workers as W
from tests.reliability.conftest import start_worker, worker_log

# two worker processes with their own JVMs at once: minutes on 2 cores, in `make test-all`

BATCHES = 2  # two inserts per writer and phase already overlap (check_overlap); each more costs ~10 s per JVM
DAY = timedelta(days=1)
RANGES = [(W.T0, W.T0 + 2 * DAY), (W.T0 + 2 * DAY, W.T0 + 4 * DAY)]
SAME_RANGE = (W.T0, W.T0 + 2 * DAY)


@pytest.fixture(scope="module")
def race(spark, tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("race")
    store = FeatureStore(spark, tmp / "store")
    raw = str(tmp / "raw" / "events")
    delta.create_table(spark, raw, spark.createDataFrame([], W.EVENTS).schema)
    delta.append(spark, raw, spark.createDataFrame(W.event_rows(users=6), W.EVENTS))
    for name in ("disjoint", "overlap"):
        store.create_feature_group(name, primary_key="id", event_time="ts", schema=W.INSERT_SCHEMA, statistics=False)
    for name in ("backfill", "same_range"):
        store.create_feature_group(name, primary_key="user", event_time="ts", schema=W.OUTPUT, statistics=False)
    barrier = tmp / "barrier"
    barrier.mkdir()
    procs = []
    for writer in (0, 1):
        folder = tmp / f"worker{writer}"
        spec = {"writer": writer, "root": store.root, "raw": raw, "barrier": str(barrier), "batches": BATCHES,
                "result": str(folder / "result.json"), "master": "local[1]",
                "backfill_range": [t.isoformat() for t in RANGES[writer]],
                "same_range": [t.isoformat() for t in SAME_RANGE]}
        procs.append((start_worker("concurrent", spec, folder), folder))
    results = []
    for proc, folder in procs:
        try:
            code = proc.wait(timeout=900)
        except Exception:
            proc.kill()
            raise
        assert code == 0, worker_log(proc, folder)
        results.append(json.loads((folder / "result.json").read_text()))
    return {"store": store, "raw": raw, "results": results}


def outcomes(race: dict[str, Any], phase: str) -> list[tuple[int, dict[str, Any]]]:
    return [(writer, r) for writer, result in enumerate(race["results"]) for r in result[phase]]


def check_failures_are_clear(found: list[tuple[int, dict[str, Any]]]) -> None:
    """Every call either succeeded or raised the engine's ConcurrentWriteError (nothing else leaks)."""
    for _, r in found:
        assert r["ok"] or r["error_class"] == "CONCURRENT_WRITE", r


def check_overlap(found: list[tuple[int, dict[str, Any]]]) -> None:
    """The two writers really ran at the same time (else the phase proves nothing)."""
    spans = {w: (min(r["began"] for v, r in found if v == w), max(r["ended"] for v, r in found if v == w)) for w in (0, 1)}
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans


def test_concurrent_create_registers_the_group_once(race):
    found = outcomes(race, "create")
    assert [r["ok"] for _, r in found] == [True, True], found
    store = race["store"]
    entities = store.registry.entities(kind="feature_group", name="shared")
    assert len(entities) == 1 and entities[0].version == 1
    features = store.registry.entities(kind="feature", parent="shared")
    assert sorted(e.name for e in features) == ["value", "writer"]
    assert store.get_feature_group("shared").primary_key == ["id"]


def test_concurrent_inserts_of_disjoint_keys_lose_nothing(race, spark):
    found = outcomes(race, "disjoint")
    check_failures_are_clear(found)
    check_overlap(found)
    group = race["store"].get_feature_group("disjoint")
    expected = sorted((w * 1000 + r["label"] * 10 + i, float(w * 1000 + r["label"]))
                      for w, r in found if r["ok"] for i in range(10))
    stored = sorted((row["id"], row["value"]) for row in group.read().collect())
    assert stored == expected
    assert len(expected) >= 10 * BATCHES  # at least half the calls won; the rest said so
    versions = sorted(r["delta_version"] for _, r in found if r["ok"])
    assert len(set(versions)) == len(versions)
    # the registry recorded exactly the successful commits
    assert sorted(c.delta_version for c in group.commits()) == versions
    history = delta.history(spark, group.path)
    assert sorted(h["version"] for h in history if h["operation"] == "MERGE") == versions


def test_concurrent_upserts_of_the_same_keys_keep_one_row_per_key_from_the_last_commit(race):
    found = outcomes(race, "overlap")
    check_failures_are_clear(found)
    check_overlap(found)
    group = race["store"].get_feature_group("overlap")
    last: dict[int, tuple[int, float]] = {}
    for w, r in found:
        if r["ok"]:
            for i in range(10):
                key = r["label"] * 10 + i
                candidate = (r["delta_version"], float(w * 1000 + r["label"]))
                last[key] = max(last.get(key, candidate), candidate)
    stored = [(row["id"], row["value"]) for row in group.read().collect()]
    assert not [k for k, n in Counter(k for k, _ in stored).items() if n > 1]  # no duplicated key
    assert sorted(stored) == sorted((k, value) for k, (_, value) in last.items())
    assert sorted(c.delta_version for c in group.commits()) == sorted(r["delta_version"] for _, r in found if r["ok"])


def test_concurrent_backfills_of_disjoint_ranges_equal_one_backfill(race, spark):
    found = outcomes(race, "backfill")
    assert [r["ok"] for _, r in found] == [True, True], found
    store, raw = race["store"], race["raw"]
    group = store.get_feature_group("backfill")
    reference = store.create_feature_group("backfill_reference", primary_key="user", event_time="ts",
                                           schema=W.OUTPUT, statistics=False)
    FeaturePipeline("reference", W.rolling_sum, inputs={"events": Input(raw, time_column="ts")}, output=reference,
                    lookback=W.WINDOW, step=DAY).run(RANGES[0][0], RANGES[1][1])
    expected = sorted(tuple(r) for r in reference.read().collect())
    assert len(expected) == 6 * 4 * 12
    assert sorted(tuple(r) for r in group.read().collect()) == expected
    # four chunk commits, each logged done once with its own Delta version
    pipeline = FeaturePipeline("shared_backfill", W.rolling_sum, inputs={"events": Input(raw, time_column="ts")},
                               output=group, lookback=W.WINDOW, step=DAY)
    log = pipeline.progress()
    assert [(r["chunk_start"], r["status"]) for r in log] == [(W.T0 + i * DAY, "done") for i in range(4)]
    assert sorted(r["delta_version"] for r in log) == [1, 2, 3, 4]


def test_two_backfills_of_the_same_range_at_once_equal_one_backfill(race, spark):
    """Both processes replace the same chunks at the same time: each replace is one commit, so the
    loser of a race retries (or says ConcurrentWriteError) and the table is one backfill's, no row
    twice; the registry records exactly the data commits; a re-run has nothing left to do."""
    found = outcomes(race, "same_range")
    check_failures_are_clear(found)
    assert any(r["ok"] for _, r in found), found
    store, raw = race["store"], race["raw"]
    group = store.get_feature_group("same_range")
    reference = store.create_feature_group("same_range_reference", primary_key="user", event_time="ts",
                                           schema=W.OUTPUT, statistics=False)
    FeaturePipeline("reference", W.rolling_sum, inputs={"events": Input(raw, time_column="ts")}, output=reference,
                    lookback=W.WINDOW, step=DAY).run(*SAME_RANGE)
    expected = sorted(tuple(r) for r in reference.read().collect())
    assert len(expected) == 6 * 2 * 12
    assert sorted(tuple(r) for r in group.read().collect()) == expected
    data_commits = [h["version"] for h in delta.history(spark, group.path) if h["operation"] == "WRITE"]
    assert sorted(c.delta_version for c in group.commits()) == data_commits
    assert 2 <= len(data_commits) <= 4  # each chunk replaced once per process that got to it
    pipeline = FeaturePipeline("same_range", W.rolling_sum, inputs={"events": Input(raw, time_column="ts")},
                               output=group, lookback=W.WINDOW, step=DAY)
    done = [r for r in pipeline.progress() if r["status"] == "done"]
    assert {r["chunk_start"] for r in done} == {W.T0, W.T0 + DAY}
    assert sorted(r["delta_version"] for r in done) == data_commits
    assert [r.status for r in pipeline.run(*SAME_RANGE)] == ["skipped", "skipped"]


def test_conflicts_happened_and_were_retried(race):
    """The suite exercised the retry path: Delta reported conflicts, the engine retried them (and
    every call above still ended in a commit or a ConcurrentWriteError)."""
    retried = sum(max(r["retries_so_far"] for rs in result.values() for r in rs) for result in race["results"])
    assert retried >= 1
