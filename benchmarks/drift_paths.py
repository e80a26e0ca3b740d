"""A monitoring job's drift by path, on a store a repository run has filled (e.g. the demo's).

    .venv/bin/python -m benchmarks.drift_paths [--repo examples/flights] [--monitoring nov_dec_drift]
        [--runs 5]

Scores the monitoring job's reference (its training rows) with its scoring job's model once
(persisted, as ``monitor`` does), then times ``compute_drift(reference, predictions)`` with small
inputs computed on the driver from one collect (the default below ``LOCAL_CELLS`` values) and
with the two Spark queries (``LOCAL_CELLS = 0``: ``percentile_approx`` + an exploded ``groupBy``),
alternating, after one warm-up run of each; medians. Checks both flag the same columns and prints
each PSI that differs (the driver's quantiles are exact, ``percentile_approx``'s within its rank
error). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default="examples/flights")
    parser.add_argument("--monitoring", default="nov_dec_drift")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from pyspark import StorageLevel

    from benchmarks.machine import git_commit, machine_info, open_repository_store
    from engine.monitoring import _drift_local, compute_drift, monitoring_config
    from engine.pipelines.inference import predict, resolve_model
    from engine.repository.run_models import training_dataset
    from engine.store import delta

    repo, spark, fs = open_repository_store(args.repo)
    repo.activate()
    spec = repo.get("monitoring", args.monitoring)
    scoring = repo.get("scoring", spec.scoring)
    config = monitoring_config(spec.thresholds, source=args.monitoring)
    dataset = training_dataset(fs, repo, spec.reference)
    resolved = resolve_model(scoring.model, store=fs)
    features = [f for f in dataset.view().feature_names if f in resolved.contract.features]
    current = delta.read(spark, repo.table_path(scoring.output, fs))
    score = "probability" if "probability" in current.columns else "prediction"
    compared = ["`" + c.replace("`", "``") + "`" for c in (*features, score)]
    reference = predict(spark, resolved, dataset.read("train")).select(*compared).persist(StorageLevel.MEMORY_AND_DISK)
    sizes = (reference.count(), current.count())

    default = _drift_local.LOCAL_CELLS
    modes = {"driver (one collect, numpy)": default, "Spark (LOCAL_CELLS=0)": 0}
    times: dict[str, list[float]] = {m: [] for m in modes}
    results = {}
    for run in range(args.runs + 1):
        for mode, cells in modes.items():
            _drift_local.LOCAL_CELLS = cells
            started = time.perf_counter()
            results[mode] = compute_drift(reference, current, features=features, prediction=score, config=config)
            if run:  # the first run of each warms up
                times[mode].append(time.perf_counter() - started)
            print(f"{mode}, run {run}/{args.runs}: {time.perf_counter() - started:.2f} s", flush=True)
    _drift_local.LOCAL_CELLS = default
    local, on_spark = (results[m] for m in modes)
    assert local.flagged == on_spark.flagged, (local.flagged, on_spark.flagged)
    differ = [(a.feature, a.psi, b.psi) for a, b in zip(local.features, on_spark.features, strict=True) if a.psi != b.psi]

    base = statistics.median(times["Spark (LOCAL_CELLS=0)"])
    info = machine_info()
    print(f"\n{args.monitoring} at {git_commit()}, {info.get('cpu')}, {os.cpu_count()} cores, load {os.getloadavg()}")
    print(f"{len(compared)} columns, {sizes[0]:,} reference and {sizes[1]:,} current rows; "
          f"same {len(local.flagged)} columns flagged; PSI differing: "
          + (", ".join(f"{n} {a:.4f} vs {b:.4f}" for n, a, b in differ) or "none"))
    print("| path | seconds, median (range) | Spark / this |")
    print("|---|---|---|")
    for mode in modes:
        median = statistics.median(times[mode])
        print(f"| {mode} | {median:.2f} ({min(times[mode]):.2f}-{max(times[mode]):.2f}) | {base / median:.2f}x |")
    reference.unpersist()


if __name__ == "__main__":
    main()
