"""Feature pipelines: one plain transformation serves backfills and incremental runs.

A :class:`FeaturePipeline` is a function ``transform(spark, inputs, time_range) -> DataFrame``
plus its inputs (feature groups or Delta tables), the output feature group, a ``lookback`` and a
``step``. ``run(start, end)`` computes the output events in ``[start, end)``:

* the range is cut into chunks of ``step`` (the last may be shorter);
* for each chunk ``[s, e)`` every time-filtered input is read only for ``[s - lookback, e)`` --
  ``lookback`` must cover the longest window the transform computes -- at the Delta version it
  had when the run started, and the transform is called with the chunk as ``time_range``;
* rows the transform returns outside the chunk are **dropped** (a transform computing windows
  over its whole input naturally returns rows for the lookback period; keeping only the chunk is
  what makes chunks independent), the rest **replaces exactly the chunk's range** of the output
  in one Delta commit, so re-running a chunk is idempotent;
* each finished chunk is logged in ``<root>/_pipelines/progress``; by default a run skips the
  chunks already logged as done for the same pipeline, output version and exact range, so an
  interrupted backfill resumes at the first unfinished chunk (``force=True`` recomputes all).

So one backfill over a range and the sequence of daily runs over the same range give identical
tables, provided the transform only uses input rows within ``lookback`` of each output event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import ColumnNotFoundError, ColumnTypeError, InvalidArgumentError
from engine.store import delta
from engine.store._owned_tables import select_rows, write_rows
from engine.store.feature_group import FeatureGroup
from engine.store.names import check_name
from engine.store.registry import Node, as_utc
from engine.temporal.ranges import TimeRange

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.store.feature_store import FeatureStore

__all__ = ["ChunkResult", "FeaturePipeline", "Input", "Transform"]

log = logging.getLogger(__name__)

Transform = Callable[["SparkSession", dict[str, "DataFrame"], TimeRange], "DataFrame"]

PROGRESS_DDL = (
    "pipeline STRING, feature_group STRING, version INT, chunk_start TIMESTAMP, chunk_end TIMESTAMP, "
    "status STRING, delta_version BIGINT, rows BIGINT, elapsed_seconds DOUBLE, "
    "input_versions MAP<STRING, BIGINT>, error STRING"
)


@dataclass(frozen=True)
class Input:
    """A pipeline input: a feature group (time column = its event time) or a Delta table path.

    A path with ``time_column=None`` is a static table read whole (e.g. a dimension table).
    """

    source: FeatureGroup | str
    time_column: str | None = None

    @property
    def column(self) -> str | None:
        if self.time_column is None and isinstance(self.source, FeatureGroup):
            return self.source.event_time
        return self.time_column

    @property
    def path(self) -> str:
        return self.source.path if isinstance(self.source, FeatureGroup) else str(self.source)

    @property
    def node(self) -> Node:
        if isinstance(self.source, FeatureGroup):
            return self.source.node
        return Node("delta_table", self.path)


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk of a run did: ``status`` is "done" or "skipped" (already done earlier)."""

    time_range: TimeRange
    status: str
    delta_version: int | None
    rows: int | None
    elapsed_seconds: float


