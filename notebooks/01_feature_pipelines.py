# Databricks notebook source
# MAGIC %md
# MAGIC # 1 · Feature pipelines
# MAGIC
# MAGIC Runs a feature repository's pipelines over `[start, end)` -- the same library calls as
# MAGIC `jobs/ingest.py`, `jobs/apply.py` and `jobs/feature_backfill.py`. Works on any repository (a folder
# MAGIC with a `feature_repo.yaml`); the defaults are the flights example's (`examples/flights`).
# MAGIC
# MAGIC 1. sources with a loader that have no table yet are ingested (optional);
# MAGIC 2. the plan is shown and, if asked, applied (nothing is registered implicitly);
# MAGIC 3. each pipeline runs chunk by chunk: every chunk validated and written as one Delta commit;
# MAGIC    re-running skips the chunks already done.
# MAGIC
# MAGIC On Databricks, install the `feature_factory` wheel on the cluster; `spark` and `dbutils` are the
# MAGIC ambient ones. `overrides` takes `key=value` lines, like the jobs' `--set`.

# COMMAND ----------

# ruff: noqa: E402, F821 -- cells import as they go; spark, dbutils, display are the runtime's
dbutils.widgets.text("repo", "../examples/flights", "Feature repository folder (relative: to this notebook)")
dbutils.widgets.text("overrides", "", "Repository overrides, key=value per line (like --set)")
dbutils.widgets.text("pipelines", "", "Pipelines to run, comma-separated (empty: all)")
dbutils.widgets.text("start", "", "Start (UTC, inclusive; empty: each pipeline's backfill range)")
dbutils.widgets.text("end", "", "End (UTC, exclusive; empty: each pipeline's backfill range)")
dbutils.widgets.dropdown("ingest", "missing", ["missing", "no"], "Ingest sources without a table")
dbutils.widgets.dropdown("apply", "yes", ["yes", "no"], "Apply the plan first")

# COMMAND ----------

from pathlib import Path

from engine.config import parse_instant
from engine.repository import load_repository

here = Path(globals()["__file__"]).parent if "__file__" in globals() else Path.cwd()
repo_path = Path(dbutils.widgets.get("repo"))
repo = load_repository(repo_path if repo_path.is_absolute() else here / repo_path,
                       overrides=[line.strip() for line in dbutils.widgets.get("overrides").splitlines() if line.strip()])
chosen = [p.strip() for p in dbutils.widgets.get("pipelines").split(",") if p.strip()] or list(repo.pipelines)
for name in chosen:
    repo.get("pipelines", name, argument="pipelines")  # an unknown name lists the known ones
start = parse_instant(dbutils.widgets.get("start"), key="start", source="widget") if dbutils.widgets.get("start") else None
end = parse_instant(dbutils.widgets.get("end"), key="end", source="widget") if dbutils.widgets.get("end") else None
repo.activate()
fs = repo.open_store(spark)
print(f"repository {repo.project} ({repo.folder}) -> store {fs.root}; pipelines {chosen}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Sources and plan

# COMMAND ----------

import pandas as pd

from engine.repository import apply, ingest, plan
from engine.repository.run_features import ingest_order

if dbutils.widgets.get("ingest") == "missing":
    ingested = [ingest(fs, repo, name, only_missing=True) for name in ingest_order(repo)]
    display(pd.DataFrame(ingested))
planned = plan(fs, repo)
print(planned)
if dbutils.widgets.get("apply") == "yes":
    apply(fs, repo, planned=planned)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Backfill

# COMMAND ----------

from engine.repository import backfill

current = plan(fs, repo)
results = [backfill(fs, repo, name, start=start, end=end, current=current) for name in chosen]
chunks = pd.DataFrame(results)
display(chunks)

# COMMAND ----------

feature_group_rows = {g.name: g.read().count() for g in fs.list_feature_groups()}
display(pd.DataFrame({"feature_group": list(feature_group_rows), "rows": list(feature_group_rows.values())}))
