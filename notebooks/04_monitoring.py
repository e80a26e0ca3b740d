# Databricks notebook source
# MAGIC %md
# MAGIC # 4 · Monitoring
# MAGIC
# MAGIC A monitoring job of a feature repository: drift of every model input and of the prediction between
# MAGIC the scored batches and the training rows (PSI, KS, Jensen-Shannon, NULL shares, thresholds per
# MAGIC feature), a markdown report with PNG plots, a Delta table of the results, and the realised metrics per
# MAGIC group once labels exist -- the same call as `jobs/monitor.py`.

# COMMAND ----------

# ruff: noqa: E402, F821 -- cells import as they go; spark, dbutils, display are the runtime's
dbutils.widgets.text("repo", "../examples/flights", "Feature repository folder (relative: to this notebook)")
dbutils.widgets.text("overrides", "", "Repository overrides, key=value per line (like --set)")
dbutils.widgets.text("monitoring", "nov_dec_drift", "Monitoring job")
dbutils.widgets.text("scored_at", "", "Evaluation instant (UTC; empty: now)")

# COMMAND ----------

from datetime import UTC, datetime
from pathlib import Path

from engine.config import parse_instant
from engine.repository import load_repository

here = Path(globals()["__file__"]).parent if "__file__" in globals() else Path.cwd()
repo_path = Path(dbutils.widgets.get("repo"))
repo = load_repository(repo_path if repo_path.is_absolute() else here / repo_path,
                       overrides=[line.strip() for line in dbutils.widgets.get("overrides").splitlines() if line.strip()])
monitoring = dbutils.widgets.get("monitoring")
repo.get("monitoring", monitoring, argument="monitoring")
scored_at = parse_instant(dbutils.widgets.get("scored_at"), key="scored_at", source="widget") \
    if dbutils.widgets.get("scored_at") else datetime.now(UTC)
repo.activate()
fs = repo.open_store(spark)

# COMMAND ----------

from engine.monitoring import read_drift
from engine.repository import monitor

result = monitor(fs, repo, monitoring, scored_at=scored_at)
latest = read_drift(spark, fs.layout.monitoring("drift"), batch_id=monitoring)
display(latest.select("feature", "psi", "ks", "js", "drifted").orderBy("feature"))
display(result["realised"])

# COMMAND ----------

print(Path(result["report"]).read_text())
