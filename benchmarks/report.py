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
        loads = entry.get("load") or []
        load = f" · load {sorted(loads)[len(loads) // 2]:.1f}" if loads else ""
        if len(entry["times"]) == 1:
            return f"{entry['median']:.1f} s (1 run){load}"
        return f"**{entry['median']:.1f} s** ({entry['min']:.1f}–{entry['max']:.1f}){load}"
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


def _ratio_table(results: dict[str, Any], bench: str, reference: str = ENGINE) -> list[str]:
    sizes = _sizes(results, bench)
    lines = ["| Plan | " + " | ".join(sizes) + " |", "|" + "---|" * (len(sizes) + 1)]
    for plan in _plans(results, bench):
        if plan == reference:
            continue
        ratios = []
        for size in sizes:
            engine, other = _median(results, bench, size, reference), _median(results, bench, size, plan)
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
    """Where each target of issue 12 stands, from cells measured in the same run (ratios)."""

    def med(bench: str, size: str, plan: str) -> float | None:
        return _median(results, bench, size, plan)

    def pick(bench: str, num: str, den: str, sizes: tuple[str, ...] = ("medium", "small")) -> tuple[str, float | None]:
        for size in sizes:
            a, b = med(bench, size, num), med(bench, size, den)
            if a and b:
                return size, a / b
        return sizes[0], None

    rows: list[tuple[str, str, str]] = []

    def add(label: str, size: str, value: float | None, ok: Any, want: str) -> None:
        if value is None:
            rows.append((label, "–", "not measured"))
            return
        where = "" if size == "medium" else f" (at {size}, medium not measured)"
        verdict = "information" if want == "–" else "**met**" if ok(value) else f"**not met** (target {want})"
        rows.append((label, _fmt_ratio(value) + where, verdict))

    size, r = pick("asof", "tempo", ENGINE)
    add("as-of medium: engine ≥ 3× faster than tempo (tempo / engine)", size, r, lambda v: v >= 3, "≥ 3×")
    size, r = pick("asof", "range_join_sql", ENGINE)
    add("as-of medium: engine ≥ 6× faster than the range-join SQL", size, r, lambda v: v >= 6, "≥ 6×")
    size, r = pick("asof", ENGINE, "duckdb")
    add("as-of medium: within 2.5× of DuckDB (engine / DuckDB)", size, r, lambda v: v <= 2.5, "≤ 2.5×")
    size, r = pick("asof", "engine_sweep", ENGINE)
    add("as-of: kernel vs the previous sweep strategy (sweep / kernel; information)", size, r, lambda v: True, "–")
    size, r = pick("many", "tempo_4", "engine_4")
    add("4-table lookup (2 key sets) ≥ 3× faster than 4 chained tempo joins", size, r, lambda v: v >= 3, "≥ 3×")
    size, r = pick("many", "engine_8", "engine_1")
    add("8 tables ≤ 3× one table (engine_8 / engine_1)", size, r, lambda v: v <= 3, "≤ 3×")
    skewed, medium = med("asof", "skewed", ENGINE), med("asof", "medium", ENGINE)
    add("skewed medium ≤ 1.25× uniform medium (engine)", "medium", skewed / medium if skewed and medium else None,
        lambda v: v <= 1.25, "≤ 1.25×")
    for bench, what in (("windows", "windows at a spine"), ("windows_events", "windows without a spine")):
        for sizes in (("medium", "small"), ("dense",)):
            size, r = pick(bench, "range_join_groupby", ENGINE, sizes)
            add(f"{what}, {sizes[0]}: ≥ 5× faster than range join + groupBy", size, r, lambda v: v >= 5, "≥ 5×")
            size, r = pick(bench, ENGINE, "duckdb", sizes)
            add(f"{what}, {sizes[0]}: within 3× of DuckDB (engine / DuckDB)", size, r, lambda v: v <= 3, "≤ 3×")
    large = med("asof", "large", ENGINE)
    add("large (F=50M) ≤ 6× medium (engine)", "medium", large / medium if large and medium else None,
        lambda v: v <= 6, "≤ 6×")
    # the same through the feature store: a view over engine-written (laid-out) groups -> training_data
    def cross(num: tuple[str, str], den: tuple[str, str], sizes: tuple[str, ...] = ("medium", "small")):
        for size in sizes:
            a, b = med(num[0], size, num[1]), med(den[0], size, den[1])
            if a and b:
                return size, a / b
        return sizes[0], None

    store = ("store", "store_1")
    size, r = cross(("asof", "tempo"), store)
    add("store, medium: ≥ 3× faster than tempo (tempo / view over a laid-out group)", size, r, lambda v: v >= 3, "≥ 3×")
    size, r = cross(("asof", "range_join_sql"), store)
    add("store, medium: ≥ 6× faster than the range-join SQL", size, r, lambda v: v >= 6, "≥ 6×")
    size, r = cross(store, ("asof", "duckdb"))
    add("store, medium: within 2.5× of DuckDB (view / DuckDB)", size, r, lambda v: v <= 2.5, "≤ 2.5×")
    size, r = cross(("many", "tempo_4"), ("store", "store_4"))
    add("store, 4 lookups (2 key sets) ≥ 3× faster than 4 chained tempo joins", size, r, lambda v: v >= 3, "≥ 3×")
    size, r = cross(("store", "store_8"), store)
    add("store, 8 lookups ≤ 3× one lookup (store_8 / store_1)", size, r, lambda v: v <= 3, "≤ 3×")
    size, r = cross(("store", "store_flat"), store)
    add("store: the layout's gain (group without layout / laid-out group; information)", size, r, lambda v: True, "–")
    s_large, s_medium = med("store", "large", "store_1"), med("store", "medium", "store_1")
    add("store, large (F=50M) ≤ 6× medium", "medium", s_large / s_medium if s_large and s_medium else None,
        lambda v: v <= 6, "≤ 6×")
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
    title = {"asof": "as-of join", "many": "as-of join, several tables", "store": "feature view training_data",
             "windows": "window aggregates at a spine (7d, 30d mean + count)",
             "windows_events": "window aggregates at every event (no spine)"}.get(bench, bench)
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


