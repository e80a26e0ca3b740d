"""Run a repository's model side by name: training data, training, scoring, monitoring.

Every runner takes the store and the repository; MLflow is reached through the store's own
tracking and registry URIs (``fs.tracking_uri``), never the working directory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.errors import NotFoundError
from engine.repository.build import time_range, training_split, training_time_range
from engine.repository.loader import REPO_FILE, Repository
from engine.repository.planning import Plan
from engine.repository.run_features import registered
from engine.temporal.ranges import TimeRange, to_utc

if TYPE_CHECKING:
    from engine.store.feature_store import FeatureStore
    from engine.store.feature_view import FeatureView
    from engine.store.training_dataset import TrainingDataset

__all__ = ["build_training_data", "monitor", "score", "train", "training_dataset"]

log = logging.getLogger(__name__)


def _view(fs: FeatureStore, repo: Repository, training: str, current: Plan | None = None) -> FeatureView:
    spec = repo.get("training", training, argument="--training")
    return registered(fs, repo, "feature_view", spec.view, current=current)


def build_training_data(fs: FeatureStore, repo: Repository, training: str) -> TrainingDataset:
    """Materialise training config ``training``'s dataset: its view over the spine source rows in
    its time range, split as declared, as the view's next training dataset (one commit)."""
    view = _view(fs, repo, training)
    return fs.create_training_dataset(view, time_range=training_time_range(repo, training),
                                      split=training_split(repo, training), description=f"training config {training}")


def training_dataset(fs: FeatureStore, repo: Repository, training: str, version: int | None = None) -> TrainingDataset:
    """The latest (or ``version``) dataset built for training config ``training``."""
    view = _view(fs, repo, training)
    if version is not None:
        return fs.get_training_dataset(view.name, view.version, version)
    found = [d for d in fs.list_training_datasets(view.name)
             if d.view_version == view.version and d.description == f"training config {training}"]
    if not found:
        raise NotFoundError(
            kind="training dataset", name=f"of training config {training!r} (view {view.name} v{view.version})",
            hint=f"Build it first: `python -m jobs.build_training_data --repo {repo.folder} --training {training}`.",
        )
    return max(found, key=lambda d: d.version)


def train(fs: FeatureStore, repo: Repository, training: str, *, overrides: Mapping[str, Any] | None = None,
          dataset_version: int | None = None) -> Any:
    """Tune, train and register training config ``training``'s model on its latest dataset."""
    from engine.pipelines.training import training_config
    from engine.pipelines.view_training import train_on_dataset

    spec = repo.get("training", training, argument="--training")
    source = f"{repo.folder / REPO_FILE} training.{training}.model"
    config = training_config({**spec.model, **dict(overrides or {})}, source=source)
    dataset = training_dataset(fs, repo, training, dataset_version)
    return train_on_dataset(  # MLflow: the store's tracking and registry URIs
        fs, dataset, config=config, label=spec.label, experiment=spec.experiment or f"{repo.project}_{training}",
        model_name=spec.registered_model or dataset.view_name, alias=spec.alias,
    )


def score(fs: FeatureStore, repo: Repository, scoring: str | None = None, *, scored_at: datetime,
          model: str | None = None, spine: str | None = None, output: str | None = None,
          batches: list[TimeRange] | None = None, passthrough: list[str] | None = None) -> dict[str, Any]:
    """Score a declared scoring job (or explicit ``model``/``spine``/``output``): one Delta commit per
    batch (a time range of the view's spine time; default one batch: the whole spine)."""
    from pyspark.sql import functions as F

    from engine.pipelines.inference import model_feature_view, resolve_model, score_batch
    from engine.store import delta

    repo.activate()
    spec = repo.get("scoring", scoring, argument="--scoring") if scoring is not None else None
    model = model or (spec.model if spec else None)
    spine = spine or (spec.spine if spec else None)
    output = output or (spec.output if spec else None)
    missing = [k for k, v in (("model", model), ("spine", spine), ("output", output)) if not v]
    if missing:
        raise NotFoundError(kind="scoring argument", name=missing[0],
                            hint=f"Name a scoring job ({sorted(repo.scoring)}) or pass --model, --spine and --output.")
    assert model is not None and spine is not None and output is not None
    scored_at = to_utc(scored_at, argument="scored_at")
    if batches is None and spec is not None:
        source = str(repo.folder / REPO_FILE)
        batches = [time_range(b, key=f"scoring.{scoring}.batches[{i}]", source=source) for i, b in enumerate(spec.batches)]
    keep = list(passthrough if passthrough is not None else (spec.passthrough if spec else []))
    resolved = resolve_model(model, store=fs)
    view = model_feature_view(fs.spark, resolved, store=fs)
    spine_path, output_path = repo.table_path(spine, fs), repo.table_path(output, fs)
    frame = delta.read(fs.spark, spine_path)
    name = scoring or "batch"
    results = []
    for rng in batches or [None]:
        batch = frame
        batch_id = name
        if rng is not None:
            t = F.col(view.spine_time)
            batch = frame.where((t >= F.lit(rng.start)) & (t < F.lit(rng.end)))
            batch_id = f"{name}_{rng.start:%Y%m%d}_{rng.end:%Y%m%d}"
        scored = score_batch(fs.spark, resolved.uri, batch.select(*dict.fromkeys([*view.spine_columns, *keep])),
                             store=fs, output=output_path, batch_id=batch_id, scored_at=scored_at, passthrough=keep)
        results.append(scored.score_result)
    return {"scoring": name, "model": resolved.uri, "predictions": output_path,
            "batches": {r.batch_id: r.rows for r in results}, "rows": sum(r.rows for r in results)}


