"""Subprocess workers for the reliability suites: real processes, each with its own local Spark.

Run as ``python -m tests.reliability._workers <command> <spec.json>``; the tests start them with
:func:`tests.reliability.conftest.start_worker` (own process group, ``TZ=UTC``) and kill them with
SIGKILL to the whole group (the Python driver, its JVM and the Python UDF workers at once, like an
OOM kill or a lost machine: killing only the Python driver would let the JVM finish a commit).

Commands:

* ``backfill``   -- run a feature pipeline over a range. The chunk starting at ``spec["mark_chunk"]``
  is *marked*: :func:`rolling_sum` then passes its output through an identity Python UDF that
  touches ``spec["signal"]`` when it first runs, and repartitions it into ``WRITE_TASKS``
  partitions. The group caches the chunk's rows while checking them (the UDF runs then), and the
  Delta write afterwards runs ``WRITE_TASKS`` tasks one after another (``local[1]``), each
  writing one data file into the table folder, before the single commit. The test, woken by the
  signal, watches the table folder and SIGKILLs as soon as a data file appears that no commit in
  ``_delta_log`` references: the kill lands deterministically between "files written" and
  "commit" (the window is ``WRITE_TASKS`` sequential task runs wide, and the test checks
  afterwards that it did find uncommitted files).
* ``score``      -- score a spine whose passthrough column ``tag`` is computed by a Python UDF that
  touches ``spec["signal"]`` and then sleeps for an hour. Spark prunes an unused UDF column, so
  the UDF only runs in the one job that needs ``tag``: the predictions write itself (after the
  table was created, before its commit). The test SIGKILLs when the signal appears.
* ``insert``     -- one insert (a MERGE) into a feature group. With ``spec["pause"] == "registry"``
  the worker's registry, once the data commit is done, touches ``spec["signal"]`` and sleeps
  instead of writing the commit row: the test SIGKILLs there, between the data commit and the
  registry commit (a pause point in the test's own process, not a mock: Spark and Delta run for
  real). Without it, the session runs the MERGE's join as a sort-merge join over
  ``WRITE_TASKS`` un-coalesced shuffle partitions, so the MERGE writes ``WRITE_TASKS`` files one
  after another (``local[1]``) before its commit, and the test SIGKILLs when the first appears.
* ``concurrent`` -- phases run in lock step with a sibling worker (a file barrier before each
  phase): create the same feature group, insert disjoint keys, insert overlapping keys, backfill
  a time range of a shared pipeline, backfill the *same* range of another pipeline. Every call's
  outcome (Delta version or error class) goes to ``spec["result"]`` as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EVENTS = "user STRING, ts TIMESTAMP, amount DOUBLE"
OUTPUT = "user STRING, ts TIMESTAMP, amount_sum_1d DOUBLE, n_1d BIGINT"
INSERT_SCHEMA = "id BIGINT, ts TIMESTAMP, value DOUBLE, writer INT"
WINDOW = timedelta(days=1)
WRITE_TASKS = 48
T0 = datetime(2013, 1, 1, tzinfo=UTC)

# Set by the ``backfill`` worker only; the test process runs the same transform unmarked.
MARK: dict[str, Any] = {}


def event_rows(users: int = 24, days: int = 6, every_hours: int = 2) -> list[tuple[str, datetime, float]]:
    """Deterministic raw events from Dec 31 (lookback data) on: ``users`` users, one event every few hours."""
    start = T0 - timedelta(days=1)
    return [
        (f"u{u:02d}", start + timedelta(hours=every_hours * i, minutes=u), float((u * 7 + i) % 13))
        for u in range(users)
        for i in range(days * 24 // every_hours)
    ]


def rolling_sum(spark: Any, inputs: dict[str, Any], time_range: Any) -> Any:
    """Per user, the sum and count of amounts over (t - 1 day, t] at each event."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    micros = F.unix_micros("ts")
    window = Window.partitionBy("user").orderBy(micros).rangeBetween(-int(WINDOW.total_seconds() * 1e6) + 1, 0)
    out = inputs["events"].select(
        "user", "ts", F.sum("amount").over(window).alias("amount_sum_1d"), F.count("amount").over(window).alias("n_1d")
    )
    if MARK and time_range.start == MARK["chunk_start"]:
        signal = MARK["signal"]

        def touch(value: float | None) -> float | None:
            Path(signal).touch()
            return value

        marked = F.udf(touch, "double")
        out = out.withColumn("amount_sum_1d", marked("amount_sum_1d")).repartition(WRITE_TASKS)
    return out


