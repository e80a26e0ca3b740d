"""The exact range statistics behind :mod:`engine.temporal._windows_numpy`: prefix sums that do
not cancel, NaN / infinity bookkeeping, range min / max by a sparse table, the sample standard
deviation, and the last event of a window. Every function works on events already sorted by
(key, time, tie order) and windows given as index ranges ``[lo, hi)`` into them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DIRECT_FACTOR", "SparseTable", "compensated_prefix", "int_prefix", "last_in_window", "split_specials", "stddev"]

DIRECT_FACTOR = 16  # stddev: direct two-pass when the windows hold <= 16 x the events in all


def int_prefix(x: np.ndarray) -> np.ndarray:
    """Exact int64 prefix sums with a leading 0."""
    out = np.empty(len(x) + 1, dtype=np.int64)
    out[0] = 0
    np.cumsum(x, dtype=np.int64, out=out[1:])
    return out


def compensated_prefix(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums (with a leading 0) as high + low parts: ``cumsum`` and its exact step errors
    (TwoSum), so ``(high[j] - high[i]) + (low[j] - low[i])`` is a window's sum without the
    rounding of the running total."""
    high = np.empty(len(x) + 1, dtype=np.float64)
    high[0] = 0.0
    np.cumsum(x, out=high[1:])
    prev, s = high[:-1], high[1:]
    bb = s - prev
    err = (prev - (s - bb)) + (x - bb)
    low = np.empty(len(x) + 1, dtype=np.float64)
    low[0] = 0.0
    np.cumsum(err, out=low[1:])
    return high, low


def range_sum(prefix: tuple[np.ndarray, np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    high, low = prefix
    return (high[hi] - high[lo]) + (low[hi] - low[lo])


class Specials:
    """Where a column holds NaN or infinities: per window, whether it holds any, and the sum Spark
    gives then (NaN if any NaN or both infinities, else that infinity)."""

    def __init__(self, x: np.ndarray) -> None:
        self.prefix = [int_prefix(m) for m in (np.isnan(x), np.isposinf(x), np.isneginf(x))]

    def _counts(self, lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
        return [p[hi] - p[lo] for p in self.prefix]

    def any_in(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        n_nan, n_pos, n_neg = self._counts(lo, hi)
        return (n_nan + n_pos + n_neg) > 0

    def sums(self, total: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        n_nan, n_pos, n_neg = self._counts(lo, hi)
        value = np.where((n_nan > 0) | ((n_pos > 0) & (n_neg > 0)), np.nan, np.where(n_pos > 0, np.inf, -np.inf))
        return np.where((n_nan + n_pos + n_neg) > 0, value, total)


def split_specials(x: np.ndarray) -> tuple[np.ndarray, Specials | None]:
    """The values with NaN and infinities as 0, and where those were (None: everything finite)."""
    ok = np.isfinite(x)
    if ok.all():
        return x, None
    return np.where(ok, x, 0.0), Specials(x)


class SparseTable:
    """Range arg-min / arg-max of ``rank`` over ``[lo, hi)`` in O(1) per query."""

    def __init__(self, rank: np.ndarray, longest: int, *, largest: bool) -> None:
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


def stddev(x: np.ndarray, valid: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: np.ndarray,
           e_code: np.ndarray) -> np.ndarray:
    """The sample standard deviation of the valid ``x`` in each window (meaningful where n >= 2)."""
    lengths = hi - lo
    total = int(lengths.sum())
    mean = range_sum(compensated_prefix(x), lo, hi) / np.maximum(n, 1)
    if total <= DIRECT_FACTOR * max(len(x), 1):
        idx = np.repeat(lo - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(total)
        owner = np.repeat(np.arange(len(lo)), lengths)
        dev = np.where(valid[idx], x[idx] - mean[owner], 0.0)
        m2 = np.bincount(owner, weights=dev * dev, minlength=len(lo))
    else:
        # shift by the key's mean so the squares stay small, then compensated prefix sums
        base = e_code.min(initial=0)
        counts = np.bincount(e_code - base, weights=valid.astype(np.float64)) if len(x) else np.zeros(0)
        sums_k = np.bincount(e_code - base, weights=x) if len(x) else np.zeros(0)
        shift = (sums_k / np.maximum(counts, 1))[e_code - base] if len(x) else x
        y = np.where(valid, x - shift, 0.0)
        s1 = range_sum(compensated_prefix(y), lo, hi)
        s2 = range_sum(compensated_prefix(y * y), lo, hi)
        m2 = np.maximum(s2 - s1 * s1 / np.maximum(n, 1), 0.0)
    return np.sqrt(m2 / np.maximum(n - 1, 1))


def last_in_window(rank: np.ndarray, lo: np.ndarray, hi: np.ndarray, e_code: np.ndarray, e_t: np.ndarray,
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
