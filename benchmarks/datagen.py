"""Deterministic synthetic data for the as-of and window benchmarks.

Each size is written once to ``benchmarks/data/<size>/`` as two Parquet files and reused:

* ``features.parquet`` (F): ``key`` int64, ``ts`` timestamp[us, UTC] at whole seconds spread over
  one year, ``f1``/``f2``/``f3`` double (standard normal, never NULL, so tempo's per-column
  "last non-null" fill returns the same rows as row semantics). ``(key, ts)`` is unique, so no
  plan has to break time ties (Feast's SQL would duplicate a spine row on a tie).
* ``spine.parquet`` (S): ``key`` int64, ``ts`` timestamp[us, UTC], ``spine_id`` int64 (0..S-1).

Rows are written in random order (no plan gets sorted input for free). Everything comes from one
seeded ``numpy`` generator per size, so the files are identical on every machine.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["SIZES", "DataPaths", "Size", "ensure_data", "generate"]

DATA_ROOT = Path(__file__).resolve().parent / "data"
START_UTC = np.datetime64("2024-01-01T00:00:00", "s")
YEAR_S = 365 * 86_400
FEATURE_COLUMNS = ("f1", "f2", "f3")
FORMAT_VERSION = 1  # bump when the generator changes, so stale files are regenerated


@dataclass(frozen=True)
class Size:
    name: str
    n_features: int  # F
    n_spine: int  # S
    n_keys: int  # K
    hot_share: float = 0.0  # share of both F and S owned by key 0 (the skewed size)
    seed: int = 42


SIZES: dict[str, Size] = {
    s.name: s
    for s in (
        Size("tiny", 400, 200, 20, seed=7),  # the smoke test's size
        Size("small", 1_000_000, 100_000, 10_000, seed=1),
        Size("medium", 10_000_000, 1_000_000, 100_000, seed=2),
        Size("dense", 10_000_000, 1_000_000, 10_000, seed=3),
        Size("skewed", 10_000_000, 1_000_000, 100_000, hot_share=0.2, seed=4),
        Size("large", 50_000_000, 5_000_000, 1_000_000, seed=5),
    )
}


@dataclass(frozen=True)
class DataPaths:
    size: Size
    folder: Path

    @property
    def features(self) -> Path:
        return self.folder / "features.parquet"

    @property
    def spine(self) -> Path:
        return self.folder / "spine.parquet"

    @property
    def meta(self) -> Path:
        return self.folder / "meta.json"


def _unique_key_times(rng: np.random.Generator, n: int, key_lo: int, key_hi: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct (key, second) pairs, keys uniform in ``[key_lo, key_hi)``."""
    if key_hi - key_lo == 1:  # one key: draw seconds without replacement
        secs = rng.choice(YEAR_S, size=n, replace=False).astype(np.int64)
        return np.full(n, key_lo, dtype=np.int64), secs
    codes = np.empty(0, dtype=np.int64)
    while codes.size < n:  # draw, drop duplicate pairs, top up the deficit
        need = n - codes.size
        extra = int(need * 1.05) + 16
        keys = rng.integers(key_lo, key_hi, size=extra, dtype=np.int64)
        secs = rng.integers(0, YEAR_S, size=extra, dtype=np.int64)
        codes = np.unique(np.concatenate([codes, keys * YEAR_S + secs]))
    codes = rng.permutation(codes)[:n]
    return codes // YEAR_S, codes % YEAR_S


def _keys(rng: np.random.Generator, n: int, size: Size) -> np.ndarray:
    keys = rng.integers(1 if size.hot_share else 0, size.n_keys, size=n, dtype=np.int64)
    if size.hot_share:
        keys[: round(n * size.hot_share)] = 0
    return keys


def generate(size: Size) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The (features, spine) columns of one size, as numpy arrays (seconds since START_UTC)."""
    rng = np.random.default_rng(size.seed)
    n_hot = round(size.n_features * size.hot_share)
    parts = []
    if n_hot:
        parts.append(_unique_key_times(rng, n_hot, 0, 1))
    parts.append(_unique_key_times(rng, size.n_features - n_hot, 1 if n_hot else 0, size.n_keys))
    f_key = np.concatenate([p[0] for p in parts])
    f_sec = np.concatenate([p[1] for p in parts])
    order = rng.permutation(size.n_features)
    features = {"key": f_key[order], "ts": f_sec[order]}
    for name in FEATURE_COLUMNS:
        features[name] = rng.standard_normal(size.n_features)

    s_key = _keys(rng, size.n_spine, size)
    s_sec = rng.integers(0, YEAR_S, size=size.n_spine, dtype=np.int64)
    order = rng.permutation(size.n_spine)
    spine = {"key": s_key[order], "ts": s_sec[order], "spine_id": np.arange(size.n_spine, dtype=np.int64)}
    return features, spine


def _to_arrow(columns: dict[str, np.ndarray]):  # -> pyarrow.Table
    import pyarrow as pa

    arrays = {}
    for name, values in columns.items():
        if name == "ts":
            micros = (values + START_UTC.astype(np.int64)) * 1_000_000
            arrays[name] = pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


def ensure_data(size_name: str, root: Path = DATA_ROOT, *, log=print) -> DataPaths:
    """Write the Parquet files of ``size_name`` under ``root/<size>/`` unless they are there."""
    import pyarrow.parquet as pq

    size = SIZES[size_name]
    paths = DataPaths(size, root / size.name)
    meta = {"format_version": FORMAT_VERSION, **asdict(size)}
    if paths.meta.exists() and json.loads(paths.meta.read_text()) == meta:
        return paths
    paths.folder.mkdir(parents=True, exist_ok=True)
    log(f"generating {size.name}: F={size.n_features:,} S={size.n_spine:,} K={size.n_keys:,} hot={size.hot_share}")
    features, spine = generate(size)
    row_group = 1_000_000
    pq.write_table(_to_arrow(features), paths.features, row_group_size=row_group)
    pq.write_table(_to_arrow(spine), paths.spine, row_group_size=row_group)
    paths.meta.write_text(json.dumps(meta, indent=1))
    return paths
