"""The Delta Lake jars: resolved by Spark's package resolution once, then put on the class path
directly.

``spark.jars.packages`` makes every new JVM run an Ivy resolution (~5 s on 2 cores, even with a
warm cache). After the first session that resolved :data:`DELTA_COORDINATE`, the jar files Spark
chose are written to a manifest in the Ivy jars folder; a later session whose only package is that
coordinate gets ``spark.jars`` from the manifest instead, if every file in it still exists. Any
other package list, a missing file or a changed Delta version falls back to the resolution.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# The jars must match the delta-spark Python package. 4.4.0, not 4.4.1: Maven Central serves no
# delta-spark_4.2_2.13:4.4.1 jar (HTTP 404 on 2026-11-27), so the pinned set is 4.4.0 on both sides.
DELTA_VERSION = "4.4.0"
DELTA_COORDINATE = f"io.delta:delta-spark_4.2_2.13:{DELTA_VERSION}"
_JAR = f"io.delta_{DELTA_COORDINATE.split(':')[1]}-{DELTA_VERSION}.jar"  # Ivy's file name for it


def ivy_jars(settings: Mapping[str, str]) -> Path:
    """Where Spark's package resolution puts jars for these settings."""
    ivy = settings.get("spark.jars.ivy") or os.environ.get("IVY_HOME") or str(Path.home() / ".ivy2.5.2")
    return Path(ivy).expanduser() / "jars"


def manifest(settings: Mapping[str, str]) -> Path:
    return ivy_jars(settings) / f"feature-factory-{DELTA_COORDINATE.replace(':', '_')}.classpath"


def is_cached(settings: Mapping[str, str]) -> bool:
    """True if the Delta jar itself is already in the Ivy cache (no download needed)."""
    return (ivy_jars(settings) / _JAR).is_file()


def use_resolved(settings: dict[str, str]) -> bool:
    """Replace ``spark.jars.packages`` (exactly the Delta coordinate) by the jars resolved before;
    True if it did."""
    if settings.get("spark.jars.packages") != DELTA_COORDINATE or "spark.jars" in settings:
        return False
    try:
        jars = [line.strip() for line in manifest(settings).read_text().splitlines() if line.strip()]
    except OSError:
        return False
    if not jars or not all(Path(j.removeprefix("file://")).is_file() for j in jars):
        return False
    del settings["spark.jars.packages"]
    settings["spark.jars"] = ",".join(jars)
    return True


def remember_resolved(spark: SparkSession, settings: Mapping[str, str]) -> None:
    """After a session resolved the Delta coordinate: write the manifest of the jars it chose."""
    if settings.get("spark.jars.packages") != DELTA_COORDINATE:
        return
    jars = [j for j in spark.sparkContext.getConf().get("spark.jars", "").split(",") if j]
    if not any(j.endswith(_JAR) for j in jars):
        return
    target = manifest(settings)
    try:
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text("\n".join(jars) + "\n")
        partial.replace(target)  # atomic: a concurrent session reads the old manifest or the new one
    except OSError as err:  # a read-only cache only costs the resolution next time
        log.debug("could not write %s: %s", target, err)
