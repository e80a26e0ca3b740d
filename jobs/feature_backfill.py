"""Backfill (or incrementally extend) the demo's feature groups over [--start, --end).

    python -m jobs.feature_backfill --start 2013-01-01 --end 2014-01-01 [--profile standalone]

Chunks already done are skipped (resume); re-running a range replaces exactly its chunks.
"""

from __future__ import annotations

from typing import Any

from jobs import _cli


def _body(spark: Any, args: Any, config: _cli.DemoJobConfig) -> dict[str, Any]:
    from engine.demo import build_features, load_raw
    from engine.demo.pipeline import YEAR_2013
    from engine.store.feature_store import FeatureStore

    start = _cli.instant(args.start, "start") or YEAR_2013.start
    end = _cli.instant(args.end, "end") or YEAR_2013.end
    fs = FeatureStore(spark, config.root)
    results = build_features(fs, load_raw(spark, fs.root, **config.periods.raw()), start, end, step=config.backfill_step)
    return {
        "feature_backfill": "ok",
        "chunks": {name: sum(c.status == "done" for c in chunks) for name, chunks in results.items()},
        "feature_groups": {g.name: g.delta_version() for g in fs.list_feature_groups()},
    }


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Backfill the demo feature groups.", _body, argv, time_range=True)


if __name__ == "__main__":
    raise SystemExit(main())
