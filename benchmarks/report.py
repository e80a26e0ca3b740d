"""benchmarks/RESULTS.md and the plots, regenerated from benchmarks/results.json.

    python -m benchmarks.report            # after editing results.json or the notes

Everything below the line ``<!-- notes: kept when the report is regenerated -->`` in an existing
RESULTS.md (hand-written observations) is carried over unchanged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["write_report"]

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
NOTES_MARKER = "<!-- notes: kept when the report is regenerated -->"
SIZE_ORDER = ["tiny", "small", "medium", "dense", "skewed", "large"]
ENGINE = "engine"
RANGE_JOIN = ("range_join_sql", "feast")


def _sizes(results: dict[str, Any], bench: str) -> list[str]:
    present = set(results.get("results", {}).get(bench, {}))
    return [s for s in SIZE_ORDER if s in present and s != "tiny"]


def _plans(results: dict[str, Any], bench: str) -> list[str]:
    names: list[str] = []
    for size in _sizes(results, bench):
        for name in results["results"][bench][size]:
            if name not in names:
                names.append(name)
    return names


def _entry(results: dict[str, Any], bench: str, size: str, plan: str) -> dict[str, Any] | None:
    return results.get("results", {}).get(bench, {}).get(size, {}).get(plan)


def _median(results: dict[str, Any], bench: str, size: str, plan: str) -> float | None:
    entry = _entry(results, bench, size, plan)
    return entry["median"] if entry and entry.get("status") == "ok" else None


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "–"
    status = entry.get("status")
    if status == "ok":
        if len(entry["times"]) == 1:
            return f"{entry['median']:.1f} s (1 run)"
        return f"**{entry['median']:.1f} s** ({entry['min']:.1f}–{entry['max']:.1f})"
    if status == "timeout":
        return entry["detail"]
    if status == "WRONG":
        took = f" after {entry['wrong_run_s']:.0f} s" if entry.get("wrong_run_s") else ""
        return f"WRONG{took} ({entry['detail']})"
    if status == "unavailable":
        return "not available"
    return f"failed: {entry.get('detail', '')[:80]}"


def _timeout_s(entry: dict[str, Any]) -> float | None:
    """The timeout a "did not finish in N s" entry ran under."""
    import re

    match = re.search(r"did not finish in (\d+(?:\.\d+)?) s", entry.get("detail", ""))
    return float(match[1]) if match else None


def _fmt_ratio(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.3f}×"


def _table(results: dict[str, Any], bench: str) -> list[str]:
    sizes = _sizes(results, bench)
    facts = results.get("sizes", {})
    head = ["Plan", "Code", *[f"{s} (F={facts[s]['features']:,}, S={facts[s]['spine']:,})" for s in sizes]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for plan in _plans(results, bench):
        any_entry = next(e for s in sizes if (e := _entry(results, bench, s, plan)))
        cells = [_cell(_entry(results, bench, s, plan)) for s in sizes]
        lines.append(f"| {any_entry['label']} | {any_entry['source']} | " + " | ".join(cells) + " |")
    return lines


def _ratio_table(results: dict[str, Any], bench: str) -> list[str]:
    sizes = _sizes(results, bench)
    lines = ["| Plan | " + " | ".join(sizes) + " |", "|" + "---|" * (len(sizes) + 1)]
    for plan in _plans(results, bench):
        if plan == ENGINE:
            continue
        ratios = []
        for size in sizes:
            engine, other = _median(results, bench, size, ENGINE), _median(results, bench, size, plan)
            entry = _entry(results, bench, size, plan)
            if engine and other:
                ratios.append(_fmt_ratio(other / engine))
            elif engine and entry and entry.get("status") == "timeout" and _timeout_s(entry):
                ratios.append(f"> {_timeout_s(entry) / engine:.1f}×")
            else:
                ratios.append("–")
        label = next(e["label"] for s in sizes if (e := _entry(results, bench, s, plan)))
        lines.append(f"| {label} | " + " | ".join(ratios) + " |")
    return lines


def _targets(results: dict[str, Any]) -> list[str]:
    def ratio(bench: str, size: str, num: str, den: str) -> float | None:
        a, b = _median(results, bench, size, num), _median(results, bench, size, den)
        return a / b if a and b else None

    def verdict(value: float | None, ok: bool) -> str:
        return "not measured" if value is None else ("**met**" if ok else "**not met**")

    rows = []
    for plan in RANGE_JOIN:
        r = ratio("asof", "medium", plan, ENGINE)
        entry, engine = _entry(results, "asof", "medium", plan), _median(results, "asof", "medium", ENGINE)
        label = f"medium: engine ≥ 3× faster than the range-join SQL ({plan})"
        if r is None and entry and entry.get("status") == "timeout" and engine and _timeout_s(entry):
            bound = _timeout_s(entry) / engine
            rows.append((label, f"> {bound:.1f}× ({plan} did not finish in {_timeout_s(entry):.0f} s)",
                         "**met**" if bound >= 3 else "not shown (the bound is below 3×)"))
        elif r is not None or plan == "range_join_sql":
            rows.append((label, _fmt_ratio(r), verdict(r, r is not None and r >= 3)))
    r = ratio("asof", "medium", "tempo", ENGINE)
    rows.append(("medium: engine ≥ 2× faster than tempo's union", _fmt_ratio(r), verdict(r, r is not None and r >= 2)))
    skewed, medium = _median(results, "asof", "skewed", ENGINE), _median(results, "asof", "medium", ENGINE)
    r = skewed / medium if skewed and medium else None
    rows.append(("skewed ≤ 1.5× uniform medium (engine time)", _fmt_ratio(r), verdict(r, r is not None and r <= 1.5)))
    large = _median(results, "asof", "large", ENGINE)
    facts = results.get("sizes", {})
    if large and medium and "large" in facts:
        rows_ratio = (facts["large"]["features"] + facts["large"]["spine"]) / (
            facts["medium"]["features"] + facts["medium"]["spine"])
        r = large / medium
        rows.append((f"medium → large no worse than linear (time ratio ≤ row ratio {rows_ratio:.1f})",
                     _fmt_ratio(r), verdict(r, r <= rows_ratio)))
    else:
        rows.append(("medium → large no worse than linear", "–", "not measured"))
    r = ratio("windows", "medium", "range_join_groupby", ENGINE)
    engine_windows = _entry(results, "windows", "medium", ENGINE) or {}
    if r is None and engine_windows.get("status") == "WRONG":
        rows.append(("medium: windows ≥ 5× faster than range join + groupBy", "engine output WRONG", "**not met**"))
    else:
        rows.append(("medium: windows ≥ 5× faster than range join + groupBy", _fmt_ratio(r),
                     verdict(r, r is not None and r >= 5)))
    r = ratio("asof", "medium", ENGINE, "duckdb")
    rows.append(("medium: engine vs DuckDB ASOF JOIN on one node (engine / DuckDB; information)", _fmt_ratio(r), "–"))
    lines = ["| Target | Measured | Verdict |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return lines


def _plot(results: dict[str, Any], bench: str, path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    sizes, plans = _sizes(results, bench), _plans(results, bench)
    if not sizes or not plans:
        return None
    fig, ax = plt.subplots(figsize=(max(10, 1.8 * len(sizes) + 6), 5))
    width = 0.8 / len(plans)
    colors = matplotlib.colormaps["tab20"].colors
    handles: list[Any] = []
    timeout = results.get("settings", {}).get("timeout_s")
    for i, plan in enumerate(plans):
        xs, ys, marks = [], [], []
        for j, size in enumerate(sizes):
            entry = _entry(results, bench, size, plan)
            x = j - 0.4 + width * (i + 0.5)
            if entry and entry.get("status") == "ok":
                xs.append(x)
                ys.append(entry["median"])
            elif entry and entry.get("status") == "timeout" and (_timeout_s(entry) or timeout):
                marks.append((x, _timeout_s(entry) or timeout))
        label = next(e["label"] for s in sizes if (e := _entry(results, bench, s, plan)))
        color = colors[(2 * i) % 20 if i < 10 else (2 * i + 1) % 20]
        ax.bar(xs, ys, width, color=color)
        handles.append(Patch(color=color, label=label))
        for x, t in marks:
            ax.bar([x], [t], width, color=color, hatch="//", alpha=0.35)
            ax.text(x, t, "DNF", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_yscale("log")
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_ylabel("seconds, median (log scale)")
    title = "as-of join" if bench == "asof" else "window aggregates (7d, 30d mean + count)"
    ax.set_title(f"{title}: read Parquet → join → write Parquet, local[2]")
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _notes() -> str:
    if RESULTS_MD.exists():
        text = RESULTS_MD.read_text()
        if NOTES_MARKER in text:
            return text.split(NOTES_MARKER, 1)[1].strip("\n")
    return "## Observations\n\n(none yet)"


def render(results: dict[str, Any], plots: dict[str, Path | None]) -> str:
    m, st = results.get("machine", {}), results.get("settings", {})
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v)
    dates = sorted({e.get("measured_at", "") for b in results.get("results", {}).values()
                    for s in b.values() for e in s.values() if e.get("measured_at")})
    out = [
        "# Benchmark results: as-of join and window aggregations",
        "",
        "Generated by `python -m benchmarks.asof_bench` from `benchmarks/results.json` (regenerate the",
        "text and plots with `python -m benchmarks.report`). How to run and what each plan is: README.md.",
        "",
        f"* **Measured**: {dates[0] if dates else '?'} – {dates[-1] if dates else '?'}",
        f"* **Machine**: {m.get('cores')} cores, {m.get('memory_gib')} GiB RAM, CPU `{m.get('cpu')}`, {m.get('os')}",
        f"* **Java / Python**: {m.get('java')} / Python {m.get('python')}",
        f"* **Versions**: {versions}",
        f"* **Spark**: `{st.get('spark_master')}`, driver memory {st.get('driver_memory')}, "
        f"`spark.sql.shuffle.partitions={st.get('shuffle_partitions')}` (AQE on), UI off; one session for all "
        "Spark plans, its start-up not timed",
        "* **Method**: one run = read Parquet → join → write Parquet; the median of 3 runs (min–max in "
        "brackets) unless a cell says \"1 run\"; the first run of every plan is verified row for row against "
        "DuckDB; a run past the timeout is cancelled (\"did not finish in N s\") and the JVM restarted",
        "* **Noise**: the machine is shared with other engineers running test suites while these numbers were "
        "taken (load averages well above the 2 cores at times), so absolute times are noisy and inflated; "
        "read the ratios, and expect the lead's re-run on a quiet machine to replace these numbers. "
        "**Only cells measured in the same session compare**: on 2026-11-27 the small as-of cells of the "
        "engine, the engine without the hot-key check, tempo and the range-join SQL were re-measured together "
        "at 13:53-13:55 UTC on a quiet machine (load < 1); every other cell is from 10:25-11:39 UTC under load "
        "averages of 5-25 and is inflated several-fold (e.g. Feast's 160.6 s and asof_join_many's 55.0 s), so "
        "its ratio against the quiet engine cells is not meaningful.",
        "",
        "## As-of join (backward, by key, 3 feature columns)",
        "",
        *_table(results, "asof"),
        "",
        "Ratios: baseline time / engine time (> 1: the engine is faster).",
        "",
        *_ratio_table(results, "asof"),
        "",
    ]
    if plots.get("asof"):
        out += [f"![as-of join times]({plots['asof'].name})", ""]
    if results.get("results", {}).get("windows"):
        out += [
            "## Window aggregations (mean of f1 and row count over 7 and 30 days, at each spine row)",
            "",
            *_table(results, "windows"),
            "",
            *_ratio_table(results, "windows"),
            "",
        ]
        if plots.get("windows"):
            out += [f"![window aggregation times]({plots['windows'].name})", ""]
    out += ["## Targets (issue 3)", "", *_targets(results), "", NOTES_MARKER, "", _notes(), ""]
    return "\n".join(out)


def write_report(results: dict[str, Any]) -> list[Path]:
    plots = {b: _plot(results, b, HERE / f"{b}_times.png") for b in ("asof", "windows")}
    RESULTS_MD.write_text(render(results, plots))
    return [RESULTS_MD, *[p for p in plots.values() if p]]


def main(argv: list[str] | None = None) -> int:
    path = Path(argv[0]) if argv else HERE / "results.json"
    write_report(json.loads(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
