"""Distribution drift of features (and the prediction) between a reference DataFrame (the
training rows) and a current one (a scored batch), computed in two queries, whatever the number
of columns.

Query 1 is one ``groupBy(side).agg`` over the union of both sides: rows, non-NULL counts and, for
every numeric column, ``percentile_approx`` at a fine grid of probabilities (``1/ks_grid``
steps plus the ``1/bins`` steps). Query 2 is one ``groupBy(feature, bucket)`` over the same union
with every row exploded into one ``(feature, bucket)`` pair per column: the count of each side in
every bucket of every column (plus, when there are categorical columns, a window ranking their
categories so that only the top ``max_categories`` per column are collected). Only these small
histograms reach the driver, whatever the data size. Each input is read twice: persist an
expensive input first. (With adaptive query execution Spark reports each shuffle's map stage as
a job of its own: 2 jobs for query 1, 3 for query 2.)

**Small inputs** -- both sides together at most
:data:`~engine.monitoring._drift_local.LOCAL_CELLS` (20M) values -- are collected once (a
``limit`` query: each input read once) and both queries are answered on the driver with numpy
(:mod:`engine.monitoring._drift_local`), with the same definitions except that the quantiles are
exact: ``percentile_approx``'s rank ``ceil(p * n)`` without its rank error (at most ``n /
quantile_accuracy``), so the figures no longer depend on how the rows are partitioned.

The statistics, per column (NULLs -- and NaN for floating columns -- are counted apart, in the
NULL shares, and left out of the distributions):

* **kind**: ``numeric`` for numeric Spark types, ``categorical`` for string and boolean ones and
  for any column listed in :attr:`MonitoringConfig.categorical` (values compared as text).
* **PSI** (both kinds): ``sum((c - r) * ln(c / r))`` over bins, with ``r`` and ``c`` the
  reference and current shares of the bin. Numeric bins come from the reference quantiles at
  ``1/bins`` steps (deciles by default), right-closed ``(e_i, e_i+1]``; duplicate edges (ties,
  e.g. a value holding 30 % of the rows) are merged, and the first and last bins are open-ended,
  so current values outside the reference range land in them. Categorical bins are the
  categories (beyond ``max_categories``, the rarest are pooled into ``__other__``). An empty bin
  would make the logarithm infinite, so shares are floored at ``psi_epsilon`` (1e-4, i.e. a bin
  is treated as if it held at least 0.01 % of the rows; shares are not renormalised).
* **KS** (numeric): the two-sample Kolmogorov-Smirnov statistic ``max |F_ref(x) - F_cur(x)|``,
  evaluated exactly (exact counts, no sampling) at every edge of a common grid: the
  ``percentile_approx`` values of *both* sides at ``1/ks_grid`` steps (100 by default, so up to
  about 200 edges). Each edge value and each open interval between two edges is its own bucket
  (a ``Bucketizer`` binary search per value), so ties are counted exactly. Since the grid points
  are data values, ``ks`` is never above the exact statistic, and it is exact when the column has
  fewer distinct values than the grid. Inside an open interval both empirical CDFs are monotone,
  which bounds the exact statistic from above: ``ks <= exact <= ks + ks_error``; ``ks_error`` is
  reported (about ``1/ks_grid`` or less: no interval holds much more than one grid step of
  either side).
  ``ks_pvalue`` is the asymptotic two-sided p-value (``scipy.stats.kstwo``, as ``ks_2samp``
  with ``method="asymp"``) of ``ks`` on the non-NULL counts. On large batches it is ~0 for any
  visible shift, which is why the default threshold is on the statistic.
* **JS** (categorical): the Jensen-Shannon *distance* in base 2 (the square root of the
  divergence; 0 for identical and 1 for disjoint distributions), as
  ``scipy.spatial.distance.jensenshannon(p, q, base=2)``; no epsilon needed.
* **NULL shares** of both sides and ``null_share_delta = current - reference``.

A column is ``drifted`` when any metric passes its threshold (``psi``, ``ks``, ``js``,
``|null_share_delta|`` strictly above; ``ks_pvalue`` strictly below); ``flagged_by`` names them.
A threshold of ``None`` switches that metric's flag off.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from engine.errors import ColumnNotFoundError, ColumnTypeError, InvalidArgumentError
from engine.monitoring import _drift_local
from engine.monitoring.config import MonitoringConfig, Thresholds, load_monitoring_config, monitoring_config
from engine.monitoring.metrics import (
    OTHER,
    Bin,
    DriftResult,
    FeatureDrift,
    Kind,
    _categorical_metrics,
    _flags,
    _numeric_metrics,
    _probabilities,
    _splits,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "Bin",
    "DriftResult",
    "FeatureDrift",
    "MonitoringConfig",
    "Thresholds",
    "compute_drift",
    "load_monitoring_config",
    "monitoring_config",
]

log = logging.getLogger(__name__)

_NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
_CATEGORICAL_TYPES = ("string", "boolean")


# ---------------------------------------------------------------------------------------------
# compute


def compute_drift(
    reference: DataFrame,
    current: DataFrame,
    *,
    features: Sequence[str],
    prediction: str | None = None,
    config: MonitoringConfig | None = None,
) -> DriftResult:
    """Drift of each of ``features`` (and ``prediction``, if given) from ``reference`` to
    ``current``, in two Spark queries (see the module docstring).

    Raises :class:`ColumnNotFoundError` for a column missing on either side,
    :class:`ColumnTypeError` for an unsupported type or a kind that differs between the sides,
    and :class:`InvalidArgumentError` for bad arguments or an empty side (known from the first
    query; arguments, columns and types are checked before any Spark job).
    """
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    started = time.monotonic()
    config = MonitoringConfig() if config is None else config
    if not isinstance(config, MonitoringConfig):
        raise InvalidArgumentError(argument="config", expected="a MonitoringConfig", found=type(config).__name__)
    for argument, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, DataFrame):
            raise InvalidArgumentError(argument=argument, expected="a Spark DataFrame", found=type(frame).__name__)
    columns = _check_columns(features, prediction)
    kinds = {
        name: _kind(name, reference, current, argument=argument, categorical=config.categorical)
        for name, argument in columns
    }

    probabilities, psi_positions = _probabilities(config.bins, config.ks_grid)
    both = _project(reference, 0, kinds).unionByName(_project(current, 1, kinds))
    numeric = [i for i, (name, _) in enumerate(columns) if kinds[name][0] == "numeric"]

    local = _drift_local.collect(both, len(columns))  # small inputs: one collect, numpy on the driver
    if local is not None:
        sides = _drift_local.summaries(local, len(columns), numeric, probabilities)
    else:  # Query 1: rows, non-NULL counts and quantiles of every column, per side.
        grid_column = F.array(*[F.lit(p) for p in probabilities])  # built once: ~100 py4j calls each
        exprs = [F.count(F.lit(1)).alias("rows")]
        exprs += [F.count(F.col(f"c{i}")).alias(f"n{i}") for i in range(len(columns))]
        exprs += [
            F.percentile_approx(F.col(f"c{i}"), grid_column, config.quantile_accuracy).alias(f"q{i}") for i in numeric
        ]
        sides = {int(row["side"]): row for row in both.groupBy("side").agg(*exprs).collect()}
    for side, argument in ((0, "reference"), (1, "current")):
        if side not in sides:
            raise InvalidArgumentError(
                argument=argument, expected="a DataFrame with at least one row", found="0 rows",
                hint="Nothing to compare: check the batch or the reference filter.",
            )
    ref, cur = sides[0], sides[1]
    rows = (int(ref["rows"]), int(cur["rows"]))

    # Grid edges per numeric column: both sides' quantiles; PSI edges: the reference's 1/bins ones.
    grid: dict[int, list[float]] = {}
    psi_edges: dict[int, list[float]] = {}
    for i in numeric:
        ref_q, cur_q = ref[f"q{i}"] or [], cur[f"q{i}"] or []
        if ref_q and cur_q:  # infinite values fall in the open-ended buckets
            grid[i] = sorted({float(v) for v in (*ref_q, *cur_q) if math.isfinite(v)}) or [0.0]
            psi_edges[i] = sorted({float(ref_q[p]) for p in psi_positions if math.isfinite(ref_q[p])})

    # Query 2: per column and bucket, the row count of each side.
    counts: dict[int, dict[str, tuple[int, int]]] = {}
    if local is not None:
        counts = _drift_local.bucket_counts(local, columns, kinds, grid, config.max_categories, rows)
    elif grid or len(numeric) < len(columns):
        counts = _bucket_counts(both, columns, kinds, grid, config.max_categories, rows)

    results = []
    for i, (name, argument) in enumerate(columns):
        kind, dtype = kinds[name]
        non_null = (int(ref[f"n{i}"]), int(cur[f"n{i}"]))
        cells = counts.get(i, {})
        if kind == "numeric":
            metrics = _numeric_metrics(cells, grid.get(i), psi_edges.get(i), non_null, config.psi_epsilon)
        else:
            kept = (sum(r for r, _ in cells.values()), sum(c for _, c in cells.values()))
            if kept != non_null:  # the categories beyond max_categories, pooled
                cells = {**cells, OTHER: (non_null[0] - kept[0], non_null[1] - kept[1])}
            metrics = _categorical_metrics(cells, non_null, config.psi_epsilon)
        thresholds = config.thresholds_for(name)
        null_shares = ((rows[0] - non_null[0]) / rows[0], (rows[1] - non_null[1]) / rows[1])
        flagged = _flags(metrics, null_shares[1] - null_shares[0], thresholds)
        results.append(
            FeatureDrift(
                feature=name, role="prediction" if argument == "prediction" else "feature", kind=kind,
                data_type=dtype, reference_rows=rows[0], current_rows=rows[1],
                reference_null_share=null_shares[0], current_null_share=null_shares[1],
                drifted=bool(flagged), flagged_by=flagged, thresholds=thresholds, **metrics,
            )
        )
    result = DriftResult(features=tuple(results), reference_rows=rows[0], current_rows=rows[1], config=config)
    log.info(
        "drift of %d column(s), %d reference vs %d current rows: %d flagged %s (%.1fs)",
        len(results), rows[0], rows[1], len(result.flagged), result.flagged, time.monotonic() - started,
    )
    return result


def _check_columns(features: Sequence[str], prediction: str | None) -> list[tuple[str, str]]:
    """``[(column, argument)]``: the features, then the prediction."""
    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise InvalidArgumentError(argument="features", expected="a non-empty list of column names", found=repr(features))
    for name in features:
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(argument="features", expected="column names (non-empty strings)", found=repr(name))
    duplicates = sorted({name for name in features if list(features).count(name) > 1})
    if duplicates:
        raise InvalidArgumentError(argument="features", expected="distinct column names", found=f"{duplicates} repeated")
    columns = [(name, "features") for name in features]
    if prediction is not None:
        if not isinstance(prediction, str) or not prediction:
            raise InvalidArgumentError(argument="prediction", expected="a column name or None", found=repr(prediction))
        if prediction in features:
            raise InvalidArgumentError(
                argument="prediction", expected="a column not also listed in `features`", found=repr(prediction)
            )
        columns.append((prediction, "prediction"))
    return columns


def _kind(name: str, reference: DataFrame, current: DataFrame, *, argument: str, categorical: Sequence[str]) -> tuple[Kind, str]:
    """The column's kind and reference type; the same kind is required on both sides."""
    found: list[tuple[Kind, str]] = []
    for side, frame in (("reference", reference), ("current", current)):
        fields = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        if name not in fields:
            raise ColumnNotFoundError(argument=argument, column=name, side=side, available=sorted(fields))
        dtype = fields[name]
        base = dtype.split("(")[0]
        if base not in _NUMERIC_TYPES and base not in _CATEGORICAL_TYPES:
            raise ColumnTypeError(
                argument=argument, column=name, expected="a numeric, string or boolean column", found=f"{dtype} ({side})",
                hint="Cast it, or leave it out of the drift columns.",
            )
        kind: Kind = "categorical" if name in categorical or base in _CATEGORICAL_TYPES else "numeric"
        found.append((kind, dtype))
    if found[0][0] != found[1][0]:
        raise ColumnTypeError(
            argument=argument, column=name, expected=f"a {found[0][0]} column like the reference's {found[0][1]}",
            found=f"{found[1][1]} (current)", hint="Both sides must hold the same kind of values.",
        )
    return found[0]


