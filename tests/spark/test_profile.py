"""The per-stage profile: each stage's own Spark jobs and Delta commits, also with stages run side
by side in threads (engine.repository.profile)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from engine.repository.profile import Profiler


def _jobs(spark: Any, n: int) -> None:
    for _ in range(n):  # one Spark job each
        spark.sparkContext.parallelize(range(4), 2).count()


def _delta(spark: Any, path: Path) -> None:
    spark.range(3).write.format("delta").save(str(path))  # one commit


def test_sequential_stages_count_their_own_jobs_and_commits(spark: Any, tmp_path: Path) -> None:
    profiler = Profiler(spark, str(tmp_path))
    with profiler.stage("one"):
        _jobs(spark, 1)
    with profiler.stage("three and a table"):
        _jobs(spark, 3)
        _delta(spark, tmp_path / "t")
    summary = profiler.summary()
    assert summary["one"]["spark_jobs"] == 1 and summary["one"]["delta_commits"] == 0
    assert summary["three and a table"]["spark_jobs"] >= 4  # the 3 counts, then the Delta write's own jobs
    assert summary["three and a table"]["delta_commits"] == 1
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None  # restored after the stage


def test_stages_in_threads_count_their_own_jobs_and_the_block_counts_the_commits(spark: Any, tmp_path: Path) -> None:
    profiler = Profiler(spark, str(tmp_path))
    together = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []

    def work(name: str, jobs: int) -> None:
        try:
            with profiler.stage(name, within="block"):
                together.wait()  # both stages are open at once
                _jobs(spark, jobs)
                _delta(spark, tmp_path / name)
                together.wait()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    with profiler.stage("before"):
        _jobs(spark, 1)
    with profiler.stage("block"):
        threads = [threading.Thread(target=work, args=(name, n)) for name, n in (("two", 2), ("five", 5))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    summary = profiler.summary()
    assert list(summary)[:2] == ["before", "block"]  # the block keeps its place before its stages
    two, five, block = summary["two"], summary["five"], summary["block"]
    write_jobs = two["spark_jobs"] - 2
    assert write_jobs >= 1 and five["spark_jobs"] == 5 + write_jobs  # each thread its own jobs, not the other's
    assert two["within"] == five["within"] == "block"
    assert two["delta_commits"] is None and five["delta_commits"] is None
    assert block["spark_jobs"] == two["spark_jobs"] + five["spark_jobs"] and block["delta_commits"] == 2
    assert block["stages"] == 2 and block["seconds"] >= max(two["seconds"], five["seconds"])

    table = profiler.table().splitlines()
    assert any(line.startswith("  two ") for line in table) and any(line.startswith("block ") for line in table)
    total = float(table[-1].split()[-1])
    assert abs(total - (summary["before"]["seconds"] + block["seconds"])) < 0.11  # the threads' stages not added again
