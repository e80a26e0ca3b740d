"""Which strategy runs one pass of an as-of join, and why (what ``explain_asof`` shows).

The rule, in order:

0. ``whole`` or ``layout`` (:mod:`engine.temporal._asof_layout`) when every lookup of the pass
   reads a :class:`~engine.temporal.layout.BucketedSource` bucketed alike on the pass's keys,
   with TIMESTAMP times and atomic payload types (feature groups written by the store):
   ``whole`` (no key shuffle: each task reads the right tables whole) when their known row
   counts add up to at most :data:`~engine.temporal._asof_layout.WHOLE_ROWS`, else ``layout``
   (only the spine shuffled, each task reads one hash bucket of every right table itself);
1. ``kernel`` (:mod:`engine.temporal._asof_kernel`: one shuffle by key, numpy per partition)
   whenever every column it orders or groups by has a type it compares exactly like Spark:
   key columns of integer, string, binary, boolean, date, timestamp or decimal type (not
   floating point: Spark equates -0.0 and 0.0 and all NaNs in keys), and tie-order columns (the
   ``tie_breaker``, or every payload column without one) of atomic types (no struct, array, map
   or variant) -- and the payload of types Arrow carries (no variant, no user-defined types).
2. ``sweep`` (:mod:`engine.temporal._asof_sweep`: union + window, all in the JVM) otherwise.

Hot keys (see :mod:`engine.temporal._hot_keys`) are looked for only outside those two strategies,
for backward lookups with keys, ``hot_key_share`` not None, and inputs estimated at
:data:`MIN_ROWS_FOR_SKEW` rows or more (or of unknown size). The kernel and the sweep slice hot
keys the same way; the layout strategy does not (a bucket is one task's work).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.temporal import _asof_layout
from engine.temporal._asof_layout import layout_blocker, whole_rows
from engine.temporal._asof_sweep import KEY, TIME, sweep
from engine.temporal._hot_keys import MIN_ROWS_FOR_SKEW, HotKey, estimated_rows, find_hot_keys, session_cores

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

    from engine.temporal._asof_sweep import RightSide

STRATEGIES = ("kernel", "sweep", "layout", "whole")
_forced: list[str] = []


@contextlib.contextmanager
def forced(strategy: str) -> Iterator[None]:
    """Run every as-of join inside the block with ``strategy`` (differential tests, benchmarks)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}")
    _forced.append(strategy)
    try:
        yield
    finally:
        _forced.pop()


def forced_strategy() -> str | None:
    """The strategy a surrounding :func:`forced` block asks for (as-of joins and windows; for
    windows ``"sweep"`` means the two-block Spark plan), or None."""
    return _forced[-1] if _forced else None


@dataclass(frozen=True)
class AsofPlan:
    """How one pass of an as-of join will run (one pass per distinct set of spine keys).

    ``strategy`` is ``"layout"``, ``"kernel"`` or ``"sweep"``; ``reason`` says why. ``partitions`` is the
    number of tasks the key shuffle makes; the row estimates come from Spark's plan statistics
    (no job), None where unknown. ``hot_key_check`` says whether a sampling job ran and why,
    ``hot_keys`` lists the keys cut into time slices.
    """

    strategy: str
    reason: str
    spine_keys: tuple[str, ...]
    lookups: int
    partitions: int
    estimated_left_rows: int | None
    estimated_right_rows: int | None
    hot_key_check: str
    hot_keys: tuple[HotKey, ...] = field(default=())

    @property
    def estimated_rows_per_task(self) -> int | None:
        if self.estimated_left_rows is None or self.estimated_right_rows is None:
            return None
        return (self.estimated_left_rows + self.estimated_right_rows) // max(self.partitions, 1)

    def __str__(self) -> str:
        def rows(n: int | None) -> str:
            return "unknown" if n is None else f"~{n:,}"

        lines = [
            f"as-of join pass on keys {list(self.spine_keys)} ({self.lookups} lookup(s)): strategy {self.strategy}",
            f"  why: {self.reason}",
            f"  rows (estimated): left {rows(self.estimated_left_rows)}, right {rows(self.estimated_right_rows)}, "
            f"{self.partitions} task(s), per task {rows(self.estimated_rows_per_task)}",
            f"  hot keys: {self.hot_key_check}",
        ]
        lines += [f"    {k.key!r}: {k.share:.1%} of the rows, {k.slices} time slices" for k in self.hot_keys]
        return "\n".join(lines)


