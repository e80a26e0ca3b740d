"""The Spark plan behind :func:`engine.temporal.windows.window_aggregates` (arguments already
validated): an exact two-block decomposition of every sliding window.

Time is a LONG (microseconds, days, or the integer itself). A window of ``W`` units evaluated at
``t`` covers the events with ``t - W < e <= t``. Cut the time axis into blocks
``[kW, (k+1)W)``; a target in block ``k`` then sees events of two blocks only:

* part A -- the events of block ``k`` with ``e <= t``: a running aggregate over the block in
  time order, events before targets at equal times (``ROWS BETWEEN UNBOUNDED PRECEDING AND
  CURRENT ROW``: events at ``t`` are in);
* part B -- the events of block ``k - 1`` with ``e > t - W``: the target is placed at its
  *probe* position ``t - W`` (which lies in block ``k - 1``) and a running aggregate runs over
  that block in reverse time order, targets before events at equal positions, stopping one row
  short of the target (``... AND 1 PRECEDING``), so an event at exactly ``t - W`` is out.

Both are ROWS frames over a total order of (position, row kind): an earlier RANGE formulation
(peers by value, ``RANGE ... AND 1 PRECEDING`` in B) counted events at exactly ``t - W`` on the
10M-row benchmark while it was right on every small input.

Spark evaluates ``UNBOUNDED PRECEDING`` frames incrementally (O(1) per row), unlike sliding
``RANGE BETWEEN w PRECEDING AND CURRENT ROW`` frames, which it re-aggregates over the whole
frame buffer on every row (O(rows x rows in a window) per key: quadratic on a dense or hot key;
measured: minutes where this plan takes seconds). So each window length costs two sorts of
the rows and linear aggregation work, and a Window operator holds one (key, block) at a time.
The parts are merged without subtraction (no cancellation): counts and sums add, min/max take
least/greatest, stddev merges ``(n, mean, M2)`` with Chan et al.'s pairwise formula, last takes
part A's latest event if A has any. All aggregates of one window length share its two specs.

Rows: the targets (spine rows, or one copy of every event) and the events (narrow: keys,
time, aggregated columns, tie-breakers), from one scan of each input, shuffled once by the
keys; every window operator after that reuses this partitioning. A hot key is one task, but
never one buffer: sorts spill, and window operators buffer one block of one key.

Expressions are SQL text handed to ``selectExpr``: a handful of Py4J calls per plan, not
thousands of Column objects (which cost seconds of round trips on a busy driver).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

# Window lengths are capped so that t - W and the block arithmetic stay inside a LONG for
# any time of magnitude < 2**62 (every TIMESTAMP: year 9999 is ~2.5e17 microseconds).
MAX_WINDOW_UNITS = 2**62

_TARGET, _EVENT = 0, 1  # row kinds


@dataclass(frozen=True)
class PlanAgg:
    column: str | None
    fn: str
    units: int  # the window: t - units < e <= t
    name: str
    dtype: DataType | None


@dataclass(frozen=True)
class PlanInput:
    events: DataFrame
    spine: DataFrame | None
    event_keys: list[str]
    spine_keys: list[str]
    event_time: str
    spine_time: str  # the event_time when there is no spine
    kind: str
    aggs: list[PlanAgg]
    tie_breaker: list[str]


class _Namer:
    """Internal column names that collide with no input or output column (case-insensitively)."""

    def __init__(self, taken: set[str]) -> None:
        self._taken = {c.lower() for c in taken}
        self._count = 0

    def __call__(self, stem: str) -> str:
        while True:
            name = f"__wa_{stem}_{self._count}"
            self._count += 1
            if name.lower() not in self._taken:
                self._taken.add(name.lower())
                return name


def q(name: str) -> str:
    """A column name quoted for SQL text."""
    return "`" + name.replace("`", "``") + "`"


def time_number_sql(column: str, kind: str) -> str:
    """SQL for the time as a LONG that orders like it: microseconds since the epoch for
    timestamps (TIMESTAMP_NTZ read as UTC wall-clock, whatever the session time zone), days
    for dates, the value itself for integers."""
    c = q(column)
    if kind == "timestamp":
        return f"unix_micros({c})"
    if kind == "timestamp_ntz":
        return (
            f"(unix_date(to_date({c})) * 86400000000L + CAST(hour({c}) AS BIGINT) * 3600000000L"
            f" + CAST(minute({c}) AS BIGINT) * 60000000L + CAST(extract(SECOND FROM {c}) * 1000000 AS BIGINT))"
        )
    if kind == "date":
        return f"CAST(unix_date({c}) AS BIGINT)"
    return f"CAST({c} AS BIGINT)"


def _sum_type(dtype: DataType | None) -> str:
    from pyspark.sql import types as T

    if isinstance(dtype, T.DecimalType):
        return f"DECIMAL({min(38, dtype.precision + 10)},{dtype.scale})"
    if isinstance(dtype, (T.FloatType, T.DoubleType)):
        return "DOUBLE"
    return "BIGINT"


@dataclass(frozen=True)
class _Names:
    """The internal columns every row carries through the plan."""

    keys: list[str]
    t: str
    kind: str
    values: dict[str, str]  # agg column -> internal copy
    ties: list[str]


def build_plan(p: PlanInput) -> DataFrame:
    input_columns = p.events.columns if p.spine is None else p.spine.columns
    new = _Namer(set(p.events.columns) | set(input_columns) | {a.name for a in p.aggs})
    names = _Names(
        keys=[new("key") for _ in p.event_keys], t=new("t"), kind=new("kind"),
        values={c: new("v") for c in dict.fromkeys(a.column for a in p.aggs if a.column is not None)},
        ties=[new("tb") for _ in p.tie_breaker],
    )
    df = _rows(p, names).repartition(*names.keys)
    carried = [*input_columns, *names.keys, names.t, names.kind, *names.values.values(), *names.ties]
    for units in dict.fromkeys(a.units for a in p.aggs):
        aggs = [a for a in p.aggs if a.units == units]
        df = _one_window_length(df, carried, aggs, units=units, names=names, new=new)
        carried += [a.name for a in aggs]
    return df.where(f"{q(names.kind)} = {_TARGET}").selectExpr(*(q(c) for c in [*input_columns, *(a.name for a in p.aggs)]))


def _rows(p: PlanInput, names: _Names) -> DataFrame:
    """The target rows (kind 0, the input's columns) and the event rows (kind 1, internal columns
    only) as one DataFrame; events with a NULL key or time are left out (they match nothing)."""
    kind, t = q(names.kind), q(names.t)
    internal = [
        *(f"{q(src)} AS {q(dst)}" for src, dst in zip(p.event_keys, names.keys, strict=True)),
        f"{time_number_sql(p.event_time, p.kind)} AS {t}",
        *(f"{q(src)} AS {q(dst)}" for src, dst in names.values.items()),
        *(f"{q(src)} AS {q(dst)}" for src, dst in zip(p.tie_breaker, names.ties, strict=True)),
    ]
    valid = " AND ".join(f"{q(c)} IS NOT NULL" for c in [*names.keys, names.t])
    if p.spine is not None:
        events = p.events.selectExpr(*internal, f"{_EVENT} AS {kind}").where(valid)
        targets = p.spine.selectExpr(
            "*",
            *(f"{q(src)} AS {q(dst)}" for src, dst in zip(p.spine_keys, names.keys, strict=True)),
            f"{time_number_sql(p.spine_time, p.kind)} AS {t}",
            f"{_TARGET} AS {kind}",
        )
        return targets.unionByName(events, allowMissingColumns=True)
    # No spine: every event is a target (with all its columns) and, if it has a key and a time,
    # also an event row -- two rows from one scan.
    only = {_TARGET: list(p.events.columns), _EVENT: [*names.values.values(), *names.ties]}
    return (
        p.events.selectExpr("*", *internal)
        .selectExpr("*", f"explode(CASE WHEN {valid} THEN array({_TARGET}, {_EVENT}) ELSE array({_TARGET}) END) AS {kind}")
        .selectExpr(
            *(f"CASE WHEN {kind} = {k} THEN {q(c)} END AS {q(c)}" for k, cols in only.items() for c in cols),
            *(q(c) for c in [*names.keys, names.t, names.kind]),
        )
    )


def _one_window_length(
    df: DataFrame, carried: list[str], aggs: list[PlanAgg], *, units: int, names: _Names, new: _Namer
) -> DataFrame:
    """Add the columns of ``aggs``, all of window length ``units``, to every row."""
    t, kind = q(names.t), q(names.kind)
    keys = "".join(f"{q(k)}, " for k in names.keys)
    # Part B looks from t - W (a target's probe position; events stay at e) forward, in the block
    # of t - W; part A from the start of t's block up to t.
    probe, block_a, block_b = new("probe"), new("block"), new("block")
    p_ = q(probe)
    positioned = df.selectExpr(
        "*",
        f"CASE WHEN {kind} = {_TARGET} THEN {t} - {units} ELSE {t} END AS {p_}",
        f"{t} - pmod({t}, {units}) AS {q(block_a)}",
    ).selectExpr("*", f"{p_} - pmod({p_}, {units}) AS {q(block_b)}")
    # ROWS frames over a total order of the kinds at equal positions (no RANGE peer groups or
    # offset bounds): in A events sort before targets at the same time (``e = t`` is in), in B
    # targets sort before events at the same position (``e = t - W`` is out).
    frames = {
        "A": f"OVER (PARTITION BY {keys}{q(block_a)} ORDER BY {t}, {kind} DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
        "B": f"OVER (PARTITION BY {keys}{q(block_b)} ORDER BY -{p_}, {kind} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)",
    }
    member = f"{kind} = {_EVENT}"
    partials: dict[tuple[str, str, str | None], tuple[str, str]] = {}

    def part(side: str, stat: str, column: str | None = None) -> str:
        """A running aggregate of one part, memoised so Aggs share it; returns its column."""
        key = (side, stat, column)
        if key not in partials:
            v = q(names.values[column]) if column is not None else "NULL"
            only = f"CASE WHEN {member} THEN {v} END"
            ties = "".join(f", {q(tb)}" for tb in names.ties)
            expr = {
                "rows": f"count(CASE WHEN {member} THEN 1 END)",
                "n": f"count({only})",
                "sum": f"sum({only})",
                "mean": f"avg(CAST({only} AS DOUBLE))",
                "var": f"var_pop(CAST({only} AS DOUBLE))",
                "min": f"min({only})",
                "max": f"max({only})",
                "last": f"max_by({v}, CASE WHEN {member} THEN struct({t}{ties}, {v}) END)",
            }[stat]
            partials[key] = (new(f"{side}{stat}"), f"{expr} {frames[side]}")
        return q(partials[key][0])

    finals = []
    for a in aggs:
        c = a.column
        if c is None:  # count of rows
            finals.append(f"{part('A', 'rows')} + {part('B', 'rows')} AS {q(a.name)}")
            continue
        n = f"({part('A', 'n', c)} + {part('B', 'n', c)})"
        if a.fn == "count":
            out = n
        elif a.fn in ("sum", "mean"):
            total = f"coalesce({part('A', 'sum', c)}, 0) + coalesce({part('B', 'sum', c)}, 0)"
            value = f"CAST({total} AS {_sum_type(a.dtype)})" if a.fn == "sum" else f"CAST({total} AS DOUBLE) / {n}"
            out = f"CASE WHEN {n} > 0 THEN {value} END"
        elif a.fn == "stddev":
            out = _merged_stddev(*(part(s, stat, c) for s in "AB" for stat in ("n", "mean", "var")))
        elif a.fn in ("min", "max"):
            out = f"{'least' if a.fn == 'min' else 'greatest'}({part('A', a.fn, c)}, {part('B', a.fn, c)})"
        else:  # last: part A holds the later events whenever it has any
            out = f"CASE WHEN {part('A', 'rows')} > 0 THEN {part('A', 'last', c)} ELSE {part('B', 'last', c)} END"
        finals.append(f"{out} AS {q(a.name)}")

    with_parts = positioned.selectExpr("*", *(f"{expr} AS {q(name)}" for name, expr in partials.values()))
    return with_parts.selectExpr(*(q(col) for col in carried), *finals)


def _merged_stddev(n_a: str, mean_a: str, var_a: str, n_b: str, mean_b: str, var_b: str) -> str:
    """SQL: the sample standard deviation of two parts given as (count, mean, population variance),
    M2 = M2_A + M2_B + (mean_B - mean_A)^2 * n_A * n_B / n."""
    n = f"({n_a} + {n_b})"
    cross = (f"CASE WHEN {n_a} > 0 AND {n_b} > 0 THEN "
             f"({mean_b} - {mean_a}) * ({mean_b} - {mean_a}) * {n_a} * {n_b} / {n} ELSE 0D END")
    m2 = f"coalesce({var_a} * {n_a}, 0D) + coalesce({var_b} * {n_b}, 0D) + {cross}"
    return f"CASE WHEN {n} >= 2 THEN sqrt(({m2}) / ({n} - 1)) END"
