"""Benchmark the engine's as-of join and window aggregations against the peers' plans.

    python -m benchmarks.asof_bench --sizes small,medium,dense,skewed[,large] --repeats 3 \\
        [--plans engine,tempo,...] [--bench asof,windows] [--timeout-s 600]

For every size: the data is generated once (benchmarks/data/<size>/, seeded), the DuckDB
references are computed once, then every selected plan runs ``--repeats`` times: read Parquet ->
join -> write Parquet. Spark plans share one SparkSession (local[2], built by
``engine.session.build_spark``, JVM start-up not timed). The first run of each plan is checked
row for row against the reference; a wrong plan is recorded as WRONG and not timed further. A
run past ``--timeout-s`` is cancelled and recorded as "did not finish". Results are merged into
benchmarks/results.json (re-running one size or plan updates only those entries) and
benchmarks/RESULTS.md + the plots are regenerated from it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import verify
from benchmarks.asof_plans import ASOF_PLANS
from benchmarks.datagen import SIZES, DataPaths, ensure_data
from benchmarks.machine import machine_info
from benchmarks.many_plans import MANY_PLANS
from benchmarks.plan import Plan
from benchmarks.store_plans import STORE_PLANS
from benchmarks.window_plans import EVENT_WINDOW_PLANS, WINDOW_PLANS

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results.json"
SHUFFLE_PARTITIONS = 16  # tuned on local[2]: see README.md ("Settings")
DRIVER_MEMORY = "12g"
BENCHES = {"asof": ASOF_PLANS, "many": MANY_PLANS, "store": STORE_PLANS, "windows": WINDOW_PLANS,
           "windows_events": EVENT_WINDOW_PLANS}


def log(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)


def spark_settings(shuffle_partitions: int) -> dict[str, str]:
    return {
        "spark.master": "local[2]",
        "spark.driver.memory": DRIVER_MEMORY,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }


class SparkHolder:
    """Builds the one SparkSession on first use (so local-only runs start no JVM)."""

    def __init__(self, shuffle_partitions: int, session=None) -> None:
        self.shuffle_partitions = shuffle_partitions
        self._spark = session
        self._owned = session is None

    def get(self):
        if self._spark is None:
            from engine.session import build_spark

            started = time.perf_counter()
            self._spark = build_spark("local", spark_settings(self.shuffle_partitions))
            self._spark.sparkContext.setLogLevel("ERROR")
            _warm_up(self._spark)
            log(f"SparkSession ready and warmed up in {time.perf_counter() - started:.1f}s (not timed)")
        return self._spark

    def alive(self) -> bool:
        """False when the JVM process is gone (so every later call would fail)."""
        from pyspark import SparkContext

        proc = getattr(SparkContext._gateway, "proc", None)
        return proc is None or proc.poll() is None

    def kill(self) -> None:
        """Kill the JVM (a cancelled Spark job's tasks can keep running and hold memory until
        they finish, which would slow every later plan); the next ``get()`` starts a fresh one.
        Only for a session this holder built itself."""
        if self._spark is None or not self._owned:
            return
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        gateway = SparkContext._gateway
        proc = getattr(gateway, "proc", None)
        if proc is not None:  # spark-submit execs the JVM: this is the JVM's own process
            proc.kill()
            proc.wait(60)
        with contextlib.suppress(Exception):  # the JVM is gone: closing the socket may fail
            gateway.shutdown()
        SparkContext._gateway = None
        SparkContext._jvm = None
        SparkContext._active_spark_context = None
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None
        self._spark = None
        log("killed the Spark JVM after a timeout; the next Spark plan starts a fresh one (not timed)")

    def stop(self) -> None:
        if self._spark is not None and self._owned:
            self._spark.stop()
        self._spark = None


def _warm_up(spark) -> None:
    """One untimed query through the operators the plans use (Parquet scan and write, shuffle,
    sort, window, join, aggregate), so the first plan after a JVM start does not pay for
    class loading and JIT compilation alone."""
    import tempfile

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    with tempfile.TemporaryDirectory(prefix="bench-warmup-") as folder:
        base = spark.range(1_000_000).select((F.col("id") % 1000).alias("k"), F.col("id").alias("t"))
        base.write.mode("overwrite").parquet(folder + "/in")
        df = spark.read.parquet(folder + "/in")
        w = Window.partitionBy("k").orderBy("t").rowsBetween(Window.unboundedPreceding, Window.currentRow)
        swept = df.withColumn("m", F.last(F.struct("t"), ignorenulls=True).over(w))
        counts = df.groupBy("k").agg(F.count(F.lit(1)).alias("n"))
        swept.join(counts, "k").write.mode("overwrite").parquet(folder + "/out")


# ---------------------------------------------------------------- one timed run


class TimeoutExpired(Exception):  # noqa: N818 - reads as the event, like subprocess.TimeoutExpired
    pass


def _run_spark(spark, plan: Plan, paths: DataPaths, out: Path, timeout_s: float) -> float:
    """Build the plan and write its result, in a thread whose Spark jobs can be cancelled."""
    from pyspark import InheritableThread

    sc = spark.sparkContext
    group = f"bench-{uuid.uuid4().hex[:8]}"
    outcome: dict[str, Any] = {}

    def work() -> None:
        sc.setJobGroup(group, plan.name, interruptOnCancel=True)
        try:
            df = plan.build(spark, paths.features, paths.spine)
            df.write.mode("overwrite").parquet(str(out))
        except BaseException as err:
            outcome["error"] = err

    started = time.perf_counter()
    thread = InheritableThread(target=work, daemon=True)
    thread.start()
    thread.join(timeout_s)
    elapsed = time.perf_counter() - started
    if thread.is_alive():
        sc.cancelJobGroup(group)
        thread.join(30)
        raise TimeoutExpired(f"did not finish in {timeout_s:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return elapsed


def _run_local(plan: Plan, paths: DataPaths, out: Path) -> float:
    started = time.perf_counter()
    plan.run(paths.features, paths.spine, out)
    return time.perf_counter() - started


def _verify(bench: str, plan: Plan, out: Path, reference: Path) -> verify.VerifyResult:
    if bench == "asof":
        return verify.verify_asof(out, reference, plan.output)
    if bench in ("many", "store"):  # every table's columns against the one-table reference
        checks = [verify.verify_asof(out, reference, cols) for cols in plan.outputs]
        bad = [c for c in checks if not c.ok]
        detail = f"identical for all {len(checks)} tables" if not bad else bad[0].detail
        return verify.VerifyResult(not bad, checks[0].rows, detail)
    if bench == "windows_events":
        return verify.verify_windows(out, reference, ids=("key", "ts"))
    return verify.verify_windows(out, reference, spine_id=plan.output.spine_id)


def _run_once(bench: str, plan: Plan, paths: DataPaths, entry: dict[str, Any], i: int, repeats: int,
              reference: Path, timeout_s: float, spark: SparkHolder) -> None:
    """One timed run of ``plan``; verifies the first run; sets ``entry["status"]`` when it stops."""
    tag = f"[{bench}/{paths.size.name}] {plan.name}"
    out = paths.folder / "out" / f"{bench}_{plan.name}"
    shutil.rmtree(out, ignore_errors=True)
    session = spark.get() if plan.kind == "spark" else None
    load_before = os.getloadavg()[0]
    try:
        if plan.kind == "spark":
            seconds = _run_spark(session, plan, paths, out, timeout_s)
        else:
            seconds = _run_local(plan, paths, out)
    except TimeoutExpired as err:
        log(f"{tag} run {i}/{repeats}: {err}")
        entry.update(status="timeout", detail=str(err))
        spark.kill()
        session = None
        return
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0][:300]
        log(f"{tag} run {i}/{repeats}: FAILED {type(err).__name__}: {first}")
        traceback.print_exc(limit=3)
        entry.update(status="failed", detail=f"{type(err).__name__}: {first}")
        if session is not None and not spark.alive():
            entry["detail"] += " (the Spark JVM died, e.g. killed by the kernel's OOM killer)"
            spark.kill()
            session = None
        return
    finally:
        if session is not None:
            try:
                if plan.after is not None:
                    plan.after(session)
                session.catalog.clearCache()
            except Exception as err:
                log(f"{tag}: could not reset the session ({type(err).__name__})")
        gc.collect()
    load = round((load_before + os.getloadavg()[0]) / 2, 1)
    entry.setdefault("load", []).append(load)
    log(f"{tag} run {i}/{repeats}: {seconds:.1f}s (load average {load})")
    if i == 1:
        check = _verify(bench, plan, out, reference)
        entry["rows"] = check.rows
        if not check.ok:
            log(f"{tag}: WRONG ({check.detail})")
            entry.update(status="WRONG", detail=check.detail, wrong_run_s=round(seconds, 2))
            return
        entry["detail"] = f"verified: {check.detail} ({check.rows:,} rows)"
    entry["times"].append(round(seconds, 3))
    shutil.rmtree(out, ignore_errors=True)


def _finished(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with its status and statistics (``ok`` over the runs done so far)."""
    if "status" in entry or not entry["times"]:
        return dict(entry)
    times = entry["times"]
    return {**entry, "status": "ok", "median": statistics.median(times), "min": min(times), "max": max(times)}


