"""The demo's per-stage profile, before and after (issue 15): every run of ``make demo`` writes its
profile (seconds, Spark jobs and Delta commits per stage) into the run summary; this script files
one summary under a label and rewrites ``benchmarks/DEMO_PROFILE.md`` from every label filed.

    rm -rf warehouse/flights && make demo        # a fresh store: every stage does its full work
    .venv/bin/python -m benchmarks.demo_profile --label "<what changed>" [--load "2.1 / 1.9 / 1.8"]

``--summary`` reads another run summary (default: the demo's own,
``warehouse/flights/_reports/run_summary/run_summary.json``). ``--load`` records the load average
at the start of the run (the script runs after it; give what ``uptime`` said before ``make demo``).
The commit recorded is the working directory's HEAD (``+changes`` if it has uncommitted changes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SUMMARY = HERE.parent / "warehouse" / "flights" / "_reports" / "run_summary" / "run_summary.json"
TARGETS = {"backfill": 45.0, "training data": 15.0, "score": 15.0, "pipeline": 150.0}


def _group(stage: str) -> str:
    """The issue's stage families: every backfill together, training data, train, score, ..."""
    return stage.split(" ", 1)[0] if not stage.startswith("training data") else "training data"


def _entry(summary: dict[str, Any], label: str, load: str) -> dict[str, Any]:
    from benchmarks.machine import git_commit, machine_info

    profile = summary.get("profile")
    if not isinstance(profile, dict) or not profile:
        raise SystemExit("the run summary has no 'profile': run `make demo` with this repository's jobs first")
    return {"label": label, "commit": git_commit(), "load": load,
            "filed": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": machine_info(),
            "stages": profile, "seconds": summary.get("seconds")}


def _markdown(entries: list[dict[str, Any]]) -> str:
    lines = [
        "# The demo's per-stage profile (issue 15)",
        "",
        "`rm -rf warehouse/flights && make demo`, then `python -m benchmarks.demo_profile --label <label>`.",
        "Seconds, Spark jobs and Delta commits per stage of `jobs.run --repo examples/flights` on a fresh",
        "store (local[2]); one column per run. Targets from issue 15 (local[2], quiet machine).",
        "",
    ]
    stages = list(dict.fromkeys(s for e in entries for s in e["stages"]))
    lines += ["| stage | target | " + " | ".join(f"{e['label']} ({e['commit']})" for e in entries) + " |",
              "|" + "---|" * (2 + len(entries))]
    for stage in stages:
        cells = []
        for e in entries:
            row = e["stages"].get(stage)
            commits = "" if row is None or row.get("delta_commits") is None else f", {row['delta_commits']} commits"
            cells.append("-" if row is None else f"{row['seconds']:.1f} s, {row.get('spark_jobs', '-')} jobs{commits}")
        inside = any((e["stages"].get(stage) or {}).get("within") for e in entries)
        lines.append(f"| {'&nbsp;&nbsp;' + stage + ' (side by side)' if inside else stage} | - | " + " | ".join(cells) + " |")
    for group, target in TARGETS.items():
        cells = []
        for e in entries:
            chosen = [r["seconds"] for s, r in e["stages"].items()  # stages run inside a block are in its time
                      if not r.get("within") and (group == "pipeline" or _group(s) == group)]
            cells.append(f"**{sum(chosen):.1f} s**" if chosen else "-")
        lines.append(f"| all {group} stages | <= {target:.0f} s | " + " | ".join(cells) + " |")
    lines += ["", "| run | filed (UTC) | load at start (1/5/15 min) | machine |", "|---|---|---|---|"]
    for e in entries:
        m = e["machine"]
        lines.append(f"| {e['label']} ({e['commit']}) | {e['filed']} | {e['load'] or 'not recorded'} | "
                     f"{m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, Spark {m['versions'].get('pyspark')}, "
                     f"Delta {m['versions'].get('delta-spark')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--summary", type=Path, default=DEFAULT_SUMMARY)
    parser.add_argument("--load", default="", help="the load average when the run started (from `uptime`)")
    args = parser.parse_args()
    if not args.summary.exists():
        raise SystemExit(f"no run summary at {args.summary}: run `make demo` first")
    entry = _entry(json.loads(args.summary.read_text()), args.label, args.load)
    from benchmarks.machine import file_entry

    entries = file_entry(HERE / "demo_profile.json", entry)
    (HERE / "DEMO_PROFILE.md").write_text(_markdown(entries))
    print(_markdown([entry]))


if __name__ == "__main__":
    main()
