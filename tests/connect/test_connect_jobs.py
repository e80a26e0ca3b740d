"""A job end to end on Spark Connect, as a user runs it: ``python -m jobs.<name> --profile remote``
with ``$SPARK_REMOTE`` pointing at the server -- the tests/e2e shop repository, ingested and
applied, its first pipeline backfilled; the store the server wrote is read back here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.test_user_repository import CHECKOUT, tables, write_repo


def job(name: str, *args: str, cwd: Path, remote: str) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "FF_", "PYSPARK_GATEWAY", "SPARK_CONNECT_MODE"))}
    env.update(PYTHONPATH=str(CHECKOUT), SPARK_REMOTE=remote)
    done = subprocess.run([sys.executable, "-m", f"jobs.{name}", *args, "--profile", "remote",
                           "--spark-conf", "spark.sql.shuffle.partitions=2"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"jobs.{name} exit {done.returncode}:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_ingest_apply_backfill_jobs_on_connect(connect_server, tmp_path):
    repo = tmp_path / "shop_repo"
    write_repo(repo)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    at = ["--repo", str(repo)]
    root = repo / "store"
    _, log = job("ingest", *at, "--all", cwd=cwd, remote=connect_server.url)
    assert f"Spark Connect session on {connect_server.url}" in log
    applied, _ = job("apply", *at, cwd=cwd, remote=connect_server.url)
    assert len(applied["applied"]) == 5
    filled, _ = job("feature_backfill", *at, "--pipeline", "customer_orders", cwd=cwd, remote=connect_server.url)
    result = filled["feature_backfill"][0]
    assert result["pipeline"] == "customer_orders" and result["chunks_done"] == 2 and result["rows"] > 100
    assert {"tables/orders", "tables/order_spine", "feature_groups/customer_orders/v1"} <= tables(root)
    assert all(stage["spark_jobs"] is None for stage in filled["profile"].values())  # no status tracker on Connect
