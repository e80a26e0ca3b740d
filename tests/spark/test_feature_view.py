"""Feature views and training datasets on real Delta tables: point-in-time lookups through the
store, on-demand features, time splits with gaps, bit-for-bit rebuilds after the groups
changed, leakage guards, and bad input."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F

from engine.errors import ColumnNotFoundError, InvalidArgumentError, NotFoundError, TimeRangeError
from engine.store.feature_store import FeatureStore
from engine.store.feature_view import FeatureLookup, OnDemandFeature, create_feature_view, get_feature_view
from engine.store.training_dataset import RandomSplit, TimeSplit, create_training_dataset, get_training_dataset
from engine.temporal.ranges import TimeRange
from engine.testing.ondemand import as_text, hour_of_day, minutes_between

UTC = timezone.utc
T0 = datetime(2013, 1, 1, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture(scope="module")
def _template(spark, tmp_path_factory):
    """Two groups with their rows, built once per module (each build is ~10 s of Spark jobs)."""
    fs = FeatureStore(spark, str(tmp_path_factory.mktemp("feature_view") / "store"))
    weather = fs.create_feature_group(
        "weather", primary_key="origin", event_time="obs_time",
        schema="origin STRING, obs_time TIMESTAMP, temp DOUBLE, wind DOUBLE",
    )
    weather.insert(spark.createDataFrame(
        [("EWR", h(0), 30.0, 5.0), ("EWR", h(2), 31.0, None), ("JFK", h(1), 40.0, 7.0), ("EWR", h(30), 10.0, 1.0)],
        weather.schema,
    ))
    carrier = fs.create_feature_group(
        "carrier_stats", primary_key="carrier", event_time="as_of",
        schema="carrier STRING, as_of TIMESTAMP, delay_mean DOUBLE",
    )
    carrier.insert(spark.createDataFrame([("UA", h(0), 12.0), ("UA", h(5), 14.0), ("AA", h(3), 3.0)], carrier.schema))
    return fs.root


@pytest.fixture()
def store(spark, tmp_path, _template):
    """A private copy of the template store: a store is its folder (Delta logs hold relative paths)."""
    root = tmp_path / "store"
    shutil.copytree(_template, root)
    fs = FeatureStore(spark, str(root))
    groups = fs.list_feature_groups()
    assert [g.name for g in groups] == ["carrier_stats", "weather"]
    assert all(g.path.startswith(fs.root + "/") for g in groups)  # the copy's tables, not the template's
    return fs


def spine(spark, rows):
    return spark.createDataFrame(rows, "flight_id long, origin STRING, carrier STRING, sched TIMESTAMP, delayed INT")


def view_of(fs, name="delays", **kwargs):
    return create_feature_view(
        fs, name, spine_time="sched", labels=["delayed"],
        lookups=[
            FeatureLookup("weather", lookback=timedelta(hours=3), prefix="w_"),
            FeatureLookup("carrier_stats", features=["delay_mean"], prefix="c_"),
        ],
        on_demand=[
            OnDemandFeature("hour", hour_of_day, ["sched"], "int"),
            OnDemandFeature("weather_age_min", minutes_between, ["sched", "w_obs_time"]),
        ],
        **kwargs,
    )


def test_training_data_is_point_in_time_correct(spark, store):
    view = view_of(store)
    assert view.feature_names == ["w_temp", "w_wind", "c_delay_mean", "hour", "weather_age_min"]
    rows = {r.flight_id: r for r in view.training_data(spine(spark, [
        (1, "EWR", "UA", h(2.5), 1),   # weather at 2h (wind NULL: whole row), carrier at 0h
        (2, "EWR", "UA", h(6), 0),     # weather 2h is 4h old > 3h lookback: NULL; carrier 5h
        (3, "JFK", "AA", h(1), 1),     # exact time match is visible
        (4, None, "AA", h(4), 0),      # NULL key: no weather, still one row
    ])).collect()}
    assert len(rows) == 4
    assert (rows[1].w_temp, rows[1].w_wind, rows[1].c_delay_mean) == (31.0, None, 12.0)
    assert rows[1].w_obs_time == h(2).replace(tzinfo=None) and rows[1].weather_age_min == 30.0
    assert (rows[2].w_temp, rows[2].c_delay_mean, rows[2].hour) == (None, 14.0, 6)
    assert (rows[3].w_temp, rows[3].c_delay_mean) == (40.0, None)  # exact match visible; AA stats only from 3h
    assert (rows[4].w_temp, rows[4].c_delay_mean, rows[4].delayed) == (None, 3.0, 0)
    # leakage guard: no looked-up event time after its spine row's time
    for r in rows.values():
        for t in (r.w_obs_time, r.c_as_of):
            assert t is None or t <= r.sched


def test_a_timestamp_reaches_an_on_demand_function_as_a_naive_utc_datetime(spark, store):
    view = create_feature_view(store, "handover", spine_time="sched", labels=["delayed"],
                               lookups=[FeatureLookup("weather", lookback=timedelta(hours=3), prefix="w_")],
                               on_demand=[OnDemandFeature("seen", as_text, ["sched"], "string"),
                                          OnDemandFeature("seen_obs", as_text, ["w_obs_time"], "string")])
    rows = view.training_data(spine(spark, [(1, "EWR", "UA", h(2.5), 1), (2, "EWR", "UA", None, 0)])).collect()
    seen = {r.flight_id: (r.seen, r.seen_obs) for r in rows}
    assert seen == {1: ("datetime.datetime(2013, 1, 1, 2, 30)", "datetime.datetime(2013, 1, 1, 2, 0)"), 2: (None, None)}


def test_view_is_registered_and_reloaded(spark, store):
    view_of(store)
    again = get_feature_view(store, "delays")
    assert again.version == 1 and again.lookups[0].version == 1
    assert again.feature_names == ["w_temp", "w_wind", "c_delay_mean", "hour", "weather_age_min"]
    assert {str(e.src) for e in store.lineage("delays")} >= {"feature_group:weather@v1", "feature_group:carrier_stats@v1"}


def test_training_dataset_rebuilds_bit_for_bit_after_groups_change(spark, store):
    view = view_of(store)
    rows = [(i, "EWR" if i % 2 else "JFK", "UA" if i % 3 else "AA", h(i), i % 2) for i in range(1, 30)]
    split = TimeSplit(train=TimeRange(h(0), h(10)), validation=TimeRange(h(13), h(30)), min_gap=timedelta(hours=3))
    dataset = create_training_dataset(store, view, spine=spine(spark, rows), split=split)
    stored = dataset.read()
    assert set(r.split for r in stored.select("split").distinct().collect()) == {"train", "validation"}
    assert stored.where(F.col("sched") >= h(10).replace(tzinfo=None)).where(F.col("sched") < h(13).replace(tzinfo=None)).count() == 0
    # the groups change after the dataset was built
    weather = store.get_feature_group("weather")
    weather.insert(spark.createDataFrame([("EWR", h(2), 99.0, 99.0), ("JFK", h(5), -5.0, 1.0)], weather.schema))
    current = view.training_data(spine(spark, rows)).where(F.col("flight_id") == 3).first()
    assert current.w_temp == 99.0  # today's data differs ...
    again = get_training_dataset(store, "delays", 1, dataset.version)
    rebuilt = again.rebuild()
    assert rebuilt.columns == stored.columns
    assert rebuilt.exceptAll(stored).count() == 0 and stored.exceptAll(rebuilt).count() == 0  # ... the rebuild does not
    assert again.source_versions == dataset.source_versions
    assert {str(e.src) for e in store.lineage(dataset.node, direction="upstream")} >= {"feature_view:delays@v1"}


def test_time_split_gap_must_cover_the_longest_lookback(spark, store):
    view = view_of(store)
    too_close = TimeSplit(train=TimeRange(h(0), h(10)), validation=TimeRange(h(11), h(20)))
    with pytest.raises(TimeRangeError) as err:
        create_training_dataset(store, view, spine=spine(spark, [(1, "EWR", "UA", h(1), 1)]), split=too_close)
    assert err.value.params["argument"] == "split.validation"


def test_random_split_is_deterministic(spark, store):
    view = view_of(store)
    rows = [(i, "EWR", "UA", h(i % 20), i % 2) for i in range(200)]
    a = create_training_dataset(store, view, spine=spine(spark, rows), split=RandomSplit({"train": 0.7, "validation": 0.3}, seed=1))
    b = create_training_dataset(store, view, spine=spine(spark, rows), split=RandomSplit({"train": 0.7, "validation": 0.3}, seed=1))
    assert (a.version, b.version) == (1, 2)
    pick = lambda d: sorted((r.flight_id, r.split) for r in d.read().select("flight_id", "split").collect())  # noqa: E731
    assert pick(a) == pick(b)
    n_train = sum(1 for _, s in pick(a) if s == "train")
    assert 110 < n_train < 170


def test_future_label_planted_in_a_feature_cannot_be_learned(spark, store):
    """A feature row that carries the label but is stamped after the spine time is invisible."""
    leak = store.create_feature_group("leak", primary_key="flight_id", event_time="at", schema="flight_id LONG, at TIMESTAMP, answer DOUBLE")
    rows = [(i, "EWR", "UA", h(i), i % 2) for i in range(1, 80)]
    leak.insert(spark.createDataFrame([(i, h(i) + timedelta(minutes=1), float(i % 2)) for i in range(1, 80)], leak.schema))
    view = create_feature_view(store, "leaky", spine_time="sched", labels=["delayed"], lookups=[FeatureLookup("leak", prefix="l_")])
    data = view.training_data(spine(spark, rows))
    assert data.where(F.col("l_answer").isNotNull()).count() == 0


def test_bad_input(spark, store):
    with pytest.raises(NotFoundError):
        create_feature_view(store, "v", spine_time="sched", lookups=[FeatureLookup("nope")])
    with pytest.raises(ColumnNotFoundError) as err:
        create_feature_view(store, "v", spine_time="sched", lookups=[FeatureLookup("weather", features=["pressure"])])
    assert err.value.params["column"] == "pressure"
    with pytest.raises(InvalidArgumentError) as err:
        create_feature_view(store, "v", spine_time="sched", lookups=[FeatureLookup("weather", lookback=timedelta(0))])
    assert err.value.params["argument"] == "lookups[0].lookback"
    with pytest.raises(InvalidArgumentError):
        create_feature_view(store, "v", spine_time="sched", lookups=[FeatureLookup("weather")],
                            on_demand=[OnDemandFeature("x", lambda t: 1, ["sched"])])
    view = view_of(store)
    with pytest.raises(ColumnNotFoundError) as err:
        view.training_data(spark.createDataFrame([(1, h(1))], "flight_id long, sched timestamp"))
    assert err.value.params["column"] in {"delayed", "origin"}
    with pytest.raises(ColumnNotFoundError) as err:
        view.batch_data(spark.createDataFrame([("EWR", "UA")], "origin string, carrier string"))
    assert err.value.params["column"] == "sched"
    with pytest.raises(InvalidArgumentError):
        create_training_dataset(store, view)
