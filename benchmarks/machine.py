"""Facts about the machine and the library versions a benchmark run records."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["file_entry", "git_commit", "machine_info"]


def machine_info() -> dict[str, Any]:
    import platform
    import subprocess
    from importlib import metadata

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60).stderr.splitlines()[0]
    except Exception:
        java = "unknown"
    versions = {}
    for dist in ("pyspark", "delta-spark", "dbl-tempo", "feast", "duckdb", "pandas", "polars", "numpy", "pyarrow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cores": os.cpu_count(), "memory_gib": mem_gib, "cpu": cpu, "java": java,
        "python": platform.python_version(), "os": platform.platform(), "versions": versions,
    }


def git_commit(cwd: Path | None = None) -> str:
    """The working directory's short HEAD, ``+changes`` if tracked files differ from it."""
    import subprocess

    where = cwd or Path(__file__).resolve().parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=where).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           cwd=where).stdout.strip()
    return commit + ("+changes" if dirty else "")


def file_entry(store: Path, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Add ``entry`` to the JSON list at ``store`` (replacing one with its label); return the list."""
    import json

    entries = [e for e in (json.loads(store.read_text()) if store.exists() else []) if e["label"] != entry["label"]]
    entries.append(entry)
    store.write_text(json.dumps(entries, indent=1, default=str) + "\n")
    return entries


def open_repository_store(folder: str) -> tuple[Any, Any, Any]:
    """``(repository, spark, feature store)`` of a repository whose store a run has filled (the
    local profile, Spark's SQL warehouse in the store, Spark's own logging quiet)."""
    from engine.repository import load_repository
    from engine.session import build_spark
    from engine.store.layout import StoreLayout

    repo = load_repository(folder)
    spark = build_spark("local", {"spark.sql.warehouse.dir": StoreLayout.of(repo.store_root).spark_warehouse})
    spark.sparkContext.setLogLevel("ERROR")
    return repo, spark, repo.open_store(spark)
