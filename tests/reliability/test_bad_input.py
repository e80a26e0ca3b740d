"""The bad-input matrix: one table-driven test across the public API.

Each case is one mistake a user makes -- in the temporal core, feature groups, pipelines, feature
views, training datasets, scoring, feature repositories (loading, plan/apply and the runners),
bring-your-own models (log_model, resolve_model, predict), the jobs' command lines and YAML configs.
Nothing here trains: a log_model mistake is refused by its checks before any MLflow run. For every
case the test asserts:

* the exact :mod:`engine.errors` class (jobs: exit code 2 and a one-line ``FAILED: [ERROR_CLASS]``);
* that the message names the offending argument / column / key AND the value found;
* that no Delta table under the store, the raw data or the predictions changed (the latest
  version of every table, read from its ``_delta_log``, is the same before and after; no table
  appeared).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from engine.errors import (
    AlreadyExistsError,
    ColumnNotFoundError,
    ColumnTypeError,
    ConfigError,
    EngineError,
    IncompatibleTypesError,
    InvalidArgumentError,
    NotFoundError,
    PrimaryKeyError,
    SchemaMismatchError,
    TimeRangeError,
    UnknownProfileError,
    UnsafeNameError,
)
from engine.pipelines import Input
from engine.pipelines.training import load_training_config
from engine.store import delta
from engine.store.training_dataset import RandomSplit
from engine.temporal.ranges import TimeRange
from tests.reliability._workers import EVENTS, OUTPUT, T0, event_rows, rolling_sum, scoring_spine
from tests.reliability.conftest import delta_versions

SENSOR = "device INT, at TIMESTAMP, level DOUBLE"


@dataclass(frozen=True)
class JobOutcome:
    code: int
    stderr: str


@pytest.fixture(scope="module")
def ctx(spark, model_world) -> dict[str, Any]:
    """model_world's store (a group, a view, a dataset, a registered model), a raw table, a predictions
    table with one batch, and a pipeline over the raw table."""
    from engine.pipelines import FeaturePipeline, Input
    from engine.pipelines.inference import score_batch

    tmp = Path(model_world["tmp"])
    fs = model_world["fs"]
    raw = str(tmp / "raw_events")
    if not delta.table_exists(spark, raw):
        delta.create_table(spark, raw, spark.createDataFrame([], EVENTS).schema)
        delta.append(spark, raw, spark.createDataFrame(event_rows(users=2, days=2), EVENTS))
    sums = fs.create_feature_group("sums", primary_key="user", event_time="ts", schema=OUTPUT, statistics=False,
                                   exist_ok=True)
    pipeline = FeaturePipeline("sums", rolling_sum, inputs={"events": Input(raw, time_column="ts")}, output=sums,
                               lookback=timedelta(days=1), step=timedelta(days=1))
    predictions = str(tmp / "predictions_matrix")
    score_batch(spark, "models:/alarm@champion", scoring_spine(spark, devices=2, hours=2), output=predictions,
                batch_id="b0", scored_at=model_world["scored_at"], passthrough=["event_id", "tag"])
    repo = tmp / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "feature_repo.yaml").write_text(REPO_YAML.format(root=fs.root, raw=raw, schema=OUTPUT))
    return {"spark": spark, "fs": fs, "raw": raw, "pipeline": pipeline, "sensor": fs.get_feature_group("sensor"),
            "view": model_world["view"], "predictions": predictions, "tmp": tmp, "repo": str(repo),
            "scored_at": model_world["scored_at"], "roots": [str(tmp)], "dataset": model_world["dataset"]}


REPO_YAML = """
store: {{root: {root}}}
sources:
  events: {{path: {raw}, time_column: ts}}
feature_groups:
  sums: {{primary_key: [user], event_time: ts, schema: "{schema}", statistics: false}}
pipelines:
  sums:
    output: sums
    transform: tests.reliability._workers:rolling_sum
    inputs: {{events: events}}
    lookback: 1d
    step: 1d
    backfill: {{start: 2024-01-01, end: 2024-01-03}}
