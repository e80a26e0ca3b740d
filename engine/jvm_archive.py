"""A class-data-sharing archive for the local driver JVM: a session starts in about half the time.

A new JVM spends its first seconds loading, parsing and verifying the classes Spark, Delta Lake and
Hadoop need (tens of thousands). Java's dynamic AppCDS writes the classes one run loaded to an archive
when that JVM exits (``-XX:ArchiveClassesAtExit``); a later JVM started with ``-XX:SharedArchiveFile``
maps them from the archive instead. On this project's 2-core machine a local session was ready in
8.2-8.7 s instead of 12.4-16.4 s and the first feature-group creation took 22-25 s instead of 29 s
(two runs each, 2026-12-03): about 8 s less per JVM start.

:func:`build` writes the archive once (``make jars`` runs ``python -m engine.session --fetch-jars``,
which calls it): a child process starts a local session with ``-XX:ArchiveClassesAtExit`` and does
what every session does first -- create, append to, merge into, read and list the history of a Delta
table -- then exits. :func:`use` adds the archive to ``spark.driver.extraJavaOptions`` of a session
whose driver JVM is started here (a ``local`` master, not under spark-submit), if the archive for
exactly this java binary, PySpark version and ``spark.jars`` exists; otherwise nothing changes. A JVM
that cannot map the archive (another JDK build, a changed class path) starts without it
(``-Xshare:auto``, the default), so a stale archive costs nothing but the gain. ``FF_JVM_ARCHIVE=0``
turns it off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from engine import delta_jars

log = logging.getLogger(__name__)

_OPTION = "spark.driver.extraJavaOptions"
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"  # an archive the JVM cannot use is skipped, silently


def enabled() -> bool:
    from engine.env import FF_JVM_ARCHIVE

    return FF_JVM_ARCHIVE.get() is not False


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return os.path.realpath(found) if found and Path(found).exists() else None


def archive_file(settings: Mapping[str, str]) -> Path | None:
    """The archive for these settings' class path and this machine's java (None: no java found)."""
    import pyspark

    java = _java()
    if java is None:
        return None
    stat = os.stat(java)
    key = "\n".join([java, str(stat.st_mtime_ns), pyspark.__version__, settings.get("spark.jars", ""),
                     settings.get("spark.driver.extraClassPath", "")])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return delta_jars.ivy_jars(settings) / f"feature-factory-jvm-{digest}.jsa"


def use(settings: dict[str, str], master: str | None) -> bool:
    """Put the archive on the driver JVM's options if it exists for ``settings`` (after the Delta
    jars were put in ``spark.jars``) and ``master`` is local; True if it did."""
    options = settings.get(_OPTION, "")
    if not enabled() or "SharedArchiveFile" in options or "ArchiveClassesAtExit" in options:
        return False
    if not str(master or "").startswith("local"):
        return False  # a cluster job's driver JVM is started by spark-submit, not by this process
    archive = archive_file(settings)
    if archive is None or not archive.is_file():
        return False
    settings[_OPTION] = f"{options} -XX:SharedArchiveFile={archive} {_QUIET}".strip()
    return True


_WARM_UP = """
import shutil, sys, tempfile
from engine.session import build_spark
from engine.store import delta
spark = build_spark(sys.argv[1], {"spark.master": "local[1]", "spark.ui.enabled": "false",
                                  "spark.driver.extraJavaOptions": "-XX:ArchiveClassesAtExit=" + sys.argv[2]})
folder = tempfile.mkdtemp(prefix="ff-jvm-archive-")
frame = spark.createDataFrame([(1, "a", 1.0), (2, "b", 2.0)], "id INT, name STRING, x DOUBLE")
delta.create_table(spark, folder + "/t", frame.schema)
delta.append(spark, folder + "/t", frame)
delta.upsert(spark, folder + "/t", frame, keys=["id"])
delta.read(spark, folder + "/t").where("x > 1").groupBy("name").count().collect()
delta.history(spark, folder + "/t")
shutil.rmtree(folder, ignore_errors=True)
gateway = spark.sparkContext._gateway
spark.stop()
gateway.proc.stdin.close()  # the JVM exits on EOF and writes the archive while exiting
gateway.proc.wait(timeout=600)
"""


def build(profile: str, settings: Mapping[str, str]) -> Path | None:
    """Write the archive for ``profile``'s local session with these settings (``spark_settings`` of
    it) in a child process; its path, or None if this machine cannot (no java, FF_JVM_ARCHIVE=0, the
    child failed: a warning, never an error)."""
    resolved = dict(settings)
    delta_jars.use_resolved(resolved)
    target = archive_file(resolved)
    if target is None or not enabled():
        return None
    if target.is_file():
        return target
    partial = Path(tempfile.mkdtemp(prefix="ff-jvm-archive-")) / target.name
    started = time.monotonic()
    env = {**os.environ, "FF_JVM_ARCHIVE": "0"}
    try:
        done = subprocess.run([sys.executable, "-c", _WARM_UP, profile, str(partial)], env=env, capture_output=True,
                              text=True, timeout=900, check=False)
        if done.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
            log.warning("no JVM class archive (sessions start without it): %s", (done.stderr or done.stdout)[-500:])
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_suffix(f".{os.getpid()}.tmp")
        shutil.move(str(partial), staged)
        staged.replace(target)  # atomic: a session maps the whole archive or none
    finally:
        shutil.rmtree(partial.parent, ignore_errors=True)
    log.info("JVM class archive %s (%.0f MB) written in %.0fs", target, target.stat().st_size / 2**20,
             time.monotonic() - started)
    return target
