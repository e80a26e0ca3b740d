"""window_aggregates against an independent brute-force Python loop on random data: ties in time,
NULL values, keys and times, times on and one microsecond around the window boundaries, several
windows at once, duplicate spine rows. One Spark job per example."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.temporal.windows import Agg, window_aggregates

BASE = datetime(2013, 1, 1, tzinfo=timezone.utc)
FNS = ("count", "sum", "mean", "min", "max", "stddev", "last")
SETTINGS = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------- the reference


def _in_window(e: Any, t: Any, window: Any) -> bool:
    return t - window < e <= t  # the contract, literally


def _aggregate(fn: str, values: list[Any], matched: list[tuple[Any, ...]], *, time_at: int, tie_at: int | None,
               value_at: int) -> Any:
    present = [v for v in values if v is not None]
    if fn == "count":
        return len(present)
    if fn == "last":
        if not matched:
            return None

        def order(row: tuple[Any, ...]) -> tuple[Any, ...]:
            tie = row[tie_at] if tie_at is not None else None
            v = row[value_at]
            return (row[time_at], tie is not None, tie or 0, v is not None, v or 0)

        return max(matched, key=order)[value_at]
    if not present:
        return None
    if fn == "sum":
        return sum(present)
    if fn == "mean":
        return sum(present) / len(present)
    if fn == "min":
        return min(present)
    if fn == "max":
        return max(present)
    return statistics.stdev(present) if len(present) >= 2 else None


def reference(events: list[tuple[Any, ...]], targets: list[tuple[Any, ...]], aggs: list[Agg], *, n_keys: int,
              time_at: int, target_time_at: int, value_at: int, tie_at: int | None) -> list[tuple[Any, ...]]:
    """Each target row + its aggregates, by scanning every event for every target."""
    out = []
    for target in targets:
        key, t = target[:n_keys], target[target_time_at]
        usable = None not in key and t is not None
        row = list(target)
        for agg in aggs:
            matched = [
                e for e in events
                if usable and e[:n_keys] == key and e[time_at] is not None and _in_window(e[time_at], t, agg.window)
            ]
            if agg.column is None:
                row.append(len(matched))
                continue
            values = [e[value_at] for e in matched]
            row.append(_aggregate(agg.fn, values, matched, time_at=time_at, tie_at=tie_at, value_at=value_at))
        out.append(tuple(row))
    return out


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _sort_key(row: tuple[Any, ...], width: int) -> tuple[Any, ...]:
    return tuple((v is None, v if v is not None else 0) for v in row[:width])


def assert_same(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], *, width: int, names: list[str]) -> None:
    """Equal as multisets: sorted by the input columns (duplicates have equal aggregates too)."""
    assert len(actual) == len(expected)
    for got, want in zip(sorted(actual, key=lambda r: _sort_key(r, width)), sorted(expected, key=lambda r: _sort_key(r, width)),
                         strict=True):
        assert got[:width] == want[:width], (got, want)
        for name, g, w in zip(names, got[width:], want[width:], strict=True):
            assert _close(g, w), f"{name}: got {g!r}, want {w!r} for input row {got[:width]}"


# ------------------------------------------------------------------------ random inputs

# Times on a one-minute grid, some one microsecond off it: windows of whole minutes put events
# exactly on and just around every boundary.
_timestamps = st.builds(
    lambda minute, jitter: BASE + timedelta(minutes=minute, microseconds=jitter),
    st.integers(0, 30), st.sampled_from([0, 0, 0, -1, 1]),
)

_events_ts = st.lists(
    st.tuples(
        st.sampled_from([0, 1, None]), st.sampled_from(["a", "b"]), _timestamps | st.none(),
        st.integers(-3, 3) | st.none(), st.integers(0, 2).map(float) | st.none(),
    ),
    max_size=30,
)
_spine_ts = st.tuples(
    st.lists(st.tuples(st.sampled_from([0, 1, None]), st.sampled_from(["a", "b"]), _timestamps | st.none(), st.sampled_from(["x", "y"])),
             min_size=1, max_size=10),
    st.integers(0, 3),
).map(lambda s: s[0] + s[0][: s[1]])  # some rows twice: duplicate spine rows
_windows_ts = st.lists(
    st.sampled_from([timedelta(minutes=m) for m in (1, 2, 3, 5, 10, 45)] + [timedelta(seconds=90), timedelta(microseconds=1)]),
    min_size=1, max_size=3, unique=True,
)


@settings(SETTINGS, max_examples=25)
@given(events=_events_ts, spine=_spine_ts, windows=_windows_ts)
def test_timestamps_with_a_spine_match_brute_force(spark, events, spine, windows) -> None:
    # events: g, k, ts, seq, v  (value column as DOUBLE holding small integers: sums are exact)
    ev = spark.createDataFrame([(g, k, ts, seq, v) for g, k, ts, seq, v in events],
                               "g int, k string, ts timestamp, seq int, v double")
    sp = spark.createDataFrame(spine, "g int, k string, at timestamp, tag string")
    aggs = [Agg("v", fn, w) for w in windows for fn in FNS] + [Agg(None, "count", w) for w in windows]
    out = window_aggregates(ev, sp, by=["g", "k"], event_time="ts", spine_time="at", aggs=aggs, tie_breaker="seq")
    actual = [tuple(r) for r in out.collect()]

    naive = [(g, k, ts.replace(tzinfo=None) if ts else None, seq, v) for g, k, ts, seq, v in events]
    targets = [(g, k, at.replace(tzinfo=None) if at else None, tag) for g, k, at, tag in spine]
    expected = reference(naive, targets, aggs, n_keys=2, time_at=2, target_time_at=2, value_at=4, tie_at=3)
    assert_same(actual, expected, width=4, names=[a.output_name for a in aggs])


_events_int = st.lists(
    st.tuples(st.sampled_from([1, 2, None]), st.integers(-5, 15) | st.none(), st.integers(-4, 4) | st.none()),
    max_size=30,
)
_windows_int = st.lists(st.sampled_from([1, 2, 2.5, 3, 4, 7.5, 20]), min_size=1, max_size=3, unique=True)


@settings(SETTINGS, max_examples=20)
@given(events=st.tuples(_events_int, st.integers(0, 3)).map(lambda s: s[0] + s[0][: s[1]]), windows=_windows_int)
def test_integer_times_without_a_spine_match_brute_force(spark, events, windows) -> None:
    # events: k, t, v (BIGINT time, INT values); each event is evaluated at its own time
    ev = spark.createDataFrame(events, "k int, t bigint, v int")
    aggs = [Agg("v", fn, w) for w in windows for fn in FNS] + [Agg(None, "count", w) for w in windows]
    out = window_aggregates(ev, by="k", event_time="t", aggs=aggs)
    actual = [tuple(r) for r in out.collect()]

    expected = reference(events, events, aggs, n_keys=1, time_at=1, target_time_at=1, value_at=2, tie_at=None)
    assert_same(actual, expected, width=3, names=[a.output_name for a in aggs])
    types = {f.name: f.dataType.simpleString() for f in out.schema.fields}
    assert {types[a.output_name] for a in aggs if a.fn in ("sum", "count")} == {"bigint"}

