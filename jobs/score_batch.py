"""Score the demo's flights in [--start, --end) (default Nov-Dec 2013) with the champion model.

    python -m jobs.score_batch --start 2013-11-01 --end 2013-12-01 [--set model=models:/flight_delay/3]
"""

from __future__ import annotations

from typing import Any

from jobs import _cli


def _body(spark: Any, args: Any, config: _cli.DemoJobConfig) -> dict[str, Any]:
    from engine.demo.pipeline import SCORE, VIEW, DemoPeriods, score_months
    from engine.store.feature_store import FeatureStore
    from engine.temporal.ranges import TimeRange

    fs = FeatureStore(spark, config.root)
    start, end = _cli.instant(args.start, "start"), _cli.instant(args.end, "end")
    periods = DemoPeriods(score=(TimeRange(start, end),)) if start and end else DemoPeriods(score=SCORE)
    output, results = score_months(spark, fs, f"{fs.root}/demo/flight_spine", f"models:/{VIEW}@champion", periods,
                                   scored_at=_cli.now())
    return {"predictions": output, "batches": {r.batch_id: r.rows for r in results},
            "model": f"models:/{results[0].model_name}/{results[0].model_version}"}


def main(argv: list[str] | None = None) -> int:
    return _cli.run("Score a batch of flights.", _body, argv, time_range=True)


if __name__ == "__main__":
    raise SystemExit(main())
