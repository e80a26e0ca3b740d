"""Defects of the data layer found by independent checks (issue 16), each pinned by a test that
failed before its fix:

* ``replace_range`` on a group with a ``tie_breaker`` must keep every row of the new batch: the
  stored rows of the replaced range are deleted by the write, so they take no part in tie
  resolution (ties are resolved within the batch only);
* the ``quarantine`` policy writes the refused rows only after the main commit succeeded: a batch
  whose write fails leaves no quarantine rows behind;
* two writers creating one table at the same instant get :class:`AlreadyExistsError` (or both
  succeed with ``exist_ok``), never Delta's raw "already exists";
* a training dataset is written through :mod:`engine.store.delta` (one commit, conflicts
  retried): a table left at its path by an attempt that died before registering it is skipped,
  not a raw "path exists" on every re-run.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import AlreadyExistsError
from engine.store import delta
from engine.store.feature_store import FeatureStore
from engine.store.feature_view import FeatureLookup
from engine.temporal.ranges import TimeRange
from engine.validation import Expectation, ExpectationSuite

T = datetime(2013, 1, 1, 6)  # naive UTC wall clock, as Spark returns TIMESTAMPs here (TZ=UTC)
DAY = TimeRange(datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 1, 2, tzinfo=UTC))
TIED = "id STRING, ts TIMESTAMP, rev INT, value DOUBLE"


def rows(frame) -> list[tuple]:
    return sorted(tuple(r) for r in frame.collect())


def test_replace_range_with_a_tie_breaker_keeps_every_row_of_the_new_batch(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group("tied", primary_key="id", event_time="ts", schema=TIED, tie_breaker="rev",
                                       statistics=False)
    outside = T + timedelta(days=1)  # a stored row outside the replaced range stays as it is
    group.insert(spark.createDataFrame([("a", T, 5, 1.0), ("b", T, 5, 2.0), ("a", outside, 9, 3.0)], TIED))
    new = [("a", T, 1, 10.0), ("b", T, 7, 20.0), ("c", T, 1, 30.0), ("c", T, 2, 31.0)]
    commit = group.replace_range(spark.createDataFrame(new, TIED), DAY)
    # a's lower rev replaces the stored a (the range is replaced); c's tie is resolved in the batch
    assert rows(group.read()) == [("a", T, 1, 10.0), ("a", outside, 9, 3.0), ("b", T, 7, 20.0), ("c", T, 2, 31.0)]
    assert commit.rows == 3
    # an insert (upsert) still resolves ties against the stored rows
    group.insert(spark.createDataFrame([("b", T, 6, 99.0)], TIED))
    assert ("b", T, 7, 20.0) in rows(group.read())


def test_quarantined_rows_are_not_written_when_the_main_write_fails(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    not_null = Expectation("expect_column_values_to_not_be_null", {"column": "value"})
    group = store.create_feature_group(
        "guarded", primary_key="id", event_time="ts", schema=TIED, statistics=False,
        expectations=ExpectationSuite("guarded", (not_null,), policy="quarantine"),
    )
    # a table constraint the suite does not know: the main write fails after validation
    spark.sql(f"ALTER TABLE delta.`{group.path}` ADD CONSTRAINT small CHECK (value < 100)")
    before = group.delta_version()
    batch = spark.createDataFrame([("a", T, 1, 1.0), ("b", T, 1, None), ("c", T, 1, 500.0)], TIED)
    with pytest.raises(Exception, match="small"):
        group.insert(batch)
    assert group.delta_version() == before
    quarantine = group.quarantine()
    assert quarantine is None or quarantine.count() == 0  # no rows of a batch that was never written
    # the same batch without the violating row: committed, and its refused row quarantined once
    group.insert(batch.where("id != 'c'"))
    assert rows(group.read()) == [("a", T, 1, 1.0)]
    assert [(r["id"], r["_failed_expectations"]) for r in group.quarantine().collect()] == [("b", [not_null.label])]


@pytest.mark.parametrize("exist_ok", [False, True])
def test_two_writers_creating_one_table_at_once_get_already_exists_or_both_succeed(spark, tmp_path, exist_ok):
    schema = spark.createDataFrame([], "id BIGINT, ts TIMESTAMP").schema
    outcomes: list[list[str]] = []
    for n in range(4):
        path = str(tmp_path / f"t{n}")
        barrier, found = threading.Barrier(2), []

        def create(path=path, barrier=barrier, found=found) -> None:
            barrier.wait()
            try:
                delta.create_table(spark, path, schema, exist_ok=exist_ok)
                found.append("created")
            except AlreadyExistsError as err:
                assert err.params["name"] == path
                found.append("ALREADY_EXISTS")
            except Exception as err:  # the defect: Delta's raw error leaked
                found.append(f"raw {type(err).__name__}: {str(err)[:120]}")

        threads = [threading.Thread(target=create) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes.append(sorted(found))
        assert delta.current_version(spark, path) == 0
    expected = ["created", "created"] if exist_ok else ["ALREADY_EXISTS", "created"]
    assert outcomes == [expected] * 4


def test_a_training_dataset_is_one_commit_and_a_leftover_table_at_its_path_is_skipped(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group("sensor", primary_key="id", event_time="ts", schema=TIED, statistics=False)
    group.insert(spark.createDataFrame([("a", T, 1, 1.0), ("b", T, 1, 2.0)], TIED))
    view = store.create_feature_view("alarm", spine_time="at", labels=["y"],
                                     lookups=[FeatureLookup("sensor", prefix="s_", keys={"id": "id"})])
    spine = spark.createDataFrame([("a", T + timedelta(hours=1), 1), ("b", T + timedelta(hours=1), 0)],
                                  "id STRING, at TIMESTAMP, y INT")
    # an earlier attempt wrote dataset #1's table and died before registering it
    leftover = f"{store.root}/training_datasets/alarm/v1/1"
    delta.create_table(spark, leftover, spine.schema)
    dataset = store.create_training_dataset(view, spine=spine)
    assert dataset.version == 2 and dataset.path.endswith("/alarm/v1/2")
    assert [h["version"] for h in delta.history(spark, dataset.path)] == [0]  # one commit, a fresh table
    assert rows(dataset.read().select("id", "s_value")) == [("a", 1.0), ("b", 2.0)]
    assert store.get_training_dataset("alarm", 1).version == 2
    again = store.create_training_dataset(view, spine=spine)
    assert again.version == 3