def measure_all(bench: str, plans: list[Plan], paths: DataPaths, reference: Path, *, repeats: int,
                timeout_s: float, spark: SparkHolder,
                on_run: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, dict[str, Any]]:
    """Time every plan ``repeats`` times, round robin (plan A, B, C, A, B, C, ...), so that a
    change of load on a shared machine hits all plans alike rather than one plan's runs."""
    entries: dict[str, dict[str, Any]] = {}
    prepared: list[Callable[..., None]] = []
    for plan in plans:
        entries[plan.name] = {"label": plan.label, "source": plan.source, "kind": plan.kind, "times": []}
        reason = plan.available()
        if reason:
            log(f"[{bench}/{paths.size.name}] {plan.name}: {reason}")
            entries[plan.name].update(status="unavailable", detail=reason)
        elif plan.prepare is not None and plan.prepare not in prepared:
            started = time.perf_counter()
            plan.prepare(spark.get(), paths.features, paths.spine)
            prepared.append(plan.prepare)
            log(f"[{bench}/{paths.size.name}] set-up for {plan.name}: {time.perf_counter() - started:.1f}s (not timed)")
    for i in range(1, repeats + 1):
        for plan in plans:
            entry = entries[plan.name]
            if "status" not in entry:
                _run_once(bench, plan, paths, entry, i, repeats, reference, timeout_s, spark)
                if on_run is not None:  # lets the caller save results as they come
                    on_run(plan.name, _finished(entry))
    return {name: _finished(entry) for name, entry in entries.items()}


