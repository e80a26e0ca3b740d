"""The registry's reads without a Spark job (engine.store._local_delta): the same rows as Spark's
Delta read after appends, MERGEs, checkpoints, a schema change and an overwrite; None -- Spark's
read then -- where the direct read could be wrong (deletion vectors, partitions, column mapping,
a log with a gap); and the registry really takes the direct path on a local store."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from engine.store import _local_delta, delta
from engine.store import registry as registry_module
from engine.store.registry import Commit, Entity, Registry


def _spark_rows(spark, path):
    rows = [r.asDict(recursive=True) for r in spark.read.format("delta").load(path).collect()]
    return sorted(rows, key=repr)


def _local_rows(path):
    table = _local_delta.read_current(path)
    assert table is not None, "the direct read refused a table it should read"
    rows = _local_delta.select(table, {}, None)
    for row in rows:  # Spark collects naive local-zone datetimes; the direct read gives UTC instants
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value.astimezone().replace(tzinfo=None)
    return sorted(rows, key=repr)


def test_direct_read_equals_spark_through_merges_checkpoints_and_schema_change(spark, tmp_path):
    path = str(tmp_path / "t")
    assert _local_delta.read_current(path).num_columns == 0  # nothing there yet: no table, no rows
    ddl = "k STRING, v BIGINT, ts TIMESTAMP, m MAP<STRING, STRING>, a ARRAY<STRUCT<x: DOUBLE, y: STRING>>"
    spark.sql(f"CREATE TABLE delta.`{path}` ({ddl}) USING delta TBLPROPERTIES ('delta.checkpointInterval' = '3')")
    assert _local_rows(path) == []
    for i in range(8):  # appends and MERGEs across two checkpoints (versions 3 and 6)
        frame = spark.createDataFrame(
            [(f"k{j}", i * 10 + j, datetime(2024, 1, 1 + j, 12, i, tzinfo=UTC), {"i": str(i)} if j else None,
              [(float(j), None)] if j % 2 else None) for j in range(3 + i % 2)], ddl)
        if i % 2:
            delta.upsert(spark, path, frame, keys=["k"])
        else:
            delta.append(spark, path, frame)
        assert _local_rows(path) == _spark_rows(spark, path), f"after write {i}"
    assert os.path.exists(os.path.join(path, "_delta_log", "00000000000000000006.checkpoint.parquet"))
    spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS (extra STRING)")  # older files lack the column: NULL
    delta.append(spark, path, spark.createDataFrame([("new", 1, None, None, None, "e")], f"{ddl}, extra STRING"))
    assert _local_rows(path) == _spark_rows(spark, path)
    spark.createDataFrame([("only", 2, None, None, None, None)], f"{ddl}, extra STRING").write.format("delta") \
        .mode("overwrite").save(path)
    assert _local_rows(path) == _spark_rows(spark, path) and len(_spark_rows(spark, path)) == 1


@pytest.mark.parametrize("properties", [
    "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')",
    "PARTITIONED BY (k)",
    "TBLPROPERTIES ('delta.columnMapping.mode' = 'name')",
])
def test_direct_read_refuses_what_it_cannot_read_exactly(spark, tmp_path, properties):
    path = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` (k STRING, v BIGINT) USING delta {properties}")
    delta.append(spark, path, spark.createDataFrame([(f"k{i}", i) for i in range(20)], "k STRING, v BIGINT"))
    spark.sql(f"DELETE FROM delta.`{path}` WHERE v = 3")  # with deletion vectors: a DV on a live file
    assert _local_delta.read_current(path) is None
    assert _local_delta.read_current("s3://bucket/table") is None  # not local: Spark reads it


def test_direct_read_refuses_a_log_with_a_gap(spark, tmp_path):
    path = str(tmp_path / "t")
    spark.createDataFrame([(0,)], "v BIGINT").write.format("delta").save(path)
    for i in (1, 2):
        delta.append(spark, path, spark.createDataFrame([(i,)], "v BIGINT"))
    os.remove(os.path.join(path, "_delta_log", "00000000000000000001.json"))
    assert _local_delta.read_current(path) is None


def test_registry_reads_directly_and_answers_as_before(spark, tmp_path, monkeypatch):
    registry = Registry(spark, str(tmp_path / "store"))
    assert registry.entities() == [] and registry.commits() == [] and registry.lineage("x") == []
    registry.register([Entity("feature_group", "g", 1, definition={"a": 1}), Entity("feature", "f", 1, parent="g")])
    stamp = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    registry.record_commits([(Commit("g", 1, 0, "WRITE", 5, stamp, {"numFiles": "1"}), None)])

    def no_spark(*args, **kwargs):
        raise AssertionError("a local registry read went through Spark")

    monkeypatch.setattr(registry_module.delta, "read", no_spark)
    assert [e.name for e in registry.entities(kind="feature")] == ["f"]
    assert registry.entities(kind=["feature_group"], name="g")[0].definition == {"a": 1}
    assert registry.entities(name="missing") == []
    assert registry.commits("g", 1) == [Commit("g", 1, 0, "WRITE", 5, stamp, {"numFiles": "1"})]
    assert registry.recorded_versions("g", 1) == {0} and registry.statistics("g", 1) == []


def test_live_files_at_every_version_equal_sparks_listing(spark, tmp_path):
    """The layout's file listing (bucketing._bucket_files_from_log) comes from this replay at a
    pinned version: it must list exactly the files Spark reads at that version, across
    checkpoints (older versions than the newest checkpoint too), partitions and overwrites."""
    path = str(tmp_path / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` (k STRING, v BIGINT, b INT) USING delta PARTITIONED BY (b) "
              "TBLPROPERTIES ('delta.checkpointInterval' = '3')")
    for i in range(9):
        frame = spark.createDataFrame([(f"k{j}", i, j % 3) for j in range(4)], "k STRING, v BIGINT, b INT")
        if i == 5:
            frame.write.format("delta").mode("overwrite").save(path)
        elif i % 2:
            delta.upsert(spark, path, frame, keys=["k"])
        else:
            delta.append(spark, path, frame)
    assert os.path.exists(os.path.join(path, "_delta_log", "00000000000000000006.checkpoint.parquet"))
    for version in range(delta.current_version(spark, path) + 1):
        adds = _local_delta.live_files(path, version)
        assert adds is not None, version
        local = sorted(os.path.join(path, a["path"]) for a in adds)
        expected = sorted(_local_delta.local_root(u) for u in
                          spark.read.format("delta").option("versionAsOf", version).load(path).inputFiles())
        assert local == expected, version
        assert all(set(a["partitionValues"]) == {"b"} for a in adds)
    assert _local_delta.live_files(path, 99) is None  # no such version: Spark says so
    assert _local_delta.live_files("s3://bucket/t", 0) is None
