"""Exact point-in-time sliding-window aggregations: :func:`window_aggregates` and :class:`Agg`.

The window contract (the one place it is written down for this module)
-----------------------------------------------------------------------
For every *target* -- each spine row, or each event row when ``spine`` is ``None`` -- and every
:class:`Agg` with window ``w``, the aggregate covers the events whose keys equal the target's keys
and whose event time ``e`` satisfies ``t - w < e <= t``, where ``t`` is the target's time:

* The lower end is exclusive and the upper end inclusive, exactly, for every event (no buckets):
  an event at ``t - w`` is out, an event at ``t`` is in, so without a spine each event sees
  itself and every event of its key at the same time. Nothing from the future is ever seen.
* NULL values are ignored: ``count(col)`` counts non-NULL values, ``Agg(None, "count", w)``
  counts rows. An empty window gives ``count = 0`` and NULL for every other function;
  ``stddev`` (sample standard deviation) is NULL with fewer than two values.
* ``last`` returns the value of the latest event in the window -- row semantics: when that
  event's value is NULL the result is NULL, not an older non-NULL value. Among events with the
  same time the greatest ``tie_breaker`` column(s) win (NULL lowest); events that are still tied
  (or tied with no ``tie_breaker``) are ordered by their value, the greatest non-NULL one wins,
  so the result never depends on row order.
* Every spine row comes out exactly once with its columns unchanged (values and types; Spark
  may mark them nullable), duplicates included. A spine row with a NULL key or NULL time matches
  nothing (count 0, the rest NULL). Events with a NULL key or NULL time belong to no window;
  without a spine they still come out, with count 0. ``by`` names at least one key column.
* Floating-point NaN is a value like Spark orders it: above every number for min/max/last.
* Timestamps are UTC instants; TIMESTAMP_NTZ values are read as UTC wall-clock times (the result
  does not depend on the session time zone). DATE times take a ``timedelta`` window that is
  rounded up to whole days; integer times take a number.

Output: the spine's (or the events') columns followed by one column per :class:`Agg`, in the
order given. Types: ``count`` LONG; ``sum`` LONG for integer columns, DOUBLE for floating ones,
DECIMAL(p+10, s) for DECIMAL(p, s); ``mean`` and ``stddev`` DOUBLE; ``min``/``max``/``last`` the
column's type. Row order is not defined.

How it is computed (no per-key quadratic work): by default the spine and the events are hashed
into buckets of keys and each bucket is computed at once in numpy (``_windows_kernel``,
``_windows_numpy``); the exact two-block Spark plan (``_windows_plan``) is the fallback for the
types the kernel does not take, and the reference it is tested against.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from engine.errors import ColumnTypeError, InvalidArgumentError
from engine.temporal import _checks
from engine.temporal._windows_plan import MAX_WINDOW_UNITS, PlanAgg, PlanInput, build_plan

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

__all__ = ["FUNCTIONS", "Agg", "window_aggregates"]

log = logging.getLogger(__name__)

FUNCTIONS: tuple[str, ...] = ("count", "sum", "mean", "min", "max", "stddev", "last")
_NUMERIC_FUNCTIONS = frozenset({"sum", "mean", "stddev"})
_ORDERED_FUNCTIONS = frozenset({"min", "max", "last"})


@dataclass(frozen=True)
class Agg:
    """One aggregate: ``fn`` of ``column`` over the trailing ``window`` (see the module docs).

    ``column=None`` is allowed only with ``fn="count"`` and counts rows. ``window`` is a
    ``timedelta`` for TIMESTAMP/DATE event times and a number for integer event times. ``name``
    is the output column; by default ``f"{column or 'rows'}_{fn}_{label}"``, e.g.
    ``Agg("dep_delay", "mean", timedelta(days=7)).output_name == "dep_delay_mean_7d"``.
    """

    column: str | None
    fn: str
    window: timedelta | int | float
    name: str | None = None

    def __post_init__(self) -> None:
        if self.fn not in FUNCTIONS:
            raise InvalidArgumentError(argument="fn", expected=f"one of {list(FUNCTIONS)}", found=repr(self.fn))
        if self.column is None and self.fn != "count":
            raise InvalidArgumentError(
                argument="column", expected="a column name (column=None is only allowed with fn='count', to count rows)",
                found=f"None with fn={self.fn!r}",
            )
        if self.column is not None and (not isinstance(self.column, str) or not self.column):
            raise InvalidArgumentError(argument="column", expected="a column name or None", found=repr(self.column))
        _check_window_value(self.window, argument="window")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise InvalidArgumentError(argument="name", expected="a non-empty column name or None", found=repr(self.name))

    @property
    def output_name(self) -> str:
        """The output column: ``name`` or ``f"{column or 'rows'}_{fn}_{window label}"``."""
        return self.name or f"{self.column or 'rows'}_{self.fn}_{window_label(self.window)}"


def window_label(window: timedelta | int | float) -> str:
    """``timedelta(days=7)`` -> ``"7d"``, ``timedelta(hours=36)`` -> ``"36h"``, ``2.5`` -> ``"2_5"``."""
    if isinstance(window, timedelta):
        micros = window // timedelta(microseconds=1)
        for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1000)):
            if micros % size == 0:
                return f"{micros // size}{unit}"
        return f"{micros}us"
    if isinstance(window, float) and window.is_integer():
        window = int(window)
    return re.sub(r"[^0-9A-Za-z]", "_", str(window))


def window_aggregates(
    events: DataFrame,
    spine: DataFrame | None = None,
    *,
    by: str | Sequence[str],
    event_time: str,
    spine_time: str | None = None,
    aggs: Sequence[Agg],
    spine_by: str | Sequence[str] | None = None,
    tie_breaker: str | Sequence[str] | None = None,
) -> DataFrame:
    """Exact sliding-window aggregates of ``events`` per key, at each spine row's time.

    The window contract is the module docstring's: for a target at time ``t`` and ``Agg`` window
    ``w``, the events of the same key with ``t - w < e <= t``; NULLs ignored; empty window: count
    0, the rest NULL; every spine row exactly once, unchanged.

    Args:
        events: the event rows (keys ``by``, time ``event_time``, the ``Agg`` columns).
        spine: the rows to evaluate at; ``None`` evaluates at every event's own time and returns
            the events with the aggregate columns added.
        by: the event key column(s). ``spine_by`` names the spine's key columns (default ``by``),
            paired in order, of equal types.
        event_time: the events' time column: TIMESTAMP, TIMESTAMP_NTZ, DATE or an integer type.
        spine_time: the spine's time column (default ``event_time``), of the same kind.
        aggs: the aggregates; their output names must be unique and new.
        tie_breaker: event column(s) ordering events of equal time for ``last`` (greatest wins).

    Raises (all before any Spark job): ``ColumnNotFoundError``, ``ColumnTypeError``,
    ``IncompatibleTypesError`` (TIMESTAMP vs TIMESTAMP_NTZ, different key types) and
    ``InvalidArgumentError`` (unknown ``fn``, bad window, duplicate output names, ...).
    """
    plan_input = _validate(events, spine, by=by, event_time=event_time, spine_time=spine_time, aggs=aggs,
                           spine_by=spine_by, tie_breaker=tie_breaker)
    log.debug(
        "window_aggregates: %d aggregate(s) over %d window length(s), keys %s, time kind %s, spine=%s",
        len(plan_input.aggs), len({a.units for a in plan_input.aggs}), plan_input.event_keys, plan_input.kind,
        spine is not None,
    )
    return _strategy_plan(plan_input)


def _strategy_plan(p: PlanInput) -> DataFrame:
    """The vectorised kernel (each input shuffled once by key bucket, numpy per bucket) unless its
    types rule it out (or a test forces the Spark two-block plan); see ``_windows_kernel``."""
    from engine.temporal._asof_strategy import forced_strategy
    from engine.temporal._hot_keys import estimated_rows, partitions_for
    from engine.temporal._windows_kernel import kernel_blocker, kernel_plan

    blocker = kernel_blocker(p)
    strategy = forced_strategy() or ("sweep" if blocker else "kernel")
    if strategy == "kernel" and blocker:
        raise ValueError(f"the window kernel cannot compute this: {blocker}")
    log.debug("window_aggregates strategy: %s%s", strategy, f" ({blocker})" if blocker else "")
    if strategy == "sweep":
        return build_plan(p)
    # only decides beyond shuffle partitions x 4M rows: the analyzed plans' estimate (free) does
    rows = [estimated_rows(df, optimized=False) for df in (p.events, p.spine) if df is not None]
    total = None if any(r is None for r in rows) else sum(r or 0 for r in rows)
    configured = int(p.events.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)
    return kernel_plan(p, partitions=partitions_for(total, configured))


# --------------------------------------------------------------------------------------------
# validation: schema only, so every error comes before any Spark job
# --------------------------------------------------------------------------------------------


def _validate(
    events: DataFrame,
    spine: DataFrame | None,
    *,
    by: str | Sequence[str],
    event_time: str,
    spine_time: str | None,
    aggs: Sequence[Agg],
    spine_by: str | Sequence[str] | None,
    tie_breaker: str | Sequence[str] | None,
) -> PlanInput:

    _checks.require_dataframe(events, argument="events")
    _checks.require_dataframe(spine, argument="spine", allow_none=True)
    if not isinstance(event_time, str):
        raise InvalidArgumentError(argument="event_time", expected="a column name", found=repr(event_time))
    if spine is None and (spine_time is not None or spine_by is not None):
        given = "spine_time" if spine_time is not None else "spine_by"
        raise InvalidArgumentError(
            argument=given, expected="None when spine is None", found=repr(spine_time if spine_time is not None else spine_by),
            hint="Pass a spine, or drop the argument: without a spine each event is evaluated at its own time.",
        )
    if spine_time is not None and not isinstance(spine_time, str):
        raise InvalidArgumentError(argument="spine_time", expected="a column name or None", found=repr(spine_time))

    event_keys = _checks.as_list(by, argument="by")
    if not event_keys:
        raise InvalidArgumentError(
            argument="by", expected="at least one key column", found=repr(by),
            hint="For one series over all rows, add a constant key column.",
        )
    tie_cols = _checks.as_list(tie_breaker, argument="tie_breaker")
    _checks.require_columns(events, event_keys, argument="by", side="events")
    _checks.require_columns(events, [event_time], argument="event_time", side="events")
    _checks.require_columns(events, tie_cols, argument="tie_breaker", side="events")
    for col in tie_cols:
        _require_orderable(events, col, argument="tie_breaker")

    if spine is None:
        kind = _checks.time_kind(events, event_time, argument="event_time")
        spine_keys: list[str] = []
        target_columns = events.columns
    else:
        spine_keys = _checks.as_list(spine_by, argument="spine_by") if spine_by is not None else list(event_keys)
        spine_time = spine_time if spine_time is not None else event_time
        _checks.require_columns(spine, spine_keys, argument="spine_by" if spine_by is not None else "by", side="spine")
        _checks.require_columns(spine, [spine_time], argument="spine_time" if spine_time != event_time else "event_time",
                                side="spine")
        _checks.check_key_types(events, event_keys, spine, spine_keys, argument="spine_by")
        _checks.time_kind(events, event_time, argument="event_time")
        _checks.time_kind(spine, spine_time, argument="spine_time")
        kind = _checks.check_time_columns(events, event_time, spine, spine_time, argument="spine_time")
        target_columns = spine.columns
    if kind == "fractional":
        raise ColumnTypeError(
            argument="event_time", column=event_time, expected="a TIMESTAMP, TIMESTAMP_NTZ, DATE or integer column",
            found=_checks.field_type(events, event_time).simpleString(),
            hint="Exact exclusive window bounds need a discrete time; cast to a timestamp or scale to integers.",
        )

    plan_aggs = _validate_aggs(events, aggs, kind=kind, target_columns=target_columns)
    return PlanInput(
        events=events, spine=spine, event_keys=event_keys, spine_keys=spine_keys, event_time=event_time,
        spine_time=spine_time or event_time, kind=kind, aggs=plan_aggs, tie_breaker=tie_cols,
    )


def _validate_aggs(events: DataFrame, aggs: Sequence[Agg], *, kind: str, target_columns: list[str]) -> list[PlanAgg]:
    if isinstance(aggs, Agg) or not isinstance(aggs, (list, tuple)) or not aggs:
        raise InvalidArgumentError(
            argument="aggs", expected="a non-empty list of Agg", found=repr(aggs), hint="Wrap a single Agg in a list."
        )
    taken = {c.lower(): c for c in target_columns}
    seen: dict[str, int] = {}
    out: list[PlanAgg] = []
    for i, agg in enumerate(aggs):
        if not isinstance(agg, Agg):
            raise InvalidArgumentError(argument=f"aggs[{i}]", expected="an Agg", found=f"{agg!r} ({type(agg).__name__})")
        _checks.check_window(agg.window, kind, argument=f"aggs[{i}].window", allow_none=False, allow_zero=False)  # type: ignore[arg-type]
        dtype = None
        if agg.column is not None:
            _checks.require_columns(events, [agg.column], argument=f"aggs[{i}].column", side="events")
            dtype = _checks.field_type(events, agg.column)
            if agg.fn in _NUMERIC_FUNCTIONS and not _is_numeric(dtype):
                raise ColumnTypeError(
                    argument=f"aggs[{i}].column", column=agg.column, expected=f"a numeric column for fn={agg.fn!r}",
                    found=dtype.simpleString(),
                )
            if agg.fn in _ORDERED_FUNCTIONS:
                _require_orderable(events, agg.column, argument=f"aggs[{i}].column")
        name = agg.output_name
        if name.lower() in seen:
            raise InvalidArgumentError(
                argument=f"aggs[{i}].name", expected="an output column name not used by another Agg",
                found=f"{name!r}, also the output of aggs[{seen[name.lower()]}]",
                hint="Give one of them an explicit name=.",
            )
        if name.lower() in taken:
            raise InvalidArgumentError(
                argument=f"aggs[{i}].name", expected="an output column name not already in the output",
                found=f"{name!r}, an existing column ({taken[name.lower()]!r})", hint="Give the Agg an explicit name=.",
            )
        seen[name.lower()] = i
        out.append(PlanAgg(column=agg.column, fn=agg.fn, units=_window_units(agg.window, kind), name=name, dtype=dtype))
    return out


def _check_window_value(window: object, *, argument: str) -> None:
    """A window is a positive timedelta or a positive finite number (the kind is checked later)."""
    if isinstance(window, timedelta):
        if window <= timedelta(0):
            raise InvalidArgumentError(argument=argument, expected="a positive timedelta", found=repr(window))
        return
    if isinstance(window, (int, float)) and not isinstance(window, bool):
        if not math.isfinite(window) or window <= 0:
            raise InvalidArgumentError(argument=argument, expected="a positive finite number", found=repr(window))
        return
    raise InvalidArgumentError(
        argument=argument, expected="a datetime.timedelta (or a number for integer event times)",
        found=f"{window!r} ({type(window).__name__})",
    )


def _window_units(window: timedelta | int | float, kind: str) -> int:
    """The number of time units a window spans in the numeric time of ``_windows_plan``: an event
    is in the window of ``t`` iff ``t - units < e <= t`` (microseconds, days or integers)."""
    if isinstance(window, timedelta):  # check_window made sure the kind is a time or a date
        step = timedelta(days=1) if kind == "date" else timedelta(microseconds=1)
        units = -(-window // step)  # e > t - w on whole steps: round w up
    else:
        units = math.ceil(window)
    return min(int(units), MAX_WINDOW_UNITS)


def _is_numeric(dtype: DataType) -> bool:
    from pyspark.sql import types as T

    return isinstance(dtype, T.NumericType)


def _orderable(dtype: DataType) -> bool:
    from pyspark.sql import types as T

    if isinstance(dtype, (T.MapType, T.VariantType)):
        return False
    if isinstance(dtype, T.ArrayType):
        return _orderable(dtype.elementType)
    if isinstance(dtype, T.StructType):
        return all(_orderable(f.dataType) for f in dtype.fields)
    return True


def _require_orderable(df: DataFrame, column: str, *, argument: str) -> None:
    dtype = _checks.field_type(df, column)
    if not _orderable(dtype):
        raise ColumnTypeError(argument=argument, column=column, expected="an orderable type (no MAP or VARIANT)",
                              found=dtype.simpleString())