@dataclass(frozen=True)
class Choice:
    plan: AsofPlan
    hot_slices: DataFrame | None


def _kernel_blocker(left: DataFrame, n_keys: int, rights: Sequence[RightSide]) -> str | None:
    """Why the kernel cannot take these columns, or None."""
    from pyspark.sql import types as T

    exact_keys = (T.IntegralType, T.StringType, T.BinaryType, T.BooleanType, T.DateType, T.TimestampType,
                  T.TimestampNTZType, T.DecimalType)

    def atomic(dtype: DataType) -> bool:
        return isinstance(dtype, T.AtomicType) and not isinstance(dtype, T.VariantType)

    def carried(dtype: DataType) -> bool:
        if isinstance(dtype, (T.VariantType, T.UserDefinedType)):
            return False
        if isinstance(dtype, T.StructType):
            return all(carried(f.dataType) for f in dtype.fields)
        if isinstance(dtype, T.ArrayType):
            return carried(dtype.elementType)
        if isinstance(dtype, T.MapType):
            return carried(dtype.keyType) and carried(dtype.valueType)
        return True

    for i in range(n_keys):
        dtype = left.schema[f"__ff_k{i}"].dataType
        if not isinstance(dtype, exact_keys):
            return f"key column {i} is {dtype.simpleString()} (the kernel groups integer/string/date/time keys only)"
    for f in left.schema.fields:
        if not carried(f.dataType):
            return f"left column {f.name!r} is {f.dataType.simpleString()} (not carried through Arrow)"
    for j, side in enumerate(rights):
        for c in side.payload:
            if not carried(side.frame.schema[c].dataType):
                return f"lookup {j} column {c!r} is {side.frame.schema[c].dataType.simpleString()} (not carried through Arrow)"
        for c in side.tie_breaker or side.payload:
            if not atomic(side.frame.schema[c].dataType):
                what = "tie_breaker" if side.tie_breaker else "tie order (no tie_breaker: the payload columns)"
                return f"lookup {j} {what} column {c!r} is {side.frame.schema[c].dataType.simpleString()}"
    return None