"""


# -- helpers the cases use -----------------------------------------------------------------------


def frame(c: dict[str, Any], rows: list[tuple], schema: str) -> Any:
    return c["spark"].createDataFrame(rows, schema)


def sensor_rows(c: dict[str, Any], rows: list[tuple], schema: str = SENSOR) -> Any:
    return frame(c, rows, schema)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def naive(hours: float) -> datetime:
    return at(hours).replace(tzinfo=None)


def asof(c: dict[str, Any], **kwargs: Any) -> Any:
    from engine.temporal import asof_join

    left = kwargs.pop("left_df", None)
    right = kwargs.pop("right_df", None)
    if left is None:
        left = frame(c, [(1, naive(1))], "device INT, ts TIMESTAMP")
    if right is None:
        right = frame(c, [(1, naive(0), 1.0)], "device INT, at TIMESTAMP, level DOUBLE")
    return asof_join(left, right, **{"left_on": "ts", "right_on": "at", "by": "device", **kwargs})


def windows(c: dict[str, Any], aggs: Any = None, **kwargs: Any) -> Any:
    from engine.temporal import Agg, window_aggregates

    events = frame(c, [(1, naive(0), 1.0)], "device INT, at TIMESTAMP, level DOUBLE")
    aggs = aggs if aggs is not None else [Agg("level", "mean", timedelta(hours=2))]
    return window_aggregates(events, **{"by": "device", "event_time": "at", "aggs": aggs, **kwargs})


def agg(*args: Any) -> Any:
    from engine.temporal import Agg

    return Agg(*args)


def lookup_view(c: dict[str, Any], name: str, **lookup: Any) -> Any:
    from engine.store.feature_view import FeatureLookup

    return c["fs"].create_feature_view(name, spine_time="ts", labels=["alarm"],
                                       lookups=[FeatureLookup(**{"feature_group": "sensor", **lookup})])


def dataset(c: dict[str, Any], **kwargs: Any) -> Any:
    return c["fs"].create_training_dataset(c["view"], **kwargs)


def time_split(gap_hours: float) -> Any:
    from engine.store.training_dataset import TimeSplit
    from engine.temporal.ranges import TimeRange

    return TimeSplit(TimeRange(at(0), at(50)), TimeRange(at(50 + gap_hours), at(100)))


def labelled_spine(c: dict[str, Any]) -> Any:
    return frame(c, [(1, 1, naive(5), 1)], "event_id LONG, device INT, ts TIMESTAMP, alarm INT")


def score(c: dict[str, Any], spine: Any = None, *, model: str = "models:/alarm@champion", batch_id: str = "b9",
          scored_at: datetime | None = None) -> Any:
    from engine.pipelines.inference import score_batch

    spine = spine if spine is not None else scoring_spine(c["spark"], devices=1, hours=1)
    return score_batch(c["spark"], model, spine, output=c["predictions"], batch_id=batch_id,
                       scored_at=scored_at or c["scored_at"], passthrough=["event_id", "tag"])


def job(module: str, *argv: str) -> JobOutcome:
    import importlib

    main = importlib.import_module(f"jobs.{module}").main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(argv))
    return JobOutcome(code, err.getvalue())


def repo_with(c: dict[str, Any], extra_yaml: str, overrides: dict[str, Any] | None = None) -> Any:
    from engine.repository import load_repository

    folder = Path(c["tmp"]) / "repo_variant"
    folder.mkdir(exist_ok=True)
    (folder / "feature_repo.yaml").write_text((Path(c["repo"]) / "feature_repo.yaml").read_text() + extra_yaml)
    return load_repository(folder, overrides=[f"{k}={v}" for k, v in (overrides or {}).items()])


def repo_plan(c: dict[str, Any], overrides: dict[str, Any]) -> Any:
    from engine.repository import plan

    return plan(c["fs"], repo_with(c, "", overrides))


def repo_apply(c: dict[str, Any], overrides: dict[str, Any]) -> Any:
    from engine.repository import apply

    return apply(c["fs"], repo_with(c, "", overrides))


# The objects model_world registered (group sensor, view alarm), declared as a repository would,
# so plan finds them unchanged; a training config, a scoring job and a monitoring job over them.
WORLD_YAML = """
feature_groups:
  sensor: {primary_key: [device], event_time: at, schema: "device INT, at TIMESTAMP, level DOUBLE", statistics: false}
views:
  alarm:
    spine_time: ts
    labels: [alarm]
    lookups: [{feature_group: sensor, prefix: s_, keys: {device: device}, lookback: 2h}]
training:
  t:
    view: alarm
    model: {family: sklearn_logreg, search_space: {C: {dist: choice, options: [1.0]}}}
    split: {train: {start: 2013-01-01, end: 2013-01-03}, validation: {start: 2013-01-04, end: 2013-01-06}}
scoring:
  s: {model: "models:/alarm@champion", spine: events, output: predictions_s}
monitoring:
  m: {scoring: s, reference: t}
"""

PANDAS_LOADER = """
import pandas as pd


def rows(spark, inputs):
    return pd.DataFrame({"user": ["u1"], "amount": [1.0]})  # a pandas frame, not a Spark DataFrame
"""


def repo_files(c: dict[str, Any], folder_name: str, files: dict[str, str], *, main_extra: str = "",
               overrides: dict[str, Any] | None = None, main: str | None = None) -> Any:
    """A repository in its own folder: the base feature_repo.yaml (+ ``main_extra``, or ``main``
    instead) and ``files`` beside it (included YAML, Python modules)."""
    from engine.repository import load_repository

    folder = Path(c["tmp"]) / folder_name
    folder.mkdir(exist_ok=True)
    base = (Path(c["repo"]) / "feature_repo.yaml").read_text()
    (folder / "feature_repo.yaml").write_text(main if main is not None else base + main_extra)
    for name, text in files.items():
        (folder / name).write_text(text)
    return load_repository(folder, overrides=[f"{k}={v}" for k, v in (overrides or {}).items()])


def world_repo(c: dict[str, Any], overrides: dict[str, Any] | None = None, extra: str = "") -> Any:
    """The base repository including WORLD_YAML (+ ``extra`` definitions in a second include)."""
    files = {"world.yaml": WORLD_YAML, "extra.yaml": extra or "{}\n"}
    return repo_files(c, "repo_world", files, main_extra="include: [world.yaml, extra.yaml]\n", overrides=overrides)


def repo_run(runner: str, c: dict[str, Any], name: str, overrides: dict[str, Any] | None = None, extra: str = "",
             **kwargs: Any) -> Any:
    import engine.repository as repository

    return getattr(repository, runner)(c["fs"], world_repo(c, overrides, extra), name, **kwargs)


class ConstantModel:
    """A pyfunc-style model (``predict(context, frame)``): the user's own scoring rule."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return [0.5] * len(model_input)


