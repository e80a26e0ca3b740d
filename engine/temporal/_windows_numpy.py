"""Exact sliding windows of one partition, in numpy over Arrow (no Spark here).

Events are sorted by (key, time, tie order). For a target at ``t`` and a window of ``W`` units,
the events of its key with ``t - W < e <= t`` are the contiguous run ``[lo, hi)`` found by two
``searchsorted`` calls on packed (key code, time rank) pairs. Then per aggregate:

* counts and integer sums: differences of int64 prefix sums (exact);
* floating sums and means: differences of *compensated* prefix sums -- ``cumsum`` plus the exact
  rounding error of every step (TwoSum), itself prefix-summed -- so a window's sum does not
  inherit the rounding of the key's running total (no catastrophic cancellation). NaN and
  infinities are counted apart and decide the result as in Spark;
* stddev: two passes over the window's own values (mean, then squared deviations) when the
  windows hold few events in all, else compensated prefix sums of values shifted by the key's
  mean;
* min / max: a sparse table over the values' ranks (O(1) per window, Spark's order: NaN above
  every number);
* last: the latest event of the window (greatest time, then tie-breakers, then value; NULLs
  lowest) -- the whole tied group at that time is in the window, so it is a per-group lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.temporal._asof_numpy import key_codes, pack

DIRECT_FACTOR = 16  # stddev: direct two-pass when the windows hold <= 16 x the events in all


@dataclass(frozen=True)
class WindowAgg:
    column: str | None  # internal value column; None: count rows
    fn: str
    units: int
    integral: bool  # integer value column (sum is LONG)


def _arr(column: Any) -> Any:
    import pyarrow as pa

    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def dense_rank(values: Any) -> np.ndarray:
    """Dense ranks in Spark's ascending order: NULL 0, then values, NaN greatest."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = _arr(values)
    n = len(values)
    out = np.zeros(n, dtype=np.int64)
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    nan = np.zeros(n, dtype=bool)
    if pa.types.is_floating(values.type):
        nan = pc.fill_null(pc.is_nan(values), False).to_numpy(zero_copy_only=False)
    plain = valid & ~nan
    if plain.any():
        ranks = pc.rank(values.filter(pa.array(plain)), sort_keys="ascending", tiebreaker="dense")
        out[plain] = ranks.to_numpy().astype(np.int64)
    out[nan] = out.max(initial=0) + 1
    return out


