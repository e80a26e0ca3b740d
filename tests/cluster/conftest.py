"""The standalone cluster for the tests in this folder: ``scripts/cluster.sh up`` once per module,
``down`` at the end even when a test failed (a cluster that was already up is reused and left up).

Helpers submit a job the way docs/cluster.md says (``spark-submit --master spark://... --py-files
dist/feature_factory-<v>.zip --packages <delta> jobs/<job>.py --profile standalone ...``) and find
the application it ran as in the master's JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "scripts" / "cluster.sh"
BUILD_DIST = REPO / "scripts" / "build_dist.sh"
UP_TIMEOUT_S = 600  # `up` itself waits FF_CLUSTER_TIMEOUT (default 240 s) for the worker


@dataclass(frozen=True)
class Cluster:
    master_url: str
    master_json: str
    worker_json: str
    work_dir: Path  # the worker's --work-dir: <app id>/<executor id>/{stderr, fetched files}
    py_files: Path  # the zip shipped with --py-files

    def state(self) -> dict[str, Any]:
        return _get_json(self.master_json)

    def worker_state(self) -> dict[str, Any]:
        return _get_json(self.worker_json)

    def app_ids(self) -> set[str]:
        state = self.state()
        return {a["id"] for a in state["activeapps"] + state["completedapps"]}

    def finished_app(self, app_id: str, *, timeout_s: float = 120) -> dict[str, Any]:
        """The master's record of ``app_id`` once it is FINISHED (the driver has exited)."""
        deadline = time.monotonic() + timeout_s
        while True:
            apps = {a["id"]: a for a in self.state()["completedapps"]}
            if app_id in apps or time.monotonic() > deadline:
                assert app_id in apps, f"{app_id} not among the master's completed apps after {timeout_s}s"
                return apps[app_id]
            time.sleep(2)

    def finished_executors(self, app_id: str, *, timeout_s: float = 120) -> list[dict[str, Any]]:
        """The worker's finished executors of ``app_id`` (the worker reaps them shortly after the
        master has marked the application finished, hence the wait)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [e for e in self.worker_state()["finishedexecutors"] if e["appid"] == app_id]
            if found or time.monotonic() > deadline:
                assert found, f"no finished executor of {app_id} on the worker after {timeout_s}s"
                return found
            time.sleep(2)


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    built = _script(str(BUILD_DIST), "zip", timeout=300)
    assert built.returncode == 0, built.stderr
    py_files = Path(built.stdout.strip().splitlines()[-1])
    cluster_dir = Path(os.environ.get("FF_CLUSTER_DIR", REPO / "warehouse" / "cluster"))
    info = Cluster(
        master_url=f"spark://127.0.0.1:{os.environ.get('FF_MASTER_PORT', '7077')}",
        master_json=f"http://127.0.0.1:{os.environ.get('FF_MASTER_UI_PORT', '8780')}/json/",
        worker_json=f"http://127.0.0.1:{os.environ.get('FF_WORKER_UI_PORT', '8781')}/json/",
        work_dir=cluster_dir / "work",
        py_files=py_files,
    )
    if _script(str(CLUSTER_SH), "status", timeout=120).returncode == 0:
        yield info  # somebody's `make cluster-up`: use it, leave it running
        return
    up = _script(str(CLUSTER_SH), "up", timeout=UP_TIMEOUT_S)
    try:
        assert up.returncode == 0, f"cluster.sh up failed:\n{up.stdout}\n{up.stderr}"
        yield info
    finally:
        down = _script(str(CLUSTER_SH), "down", timeout=300)
        again = _script(str(CLUSTER_SH), "down", timeout=300)  # idempotent
        status = _script(str(CLUSTER_SH), "status", timeout=120)
        assert down.returncode == 0, down.stderr
        assert again.returncode == 0 and "not running" in again.stdout, again.stdout + again.stderr
        assert status.returncode != 0 and "master pid: -  worker pid: -" in status.stdout, status.stdout
        assert not list((cluster_dir / "pids").glob("*.pid")), "pid files left behind"


def spark_submit(cluster: Cluster, job: str, *job_args: str, env: dict[str, str], log_dir: Path | None = None,
                 timeout_s: float = 2400, cwd: Path = REPO) -> tuple[dict[str, Any], str]:
    """Submit ``jobs/<job>.py`` in client mode; return its JSON result line and its application id
    (the driver's output goes to ``<log_dir>/<job>.log``)."""
    import pyspark

    from engine.session import DELTA_COORDINATE

    spark_home = Path(pyspark.__file__).parent  # the pip package is a full Spark home (bin/, jars/)
    before = cluster.app_ids()
    command = [
        str(spark_home / "bin" / "spark-submit"),
        "--master", cluster.master_url,
        "--deploy-mode", "client",
        "--packages", DELTA_COORDINATE,
        "--py-files", str(cluster.py_files),
        "--driver-memory", "1500m",
        "--executor-memory", "1g",
        "--conf", "spark.ui.enabled=false",
        str(REPO / "jobs" / f"{job}.py"),
        "--profile", "standalone",
        *job_args,
    ]
    started = time.monotonic()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    elapsed = time.monotonic() - started
    if log_dir is not None:  # the driver's whole output, for a post-mortem
        (log_dir / f"{job}.log").write_text(f"$ {' '.join(command)}\n\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    assert proc.returncode == 0, (
        f"{job} exited {proc.returncode} after {elapsed:.0f}s\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    )
    results = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert results, f"{job} printed no JSON result line:\n{proc.stdout[-3000:]}"
    new = sorted(cluster.app_ids() - before)
    assert len(new) == 1, f"expected exactly one new application on the master for {job}, found {new}"
    print(f"{job}: {elapsed:.0f}s as {new[0]}")
    return json.loads(results[-1]), new[0]


def submit_env() -> dict[str, str]:
    """The environment of every spark-submit: the venv's Python on driver and executors; MLflow is
    the store's own (no MLFLOW_* variables), nothing taken from the checkout but the shipped zip."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_GATEWAY", "PYSPARK_PIN"))}
    env.update({
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "TZ": "UTC",
        "SPARK_LOCAL_IP": "127.0.0.1",
    })
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "FF_PROJECT_ROOT", "FF_REPO"):
        env.pop(key, None)
    env.pop("SPARK_CONF_DIR", None)
    return env
