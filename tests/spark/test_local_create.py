"""Empty tables created without a Spark job (engine.store._local_create): the same table Delta's own
CREATE writes (schema, comments, partitioning, properties, protocol), usable by Spark's writers and
readers; Spark still creates whatever needs more than Delta's oldest protocol."""

from __future__ import annotations

import json
import os

import pytest
from pyspark.sql.types import (
    ArrayType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from engine.store import _local_create, delta

SCHEMA = StructType([
    StructField("k", StringType(), False, {"comment": "the key"}),
    StructField("bucket", IntegerType()),
    StructField("ts", TimestampType(), True, {"comment": "event time"}),
    StructField("amount", DecimalType(12, 2)),
    StructField("tags", MapType(StringType(), ArrayType(DoubleType()))),
    StructField("inner", StructType([StructField("x", LongType(), True, {"comment": "nested"})])),
])
PROPERTIES = {"featurefactory.buckets": "16", "delta.enableDeletionVectors": "false", "delta.checkpointInterval": "5"}


def _detail(spark, path):
    row = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0].asDict()
    return {k: row[k] for k in ("description", "partitionColumns", "properties", "minReaderVersion", "minWriterVersion")}


def _log(path):
    with open(os.path.join(path, "_delta_log", f"{0:020d}.json")) as handle:
        return {next(iter(a)): next(iter(a.values())) for a in map(json.loads, handle)}


def test_a_local_creation_is_the_table_delta_creates(spark, tmp_path):
    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "theirs")
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup
    spark.sparkContext.setJobGroup("local-create", "local create")
    try:
        assert delta.create_table(spark, ours, SCHEMA, partition_by=["bucket"], properties=PROPERTIES,
                                  comment="a group") == 0
        assert jobs("local-create") == []  # no Spark job
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert _log(ours)["commitInfo"]["engineInfo"].startswith("feature-factory/")
    from delta.tables import DeltaTable

    builder = DeltaTable.create(spark).location(theirs).addColumns(SCHEMA).partitionedBy("bucket").comment("a group")
    for key, value in PROPERTIES.items():
        builder = builder.property(key, value)
    builder.execute()
    assert _detail(spark, ours) == _detail(spark, theirs)
    assert spark.read.format("delta").load(ours).schema == spark.read.format("delta").load(theirs).schema == SCHEMA
    mine, delta_own = _log(ours), _log(theirs)
    assert mine["protocol"] == delta_own["protocol"] == {"minReaderVersion": 1, "minWriterVersion": 2}
    assert {k: v for k, v in mine["metaData"].items() if k not in ("id", "createdTime")} == \
        {k: v for k, v in delta_own["metaData"].items() if k not in ("id", "createdTime")}
    history = spark.sql(f"DESCRIBE HISTORY delta.`{ours}`").collect()
    assert [h["operation"] for h in history] == ["CREATE TABLE"]

    # Spark's writers and readers take it as their own: NOT NULL enforced, append, MERGE
    frame = spark.createDataFrame([("a", 1, None, None, None, None), ("b", 2, None, None, None, (7,))], SCHEMA)
    delta.append(spark, ours, frame)
    delta.upsert(spark, ours, spark.createDataFrame([("a", 3, None, None, None, None)], SCHEMA), keys=["k"])
    assert sorted((r["k"], r["bucket"]) for r in spark.read.format("delta").load(ours).collect()) == [("a", 3), ("b", 2)]
    with pytest.raises(Exception, match=r"(?i)null"):
        delta.append(spark, ours, spark.createDataFrame([(None, 1, None, None, None, None)], SCHEMA))


def test_an_existing_table_is_kept_and_checked(spark, tmp_path):
    path = str(tmp_path / "t")
    assert delta.create_table(spark, path, SCHEMA) == 0
    assert _local_create.create(spark, path, SCHEMA) is False  # version 0 is there: not written again
    assert delta.create_table(spark, path, SCHEMA, exist_ok=True) == 0


@pytest.mark.parametrize("case", ["ntz", "cdf", "char", "session-default"])
def test_spark_creates_what_needs_more_than_the_oldest_protocol(spark, tmp_path, case):
    path = str(tmp_path / case)
    schema, properties = SCHEMA, dict(PROPERTIES)
    if case == "ntz":
        schema = StructType([*SCHEMA.fields, StructField("local", TimestampNTZType())])
    elif case == "cdf":
        properties["delta.enableChangeDataFeed"] = "true"
    elif case == "char":
        schema = StructType([StructField("c", StringType(), True, {"__CHAR_VARCHAR_TYPE_STRING": "varchar(3)"})])
    key = "spark.databricks.delta.properties.defaults.appendOnly"
    if case == "session-default":
        spark.conf.set(key, "false")
    try:
        assert _local_create.create(spark, path, schema, properties=properties) is None
        assert not os.path.exists(path)  # nothing written: Spark creates it
        assert delta.create_table(spark, path, schema, properties=properties) == 0
    finally:
        spark.conf.unset(key)
    assert "feature-factory" not in json.dumps(_log(path)["commitInfo"])
    if case == "ntz":
        assert _log(path)["protocol"]["minWriterVersion"] == 7  # a table feature Delta recorded
