"""Exact sliding windows of one bucket of keys, in numpy over Arrow (no Spark here).

A bucket is two Arrow tables: its events and its targets (the spine rows), or the events alone
when every event is a target at its own time. Keys become one integer code per row (dictionary
encoding shared by both tables, NULL -> no code); times become int64 numbers that order like
them (microseconds for TIMESTAMP and TIMESTAMP_NTZ -- the wall-clock read as UTC --, days for
DATE, the integer itself), read straight from the Arrow buffers. The usable events (key and time
not NULL) are sorted by (key code, time, tie order); for a target at ``t`` and a window of ``W``
units, the events of its key with ``t - W < e <= t`` are the contiguous run ``[lo, hi)`` found by
``searchsorted`` on packed (key code, time) int64 values. Then per aggregate:

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

from engine.temporal._windows_stats import (
    SparseTable,
    compensated_prefix,
    int_prefix,
    last_in_window,
    split_specials,
    stddev,
)

__all__ = ["Columns", "WindowAgg", "aggregate_bucket", "dense_rank", "time_numbers"]

_INT64_MIN = np.iinfo(np.int64).min


@dataclass(frozen=True)
class WindowAgg:
    column: str | None  # the events' value column; None: count rows
    fn: str
    units: int  # the window: t - units < e <= t
    integral: bool  # integer value column (sum is LONG)


@dataclass(frozen=True)
class Columns:
    """Where the kernel finds keys and times in the two tables, and the events' tie-breakers."""

    event_keys: Sequence[str]
    event_time: str
    target_keys: Sequence[str] = ()  # unused when the events are their own targets
    target_time: str = ""
    ties: Sequence[str] = ()


def _arr(column: Any) -> Any:
    import pyarrow as pa

    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _raw(array: Any, dtype: Any) -> np.ndarray:
    """The values buffer of a fixed-width Arrow array as numpy, zero-copy (NULL slots: any value)."""
    buffer = array.buffers()[1]
    if buffer is None:
        return np.zeros(len(array), dtype=dtype)
    return np.frombuffer(buffer, dtype=dtype, count=array.offset + len(array))[array.offset:]


def _valid(array: Any) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), dtype=bool)
    return array.is_valid().to_numpy(zero_copy_only=False)