def monitor(fs: FeatureStore, repo: Repository, monitoring: str, *, scored_at: datetime) -> dict[str, Any]:
    """Drift of a scoring job's predictions against its training config's training rows (report,
    PNG plots, a Delta table, MLflow), and realised metrics when the spec names labels."""
    from pyspark import StorageLevel

    from engine.monitoring import (
        compute_drift,
        drift_report,
        log_to_mlflow,
        monitoring_config,
        plot_drift,
        realised_metrics,
        write_drift,
        write_realised,
    )
    from engine.pipelines.inference import predict, resolve_model
    from engine.store import delta
    from engine.tracking import mlflow_uris

    repo.activate()
    spec = repo.get("monitoring", monitoring, argument="--monitoring")
    scoring = repo.get("scoring", spec.scoring)
    config = monitoring_config(spec.thresholds, source=f"{repo.folder / REPO_FILE} monitoring.{monitoring}.thresholds")
    dataset = training_dataset(fs, repo, spec.reference)
    view = dataset.view()
    features = view.feature_names
    resolved = resolve_model(scoring.model, store=fs)
    features = [f for f in features if f in resolved.contract.features]  # the model's inputs (not exclusions)
    predictions_path = repo.table_path(scoring.output, fs)
    current = delta.read(fs.spark, predictions_path)
    score = "probability" if "probability" in current.columns else "prediction"  # binary: P(positive class)
    # compute_drift reads its inputs twice: the reference's scores are computed once, kept with
    # only the compared columns (memory, then disk), and dropped when the drift is known
    compared = ["`" + c.replace("`", "``") + "`" for c in (*features, score)]
    reference = predict(fs.spark, resolved, dataset.read("train")).select(*compared).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        result = compute_drift(reference, current, features=features, prediction=score, config=config)
    finally:
        reference.unpersist()
    out_dir = fs.layout.reports(monitoring)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = spec.title or f"Drift: {spec.scoring} vs the training rows of {spec.reference}"
    (out_dir / "drift_report.md").write_text(drift_report(result, title=title))
    plots = plot_drift(result, out_dir)
    write_drift(fs.spark, fs.layout.monitoring("drift"), result, batch_id=monitoring, model_name=resolved.name,
                model_version=resolved.version, scored_at=scored_at)
    with mlflow_uris(fs.tracking_uri, fs.registry_uri):
        log_to_mlflow(result, plots, run_name=f"drift_{monitoring}", experiment=f"{repo.project}_monitoring")
    realised: list[dict[str, Any]] = []
    if spec.labels is not None and spec.label and spec.join_keys:
        labels = delta.read(fs.spark, repo.source_path(spec.labels, fs)).select(*spec.join_keys, spec.label)
        cols = [*spec.join_keys, *([spec.by] if spec.by else []), score]
        realised = realised_metrics(current.select(*dict.fromkeys(cols)), labels, on=spec.join_keys, prediction=score,
                                    label=spec.label, by=spec.by)
        write_realised(fs.spark, fs.layout.monitoring("realised"), realised, model_name=resolved.name,
                       model_version=str(resolved.version), evaluated_at=scored_at)
    flagged = {f.feature: None if f.psi is None else round(f.psi, 3) for f in result.features if f.drifted}
    return {"monitoring": monitoring, "report": str(out_dir / "drift_report.md"), "plots": [str(p) for p in plots],
            "flagged_psi": flagged, "realised": realised}