def scoring_spine(spark: Any, *, devices: int = 8, hours: int = 24, signal: str | None = None) -> Any:
    """Spine rows (event_id, device, ts, tag) to score; with ``signal``, ``tag`` is a sleeping UDF."""
    from pyspark.sql import functions as F

    rows = [(d * 1000 + i, d, T0 + timedelta(hours=150 + i, minutes=30)) for d in range(devices) for i in range(hours)]
    spine = spark.createDataFrame(rows, "event_id long, device int, ts timestamp")
    if signal is None:
        return spine.withColumn("tag", F.col("event_id") * 2)

    def slow_tag(event_id: int) -> int:
        Path(signal).touch()
        time.sleep(3600)  # killed long before
        return event_id * 2

    return spine.withColumn("tag", F.udf(slow_tag, "long")("event_id"))


def build_session(spec: dict[str, Any]) -> Any:
    """The repo's own session factory, small: local[1], UI off, 2 shuffle partitions, cached Delta jars."""
    from engine.session import build_spark

    overrides = {
        "spark.master": spec.get("master", "local[1]"),
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.driver.memory": "1g",
        "spark.databricks.delta.snapshotPartitions": "1",
        "spark.sql.warehouse.dir": spec["warehouse"],
        **spec.get("conf", {}),
    }
    spark = build_spark("local", overrides)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# -- commands ----------------------------------------------------------------------------------


def backfill(spec: dict[str, Any]) -> None:
    from engine.pipelines import FeaturePipeline, Input
    from engine.store.feature_store import FeatureStore

    spark = build_session(spec)
    if spec.get("mark_chunk"):
        MARK.update(chunk_start=datetime.fromisoformat(spec["mark_chunk"]), signal=spec["signal"])
    store = FeatureStore(spark, spec["root"])
    pipeline = FeaturePipeline(
        spec["pipeline"], rolling_sum, inputs={"events": Input(spec["raw"], time_column="ts")},
        output=store.get_feature_group(spec["group"]), lookback=WINDOW, step=timedelta(hours=spec["step_hours"]),
    )
    pipeline.run(datetime.fromisoformat(spec["start"]), datetime.fromisoformat(spec["end"]))


def score(spec: dict[str, Any]) -> None:
    from engine.pipelines.inference import score_batch

    spark = build_session(spec)
    spine = scoring_spine(spark, signal=spec["signal"])
    score_batch(spark, spec["model_uri"], spine, output=spec["output"], batch_id=spec["batch_id"],
                scored_at=datetime.fromisoformat(spec["scored_at"]), passthrough=["event_id", "tag"])


def insert_rows(spark: Any, keys: list[int], writer: int, batch: int) -> Any:
    rows = [(k, T0 + timedelta(hours=k % 24), float(writer * 1000 + batch), writer) for k in keys]
    return spark.createDataFrame(rows, INSERT_SCHEMA)


# the MERGE of ``insert`` writes WRITE_TASKS files, one task after another
MERGE_CONF = {"spark.sql.shuffle.partitions": str(WRITE_TASKS), "spark.sql.autoBroadcastJoinThreshold": "-1",
              "spark.sql.adaptive.enabled": "false"}


def insert(spec: dict[str, Any]) -> None:
    from engine.store.feature_store import FeatureStore

    spark = build_session(spec)
    store = FeatureStore(spark, spec["root"])
    group = store.get_feature_group(spec["group"])
    if spec.get("pause") == "registry":
        def pause(*args: Any, **kwargs: Any) -> None:
            Path(spec["signal"]).touch()
            time.sleep(3600)  # killed long before

        store.registry.record_commits = pause  # type: ignore[method-assign]
    group.insert(insert_rows(spark, list(range(*spec["keys"])), 0, spec["batch"]))