def log(c: dict[str, Any], model: Any = None, **kwargs: Any) -> Any:
    from engine.pipelines.models import log_model

    args = {"training_set": c["dataset"], "flavor": "pyfunc", "store": c["fs"], **kwargs}
    return log_model(model if model is not None else ConstantModel(), **args)


def unfitted_spark_estimator(c: dict[str, Any]) -> Any:
    from pyspark.ml.classification import LogisticRegression

    return LogisticRegression(featuresCol="features", labelCol="alarm")


def unfitted_sklearn_pipeline(c: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression())


def string_label_spine(c: dict[str, Any]) -> Any:
    return (c["view"], frame(c, [(1, 1, naive(5), "yes")], "event_id LONG, device INT, ts TIMESTAMP, alarm STRING"))


def resolved_predict(c: dict[str, Any], features: list[str]) -> Any:
    from engine.pipelines.inference import predict, resolve_model

    model = resolve_model("models:/alarm@champion", store=c["fs"])
    return predict(c["spark"], model, c["dataset"].read("validation"), features)


def repo_ingest(c: dict[str, Any], source: str, files: dict[str, str], overrides: dict[str, Any]) -> Any:
    from engine.repository import ingest

    return ingest(c["fs"], repo_files(c, f"repo_{source}", files, overrides=overrides), source)


def model_inputs(c: dict[str, Any], features: list[str]) -> Any:
    from engine.pipelines.models import as_model_inputs

    return as_model_inputs(c["dataset"].read("train"), features, label="alarm")


def resolve(c: dict[str, Any], uri: str) -> Any:
    from engine.pipelines.inference import resolve_model

    return resolve_model(uri, store=c["fs"])


def score_frame(c: dict[str, Any], **kwargs: Any) -> Any:
    """score_batch returning a DataFrame (no write unless output, batch_id and scored_at are given)."""
    from engine.pipelines.inference import score_batch

    spine = scoring_spine(c["spark"], devices=1, hours=1)
    return score_batch(c["spark"], "models:/alarm@champion", spine, **{"store": c["fs"], **kwargs})


def yaml_file(c: dict[str, Any], name: str, text: str) -> str:
    path = Path(c["tmp"]) / name
    path.write_text(text)
    return str(path)


def training_yaml(c: dict[str, Any], text: str) -> Any:
    return load_training_config(yaml_file(c, "training.yaml", text))


def suite_yaml(c: dict[str, Any], text: str) -> Any:
    from engine.validation import load_suite

    return load_suite(yaml_file(c, "suite.yaml", text))


def pipeline(c: dict[str, Any], **kwargs: Any) -> Any:
    from engine.pipelines import FeaturePipeline, Input

    args = {"inputs": {"events": Input(c["raw"], time_column="ts")}, "output": c["fs"].get_feature_group("sums"),
            "lookback": timedelta(days=1), "step": timedelta(days=1), **kwargs}
    return FeaturePipeline(args.pop("name", "sums"), rolling_sum, **args)


LOGREG = "family: sklearn_logreg\nsearch_space: {C: {dist: loguniform, low: 0.1, high: 10.0}}\n"

