"""Time travel that lasts: a training dataset still rebuilds bit for bit long after Delta's
retentions would have made its source versions unreadable.

Delta refuses to read a version older than ``delta.deletedFileRetentionDuration`` (7 days by
default) and, when it writes a checkpoint, deletes log files older than
``delta.logRetentionDuration`` (30 days). The test moves the clock instead of waiting: with a
checkpoint every two commits, it writes past a checkpoint, back-dates every log file by 400 days
(Delta takes a commit's time from its file's modification time, and compares file times with the
day-truncated clean-up cut-off), and writes again so the clean-up runs. A control group without
a training dataset shows both limits hit (its old log deleted, time travel refused); the
dataset's source group, protected when the dataset was registered, kept its log and its
versions, so the dataset rebuilds. An operator shortening a retention again gets a refusal
naming the dataset on the next write, and nothing is written.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from engine.errors import InvalidArgumentError
from engine.store.feature_store import FeatureStore
from engine.store.feature_view import FeatureLookup
from tests.reliability.conftest import delta_version

SCHEMA = "id BIGINT, ts TIMESTAMP, value DOUBLE"
T0 = datetime(2013, 1, 1)  # naive UTC wall clock (TZ=UTC)


def rows(frame) -> list[tuple]:
    return sorted(tuple(r) for r in frame.collect())


def insert(spark, group, i: int) -> None:
    group.insert(spark.createDataFrame([(k, T0 + timedelta(hours=i), float(i * 10 + k)) for k in range(3)], SCHEMA))


def set_properties(spark, path: str, **properties: str) -> None:
    items = ", ".join(f"'{k}' = '{v}'" for k, v in properties.items())
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({items})")


def backdate_log(path: str, days: int = 400) -> None:
    then = time.time() - days * 86400
    for entry in (Path(path) / "_delta_log").iterdir():
        os.utime(entry, (then, then))


def log_files(path: str) -> set[str]:
    return {p.name for p in (Path(path) / "_delta_log").glob("*.json")}


def test_a_training_dataset_rebuilds_after_the_log_retention_has_passed(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    groups = {name: store.create_feature_group(name, primary_key="id", event_time="ts", schema=SCHEMA, statistics=False)
              for name in ("kept", "control")}
    for group in groups.values():
        for i in range(2):
            insert(spark, group, i)
    view = store.create_feature_view("tt", spine_time="at", labels=["y"],
                                     lookups=[FeatureLookup("kept", prefix="f_", keys={"id": "id"})])
    spine = spark.createDataFrame([(k, T0 + timedelta(hours=5), k % 2) for k in range(3)], "id BIGINT, at TIMESTAMP, y INT")
    dataset = store.create_training_dataset(view, spine=spine)
    protected = dataset.source_versions["kept:v1"]
    assert protected == 2
    stored = rows(dataset.read())
    kept, control = groups["kept"], groups["control"]
    for group in groups.values():
        set_properties(spark, group.path, **{"delta.checkpointInterval": "2"})
        for i in range(2, 6):  # past a checkpoint
            insert(spark, group, i)
        backdate_log(group.path)  # 400 days later...
        for i in range(6, 9):  # ...more commits: the next checkpoint cleans up the expired log
            insert(spark, group, i)

    # the clock really moved: the control group lost its old log, time travel to version 1 fails
    assert "00000000000000000001.json" not in log_files(control.path)
    with pytest.raises(Exception, match=r"(?i)version|log|time travel"):
        control.read(as_of_version=1).collect()
    # the dataset's source group kept every log file; the dataset rebuilds bit for bit
    assert {f"{v:020d}.json" for v in range(delta_version(kept.path) + 1)} <= log_files(kept.path)
    assert rows(dataset.rebuild()) == stored
    assert rows(kept.read(as_of_version=protected)) == [(k, T0 + timedelta(hours=i), float(i * 10 + k))
                                                         for k in range(3) for i in range(2)]

    # an operator shortens a retention, or turns the clean-up back on: the next write is refused
    protective = {k: v for k, v in spark.sql(f"SHOW TBLPROPERTIES delta.`{kept.path}`").collect()
                  if k in ("delta.deletedFileRetentionDuration", "delta.logRetentionDuration",
                           "delta.enableExpiredLogCleanup")}
    assert protective == {"delta.deletedFileRetentionDuration": "interval 3650 days",
                          "delta.logRetentionDuration": "interval 3650 days", "delta.enableExpiredLogCleanup": "false"}
    for key, value in (("delta.deletedFileRetentionDuration", "interval 7 days"),
                       ("delta.enableExpiredLogCleanup", "true")):
        set_properties(spark, kept.path, **{key: value})
        before = delta_version(kept.path)
        with pytest.raises(InvalidArgumentError) as err:
            insert(spark, kept, 9)
        assert "tt_v1#1" in str(err.value) and f"Delta version {protected}" in str(err.value)
        assert err.value.params["argument"] == f"{key} of {kept.node_name}"
        assert delta_version(kept.path) == before  # nothing written
        set_properties(spark, kept.path, **protective)  # together: Delta checks deleted-file <= log retention
    insert(spark, kept, 9)  # allowed again
    assert rows(dataset.rebuild()) == stored
