"""Drift of the scored batches against the training rows, and realised AUC per month.

    python -m jobs.monitor
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobs import _cli


def _body(spark: Any, args: Any, config: _cli.DemoJobConfig) -> dict[str, Any]:
    from engine.demo.pipeline import VIEW, monitor
    from engine.store.feature_store import FeatureStore

    fs = FeatureStore(spark, config.root)
    result = monitor(
        spark, fs, fs.get_training_dataset(VIEW, 1), fs.get_feature_view(VIEW, 1), f"{fs.root}/predictions/{VIEW}",
        f"{fs.root}/demo/flight_spine", f"models:/{VIEW}@champion", out_dir=Path(config.root) / "reports",
        config_path=config.monitoring, scored_at=_cli.now(),
    )
    return {"drifted": result["flagged_psi"], "report": result["report"],
            "realised_auc": {r["group"]: r["roc_auc"] for r in result["realised"]}}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Monitor drift and realised performance.", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
