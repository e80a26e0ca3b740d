"""Helpers shared by the reliability suites: subprocess workers in their own process group, a
SIGKILL of the whole group, and Delta table versions read from ``_delta_log`` without Spark."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def start_worker(command: str, spec: dict[str, Any], folder: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m tests.reliability._workers command spec.json`` in a new session (its own
    process group: the Python driver, the JVM it launches and the UDF workers), TZ=UTC."""
    folder.mkdir(parents=True, exist_ok=True)
    spec_file = folder / f"{command}-{spec.get('writer', 0)}.json"
    spec_file.write_text(json.dumps({"warehouse": str(folder / "warehouse"), **spec}))
    env = {**os.environ, "TZ": "UTC", "PYTHONPATH": str(REPO), "PYARROW_IGNORE_TIMEZONE": "1"}
    log = open(folder / f"{spec_file.stem}.log", "wb")  # noqa: SIM115 -- handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability._workers", command, str(spec_file)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def worker_log(proc: subprocess.Popen[bytes], folder: Path) -> str:
    logs = sorted(folder.glob("*.log"))
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in logs)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes], *, timeout: float, what: str,
             folder: Path, interval: float = 0.005) -> None:
    """Poll ``condition`` until true; fail (with the worker's log) if the worker exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"worker exited ({proc.returncode}) before {what}\n{worker_log(proc, folder)}")
        if time.monotonic() > deadline:
            kill_group(proc)
            pytest.fail(f"timed out waiting for {what}\n{worker_log(proc, folder)}")
        time.sleep(interval)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's whole process group and wait until no member is left."""
    pgid = proc.pid  # the session leader's pid is the group id
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while group_members(pgid):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes of group {pgid} survived SIGKILL: {group_members(pgid)}")
        time.sleep(0.05)


def group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            members.append(int(stat.parent.name))
    return members


def delta_version(path: str | Path) -> int:
    """The latest committed version of a Delta table, from its log file names (-1: no table)."""
    log = Path(path) / "_delta_log"
    versions = [int(p.name.split(".")[0]) for p in log.glob("*.json")] if log.is_dir() else []
    return max(versions, default=-1)


def delta_versions(*roots: str | Path) -> dict[str, int]:
    """Every Delta table under ``roots`` -> its latest version (a new or changed table shows here)."""
    found = {}
    for root in roots:
        for log in Path(root).rglob("_delta_log"):
            found[str(log.parent)] = delta_version(log.parent)
    return found


def committed_files(path: str | Path) -> set[str]:
    """Data files added by any commit in the table's log (relative paths)."""
    added = set()
    for entry in (Path(path) / "_delta_log").glob("*.json"):
        for line in entry.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                added.add(action["add"]["path"])
    return added


def data_files(path: str | Path) -> set[str]:
    root = Path(path)
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


@pytest.fixture()
def workdir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "workers"
    folder.mkdir()
    yield folder


@pytest.fixture(scope="session")
def model_world(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The smallest real scoring path (as tests/spark/test_inference.py): one feature group, a view,
    a training dataset, a logistic regression registered as ``alarm@champion`` in an SQLite MLflow."""
    from datetime import timedelta

    import mlflow

    from engine.pipelines.training import training_config
    from engine.pipelines.view_training import train_on_dataset
    from engine.store.feature_store import FeatureStore
    from engine.store.feature_view import FeatureLookup
    from engine.store.training_dataset import TimeSplit
    from engine.temporal.ranges import TimeRange
    from engine.tracking import configure_tracking
    from tests.reliability._workers import T0

    def h(hours: float) -> Any:
        return T0 + timedelta(hours=hours)

    tmp = tmp_path_factory.mktemp("model_world")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        uri = configure_tracking(tmp / "warehouse")
        mp.setenv("MLFLOW_TRACKING_URI", uri)  # for the subprocess workers
        fs = FeatureStore(spark, str(tmp / "store"))
        sensor = fs.create_feature_group("sensor", primary_key="device", event_time="at",
                                         schema="device INT, at TIMESTAMP, level DOUBLE", statistics=False)
        rows = [(d, h(i), float((i + d) % 2) * 10 + (d % 3)) for d in range(8) for i in range(0, 200)]
        sensor.insert(spark.createDataFrame(rows, sensor.schema))
        view = fs.create_feature_view(
            "alarm", spine_time="ts", labels=["alarm"],
            lookups=[FeatureLookup("sensor", prefix="s_", keys={"device": "device"}, lookback=timedelta(hours=2))],
        )
        spine = spark.createDataFrame(
            [(d * 1000 + i, d, h(i + 0.5), int((i + d) % 2 == 1)) for d in range(8) for i in range(0, 140)],
            "event_id long, device int, ts timestamp, alarm int",
        )
        split = TimeSplit(TimeRange(h(0), h(90)), TimeRange(h(95), h(140)), min_gap=timedelta(hours=2))
        dataset = fs.create_training_dataset(view, spine=spine, split=split)
        config = training_config({"family": "sklearn_logreg", "max_evals": 1, "parallelism": 1,
                                  "search_space": {"C": {"dist": "choice", "options": [1.0]}}})
        trained = train_on_dataset(fs, dataset, config=config)
        yield {"fs": fs, "view": view, "dataset": dataset, "trained": trained, "tmp": tmp, "spine": spine,
               "scored_at": T0 + timedelta(days=30), "tracking_uri": uri}
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
