"""The numpy partition kernels of the temporal core against brute force, without Spark (cheap, so
many examples): as-of matches in every direction with ties, NULLs, tolerances and exact-match on
and off; window aggregates with NaN, infinities, NULLs, ties, and sums that would cancel
catastrophically with plain prefix sums."""

from __future__ import annotations

import math
import statistics

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.temporal import _asof_numpy, _windows_stats
from engine.temporal._asof_numpy import PartitionSpec, SideSpec, key_codes, match, sort_order
from engine.temporal._windows_numpy import Columns, WindowAgg, aggregate_bucket

KEYS = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))
TIMES = st.one_of(st.none(), st.integers(0, 12))


# ------------------------------------------------------------------------------------ as-of


def _asof_brute(left, right, *, direction, exact, tol, tie_on_payload):
    """Per left row: the index (into ``right``) of the matched row, or None."""
    out = []
    for k, t in left:
        best = None
        if k is not None and t is not None:
            cands = [(i, r) for i, r in enumerate(right) if r[0] == k and r[1] is not None]

            def ok(e, t=t):
                if direction == "backward":
                    fine = e <= t if exact else e < t
                elif direction == "forward":
                    fine = e >= t if exact else e > t
                else:
                    fine = e != t or exact
                return fine and (tol is None or abs(t - e) <= tol)

            cands = [(i, r) for i, r in cands if ok(r[1])]
            if cands:
                def dist(c, t=t):
                    return abs(t - c[1][1])
                if direction == "backward":
                    e = max(r[1] for _, r in cands)
                elif direction == "forward":
                    e = min(r[1] for _, r in cands)
                else:
                    d = min(dist(c) for c in cands)
                    e = min(r[1] for _, r in cands if abs(t - r[1]) == d)  # the earlier one on a tie
                tied = [(i, r) for i, r in cands if r[1] == e]
                # greatest tie order, NULLs lowest
                best = max(tied, key=lambda c: (c[1][2] is not None, c[1][2] if c[1][2] is not None else 0))[0]
        out.append(best)
    return out


@settings(max_examples=300, deadline=None)
@given(
    left=st.lists(st.tuples(KEYS, TIMES), max_size=12),
    right=st.lists(st.tuples(KEYS, TIMES, st.integers(0, 3)), max_size=14),
    direction=st.sampled_from(["backward", "forward", "nearest"]),
    exact=st.booleans(),
    tol=st.one_of(st.none(), st.sampled_from([0, 2, 5])),
    layout=st.sampled_from(["as given", "sorted", "two sorted runs"]),
    runs_share=st.sampled_from([_asof_numpy.RUNS_SHARE, 1.0]),  # 1.0: any unsorted rows take the merge of runs
)
def test_asof_match_equals_brute_force(left, right, direction, exact, tol, layout, runs_share):
    # unique tie values within (key, time) so the winner is defined: order ties by (tie, index)
    right = [(k, t, s * 100 + i) for i, (k, t, s) in enumerate(right)]
    by_key_time = lambda rows: sorted(rows, key=lambda r: (r[0] or "", r[1] or 0))  # noqa: E731 - as a laid-out group's files
    if layout == "sorted":
        right = by_key_time(right)
    elif layout == "two sorted runs":
        right = by_key_time(right[::2]) + by_key_time(right[1::2])
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(_asof_numpy, "RUNS_SHARE", runs_share)
    left_table = pa.table({"k0": pa.array([k for k, _ in left], pa.string()),
                           "__ff_t": pa.array([t for _, t in left], pa.int64())})
    right_table = pa.table({"k0": pa.array([r[0] for r in right], pa.string()),
                            "__ff_t": pa.array([r[1] for r in right], pa.int64()),
                            "tb": pa.array([r[2] for r in right], pa.int64())})
    spec = PartitionSpec(keys=["k0"], left=[], sides=[SideSpec(payload=["tb"], ties=["tb"], direction=direction,
                                                               allow_exact_matches=exact, tolerance=tol)])
    if not left or not right:
        return
    try:
        (found,) = match(left_table, right_table, spec)
    finally:
        monkeypatch.undo()
    got = [None if f < 0 else int(f) for f in found]
    assert got == _asof_brute(left, right, direction=direction, exact=exact, tol=tol, tie_on_payload=False)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["b", "a", "é", ""])),
                               st.one_of(st.none(), st.integers(-3, 3))), max_size=20))
