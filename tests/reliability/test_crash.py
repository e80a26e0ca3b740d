"""Crash tests: real subprocesses killed with SIGKILL in the middle of a write.

* A feature backfill of four daily chunks is killed after the third chunk's data files were
  written and before its commit (see :mod:`tests.reliability._workers` for how the kill point is
  made deterministic). The group is at the second chunk's commit, the history holds whole commits
  only, no row of the killed chunk is visible; a re-run resumes at the third chunk and the table
  equals an uninterrupted run's.
* A scoring batch is killed inside the predictions write: the table has the batch entirely or not
  at all, and re-scoring the batch id writes it once.
* An insert is killed inside its MERGE (data files written, no commit): the group, its rows and
  its registry rows are unchanged; re-running the insert gives the expected table, recorded once.
* An insert is killed after its data commit, before the registry row: the data commit is whole
  and the group says which commit the registry misses (``unrecorded_commits``); re-running the
  insert records it, so the registry's commits are exactly the Delta history's data commits.

The two insert workers start together (their JVM start-ups overlap) and are killed one after
the other.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from engine.pipelines import FeaturePipeline, Input
from engine.store import delta
from engine.store.feature_store import FeatureStore
from tests.reliability import _workers as W
from tests.reliability.conftest import (
    committed_files,
    data_files,
    delta_version,
    kill_group,
    start_worker,
    wait_for,
)

# SIGKILLed worker processes with their own JVMs, in `make test-all` (the lead moves it into `make test`)

DAY = timedelta(days=1)
START, END = W.T0, W.T0 + 4 * DAY
KILLED_CHUNK = W.T0 + 2 * DAY


def rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def test_backfill_killed_mid_write_resumes_to_the_uninterrupted_result(spark, tmp_path, workdir):
    store = FeatureStore(spark, tmp_path / "store")
    raw = str(tmp_path / "raw" / "events")
    delta.create_table(spark, raw, spark.createDataFrame([], W.EVENTS).schema)
    delta.append(spark, raw, spark.createDataFrame(W.event_rows(), W.EVENTS))
    group = store.create_feature_group("sums", primary_key="user", event_time="ts", schema=W.OUTPUT, statistics=False)
    signal = workdir / "chunk3.started"

    proc = start_worker("backfill", {
        "root": store.root, "raw": raw, "group": "sums", "pipeline": "sums", "start": START.isoformat(),
        "end": END.isoformat(), "step_hours": 24, "mark_chunk": KILLED_CHUNK.isoformat(), "signal": str(signal),
    }, workdir)
    wait_for(signal.exists, proc, timeout=420, what="the third chunk to start", folder=workdir)
    wait_for(lambda: bool(data_files(group.path) - committed_files(group.path)), proc, timeout=120,
             what="the third chunk's first data file", folder=workdir, interval=0.002)
    kill_group(proc)
    assert proc.returncode == -9

    # the kill landed mid-write: data files on disk that no commit references
    orphans = data_files(group.path) - committed_files(group.path)
    assert orphans
    # whole commits only: CREATE + one replaceWhere WRITE per finished chunk, the killed one absent
    history = delta.history(spark, group.path)
    assert [h["operation"] for h in history] == ["CREATE TABLE", "WRITE", "WRITE"]
    predicates = [h["operationParameters"]["predicate"] for h in history[1:]]
    assert "2013-01-01" in predicates[0] and "2013-01-02" in predicates[1]
    pipeline = FeaturePipeline("sums", W.rolling_sum, inputs={"events": Input(raw, time_column="ts")}, output=group,
                               lookback=W.WINDOW, step=DAY)
    done = [(r["chunk_start"], r["status"], r["delta_version"]) for r in pipeline.progress()]
    assert done == [(START, "done", 1), (START + DAY, "done", 2)]
    assert group.delta_version() == 2
    killed = group.read().where(F.col("ts") >= KILLED_CHUNK.replace(tzinfo=None))
    assert killed.count() == 0

    results = pipeline.run(START, END)  # resumes at the first unfinished chunk
    assert [(r.time_range.start, r.status) for r in results] == [
        (START, "skipped"), (START + DAY, "skipped"), (START + 2 * DAY, "done"), (START + 3 * DAY, "done")
    ]
    reference = store.create_feature_group("sums_reference", primary_key="user", event_time="ts", schema=W.OUTPUT,
                                           statistics=False)
    FeaturePipeline("reference", W.rolling_sum, inputs={"events": Input(raw, time_column="ts")}, output=reference,
                    lookback=W.WINDOW, step=DAY).run(START, END)
    expected = rows(reference.read())
    assert len(expected) == 24 * 4 * 12
    assert rows(group.read()) == expected
    # the orphaned files of the killed attempt are not part of any snapshot
    assert not orphans & committed_files(group.path)


def test_scoring_batch_killed_mid_write_is_all_or_nothing(spark, model_world, workdir):
    out = str(Path(model_world["tmp"]) / "predictions_crash")
    signal = workdir / "scoring.started"
    proc = start_worker("score", {
        "model_uri": "models:/alarm@champion", "output": out, "batch_id": "b1",
        "scored_at": model_world["scored_at"].isoformat(), "signal": str(signal),
    }, workdir)
    wait_for(signal.exists, proc, timeout=420, what="the predictions write to start", folder=workdir, interval=0.05)
    kill_group(proc)
    assert proc.returncode == -9
    # the table was created (version 0) before the write; the killed batch has no commit and no row
    assert [h["operation"] for h in delta.history(spark, out)] == ["CREATE TABLE"]
    assert delta.read(spark, out).count() == 0

    from engine.pipelines.inference import score_batch

    spine = W.scoring_spine(spark)
    first = score_batch(spark, "models:/alarm@champion", spine, output=out, batch_id="b1",
                        scored_at=model_world["scored_at"], passthrough=["event_id", "tag"]).score_result
    again = score_batch(spark, "models:/alarm@champion", spine, output=out, batch_id="b1",
                        scored_at=model_world["scored_at"], passthrough=["event_id", "tag"]).score_result
    assert (first.delta_version, again.delta_version) == (1, 2)
    scored = delta.read(spark, out)
    assert first.rows == again.rows == spine.count() == scored.count()
    assert scored.select("event_id").distinct().count() == scored.count()
    assert delta_version(out) == 2


# -- inserts killed in their MERGE and between the data commit and the registry commit ------------

FIRST, SECOND = (0, 200), (100, 300)  # the second insert updates keys 100-199 and adds 200-299


def expected_rows(*batches: tuple[tuple[int, int], int]) -> list[tuple]:
    found = {}
    for (lo, hi), batch in batches:
        for k in range(lo, hi):
            found[k] = (k, W.T0.replace(tzinfo=None) + timedelta(hours=k % 24), float(batch), 0)
    return sorted(found.values())


@pytest.fixture(scope="module")
def killed_inserts(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("killed_inserts")
    groups, procs = {}, {}
    for case in ("merge", "registry"):
        store = FeatureStore(spark, tmp / case / "store")
        group = store.create_feature_group("events", primary_key="id", event_time="ts", schema=W.INSERT_SCHEMA)
        group.insert(W.insert_rows(spark, list(range(*FIRST)), 0, 0))
        groups[case] = group
        spec = {"root": store.root, "group": "events", "keys": list(SECOND), "batch": 1,
                "signal": str(tmp / case / "signal")}
        if case == "merge":
            spec["conf"] = W.MERGE_CONF
        else:
            spec["pause"] = "registry"
        procs[case] = (start_worker("insert", spec, tmp / case / "worker"), tmp / case / "worker")
    merge_path = groups["merge"].path
    proc, folder = procs["merge"]
    wait_for(lambda: bool(data_files(merge_path) - committed_files(merge_path)), proc, timeout=600,
             what="the MERGE's first data file", folder=folder, interval=0.002)
    kill_group(proc)
    orphans = data_files(merge_path) - committed_files(merge_path)
    proc, folder = procs["registry"]
    wait_for(Path(tmp / "registry" / "signal").exists, proc, timeout=600, what="the registry update", folder=folder,
             interval=0.02)
    kill_group(proc)
    return {"groups": groups, "codes": {c: p.returncode for c, (p, _) in procs.items()}, "orphans": orphans}


def data_commits(spark, group) -> list[int]:
    return [h["version"] for h in delta.history(spark, group.path) if h["operation"] in ("MERGE", "WRITE")]


def test_insert_killed_inside_its_merge_changes_nothing_and_a_rerun_is_exact(spark, killed_inserts):
    group = killed_inserts["groups"]["merge"]
    assert killed_inserts["codes"]["merge"] == -9
    assert killed_inserts["orphans"]  # the kill landed between "files written" and "commit"
    assert [h["operation"] for h in delta.history(spark, group.path)] == ["CREATE TABLE", "MERGE"]
    assert rows(group.read()) == expected_rows((FIRST, 0))
    assert [c.delta_version for c in group.commits()] == [1] and group.unrecorded_commits() == []

    commit = group.insert(W.insert_rows(spark, list(range(*SECOND)), 0, 1))  # the re-run
    assert commit.delta_version == 2 and commit.rows == 200
    assert rows(group.read()) == expected_rows((FIRST, 0), (SECOND, 1))
    assert [c.delta_version for c in group.commits()] == data_commits(spark, group) == [1, 2]
    assert not killed_inserts["orphans"] & committed_files(group.path)


def test_insert_killed_before_its_registry_row_is_reported_then_reconciled_by_the_rerun(spark, killed_inserts):
    group = killed_inserts["groups"]["registry"]
    assert killed_inserts["codes"]["registry"] == -9
    # the data commit is whole; the registry misses it and says so
    assert data_commits(spark, group) == [1, 2]
    assert rows(group.read()) == expected_rows((FIRST, 0), (SECOND, 1))
    assert [c.delta_version for c in group.commits()] == [1]
    [missing] = group.unrecorded_commits()
    assert (missing.delta_version, missing.operation, missing.rows) == (2, "MERGE", 200)

    commit = group.insert(W.insert_rows(spark, list(range(*SECOND)), 0, 1))  # the re-run: same rows again
    assert commit.delta_version == 3
    assert rows(group.read()) == expected_rows((FIRST, 0), (SECOND, 1))
    commits = group.commits()
    assert [c.delta_version for c in commits] == data_commits(spark, group) == [1, 2, 3]
    assert [c.metrics.get("engine.reconciled") for c in commits] == [None, "true", None]
    assert group.unrecorded_commits() == []
    assert [s.column for s in group.statistics(3).values()] and group.statistics(2) == {}
