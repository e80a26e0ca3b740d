"""What the harness needs to know about one benchmark plan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.verify import OutputColumns

__all__ = ["LOCAL_THREADS", "Plan"]

LOCAL_THREADS = 2  # DuckDB / Polars threads: the machine's cores, as Spark's local[2]


@dataclass(frozen=True)
class Plan:
    name: str
    label: str
    kind: str  # "spark" | "local"
    source: str  # whose code runs: the peer's own, or a re-implementation of the plan it generates
    output: OutputColumns = field(default_factory=OutputColumns)
    build: Callable[..., Any] | None = None  # spark: (spark, features, spine) -> DataFrame
    run: Callable[[Path, Path, Path], None] | None = None  # local: (features, spine, out_dir)
    available: Callable[[], str | None] = lambda: None
    after: Callable[[Any], None] | None = None  # spark: undo session changes the peer made
    outputs: tuple[OutputColumns, ...] = ()  # several lookups: each one's columns (the "many" bench)
    prepare: Callable[[Any, Path, Path], None] | None = None  # spark: untimed set-up (spark, features, spine)
