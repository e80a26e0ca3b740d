# Databricks notebook source
# MAGIC %md
# MAGIC # 2 · Training
# MAGIC
# MAGIC Builds the `flight_delay` feature view over the labelled flight spine, materialises a point-in-time
# MAGIC training dataset (every flight gets the features as they were at its scheduled departure), then
# MAGIC tunes a model with hyperopt on Spark, logs it to MLflow and registers it as `flight_delay`
# MAGIC (alias `champion` when it beats the current one) -- the calls of `jobs/build_training_data.py`
# MAGIC and `jobs/train.py`.
# MAGIC
# MAGIC The split is by time: validation must start at least 30 days (the longest lookback) after
# MAGIC training ends, so no validation feature is computed from training-period rows.

# COMMAND ----------

# ruff: noqa: E402, F821 -- cells import as they go; spark, dbutils, display are the runtime's
dbutils.widgets.text("root", "warehouse/demo", "Feature store root")
dbutils.widgets.text("train_start", "2013-01-01", "Train from (UTC)")
dbutils.widgets.text("train_end", "2013-09-15", "Train until (UTC, exclusive)")
dbutils.widgets.text("validation_start", "2013-10-15", "Validate from (UTC)")
dbutils.widgets.text("validation_end", "2013-11-01", "Validate until (UTC, exclusive)")
dbutils.widgets.text("training_config", "", "Training config YAML (empty: conf/training/demo_gbt.yaml)")
dbutils.widgets.text("max_evals", "8", "Hyperopt trials")

# COMMAND ----------

from engine.config import parse_instant
from engine.demo.pipeline import DemoPeriods
from engine.session import conf_dir
from engine.temporal.ranges import TimeRange


def widget_instant(name):
    return parse_instant(dbutils.widgets.get(name), key=name, source="widget")


root = dbutils.widgets.get("root")
periods = DemoPeriods(
    train=TimeRange(widget_instant("train_start"), widget_instant("train_end")),
    validation=TimeRange(widget_instant("validation_start"), widget_instant("validation_end")),
)
training_config = dbutils.widgets.get("training_config") or str(conf_dir() / "training" / "demo_gbt.yaml")
max_evals = int(dbutils.widgets.get("max_evals"))
print(f"train {periods.train}, validation {periods.validation}; {training_config}, {max_evals} trials")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Spine and feature view
# MAGIC The spine: every departed flight, its scheduled departure instant and the label `delayed`
# MAGIC (departure delay > 15 min). The view joins weather (lookback 3 h), plane attributes, route and
# MAGIC carrier statistics (lookback 30 days) and on-demand features (local hour, weekday, weather age).

# COMMAND ----------

from engine.demo import load_raw
from engine.demo.pipeline import build_training_dataset, create_view, flight_spine
from engine.store.feature_store import FeatureStore

fs = FeatureStore(spark, root)
spine_path = flight_spine(spark, fs, load_raw(spark, fs.root))
view = create_view(fs, spine_path)
print(f"view {view.name} v{view.version}: {len(view.feature_names)} features: {', '.join(view.feature_names)}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Point-in-time training dataset
# MAGIC A new version on each run; it records the Delta version of every feature group it read, so it can
# MAGIC be rebuilt bit for bit.

# COMMAND ----------

dataset = build_training_dataset(fs, view, periods)
print(f"training dataset v{dataset.version}: {dataset.rows} rows at {dataset.path}; sources {dataset.source_versions}")
display(dataset.read().groupBy("split").agg({"delayed": "mean", "*": "count"}).orderBy("split"))

# COMMAND ----------

display(dataset.read().orderBy("sched_dep"))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tune, train, register
# MAGIC Trials run as Spark tasks (hyperopt `SparkTrials`); each is a nested MLflow run. The best model is
# MAGIC refitted, logged with its feature view and dataset lineage, and registered.

# COMMAND ----------

from engine.demo.pipeline import train_model

trained = train_model(fs, dataset, training_config, overrides={"max_evals": max_evals})
model_uri = trained.model_uri
metrics = {"val_" + k: round(v, 4) for k, v in trained.training.metrics.items()}
baseline = {"baseline_val_" + k: round(v, 4) for k, v in trained.training.baseline_metrics.items()}
print(f"registered {model_uri}; champion moved: {trained.registration.promoted}")
display({**metrics, **baseline})
