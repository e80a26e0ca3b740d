"""The drift metrics' arithmetic on small histograms (no Spark): PSI, KS with its error bound,
the KS p-value, the Jensen-Shannon distance, the flags, and the result types. The definitions
are in :mod:`engine.monitoring.drift`; ``tests/unit/test_drift_metrics.py`` checks them against
scipy without a Spark session."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from engine.errors import ColumnNotFoundError
from engine.monitoring.config import MonitoringConfig, Thresholds

__all__ = ["OTHER", "Bin", "DriftResult", "FeatureDrift", "Kind"]

Kind = Literal["numeric", "categorical"]
OTHER = "__other__"


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



def _probabilities(bins: int, ks_grid: int) -> tuple[list[float], list[int]]:
    """The sorted percentile_approx probabilities and the positions of the ``1/bins`` ones."""
    fine = {Fraction(j, ks_grid) for j in range(1, ks_grid)}
    coarse = [Fraction(j, bins) for j in range(1, bins)]
    ordered = sorted(fine | set(coarse))
    return [float(p) for p in ordered], [ordered.index(p) for p in coarse]


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
