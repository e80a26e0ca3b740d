"""The only place a SparkSession is built.

``build_spark(profile)`` reads the profile ``<profile>.yaml`` (master, app name, warehouse, Spark
settings) from ``$FF_SPARK_PROFILES`` (a folder of the user's own profiles) or the profiles
packaged with the engine (``engine/profiles``: local, standalone, databricks, remote), wires in Delta Lake (extensions, catalog and the jars through Spark's own package
resolution) and pins ``spark.sql.session.timeZone=UTC``. Library code never calls it: it takes
``spark`` as a parameter. Jobs, tests and the demo call it; on Databricks the ``databricks``
profile returns the ambient session unchanged.

Spark Connect: the ``remote`` profile (``connect: true``) connects with
``SparkSession.builder.remote(url)`` to ``remote:`` or ``$SPARK_REMOTE``; the server owns Delta,
the warehouse and every JVM setting, so only runtime SQL settings are sent (UTC included). Once a
process holds a Spark Connect session PySpark is in Connect mode and cannot also build a classic
session: a classic profile (``local``, ``standalone``) then raises :class:`SessionConflictError`
naming the session found, instead of Spark's unrelated start-up failure. An ambient profile
(``databricks``) returns the active session of either kind.

Run ``python -m engine.session --fetch-jars`` once to pre-fetch the Delta jars and write the driver
JVM's class archive (:mod:`engine.jvm_archive`; ``make jars``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import delta_jars, jvm_archive
from engine.config import from_mapping, load_yaml
from engine.delta_jars import DELTA_COORDINATE
from engine.errors import DeltaJarsError, InvalidArgumentError, JavaError, SessionConflictError, UnknownProfileError
from engine.remote import active_remote_session, describe_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["DELTA_COORDINATE", "REQUIRED_JAVA", "SparkProfile", "build_spark", "profile_folders", "project_root"]

log = logging.getLogger(__name__)

REQUIRED_JAVA = 17
_DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


@dataclass(frozen=True)
class SparkProfile:
    """One profile ``<name>.yaml``: how to get a session in one kind of environment."""

    master: str | None = None
    app_name: str = "feature-factory"
    warehouse: str | None = None  # an absolute path or URI of the Spark SQL warehouse
    ambient: bool = False  # Databricks: use the session that already exists
    delta_packages: bool = True  # resolve the Delta jars with spark.jars.packages
    check_java: bool = True
    connect: bool = False  # Spark Connect: a remote session (URL from `remote` or $SPARK_REMOTE)
    remote: str | None = None  # sc://host:port[/;param=value]; implies connect
    conf: dict[str, str] = field(default_factory=dict)


def project_root() -> Path:
    """The repository root (the folder holding ``conf/``), or the working directory."""
    env = os.environ.get("FF_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[1]
    return here if (here / "conf").is_dir() else Path.cwd()


def _packaged() -> Any:
    """The profiles shipped inside the package (works from a wheel, a zip on --py-files, a checkout)."""
    from importlib.resources import files

    return files("engine") / "profiles"


def profile_folders() -> list[Any]:
    """Where profiles are looked up, first match wins: ``$FF_SPARK_PROFILES``, then the packaged ones."""
    from engine.env import FF_SPARK_PROFILES

    user = FF_SPARK_PROFILES.get()
    return [*([user] if user is not None else []), _packaged()]


def load_profile(profile: str) -> SparkProfile:
    folders = profile_folders()
    available = sorted({p.name.removesuffix(".yaml") for folder in folders if folder.is_dir()
                        for p in folder.iterdir() if p.name.endswith(".yaml")})
    if isinstance(profile, str) and re.fullmatch(r"[A-Za-z0-9_-]+", profile):
        for folder in folders:
            path = folder / f"{profile}.yaml"
            if path.is_file():
                prof = from_mapping(SparkProfile, load_yaml(path), source=str(path))
                if prof.warehouse and "://" not in prof.warehouse and not Path(prof.warehouse).is_absolute():
                    from engine.errors import ConfigError

                    raise ConfigError(source=str(path), key="warehouse", expected="an absolute path or a URI",
                                      found=repr(prof.warehouse), hint="Relative paths would depend on the working directory.")
                return prof
    raise UnknownProfileError(profile=profile, available=available, searched=[str(f) for f in folders],
                              hint="Add <name>.yaml to $FF_SPARK_PROFILES to define your own.")


def java_major_version(java: str | None = None) -> int:
    """The major version of the Java Spark will use (JAVA_HOME first, then PATH)."""
    if java is None:
        home = os.environ.get("JAVA_HOME")
        java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    hint = f"Install a JDK >= {REQUIRED_JAVA} (e.g. `apt-get install openjdk-17-jdk-headless`) and put it on PATH or set JAVA_HOME."
    if not java or not Path(java).exists():
        raise JavaError(required=REQUIRED_JAVA, found="no `java` executable (JAVA_HOME unset and none on PATH)", hint=hint)
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except OSError as err:
        raise JavaError(required=REQUIRED_JAVA, found=f"{java} could not run ({err})", hint=hint) from None
    text = out.stderr + out.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        raise JavaError(required=REQUIRED_JAVA, found=f"unparseable `java -version` output: {text.strip()[:120]!r}", hint=hint)
    major = int(match[1])
    if major == 1 and match[2]:  # "1.8.0_x" is Java 8
        major = int(match[2])
    if major < REQUIRED_JAVA:
        raise JavaError(required=REQUIRED_JAVA, found=f"Java {major} at {java}", hint=hint)
    return major


def spark_settings(profile: SparkProfile, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """All settings a profile puts on the builder (Delta, UTC, warehouse, then overrides)."""
    settings: dict[str, str] = {"spark.sql.session.timeZone": "UTC", **_DELTA_CONF}
    # The engine reads and writes Delta tables by path, never managed tables: without a profile
    # warehouse, Spark's (created at start-up) goes to the temp folder, not the working directory.
    settings["spark.sql.warehouse.dir"] = profile.warehouse or str(Path(tempfile.gettempdir()) / "feature-factory-spark-warehouse")
    # Python workers must run the driver's interpreter (the venv with pyarrow, pandas, the engine),
    # not whatever `python3` is first on PATH.
    if not os.environ.get("PYSPARK_PYTHON"):
        settings["spark.pyspark.python"] = sys.executable
    settings["spark.executorEnv.TZ"] = "UTC"
    settings.update({k: str(v) for k, v in profile.conf.items()})
    settings.update({k: str(v) for k, v in (overrides or {}).items()})
    if profile.delta_packages and "spark.jars" not in settings:
        packages = [p for p in settings.get("spark.jars.packages", "").split(",") if p]
        if not any(p.startswith("io.delta:delta-spark") for p in packages):
            packages.insert(0, DELTA_COORDINATE)
        settings["spark.jars.packages"] = ",".join(packages)
    return settings


# Adaptive execution merges small shuffle partitions down to the default parallelism, one task
# per core, so a core idles whenever one task runs longer; unless a profile or override sets it, the
# floor is two tasks per core (partitions of at least 1 MB still make a small shuffle a few tasks).
# A 1M-row scoring run: 17.7 s -> 14.7 s (benchmarks/SCORING.md).
MIN_PARTITIONS = "spark.sql.adaptive.coalescePartitions.minPartitionNum"


def build_spark(profile: str = "local", overrides: Mapping[str, Any] | None = None) -> SparkSession:
    """Build (or, for an ambient profile, return) the SparkSession for ``profile``.

    ``overrides`` are Spark settings applied last, e.g. ``{"spark.master": "local[2]"}``.
    To run offline, pass ``{"spark.jars": "/path/delta-spark.jar,/path/delta-storage.jar"}``
    (or pre-fill the local Maven repository ``~/.m2`` with ``mvn dependency:get``).
    """
    from pyspark.sql import SparkSession

    from engine.env import SPARK_REMOTE

    prof = load_profile(profile)
    if prof.ambient:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
    if prof.connect or prof.remote or (prof.ambient and SPARK_REMOTE.is_set()):
        return _build_remote(profile, prof, overrides)
    _refuse_connect_mode(profile, prof, overrides)
    if prof.check_java:
        java_major_version()
    settings = spark_settings(prof, overrides)
    builder = SparkSession.builder.appName(prof.app_name)
    master = settings.pop("spark.master", None) or prof.master
    if _under_spark_submit():
        # spark-submit already started the JVM with its own --master and --packages/--jars;
        # setting them again here would be ignored (jars) or wrong (master).
        master = None
        settings.pop("spark.jars.packages", None)
    # PySpark starts its Python workers with $PYSPARK_PYTHON (default: `python3` on PATH), and
    # hands TIMESTAMPs to Python as naive datetimes in the worker's zone: pin both.
    os.environ.setdefault("PYSPARK_PYTHON", settings.get("spark.pyspark.python", sys.executable))
    os.environ.setdefault("TZ", "UTC")
    time.tzset()
    started = time.monotonic()
    delta_jars.use_resolved(settings)  # under spark-submit there are no packages here: nothing to do
    jvm_archive.use(settings, master)  # the driver JVM this process starts maps its classes (if archived)
    if "spark.jars.packages" in settings and not delta_jars.is_cached(settings):
        log.info("Resolving %s from Maven Central (first run only; cached afterwards)...", DELTA_COORDINATE)
    if master:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as err:  # the JVM dies before py4j connects when ivy cannot resolve
        if "spark.jars.packages" in settings:
            raise DeltaJarsError(
                coordinate=DELTA_COORDINATE,
                reason=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}",
                hint=(
                    "Offline, pass the jars explicitly with overrides={'spark.jars': 'a.jar,b.jar'}, or "
                    f"fill the local Maven repository: `mvn dependency:get -Dartifact={DELTA_COORDINATE}`."
                ),
            ) from err
        raise
    delta_jars.remember_resolved(spark, settings)  # only if this session resolved the Delta coordinate
    if MIN_PARTITIONS not in settings:
        spark.conf.set(MIN_PARTITIONS, str(2 * spark.sparkContext.defaultParallelism))
    log.info("SparkSession %s: %s ready in %.1fs", prof.app_name, describe_session(spark), time.monotonic() - started)
    return spark


# Settings a Spark Connect client cannot change: the server's JVM, jars, catalog and warehouse.
_SERVER_SIDE = ("spark.master", "spark.jars", "spark.driver.", "spark.executor.", "spark.executorEnv.", "spark.pyspark.",
                "spark.sql.extensions", "spark.sql.catalog.spark_catalog", "spark.sql.warehouse.dir", "spark.ui.",
                "spark.default.parallelism", "spark.databricks.delta.snapshotPartitions")


def _build_remote(name: str, prof: SparkProfile, overrides: Mapping[str, Any] | None) -> SparkSession:
    """A Spark Connect session to ``prof.remote`` or ``$SPARK_REMOTE``, with runtime settings only."""
    from pyspark.sql import SparkSession

    from engine.env import SPARK_REMOTE

    url = prof.remote or SPARK_REMOTE.get()
    if not url:
        raise InvalidArgumentError(
            argument=f"profile {name!r}: remote", expected="a Spark Connect URL sc://host:port (the profile's "
            "`remote:` key or $SPARK_REMOTE)", found="neither is set",
            hint="export SPARK_REMOTE=sc://host:15002 (Databricks: use the `databricks` profile with Databricks Connect).",
        )
    if not url.startswith("sc://"):
        raise InvalidArgumentError(argument=f"profile {name!r}: remote", expected="a URL starting with sc://",
                                   found=repr(url.split(";", 1)[0]))
    settings = {"spark.sql.session.timeZone": "UTC", **{k: str(v) for k, v in prof.conf.items()},
                **{k: str(v) for k, v in (overrides or {}).items()}}
    ignored = sorted(k for k in settings if k.startswith(_SERVER_SIDE))
    if ignored:
        log.info("Spark Connect: not sending server-side settings %s (the server owns them)", ignored)
    started = time.monotonic()
    active = active_remote_session()
    if active is not None and _endpoint(url) == getattr(getattr(active.client, "_builder", None), "endpoint", None):
        # the session this process already has on that server (PySpark's builder would refuse to
        # attach to it while a classic session also exists in the process)
        for key, value in settings.items():
            if key not in ignored:
                active.conf.set(key, value)
        return active
    builder = SparkSession.builder.remote(url)
    for key, value in settings.items():
        if key not in ignored:
            builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as err:
        if "SESSION_ALREADY_EXIST" not in str(err):
            raise
        from pyspark import SparkContext

        context = SparkContext._active_spark_context  # what PySpark found (getActiveSession: the remote one)
        raise SessionConflictError(
            profile=name, expected=f"a Spark Connect session on {url.split(';', 1)[0]}",
            found=f"a classic session on {context.master if context is not None else '?'} in this process",
            hint="PySpark cannot start a remote session beside a classic one: stop it (spark.stop()) or use a new process.",
        ) from err
    os.environ.setdefault("TZ", "UTC")  # TIMESTAMPs come back as naive datetimes in the process zone
    time.tzset()
    log.info("SparkSession %s: %s ready in %.1fs", prof.app_name, describe_session(spark), time.monotonic() - started)
    return spark


def _endpoint(url: str) -> str:
    """``host:port`` of ``sc://host:port[/;params]``."""
    return url.removeprefix("sc://").split(";", 1)[0].rstrip("/")