class FeaturePipeline:
    """A registered transformation from inputs to one feature group, run in time chunks."""

    def __init__(
        self,
        name: str,
        transform: Transform,
        *,
        inputs: Mapping[str, FeatureGroup | str | Input],
        output: FeatureGroup,
        lookback: timedelta,
        step: timedelta,
    ) -> None:
        self.name = check_name(name, argument="name")
        if not callable(transform):
            raise InvalidArgumentError(argument="transform", expected="a callable (spark, inputs, time_range) -> DataFrame",
                                       found=repr(transform))
        if not isinstance(output, FeatureGroup):
            raise InvalidArgumentError(argument="output", expected="a FeatureGroup", found=type(output).__name__)
        if not isinstance(inputs, Mapping) or not inputs:
            raise InvalidArgumentError(argument="inputs", expected="a non-empty mapping name -> input", found=repr(inputs))
        self.inputs: dict[str, Input] = {}
        for key, value in inputs.items():
            check_name(key, argument="inputs (name)")
            if isinstance(value, (FeatureGroup, str)):
                value = Input(value)
            if not isinstance(value, Input) or not isinstance(value.source, (FeatureGroup, str)):
                raise InvalidArgumentError(
                    argument=f"inputs[{key!r}]", expected="a FeatureGroup, a Delta path or an Input", found=repr(value)
                )
            self.inputs[key] = value
        for argument, value, minimum, expected in (("lookback", lookback, timedelta(0), "a timedelta >= 0"),
                                                   ("step", step, timedelta(microseconds=1), "a positive timedelta")):
            if not isinstance(value, timedelta) or value < minimum:
                raise InvalidArgumentError(argument=argument, expected=expected, found=repr(value))
        self.transform = transform
        self.output = output
        self.lookback = lookback
        self.step = step

    def __repr__(self) -> str:
        return f"FeaturePipeline({self.name!r}, inputs={sorted(self.inputs)}, output={self.output!r})"

    @property
    def store(self) -> FeatureStore:
        return self.output.store

    def definition(self) -> dict[str, Any]:
        """The registry description of this pipeline (the transform by its qualified name)."""
        fn = self.transform
        return {
            "transform": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}",
            "inputs": {k: {"node": str(i.node), "time_column": i.column} for k, i in self.inputs.items()},
            "output": str(self.output.node),
            "lookback_seconds": self.lookback.total_seconds(),
            "step_seconds": self.step.total_seconds(),
        }

    # -- running -------------------------------------------------------------------------------

    def run(self, start: datetime, end: datetime, *, force: bool = False) -> list[ChunkResult]:
        """Compute the output events in ``[start, end)`` chunk by chunk; see the module docs.

        ``start`` and ``end`` are timezone-aware; naive times and ``start >= end`` are errors
        raised before anything is read or written.
        """
        whole = TimeRange(start, end)
        chunks = whole.chunks(self.step)
        spark = self.store.spark
        versions = self._check_inputs()
        done = set() if force else self._done_chunks()
        results: list[ChunkResult] = []
        log.info("%s: %d chunk(s) of %s over %s (%d already done)", self.name, len(chunks), self.step, whole,
                 sum(1 for c in chunks if (c.start, c.end) in done))
        for i, chunk in enumerate(chunks, start=1):
            if (chunk.start, chunk.end) in done:
                log.info("%s: chunk %d/%d %s skipped (done earlier)", self.name, i, len(chunks), chunk)
                results.append(ChunkResult(chunk, "skipped", None, None, 0.0))
                continue
            began = time.monotonic()
            try:
                frames = {key: self._read_input(inp, versions[key], chunk) for key, inp in self.inputs.items()}
                produced = self.transform(spark, frames, chunk)
                if not _is_dataframe(produced):
                    raise InvalidArgumentError(
                        argument="transform", expected="a function returning a Spark DataFrame",
                        found=f"it returned {type(produced).__name__}",
                    )
                kept = produced.where(delta.range_predicate(self.output.event_time, chunk)) \
                    if self.output.event_time in produced.columns else produced
                commit = self.output.replace_range(kept, chunk)
            except Exception as err:
                elapsed = time.monotonic() - began
                log.error("%s: chunk %d/%d %s failed after %.1fs: %s", self.name, i, len(chunks), chunk, elapsed, err)
                self._log_chunk(chunk, "failed", None, None, elapsed, versions, error=f"{type(err).__name__}: {err}")
                raise
            elapsed = time.monotonic() - began
            self._log_chunk(chunk, "done", commit.delta_version, commit.rows, elapsed, versions)
            log.info("%s: chunk %d/%d %s rows=%d elapsed=%.1fs", self.name, i, len(chunks), chunk, commit.rows, elapsed)
            results.append(ChunkResult(chunk, "done", commit.delta_version, commit.rows, elapsed))
        return results

    def progress(self) -> list[dict[str, Any]]:
        """The progress log rows of this pipeline and output version, in the order of chunk start."""
        rows = select_rows(self.store.spark, self.store.pipeline_progress_path,
                           {"pipeline": self.name, "feature_group": self.output.name, "version": self.output.version})
        for row in rows:
            row["chunk_start"], row["chunk_end"] = as_utc(row["chunk_start"]), as_utc(row["chunk_end"])
        return sorted(rows, key=lambda r: (r["chunk_start"], r["chunk_end"], r["delta_version"] or -1))

    # -- helpers -------------------------------------------------------------------------------

    def _check_inputs(self) -> dict[str, int]:
        """Every input exists and its time column is a TIMESTAMP; return the Delta version to read."""
        from pyspark.sql import types as T

        spark = self.store.spark
        versions = {}
        for key, inp in self.inputs.items():
            schema = delta.read(spark, inp.path).schema  # NotFoundError if the table does not exist
            delta.check_log(spark, inp.path)  # CorruptTableError now, not a raw error mid-chunk
            column = inp.column
            if column is not None:
                if column not in schema.fieldNames():
                    raise ColumnNotFoundError(argument=f"inputs[{key!r}].time_column", column=column,
                                              side=f"input {key}", available=schema.fieldNames())
                if not isinstance(schema[column].dataType, T.TimestampType):
                    raise ColumnTypeError(argument=f"inputs[{key!r}].time_column", column=column,
                                          expected="TIMESTAMP (a UTC instant)", found=schema[column].dataType.simpleString())
            versions[key] = delta.current_version(spark, inp.path)
        return versions

    def _read_input(self, inp: Input, version: int, chunk: TimeRange) -> DataFrame:
        if isinstance(inp.source, FeatureGroup):
            frame = inp.source.read(as_of_version=version)  # without the store's bucket column
        else:
            frame = delta.read(self.store.spark, inp.path, version=version)
        if inp.column is None:
            return frame
        return frame.where(delta.range_predicate(inp.column, chunk.widen(self.lookback)))

    def _done_chunks(self) -> set[tuple[datetime, datetime]]:
        return {(r["chunk_start"], r["chunk_end"]) for r in self.progress() if r["status"] == "done"}

    def _log_chunk(
        self, chunk: TimeRange, status: str, version: int | None, rows: int | None, elapsed: float,
        input_versions: Mapping[str, int], *, error: str | None = None,
    ) -> None:
        spark, path = self.store.spark, self.store.pipeline_progress_path
        row = {
            "pipeline": self.name, "feature_group": self.output.name, "version": self.output.version,
            "chunk_start": chunk.start, "chunk_end": chunk.end, "status": status, "delta_version": version,
            "rows": rows, "elapsed_seconds": round(elapsed, 3), "input_versions": dict(input_versions),
            "error": (error or "")[:2000] or None,
        }
        try:
            write_rows(spark, path, PROGRESS_DDL, [row])
        except Exception:
            if status == "done":
                raise
            log.exception("%s: could not log the failed chunk %s", self.name, chunk)


def _is_dataframe(value: Any) -> bool:
    from pyspark.sql import DataFrame

    return isinstance(value, DataFrame)