Case = Callable[[dict[str, Any]], Any]
CASES: list[tuple[str, Case, type[EngineError], list[str]]] = [
    # -- temporal core
    ("asof-missing-on-column", lambda c: asof(c, left_on="tss"), ColumnNotFoundError, ["left_on", "tss"]),
    ("asof-missing-by-column", lambda c: asof(c, by="dev"), ColumnNotFoundError, ["by", "dev"]),
    ("asof-bad-direction", lambda c: asof(c, direction="sideways"), InvalidArgumentError, ["direction", "sideways"]),
    ("asof-negative-tolerance", lambda c: asof(c, tolerance=timedelta(hours=-1)), InvalidArgumentError,
     ["tolerance", "days=-1"]),
    ("asof-tolerance-not-timedelta", lambda c: asof(c, tolerance=5), InvalidArgumentError, ["tolerance", "5 (int)"]),
    ("asof-key-types-differ", lambda c: asof(c, right_df=frame(c, [("1", naive(0), 1.0)], "device STRING, at TIMESTAMP, level DOUBLE")),
     IncompatibleTypesError, ["by", "device", "string"]),
    ("asof-string-time", lambda c: asof(c, left_df=frame(c, [(1, "x")], "device INT, ts STRING")), ColumnTypeError,
     ["on", "ts", "string"]),
    ("window-unknown-function", lambda c: agg("level", "median", timedelta(hours=1)), InvalidArgumentError,
     ["fn", "median"]),
    ("window-negative-window", lambda c: agg("level", "sum", timedelta(hours=-2)), InvalidArgumentError,
     ["window", "days=-1"]),
    ("window-missing-event-time", lambda c: windows(c, event_time="when"), ColumnNotFoundError, ["event_time", "when"]),
    ("window-missing-agg-column", lambda c: windows(c, aggs=[agg("lvl", "sum", timedelta(hours=1))]),
     ColumnNotFoundError, ["lvl"]),
    # -- feature groups
    ("group-unsafe-name", lambda c: c["fs"].create_feature_group("../evil", primary_key="device", event_time="at", schema=SENSOR),
     UnsafeNameError, ["name", "../evil"]),
    ("group-string-event-time", lambda c: c["fs"].create_feature_group("g1", primary_key="device", event_time="at",
                                                                        schema="device INT, at STRING"),
     ColumnTypeError, ["event_time", "at", "TIMESTAMP", "found string", "to_timestamp"]),
    ("group-unknown-primary-key", lambda c: c["fs"].create_feature_group("g2", primary_key="dev", event_time="at", schema=SENSOR),
     ColumnNotFoundError, ["primary_key", "dev"]),
    ("group-version-zero", lambda c: c["fs"].create_feature_group("g3", 0, primary_key="device", event_time="at", schema=SENSOR),
     InvalidArgumentError, ["version", "0"]),
    ("group-bad-ddl", lambda c: c["fs"].create_feature_group("g4", primary_key="device", event_time="at", schema="device INTEGR,"),
     InvalidArgumentError, ["schema", "device INTEGR,"]),
    ("group-missing", lambda c: c["fs"].get_feature_group("nosuch"), NotFoundError, ["feature group", "nosuch"]),
    ("insert-wrong-type", lambda c: c["sensor"].insert(sensor_rows(c, [(1, naive(1), "x")], "device INT, at TIMESTAMP, level STRING")),
     SchemaMismatchError, ["level", "double", "string"]),
    ("insert-missing-column", lambda c: c["sensor"].insert(sensor_rows(c, [(1, naive(1))], "device INT, at TIMESTAMP")),
     SchemaMismatchError, ["level", "no such column"]),
    ("insert-extra-column", lambda c: c["sensor"].insert(sensor_rows(c, [(1, naive(1), 1.0, 2)], SENSOR + ", extra INT")),
     SchemaMismatchError, ["extra", "an extra column"]),
    ("insert-null-key", lambda c: c["sensor"].insert(sensor_rows(c, [(None, naive(1), 1.0)])), PrimaryKeyError,
     ["NULL", "device", '"device":null']),
    ("insert-duplicate-key", lambda c: c["sensor"].insert(sensor_rows(c, [(7, naive(1), 1.0), (7, naive(1), 2.0)])),
     PrimaryKeyError, ["duplicate", "device", '"device":7']),
    ("insert-not-a-dataframe", lambda c: c["sensor"].insert([(1, naive(1), 1.0)]), InvalidArgumentError, ["df", "list"]),
    ("replace-range-rows-outside", lambda c: c["sensor"].replace_range(
        sensor_rows(c, [(1, naive(30), 1.0)]), TimeRange(at(0), at(10))),
     InvalidArgumentError, ["df", "1 row(s) outside", "2013-01-02T06:00"]),
    # -- pipelines
    ("pipeline-backwards-range", lambda c: c["pipeline"].run(at(48), at(24)), TimeRangeError,
     ["start/end", "2013-01-03T00:00:00+00:00", "2013-01-02T00:00:00+00:00"]),
    ("pipeline-naive-start", lambda c: c["pipeline"].run(naive(0), at(24)), InvalidArgumentError,
     ["start", "naive datetime 2013-01-01T00:00:00"]),
    ("pipeline-zero-step", lambda c: pipeline(c, step=timedelta(0)), InvalidArgumentError, ["step", "a positive timedelta", "timedelta(0)"]),
    ("pipeline-unsafe-name", lambda c: pipeline(c, name="sums; DROP"), UnsafeNameError, ["name", "sums; DROP"]),
    ("pipeline-missing-time-column", lambda c: pipeline(
        c, inputs={"events": Input(c["raw"], time_column="when")}).run(at(0), at(24)),
     ColumnNotFoundError, ["time_column", "when"]),
    ("pipeline-missing-input-table", lambda c: pipeline(c, inputs={"events": str(Path(c["tmp"]) / "no_table")}).run(at(0), at(24)),
     NotFoundError, ["Delta table", "no_table"]),
    # -- feature views
    ("view-unknown-group", lambda c: lookup_view(c, "v_bad1", feature_group="nosuch"), NotFoundError, ["nosuch"]),
    ("view-unknown-feature", lambda c: lookup_view(c, "v_bad2", features=["lvl"]), ColumnNotFoundError, ["features", "lvl"]),
    ("view-unsafe-name", lambda c: lookup_view(c, "v bad"), UnsafeNameError, ["name", "v bad"]),
    ("view-spine-without-time", lambda c: c["view"].batch_data(frame(c, [(1,)], "device INT")), ColumnNotFoundError,
     ["spine", "ts"]),
    ("view-spine-string-time", lambda c: c["view"].batch_data(frame(c, [(1, "x")], "device INT, ts STRING")), ColumnTypeError,
     ["spine", "ts", "string"]),
    # -- training datasets
    ("dataset-gap-too-small", lambda c: dataset(c, spine=labelled_spine(c), split=time_split(1)), TimeRangeError,
     ["split.validation", "2013-01-03T03:00:00+00:00", "2:00:00", "1:00:00"]),
    ("dataset-spine-without-label", lambda c: dataset(c, spine=labelled_spine(c).drop("alarm")), ColumnNotFoundError,
     ["labels", "alarm"]),
    ("dataset-bad-fractions", lambda c: dataset(c, spine=labelled_spine(c), split=RandomSplit({"train": 0.5, "validation": 0.2})),
     InvalidArgumentError, ["split.fractions", "0.5", "0.2"]),
    # -- scoring
    ("score-bad-model-uri", lambda c: score(c, model="runs:/abc/model"), InvalidArgumentError, ["model_uri", "runs:/abc/model"]),
    ("score-unknown-model", lambda c: score(c, model="models:/nosuch@champion"), NotFoundError, ["models:/nosuch@champion"]),
    ("score-spine-without-key", lambda c: score(c, scoring_spine(c["spark"], devices=1, hours=1).drop("device")),
     ColumnNotFoundError, ["spine", "device"]),
    ("score-empty-spine", lambda c: score(c, scoring_spine(c["spark"], devices=1, hours=1).where(F.lit(False))),
     InvalidArgumentError, ["spine", "an empty batch"]),
    ("score-unsafe-batch-id", lambda c: score(c, batch_id="b'; --"), UnsafeNameError, ["batch_id", "b'; --"]),
    ("score-naive-scored-at", lambda c: score(c, scored_at=naive(0)), InvalidArgumentError, ["scored_at", "naive"]),
    # -- jobs' command lines
    ("job-missing-repo", lambda c: job("plan", "--repo", "nowhere/repo"), NotFoundError, ["feature repository", "nowhere/repo"]),
    ("job-unknown-key", lambda c: job("feature_backfill", "--repo", c["repo"], "--pipeline", "sums", "--set",
                                      "pipelines.sums.stepp=7d"), ConfigError, ["pipelines.sums.stepp", "an unknown key"]),
    ("job-wrong-type", lambda c: job("feature_backfill", "--repo", c["repo"], "--pipeline", "sums", "--set",
                                     "pipelines.sums.step=soon"), ConfigError, ["pipelines.sums.step", "'soon'"]),
    ("job-bad-start", lambda c: job("feature_backfill", "--repo", c["repo"], "--pipeline", "sums", "--start", "next tuesday"),
     ConfigError, ["start", "'next tuesday'"]),
    ("job-unknown-profile", lambda c: job("plan", "--repo", c["repo"], "--profile", "cloud9"), UnknownProfileError,
     ["profile", "cloud9", "searched"]),
    ("job-unknown-option", lambda c: job("plan", "--confg", "x.yaml"), InvalidArgumentError, ["command line", "--confg"]),
    ("job-override-without-value", lambda c: job("apply", "--repo", c["repo"], "--set", "store"), ConfigError,
     ["store", "key=value"]),
    ("job-unknown-pipeline", lambda c: job("feature_backfill", "--repo", c["repo"], "--pipeline", "sum"), NotFoundError,
     ["pipeline", "'sum'", "['sums']"]),
    ("job-no-pipeline-named", lambda c: job("feature_backfill", "--repo", c["repo"]), InvalidArgumentError,
     ["--pipeline/--all", "--pipeline None"]),
    ("job-unknown-training", lambda c: job("train", "--repo", c["repo"], "--training", "gbt"), NotFoundError,
     ["training config", "'gbt'", "[]"]),
    ("job-unknown-scoring", lambda c: job("score_batch", "--repo", c["repo"], "--scoring", "nightly"), NotFoundError,
     ["scoring job", "'nightly'"]),
    ("job-score-without-model", lambda c: job("score_batch", "--repo", c["repo"], "--spine", "events"),
     InvalidArgumentError, ["--scoring", "--model None"]),
    ("job-ingest-without-loader", lambda c: job("ingest", "--repo", c["repo"], "--source", "events"), ConfigError,
     ["sources.events.loader", "only read"]),
    # -- feature repositories
    ("repo-unknown-group-in-view", lambda c: repo_with(c, "views:\n  v: {spine_time: ts, lookups: [{feature_group: nope}]}\n"),
     ConfigError, ["views.v.lookups[0].feature_group", "'nope'"]),
    ("repo-transform-and-sql", lambda c: repo_with(c, "", {"pipelines.sums.sql": "SELECT 1"}), ConfigError,
     ["pipelines.sums", "exactly one of transform or sql"]),
    ("repo-unknown-input", lambda c: repo_with(c, "", {"pipelines.sums.inputs.events": "evnts"}), ConfigError,
     ["pipelines.sums.inputs.events", "'evnts'"]),
    ("repo-unimportable-transform", lambda c: repo_plan(c, {"pipelines.sums.transform": "tests.nowhere:fn"}),
     InvalidArgumentError, ["pipelines.sums.transform", "tests.nowhere:fn"]),
    ("repo-unknown-primary-key", lambda c: repo_plan(c, {"feature_groups.sums.primary_key": "[user, ts2]"}),
     ColumnNotFoundError, ["primary_key", "ts2"]),
    ("repo-pinned-version-conflict", lambda c: repo_apply(c, {"feature_groups.sums.version": 1,
                                                              "feature_groups.sums.schema": f"'{OUTPUT}, extra DOUBLE'"}),
     AlreadyExistsError, ["sums v1", "+extra double", "raise its version"]),
    ("repo-source-named-like-group", lambda c: repo_with(c, "", {"sources.sums": "{path: x}"}), ConfigError,
     ["sources.sums", "distinct from feature group names"]),
    ("repo-backfill-backwards", lambda c: job("feature_backfill", "--repo", c["repo"], "--pipeline", "sums", "--set",
                                              "pipelines.sums.backfill.start=2024-02-01"), ConfigError,
     ["pipelines.sums.backfill", "start < end"]),
    ("repo-duplicate-across-include", lambda c: repo_files(
        c, "repo_dup", {"more.yaml": f"feature_groups:\n  sums: {{primary_key: [user], event_time: ts, schema: '{OUTPUT}'}}\n"},
        main_extra="include: [more.yaml]\n"),
     ConfigError, ["more.yaml", "feature_groups.sums", "also defined in", "feature_repo.yaml"]),
    ("repo-missing-include", lambda c: repo_files(c, "repo_noinc", {}, main_extra="include: [groups.yaml]\n"),
     ConfigError, ["groups.yaml", "no such file"]),
    ("repo-include-sets-store", lambda c: repo_files(c, "repo_incstore", {"more.yaml": "store: {root: elsewhere}\n"},
                                                     main_extra="include: [more.yaml]\n"),
     ConfigError, ["more.yaml", "store", "only definitions"]),
    ("repo-without-store", lambda c: repo_files(c, "repo_nostore", {}, main="project: p\nfeature_groups: {}\n"),
     ConfigError, ["store", "nothing (missing)"]),
    ("repo-unsafe-definition-name", lambda c: repo_with(c, "views:\n  big-orders: {spine_time: ts}\n"),
     UnsafeNameError, ["views (name)", "big-orders"]),
    ("repo-view-key-typo", lambda c: world_repo(c, extra="views:\n  v: {spine_time: ts, lokups: []}\n"),
     ConfigError, ["views.v.lokups", "an unknown key"]),
    ("repo-lookup-key-typo", lambda c: world_repo(c, extra="views:\n  v: {spine_time: ts, lookups: [{feature_group: sensor, "
                                                  "lookbak: 2h}]}\n"),
     ConfigError, ["lookbak", "an unknown key"]),
    ("repo-training-key-typo", lambda c: world_repo(c, {"training.t.splt": "{kind: random}"}), ConfigError,
     ["training.t.splt", "an unknown key"]),
    ("repo-split-key-typo", lambda c: world_repo(c, {"training.t.split.min_gapp": "2h"}), ConfigError,
     ["training.t.split.min_gapp", "an unknown key"]),
    ("repo-scoring-key-typo", lambda c: world_repo(c, {"scoring.s.passtrough": "[event_id]"}), ConfigError,
     ["scoring.s.passtrough", "an unknown key"]),
    ("repo-training-unknown-view", lambda c: world_repo(c, {"training.t.view": "alarms"}), ConfigError,
     ["training.t.view", "'alarms'", "['alarm']"]),
    ("repo-monitoring-unknown-scoring", lambda c: world_repo(c, {"monitoring.m.scoring": "nightly"}), ConfigError,
     ["monitoring.m.scoring", "'nightly'", "['s']"]),
    ("repo-split-validation-before-train", lambda c: repo_run(
        "build_training_data", c, "t", {"training.t.split.validation.start": "2012-12-01",
                                        "training.t.split.validation.end": "2012-12-20"}),
     TimeRangeError, ["split.validation", "2012-12-01T00:00:00+00:00", "2013-01-03T00:00:00+00:00"]),
    ("repo-split-gap-below-lookback", lambda c: repo_run(
        "build_training_data", c, "t", {"training.t.split.validation.start": "'2013-01-03T01:00:00'"}),
     TimeRangeError, ["split.validation", "2:00:00", "2013-01-03T01:00:00+00:00", "gap of 1:00:00"]),
    ("repo-split-range-backwards", lambda c: repo_run("build_training_data", c, "t", {"training.t.split.train.end": "2012-12-01"}),
     ConfigError, ["training.t.split.train", "start < end", "2012-12-01"]),
    ("repo-view-not-applied", lambda c: repo_run("build_training_data", c, "t2", extra=(
        "views:\n  alarm2: {spine_time: ts, labels: [alarm], lookups: [{feature_group: sensor}]}\n"
        "training:\n  t2: {view: alarm2, model: {family: sklearn_logreg}, split: {kind: random}}\n")),
     NotFoundError, ["feature view", "alarm2", "create", "jobs.apply"]),
    ("repo-pipeline-not-applied", lambda c: repo_run("backfill", c, "sums"), NotFoundError,
     ["pipeline", "sums", "create", "jobs.apply"]),
    ("repo-train-before-build", lambda c: repo_run("train", c, "t"), NotFoundError,
     ["training dataset", "'t'", "jobs.build_training_data"]),
    ("repo-monitor-before-build", lambda c: repo_run("monitor", c, "m", scored_at=c["scored_at"]), NotFoundError,
     ["training dataset", "'t'", "jobs.build_training_data"]),
    ("repo-train-unknown-family", lambda c: repo_run("train", c, "t", {"training.t.model.family": "xgboost"}), ConfigError,
     ["training.t.model", "family", "'xgboost'"]),
    ("repo-scoring-unknown-alias", lambda c: repo_run("score", c, "s", {"scoring.s.model": "models:/alarm@staging"},
                                                      scored_at=c["scored_at"]),
     NotFoundError, ["model alias", "models:/alarm@staging", "['champion']"]),
    ("repo-scoring-batch-backwards", lambda c: repo_run(
        "score", c, "s", {"scoring.s.batches": "[{start: 2013-01-05, end: 2013-01-02}]"}, scored_at=c["scored_at"]),
     ConfigError, ["scoring.s.batches[0]", "start < end", "2013-01-05"]),
    ("repo-on-demand-not-importable", lambda c: repo_plan(c, {"views": "{v: {spine_time: ts, lookups: [{feature_group: sums}], "
                                                              "on_demand: [{name: ratio, function: 'tests.nowhere:ratio', "
                                                              "inputs: [amount_sum_1d]}]}}"}),
     InvalidArgumentError, ["views.v.on_demand[ratio].function", "tests.nowhere:ratio"]),
    ("repo-sql-pipeline-also-transform", lambda c: repo_with(c, "", {"pipelines.sums.sql": "'SELECT * FROM {events}'"}),
     ConfigError, ["pipelines.sums", "exactly one of transform or sql", "tests.reliability._workers:rolling_sum"]),
    ("repo-loader-returns-pandas", lambda c: repo_ingest(c, "raw_rows", {"pandas_loader.py": PANDAS_LOADER},
                                                         {"sources.raw_rows": "{loader: 'pandas_loader:rows'}"}),
     ConfigError, ["sources.raw_rows.loader", "a Spark DataFrame", "pandas.core.frame.DataFrame"]),
    # -- bring your own model
    ("model-unknown-flavor", lambda c: log(c, flavor="xgboost"), InvalidArgumentError, ["flavor", "'xgboost'", "pyfunc"]),
    ("model-training-set-is-a-dataframe", lambda c: log(c, training_set=c["dataset"].read("train"), task="binary",
                                                       classes=[0, 1]),
     InvalidArgumentError, ["training_set", "DataFrame"]),
    ("model-training-set-reversed", lambda c: log(c, training_set=(labelled_spine(c), c["view"]), task="binary",
                                                 classes=[0, 1]),
     InvalidArgumentError, ["training_set", "tuple"]),
    ("model-pyfunc-without-task", lambda c: log(c), InvalidArgumentError, ["task", "None", "not readable"]),
    ("model-pyfunc-without-classes", lambda c: log(c, task="binary"), InvalidArgumentError,
     ["classes", "None", "'binary'"]),
    ("model-binary-three-classes", lambda c: log(c, task="binary", classes=[0, 1, 2]), InvalidArgumentError,
     ["classes", "[0, 1, 2]"]),
    ("model-unknown-task", lambda c: log(c, task="ranking"), InvalidArgumentError, ["task", "'ranking'"]),
    ("model-feature-not-in-training-set", lambda c: log(c, features=["s_lvl"], task="binary", classes=[0, 1]),
     ColumnNotFoundError, ["features", "s_lvl"]),
    ("model-feature-not-from-view", lambda c: log(c, features=["event_id"], task="binary", classes=[0, 1]),
     InvalidArgumentError, ["features", "event_id", "not looked up by the view"]),
    ("model-label-not-in-view", lambda c: log(c, label="tag", task="binary", classes=[0, 1]), InvalidArgumentError,
     ["label", "'tag'", "['alarm']"]),
    ("model-label-wrong-type", lambda c: log(c, training_set=string_label_spine(c), task="regression"), ColumnTypeError,
     ["label", "alarm", "regression", "string"]),
    ("model-spark-estimator-not-fitted", lambda c: log(c, unfitted_spark_estimator(c), flavor="spark"),
     InvalidArgumentError, ["model", "PipelineModel", "LogisticRegression"]),
    ("model-sklearn-not-fitted", lambda c: log(c, unfitted_sklearn_pipeline(c), flavor="sklearn"), InvalidArgumentError,
     ["model", "unfitted Pipeline", "fit()"]),
    ("model-unsafe-registered-name", lambda c: log(c, task="binary", classes=[0, 1], registered_name="alarm model"),
     InvalidArgumentError, ["registered_name", "'alarm model'"]),
    ("model-reserved-alias", lambda c: log(c, task="binary", classes=[0, 1], registered_name="alarm", alias="latest"),
     InvalidArgumentError, ["alias", "'latest'"]),
    ("model-inputs-missing-feature", lambda c: model_inputs(c, ["s_lvl"]), ColumnNotFoundError, ["features", "s_lvl"]),
    ("model-predict-other-features", lambda c: resolved_predict(c, ["s_level", "device"]), InvalidArgumentError,
     ["features", "'device'", "the model's inputs"]),
    ("model-uri-without-scheme", lambda c: resolve(c, "alarm@champion"), InvalidArgumentError,
     ["model_uri", "'alarm@champion'"]),
    ("score-unknown-alias", lambda c: score(c, model="models:/alarm@staging"), NotFoundError,
     ["models:/alarm@staging", "['champion']", "sqlite"]),
    ("score-unknown-version", lambda c: score(c, model="models:/alarm/99"), NotFoundError,
     ["models:/alarm/99", "[1]"]),
    ("score-passthrough-a-string", lambda c: score_frame(c, passthrough="tag"), InvalidArgumentError,
     ["passthrough", "'tag'"]),
    ("score-output-without-batch-id", lambda c: score_frame(c, output=c["predictions"]), InvalidArgumentError,
     ["batch_id", "['output'] without ['batch_id', 'scored_at']"]),
    ("score-missing-passthrough", lambda c: score(c, scoring_spine(c["spark"], devices=1, hours=1).drop("tag")),
     ColumnNotFoundError, ["spine", "tag"]),
    # -- the generic jobs' command lines
    ("job-build-without-training", lambda c: job("build_training_data", "--repo", c["repo"]), InvalidArgumentError,
     ["command line", "--training"]),
    ("job-train-without-training", lambda c: job("train", "--repo", c["repo"]), InvalidArgumentError,
     ["command line", "--training"]),
    ("job-monitor-without-monitoring", lambda c: job("monitor", "--repo", c["repo"]), InvalidArgumentError,
     ["command line", "--monitoring"]),
    ("job-build-unknown-training", lambda c: job("build_training_data", "--repo", c["repo"], "--training", "logreg"),
     NotFoundError, ["training config", "'logreg'", "--training"]),
    ("job-unknown-monitoring", lambda c: job("monitor", "--repo", c["repo"], "--monitoring", "drift"), NotFoundError,
     ["monitoring job", "'drift'", "[]"]),
    ("job-train-dataset-version-not-int", lambda c: job("train", "--repo", c["repo"], "--training", "t",
                                                        "--dataset-version", "latest"),
     InvalidArgumentError, ["--dataset-version", "'latest'"]),
    ("job-ingest-without-source", lambda c: job("ingest", "--repo", c["repo"]), InvalidArgumentError,
     ["--source/--all", "--source None"]),
    ("job-ingest-unknown-source", lambda c: job("ingest", "--repo", c["repo"], "--source", "evnts"), NotFoundError,
     ["source", "'evnts'", "['events']"]),
    ("job-backfill-pipeline-and-all", lambda c: job("feature_backfill", "--repo", c["repo"], "--pipeline", "sums", "--all"),
     InvalidArgumentError, ["--pipeline/--all", "--all True"]),
    ("job-backfill-start-after-end", lambda c: job("feature_backfill", "--repo", c["repo"], "--pipeline", "sums",
                                                   "--start", "2024-02-01", "--end", "2024-01-01"),
     TimeRangeError, ["--start/--end", "start=2024-02-01", "end=2024-01-01"]),
    ("job-score-start-after-end", lambda c: job("score_batch", "--repo", c["repo"], "--model", "models:/alarm@champion",
                                                "--spine", "events", "--output", "p", "--start", "2013-01-02",
                                                "--end", "2013-01-02"),
     TimeRangeError, ["--start/--end", "start=2013-01-02", "end=2013-01-02"]),
    ("job-score-start-without-end", lambda c: job("score_batch", "--repo", c["repo"], "--model", "models:/alarm@champion",
                                                  "--spine", "events", "--output", "p", "--start", "2013-01-02"),
     InvalidArgumentError, ["--start/--end", "both or neither", "2013-01-02, None"]),
    ("job-score-model-without-output", lambda c: job("score_batch", "--repo", c["repo"], "--model", "models:/alarm@champion",
                                                     "--spine", "events"),
     InvalidArgumentError, ["--scoring", "--output None"]),
    ("job-spark-conf-without-equals", lambda c: job("plan", "--repo", c["repo"], "--spark-conf", "spark.executor.memory"),
     InvalidArgumentError, ["--spark-conf", "'spark.executor.memory'", "key=value"]),
    ("job-run-with-range", lambda c: job("run", "--repo", c["repo"], "--start", "2024-01-01"), InvalidArgumentError,
     ["command line", "--start 2024-01-01"]),
    ("job-apply-bad-override", lambda c: job("apply", "--repo", c["repo"], "--set", "feature_groups.sums.version=first"),
     ConfigError, ["feature_groups.sums.version", "'first'"]),
    # -- YAML configs
    ("yaml-training-unknown-key", lambda c: training_yaml(c, LOGREG + "max_eval: 3\n"), ConfigError, ["max_eval", "an unknown key"]),
    ("yaml-training-wrong-type", lambda c: training_yaml(c, LOGREG + "max_evals: ten\n"), ConfigError, ["max_evals", "'ten'"]),
    ("yaml-training-missing-file", lambda c: load_training_config("conf/training/nope.yaml"), ConfigError, ["nope.yaml", "no such file"]),
    ("yaml-python-object-tag", lambda c: training_yaml(c, "family: !!python/object/apply:os.system ['echo pwned']\n"),
     ConfigError, ["valid YAML", "python/object/apply:os.system"]),
    ("yaml-not-a-mapping", lambda c: training_yaml(c, "- family\n- sklearn_logreg\n"), ConfigError, ["<root>", "list"]),
    ("yaml-suite-unknown-expectation", lambda c: suite_yaml(
        c, "name: s\npolicy: reject\nexpectations:\n  - type: expect_magic\n    kwargs: {column: x}\n"),
     ConfigError, ["expect_magic"]),
]


