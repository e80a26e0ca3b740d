"""The Delta layer on Spark Connect: tests/spark/test_delta_io.py's tests, as written, on the
remote session (``spark`` is overridden below), plus what only Connect needs checking: the
``DeltaTable`` Python API is not used there, and its SQL twin gives the classic session the same
tables (so one code path would do)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.store import delta
from engine.store._delta_sql import SqlDeltaTable, delta_table_api
from tests.spark.test_delta_io import *  # noqa: F403 - the same tests, on the remote session
from tests.spark.test_delta_io import SCHEMA, at, make, rows


@pytest.fixture()
def spark(connect_spark):  # overrides tests/conftest.py's classic session for this module
    return connect_spark


def test_connect_session_uses_the_sql_twin(connect_spark):
    from delta.tables import DeltaTable

    assert delta_table_api(connect_spark) is SqlDeltaTable
    assert DeltaTable is not SqlDeltaTable


def test_upsert_optimize_vacuum_history_on_connect(connect_spark, table_path):
    spark = connect_spark
    delta.create_table(spark, table_path, SCHEMA, partition_by=["id"], properties={"team": "tests"}, comment="c")
    delta.append(spark, table_path, make(spark, [(1, at(1), 1.0), (2, at(1), 2.0)]))
    delta.append(spark, table_path, make(spark, [(1, at(2), 5.0)]))
    assert delta.upsert(spark, table_path, make(spark, [(2, at(1), 20.0), (3, at(3), 3.0)]), keys=["id", "ts"]) == 3
    assert rows(delta.read(spark, table_path)) == [(1, at(1).replace(tzinfo=None), 1.0), (1, at(2).replace(tzinfo=None), 5.0),
                                                    (2, at(1).replace(tzinfo=None), 20.0), (3, at(3).replace(tzinfo=None), 3.0)]
    metrics = delta.optimize(spark, table_path)
    assert metrics["numFilesRemoved"] == 2 and metrics["numFilesAdded"] == 1  # partition id=1 had two files
    assert [h["operation"] for h in delta.history(spark, table_path)] == [
        "CREATE TABLE", "WRITE", "WRITE", "MERGE", "OPTIMIZE"]
    assert delta.history(spark, table_path, limit=1)[0]["version"] == 4
    delta.vacuum(spark, table_path, retention=timedelta(days=7))
    assert delta.read(spark, table_path, version=2).count() == 3  # within the retention: time travel still works
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{table_path}`").first()
    assert detail["partitionColumns"] == ["id"] and detail["properties"] == {"team": "tests"}
    assert detail["description"] == "c"