def concurrent(spec: dict[str, Any]) -> None:
    """The phases of the concurrency suite, in lock step with the sibling worker."""
    import logging

    from engine.errors import EngineError
    from engine.pipelines import FeaturePipeline, Input
    from engine.store import _local_group_write
    from engine.store.feature_store import FeatureStore

    me, barrier = int(spec["writer"]), Path(spec["barrier"])
    spark = build_session(spec)
    store = FeatureStore(spark, spec["root"])
    results: dict[str, list[dict[str, Any]]] = {}
    retries: list[str] = []

    class CountRetries(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "concurrent commit conflict" in record.getMessage():
                retries.append(record.getMessage())

    logging.getLogger("engine.store.delta").addHandler(CountRetries(logging.WARNING))
    local_log = logging.getLogger("engine.store._local_commit")  # races lost by the engine's own commits
    local_log.setLevel(logging.INFO)
    local_log.addHandler(CountRetries(logging.INFO))

    def wait_for_sibling(phase: str) -> None:
        (barrier / f"{phase}-{me}").touch()
        deadline = time.monotonic() + 600
        while not (barrier / f"{phase}-{1 - me}").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"sibling never reached {phase}")
            time.sleep(0.05)

    def attempt(phase: str, label: Any, action: Any) -> None:
        began = time.time()
        try:
            outcome: dict[str, Any] = {"ok": True, "delta_version": action()}
        except EngineError as err:
            outcome = {"ok": False, "error_class": err.error_class, "error": str(err)[:500]}
        except Exception as err:  # recorded, so the test can show what leaked through
            outcome = {"ok": False, "error_class": type(err).__name__, "error": str(err)[:500],
                       "traceback": traceback.format_exc()[-3000:]}
        results.setdefault(phase, []).append({"label": label, "began": began, "ended": time.time(), **outcome,
                                              "retries_so_far": len(retries)})
        Path(spec["result"]).write_text(json.dumps(results))

    wait_for_sibling("create")
    attempt("create", "shared", lambda: store.create_feature_group(
        "shared", primary_key="id", event_time="ts", schema=INSERT_SCHEMA, statistics=False, exist_ok=True,
    ).delta_version())

    for phase, group_name in (("disjoint", "disjoint"), ("overlap", "overlap")):
        group = store.get_feature_group(group_name)
        # disjoint keys: small batches are committed by the engine (engine.store._local_group_write);
        # the same keys: through Delta's MERGE, so both writers' conflict handling is raced
        _local_group_write.MAX_ROWS = 250_000 if phase == "disjoint" else 0
        wait_for_sibling(phase)
        for batch in range(spec["batches"]):
            base = (me * 1000 if phase == "disjoint" else 0) + batch * 10
            frame = insert_rows(spark, list(range(base, base + 10)), me, batch)
            attempt(phase, batch, lambda frame=frame, group=group: group.insert(frame).delta_version)

    pipeline = FeaturePipeline(
        "shared_backfill", rolling_sum, inputs={"events": Input(spec["raw"], time_column="ts")},
        output=store.get_feature_group("backfill"), lookback=WINDOW, step=timedelta(days=1),
    )
    start, end = (datetime.fromisoformat(t) for t in spec["backfill_range"])
    _local_group_write.MAX_ROWS = 0  # disjoint ranges through Delta's replaceWhere
    wait_for_sibling("backfill")
    attempt("backfill", [start.isoformat(), end.isoformat()],
            lambda: [r.delta_version for r in pipeline.run(start, end)])

    same = FeaturePipeline(
        "same_range", rolling_sum, inputs={"events": Input(spec["raw"], time_column="ts")},
        output=store.get_feature_group("same_range"), lookback=WINDOW, step=timedelta(days=1),
    )
    start, end = (datetime.fromisoformat(t) for t in spec["same_range"])
    _local_group_write.MAX_ROWS = 250_000  # the same range, committed by the engine
    wait_for_sibling("same_range")
    attempt("same_range", [start.isoformat(), end.isoformat()],
            lambda: [r.delta_version for r in same.run(start, end)])


COMMANDS = {"backfill": backfill, "score": score, "insert": insert, "concurrent": concurrent}


def main(argv: list[str]) -> int:
    os.environ["TZ"] = "UTC"
    time.tzset()
    command, spec_path = argv
    spec = json.loads(Path(spec_path).read_text())
    try:
        COMMANDS[command](spec)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
