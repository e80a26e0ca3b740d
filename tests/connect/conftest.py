"""A real local Spark Connect server for the tests in this folder, started once per test session.

``connect_server`` runs ``org.apache.spark.sql.connect.service.SparkConnectServer`` from the
installed pyspark (its jars ship ``spark-connect_2.13``) through ``bin/spark-submit``, with the
Delta package and confs the engine's ``local`` profile uses, bound to 127.0.0.1 on a free port;
it waits until the port accepts connections and stops the server by its PID (the process group
it leads: the JVM and its Python workers) in a finalizer, also when a test failed.

``connect_spark`` is one ``SparkSession.builder.remote(...)`` session on it, built by
``engine.session.build_spark("remote")`` like every other caller.

PySpark keeps one process-wide switch, ``$SPARK_CONNECT_MODE_ENABLED``: while it is set,
``pyspark.sql.functions`` build Spark Connect columns and no classic session can be built. The
classic ``spark`` fixture (tests/conftest.py) shares this process, so the switch is on only
during each test here (autouse ``_connect_mode``) and off everywhere else; a test computes a
classic result inside ``with classic_mode():``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 600  # a cold ivy resolution on a loaded 2-core machine; not a test assertion
_MODE = "SPARK_CONNECT_MODE_ENABLED"


@dataclass(frozen=True)
class ConnectServer:
    url: str
    pid: int
    log: Path
    warehouse: Path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.connect)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def server_command(spark_home: Path, port: int, warehouse: Path) -> list[str]:
    from engine.session import DELTA_COORDINATE

    conf = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.driver.memory": "2g",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.databricks.delta.snapshotPartitions": "1",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.pyspark.python": sys.executable,
        "spark.executorEnv.TZ": "UTC",
    }
    command = [str(spark_home / "bin" / "spark-submit"), "--master", "local[2]",
               "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
               "--name", "feature-factory-tests-connect", "--packages", DELTA_COORDINATE]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, "spark-internal"]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it leads it: start_new_session), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 60), (signal.SIGKILL, 30)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session")
def connect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectServer]:
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    if not list((spark_home / "jars").glob("spark-connect_*.jar")):
        pytest.fail(f"no spark-connect_*.jar in {spark_home / 'jars'}: pyspark was installed without Spark Connect")
    root = tmp_path_factory.mktemp("connect-server")
    warehouse = root / "warehouse"
    port = _free_port()
    env = {**os.environ, "SPARK_HOME": str(spark_home), "PYSPARK_PYTHON": sys.executable, "TZ": "UTC",
           # the server's Python workers run UDFs that import `engine` (pickled by reference)
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("SPARK_REMOTE", None)
    env.pop(_MODE, None)
    log_path = root / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(server_command(spark_home, port, warehouse), cwd=root, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(port):
            if process.poll() is not None:
                pytest.fail(f"the Spark Connect server exited ({process.returncode}) before listening; "
                            f"last lines of {log_path}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"the Spark Connect server did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S}s; "
                            f"last lines of {log_path}:\n{_tail(log_path)}")
            time.sleep(1)
        yield ConnectServer(url=f"sc://127.0.0.1:{port}", pid=process.pid, log=log_path, warehouse=warehouse)
    finally:
        _stop(process)


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def connect_spark(connect_server: ConnectServer) -> Iterator[object]:
    from engine.session import build_spark

    previous = os.environ.get("SPARK_REMOTE")
    os.environ["SPARK_REMOTE"] = connect_server.url
    try:
        session = build_spark("remote", {"spark.sql.shuffle.partitions": "2"})
    finally:
        _restore("SPARK_REMOTE", previous)
        os.environ.pop(_MODE, None)  # set by pyspark when the remote session was built
    yield session
    os.environ[_MODE] = "1"
    try:
        session.stop()  # type: ignore[attr-defined]
    finally:
        os.environ.pop(_MODE, None)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@pytest.fixture(autouse=True)
def _connect_mode(connect_spark: object) -> Iterator[None]:
    """PySpark's Connect switch on for the duration of one test of this folder (see module docs)."""
    os.environ[_MODE] = "1"
    try:
        yield
    finally:
        os.environ.pop(_MODE, None)


@contextmanager
def classic_mode() -> Iterator[None]:
    """Inside a Connect test: PySpark's Connect switch off, to compute on the classic session."""
    previous = os.environ.pop(_MODE, None)
    try:
        yield
    finally:
        _restore(_MODE, previous)
