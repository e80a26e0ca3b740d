"""Distribution drift of features (and the prediction) between a reference DataFrame (the
training rows) and a current one (a scored batch), computed on Spark in two queries, whatever
the number of columns.

Query 1 is one ``groupBy(side).agg`` over the union of both sides: rows, non-NULL counts and, for
every numeric column, ``percentile_approx`` at a fine grid of probabilities (``1/ks_grid``
steps plus the ``1/bins`` steps). Query 2 is one ``groupBy(feature, bucket)`` over the same union
with every row exploded into one ``(feature, bucket)`` pair per column: the count of each side in
every bucket of every column (plus, when there are categorical columns, a window ranking their
categories so that only the top ``max_categories`` per column are collected). Only these small
histograms reach the driver, whatever the data size. Each input is read twice: persist an
expensive input first. (With adaptive query execution Spark reports each shuffle's map stage as
a job of its own: 2 jobs for query 1, 3 for query 2.)

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

import bisect
import dataclasses
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine.config import from_mapping, load_yaml
from engine.errors import ColumnNotFoundError, ColumnTypeError, ConfigError, InvalidArgumentError

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

Kind = Literal["numeric", "categorical"]
OTHER = "__other__"
_NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")
_CATEGORICAL_TYPES = ("string", "boolean")


# ---------------------------------------------------------------------------------------------
# config


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted; ``None`` disables a metric's flag."""

    psi: float | None = 0.2  # flag when PSI > psi
    ks: float | None = 0.1  # flag when the KS statistic > ks (numeric)
    ks_pvalue: float | None = None  # flag when the KS p-value < ks_pvalue (numeric); off by default
    js: float | None = 0.1  # flag when the JS distance > js (categorical)
    null_share_delta: float | None = 0.05  # flag when |current - reference NULL share| > this


_THRESHOLD_KEYS = tuple(f.name for f in dataclasses.fields(Thresholds))


@dataclass(frozen=True)
class MonitoringConfig:
    """Drift thresholds and binning (``conf/monitoring/*.yaml``)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    overrides: dict[str, dict[str, float | None]] = field(default_factory=dict)  # feature -> thresholds
    categorical: list[str] = field(default_factory=list)  # compare these as categories, whatever the type
    bins: int = 10  # PSI bins from reference quantiles (10: deciles)
    ks_grid: int = 100  # quantiles per side for the KS grid
    max_categories: int = 30  # categories kept per column; the rest pooled into __other__
    psi_epsilon: float = 1e-4  # floor of a bin's share in PSI
    quantile_accuracy: int = 10_000  # percentile_approx accuracy (relative rank error 1/accuracy)

    def __post_init__(self) -> None:
        _check_config(self, source="MonitoringConfig")

    def thresholds_for(self, feature: str) -> Thresholds:
        """The default thresholds with ``feature``'s overrides applied."""
        return dataclasses.replace(self.thresholds, **self.overrides.get(feature, {}))


def _check_config(config: MonitoringConfig, *, source: str) -> None:
    def bad(key: str, expected: str, found: Any) -> ConfigError:
        return ConfigError(source=source, key=key, expected=expected, found=repr(found))

    for key, low in (("bins", 2), ("ks_grid", 2), ("max_categories", 1), ("quantile_accuracy", 100)):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise bad(key, f"an integer >= {low}", value)
    if not isinstance(config.psi_epsilon, (int, float)) or not 0 < config.psi_epsilon < 0.1:
        raise bad("psi_epsilon", "a number in (0, 0.1)", config.psi_epsilon)
    if not isinstance(config.thresholds, Thresholds):
        raise bad("thresholds", "a Thresholds", config.thresholds)
    checks = [("thresholds", dataclasses.asdict(config.thresholds))]
    checks += [(f"overrides.{name}", values) for name, values in config.overrides.items()]
    for key, values in checks:
        if not isinstance(values, Mapping):
            raise bad(key, "a mapping of metric -> threshold", values)
        for metric, value in values.items():
            if metric not in _THRESHOLD_KEYS:
                raise ConfigError(
                    source=source, key=f"{key}.{metric}", expected=f"one of {list(_THRESHOLD_KEYS)}",
                    found="an unknown metric",
                )
            upper = math.inf if metric == "psi" else 1.0
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= upper):
                raise bad(f"{key}.{metric}", f"null or a number in [0, {upper}]", value)
    if isinstance(config.categorical, str) or not all(isinstance(c, str) for c in config.categorical):
        raise bad("categorical", "a list of column names", config.categorical)


def monitoring_config(data: Mapping[str, Any], *, source: str = "config") -> MonitoringConfig:
    """A checked :class:`MonitoringConfig` from a mapping (parsed YAML); unknown keys are errors."""
    try:
        return from_mapping(MonitoringConfig, data, source=source)
    except ConfigError as err:
        if err.params.get("source") == source:
            raise
        raise ConfigError(**{**err.params, "source": source}) from None