@pytest.mark.parametrize(("case", "error", "needles"), [pytest.param(fn, err, needles, id=name) for name, fn, err, needles in CASES])
def test_bad_input_is_refused_with_a_clear_error_and_nothing_written(ctx, case, error, needles):
    before = delta_versions(*ctx["roots"])
    assert len(before) >= 5  # the group, the registry tables, the dataset, the raw and predictions tables
    try:
        outcome = case(ctx)
    except EngineError as err:
        assert type(err) is error, f"{type(err).__name__}: {err}"
        message = str(err)
    else:
        assert isinstance(outcome, JobOutcome), f"no error raised; returned {outcome!r}"
        lines = outcome.stderr.strip().splitlines()
        assert outcome.code == 2 and len(lines) == 1, outcome
        assert lines[0].startswith(f"FAILED: [{error.error_class}] "), lines[0]
        message = lines[0]
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    assert delta_versions(*ctx["roots"]) == before


def test_the_matrix_is_wide():
    assert len(CASES) >= 85 and len({name for name, *_ in CASES}) == len(CASES)
    areas = {name.split("-")[0] for name, *_ in CASES}
    assert areas >= {"asof", "window", "group", "insert", "pipeline", "view", "dataset", "score", "job", "yaml", "repo",
                     "model"}