def choose(
    left: DataFrame,
    left_input: DataFrame,
    left_keys: DataFrame,
    right_inputs: Sequence[DataFrame],
    spine_keys: Sequence[str],
    rights: Sequence[RightSide],
    *,
    hot_key_share: float | None,
    time_kinds: set[str],
    explain: bool = False,
) -> Choice:
    """The plan of one pass; runs the hot-key sampling job when the rule above asks for it.
    ``left_input`` is the user's spine (for its size), ``left_keys`` its key and time columns
    (for the sampling job), ``left`` the renamed frame the pass joins. The spine's row estimate
    (plan statistics: on a filtered Delta spine, a file-listing job per call) is made where the
    hot-key rule needs it or for ``explain``; a join by the layout strategy leaves it unknown."""
    n_keys = len(spine_keys)
    # a source that knows its row count (a laid-out group: Delta's file statistics) spares the
    # optimizer's estimate, which lists a Delta table's files with Spark jobs
    right_estimates = [side.source.rows if side.source is not None and side.source.rows is not None
                       else estimated_rows(r) for r, side in zip(right_inputs, rights, strict=True)]
    right_rows = None if any(r is None for r in right_estimates) else sum(r or 0 for r in right_estimates)
    # both strategies shuffle into the session's shuffle partitions (the kernel: one key bucket each)
    partitions = int(left.sparkSession.conf.get("spark.sql.shuffle.partitions") or 200)

    blocker = _kernel_blocker(left, n_keys, rights)
    layout_why = layout_blocker(n_keys, rights, time_kinds)
    if _forced:
        strategy, reason = _forced[-1], "forced (engine.temporal._asof_strategy.forced)"
        if strategy == "kernel" and blocker:
            raise ValueError(f"the kernel cannot run this join: {blocker}")
        if strategy in ("layout", "whole") and layout_why:
            raise ValueError(f"the {strategy} strategy cannot run this join: {layout_why}")
    elif layout_why is None:
        source = rights[0].source
        assert source is not None
        small = whole_rows([side.source for side in rights])
        tables = "; ".join(dict.fromkeys(s.source.description for s in rights if s.source and s.source.description))
        if small is not None:
            strategy = "whole"
            reason = (f"every lookup reads a laid-out table and together they hold {small:,} rows (at most "
                      f"{_asof_layout.WHOLE_ROWS:,}): no key shuffle, each task reads them whole ({tables})")
        else:
            strategy = "layout"
            reason = (f"every lookup reads a table laid out in {source.buckets} hash buckets of "
                      f"{list(source.key_columns)}: only the spine is shuffled, each task reads its buckets itself "
                      f"(adaptive execution merges small neighbouring buckets into one task; {tables})")
    elif blocker:
        strategy, reason = "sweep", blocker
    else:
        strategy, reason = "kernel", "all key, order and payload types are handled by the vectorised kernel"
    if strategy == "kernel" and n_keys == 0:
        reason += "; no key columns: one task"
    elif strategy not in ("layout", "whole") and any(side.source is not None for side in rights):
        reason += f" (tables laid out in buckets, not used: {layout_why or 'another strategy forced'})"
    if strategy == "layout" and rights[0].source is not None:
        partitions = rights[0].source.buckets
    elif strategy == "whole":  # the spine's partitions, spread over the cores (at least two tasks per core)
        partitions = 2 * (session_cores(left.sparkSession) or 1)
    left_rows = estimated_rows(left_input) if strategy not in ("layout", "whole") or explain else None
    total = None if left_rows is None or right_rows is None else left_rows + right_rows

    hot_slices, hot_keys = None, []
    if strategy == "layout":
        check = "not looked for (layout strategy: a key's rows are its bucket's work, never sliced)"
    elif strategy == "whole":
        check = "not looked for (whole strategy: no key shuffle, a key's spine rows are spread over the tasks)"
    elif hot_key_share is None:
        check = "not looked for (hot_key_share=None)"
    elif not n_keys:
        check = "not looked for (no key columns)"
    elif any(side.direction != "backward" for side in rights):
        check = "not looked for (slicing applies to backward lookups only)"
    elif hot_key_share != 0 and total is not None and total < MIN_ROWS_FOR_SKEW:
        check = f"not looked for (~{total:,} rows estimated, below {MIN_ROWS_FOR_SKEW:,}: no key can stall a task)"
    else:
        hot_slices, hot_keys = find_hot_keys(left_keys, rights, n_keys, share=hot_key_share, partitions=partitions)
        why = "forced (hot_key_share=0)" if hot_key_share == 0 else (
            "size unknown" if total is None else f"~{total:,} rows estimated")
        check = f"sampled ({why}): {len(hot_keys)} hot key(s) above one task's fair share of the rows"
    plan = AsofPlan(
        strategy=strategy, reason=reason, spine_keys=tuple(spine_keys), lookups=len(rights), partitions=partitions,
        estimated_left_rows=left_rows, estimated_right_rows=right_rows, hot_key_check=check, hot_keys=tuple(hot_keys),
    )
    return Choice(plan=plan, hot_slices=hot_slices)


@dataclass(frozen=True)
class Pass:
    """One planned pass: the renamed frames, the plan, and the hot-key slices (or None)."""

    left: DataFrame
    left_payload: list[str]
    n_keys: int
    rights: list[RightSide]
    plan: AsofPlan
    hot_slices: DataFrame | None


def execute(p: Pass) -> DataFrame:
    """The planned pass's result: the spine's payload, then every lookup's payload."""
    if p.plan.strategy == "layout":
        return _asof_layout.layout_join(p.left, p.left_payload, p.n_keys, p.rights)
    if p.plan.strategy == "kernel":
        from engine.temporal._asof_kernel import kernel_join

        return kernel_join(p.left, p.left_payload, p.n_keys, p.rights, partitions=p.plan.partitions,
                           hot_slices=p.hot_slices)
    if p.plan.strategy == "whole":  # alone, not among the passes read whole together: as partitioned
        from pyspark.sql import functions as F

        keys = [KEY.format(i) for i in range(p.n_keys)]
        out = [*p.left_payload, *[c for side in p.rights for c in side.payload]]
        return _asof_layout.whole_join(p.left, [(keys, TIME, p.rights)]).select(*[F.col(_q(c)) for c in out])
    return sweep(p.left, p.left_payload, p.n_keys, p.rights, hot_slices=p.hot_slices)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
