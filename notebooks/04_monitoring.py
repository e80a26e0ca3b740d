# Databricks notebook source
# MAGIC %md
# MAGIC # 4 · Monitoring
# MAGIC
# MAGIC Compares the scored batches with the rows the model was trained on: per feature and for the
# MAGIC prediction, PSI, KS, Jensen-Shannon distance and NULL shares, with thresholds from the monitoring
# MAGIC config; writes a Markdown report and PNG plots, a Delta table of the drift, logs it all to MLflow,
# MAGIC and computes the realised AUC per month once the labels are known (the calls of `jobs/monitor.py`).

# COMMAND ----------

# ruff: noqa: E402, F821 -- cells import as they go; spark, dbutils, display are the runtime's
dbutils.widgets.text("root", "warehouse/demo", "Feature store root")
dbutils.widgets.text("model", "models:/flight_delay@champion", "Model URI")
dbutils.widgets.text("training_dataset_version", "", "Training dataset version (empty: latest)")
dbutils.widgets.text("monitoring_config", "", "Monitoring config YAML (empty: conf/monitoring/demo.yaml)")
dbutils.widgets.text("report_dir", "", "Report folder (empty: <root>/reports)")
dbutils.widgets.text("scored_at", "", "Monitoring instant (empty: now)")

# COMMAND ----------

from datetime import UTC, datetime
from pathlib import Path

from engine.config import parse_instant
from engine.session import conf_dir

root = dbutils.widgets.get("root")
model = dbutils.widgets.get("model")
dataset_version = int(dbutils.widgets.get("training_dataset_version")) if dbutils.widgets.get("training_dataset_version") else None
monitoring_config = dbutils.widgets.get("monitoring_config") or str(conf_dir() / "monitoring" / "demo.yaml")
report_dir = Path(dbutils.widgets.get("report_dir") or f"{root}/reports")
scored_at_text = dbutils.widgets.get("scored_at")
scored_at = parse_instant(scored_at_text, key="scored_at", source="widget") if scored_at_text else datetime.now(UTC)

# COMMAND ----------

from engine.demo.pipeline import VIEW, monitor
from engine.store.feature_store import FeatureStore

fs = FeatureStore(spark, root)
dataset = fs.get_training_dataset(VIEW, 1, dataset_version)
result = monitor(
    spark, fs, dataset, fs.get_feature_view(VIEW, 1), f"{fs.root}/predictions/{VIEW}", f"{fs.root}/demo/flight_spine",
    model, out_dir=report_dir, config_path=monitoring_config, scored_at=scored_at,
)
drifted = result["flagged_psi"]
print(f"reference: training dataset v{dataset.version} (train split); drifted: {sorted(drifted) or 'none'}")
print(f"report {result['report']}; {len(result['plots'])} plots")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Drift per column
# MAGIC The latest monitoring run, from the Delta table `<root>/monitoring/drift`.

# COMMAND ----------

from pyspark.sql import functions as F

from engine.store import delta

drift = delta.read(spark, f"{fs.root}/monitoring/drift")
latest = drift.where(F.col("scored_at") == drift.agg(F.max("scored_at")).first()[0])
display(latest.select("feature", "role", "kind", "psi", "ks", "js", "null_share_delta", "drifted", "flagged_by")
        .orderBy(F.desc("drifted"), F.desc("psi")))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Realised performance
# MAGIC AUC of the scored batches against the labels that arrived later, per month.

# COMMAND ----------

import pandas as pd

realised = pd.DataFrame(result["realised"])
display(realised)

# COMMAND ----------

print(Path(result["report"]).read_text())