def load_monitoring_config(path: str | Path) -> MonitoringConfig:
    """Read and check ``conf/monitoring/<name>.yaml`` (or any path)."""
    return monitoring_config(load_yaml(path), source=str(path))


# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class Bin:
    """One histogram bin: numeric ``(lower, upper]`` (``None`` = open end) or one category."""

    label: str
    reference: int
    current: int
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class FeatureDrift:
    """The drift statistics of one column (see the module docstring for each metric)."""

    feature: str
    role: Literal["feature", "prediction"]
    kind: Kind
    data_type: str
    reference_rows: int
    current_rows: int
    reference_null_share: float
    current_null_share: float
    psi: float | None
    ks: float | None
    ks_error: float | None
    ks_pvalue: float | None
    js: float | None
    drifted: bool
    flagged_by: tuple[str, ...]
    thresholds: Thresholds
    bins: tuple[Bin, ...]  # the PSI bins (numeric) or categories, in order

    @property
    def null_share_delta(self) -> float:
        return self.current_null_share - self.reference_null_share


@dataclass(frozen=True)
class DriftResult:
    """Per-column drift of one current batch against the reference, in input order."""

    features: tuple[FeatureDrift, ...]
    reference_rows: int
    current_rows: int
    config: MonitoringConfig

    @property
    def flagged(self) -> list[str]:
        """Names of the drifted columns, in input order."""
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted(self) -> bool:
        return any(f.drifted for f in self.features)

    def __getitem__(self, feature: str) -> FeatureDrift:
        for item in self.features:
            if item.feature == feature:
                return item
        raise ColumnNotFoundError(
            argument="feature", column=feature, side="drift result",
            available=[f.feature for f in self.features],
        )


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

    # Query 1: rows, non-NULL counts and quantiles of every column, per side.
    exprs = [F.count(F.lit(1)).alias("rows")]
    exprs += [F.count(F.col(f"c{i}")).alias(f"n{i}") for i in range(len(columns))]
    exprs += [
        F.percentile_approx(F.col(f"c{i}"), probabilities, config.quantile_accuracy).alias(f"q{i}") for i in numeric
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
    counts = _bucket_counts(both, columns, kinds, grid, config.max_categories, rows) if grid or len(numeric) < len(columns) else {}

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


def _probabilities(bins: int, ks_grid: int) -> tuple[list[float], list[int]]:
    """The sorted percentile_approx probabilities and the positions of the ``1/bins`` ones."""
    fine = {Fraction(j, ks_grid) for j in range(1, ks_grid)}
    coarse = [Fraction(j, bins) for j in range(1, bins)]
    ordered = sorted(fine | set(coarse))
    return [float(p) for p in ordered], [ordered.index(p) for p in coarse]


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


def _splits(edges: Sequence[float]) -> tuple[list[float], list[tuple[str, int]]]:
    """Bucketizer splits that give every grid edge a bucket of its own, and what each bucket is.

    Bucketizer buckets are ``[s_j, s_j+1)``; the split after edge ``e`` is ``nextafter(e, inf)``,
    so ``[e, nextafter(e))`` holds exactly the value ``e``. Buckets: ``("open", k)`` is the open
    interval ``(e_k-1, e_k)`` (``e_-1 = -inf``, ``e_m = +inf``), ``("edge", k)`` is ``{e_k}``.
    """
    splits, meaning = [-math.inf], [("open", 0)]
    for k, edge in enumerate(edges):
        splits.append(edge)
        meaning.append(("edge", k))
        after = math.nextafter(edge, math.inf)
        if after < (edges[k + 1] if k + 1 < len(edges) else math.inf):
            splits.append(after)
            meaning.append(("open", k + 1))
    splits.append(math.inf)
    return splits, meaning


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


def _psi(ref: Sequence[int], cur: Sequence[int], n: tuple[int, int], epsilon: float) -> float:
    total = 0.0
    for r, c in zip(ref, cur, strict=True):
        p, q = max(r / n[0], epsilon), max(c / n[1], epsilon)
        total += (q - p) * math.log(q / p)
    return total


def _numeric_metrics(
    cells: Mapping[str, tuple[int, int]],
    grid: Sequence[float] | None,
    psi_edges: Sequence[float] | None,
    n: tuple[int, int],
    epsilon: float,
) -> dict[str, Any]:
    if not grid or psi_edges is None or n[0] == 0 or n[1] == 0:  # a side without non-NULL values
        return {"psi": None, "ks": None, "ks_error": None, "ks_pvalue": None, "js": None, "bins": ()}
    meaning = _splits(grid)[1]
    m = len(grid)
    open_counts = [[0, 0] for _ in range(m + 1)]  # (e_k-1, e_k)
    edge_counts = [[0, 0] for _ in range(m)]  # {e_k}
    for j, (what, k) in enumerate(meaning):
        r, c = cells.get(str(j), (0, 0))
        target = open_counts[k] if what == "open" else edge_counts[k]
        target[0] += r
        target[1] += c

    # KS: the empirical CDFs are exact at every edge; inside an open interval each can only rise
    # from its value before the interval to its value after it, which bounds |F_ref - F_cur| there.
    ks = upper = 0.0
    cum = [0, 0]
    for k in range(m + 1):
        before = (cum[0] / n[0], cum[1] / n[1])
        cum = [cum[0] + open_counts[k][0], cum[1] + open_counts[k][1]]
        after = (cum[0] / n[0], cum[1] / n[1])
        upper = max(upper, after[0] - before[1], after[1] - before[0])
        if k < m:
            cum = [cum[0] + edge_counts[k][0], cum[1] + edge_counts[k][1]]
            ks = max(ks, abs(cum[0] / n[0] - cum[1] / n[1]))
    upper = min(max(upper, ks), 1.0)

    # PSI bins (p_j-1, p_j] over the reference's 1/bins quantiles p, which are grid edges.
    psi_counts = [[0, 0] for _ in range(len(psi_edges) + 1)]
    for k in range(m + 1):
        j = 0 if k == 0 else bisect.bisect_right(psi_edges, grid[k - 1])  # values in (e_k-1, e_k)
        psi_counts[j][0] += open_counts[k][0]
        psi_counts[j][1] += open_counts[k][1]
        if k < m:
            j = bisect.bisect_left(psi_edges, grid[k])  # the value e_k
            psi_counts[j][0] += edge_counts[k][0]
            psi_counts[j][1] += edge_counts[k][1]
    bounds: list[float | None] = [None, *psi_edges, None]
    bins = tuple(
        Bin(label=_interval(bounds[j], bounds[j + 1]), reference=r, current=c, lower=bounds[j], upper=bounds[j + 1])
        for j, (r, c) in enumerate(psi_counts)
    )
    return {
        "psi": _psi([r for r, _ in psi_counts], [c for _, c in psi_counts], n, epsilon),
        "ks": ks, "ks_error": upper - ks, "ks_pvalue": _ks_pvalue(ks, n), "js": None, "bins": bins,
    }


def _interval(lower: float | None, upper: float | None) -> str:
    left = "(-inf" if lower is None else f"({lower:.4g}"
    right = "inf)" if upper is None else f"{upper:.4g}]"
    return f"{left}, {right}"


def _ks_pvalue(statistic: float, n: tuple[int, int]) -> float:
    from scipy.stats import kstwo

    effective = round(n[0] * n[1] / (n[0] + n[1]))
    return float(min(max(kstwo.sf(statistic, max(effective, 1)), 0.0), 1.0))


def _categorical_metrics(cells: Mapping[str, tuple[int, int]], n: tuple[int, int], epsilon: float) -> dict[str, Any]:
    empty = {"psi": None, "ks": None, "ks_error": None, "ks_pvalue": None, "js": None, "bins": ()}
    if n[0] == 0 or n[1] == 0:
        return empty
    order = sorted(cells, key=lambda b: (b == OTHER, -cells[b][0], -cells[b][1], b))
    ref = [cells[b][0] for b in order]
    cur = [cells[b][1] for b in order]
    divergence = 0.0
    for r, c in zip(ref, cur, strict=True):
        p, q = r / n[0], c / n[1]
        mean = (p + q) / 2
        divergence += (p * math.log2(p / mean) if p else 0.0) + (q * math.log2(q / mean) if q else 0.0)
    bins = tuple(Bin(label=b, reference=r, current=c) for b, r, c in zip(order, ref, cur, strict=True))
    return {
        "psi": _psi(ref, cur, n, epsilon), "ks": None, "ks_error": None, "ks_pvalue": None,
        "js": math.sqrt(min(max(divergence / 2, 0.0), 1.0)), "bins": bins,
    }


def _flags(metrics: Mapping[str, Any], null_delta: float, thresholds: Thresholds) -> tuple[str, ...]:
    flagged = []
    for metric in ("psi", "ks", "js"):
        limit, value = getattr(thresholds, metric), metrics[metric]
        if limit is not None and value is not None and value > limit:
            flagged.append(metric)
    if thresholds.ks_pvalue is not None and metrics["ks_pvalue"] is not None and metrics["ks_pvalue"] < thresholds.ks_pvalue:
        flagged.append("ks_pvalue")
    if thresholds.null_share_delta is not None and abs(null_delta) > thresholds.null_share_delta:
        flagged.append("null_share_delta")
    return tuple(flagged)
