# Databricks notebook source
# MAGIC %md
# MAGIC # 2 · Training
# MAGIC
# MAGIC A training config of a feature repository: its point-in-time training dataset (the view's features
# MAGIC as of each spine row's time, split by time with a gap >= the longest lookback), then hyperopt trials
# MAGIC on Spark, the best model logged to MLflow with its lineage and registered (the alias moves only when
# MAGIC it beats the current one) -- the same calls as `jobs/build_training_data.py` and `jobs/train.py`.

# COMMAND ----------

# ruff: noqa: E402, F821 -- cells import as they go; spark, dbutils, display are the runtime's
dbutils.widgets.text("repo", "../examples/flights", "Feature repository folder (relative: to this notebook)")
dbutils.widgets.text("overrides", "", "Repository overrides, key=value per line (like --set)")
dbutils.widgets.text("training", "gbt", "Training config")
dbutils.widgets.text("max_evals", "", "Trials (empty: the config's)")

# COMMAND ----------

from pathlib import Path

from engine.repository import load_repository

here = Path(globals()["__file__"]).parent if "__file__" in globals() else Path.cwd()
repo_path = Path(dbutils.widgets.get("repo"))
repo = load_repository(repo_path if repo_path.is_absolute() else here / repo_path,
                       overrides=[line.strip() for line in dbutils.widgets.get("overrides").splitlines() if line.strip()])
training = dbutils.widgets.get("training")
repo.get("training", training, argument="training")
overrides = {"max_evals": int(dbutils.widgets.get("max_evals"))} if dbutils.widgets.get("max_evals") else {}
repo.activate()
fs = repo.open_store(spark)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Training dataset

# COMMAND ----------

from engine.repository import build_training_data

dataset = build_training_data(fs, repo, training)
print(f"training dataset {dataset.view_name} v{dataset.view_version} #{dataset.version}: {dataset.rows} rows; "
      f"sources {dataset.source_versions}")
display(dataset.read().groupBy("split").count())

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tune, train, register

# COMMAND ----------

from engine.repository import train

trained = train(fs, repo, training, overrides=overrides, dataset_version=dataset.version)
model_uri = trained.model_uri
metrics = {f"val_{k}": v for k, v in trained.training.metrics.items()}
metrics |= {f"baseline_{k}": v for k, v in trained.training.baseline_metrics.items()}
print(f"{model_uri}: champion {trained.registration.promoted if trained.registration else None}")
display(metrics)
