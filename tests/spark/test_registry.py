"""The registry tables: entities by MERGE (idempotent), commits of every group, and lineage
edges of any kind answered in one call, upstream, downstream or both."""

from __future__ import annotations

from engine.store.names import check_name
from engine.store.registry import Edge, Entity, Node, Registry

RAW = Node("delta_table", "/data/raw/flights")
WEATHER_RAW = Node("delta_table", "/data/raw/weather")
ROUTE = Node("feature_group", "route_delay_stats", 1)
WEATHER = Node("feature_group", "weather_hourly", 1)
VIEW = Node("feature_view", "delays", 1)
TRAIN = Node("training_dataset", "delays", 3)
MODEL = Node("model", "delay_model", 2)
PRED = Node("predictions", "/data/predictions/nov")
OTHER = Node("feature_group", "unrelated", 1)


def test_lineage_across_kinds_in_one_call(spark, tmp_path):
    registry = Registry(spark, str(tmp_path / "store"))
    assert registry.lineage("anything") == []  # no table yet: no edges, no error
    registry.record_edges([
        Edge(RAW, ROUTE, {"pipeline": "routes"}), Edge(ROUTE, VIEW), Edge(WEATHER, VIEW), Edge(WEATHER_RAW, WEATHER),
        Edge(VIEW, TRAIN, {"delta_versions": {"route_delay_stats": 4}}), Edge(TRAIN, MODEL), Edge(MODEL, PRED),
        Edge(Node("delta_table", "/data/raw/other"), OTHER),
    ])
    registry.record_lineage(RAW, ROUTE, properties={"pipeline": "routes_v2"})  # same edge: replaced, not duplicated

    up = registry.lineage(MODEL, direction="upstream")
    assert {(e.src, e.dst) for e in up} == {
        (TRAIN, MODEL), (VIEW, TRAIN), (ROUTE, VIEW), (WEATHER, VIEW), (RAW, ROUTE), (WEATHER_RAW, WEATHER),
    }
    down = registry.lineage("/data/raw/flights", direction="downstream")
    assert {(e.src, e.dst) for e in down} == {(RAW, ROUTE), (ROUTE, VIEW), (VIEW, TRAIN), (TRAIN, MODEL), (MODEL, PRED)}
    both = registry.lineage(Node("feature_view", "delays"))  # version None: any version
    assert {(e.src, e.dst) for e in both} == {
        (ROUTE, VIEW), (WEATHER, VIEW), (RAW, ROUTE), (WEATHER_RAW, WEATHER), (VIEW, TRAIN), (TRAIN, MODEL), (MODEL, PRED),
    }
    assert len(both) == 7  # the re-recorded edge is one edge
    edge = next(e for e in both if e.dst == ROUTE)
    assert edge.properties == {"pipeline": "routes_v2"}
    assert next(e for e in both if e.dst == TRAIN).properties == {"delta_versions": {"route_delay_stats": 4}}
    assert all(OTHER not in (e.src, e.dst) for e in both)


def test_edges_into_a_new_version_are_appended_unless_one_is_recorded(spark, tmp_path):
    from engine.store import delta

    registry = Registry(spark, str(tmp_path / "store"))
    scored = Node("predictions", "/data/predictions/dec", 0)
    registry.record_lineage(MODEL, scored, properties={"batch_id": "b1"}, new=True)
    registry.record_lineage(TRAIN, Node("model", "delay_model", 3), properties={"run": "r"}, new=True)
    path = registry.path("lineage")
    operations = [h["operation"] for h in delta.history(spark, path)]
    assert operations == ["CREATE TABLE", "WRITE", "WRITE"]  # two blind appends, no MERGE
    # the table was deleted and created again: its version 0 repeats, so the edge is replaced, not doubled
    registry.record_lineage(MODEL, scored, properties={"batch_id": "b2"}, new=True)
    assert delta.history(spark, path)[-1]["operation"] == "MERGE"
    edges = [e for e in registry.lineage(MODEL, direction="downstream") if e.dst == scored]
    assert [e.properties for e in edges] == [{"batch_id": "b2"}]
    assert {e.dst for e in registry.lineage(TRAIN, direction="downstream")} == {Node("model", "delay_model", 3)}


def test_entities_merge_is_idempotent(spark, tmp_path):
    registry = Registry(spark, str(tmp_path / "store"))
    model = Entity(kind="model", name="delay_model", version=2, description="GBT", tags=("demo",),
                   definition={"run_id": "abc"})
    registry.register([model, Entity(kind="pipeline", name="routes")])
    registry.register([Entity(kind="model", name="delay_model", version=2, description="GBT, retrained",
                              definition={"run_id": "def"})])
    found = registry.entities(kind="model")
    assert [(e.name, e.version, e.description, e.definition) for e in found] == [
        ("delay_model", 2, "GBT, retrained", {"run_id": "def"})
    ]
    assert [e.name for e in registry.entities(kind="pipeline")] == ["routes"]
    assert check_name("route_delay_stats", argument="name") == "route_delay_stats"


def test_concurrent_writers_lose_nothing(spark, tmp_path):
    """Three writers MERGE into the entities table at the same time (Delta conflicts are retried)."""
    from concurrent.futures import ThreadPoolExecutor

    registry = Registry(spark, str(tmp_path / "store"))
    registry.register([Entity(kind="model", name="seed", version=1)])  # the table exists before the race
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda i: registry.register([Entity(kind="model", name=f"m{i}", version=1)]), range(3)))
    assert [e.name for e in registry.entities(kind="model")] == ["m0", "m1", "m2", "seed"]
