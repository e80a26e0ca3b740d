"""A feature view's lookups by strategy, on a store a repository run has filled (e.g. the demo's).

    .venv/bin/python -m benchmarks.view_strategies [--repo examples/flights] [--view flight_delay]
        [--spine flight_spine] [--runs 5]

Times ``view.training_data(spine)`` (written to Spark's ``noop`` sink: the lookup, not a Delta
write) over the whole spine table and over its last month (a scoring batch's size), with the
strategy the engine chooses and with small laid-out groups never read whole
(``WHOLE_ROWS = 0``: the layout strategy, one spine shuffle per key set), alternating, after one
warm-up run of each; medians. Checks both give the same rows. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default="examples/flights")
    parser.add_argument("--view", default="flight_delay")
    parser.add_argument("--spine", default="flight_spine", help="the spine table (a source of the repository)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from pyspark.sql import functions as F

    from benchmarks.machine import git_commit, machine_info, open_repository_store
    from engine.store import delta
    from engine.temporal import _asof_layout

    repo, spark, fs = open_repository_store(args.repo)
    view = fs.get_feature_view(args.view)
    spine = delta.read(spark, repo.table_path(args.spine, fs))
    last = spine.agg(F.max(view.spine_time)).first()[0]
    spines = {"whole spine": spine, "last 31 days": spine.where(F.col(view.spine_time) > F.lit(last - timedelta(days=31)))}
    default = _asof_layout.WHOLE_ROWS
    modes = {"chosen": default, "layout (WHOLE_ROWS=0)": 0}
    rows = []
    for name, frame in spines.items():
        count = frame.count()
        times: dict[str, list[float]] = {m: [] for m in modes}
        strategies = {}
        for run in range(args.runs + 1):
            for mode, limit in modes.items():
                _asof_layout.WHOLE_ROWS = limit
                strategies[mode] = "+".join(p.strategy for p in view.explain(frame))
                started = time.perf_counter()
                view.training_data(frame).write.format("noop").mode("overwrite").save()
                if run:  # the first run of each warms up
                    times[mode].append(time.perf_counter() - started)
                print(f"{name}, {mode}, run {run}/{args.runs}: {time.perf_counter() - started:.2f} s", flush=True)
        _asof_layout.WHOLE_ROWS = default
        got = sorted(map(tuple, view.training_data(frame).collect()), key=repr)
        _asof_layout.WHOLE_ROWS = 0
        assert got == sorted(map(tuple, view.training_data(frame).collect()), key=repr), "strategies differ"
        _asof_layout.WHOLE_ROWS = default
        base = statistics.median(times["layout (WHOLE_ROWS=0)"])
        for mode in modes:
            median = statistics.median(times[mode])
            rows.append(f"| {name} | {count:,} | {mode}: {strategies[mode]} | {median:.2f} "
                        f"({min(times[mode]):.2f}-{max(times[mode]):.2f}) | {base / median:.2f}x |")
    info = machine_info()
    print(f"\n{args.view} at {git_commit()}, {info.get('cpu')}, {os.cpu_count()} cores, load {os.getloadavg()}")
    print("| spine | rows | strategy per pass | seconds, median (range) | layout / this |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