def test_key_codes_are_equal_iff_the_keys_are_and_ascend_with_them(rows):
    table = pa.table({"s": pa.array([r[0] for r in rows], pa.string()), "i": pa.array([r[1] for r in rows], pa.int64())})
    half = len(rows) // 2
    codes = key_codes([table.slice(0, half), table.slice(half)], ["s", "i"])
    for (a, code_a) in zip(rows, codes, strict=True):
        assert (code_a == -1) == (None in a)
        for (b, code_b) in zip(rows, codes, strict=True):
            if None not in a and None not in b:
                assert (code_a == code_b) == (a == b)
                assert (code_a < code_b) == ((a[0].encode(), a[1]) < (b[0].encode(), b[1]))  # UTF-8 bytes, as Spark


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(-5, 5), max_size=40), runs_share=st.sampled_from([0.0, 0.5, 1.0]))
def test_sort_order_sorts_whatever_path_it_takes(values, runs_share):
    import numpy as np

    array = np.array(values, dtype=np.int64)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(_asof_numpy, "RUNS_SHARE", runs_share)
    try:
        order = sort_order(array)
    finally:
        monkeypatch.undo()
    assert sorted(array[order].tolist()) == array[order].tolist() == sorted(values)
    if values == sorted(values):
        assert order == slice(None)  # already sorted: no sort at all


# ---------------------------------------------------------------------------------- windows

VALUES = st.one_of(st.none(), st.sampled_from([0.0, 1.5, -2.0, 3.0, 1e15, -1e15, math.nan, math.inf, -math.inf]))


def _window_brute(events, targets, fn, units):
    out = []
    for k, t in targets:
        inside = [e for e in events if k is not None and t is not None and e[0] == k and e[1] is not None
                  and t - units < e[1] <= t]
        vals = [e[2] for e in inside if e[2] is not None]
        if fn == "rows":
            out.append(len(inside))
        elif fn == "count":
            out.append(len(vals))
        elif not inside or (fn != "last" and not vals):
            out.append(None)
        elif fn == "sum":
            out.append(math.fsum(vals) if all(math.isfinite(v) for v in vals) else sum(vals))
        elif fn == "mean":
            out.append((math.fsum(vals) if all(math.isfinite(v) for v in vals) else sum(vals)) / len(vals))
        elif fn in ("min", "max"):
            nan = [v for v in vals if math.isnan(v)]
            plain = [v for v in vals if not math.isnan(v)]
            if fn == "max":
                out.append(math.nan if nan else max(plain))
            else:
                out.append(min(plain) if plain else math.nan)
        elif fn == "stddev":
            if len(vals) < 2:
                out.append(None)
            elif not all(math.isfinite(v) for v in vals):
                out.append(math.nan)
            else:
                out.append(statistics.stdev(vals))
        else:  # last: greatest (time, tie, value) with NULL lowest and NaN greatest
            def order(e):
                v = e[2]
                return (e[1], e[3] is not None, e[3] or 0, v is not None, math.isnan(v) if v is not None else False,
                        v if v is not None and not math.isnan(v) else 0)
            out.append(max(inside, key=order)[2])
    return out


def _same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(st.sampled_from(["a", "b", None]), TIMES, VALUES, st.one_of(st.none(), st.integers(0, 2))),
                    max_size=20),
    targets=st.lists(st.tuples(st.sampled_from(["a", "b", None]), TIMES), min_size=1, max_size=8),
    units=st.sampled_from([1, 2, 3, 5, 20]),
)
def test_window_aggregates_equal_brute_force(events, targets, units):
    targets_table = pa.table({"tk": pa.array([k for k, _ in targets], pa.string()),
                              "tt": pa.array([t for _, t in targets], pa.int64())})
    events_table = _events_table(events)
    aggs = [WindowAgg(column="v", fn=fn, units=units, integral=False) for fn in FNS]
    aggs.append(WindowAgg(column=None, fn="count", units=units, integral=False))
    cols = Columns(event_keys=["k0"], event_time="t", target_keys=["tk"], target_time="tt", ties=["tb"])
    results = aggregate_bucket(events_table, targets_table, cols, aggs)
    for fn, result in zip([*FNS, "rows"], results, strict=True):
        want = _window_brute(events, targets, fn, units)
        got = result.to_pylist()
        assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (fn, got, want)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(st.sampled_from(["a", "b", None]), TIMES, VALUES, st.one_of(st.none(), st.integers(0, 2))),
                    min_size=1, max_size=20),
    units=st.sampled_from([1, 2, 3, 5, 20, 2**62]),
)
def test_window_aggregates_at_every_event_equal_brute_force(events, units):
    """Without a spine every event is a target at its own time, in its own row order."""
    aggs = [WindowAgg(column="v", fn=fn, units=units, integral=False) for fn in FNS]
    aggs.append(WindowAgg(column=None, fn="count", units=units, integral=False))
    results = aggregate_bucket(_events_table(events), None, Columns(event_keys=["k0"], event_time="t", ties=["tb"]), aggs)
    targets = [(e[0], e[1]) for e in events]
    for fn, result in zip([*FNS, "rows"], results, strict=True):
        want = _window_brute(events, targets, fn, units)
        got = result.to_pylist()
        assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (fn, got, want)


