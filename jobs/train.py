"""Tune, train and register the demo model on the latest training dataset.

    python -m jobs.train [--set training_overrides.max_evals=4]
"""

from __future__ import annotations

from typing import Any

from jobs import _cli


def _body(spark: Any, args: Any, config: _cli.DemoJobConfig) -> dict[str, Any]:
    from engine.demo.pipeline import VIEW, train_model
    from engine.store.feature_store import FeatureStore

    fs = FeatureStore(spark, config.root)
    trained = train_model(fs, fs.get_training_dataset(VIEW, 1), config.training, overrides=config.training_overrides)
    reg = trained.registration
    return {"model": trained.model_uri, "val_auc": trained.training.metrics["roc_auc"],
            "baseline_auc": trained.training.baseline_metrics["roc_auc"], "champion": reg.promoted if reg else None}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Train and register the demo model.", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
