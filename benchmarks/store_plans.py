"""The as-of lookup through the feature store: a feature view over engine-written feature groups,
``training_data(spine)`` -> Parquet, where the groups' layout counts.

Untimed set-up (``prepare``, once per size, kept in ``benchmarks/data/<size>/store``): the
feature file is inserted into three groups of one store -- ``laid`` (hash-bucketed by ``key``
into 16 Delta partitions, the store's default layout), ``laid2`` (the same rows keyed by
``key2 = key + 10,000,000``, laid out too) and ``flat`` (the same rows as ``laid``, created with
``buckets=None``: no layout). Statistics are off for the set-up only (it is not what is timed).
The 4- and 8-lookup views read distinct groups (``laid_1`` .. ``laid_3``, ``laid2_1`` .. : copies
of the two tables' folders, registered as their own groups), so no task reads one table's files
for two lookups (the layout strategy reads a table once per task for all lookups of it).

Timed: read the spine Parquet, ``view.training_data(spine)``, write Parquet. Views:

* ``store_1``: one lookup on ``laid`` (layout strategy: only the spine is shuffled);
* ``store_flat``: one lookup on ``flat`` (the kernel over the Spark read: both sides shuffled);
* ``store_4`` / ``store_8``: 4 / 8 lookups, half on ``laid`` by ``key`` and half on ``laid2`` by
  ``key2`` (two passes: one per key set), as the ``many`` bench does with raw files.

Every lookup's columns are verified against the DuckDB reference (as in the ``many`` bench).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from benchmarks.asof_plans import _engine_missing
from benchmarks.many_plans import SHIFT, prefixes
from benchmarks.plan import Plan
from benchmarks.verify import OutputColumns

__all__ = ["STORE_PLANS"]

GROUPS = {"laid": ("key", 16), "laid2": ("key2", 16), "flat": ("key", None)}


def _store(spark, features: Path):
    from engine import FeatureStore

    return FeatureStore(spark, str(Path(features).parent / "store"))


def _prepare(spark, features: Path, spine: Path) -> None:
    """Write the three groups once per size (and the views, every run: they are cheap)."""
    from pyspark.sql import functions as F

    from engine.store.feature_view import FeatureLookup

    fs = _store(spark, features)
    existing = {g.name for g in fs.list_feature_groups()}
    raw = spark.read.parquet(str(features))
    for name, (key, buckets) in GROUPS.items():
        if name in existing and fs.get_feature_group(name).delta_version() >= 1:
            continue
        started = time.perf_counter()
        frame = raw if key == "key" else raw.select((F.col("key") + SHIFT).alias("key2"), "ts", "f1", "f2", "f3")
        group = fs.create_feature_group(name, primary_key=key, event_time="ts", schema=frame.schema, buckets=buckets,
                                        statistics=False, exist_ok=True)
        group.insert(frame)
        print(f"  store set-up: group {name} written in {time.perf_counter() - started:.1f}s", flush=True)
    for base, key in (("laid", "key"), ("laid2", "key2")):  # distinct tables for the 4/8-lookup views
        group = fs.get_feature_group(base)
        for i in range(1, 4):
            name = f"{base}_{i}"
            if name not in existing:
                target = fs.define_feature_group(name, primary_key=key, event_time="ts", schema=group.schema,
                                                 statistics=False).path
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(group.path, target)  # a Delta table is its folder (relative file paths)
                fs.create_feature_group(name, primary_key=key, event_time="ts", schema=group.schema, statistics=False,
                                        exist_ok=True)
    views = {"store_1": [("laid", "key", "t0_")], "store_flat": [("flat", "key", "t0_")]}
    for n in (4, 8):
        used = {"key": 0, "key2": 0}
        views[f"store_{n}"] = []
        for prefix, key in prefixes(n):
            base = "laid" if key == "key" else "laid2"
            name = base if used[key] == 0 else f"{base}_{used[key]}"
            used[key] += 1
            views[f"store_{n}"].append((name, key, prefix))
    for view, lookups in views.items():
        fs.create_feature_view(view, spine_time="ts", exist_ok=True, lookups=[
            FeatureLookup(group, keys={key: key}, prefix=prefix) for group, key, prefix in lookups])


def _view(name: str):
    def build(spark, features: Path, spine: Path):
        from pyspark.sql import functions as F

        s = spark.read.parquet(str(spine))
        if name in ("store_4", "store_8"):
            s = s.withColumn("key2", F.col("key") + SHIFT)
        return _store(spark, features).get_feature_view(name).training_data(s)

    return build


def _outputs(n_tables: int) -> tuple[OutputColumns, ...]:
    return tuple(OutputColumns(f1=f"{p}f1", f2=f"{p}f2", f3=f"{p}f3", matched_ts=f"{p}ts") for p, _ in prefixes(n_tables))


def _available() -> str | None:
    return _engine_missing("asof_join_many")


STORE_PLANS: dict[str, Plan] = {
    p.name: p
    for p in [
        Plan("store_1", "feature view over a laid-out group (16 buckets), 1 lookup", "spark", "this engine",
             build=_view("store_1"), prepare=_prepare, available=_available, outputs=_outputs(1)),
        Plan("store_flat", "feature view over a group without layout, 1 lookup", "spark", "this engine",
             build=_view("store_flat"), prepare=_prepare, available=_available, outputs=_outputs(1)),
        Plan("store_4", "feature view, 4 lookups (2 key sets) over laid-out groups", "spark", "this engine",
             build=_view("store_4"), prepare=_prepare, available=_available, outputs=_outputs(4)),
        Plan("store_8", "feature view, 8 lookups (2 key sets) over laid-out groups", "spark", "this engine",
             build=_view("store_8"), prepare=_prepare, available=_available, outputs=_outputs(8)),
    ]
}