def _noise_line(results: dict[str, Any]) -> str:
    loads = [x for b in results.get("results", {}).values() for sz in b.values() for e in sz.values()
             for x in e.get("load", [])]
    worst = max(loads, default=0.0)
    head = ("* **Noise**: the load average (1-minute, mean of the start and end of each run) is printed beside "
            "each cell as `load N`; with 2 cores, a Spark run itself brings it to about 2, more means other work. ")
    if worst <= 3.0:
        return head + f"The machine was otherwise quiet (highest run load {worst:.1f}); compare ratios of cells of the same run."
    return head + (f"Some runs shared the machine (highest run load {worst:.1f}): absolute times there are inflated; "
                   "compare ratios of cells measured in the same run.")


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
        _noise_line(results),
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
    sections = (
        ("many", "Several tables onto one spine (asof_join_many; half of the tables on a second key set)", "engine_4"),
        ("store", "Through the feature store (a feature view over engine-written groups: training_data -> Parquet)",
         "store_1"),
        ("windows", "Window aggregations (mean of f1 and row count over 7 and 30 days, at each spine row)", ENGINE),
        ("windows_events", "Window aggregations without a spine (the same aggregates at every event)", ENGINE),
    )
    for bench, title, reference in sections:
        if not results.get("results", {}).get(bench):
            continue
        out += [f"## {title}", "", *_table(results, bench), "", f"Ratios: plan time / {reference} time.", "",
                *_ratio_table(results, bench, reference), ""]
        if plots.get(bench):
            out += [f"![{bench} times]({plots[bench].name})", ""]
    out += ["## Targets (issue 12)", "", *_targets(results), "", NOTES_MARKER, "", _notes(), ""]
    return "\n".join(out)


def write_report(results: dict[str, Any]) -> list[Path]:
    plots = {b: _plot(results, b, HERE / f"{b}_times.png") for b in ("asof", "many", "store", "windows", "windows_events")}
    RESULTS_MD.write_text(render(results, plots))
    return [RESULTS_MD, *[p for p in plots.values() if p]]


def main(argv: list[str] | None = None) -> int:
    path = Path(argv[0]) if argv else HERE / "results.json"
    write_report(json.loads(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
