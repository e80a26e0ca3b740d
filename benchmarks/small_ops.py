"""The fixed cost of small feature-store operations (issue 15): create a group, insert a few
thousand rows with validation and statistics, run a feature pipeline over one day.

    .venv/bin/python -m benchmarks.small_ops [--label after] [--runs 5] [--breakdown]

Each operation runs ``--runs`` times on a throw-away store (local[2]; the first run of each is a
warm-up, reported apart); a row gives the median wall time, the Spark jobs and the Delta commits
of one run (``engine.repository.profile.Profiler``). ``--breakdown`` adds the engine functions
the median insert spends its time in (cProfile, cumulative seconds). The result is appended to
``benchmarks/small_ops.json`` under ``--label`` and ``benchmarks/SMALL_OPS.md`` is rewritten
from every label there (plus the commentary in ``benchmarks/SMALL_OPS_NOTES.md``), so a before /
after comparison is two runs of this script on two commits (the engine imported is the one of
the working directory; the script prints its path).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCHEMA = "device STRING, ts TIMESTAMP, temp DOUBLE, cnt BIGINT, site STRING"
HOURLY = "device STRING, ts TIMESTAMP, mean_temp DOUBLE, events BIGINT"
TARGETS = {"create a group": 1.0, "insert 5,000 rows (validation + statistics)": 1.5, "pipeline run over one day": 2.0}


def _batch(spark: Any, rows: int, day: int, seed: int) -> Any:
    from pyspark.sql import functions as F

    start = (T0 + timedelta(days=day)).timestamp()
    return spark.range(rows).select(
        F.concat(F.lit("d"), (F.col("id") % 50).cast("string")).alias("device"),
        (F.lit(start) + F.col("id") * (86400.0 / rows) + seed * 1e-3).cast("timestamp").alias("ts"),
        (F.rand(seed) * 40 - 5).alias("temp"),
        (F.col("id") % 7).alias("cnt"),
        F.concat(F.lit("s"), (F.col("id") % 5).cast("string")).alias("site"),
    )


def _hourly(spark: Any, inputs: dict[str, Any], time_range: Any) -> Any:
    from pyspark.sql import functions as F

    return (inputs["events"].groupBy("device", F.date_trunc("hour", "ts").alias("ts"))
            .agg(F.avg("temp").alias("mean_temp"), F.count("*").alias("events")))


def _timed(profiler: Any, name: str, action: Any) -> dict[str, Any]:
    with profiler.stage(name):
        action()
    return profiler.stages[name]


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in rows]
    middle = sorted(rows, key=lambda r: r["seconds"])[len(rows) // 2]
    return {"seconds": round(statistics.median(seconds), 2), "min": min(seconds), "max": max(seconds),
            "spark_jobs": middle["spark_jobs"], "delta_commits": middle["delta_commits"], "runs": len(rows)}


def _breakdown(action: Any, top: int = 18) -> list[tuple[str, float]]:
    profile = cProfile.Profile()
    profile.enable()
    action()
    profile.disable()
    stats = pstats.Stats(profile, stream=io.StringIO())
    found = []
    for (file, line, function), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "/engine/" in file and function not in ("<module>", "<lambda>", "<genexpr>", "<listcomp>"):
            found.append((f"{file.split('/engine/')[-1]}:{line} {function}", round(cumulative, 3)))
    return sorted(found, key=lambda item: -item[1])[:top]


def run(runs: int, with_breakdown: bool) -> dict[str, Any]:
    import engine
    from engine.pipelines.feature import FeaturePipeline
    from engine.repository.profile import Profiler
    from engine.session import build_spark
    from engine.store.feature_store import FeatureStore
    from engine.validation import Expectation, ExpectationSuite

    print(f"engine imported from {Path(engine.__file__).parent}")
    spark = build_spark("local")
    root = Path(tempfile.mkdtemp(prefix="ff-small-ops-")) / "store"
    store = FeatureStore(spark, root)
    profiler = Profiler(spark, str(root))
    suite = ExpectationSuite("events", (
        Expectation("expect_column_values_to_be_between", {"column": "temp", "min_value": -50, "max_value": 60}),
        Expectation("expect_column_values_to_not_be_null", {"column": "device"}),
    ), policy="reject")
    results: dict[str, dict[str, Any]] = {}

    def measure(name: str, actions: list[Any]) -> None:
        rows = [_timed(profiler, f"{name} #{i}", action) for i, action in enumerate(actions)]
        results[name] = {**_median(rows[1:]), "first": rows[0]["seconds"]}
        print(f"{name}: {results[name]}", flush=True)

    measure("create a group", [
        (lambda i=i: store.create_feature_group(f"g{i}", primary_key="device", event_time="ts", schema=SCHEMA,
                                                expectations=suite)) for i in range(runs + 1)])
    group = store.create_feature_group("events", primary_key="device", event_time="ts", schema=SCHEMA,
                                       expectations=suite)
    batches = [_batch(spark, 5000, day, seed=day).cache() for day in range(runs + 1)]
    for b in batches:
        b.count()
    measure("insert 5,000 rows (validation + statistics)", [(lambda b=b: group.insert(b)) for b in batches])
    small = [_batch(spark, 48, 40 + day, seed=day).cache() for day in range(runs + 1)]
    for b in small:
        b.count()
    measure("insert 48 rows (validation + statistics)", [(lambda b=b: group.insert(b)) for b in small])

    hourly = store.create_feature_group("hourly", primary_key="device", event_time="ts", schema=HOURLY)
    pipeline = FeaturePipeline("hourly", _hourly, inputs={"events": group}, output=hourly,
                               lookback=timedelta(0), step=timedelta(days=1))
    measure("pipeline run over one day", [
        (lambda day=day: pipeline.run(T0 + timedelta(days=day), T0 + timedelta(days=day + 1)))
        for day in range(runs + 1)])

    breakdown = None
    if with_breakdown:
        extra = _batch(spark, 5000, 60, seed=60).cache()
        extra.count()
        breakdown = _breakdown(lambda: group.insert(extra))
    spark.stop()
    return {"operations": results, "breakdown": breakdown}


def _markdown(entries: list[dict[str, Any]]) -> str:
    lines = [
        "# Small operations: the fixed cost per operation (issue 15)",
        "",
        "`python -m benchmarks.small_ops --label <label>` on local[2]; median of the runs after a warm-up",
        "(first run apart), Spark jobs and Delta commits of the median run. Each column is one run of",
        "the script on the commit named; the load average is the machine's at the start of that run.",
        "",
    ]
    names = list(dict.fromkeys(n for e in entries for n in e["operations"]))
    header = "| operation | target | " + " | ".join(f"{e['label']} ({e['commit']})" for e in entries) + " |"
    lines += [header, "|" + "---|" * (2 + len(entries))]
    for name in names:
        cells = []
        for e in entries:
            r = e["operations"].get(name)
            cells.append("-" if r is None else f"{r['seconds']:.2f} s, {r['spark_jobs']} jobs, {r['delta_commits']} commits"
                                                 f" (first {r['first']:.1f} s)")
        target = TARGETS.get(name)
        lines.append(f"| {name} | {'-' if target is None else f'<= {target} s'} | " + " | ".join(cells) + " |")
    lines += ["", "| run | when (UTC) | load average (1/5/15 min) | machine |", "|---|---|---|---|"]
    for e in entries:
        m = e["machine"]
        lines.append(f"| {e['label']} ({e['commit']}) | {e['when']} | {e['load']} | {m['cores']} cores, "
                     f"{m['memory_gib']} GiB, {m['cpu']}, Spark {m['versions'].get('pyspark')}, "
                     f"Delta {m['versions'].get('delta-spark')} |")
    for e in entries:
        if e.get("breakdown"):
            lines += ["", f"Where one insert of 5,000 rows spends its time ({e['label']}, cProfile, cumulative s):", "",
                      "| engine function | seconds |", "|---|---|"]
            lines += [f"| `{name}` | {seconds:.3f} |" for name, seconds in e["breakdown"]]
    notes = HERE / "SMALL_OPS_NOTES.md"  # what the runs say, kept apart so a re-run keeps it
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    from benchmarks.machine import file_entry, git_commit, machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="current")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = git_commit()
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    result = run(args.runs, args.breakdown)
    entry = {"label": args.label, "commit": commit, "when": started, "load": load,
             "machine": machine_info(), **result}
    entries = file_entry(HERE / "small_ops.json", entry)
    (HERE / "SMALL_OPS.md").write_text(_markdown(entries))
    print(_markdown([entry]))


if __name__ == "__main__":
    main()
