"""The vectorised as-of match of one bucket of keys, in numpy over Arrow (no Spark here).

A bucket holds every row of its keys: a table of left (spine) rows and a table of the rows of
one or several right tables (tagged by side). The match for one right side:

1. key columns become one integer code per row (exact: dictionary encoding, NULL -> no code),
   numbered in the keys' own order (the sorted dictionary), so rows sorted by (key, time) --
   as the store writes a laid-out group's files -- have ascending codes;
2. ``(key code, time)`` packs into one int64 that sorts like the pair (the time offset, or its
   dense rank when the span would overflow or the time is a float);
3. right rows are sorted by that value (not at all when they already are, by a merge of runs
   when they are a few sorted runs -- several files of a bucket --, else numpy's default sort);
   rows sharing a (key, time) are ordered by their tie order (the tie-breaker columns, or the
   payload columns without one, NULLs lowest, NaN greatest) and only the last one is kept --
   the tie winner;
4. ``numpy.searchsorted`` of every left row's pair in the right pairs gives the backward
   (greatest ``e <= t``, or ``e < t``) and forward (least ``e >= t``, or ``e > t``) candidate
   in O(log n); a candidate of another key, beyond the tolerance, or of a NULL key/time is no
   match; ``nearest`` keeps the closer, backward on equal distance (as pandas).

The result is one row index per left row (or -1), so payload columns are fetched with one
Arrow ``take`` each, whatever their types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SIDE = "__ff_side"
TIME = "__ff_t"


@dataclass(frozen=True)
class SideSpec:
    """One right side inside the partition table (column names are the union's)."""

    payload: Sequence[str]
    ties: Sequence[str]  # empty: order equal times by the payload columns
    direction: str
    allow_exact_matches: bool
    tolerance: float | int | None


@dataclass(frozen=True)
class PartitionSpec:
    keys: Sequence[str]
    left: Sequence[str]  # the left columns, output first
    sides: Sequence[SideSpec]


def key_codes(tables: Sequence[Any], keys: Sequence[str]) -> np.ndarray:
    """One int64 code per row of the tables (in order), equal iff all key columns are equal,
    ascending with the keys (lexicographically, each key in Arrow's sort order); -1 where any
    key is NULL."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = sum(t.num_rows for t in tables)
    code = np.zeros(n, dtype=np.int64)
    null = np.zeros(n, dtype=bool)
    for position, key in enumerate(keys):
        chunks = [c for t in tables for c in t.column(key).chunks]
        column = pa.concat_arrays(chunks) if chunks else pa.array([], type=tables[0].schema.field(key).type)
        encoded = pc.dictionary_encode(column, null_encoding="mask")
        width = len(encoded.dictionary) + 1
        null |= encoded.indices.is_null().to_numpy(zero_copy_only=False)
        codes = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        try:  # first-seen numbers -> numbers in the keys' order
            rank = np.empty(len(encoded.dictionary), dtype=np.int64)
            rank[pc.sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(rank), dtype=np.int64)
            codes = rank[codes] if len(rank) else codes
        except pa.ArrowNotImplementedError:  # a type Arrow cannot sort: equal codes stay exact, unordered
            pass
        if position == 0:
            code = codes  # already dense codes
        else:
            _, code = np.unique(code * width + codes, return_inverse=True)
            code = code.astype(np.int64)
    code[null] = -1
    return code


def _numbers(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """The time as numpy values and a validity mask (NULL -> invalid)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    values = pc.fill_null(column, 0).to_numpy(zero_copy_only=False)
    return values, valid


def _order_rank(table: Any, rows: np.ndarray, columns: Sequence[str]) -> np.ndarray:
    """The rank of each of ``rows`` in ascending order of ``columns`` (NULLs first)."""
    if not columns:
        return np.zeros(len(rows), dtype=np.int64)
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays, names = [], []
    for i, column in enumerate(columns):
        values = table.column(column).take(pa.array(rows))
        if pa.types.is_floating(values.type):  # Spark orders NaN above every number
            arrays.append(pc.is_nan(values))
            names.append(f"n{i}")
        arrays.append(values)
        names.append(f"c{i}")
    sub = pa.Table.from_arrays(arrays, names=names)
    order = pc.sort_indices(sub, sort_keys=[(n, "ascending", "at_start") for n in names])
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order.to_numpy()] = np.arange(len(rows), dtype=np.int64)
    return rank


def match(left: Any, right: Any, spec: PartitionSpec) -> list[np.ndarray]:
    """Per right side: for each left row, the index of its matched row in ``right`` (or -1).
    ``right`` holds every side's rows, tagged by ``__ff_side`` (1, 2, ...) when there are several."""
    n_left = left.num_rows
    code = key_codes([left, right], spec.keys)
    t_left, ok_left = _numbers(left.column(TIME))
    t_right, ok_right = _numbers(right.column(TIME))
    t = np.concatenate((t_left, t_right.astype(t_left.dtype, copy=False)))
    usable = np.concatenate((ok_left, ok_right)) & (code >= 0)
    if len(spec.sides) > 1:
        side = np.concatenate((np.zeros(n_left, dtype=np.int8), right.column(SIDE).to_numpy()))
    else:
        side = np.concatenate((np.zeros(n_left, dtype=np.int8), np.ones(right.num_rows, dtype=np.int8)))
    packed = pack(code, t, usable)
    l_ok = usable[:n_left]
    l_rows = np.flatnonzero(l_ok)
    lp = packed[l_rows]
    matches = []
    for i, s in enumerate(spec.sides):
        rows = np.flatnonzero((side == i + 1) & usable)
        found = np.full(n_left, -1, dtype=np.int64)
        if len(rows) and len(l_rows):
            rows, rp = _winners(right, rows, packed, s, n_left)
            hit = _pick(rows, rp, code, t, l_rows, lp, s)
            found[l_ok] = np.where(hit >= 0, hit - n_left, -1)
        matches.append(found)
    return matches


