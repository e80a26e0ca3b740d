"""The drift metrics' arithmetic without Spark (engine.monitoring.metrics), against scipy / numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp

from engine.monitoring.config import Thresholds
from engine.monitoring.metrics import _categorical_metrics, _flags, _numeric_metrics, _psi, _splits


def test_psi_matches_its_definition_with_the_epsilon_floor() -> None:
    ref, cur = [50, 30, 20, 0], [25, 25, 25, 25]
    expected = sum((q - p) * math.log(q / p) for p, q in ((0.5, 0.25), (0.3, 0.25), (0.2, 0.25), (1e-4, 0.25)))
    assert _psi(ref, cur, (100, 100), 1e-4) == pytest.approx(expected)
    assert _psi(ref, ref, (100, 100), 1e-4) == 0.0


def test_js_distance_equals_scipy() -> None:
    cells = {"a": (10, 1), "b": (5, 5), "c": (0, 9), "__other__": (3, 3)}
    got = _categorical_metrics(cells, (18, 18), 1e-4)
    p = [cells[k][0] / 18 for k in cells]
    q = [cells[k][1] / 18 for k in cells]
    assert got["js"] == pytest.approx(jensenshannon(p, q, base=2))
    assert [b.label for b in got["bins"]][-1] == "__other__"  # the pooled rest comes last


def test_ks_on_a_full_grid_is_exact_and_its_p_value_is_scipys() -> None:
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 12, 400).astype(float)
    cur = rng.integers(2, 14, 300).astype(float)
    grid = sorted(set(ref) | set(cur))  # every distinct value is a grid edge: the statistic is exact
    splits, _ = _splits(grid)
    buckets = {}
    for side, values in ((0, ref), (1, cur)):
        for j in np.searchsorted(splits, values, side="right") - 1:
            r, c = buckets.get(str(j), (0, 0))
            buckets[str(j)] = (r + (side == 0), c + (side == 1))
    got = _numeric_metrics(buckets, grid, grid[2::3], (len(ref), len(cur)), 1e-4)
    exact = ks_2samp(ref, cur, method="asymp")
    assert got["ks"] == pytest.approx(exact.statistic)
    assert 0.0 <= got["ks_error"] <= 1.0
    assert got["ks_pvalue"] == pytest.approx(exact.pvalue, rel=1e-6, abs=1e-12)
    assert sum(b.reference for b in got["bins"]) == len(ref) and sum(b.current for b in got["bins"]) == len(cur)


def test_flags_name_the_metrics_over_their_thresholds() -> None:
    metrics = {"psi": 0.3, "ks": 0.05, "js": None, "ks_pvalue": 0.001}
    assert _flags(metrics, 0.0, Thresholds(psi=0.2, ks=0.1, ks_pvalue=0.01)) == ("psi", "ks_pvalue")
    assert _flags(metrics, -0.2, Thresholds(psi=None, ks=None, null_share_delta=0.1)) == ("null_share_delta",)
