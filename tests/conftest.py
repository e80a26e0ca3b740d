"""One session-scoped local SparkSession for the whole suite: local[2], UTC, few shuffle
partitions, UI off, Delta on -- built by engine.session like every other caller."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
# Spark hands TIMESTAMP values to Python as naive datetimes in the *process* time zone; pin it to
# UTC so expected values in tests are the UTC wall-clock times.
os.environ["TZ"] = "UTC"
time.tzset()


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from engine.session import build_spark

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = build_spark(
        "local",
        {
            "spark.master": "local[2]",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.driver.memory": "4g",
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.databricks.delta.snapshotPartitions": "1",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture()
def table_path(tmp_path: Path) -> str:
    """A fresh location for one Delta table."""
    return str(tmp_path / "table")