def _project(frame: DataFrame, side: int, kinds: Mapping[str, tuple[Kind, str]]) -> DataFrame:
    """``side`` plus ``c0..cN``: numeric columns as DOUBLE (NaN -> NULL), categorical as STRING."""
    from pyspark.sql import functions as F

    out = [F.lit(side).alias("side")]
    for i, (name, (kind, dtype)) in enumerate(kinds.items()):
        col = F.col("`" + name.replace("`", "``") + "`")
        if kind == "numeric":
            value = col.cast("double")
            if dtype in ("float", "double"):
                value = F.when(~F.isnan(col), value)
        else:
            value = col.cast("string")
        out.append(value.alias(f"c{i}"))
    return frame.select(*out)


def _bucket_counts(
    both: DataFrame,
    columns: Sequence[tuple[str, str]],
    kinds: Mapping[str, tuple[Kind, str]],
    grid: Mapping[int, Sequence[float]],
    max_categories: int,
    rows: tuple[int, int],
) -> dict[int, dict[str, tuple[int, int]]]:
    """``{column index: {bucket: (reference count, current count)}}`` in one Spark query.

    Numeric buckets are Bucketizer indices over :func:`_splits` of the column's grid (a binary
    search per value), categorical buckets the values themselves.
    """
    from pyspark.ml.feature import Bucketizer
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    numeric = sorted(grid)
    if numeric:
        both = Bucketizer(
            splitsArray=[_splits(grid[i])[0] for i in numeric], inputCols=[f"c{i}" for i in numeric],
            outputCols=[f"b{i}" for i in numeric], handleInvalid="keep",
        ).transform(both)
    pairs = []
    categorical = []
    for i, (name, _) in enumerate(columns):
        if kinds[name][0] == "categorical":
            categorical.append(i)
            bucket = F.col(f"c{i}")
        elif i in grid:
            bucket = F.when(F.col(f"c{i}").isNotNull(), F.col(f"b{i}").cast("int").cast("string"))
        else:
            continue
        pairs.append(F.struct(F.lit(i).alias("f"), bucket.alias("b")))
    counts = (
        both.select("side", F.explode(F.array(*pairs)).alias("p"))
        .select("side", "p.f", "p.b")
        .where(F.col("b").isNotNull())
        .groupBy("f", "b")
        .agg(F.sum(F.when(F.col("side") == 0, 1).otherwise(0)).alias("r"), F.sum("side").alias("c"))
    )
    if categorical:  # keep the most frequent categories (by mean share of the sides)
        weight = F.col("r") / F.lit(rows[0]) + F.col("c") / F.lit(rows[1])
        rank = F.row_number().over(Window.partitionBy("f").orderBy(weight.desc(), F.col("b")))
        counts = counts.withColumn("rank", rank).where(~F.col("f").isin(categorical) | (F.col("rank") <= max_categories))
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for row in counts.collect():
        out.setdefault(int(row["f"]), {})[row["b"]] = (int(row["r"]), int(row["c"]))
    return out


