# Databricks notebook source
# MAGIC %md
# MAGIC # 3 · Batch inference
# MAGIC
# MAGIC A scoring job of a feature repository: the model's feature view looks every feature up as of each
# MAGIC spine row's time (the same code path as the training data), the model scores on the executors, and
# MAGIC each batch is one Delta commit of the predictions table (re-scoring a batch replaces it) -- the same
# MAGIC call as `jobs/score_batch.py`. `model`, `start`/`end` override the job's model and batches.

# COMMAND ----------

# ruff: noqa: E402, F821 -- cells import as they go; spark, dbutils, display are the runtime's
dbutils.widgets.text("repo", "../examples/flights", "Feature repository folder (relative: to this notebook)")
dbutils.widgets.text("overrides", "", "Repository overrides, key=value per line (like --set)")
dbutils.widgets.text("scoring", "nov_dec", "Scoring job")
dbutils.widgets.text("model", "", "Model URI (empty: the job's)")
dbutils.widgets.text("start", "", "One batch from (UTC; empty: the job's batches)")
dbutils.widgets.text("end", "", "... until (UTC, exclusive)")
dbutils.widgets.text("scored_at", "", "Scoring instant (UTC; empty: now)")

# COMMAND ----------

from datetime import UTC, datetime
from pathlib import Path

from engine.config import parse_instant
from engine.repository import load_repository
from engine.temporal import TimeRange

here = Path(globals()["__file__"]).parent if "__file__" in globals() else Path.cwd()
repo_path = Path(dbutils.widgets.get("repo"))
repo = load_repository(repo_path if repo_path.is_absolute() else here / repo_path,
                       overrides=[line.strip() for line in dbutils.widgets.get("overrides").splitlines() if line.strip()])
scoring = dbutils.widgets.get("scoring")
repo.get("scoring", scoring, argument="scoring")
start, end = dbutils.widgets.get("start"), dbutils.widgets.get("end")
batches = [TimeRange(parse_instant(start, key="start", source="widget"), parse_instant(end, key="end", source="widget"))] \
    if start and end else None
scored_at = parse_instant(dbutils.widgets.get("scored_at"), key="scored_at", source="widget") \
    if dbutils.widgets.get("scored_at") else datetime.now(UTC)
repo.activate()
fs = repo.open_store(spark)

# COMMAND ----------

from pyspark.sql import functions as F

from engine.repository import score
from engine.store import delta

result = score(fs, repo, scoring, scored_at=scored_at, model=dbutils.widgets.get("model") or None, batches=batches)
print(f"{result['rows']} rows scored with {result['model']} into {result['predictions']}")
predictions = delta.read(spark, result["predictions"]).where(F.col("batch_id").isin(list(result["batches"])))
display(predictions.groupBy("batch_id").agg(F.count("*").alias("rows"), F.avg("prediction").alias("mean_prediction")))
