# Databricks notebook source
# MAGIC %md
# MAGIC # 3 · Batch inference
# MAGIC
# MAGIC Scores the flights scheduled in `[start, end)` with a registered model (default: the `champion`
# MAGIC alias). Features are looked up as of each flight's scheduled departure -- the same point-in-time
# MAGIC rule as in training -- and the predictions are appended to `<root>/predictions/flight_delay`
# MAGIC with the model name and version (the calls of `jobs/score_batch.py`).

# COMMAND ----------

# ruff: noqa: E402, F821 -- cells import as they go; spark, dbutils, display are the runtime's
dbutils.widgets.text("root", "warehouse/demo", "Feature store root")
dbutils.widgets.text("model", "models:/flight_delay@champion", "Model URI")
dbutils.widgets.text("start", "2013-11-01", "Score flights from (UTC)")
dbutils.widgets.text("end", "2014-01-01", "Score flights until (UTC, exclusive)")
dbutils.widgets.text("scored_at", "", "Scoring instant (empty: now)")

# COMMAND ----------

from datetime import UTC, datetime

from engine.config import parse_instant
from engine.demo.pipeline import DemoPeriods
from engine.temporal.ranges import TimeRange

root = dbutils.widgets.get("root")
model = dbutils.widgets.get("model")
batch = TimeRange(parse_instant(dbutils.widgets.get("start"), key="start", source="widget"),
                  parse_instant(dbutils.widgets.get("end"), key="end", source="widget"))
scored_at_text = dbutils.widgets.get("scored_at")
scored_at = parse_instant(scored_at_text, key="scored_at", source="widget") if scored_at_text else datetime.now(UTC)
print(f"scoring {batch} with {model} at {scored_at:%Y-%m-%dT%H:%M:%SZ}")

# COMMAND ----------

from engine.demo.pipeline import score_months
from engine.store.feature_store import FeatureStore

fs = FeatureStore(spark, root)
predictions_path, batches = score_months(spark, fs, f"{fs.root}/demo/flight_spine", model, DemoPeriods(score=(batch,)),
                                         scored_at=scored_at)
for result in batches:
    print(f"batch {result.batch_id}: {result.rows} rows scored by {result.model_name} v{result.model_version}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## The predictions

# COMMAND ----------

from pyspark.sql import functions as F

from engine.store import delta

predictions = delta.read(spark, predictions_path)
display(predictions.groupBy("batch_id", "model_name", "model_version").agg(
    F.count("*").alias("rows"), F.avg("prediction").alias("mean_prediction")).orderBy("batch_id"))

# COMMAND ----------

display(predictions.orderBy(F.desc("prediction")).select("flight_id", "sched_dep", "origin", "carrier", "prediction"))
