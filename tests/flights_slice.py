"""A short slice of the flights example repository (examples/flights) for the suites that run it whole
(cluster, notebooks): raw rows and features of 1 Jan - 17 Feb 2013, train on 1-8 Jan, validate on
7-14 Feb (the 30-day gap the view's longest lookback requires), score 14-17 Feb, 2 trials.
``overrides(root)`` are the repository overrides (the jobs' ``--set``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "flights"
RAW_END = "2013-02-17"
TRAIN = ("2013-01-01", "2013-01-08")
VALIDATION = ("2013-02-07", "2013-02-14")
SCORE = ("2013-02-14", "2013-02-17")
GROUPS = ("weather_hourly", "planes", "route_delay_stats", "carrier_delay_stats")
WINDOWED = ("weather_hourly", "route_delay_stats", "carrier_delay_stats")


def utc(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def overrides(root: str | Path) -> list[str]:
    items = [f"store.root={root}", f"sources.flights.options.end={RAW_END}", f"sources.weather.options.end={RAW_END}"]
    for name in WINDOWED:  # one chunk over the slice
        items += [f"pipelines.{name}.backfill.end={RAW_END}", f"pipelines.{name}.step=48d"]
    items += [
        f"training.gbt.split.train.start={TRAIN[0]}", f"training.gbt.split.train.end={TRAIN[1]}",
        f"training.gbt.split.validation.start={VALIDATION[0]}", f"training.gbt.split.validation.end={VALIDATION[1]}",
        "training.gbt.model.max_evals=2",
        f"scoring.nov_dec.batches=[{{start: {SCORE[0]}, end: {SCORE[1]}}}]",
    ]
    return items


def set_args(root: str | Path) -> list[str]:
    """``overrides(root)`` as job arguments: ``--set k=v ...``."""
    return [arg for item in overrides(root) for arg in ("--set", item)]