def _compensated_prefix(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums (with a leading 0) as high + low parts: ``cumsum`` and its exact step errors."""
    s = np.cumsum(x)
    prev = np.concatenate(([0.0], s[:-1]))
    bb = s - prev
    err = (prev - (s - bb)) + (x - bb)
    return np.concatenate(([0.0], s)), np.concatenate(([0.0], np.cumsum(err)))


def _range_sum(hi_lo: tuple[np.ndarray, np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    high, low = hi_lo
    return (high[hi] - high[lo]) + (low[hi] - low[lo])


def _int_prefix(x: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(x, dtype=np.int64)))


class _SparseTable:
    """Range arg-min / arg-max of ``rank`` over ``[lo, hi)`` in O(1) per query."""

    def __init__(self, rank: np.ndarray, longest: int, *, largest: bool) -> None:
        self.largest = largest
        key = -rank if largest else rank
        self.key = key
        levels = [np.arange(len(rank), dtype=np.int64)]
        span = 1
        while span * 2 <= max(longest, 1):
            prev = levels[-1]
            a, b = prev[: len(prev) - span], prev[span:]
            levels.append(np.where(key[b] < key[a], b, a))
            span *= 2
        self.levels = levels

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        length = np.maximum(hi - lo, 1)
        k = np.floor(np.log2(length)).astype(np.int64)
        out = np.empty(len(lo), dtype=np.int64)
        for level in np.unique(k):
            sel = k == level
            table = self.levels[level]
            a = table[lo[sel]]
            b = table[hi[sel] - (1 << level)]
            out[sel] = np.where(self.key[b] < self.key[a], b, a)
        return out


def aggregate_partition(table: Any, *, keys: Sequence[str], is_event: np.ndarray, is_target: np.ndarray,
                        ties: Sequence[str], aggs: Sequence[WindowAgg]) -> tuple[np.ndarray, list[Any]]:
    """The target rows of ``table`` (``__ff_t`` the LONG time) and one Arrow array per aggregate."""
    import pyarrow as pa
    import pyarrow.compute as pc

    code = key_codes([table], keys)
    tcol = _arr(table.column("__ff_t"))
    t_ok = tcol.is_valid().to_numpy(zero_copy_only=False)
    t = pc.fill_null(tcol, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    usable = t_ok & (code >= 0)
    targets = np.flatnonzero(is_target)
    ev = np.flatnonzero(is_event & usable)
    tie_ranks = [dense_rank(table.column(c).take(pa.array(ev))) for c in ties]
    packed = pack(code[ev], t[ev], np.ones(len(ev), dtype=bool))
    if not len(ev):
        order = np.zeros(0, dtype=np.int64)
    elif tie_ranks:
        order = np.lexsort((*reversed(tie_ranks), packed))
    else:
        order = np.argsort(packed, kind="stable")
    ev = ev[order]
    tie_ranks = [r[order] for r in tie_ranks]
    e_code, e_t = code[ev], t[ev]
    tg_ok = usable[targets]
    tg_code, tg_t = code[targets], t[targets]

    out: list[Any] = []
    cache: dict[Any, Any] = {}
    for agg in aggs:
        lo, hi = _bounds(e_code, e_t, tg_code, tg_t, tg_ok, agg.units, cache)
        out.append(_one(table, agg, ev, lo, hi, tg_ok, e_code, e_t, tie_ranks, cache))
    return targets, out


def _bounds(e_code: np.ndarray, e_t: np.ndarray, tg_code: np.ndarray, tg_t: np.ndarray, tg_ok: np.ndarray,
            units: int, cache: dict[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    if ("bounds", units) in cache:
        return cache[("bounds", units)]
    lo_t = tg_t - np.int64(units)
    n_e, n_t = len(e_t), len(tg_t)
    usable = np.concatenate((np.ones(n_e, dtype=bool), tg_ok, tg_ok))
    codes = np.concatenate((e_code, np.where(tg_ok, tg_code, 0), np.where(tg_ok, tg_code, 0)))
    packed = pack(codes, np.concatenate((e_t, tg_t, lo_t)), usable)
    packed_e, packed_hi, packed_lo = packed[:n_e], packed[n_e:n_e + n_t], packed[n_e + n_t:]
    hi = np.searchsorted(packed_e, packed_hi, side="right")
    lo = np.searchsorted(packed_e, packed_lo, side="right")
    lo = np.where(tg_ok, lo, 0)
    hi = np.where(tg_ok, hi, 0)
    cache[("bounds", units)] = (lo, hi)
    return lo, hi


def _one(table: Any, agg: WindowAgg, ev: np.ndarray, lo: np.ndarray, hi: np.ndarray, tg_ok: np.ndarray,
         e_code: np.ndarray, e_t: np.ndarray, tie_ranks: list[np.ndarray], cache: dict[Any, Any]) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if agg.column is None:
        return pa.array(hi - lo, type=pa.int64())
    if ("values", agg.column) not in cache:
        taken = _arr(table.column(agg.column)).take(pa.array(ev))
        is_valid = taken.is_valid().to_numpy(zero_copy_only=False)
        cache[("values", agg.column)] = (taken, is_valid, _int_prefix(is_valid.astype(np.int64)))
    values, valid, n_prefix = cache[("values", agg.column)]
    n = n_prefix[hi] - n_prefix[lo]
    if agg.fn == "count":
        return pa.array(n, type=pa.int64())
    if agg.fn in ("min", "max", "last"):
        if len(ev) == 0:
            return pa.nulls(len(lo), type=values.type)
        rank = dense_rank(values)
        if agg.fn == "last":
            return values.take(pa.array(_last(rank, lo, hi, e_code, e_t, tie_ranks), mask=hi <= lo))
        longest = int((hi - lo).max(initial=0))
        sentinel = rank.max(initial=0) + 1
        table_rank = np.where(valid, rank, -1 if agg.fn == "max" else sentinel)
        q_lo = np.minimum(lo, len(ev) - 1)
        q_hi = np.where(hi > lo, hi, q_lo + 1)
        best = _SparseTable(table_rank, longest, largest=agg.fn == "max").query(q_lo, q_hi)
        return values.take(pa.array(best, mask=n == 0))
    empty = n == 0
    if agg.integral:
        x = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        prefix = _int_prefix(x)
        total = prefix[hi] - prefix[lo]
        if agg.fn == "sum":
            return pa.array(total, type=pa.int64(), mask=empty)
        x = x.astype(np.float64)
        if agg.fn == "mean":
            return pa.array(total.astype(np.float64) / np.maximum(n, 1), mask=empty)
    else:
        x = pc.fill_null(values, 0.0).to_numpy(zero_copy_only=False).astype(np.float64)
    special, special_value = _specials(x, lo, hi)
    finite = np.where(np.isfinite(x), x, 0.0)
    if agg.fn in ("sum", "mean"):
        if ("prefix", agg.column) not in cache:
            cache[("prefix", agg.column)] = _compensated_prefix(finite)
        total = _range_sum(cache[("prefix", agg.column)], lo, hi)
        total = np.where(special, special_value, total)
        result = total if agg.fn == "sum" else total / np.maximum(n, 1)
        return pa.array(result, type=pa.float64(), mask=empty)
    # stddev
    std = _stddev(finite, valid, lo, hi, n, e_code)
    std = np.where(special, np.nan, std)
    return pa.array(std, type=pa.float64(), mask=n < 2)


def _specials(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per window: whether it holds a NaN or an infinity, and then the sum Spark gives (NaN if
    any NaN or both infinities, else that infinity)."""
    n_nan, n_pos, n_neg = ((p[hi] - p[lo]) for p in map(_int_prefix, (np.isnan(x), np.isposinf(x), np.isneginf(x))))
    special = (n_nan + n_pos + n_neg) > 0
    value = np.where((n_nan > 0) | ((n_pos > 0) & (n_neg > 0)), np.nan, np.where(n_pos > 0, np.inf, -np.inf))
    return special, value


def _stddev(x: np.ndarray, valid: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: np.ndarray,
            e_code: np.ndarray) -> np.ndarray:
    lengths = hi - lo
    total = int(lengths.sum())
    sums = _range_sum(_compensated_prefix(x), lo, hi)
    mean = sums / np.maximum(n, 1)
    if total <= DIRECT_FACTOR * max(len(x), 1):
        idx = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(total)
        owner = np.repeat(np.arange(len(lo)), lengths)
        dev = np.where(valid[idx], x[idx] - mean[owner], 0.0)
        m2 = np.bincount(owner, weights=dev * dev, minlength=len(lo))
    else:
        # shift by the key's mean so the squares stay small, then compensated prefix sums
        counts = np.bincount(e_code - e_code.min(initial=0), weights=valid.astype(np.float64)) if len(x) else np.zeros(0)
        sums_k = np.bincount(e_code - e_code.min(initial=0), weights=x) if len(x) else np.zeros(0)
        shift = (sums_k / np.maximum(counts, 1))[e_code - e_code.min(initial=0)] if len(x) else x
        y = np.where(valid, x - shift, 0.0)
        s1 = _range_sum(_compensated_prefix(y), lo, hi)
        s2 = _range_sum(_compensated_prefix(y * y), lo, hi)
        m2 = np.maximum(s2 - s1 * s1 / np.maximum(n, 1), 0.0)
    return np.sqrt(m2 / np.maximum(n - 1, 1))


def _last(rank: np.ndarray, lo: np.ndarray, hi: np.ndarray, e_code: np.ndarray, e_t: np.ndarray,
          tie_ranks: list[np.ndarray]) -> np.ndarray:
    """The event index of each window's last event: the greatest value rank within the group of
    events tied (key, time, tie-breakers) with the window's final event."""
    n = len(rank)
    if n == 0:
        return np.zeros(len(lo), dtype=np.int64)
    new_group = np.ones(n, dtype=bool)
    same = (e_code[1:] == e_code[:-1]) & (e_t[1:] == e_t[:-1])
    for r in tie_ranks:
        same &= r[1:] == r[:-1]
    new_group[1:] = ~same
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    best_rank = np.maximum.reduceat(rank, starts)
    # within a group (contiguous), the first event holding the group's best rank
    is_best = rank == best_rank[group]
    candidate = np.where(is_best, np.arange(n), n)
    first_best = np.minimum.reduceat(candidate, starts)
    end = np.maximum(hi - 1, 0)
    return first_best[group[end]]