def _refuse_connect_mode(name: str, prof: SparkProfile, overrides: Mapping[str, Any] | None) -> None:
    """A classic profile while PySpark is in Spark Connect mode: say what was found."""
    from pyspark.sql.utils import is_remote as connect_mode

    from engine.env import SPARK_REMOTE

    if not connect_mode():
        return
    active = active_remote_session()
    if active is not None:
        found = f"an active {describe_session(active)} in this process"
    elif SPARK_REMOTE.is_set():
        found = f"$SPARK_REMOTE={str(SPARK_REMOTE.get()).split(';', 1)[0]}"
    else:
        found = "PySpark in Spark Connect mode ($SPARK_CONNECT_MODE_ENABLED)"
    master = (overrides or {}).get("spark.master") or prof.master or "the spark-submit master"
    raise SessionConflictError(
        profile=name, expected=f"a classic session (master {master}, Delta jars on the driver)", found=found,
        hint="Use --profile remote (or build_spark('remote')) to run on that Spark Connect server, or pass its "
        "session to the library calls; to build a classic session, unset SPARK_REMOTE / stop the remote session.",
    )


def _under_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Build a SparkSession for a profile (pre-fetches the Delta jars).")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--fetch-jars", action="store_true", help="resolve the Delta jars and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"Resolving {DELTA_COORDINATE} and its dependencies (Spark's package resolution)...", flush=True)
    started = time.monotonic()
    spark = build_spark(args.profile, {"spark.master": "local[1]", "spark.ui.enabled": "false"})
    spark.range(1).count()
    jars = spark.sparkContext.getConf().get("spark.jars", "").split(",")
    print(f"Delta Lake jars ready ({time.monotonic() - started:.0f}s): {len(jars)} jars, {jars[0] if jars else ''} ...")
    spark.stop()
    print("Writing the driver JVM's class archive (faster session start-up; once)...", flush=True)
    archive = jvm_archive.build(args.profile, spark_settings(load_profile(args.profile), {"spark.master": "local[1]"}))
    print(f"JVM class archive: {archive or 'none (sessions start without it)'}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