def measure(bench: str, plan: Plan, paths: DataPaths, reference: Path, *, repeats: int, timeout_s: float,
            spark: SparkHolder) -> dict[str, Any]:
    """Time one plan (see :func:`measure_all`)."""
    return measure_all(bench, [plan], paths, reference, repeats=repeats, timeout_s=timeout_s, spark=spark)[plan.name]


# ---------------------------------------------------------------- the run


def _load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"results": {}, "sizes": {}}


def _save_results(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")


def _reference(bench: str, paths: DataPaths) -> Path:
    kind = "asof" if bench in ("many", "store") else bench
    out = paths.folder / f"reference_{kind}.parquet"
    if not out.exists():
        started = time.perf_counter()
        build = {"asof": verify.asof_reference, "windows": verify.windows_reference,
                 "windows_events": verify.windows_events_reference}[kind]
        rows = build(paths.features, paths.spine, out)
        log(f"[{bench}/{paths.size.name}] DuckDB reference: {rows:,} rows in {time.perf_counter() - started:.1f}s")
    return out


def _size_facts(paths: DataPaths) -> dict[str, Any]:
    import pyarrow.parquet as pq

    size = paths.size
    return {
        "features": pq.ParquetFile(paths.features).metadata.num_rows, "spine": pq.ParquetFile(paths.spine).metadata.num_rows,
        "keys": size.n_keys, "hot_share": size.hot_share, "seed": size.seed,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.asof_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small", help=f"comma list of {', '.join(SIZES)} (default small)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per plan (median reported; default 3)")
    parser.add_argument("--plans", default="", help="comma list of plan names, or bench:name (default: all); "
                        f"as-of: {', '.join(ASOF_PLANS)}; windows: {', '.join(WINDOW_PLANS)}")
    parser.add_argument("--bench", default="asof,windows",
                        help=f"comma list of {', '.join(BENCHES)} (default asof,windows)")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="cancel a run after this many seconds")
    parser.add_argument("--shuffle-partitions", type=int, default=SHUFFLE_PARTITIONS)
    parser.add_argument("--results", type=Path, default=RESULTS_JSON, help="JSON file the results are merged into")
    parser.add_argument("--no-report", action="store_true", help="do not regenerate RESULTS.md and the plots")
    args = parser.parse_args(argv)
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.benches = [b for b in args.bench.split(",") if b]
    args.plan_names = [p for p in args.plans.split(",") if p]
    for size in args.sizes:
        if size not in SIZES:
            parser.error(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    for bench in args.benches:
        if bench not in BENCHES:
            parser.error(f"unknown bench {bench!r}; choose from {', '.join(BENCHES)}")
    known = {n for plans in BENCHES.values() for n in plans} | {f"{b}:{n}" for b, plans in BENCHES.items() for n in plans}
    for name in args.plan_names:
        if name not in known:
            parser.error(f"unknown plan {name!r}; choose from {', '.join(sorted(known))}")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    results = _load_results(args.results)
    results["machine"] = machine_info()
    results["settings"] = {
        "spark_master": "local[2]", "driver_memory": DRIVER_MEMORY, "shuffle_partitions": args.shuffle_partitions,
        "repeats": args.repeats, "timeout_s": args.timeout_s,
    }
    spark = SparkHolder(args.shuffle_partitions)
    try:
        for size_name in args.sizes:
            paths = ensure_data(size_name, log=log)
            results["sizes"][size_name] = _size_facts(paths)
            for bench in args.benches:
                reference = _reference(bench, paths)
                plans = [
                    p for p in BENCHES[bench].values()
                    if not args.plan_names or p.name in args.plan_names or f"{bench}:{p.name}" in args.plan_names
                ]
                def record(name: str, entry: dict[str, Any], bench: str = bench, size_name: str = size_name) -> None:
                    entry["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
                    results["results"].setdefault(bench, {}).setdefault(size_name, {})[name] = entry
                    _save_results(args.results, results)

                entries = measure_all(bench, plans, paths, reference, repeats=args.repeats,
                                      timeout_s=args.timeout_s, spark=spark, on_run=record)
                for name, entry in entries.items():
                    record(name, entry)
    finally:
        spark.stop()
    if not args.no_report:
        from benchmarks.report import write_report

        written = write_report(results)
        log(f"wrote {', '.join(str(p.relative_to(HERE.parent)) for p in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
