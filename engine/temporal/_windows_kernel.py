"""The vectorised strategy of :func:`engine.temporal.windows.window_aggregates`: one shuffle by
key, then every partition at once in numpy (:mod:`engine.temporal._windows_numpy`) via
``mapInArrow``. The two-block Spark plan (:mod:`engine.temporal._windows_plan`) stays the
fallback (DECIMAL sums, nested min/max/last values, floating-point keys) and the reference.

Rows: with a spine, the spine rows (all their columns) and the events (keys, time, the
aggregated columns and tie-breakers only); without one, the events once, each both an event and
a target. No sort in Spark, no window operator, one Exchange.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.temporal._windows_numpy import WindowAgg, aggregate_partition
from engine.temporal._windows_plan import PlanInput, q, time_number_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

KIND = "__wk_kind"
TIME = "__ff_t"
BATCH_ROWS = 65_536


def kernel_blocker(p: PlanInput) -> str | None:
    """Why the kernel cannot compute ``p``, or None."""
    from pyspark.sql import types as T

    exact_keys = (T.IntegralType, T.StringType, T.BinaryType, T.BooleanType, T.DateType, T.TimestampType,
                  T.TimestampNTZType, T.DecimalType)
    for key in p.event_keys:
        dtype = p.events.schema[key].dataType
        if not isinstance(dtype, exact_keys):
            return f"key column {key!r} is {dtype.simpleString()}"
    for a in p.aggs:
        if a.column is None or a.fn == "count":
            continue
        if a.fn in ("sum", "mean", "stddev") and isinstance(a.dtype, T.DecimalType):
            return f"{a.fn} of DECIMAL column {a.column!r} (exact decimal sums stay in Spark)"
        if not isinstance(a.dtype, T.AtomicType) or isinstance(a.dtype, T.VariantType):
            return f"{a.fn} of {a.dtype.simpleString() if a.dtype else '?'} column {a.column!r}"
    for tie in p.tie_breaker:
        dtype = p.events.schema[tie].dataType
        if not isinstance(dtype, T.AtomicType):
            return f"tie_breaker column {tie!r} is {dtype.simpleString()}"
    return None


def kernel_plan(p: PlanInput, *, partitions: int) -> DataFrame:
    from pyspark.sql import types as T

    value_cols = list(dict.fromkeys(a.column for a in p.aggs if a.column is not None))
    keys = [f"__wk_k{i}" for i in range(len(p.event_keys))]
    if p.spine is None:
        inputs = {c: f"__wk_c{j}" for j, c in enumerate(p.events.columns)}
        values = {c: inputs[c] for c in value_cols}
        ties = [inputs[c] for c in p.tie_breaker]
        rows = p.events.selectExpr(
            *(f"{q(c)} AS {n}" for c, n in inputs.items()),
            *(f"{q(c)} AS {k}" for c, k in zip(p.event_keys, keys, strict=True)),
            f"{time_number_sql(p.event_time, p.kind)} AS {TIME}",
        )
    else:
        inputs = {c: f"__wk_c{j}" for j, c in enumerate(p.spine.columns)}
        values = {c: f"__wk_v{j}" for j, c in enumerate(value_cols)}
        ties = [f"__wk_tb{j}" for j in range(len(p.tie_breaker))]
        targets = p.spine.selectExpr(
            *(f"{q(c)} AS {n}" for c, n in inputs.items()),
            *(f"{q(c)} AS {k}" for c, k in zip(p.spine_keys, keys, strict=True)),
            f"{time_number_sql(p.spine_time, p.kind)} AS {TIME}", f"CAST(0 AS TINYINT) AS {KIND}",
        )
        valid = " AND ".join(f"{q(c)} IS NOT NULL" for c in [*p.event_keys, p.event_time])
        events = p.events.where(valid).selectExpr(
            *(f"{q(c)} AS {k}" for c, k in zip(p.event_keys, keys, strict=True)),
            f"{time_number_sql(p.event_time, p.kind)} AS {TIME}", f"CAST(1 AS TINYINT) AS {KIND}",
            *(f"{q(c)} AS {n}" for c, n in values.items()),
            *(f"{q(c)} AS {n}" for c, n in zip(p.tie_breaker, ties, strict=True)),
        )
        rows = targets.unionByName(events, allowMissingColumns=True)
    rows = rows.repartition(partitions, *keys)

    specs = [
        WindowAgg(column=values[a.column] if a.column is not None else None, fn=a.fn, units=a.units,
                  integral=isinstance(a.dtype, T.IntegralType))
        for a in p.aggs
    ]
    fields = [rows.schema[n] for n in inputs.values()]
    for j, a in enumerate(p.aggs):
        if a.fn == "count" or (a.fn == "sum" and isinstance(a.dtype, T.IntegralType)):
            dtype: Any = T.LongType()
        elif a.fn in ("sum", "mean", "stddev"):
            dtype = T.DoubleType()
        else:
            dtype = a.dtype
        fields.append(T.StructField(f"__wk_a{j}", dtype, True))
    schema = T.StructType(fields)
    target_cols = list(inputs.values())
    has_spine = p.spine is not None

    def run(batches: Any) -> Any:
        import numpy as np
        import pyarrow as pa

        batches = list(batches)
        if not batches:
            return
        table = pa.Table.from_batches(batches)
        if table.num_rows == 0:
            return
        if has_spine:
            kind = table.column(KIND).to_numpy()
            is_event, is_target = kind == 1, kind == 0
        else:
            is_event = np.ones(table.num_rows, dtype=bool)
            is_target = is_event
        targets, results = aggregate_partition(table, keys=keys, is_event=is_event, is_target=is_target, ties=ties,
                                               aggs=specs)
        index = pa.array(targets)
        columns = [table.column(c).take(index) for c in target_cols]
        fields = list(schema_arrow)
        columns += [r if r.type == f.type else r.cast(f.type) for r, f in zip(results, fields[len(target_cols):], strict=True)]
        out = pa.Table.from_arrays(columns, names=[f.name for f in fields])
        yield from out.combine_chunks().to_batches(max_chunksize=BATCH_ROWS)

    from pyspark.sql.pandas.types import to_arrow_schema

    schema_arrow = to_arrow_schema(schema, timezone="UTC")
    names = [*inputs, *(a.name for a in p.aggs)]
    internal = [*inputs.values(), *(f"__wk_a{j}" for j in range(len(p.aggs)))]
    return rows.mapInArrow(run, schema).selectExpr(*(f"{n} AS {q(c)}" for n, c in zip(internal, names, strict=True)))
