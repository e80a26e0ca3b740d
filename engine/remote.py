"""Spark Connect awareness in one place: is this session remote (Spark Connect), and which one.

A Spark Connect session (``SparkSession.builder.remote("sc://...")``, Databricks serverless and
shared clusters) has no JVM on the client: no ``sparkContext``, no py4j, no ``DeltaTable`` Python
API without Delta's Connect server plugin. The engine asks :func:`is_remote` where it must choose
another path (Delta through SQL, driver-side hyperopt trials, no log level or status tracker).
"""

from __future__ import annotations

from typing import Any

__all__ = ["active_remote_session", "describe_session", "is_remote"]


def is_remote(spark: Any) -> bool:
    """True for a Spark Connect session (``pyspark.sql.connect.session.SparkSession``)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def active_remote_session() -> Any:
    """The active Spark Connect session of this process, or None (never starts one)."""
    try:
        from pyspark.sql.connect.session import SparkSession as RemoteSession
    except ImportError:  # pyspark without the connect extra (grpcio, ...)
        return None
    return RemoteSession.getActiveSession()


def describe_session(spark: Any) -> str:
    """A one-line description for logs and errors: ``Spark Connect sc://host:port`` or ``local[2]``."""
    if is_remote(spark):
        endpoint = getattr(getattr(getattr(spark, "client", None), "_builder", None), "endpoint", None)
        return f"Spark Connect session on sc://{endpoint}" if endpoint else "Spark Connect session"
    try:
        return f"classic session on {spark.sparkContext.master}"
    except Exception:  # pragma: no cover - sessions without a SparkContext
        return f"session {type(spark).__name__}"

