"""PNG plots of a drift result: reference vs current per column, and a PSI summary.

Drawn with matplotlib's object API on the Agg canvas (``matplotlib.figure.Figure``), never
``pyplot``: no global backend switch, no open-figure registry, safe in jobs and threads.
Everything is drawn from the small histograms in the :class:`DriftResult`; no Spark job runs here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InvalidArgumentError
from engine.monitoring.drift import Bin, DriftResult, FeatureDrift

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_drift"]

log = logging.getLogger(__name__)

MAX_CATEGORIES_PLOTTED = 20
_REFERENCE, _CURRENT, _FLAGGED, _OK = "#4C72B0", "#DD8452", "#C44E52", "#8C8C8C"


def plot_drift(result: DriftResult, out_dir: str | Path, *, only_flagged: bool = True) -> list[Path]:
    """Write one PNG per flagged column (every column with ``only_flagged=False``) and one
    ``drift_summary.png`` into ``out_dir`` (created if missing); return their paths, summary last.

    Numeric columns: the shares of rows in the reference-quantile (PSI) bins, reference next to
    current; categorical columns: the most frequent categories. Titles carry PSI, KS and JS.
    """
    if not isinstance(result, DriftResult):
        raise InvalidArgumentError(argument="result", expected="a DriftResult", found=type(result).__name__)
    if not isinstance(out_dir, (str, Path)) or not str(out_dir).strip():
        raise InvalidArgumentError(argument="out_dir", expected="a directory path", found=repr(out_dir))
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    used: set[str] = set()
    for item in result.features:
        if (only_flagged and not item.drifted) or not item.bins:
            continue
        path = folder / _file_name(item.feature, used)
        _save(_feature_figure(item), path)
        paths.append(path)
    summary = folder / "drift_summary.png"
    _save(_summary_figure(result), summary)
    paths.append(summary)
    log.info("drift plots: %d file(s) in %s", len(paths), folder)
    return paths


def _file_name(feature: str, used: set[str]) -> str:
    stem = "drift_" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", feature).strip("._") or "column")
    name, n = stem, 1
    while name in used or name == "drift_summary":
        n += 1
        name = f"{stem}_{n}"
    used.add(name)
    return name + ".png"


def _save(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", dpi=100)


def _metrics_text(item: FeatureDrift) -> str:
    parts = [f"{label} {value:.3f}" for label, value in (("PSI", item.psi), ("KS", item.ks), ("JS", item.js)) if value is not None]
    parts.append(f"NULL {item.reference_null_share:.1%} → {item.current_null_share:.1%}")
    return " · ".join(parts)


def _plotted_bins(item: FeatureDrift) -> list[Bin]:
    bins = list(item.bins)
    if item.kind == "numeric" or len(bins) <= MAX_CATEGORIES_PLOTTED:
        return bins
    kept, rest = bins[: MAX_CATEGORIES_PLOTTED - 1], bins[MAX_CATEGORIES_PLOTTED - 1 :]
    other = Bin(label=f"other ({len(rest)})", reference=sum(b.reference for b in rest), current=sum(b.current for b in rest))
    return [*kept, other]


def _feature_figure(item: FeatureDrift) -> Figure:
    from matplotlib.figure import Figure

    bins = _plotted_bins(item)
    ref_total = sum(b.reference for b in item.bins) or 1
    cur_total = sum(b.current for b in item.bins) or 1
    positions = list(range(len(bins)))
    width = 0.4
    figure = Figure(figsize=(max(6.0, 0.55 * len(bins) + 2.0), 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.bar([p - width / 2 for p in positions], [b.reference / ref_total for b in bins], width, label="reference", color=_REFERENCE)
    axes.bar([p + width / 2 for p in positions], [b.current / cur_total for b in bins], width, label="current", color=_CURRENT)
    axes.set_xticks(positions, [b.label for b in bins], rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("share of non-NULL rows")
    axes.set_xlabel("reference-quantile bin" if item.kind == "numeric" else "category")
    role = ", prediction" if item.role == "prediction" else ""
    flag = f" — DRIFTED ({', '.join(item.flagged_by)})" if item.drifted else ""
    axes.set_title(f"{item.feature} ({item.kind}{role}){flag}\n{_metrics_text(item)}", fontsize=10)
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    return figure


def _summary_figure(result: DriftResult) -> Figure:
    from matplotlib.figure import Figure

    items = sorted((f for f in result.features if f.psi is not None), key=lambda f: f.psi or 0.0)
    figure = Figure(figsize=(8.0, max(3.0, 0.35 * len(items) + 1.5)), layout="constrained")
    axes = figure.add_subplot()
    if items:
        default = result.config.thresholds.psi
        visible = max([f.psi or 0.0 for f in items] + [default or 0.0]) * 1.15
        names = []
        for index, f in enumerate(items):  # per-column PSI thresholds that differ from the default
            name = f"{f.feature} (prediction)" if f.role == "prediction" else f.feature
            own = f.thresholds.psi
            if own != default:
                if own is not None and own <= visible:
                    axes.plot([own] * 2, [index - 0.4, index + 0.4], color="black", linewidth=1.5)
                else:
                    name += " [PSI threshold: off]" if own is None else f" [PSI threshold {own:g}]"
            names.append(name)
        positions = list(range(len(items)))
        axes.barh(positions, [f.psi or 0.0 for f in items], color=[_FLAGGED if f.drifted else _OK for f in items])
        axes.set_yticks(positions, names)
    else:
        axes.text(0.5, 0.5, "no column has a PSI", ha="center", va="center", transform=axes.transAxes)
    if result.config.thresholds.psi is not None:
        axes.axvline(result.config.thresholds.psi, color="black", linestyle="--", label=f"threshold {result.config.thresholds.psi:g}")
        axes.legend(loc="lower right")
    axes.set_xlabel("PSI (red: drifted by any metric)")
    axes.set_title(
        f"Drift: {len(result.flagged)} of {len(result.features)} columns flagged "
        f"({result.reference_rows:,} reference vs {result.current_rows:,} current rows)", fontsize=10,
    )
    axes.grid(axis="x", alpha=0.3)
    return figure
