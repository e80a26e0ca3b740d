"""Time one demo-size training run: synthetic binary label, N rows x F numeric features.

    .venv/bin/python benchmarks/training_bench.py --rows 250000 --features 20 \
        --config conf/training/demo_gbt.yaml --max-evals 8 --parallelism 2

Data generation (in Spark, cached and counted) and JVM start-up are excluded from the timing;
MLflow tracking goes to a throw-away SQLite warehouse. Prints the phases and every trial.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--config", default=str(ROOT / "conf/training/demo_gbt.yaml"))
    parser.add_argument("--max-evals", type=int, default=8)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("engine").setLevel(logging.INFO)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this venv's packages

    from pyspark.sql import functions as F

    from engine.config import apply_overrides, load_yaml
    from engine.pipelines.training import train, training_config
    from engine.session import build_spark
    from engine.tracking import configure_tracking

    data = apply_overrides(load_yaml(args.config), [f"max_evals={args.max_evals}",
                                                    f"parallelism={args.parallelism}"], source=args.config)
    config = training_config(data, source=args.config)
    spark = build_spark("local", {"spark.master": args.master, "spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")

    names = [f"x{i:02d}" for i in range(args.features)]
    df = spark.range(args.rows).select("id", *[F.randn(seed=i).alias(n) for i, n in enumerate(names)])
    logit = sum((F.col(n) * (1.0 / (i + 1)) for i, n in enumerate(names[:8])), F.lit(-0.5))
    logit = logit + F.col(names[0]) * F.col(names[1]) * 0.5
    df = df.withColumn("label", (F.rand(seed=99) < 1 / (1 + F.exp(-logit))).cast("int"))
    cut = int(args.rows * 0.8)
    train_df = df.where(F.col("id") < cut).cache()
    validation = df.where(F.col("id") >= cut).cache()
    print(f"data: {train_df.count()} train / {validation.count()} validation rows, {len(names)} features")

    with tempfile.TemporaryDirectory() as warehouse:
        configure_tracking(Path(warehouse))
        started = time.monotonic()
        result = train(spark, train_df, validation, features=names, label="label", config=config,
                       experiment="training_bench")
        total = time.monotonic() - started
    for t in result.trials:
        print(f"  trial {t.number}: {t.status} {t.duration_s:6.1f}s  roc_auc={t.metrics.get('roc_auc', float('nan')):.4f}"
              f"  {t.params}")
    print(f"family={config.family} max_evals={config.max_evals} parallelism={config.parallelism} "
          f"master={args.master}")
    print(f"total train() {total:.1f}s; tuning (fmin) {result.tuning_seconds:.1f}s; "
          f"sum of trial fit times {sum(t.duration_s for t in result.trials):.1f}s")
    print(f"validation roc_auc={result.metrics['roc_auc']:.4f} log_loss={result.metrics['log_loss']:.4f}; "
          f"baseline log_loss={result.baseline_metrics['log_loss']:.4f}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