def pack(code: np.ndarray, t: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """One int64 per row ordering like (key code, time): ``code * span + (t - min)`` when that
    fits (integer times), else ``code * n + dense time rank``. Only ``usable`` rows are meaningful."""
    if not usable.any():
        return np.zeros(len(code), dtype=np.int64)
    if t.dtype.kind in "iu":
        lo, hi = int(t[usable].min()), int(t[usable].max())
        span = hi - lo + 1
        if (int(code.max()) + 1) * span < 2**62:
            return code * np.int64(span) + np.where(usable, t - lo, 0).astype(np.int64)
    _, rank = np.unique(np.where(usable, t, t[usable].min()), return_inverse=True)
    return code * np.int64(rank.max() + 1) + rank.astype(np.int64)


def _winners(right: Any, rows: np.ndarray, packed: np.ndarray, s: SideSpec, n_left: int) -> tuple[np.ndarray, np.ndarray]:
    """The right rows sorted by (key, time), one per (key, time): the tie winner (greatest tie
    order). The tie order is computed only for rows that share their (key, time) with another."""
    # numpy's default (SIMD) sort, ~4x a stable sort on int64: the order among equal pairs does
    # not matter, the tie order below decides; rows equal in it too are identical payloads (no
    # tie breaker) or equal tie breakers, which the contract leaves open (Spark's input order
    # decided them before, and it is not fixed either)
    rows = rows[sort_order(packed[rows])]
    rp = packed[rows]
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = rp[1:] != rp[:-1]
    if not last.all():
        first = np.ones(len(rows), dtype=bool)
        first[1:] = last[:-1]
        tied = ~(first & last)  # rows in groups of two or more
        members = np.flatnonzero(tied)
        tie = _order_rank(right, rows[members] - n_left, s.ties if s.ties else s.payload)
        within = np.lexsort((tie, rp[members]))  # groups stay contiguous, greatest tie last
        rows = rows.copy()
        rows[members] = rows[members][within]
    return rows[last], rp[last]


# at most this share of descents (ends of sorted runs) and the values are a few sorted runs, which
# a merge of runs (numpy's stable sort: timsort) orders in O(n log runs); more: the default sort
RUNS_SHARE = 1 / 1024


def sort_order(values: np.ndarray) -> np.ndarray | slice:
    """The ascending order of ``values`` (indices; ``slice(None)`` when they are sorted already)."""
    descents = np.count_nonzero(values[1:] < values[:-1])
    if descents == 0:
        return slice(None)
    return np.argsort(values, kind="stable" if descents <= RUNS_SHARE * len(values) else None)


def _pick(rows: np.ndarray, rp: np.ndarray, code: np.ndarray, t: np.ndarray, l_rows: np.ndarray,
          lp: np.ndarray, s: SideSpec) -> np.ndarray:
    """For each usable left row: the right row (index into the table) it matches, or -1."""
    lt, lk = t[l_rows], code[l_rows]

    def candidate(backward: bool) -> tuple[np.ndarray, np.ndarray]:
        if backward:
            pos = np.searchsorted(rp, lp, side="right" if s.allow_exact_matches else "left") - 1
            inside = pos >= 0
        else:
            pos = np.searchsorted(rp, lp, side="left" if s.allow_exact_matches else "right")
            inside = pos < len(rp)
        pos = np.clip(pos, 0, len(rp) - 1)
        hit = rows[pos]
        ok = inside & (code[hit] == lk)
        distance = np.abs(lt - t[hit])
        if s.tolerance is not None:
            ok &= distance <= s.tolerance
        return np.where(ok, hit, -1), distance

    if s.direction != "nearest":
        return candidate(s.direction == "backward")[0]
    back, d_back = candidate(True)
    fwd, d_fwd = candidate(False)
    take_fwd = (fwd >= 0) & ((back < 0) | (d_fwd < d_back))
    return np.where(take_fwd, fwd, back)


def asof_partition(left: Any, right: Any, spec: PartitionSpec, out_names: Sequence[str]) -> Any:
    """``cogroup().applyInArrow`` body: one bucket's left and right rows in, its left rows out
    with every side's matched payload."""
    import pyarrow as pa

    if left.num_rows and right.num_rows:
        matches = match(left, right, spec)
    else:
        matches = [np.full(left.num_rows, -1, dtype=np.int64)] * len(spec.sides)
    columns = [left.column(c) for c in spec.left]
    for s, found in zip(spec.sides, matches, strict=True):
        index = pa.array(found, mask=found < 0)
        columns.extend(right.column(c).take(index) for c in s.payload)
    return pa.Table.from_arrays(columns, names=list(out_names))
