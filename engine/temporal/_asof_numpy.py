"""The vectorised as-of match of one partition, in numpy over Arrow (no Spark here).

A partition holds every row of its keys: the left (spine) rows and the rows of one or several
right tables, each tagged with its side. The match for one right side:

1. key columns become one integer code per row (exact: dictionary encoding, NULL -> no code);
2. times become dense ranks over the partition, so ``(key code, time rank)`` packs into one
   int64 that sorts like ``(key, time)``;
3. right rows are sorted by that pair and their tie order (the tie-breaker columns, or the
   payload columns without one, NULLs lowest) and only the last row of every ``(key, time)`` is
   kept -- the tie winner;
4. ``numpy.searchsorted`` of every left row's pair in the right pairs gives the backward
   (greatest ``e <= t``, or ``e < t``) and forward (least ``e >= t``, or ``e > t``) candidate
   in O(log n); a candidate of another key, beyond the tolerance, or of a NULL key/time is no
   match; ``nearest`` keeps the closer, backward on equal distance (as pandas).

The result is one row index per left row (or -1), so payload columns are fetched with one
Arrow ``take`` each, whatever their types.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SIDE = "__ff_side"
TIME = "__ff_t"
BATCH_ROWS = 65_536


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


def key_codes(table: Any, keys: Sequence[str]) -> np.ndarray:
    """One int64 code per row, equal iff all key columns are equal; -1 where any key is NULL."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    code = np.zeros(n, dtype=np.int64)
    null = np.zeros(n, dtype=bool)
    for key in keys:
        column = table.column(key)
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        encoded = pc.dictionary_encode(column, null_encoding="mask")
        width = len(encoded.dictionary) + 1
        null |= encoded.indices.is_null().to_numpy(zero_copy_only=False)
        codes = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
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


def match(table: Any, spec: PartitionSpec) -> tuple[np.ndarray, list[np.ndarray]]:
    """The left row indices and, per right side, the matched row index (-1: no match) of each."""
    side = table.column(SIDE).to_numpy()
    code = key_codes(table, spec.keys)
    t, t_valid = _numbers(table.column(TIME))
    usable = t_valid & (code >= 0)
    left_rows = np.flatnonzero(side == 0)
    _, rank = np.unique(np.where(usable, t, t[usable].min() if usable.any() else 0), return_inverse=True)
    width = np.int64(rank.max() + 1 if len(rank) else 1)
    packed = code * width + rank.astype(np.int64)
    l_ok = usable[left_rows]
    l_rows = left_rows[l_ok]
    lp = packed[l_rows]
    matches = []
    for i, s in enumerate(spec.sides):
        rows = np.flatnonzero((side == i + 1) & usable)
        found = np.full(len(left_rows), -1, dtype=np.int64)
        if len(rows) and len(l_rows):
            tie = _order_rank(table, rows, s.ties if s.ties else s.payload)
            order = np.lexsort((tie, packed[rows]))
            rows = rows[order]
            rp = packed[rows]
            last = np.ones(len(rows), dtype=bool)
            last[:-1] = rp[1:] != rp[:-1]
            rows, rp = rows[last], rp[last]
            found[l_ok] = _pick(rows, rp, code, t, l_rows, lp, s)
        matches.append(found)
    return left_rows, matches


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


def asof_partition(batches: Iterator[Any], spec: PartitionSpec, out_names: Sequence[str]) -> Iterator[Any]:
    """``mapInArrow`` body: all batches of the partition in, the joined left rows out."""
    import pyarrow as pa

    batches = list(batches)
    if not batches:
        return
    table = pa.Table.from_batches(batches)
    del batches
    if table.num_rows == 0:
        return
    left_rows, matches = match(table, spec)
    if len(left_rows) == 0:
        return
    picked = pa.array(left_rows)
    columns = [table.column(c).take(picked) for c in spec.left]
    for s, found in zip(spec.sides, matches, strict=True):
        index = pa.array(found, mask=found < 0)
        columns.extend(table.column(c).take(index) for c in s.payload)
    out = pa.Table.from_arrays(columns, names=list(out_names))
    yield from out.combine_chunks().to_batches(max_chunksize=BATCH_ROWS)