def time_numbers(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """A time column as int64 numbers that order like it, and its validity."""
    import pyarrow as pa

    array = _arr(column)
    t = array.type
    if pa.types.is_timestamp(t) and t.unit != "us":
        array, t = array.cast(pa.timestamp("us", t.tz)), pa.timestamp("us", t.tz)
    if pa.types.is_timestamp(t) or pa.types.is_date32(t) or pa.types.is_integer(t):
        width = {64: np.int64, 32: np.int32, 16: np.int16, 8: np.int8}[t.bit_width]
        dtype = np.dtype(width) if not pa.types.is_unsigned_integer(t) else np.dtype(f"u{t.bit_width // 8}")
        values = _raw(array, dtype).astype(np.int64, copy=False)
    else:
        raise TypeError(f"not a time column: {t}")
    return values, _valid(array)


def key_codes(columns: Sequence[Sequence[Any]]) -> np.ndarray:
    """One int64 code per row of the concatenated arrays of each key position (position ->
    arrays), equal iff all keys are equal; -1 where any key is NULL. Codes are dense (< rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    code = np.zeros(0, dtype=np.int64)
    null = None
    for position, arrays in enumerate(columns):
        chunks = [c for a in arrays for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
        encoded = pc.dictionary_encode(pa.concat_arrays(chunks), null_encoding="mask")
        indices = encoded.indices
        codes = _raw(indices, np.int32).astype(np.int64)
        is_null = ~_valid(indices)
        null = is_null if null is None else null | is_null
        if position == 0:
            code = codes
        else:
            _, code = np.unique(code * (len(encoded.dictionary) + 1) + codes, return_inverse=True)
            code = code.astype(np.int64)
    if null is not None and null.any():
        code = np.where(null, -1, code)
    return code


def minus(t: np.ndarray, units: int) -> np.ndarray:
    """``t - units``, saturating at the smallest int64 instead of wrapping."""
    return np.where(t < _INT64_MIN + units, _INT64_MIN, t - np.int64(units))


class _Axis:
    """Packs (key code, time) into one int64 that orders like the pair, for every time compared
    with the events' times: ``code * span + offset`` with the offset clamped into the events'
    time range (plus one slot below it), or -- when that would overflow -- the number of
    distinct event times <= t, which decides every ``e <= t`` and ``e > t`` alike."""

    def __init__(self, e_t: np.ndarray, n_codes: int) -> None:
        self.uniq = None
        lo, hi = (int(e_t.min()), int(e_t.max())) if len(e_t) else (0, 0)
        self.base, self.span = lo - 1, hi - lo + 2
        if (n_codes + 1) * self.span >= 2**62:
            self.uniq = np.unique(e_t)
            self.span = len(self.uniq) + 1

    def pack(self, code: np.ndarray, t: np.ndarray) -> np.ndarray:
        if self.uniq is None:
            offset = np.clip(t, self.base, self.base + self.span - 1) - self.base
        else:
            offset = np.searchsorted(self.uniq, t, side="right")
        return code * np.int64(self.span) + offset


def dense_rank(values: Any) -> np.ndarray:
    """Dense ranks in Spark's ascending order: NULL 0, then values, NaN greatest."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = _arr(values)
    n = len(values)
    out = np.zeros(n, dtype=np.int64)
    valid = _valid(values)
    nan = np.zeros(n, dtype=bool)
    if pa.types.is_floating(values.type):
        nan = pc.fill_null(pc.is_nan(values), False).to_numpy(zero_copy_only=False)
    plain = valid & ~nan
    if plain.all():
        return pc.rank(values, sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.int64)
    if plain.any():
        ranks = pc.rank(values.filter(pa.array(plain)), sort_keys="ascending", tiebreaker="dense")
        out[plain] = ranks.to_numpy().astype(np.int64)
    out[nan] = out.max(initial=0) + 1
    return out


def aggregate_bucket(events: Any, targets: Any | None, columns: Columns, aggs: Sequence[WindowAgg]) -> list[Any]:
    """One Arrow array per aggregate, aligned with the rows of ``targets`` -- or of ``events``
    when ``targets`` is None (every event evaluated at its own time)."""
    import pyarrow as pa

    n_e = events.num_rows
    key_arrays = [[events.column(k)] for k in columns.event_keys]
    if targets is not None:
        for arrays, k in zip(key_arrays, columns.target_keys, strict=True):
            arrays.append(targets.column(k))
    code = key_codes(key_arrays)
    t_e, ok_e = time_numbers(events.column(columns.event_time))
    ok_e &= code[:n_e] >= 0
    ev = np.flatnonzero(ok_e)
    axis = _Axis(t_e[ev], int(code.max(initial=0)) + 1)
    packed = axis.pack(code[ev], t_e[ev])
    tie_ranks = [dense_rank(_arr(events.column(c)).take(pa.array(ev))) for c in columns.ties]
    order = np.lexsort((*reversed(tie_ranks), packed)) if tie_ranks else np.argsort(packed)
    ev, packed = ev[order], packed[order]
    e_code, e_t = code[ev], t_e[ev]
    tie_ranks = [r[order] for r in tie_ranks]

    if targets is None:  # the targets are the sorted events themselves
        n_out, where, tg_code, tg_t = n_e, ev, e_code, e_t
        ends = np.flatnonzero(np.append(packed[1:] != packed[:-1], True)) + 1 if len(ev) else ev
        hi = np.repeat(ends, np.diff(ends, prepend=0))  # the end of each event's (key, time) run
    else:
        n_out = targets.num_rows
        t_t, ok_t = time_numbers(targets.column(columns.target_time))
        where = np.flatnonzero(ok_t & (code[n_e:] >= 0))
        tg_packed = axis.pack(code[n_e:][where], t_t[where])
        by_time = np.argsort(tg_packed)  # sorted needles: searchsorted runs ~4x faster
        where, tg_packed = where[by_time], tg_packed[by_time]
        tg_code, tg_t = code[n_e:][where], t_t[where]
        hi = np.searchsorted(packed, tg_packed, side="right")
    bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for units in dict.fromkeys(a.units for a in aggs):
        lo = np.searchsorted(packed, axis.pack(tg_code, minus(tg_t, units)), side="right")
        bounds[units] = (lo, hi)
    bucket = _Bucket(events, ev, e_code, e_t, tie_ranks)
    return [_place(*bucket.aggregate(a, *bounds[a.units]), where, n_out) for a in aggs]


def _place(values: Any, valid: np.ndarray | None, where: np.ndarray, n_out: int) -> Any:
    """Results computed for the rows ``where`` of the output, as an Arrow array of ``n_out`` rows
    (count 0 / NULL elsewhere). ``values`` is numpy, or Arrow with ``valid`` None."""
    import pyarrow as pa

    whole = len(where) == n_out and (n_out == 0 or (where[0] == 0 and bool((np.diff(where) == 1).all())))
    if isinstance(values, np.ndarray):
        if not whole:
            full = np.zeros(n_out, dtype=values.dtype)
            full[where] = values
            mask = np.zeros(n_out, dtype=bool) if valid is not None else None
            if mask is not None:
                mask[where] = valid
            values, valid = full, mask
        return pa.array(values, mask=None if valid is None or valid.all() else ~valid)
    if whole:
        return values
    index = np.full(n_out, -1, dtype=np.int64)
    index[where] = np.arange(len(where))
    return values.take(pa.array(index, mask=index < 0))


class _Bucket:
    """The sorted events of one bucket and their per-column prefix sums, shared by aggregates."""

    def __init__(self, events: Any, ev: np.ndarray, e_code: np.ndarray, e_t: np.ndarray,
                 tie_ranks: list[np.ndarray]) -> None:
        self.events, self.ev, self.e_code, self.e_t, self.tie_ranks = events, ev, e_code, e_t, tie_ranks
        self.cache: dict[Any, Any] = {}

    def _memo(self, key: Any, make: Any) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def arrow(self, column: str) -> Any:
        """The column's values of the sorted events, as Arrow."""
        import pyarrow as pa

        return self._memo(("arrow", column), lambda: _arr(self.events.column(column)).take(pa.array(self.ev)))

    def valid(self, column: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Validity of the sorted events' values, and its prefix sums (None: no NULL at all)."""
        def make() -> tuple[np.ndarray, np.ndarray | None]:
            array = _arr(self.events.column(column))
            if array.null_count == 0:
                return np.ones(len(self.ev), dtype=bool), None
            valid = _valid(array)[self.ev]
            return valid, int_prefix(valid)
        return self._memo(("valid", column), make)

    def numbers(self, column: str, integral: bool) -> np.ndarray:
        """The sorted events' values as int64 or float64, NULL as 0."""
        import pyarrow.compute as pc

        def make() -> np.ndarray:
            array = _arr(self.events.column(column))
            dtype = np.int64 if integral else np.float64
            if array.null_count:
                array = pc.fill_null(array, 0)
            return array.to_numpy(zero_copy_only=False)[self.ev].astype(dtype, copy=False)
        return self._memo(("numbers", column, integral), make)

    def aggregate(self, agg: WindowAgg, lo: np.ndarray, hi: np.ndarray) -> tuple[Any, np.ndarray | None]:
        """``(values, validity)`` of one aggregate for windows ``[lo, hi)`` of the sorted events."""
        if agg.column is None:
            return hi - lo, None
        valid, n_prefix = self.valid(agg.column)
        n = hi - lo if n_prefix is None else n_prefix[hi] - n_prefix[lo]
        if agg.fn == "count":
            return n, None
        if agg.fn in ("min", "max", "last"):
            return self._ordered(agg, lo, hi, n, valid), None
        if agg.integral and agg.fn in ("sum", "mean"):
            prefix = self._memo(("int_prefix", agg.column), lambda: int_prefix(self.numbers(agg.column, True)))
            total = prefix[hi] - prefix[lo]
            if agg.fn == "sum":
                return total, n > 0
            return total.astype(np.float64) / np.maximum(n, 1), n > 0
        x = self.numbers(agg.column, False)
        plain, special = self._memo(("finite", agg.column), lambda: split_specials(x))
        if agg.fn == "stddev":
            std = stddev(plain, valid, lo, hi, n, self.e_code)
            if special is not None:
                std = np.where(special.any_in(lo, hi), np.nan, std)
            return std, n >= 2
        prefix = self._memo(("prefix", agg.column), lambda: compensated_prefix(plain))
        total = (prefix[0][hi] - prefix[0][lo]) + (prefix[1][hi] - prefix[1][lo])
        if special is not None:
            total = special.sums(total, lo, hi)
        return (total if agg.fn == "sum" else total / np.maximum(n, 1)), n > 0

    def _ordered(self, agg: WindowAgg, lo: np.ndarray, hi: np.ndarray, n: np.ndarray, valid: np.ndarray) -> Any:
        import pyarrow as pa

        values = self.arrow(agg.column)  # type: ignore[arg-type]
        if len(self.ev) == 0:
            return pa.nulls(len(lo), type=values.type)
        rank = self._memo(("rank", agg.column), lambda: dense_rank(values))
        if agg.fn == "last":
            index = last_in_window(rank, lo, hi, self.e_code, self.e_t, self.tie_ranks)
            return values.take(pa.array(index, mask=hi <= lo))
        longest = int((hi - lo).max(initial=0))
        sentinel = rank.max(initial=0) + 1
        table_rank = np.where(valid, rank, -1 if agg.fn == "max" else sentinel)
        q_lo = np.minimum(lo, len(self.ev) - 1)
        q_hi = np.where(hi > lo, hi, q_lo + 1)
        best = SparseTable(table_rank, longest, largest=agg.fn == "max").query(q_lo, q_hi)
        return values.take(pa.array(best, mask=n == 0))
