"""The DuckDB references and the row-for-row checks of every plan's output against them.

As-of: the reference is DuckDB's ``ASOF LEFT JOIN`` (backward, ``f.ts <= s.ts``, by ``key``),
kept as ``(spine_id, f1, f2, f3, matched_ts)`` in ``reference_asof.parquet``. A plan's output is
right iff it has exactly the reference's multiset of ``(spine_id, f1, f2, f3)`` rows (``EXCEPT
ALL`` both ways, NULLs equal; features are random doubles, so they identify the matched row),
plus the same matched time where the plan returns it.

Windows: the reference is a DuckDB range join + ``GROUP BY`` over ``t - w < e <= t``. Counts must
be equal and means equal within 1e-9 relative (summation order differs between engines).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "OutputColumns", "VerifyResult", "asof_reference", "verify_asof", "verify_windows", "windows_events_reference",
    "windows_reference",
]

WINDOWS_DAYS = (7, 30)


@dataclass(frozen=True)
class OutputColumns:
    """Where a plan's output keeps the columns the check compares (None: not returned)."""

    spine_id: str = "spine_id"
    f1: str = "f1"
    f2: str = "f2"
    f3: str = "f3"
    matched_ts: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    rows: int
    detail: str


def _connect(threads: int = 2):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    con.execute("SET TimeZone='UTC'")
    con.execute("SET preserve_insertion_order=false")
    con.execute("SET enable_progress_bar=false")
    return con


def _parquet(path: Path | str) -> str:
    path = Path(path)
    pattern = str(path / "*.parquet") if path.is_dir() else str(path)
    return "read_parquet('" + pattern.replace("'", "''") + "')"


ASOF_SQL = """
SELECT s.spine_id, f.f1, f.f2, f.f3, f.ts AS matched_ts
FROM {spine} s ASOF LEFT JOIN {features} f ON s.key = f.key AND f.ts <= s.ts
"""


def asof_reference(features: Path, spine: Path, out: Path) -> int:
    """Write the reference as-of result; return its row count."""
    con = _connect()
    sql = ASOF_SQL.format(spine=_parquet(spine), features=_parquet(features))
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
    return con.execute(f"SELECT count(*) FROM {_parquet(out)}").fetchone()[0]


def verify_asof(output: Path, reference: Path, cols: OutputColumns) -> VerifyResult:
    con = _connect()
    picked = [f'"{cols.spine_id}" AS spine_id', f'"{cols.f1}" AS f1', f'"{cols.f2}" AS f2', f'"{cols.f3}" AS f3']
    wanted = ["spine_id", "f1", "f2", "f3"]
    if cols.matched_ts:
        picked.append(f'"{cols.matched_ts}" AS matched_ts')
        wanted.append("matched_ts")
    got = f"SELECT {', '.join(picked)} FROM {_parquet(output)}"
    want = f"SELECT {', '.join(wanted)} FROM {_parquet(reference)}"
    n_got = con.execute(f"SELECT count(*) FROM ({got})").fetchone()[0]
    n_want = con.execute(f"SELECT count(*) FROM ({want})").fetchone()[0]
    missing = con.execute(f"SELECT count(*) FROM ({want} EXCEPT ALL {got})").fetchone()[0]
    extra = con.execute(f"SELECT count(*) FROM ({got} EXCEPT ALL {want})").fetchone()[0]
    ok = n_got == n_want and missing == 0 and extra == 0
    detail = "identical" if ok else f"rows {n_got} vs reference {n_want}; {missing} reference rows missing, {extra} extra"
    return VerifyResult(ok, n_got, detail)


def window_columns(days: int) -> tuple[str, str]:
    return f"f1_mean_{days}d", f"n_{days}d"


WINDOWS_SQL = """
SELECT s.spine_id,
{aggs}
FROM {spine} s LEFT JOIN {features} e
  ON e.key = s.key AND e.ts <= s.ts AND e.ts > s.ts - INTERVAL {widest} DAY
GROUP BY s.spine_id
"""


def windows_reference(features: Path, spine: Path, out: Path) -> int:
    """Write the reference window aggregates (f1 mean and row count over 7 and 30 days)."""
    aggs = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        inside = f"e.ts > s.ts - INTERVAL {days} DAY"
        aggs.append(f"  avg(CASE WHEN {inside} THEN e.f1 END) AS {mean}")
        aggs.append(f"  count(CASE WHEN {inside} THEN 1 END) AS {count}")
    sql = WINDOWS_SQL.format(
        aggs=",\n".join(aggs), spine=_parquet(spine), features=_parquet(features), widest=max(WINDOWS_DAYS)
    )
    con = _connect()
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
    return con.execute(f"SELECT count(*) FROM {_parquet(out)}").fetchone()[0]


EVENTS_WINDOWS_SQL = """
SELECT s.key, s.ts,
{aggs}
FROM {features} s LEFT JOIN {features} e
  ON e.key = s.key AND e.ts <= s.ts AND e.ts > s.ts - INTERVAL {widest} DAY
GROUP BY s.key, s.ts
"""


def windows_events_reference(features: Path, spine: Path, out: Path) -> int:
    """The reference of windows evaluated at every event (no spine): (key, ts) identify an event."""
    aggs = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        inside = f"e.ts > s.ts - INTERVAL {days} DAY"
        aggs.append(f"  avg(CASE WHEN {inside} THEN e.f1 END) AS {mean}")
        aggs.append(f"  count(CASE WHEN {inside} THEN 1 END) AS {count}")
    sql = EVENTS_WINDOWS_SQL.format(aggs=",\n".join(aggs), features=_parquet(features), widest=max(WINDOWS_DAYS))
    con = _connect()
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
    return con.execute(f"SELECT count(*) FROM {_parquet(out)}").fetchone()[0]


def verify_windows(output: Path, reference: Path, *, spine_id: str = "spine_id",
                   ids: tuple[str, ...] | None = None) -> VerifyResult:
    """``ids``: the columns identifying a row in both (default: the spine id)."""
    con = _connect()
    id_cols = ids or (spine_id,)
    n_got = con.execute(f"SELECT count(*) FROM {_parquet(output)}").fetchone()[0]
    n_want = con.execute(f"SELECT count(*) FROM {_parquet(reference)}").fetchone()[0]
    listed = ", ".join(f'"{c}"' for c in id_cols)
    dup = con.execute(
        f'SELECT count(*) FROM (SELECT {listed} FROM {_parquet(output)} GROUP BY ALL HAVING count(*) > 1)'
    ).fetchone()[0]
    checks = []
    for days in WINDOWS_DAYS:
        mean, count = window_columns(days)
        checks.append(f"g.{count} IS DISTINCT FROM w.{count}")
        checks.append(
            f"(g.{mean} IS NULL) <> (w.{mean} IS NULL) OR abs(g.{mean} - w.{mean}) > 1e-9 * greatest(1.0, abs(w.{mean}))"
        )
    on = " AND ".join(f'g."{c}" = w.{"spine_id" if ids is None else c}' for c in id_cols)
    bad = con.execute(
        f"""SELECT count(*) FROM {_parquet(reference)} w
        LEFT JOIN {_parquet(output)} g ON {on}
        WHERE g."{id_cols[0]}" IS NULL OR {' OR '.join(checks)}"""
    ).fetchone()[0]
    ok = n_got == n_want and dup == 0 and bad == 0
    detail = "identical" if ok else f"rows {n_got} vs reference {n_want}; {dup} duplicated spine ids, {bad} rows differ"
    return VerifyResult(ok, n_got, detail)
