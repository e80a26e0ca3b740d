"""Commits without a Spark job (engine.store._local_commit): Spark's Delta reads every commit
written there, interleaved with Spark's own appends, MERGEs and checkpoints; lost races retry
(a stale snapshot, concurrent threads); and None -- Spark's write -- wherever Spark must decide
(NOT NULL, a schema or constraint it does not know, no table, not local); after a commit at a
checkpoint version the caller has Delta write the checkpoint."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime

import pytest

from engine.store import _local_commit, _local_delta, delta

DDL = ("k STRING NOT NULL, n INT, v BIGINT, ts TIMESTAMP, m MAP<STRING, STRING>, "
       "a ARRAY<STRUCT<x: DOUBLE, y: STRING>>")


def _create(spark, path, properties="'delta.checkpointInterval' = '4'"):
    spark.sql(f"CREATE TABLE delta.`{path}` ({DDL}) USING delta TBLPROPERTIES ({properties})")
    return spark.read.format("delta").load(path).schema


def _row(key, i):
    return {"k": key, "n": i, "v": None if i % 3 == 0 else i * 7, "ts": datetime(2024, 5, 1 + i % 20, 3, i, tzinfo=UTC),
            "m": {"i": str(i), "none": None} if i % 2 else None, "a": [{"x": i / 3, "y": None}] if i % 4 else []}


def _spark_rows(spark, path):
    return {r["k"]: r.asDict(recursive=True) for r in spark.read.format("delta").load(path).collect()}


def _as_spark(row):
    """What Spark collects for a row written from a dict (naive local-zone datetimes, Row structs as dicts)."""
    out = dict(row)
    out["ts"] = row["ts"].astimezone().replace(tzinfo=None)
    return out


def test_spark_reads_local_commits_between_its_own_writes_and_checkpoints(spark, tmp_path):
    path = str(tmp_path / "t")
    schema = _create(spark, path, "'delta.checkpointInterval' = '3'")  # Spark writes every 4th version
    expected, local_versions = {}, []
    for i in range(1, 15):
        rows = [_row(f"k{i % 5}", i), _row(f"new{i}", i)]
        mode = ("spark", "upsert", "append", "upsert")[i % 4]
        if mode == "append":
            rows = rows[1:]
        version = None
        if mode != "spark":
            version = (_local_commit.append(spark, path, rows, schema) if mode == "append"
                       else _local_commit.upsert(spark, path, rows, schema, ["k"]))
        if version is None:  # Spark's own write
            assert mode == "spark"
            frame = spark.createDataFrame(rows, schema)
            delta.append(spark, path, frame) if mode == "append" else delta.upsert(spark, path, frame, keys=["k"])
        else:
            assert version == delta.current_version(spark, path)
            local_versions.append(version)
        expected.update({r["k"]: _as_spark(r) for r in rows})
        assert _spark_rows(spark, path) == expected, f"after write {i} ({mode})"
    assert len(local_versions) >= 9
    assert {3, 6, 9} <= set(local_versions), local_versions  # checkpoint versions committed here too
    for checkpointed in (3, 6, 9, 12):  # by Delta, after the commit, whoever wrote it
        assert os.path.exists(os.path.join(path, "_delta_log", f"{checkpointed:020d}.checkpoint.parquet"))
    local = _local_delta.read_current(path)
    assert local is not None and local.num_rows == len(expected)
    history = {h["version"]: h for h in delta.history(spark, path)}
    assert {history[v]["operation"] for v in local_versions} <= {"WRITE", "MERGE"}
    assert spark.read.format("delta").load(path).count() == len(expected)  # counts from the files' stats


def test_a_lost_race_retries_on_the_new_snapshot(spark, tmp_path, monkeypatch):
    path = str(tmp_path / "t")
    schema = _create(spark, path, "'delta.checkpointInterval' = '100'")
    stale = _local_delta.snapshot(path)
    delta.append(spark, path, spark.createDataFrame([_row("spark", 1)], schema))  # takes version 1
    real, calls = _local_delta.snapshot, []
    files = {n for n in os.listdir(path) if n.endswith(".parquet")}

    def snapshot_once_stale(root):
        calls.append(root)
        return stale if len(calls) == 1 else real(root)

    monkeypatch.setattr(_local_delta, "snapshot", snapshot_once_stale)
    assert _local_commit.upsert(spark, path, [_row("spark", 2), _row("local", 3)], schema, ["k"]) == 2
    assert len(calls) == 2  # the first try lost version 1 and left no file behind
    assert len({n for n in os.listdir(path) if n.endswith(".parquet")} - files) == 1
    rows = _spark_rows(spark, path)
    assert set(rows) == {"spark", "local"} and rows["spark"]["n"] == 2


def test_concurrent_writers_lose_no_row(spark, tmp_path):
    path = str(tmp_path / "t")
    schema = _create(spark, path, "'delta.checkpointInterval' = '1000'")
    written, errors = [], []

    def writer(w):
        try:
            for i in range(12):
                version = _local_commit.append(spark, path, [_row(f"w{w}-{i}", i)], schema)
                written.append(version)  # None: lost every race, the caller writes through Spark
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for i in range(3):  # Spark commits meanwhile
        delta.append(spark, path, spark.createDataFrame([_row(f"spark{i}", i)], schema))
    for t in threads:
        t.join()
    assert not errors, errors
    local = [v for v in written if v is not None]
    assert len(local) == len(set(local)) >= 40  # each version once; races retried, rarely given up
    assert len(_spark_rows(spark, path)) == len(local) + 3
    assert delta.current_version(spark, path) == len(local) + 3


@pytest.mark.parametrize("case", ["not null", "other schema", "constraint", "no table", "not local", "repeated key",
                                  "append only"])
def test_spark_writes_what_only_spark_can_judge(spark, tmp_path, case):
    path = str(tmp_path / "t")
    properties = {"append only": "'delta.appendOnly' = 'true'"}.get(case, "'delta.checkpointInterval' = '10'")
    schema = None if case == "no table" else _create(spark, path, properties)
    if case == "constraint":
        spark.sql(f"ALTER TABLE delta.`{path}` ADD CONSTRAINT positive CHECK (n > 0)")
    before = None if schema is None else delta.current_version(spark, path)
    rows, keys = [_row("a", 1)], None
    if case == "not null":
        rows = [{**_row("a", 1), "k": None}]
    if case == "repeated key":
        rows, keys = [_row("a", 1), _row("a", 2)], ["k"]
    if case == "append only":
        keys = ["k"]
    if case == "other schema":
        from pyspark.sql.types import LongType, StructField

        schema = type(schema)([*schema.fields[:-1], StructField("a", LongType())])
    if case == "no table":
        schema = spark.createDataFrame([], DDL).schema
    target = "s3://bucket/t" if case == "not local" else path
    result = (_local_commit.upsert(spark, target, rows, schema, keys) if keys else _local_commit.append(spark, target, rows, schema))
    assert result is None
    if before is not None:
        assert delta.current_version(spark, path) == before  # nothing committed
        assert [n for n in os.listdir(path) if n.endswith(".parquet")] == []  # and no file left behind


def test_a_failed_commit_file_leaves_no_data_file(spark, tmp_path, monkeypatch):
    path = str(tmp_path / "t")
    schema = _create(spark, path)

    def disk_full(root, version, actions):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_local_commit, "_put_commit", disk_full)
    assert _local_commit.append(spark, path, [_row("a", 1)], schema) is None  # the caller writes through Spark
    assert [n for n in os.listdir(path) if n.endswith(".parquet")] == []
    assert delta.current_version(spark, path) == 0


def test_owned_tables_first_rows_are_committed_by_the_engine_after_spark_creates_the_table(spark, tmp_path):
    """A store's own table (registry, reports, progress) is created on first use; its first rows
    and an upsert go by the engine's commit, never a Spark MERGE (a cold one costs seconds)."""
    from engine.store._owned_tables import select_rows, write_rows

    ddl = "name STRING, version INT, note STRING"
    path = str(tmp_path / "owned")
    write_rows(spark, path, ddl, [{"name": "a", "version": 1, "note": "x"}, {"name": "b", "version": 1, "note": None}],
               keys=["name", "version"])
    write_rows(spark, path, ddl, [{"name": "a", "version": 1, "note": "y"}], keys=["name", "version"])
    write_rows(spark, path, ddl, [{"name": "c", "version": 2, "note": "z"}])  # an append
    history = sorted(spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect(), key=lambda h: h["version"])
    assert history[0]["operation"] == "CREATE TABLE" and len(history) == 4
    assert all((h["engineInfo"] or "").startswith("feature-factory/") for h in history[1:]), history
    rows = {(r["name"], r["version"]): r["note"] for r in spark.read.format("delta").load(path).collect()}
    assert rows == {("a", 1): "y", ("b", 1): None, ("c", 2): "z"}
    assert select_rows(spark, path, {"name": "a"}, ["note"]) == [{"note": "y"}]
