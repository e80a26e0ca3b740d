"""Hostile names and configs.

* Names that end up in paths or SQL (feature groups, their columns, pipelines, views, prediction
  batch ids) are validated: path traversal, quotes, backticks, spaces, semicolons, newlines,
  non-ASCII and over-long names are :class:`UnsafeNameError` s, and nothing is created on disk.
* Legal names that are SQL keywords (``select``, ``from``, ``order``, ``group``) work end to end,
  which they only do if every generated SQL fragment quotes them.
* YAML is parsed as data only: a ``!!python/...`` tag is a :class:`ConfigError` and never runs.
* Secrets (secret-named config keys, secret environment variables, credentials in a tracking URI)
  never reach a log line, a job's FAILED line, an error message or MLflow params.
"""

from __future__ import annotations

import io
import logging
import re
from contextlib import redirect_stderr
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

from engine.config import from_mapping, load_yaml
from engine.errors import ConfigError, UnsafeNameError
from engine.pipelines import FeaturePipeline
from engine.pipelines.inference import score_batch
from engine.redaction import REDACTED, SecretFilter
from engine.store.feature_store import FeatureStore
from engine.temporal import asof_join
from engine.temporal.ranges import TimeRange
from tests.reliability.conftest import REPO

# ~3 min on 2 cores: in `make test-all` (CI's `make test` keeps the bad-input matrix)

HOSTILE = ["../evil", "..", "a/b", "/abs", "a'b", 'a"b', "a`b", "a b", "x;DROP TABLE t", "", "a\nb", "ä", "a" * 129,
           "1abc", "a.b", "a-b", "a*"]
T0 = datetime(2013, 1, 1, tzinfo=UTC)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def store(spark, tmp_path_factory):
    fs = FeatureStore(spark, tmp_path_factory.mktemp("hostile") / "store")
    fs.create_feature_group("base", primary_key="id", event_time="ts", schema="id INT, ts TIMESTAMP, v DOUBLE",
                            statistics=False)
    return fs


ENTRY_POINTS = {
    "feature group name": lambda fs, bad: fs.create_feature_group(
        bad, primary_key="id", event_time="ts", schema="id INT, ts TIMESTAMP, v DOUBLE"),
    "feature group lookup": lambda fs, bad: fs.get_feature_group(bad),
    "column name in a schema": lambda fs, bad: fs.create_feature_group("cols", primary_key="id", event_time="ts", schema=StructType([
        StructField("id", StringType()), StructField("ts", TimestampType()), StructField(bad, DoubleType())])),
    "new column on insert": lambda fs, bad: fs.get_feature_group("base").insert(fs.spark.createDataFrame(
        [(1, T0.replace(tzinfo=None), 1.0, 2.0)],
        StructType([StructField("id", IntegerType()),
                    StructField("ts", TimestampType()), StructField("v", DoubleType()), StructField(bad, DoubleType())])),
        evolve_schema=True),
    "pipeline name": lambda fs, bad: FeaturePipeline(bad, lambda s, i, r: None, inputs={"x": "/nowhere"},
                                                     output=fs.get_feature_group("base"), lookback=timedelta(0),
                                                     step=timedelta(days=1)),
    "pipeline input name": lambda fs, bad: FeaturePipeline("p", lambda s, i, r: None, inputs={bad: "/nowhere"},
                                                           output=fs.get_feature_group("base"), lookback=timedelta(0),
                                                           step=timedelta(days=1)),
    "feature view name": lambda fs, bad: fs.create_feature_view(bad, spine_time="ts", lookups=[]),
    "feature view lookup": lambda fs, bad: fs.get_feature_view(bad),
    "prediction batch id": lambda fs, bad: score_batch(fs.spark, "models:/m@champion", None, output=f"{fs.root}/p",
                                                       batch_id=bad, scored_at=T0),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_hostile_names_are_refused_before_anything_is_written(store, entry):
    root = Path(store.root)
    before = tree(root.parent)
    for bad in HOSTILE:
        with pytest.raises(UnsafeNameError) as err:
            ENTRY_POINTS[entry](store, bad)
        assert err.value.params["name"] == bad, (entry, bad)
        assert repr(bad) in str(err.value)
    assert tree(root.parent) == before


def test_sql_keyword_names_are_quoted_everywhere(spark, store):
    """Columns named like SQL keywords survive create, upsert (MERGE), replace_range (replaceWhere),
    reads and the as-of join -- each would be a syntax error if a fragment were not quoted."""
    schema = "`select` INT, `from` TIMESTAMP, `order` DOUBLE, `group` STRING"
    group = store.create_feature_group("keywords", primary_key="select", event_time="from", schema=schema,
                                       statistics=False)
    naive = T0.replace(tzinfo=None)
    group.insert(spark.createDataFrame([(1, naive, 1.0, "a"), (2, naive, 2.0, "b")], schema))
    group.insert(spark.createDataFrame([(1, naive, 10.0, "a2")], schema))  # upsert of key 1
    group.replace_range(spark.createDataFrame([(3, naive + timedelta(hours=1), 3.0, "c")], schema),
                        TimeRange(T0 + timedelta(hours=1), T0 + timedelta(hours=2)))
    assert sorted(tuple(r) for r in group.read().collect()) == [
        (1, naive, 10.0, "a2"), (2, naive, 2.0, "b"), (3, naive + timedelta(hours=1), 3.0, "c")]
    spine = spark.createDataFrame([(1, naive + timedelta(hours=5))], "`select` INT, `where` TIMESTAMP")
    joined = asof_join(spine, group.read(), left_on="where", right_on="from", by="select")
    assert [(r["select"], r["order"], r["group"]) for r in joined.collect()] == [(1, 10.0, "a2")]


# -- configs are data only ---------------------------------------------------------------------


@pytest.mark.parametrize("tag", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.check_output [['touch', '{marker}']]",
    "!!python/name:os.system",
])
def test_yaml_python_tags_are_config_errors_and_never_run(tmp_path, tag):
    marker = tmp_path / "pwned"
    config = tmp_path / "job.yaml"
    config.write_text("root: " + tag.format(marker=marker) + "\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(config)
    assert err.value.params["key"] == "<file>" and "python/" in str(err.value)
    from jobs import feature_backfill

    # in a repository's own file and in a file it includes: refused by the job before anything runs
    for main, included in [("store:\n  root: " + tag.format(marker=marker) + "\n", None),
                           (f"store: {{root: {tmp_path / 'store'}}}\ninclude: [groups.yaml]\n",
                            "feature_groups: " + tag.format(marker=marker) + "\n")]:
        repo = tmp_path / ("repo_included" if included else "repo_main")
        repo.mkdir()
        (repo / "feature_repo.yaml").write_text(main)
        if included:
            (repo / "groups.yaml").write_text(included)
        stderr = io.StringIO()
        with redirect_stderr(stderr):
            assert feature_backfill.main(["--repo", str(repo), "--all"]) == 2
        assert stderr.getvalue().startswith("FAILED: [CONFIG]"), stderr.getvalue()
        assert "python/" in stderr.getvalue()
    assert not marker.exists() and not (tmp_path / "store").exists()


def test_no_code_path_parses_yaml_unsafely_or_evaluates_config():
    """Static guard: YAML is read with safe_load only, and no eval/exec of config text in engine or jobs."""
    offenders = []
    for path in [*Path(REPO, "engine").rglob("*.py"), *Path(REPO, "jobs").rglob("*.py")]:
        if path.name == "notebooks.py":  # engine.testing.notebooks runs notebook cells: that is its purpose
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"yaml\.(load|unsafe_load|full_load)\(|yaml\.(Unsafe|Full)?Loader\b|\beval\(|\bexec\(", line):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []


# -- secrets -----------------------------------------------------------------------------------

SECRET_VALUE = "sk-live-93c1f0a7e2"
ENV_SECRET = "pw-env-5d2b8e1c"


def test_a_secret_config_value_is_never_echoed_in_errors():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Connection:
        host: str
        password: str

    with pytest.raises(ConfigError) as err:
        from_mapping(Connection, {"host": "db", "password": 93101772}, source="conn.yaml")
    assert "password" in str(err.value) and "93101772" not in str(err.value) and REDACTED in str(err.value)


def test_jobs_keep_secrets_out_of_logs_and_failed_lines(tmp_path, monkeypatch, caplog):
    from jobs import train

    monkeypatch.setenv("FF_DB_PASSWORD", ENV_SECRET)
    repo = tmp_path / "repo"
    repo.mkdir()
    # a secret in a loader's options, echoed by the error of a non-secret key (step is not a duration)
    (repo / "feature_repo.yaml").write_text(
        f"store: {{root: {tmp_path / 'store'}}}\n"
        f"sources:\n  events:\n    path: events\n    options: {{api_token: {SECRET_VALUE}}}\n"
        f"pipelines:\n  p:\n    output: g\n    inputs: {{events: events}}\n    sql: SELECT 1\n"
        f"    step: {SECRET_VALUE}\n")
    stderr = io.StringIO()
    with caplog.at_level(logging.INFO), redirect_stderr(stderr):
        code = train.main(["--repo", str(repo), "--training", "t", "--set", f"training.t.model.password={SECRET_VALUE}x"])
        # anything logged while a job's handlers are installed is filtered, whoever logs it
        logging.getLogger("engine.store.delta").warning("connecting with %s and %s", SECRET_VALUE, ENV_SECRET)
        try:
            raise RuntimeError(f"driver said {ENV_SECRET}")
        except RuntimeError:
            logging.getLogger("engine").exception("failed")
    assert code == 2
    assert any(isinstance(f, SecretFilter) for h in logging.getLogger().handlers for f in h.filters)
    failed = stderr.getvalue()
    out = failed + caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert failed.startswith("FAILED: [CONFIG]") and "step" in failed and REDACTED in failed, failed
    assert SECRET_VALUE not in out and ENV_SECRET not in out
    assert not (tmp_path / "store").exists()


def test_tracking_uri_credentials_are_not_logged(monkeypatch, caplog):
    import mlflow

    from engine import tracking

    saved = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), dict(tracking._ours))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{SECRET_VALUE}@127.0.0.1:9/?token={ENV_SECRET}")
    try:
        with caplog.at_level(logging.INFO, logger="engine.tracking"):
            tracking.configure_tracking()
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
        tracking._ours.update(saved[2])
    assert "alice:REDACTED@127.0.0.1:9" in caplog.text
    assert SECRET_VALUE not in caplog.text and ENV_SECRET not in caplog.text


def test_mlflow_params_of_a_training_run_redact_secret_named_keys():
    from engine.pipelines.training import TrainingConfig, run_params

    config = TrainingConfig(family="sklearn_logreg", search_space={}, params={"C": 1.0, "api_token": SECRET_VALUE})
    params = run_params(config, features=["a", "b"], label="y")
    assert params["fixed.C"] == 1.0 and params["fixed.api_token"] == REDACTED
    assert SECRET_VALUE not in repr(params)
