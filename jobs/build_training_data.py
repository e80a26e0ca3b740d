"""Build the demo's point-in-time training dataset (a new version each run).

    python -m jobs.build_training_data [--profile ...]
"""

from __future__ import annotations

from typing import Any

from jobs import _cli


def _body(spark: Any, args: Any, config: _cli.DemoJobConfig) -> dict[str, Any]:
    from engine.demo import load_raw
    from engine.demo.pipeline import build_training_dataset, create_view, flight_spine
    from engine.store.feature_store import FeatureStore

    fs = FeatureStore(spark, config.root)
    view = create_view(fs, flight_spine(spark, fs, load_raw(spark, fs.root, **config.periods.raw())))
    dataset = build_training_dataset(fs, view, config.periods.demo())
    return {"training_dataset": dataset.version, "rows": dataset.rows, "path": dataset.path,
            "source_versions": dataset.source_versions}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Build the demo training dataset.", _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
