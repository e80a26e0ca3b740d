"""Drift monitoring on Spark Connect: compute_drift gives the classic session's result for the same
reference and current batches (numeric and categorical features, a shifted and an unchanged one)."""

from __future__ import annotations

import numpy as np

from engine.monitoring import compute_drift
from tests.connect.conftest import classic_mode

SCHEMA = "shift DOUBLE, same DOUBLE, region STRING, score DOUBLE"


def _rows(offset: float, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [(float(rng.normal(offset, 1.0)), float(rng.normal(0.0, 1.0)), ["n", "s", "e"][i % (3 if offset else 2)],
             float(rng.uniform())) for i in range(300)]


def _drift(spark):
    reference = spark.createDataFrame(_rows(0.0, 1), SCHEMA)
    current = spark.createDataFrame(_rows(2.0, 2), SCHEMA)
    return compute_drift(reference, current, features=["shift", "same", "region"], prediction="score")


def test_drift_matches_the_classic_session(spark, connect_spark):
    with classic_mode():
        classic = _drift(spark)
    remote = _drift(connect_spark)
    assert remote.features == classic.features
    assert (remote.reference_rows, remote.current_rows) == (300, 300)
    assert "shift" in remote.flagged and "same" not in remote.flagged
