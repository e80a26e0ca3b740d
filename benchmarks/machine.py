"""Facts about the machine and the library versions a benchmark run records."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["machine_info"]


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