WIDE_TIMES = st.one_of(st.none(), st.sampled_from([-(2**61), -5, 0, 1, 3, 2**61, 2**62 - 1]))


@settings(max_examples=100, deadline=None)
@given(
    events=st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), WIDE_TIMES, VALUES, st.none()), max_size=12),
    targets=st.lists(st.tuples(st.sampled_from(["a", "b", None]), WIDE_TIMES), min_size=1, max_size=6),
    units=st.sampled_from([1, 4, 2**61, 2**62]),
)
def test_window_bounds_hold_over_the_whole_time_range(events, targets, units):
    """Times far apart (the packed (key, time) values would overflow: ranks instead) and windows
    reaching below the smallest time (saturated, not wrapped)."""
    targets_table = pa.table({"tk": pa.array([k for k, _ in targets], pa.string()),
                              "tt": pa.array([t for _, t in targets], pa.int64())})
    cols = Columns(event_keys=["k0"], event_time="t", target_keys=["tk"], target_time="tt")
    aggs = [WindowAgg(column="v", fn="sum", units=units, integral=False), WindowAgg(None, "count", units, False)]
    for table, at in ((targets_table, targets), (None, [(e[0], e[1]) for e in events])):
        if not at:
            continue
        sums, counts = aggregate_bucket(_events_table(events), table, cols, aggs)
        assert counts.to_pylist() == _window_brute(events, at, "rows", units)
        assert all(_same(g, w) for g, w in zip(sums.to_pylist(), _window_brute(events, at, "sum", units), strict=True))


def _events_table(events):
    return pa.table({
        "k0": pa.array([e[0] for e in events], pa.string()),
        "t": pa.array([e[1] for e in events], pa.int64()),
        "v": pa.array([e[2] for e in events], pa.float64()),
        "tb": pa.array([e[3] for e in events], pa.int64()),
    })


FNS = ["count", "sum", "mean", "min", "max", "stddev", "last"]


@pytest.mark.parametrize("direct", [True, False])
def test_window_sums_do_not_cancel_catastrophically(monkeypatch, direct):
    """A huge value far back in the key's history must not swallow the small values of later
    windows (plain prefix sums would return 0 or garbage here)."""
    if not direct:  # the compensated, key-shifted prefix sums of stddev on long windows
        monkeypatch.setattr(_windows_stats, "DIRECT_FACTOR", 0)
    values = [1e17, -1e17] + [0.1] * 50 + [1e17] + [0.3, 0.7]
    times = list(range(len(values)))
    n = len(values)
    table = pa.table({"k0": pa.array(["a"] * n), "t": pa.array(times, pa.int64()), "v": pa.array(values, pa.float64())})
    aggs = [WindowAgg(column="v", fn=fn, units=3, integral=False) for fn in ("sum", "stddev")]
    sums, stds = aggregate_bucket(table, None, Columns(event_keys=["k0"], event_time="t"), aggs)
    for i, (got, std) in enumerate(zip(sums.to_pylist(), stds.to_pylist(), strict=True)):
        window = values[max(0, i - 2): i + 1]
        assert got == math.fsum(window) or math.isclose(got, math.fsum(window), rel_tol=1e-12), (i, got, window)
        if len(window) >= 2:
            assert math.isclose(std, statistics.stdev(window), rel_tol=1e-9, abs_tol=1e-9), (i, std, window)


def test_integer_sums_are_exact_longs():
    big = 2**53 + 1
    events = pa.table({"k0": pa.array(["a", "a"]), "t": pa.array([1, 2], pa.int64()), "v": pa.array([big, 2], pa.int64())})
    targets = pa.table({"k": pa.array(["a"]), "t": pa.array([5], pa.int64())})
    (total,) = aggregate_bucket(events, targets, Columns(event_keys=["k0"], event_time="t", target_keys=["k"], target_time="t"),
                                [WindowAgg(column="v", fn="sum", units=10, integral=True)])
    assert total.to_pylist() == [big + 2]


def test_hot_key_threshold_is_one_tasks_fair_share_of_the_cores_tasks():
    """A key is hot above 1 / min(partitions, 2 x cores) of the rows: 25 % on 2 cores (a 20 % key
    runs as one task), 0.5 % with 200 partitions on 128 cores (where the share argument allows);
    the share argument (default 2 %) raises the bar, 0 forces every key, and an unknown core
    count falls back to the partitions."""
    from engine.temporal._hot_keys import threshold_share

    assert threshold_share(0.02, 16, cores=2) == 0.25
    assert threshold_share(0.001, 200, cores=128) == 1 / 200
    assert threshold_share(0.001, 200, cores=32) == 1 / 64
    assert threshold_share(0.02, 200, cores=128) == 0.02
    assert threshold_share(0.5, 16, cores=2) == 0.5
    assert threshold_share(0.0, 16, cores=2) == 0.0
    assert threshold_share(0.02, 16) == 1 / 16
