"""asof_join against independent references on random data (hypothesis).

Reference: ``pandas.merge_asof`` on the rows that can match (non-NULL keys and times), after
resolving exact (key, time) duplicates on the right to the row with the greatest tie breaker
(the engine's documented tie rule; pandas itself keeps the last row in input order). Left rows
with a NULL key or time must come out with NULL right columns. Data has ties, NULLs in keys,
times and values, duplicate left rows, and times on tolerance boundaries.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.temporal import asof_join

BASE = datetime(2013, 1, 1, tzinfo=timezone.utc)
KEYS = ["a", "b", "c"]


def _times(draw, n, timestamps):
    values = draw(st.lists(st.one_of(st.none(), st.integers(0, 12)), min_size=n, max_size=n))
    if timestamps:
        return [None if v is None else BASE + timedelta(minutes=5 * v) for v in values]
    return [None if v is None else 5 * v for v in values]


@st.composite
def cases(draw):
    timestamps = draw(st.booleans())
    two_keys = draw(st.booleans())
    n_left = draw(st.integers(0, 14))
    n_right = draw(st.integers(0, 16))
    lt = _times(draw, n_left, timestamps)
    rt = _times(draw, n_right, timestamps)
    key = st.one_of(st.none(), st.sampled_from(KEYS)) if draw(st.booleans()) else st.sampled_from(KEYS)
    left = [
        (i, draw(key), draw(st.integers(0, 1)), lt[i]) for i in range(n_left)
    ]
    # duplicate some left rows exactly
    left += [left[j] for j in draw(st.lists(st.integers(0, max(n_left - 1, 0)), max_size=3)) if n_left]
    seqs = draw(st.permutations(list(range(n_right))))
    right = [
        (draw(key), draw(st.integers(0, 1)), rt[i], draw(st.one_of(st.none(), st.floats(-5, 5, allow_nan=False))), seqs[i])
        for i in range(n_right)
    ]
    direction = draw(st.sampled_from(["backward", "forward", "nearest"]))
    exact = draw(st.booleans())
    tol = draw(st.one_of(st.none(), st.sampled_from([0, 5, 10, 25])))
    use_tie = draw(st.booleans())
    return timestamps, two_keys, left, right, direction, exact, tol, use_tie


def _reference(left, right, *, by, direction, exact, tol, timestamps, use_tie):
    lf = pd.DataFrame(left, columns=["lid", "k", "k2", "t"])
    rf = pd.DataFrame(right, columns=["k", "k2", "t", "v", "seq"]).astype({"v": "float64"})
    rf["rt"] = rf["t"]
    ok_r = rf["t"].notna() & rf[by].notna().all(axis=1)
    rf = rf[ok_r]
    # resolve exact duplicates: greatest tie breaker (seq) or, without one, the greatest payload
    if use_tie:
        rf = rf.sort_values([*by, "t", "seq"]).drop_duplicates([*by, "t"], keep="last")
    else:
        rf = rf.assign(_vnull=rf["v"].notna()).sort_values([*by, "t", "_vnull", "v", "seq"])
        rf = rf.drop_duplicates([*by, "t"], keep="last").drop(columns="_vnull")
    ok_l = lf["t"].notna() & lf[by].notna().all(axis=1)
    good, bad = lf[ok_l], lf[~ok_l]
    tolerance = None if tol is None else (pd.Timedelta(minutes=tol) if timestamps else tol)
    if timestamps:
        good = good.assign(t=pd.to_datetime(good["t"], utc=True))
        rf = rf.assign(t=pd.to_datetime(rf["t"], utc=True), rt=pd.to_datetime(rf["rt"], utc=True))
    else:
        good = good.assign(t=good["t"].astype("int64"))
        rf = rf.assign(t=rf["t"].astype("int64"))
    if rf.empty or good.empty:
        return Counter([(r.lid, None, None, None) for r in lf.itertuples()])
    good = good.astype({"k2": "int64"})
    rf = rf.astype({"k2": "int64", "seq": "int64"})
    merged = pd.merge_asof(
        good.sort_values("t"), rf.drop(columns=[c for c in ("k", "k2") if c not in by]).sort_values("t"),
        on="t", by=by, direction=direction, allow_exact_matches=exact, tolerance=tolerance,
    )
    out = [(r.lid, _norm(r.rt), _norm(r.v), _norm(r.seq)) for r in merged.itertuples()]
    out += [(r.lid, None, None, None) for r in bad.itertuples()]
    return Counter(out)


def _norm(value):
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.tz_convert("UTC").to_pydatetime().replace(tzinfo=None) if value.tzinfo else value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    if hasattr(value, "item"):
        value = value.item()
    return float(value) if isinstance(value, float) else int(value)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_asof_join_matches_pandas_merge_asof(spark, case):
    timestamps, two_keys, left, right, direction, exact, tol, use_tie = case
    ttype = "timestamp" if timestamps else "long"
    lschema = f"lid long, k string, k2 int, t {ttype}"
    rschema = f"k string, k2 int, t {ttype}, v double, seq long"
    ldf = spark.createDataFrame(left, lschema)
    rdf = spark.createDataFrame(right, rschema)
    rdf = rdf.withColumn("rt", rdf["t"])
    by = ["k", "k2"] if two_keys else ["k"]
    tolerance = None if tol is None else (timedelta(minutes=tol) if timestamps else tol)
    if not two_keys:
        rdf = rdf.drop("k2")
    out = asof_join(
        ldf, rdf, on="t", by=by, direction=direction, allow_exact_matches=exact, tolerance=tolerance,
        tie_breaker="seq" if use_tie else None,
    )
    rows = out.collect()
    # every left row exactly once, its own columns unchanged
    assert Counter((r.lid, r.k, r.k2, r.t) for r in rows) == Counter((x[0], x[1], x[2], x[3] if not timestamps or x[3] is None else x[3].replace(tzinfo=None)) for x in left)
    got = Counter((r.lid, _norm(r.rt), _norm(r.v), _norm(r.seq)) for r in rows)
    expected = _reference(left, right, by=by, direction=direction, exact=exact, tol=tol, timestamps=timestamps, use_tie=use_tie)
    assert got == expected
    # the right time column is kept, suffixed
    assert "t_right" in out.columns


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_hot_key_time_slicing_gives_the_same_rows(spark, case):
    """Force every key to be 'hot' (share 0) so each is cut into time slices with carried-in
    rows: the result must still equal pandas.merge_asof (backward lookups only)."""
    timestamps, two_keys, left, right, _direction, exact, tol, use_tie = case
    ttype = "timestamp" if timestamps else "long"
    ldf = spark.createDataFrame(left, f"lid long, k string, k2 int, t {ttype}")
    rdf = spark.createDataFrame(right, f"k string, k2 int, t {ttype}, v double, seq long")
    rdf = rdf.withColumn("rt", rdf["t"])
    by = ["k", "k2"] if two_keys else ["k"]
    if not two_keys:
        rdf = rdf.drop("k2")
    tolerance = None if tol is None else (timedelta(minutes=tol) if timestamps else tol)
    out = asof_join(
        ldf, rdf, on="t", by=by, allow_exact_matches=exact, tolerance=tolerance,
        tie_breaker="seq" if use_tie else None, hot_key_share=0.0,
    )
    got = Counter((r.lid, _norm(r.rt), _norm(r.v), _norm(r.seq)) for r in out.collect())
    expected = _reference(left, right, by=by, direction="backward", exact=exact, tol=tol, timestamps=timestamps, use_tie=use_tie)
    assert got == expected
