"""The benchmark harness on a few hundred rows: every baseline plan must give exactly the rows
of the DuckDB reference, and a wrong plan must come out WRONG -- so a broken baseline is caught
here, not after an hour of benchmarking. Timings are not asserted (benchmarks/ measures them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.asof_bench import SparkHolder, _reference, measure
from benchmarks.asof_plans import ASOF_PLANS
from benchmarks.datagen import SIZES, DataPaths, ensure_data, generate
from benchmarks.plan import Plan
from benchmarks.window_plans import WINDOW_PLANS

ASOF_BASELINES = [name for name in ASOF_PLANS if not name.startswith("engine")]
WINDOW_BASELINES = [name for name in WINDOW_PLANS if name != "engine"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> DataPaths:
    return ensure_data("tiny", tmp_path_factory.mktemp("bench-data"), log=lambda _: None)


def _measure(bench: str, plan: Plan, data: DataPaths, spark: object | None) -> dict:
    reason = plan.available()
    if reason:
        pytest.skip(reason)
    holder = SparkHolder(2, spark)
    return measure(bench, plan, data, _reference(bench, data), repeats=1, timeout_s=180, spark=holder)


def test_data_is_deterministic_and_as_specified(tiny: DataPaths) -> None:
    import pyarrow.parquet as pq

    first, second = generate(SIZES["tiny"]), generate(SIZES["tiny"])
    for a, b in zip(first, second, strict=True):
        assert all(np.array_equal(a[c], b[c]) for c in a)
    features = pq.read_table(tiny.features)
    assert features.num_rows == SIZES["tiny"].n_features
    assert str(features.schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert features.drop_null().num_rows == features.num_rows  # no NULL features (tempo = row semantics)
    pairs = features.select(["key", "ts"]).to_pandas()
    assert not pairs.duplicated().any()  # (key, ts) unique: no ties to break


def test_skewed_size_has_one_hot_key() -> None:
    from benchmarks.datagen import Size

    features, spine = generate(Size("hot", 2_000, 500, 50, hot_share=0.2, seed=1))
    assert (features["key"] == 0).sum() == 400
    assert (spine["key"] == 0).sum() == 100


@pytest.mark.parametrize("name", ASOF_BASELINES)
def test_asof_baseline_gives_the_reference_rows(name: str, tiny: DataPaths, request: pytest.FixtureRequest) -> None:
    plan = ASOF_PLANS[name]
    spark = request.getfixturevalue("spark") if plan.kind == "spark" else None
    entry = _measure("asof", plan, tiny, spark)
    assert entry["status"] == "ok", entry
    assert entry["rows"] == SIZES["tiny"].n_spine


@pytest.mark.parametrize("name", WINDOW_BASELINES)
def test_window_baseline_gives_the_reference_rows(name: str, tiny: DataPaths, request: pytest.FixtureRequest) -> None:
    plan = WINDOW_PLANS[name]
    spark = request.getfixturevalue("spark") if plan.kind == "spark" else None
    entry = _measure("windows", plan, tiny, spark)
    assert entry["status"] == "ok", entry


def test_a_wrong_plan_is_marked_wrong(tiny: DataPaths) -> None:
    def forward(features: Path, spine: Path, out: Path) -> None:  # looks into the future
        import pandas as pd

        left = pd.read_parquet(spine).sort_values("ts")
        right = pd.read_parquet(features).sort_values("ts")
        out.mkdir(parents=True, exist_ok=True)
        pd.merge_asof(left, right, on="ts", by="key", direction="forward").to_parquet(out / "part-0.parquet")

    entry = _measure("asof", Plan("forward", "forward", "local", "test", run=forward), tiny, None)
    assert entry["status"] == "WRONG"
    assert entry["times"] == []
