"""SqlDeltaTable (the DeltaTable calls in SQL, used on Spark Connect) does not need Connect: on
the classic session it makes the same table, rows and history as Delta's own ``DeltaTable``."""

from __future__ import annotations

from delta.tables import DeltaTable

from engine.store import delta
from engine.store._delta_sql import SqlDeltaTable
from tests.connect.conftest import classic_mode
from tests.spark.test_delta_io import SCHEMA, at, make, rows


def _build(spark, api, path: str) -> tuple[list[tuple], list[str], dict]:
    builder = api.create(spark).location(path).addColumns(SCHEMA).partitionedBy("id").property("team", "t")
    builder.comment("it's a {test}").execute()
    make(spark, [(1, at(1), 1.0), (2, at(1), 2.0)]).write.format("delta").mode("append").save(path)
    source = make(spark, [(2, at(1), 20.0), (3, at(2), 3.0)])
    (api.forPath(spark, path).alias("t").merge(source.alias("s"), "t.id <=> s.id AND t.ts <=> s.ts")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    operations = [r["operation"] for r in api.forPath(spark, path).history().orderBy("version").collect()]
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("partitionColumns", "properties", "description").first()
    return rows(delta.read(spark, path)), operations, detail.asDict(recursive=True)


def test_sql_twin_equals_delta_table_api_on_classic(spark, tmp_path):
    with classic_mode():
        ours = _build(spark, SqlDeltaTable, str(tmp_path / "sql"))
        theirs = _build(spark, DeltaTable, str(tmp_path / "api"))
        assert SqlDeltaTable.isDeltaTable(spark, str(tmp_path / "sql"))
        assert not SqlDeltaTable.isDeltaTable(spark, str(tmp_path / "nothing"))
        assert int(SqlDeltaTable.forPath(spark, str(tmp_path / "sql")).history(1).first()["version"]) == 2
    assert ours == theirs
    assert ours[1] == ["CREATE TABLE", "WRITE", "MERGE"] and ours[2]["description"] == "it's a {test}"
