"""Short Spark jobs run beside each other: on local[2] a small job is mostly scheduling latency,
so two side by side take about the longer one's time. Used by a feature group's write for the
jobs without side effects (the key check beside the validation, statistics beside the MERGE)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["beside"]


def beside(spark: SparkSession, function: Any, *args: Any) -> Future[Any]:
    """Run ``function(*args)`` in a thread while the caller goes on; the thread inherits the
    caller's Spark job properties and tags (job group, scheduler pool)."""
    from pyspark.util import inheritable_thread_target

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-beside")
    try:
        return executor.submit(inheritable_thread_target(spark)(function), *args)
    finally:
        executor.shutdown(wait=False)
