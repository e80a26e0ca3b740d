"""Drift results for people and for later: a markdown report, a monitoring Delta table (one row
per batch and column, one commit per batch), and an MLflow run with the plots and the report.

The Delta table holds, per row: the batch (``batch_id``, ``model_name``, ``model_version``,
``scored_at``), the column (``feature``, ``role``, ``kind``, ``data_type``), the row counts, NULL
shares, ``psi``, ``ks`` (+ ``ks_error``, ``ks_pvalue``), ``js``, ``drifted`` and ``flagged_by``,
the thresholds that applied, and the histogram behind PSI (so plots can be redrawn from the table).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError, NotFoundError
from engine.monitoring.drift import DriftResult, FeatureDrift, Thresholds
from engine.temporal.ranges import to_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["DRIFT_TABLE_DDL", "drift_report", "drift_rows", "log_to_mlflow", "read_drift", "write_drift"]

log = logging.getLogger(__name__)

DRIFT_TABLE_DDL = (
    "batch_id STRING, model_name STRING, model_version STRING, scored_at TIMESTAMP, "
    "feature STRING, role STRING, kind STRING, data_type STRING, reference_rows BIGINT, current_rows BIGINT, "
    "reference_null_share DOUBLE, current_null_share DOUBLE, null_share_delta DOUBLE, "
    "psi DOUBLE, ks DOUBLE, ks_error DOUBLE, ks_pvalue DOUBLE, js DOUBLE, drifted BOOLEAN, flagged_by ARRAY<STRING>, "
    "psi_threshold DOUBLE, ks_threshold DOUBLE, ks_pvalue_threshold DOUBLE, js_threshold DOUBLE, "
    "null_share_delta_threshold DOUBLE, "
    "histogram ARRAY<STRUCT<label: STRING, lower: DOUBLE, upper: DOUBLE, reference: BIGINT, current: BIGINT>>"
)


# ---------------------------------------------------------------------------------------------
# markdown


def _ordered(result: DriftResult) -> list[FeatureDrift]:
    """Flagged columns first, then by PSI (highest first; columns without PSI last), then name."""
    return sorted(result.features, key=lambda f: (not f.drifted, -(f.psi if f.psi is not None else -1.0), f.feature))


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _thresholds_text(thresholds: Thresholds) -> str:
    parts = [
        f"PSI > {thresholds.psi:g}" if thresholds.psi is not None else None,
        f"KS > {thresholds.ks:g}" if thresholds.ks is not None else None,
        f"KS p-value < {thresholds.ks_pvalue:g}" if thresholds.ks_pvalue is not None else None,
        f"JS > {thresholds.js:g}" if thresholds.js is not None else None,
        f"|ΔNULL| > {thresholds.null_share_delta:g}" if thresholds.null_share_delta is not None else None,
    ]
    return ", ".join(p for p in parts if p) or "none"


def drift_report(result: DriftResult, *, title: str = "Drift report") -> str:
    """A markdown report: a summary line, the thresholds and one table row per column, flagged
    columns first (then by PSI, highest first)."""
    if not isinstance(result, DriftResult):
        raise InvalidArgumentError(argument="result", expected="a DriftResult", found=type(result).__name__)
    flagged = [f.feature for f in _ordered(result) if f.drifted]
    lines = [
        f"# {title}",
        "",
        f"Reference: {result.reference_rows:,} rows; current: {result.current_rows:,} rows. "
        f"**{len(flagged)} of {len(result.features)} columns drifted**" + (f": {', '.join(flagged)}." if flagged else "."),
        "",
        f"Thresholds: {_thresholds_text(result.config.thresholds)}.",
    ]
    overrides = [f for f in result.features if f.thresholds != result.config.thresholds]
    if overrides:
        lines.append("Per-column thresholds: " + "; ".join(f"{f.feature}: {_thresholds_text(f.thresholds)}" for f in overrides) + ".")
    lines += [
        "",
        "| column | kind | drifted | flagged by | PSI | KS | JS | NULL ref | NULL cur | ΔNULL |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f in _ordered(result):
        name = f"{f.feature} (prediction)" if f.role == "prediction" else f.feature
        lines.append(
            f"| {name} | {f.kind} | {'**yes**' if f.drifted else 'no'} | {', '.join(f.flagged_by) or '–'} "
            f"| {_number(f.psi)} | {_number(f.ks)} | {_number(f.js)} | {f.reference_null_share:.1%} "
            f"| {f.current_null_share:.1%} | {f.null_share_delta * 100:+.1f} pp |"
        )
    lines += [
        "",
        "PSI: numeric columns over the reference's quantile bins, categorical ones over categories "
        f"(empty bins floored at {result.config.psi_epsilon:g}). KS: two-sample statistic (numeric). "
        "JS: Jensen-Shannon distance, base 2 (categorical). NULL shares include NaN.",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Delta


def drift_rows(
    result: DriftResult, *, batch_id: str, model_name: str, model_version: str | int, scored_at: datetime
) -> list[dict[str, Any]]:
    """The rows :func:`write_drift` appends (one per column), as plain dicts."""
    if not isinstance(result, DriftResult):
        raise InvalidArgumentError(argument="result", expected="a DriftResult", found=type(result).__name__)
    for argument, value in (("batch_id", batch_id), ("model_name", model_name)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgumentError(argument=argument, expected="a non-empty string", found=repr(value))
    if isinstance(model_version, bool) or not isinstance(model_version, (str, int)) or not str(model_version).strip():
        raise InvalidArgumentError(argument="model_version", expected="a version number or string", found=repr(model_version))
    scored = to_utc(scored_at, argument="scored_at")
    return [
        {
            "batch_id": batch_id, "model_name": model_name, "model_version": str(model_version), "scored_at": scored,
            "feature": f.feature, "role": f.role, "kind": f.kind, "data_type": f.data_type,
            "reference_rows": f.reference_rows, "current_rows": f.current_rows,
            "reference_null_share": f.reference_null_share, "current_null_share": f.current_null_share,
            "null_share_delta": f.null_share_delta, "psi": f.psi, "ks": f.ks, "ks_error": f.ks_error,
            "ks_pvalue": f.ks_pvalue, "js": f.js, "drifted": f.drifted, "flagged_by": list(f.flagged_by),
            "psi_threshold": f.thresholds.psi, "ks_threshold": f.thresholds.ks,
            "ks_pvalue_threshold": f.thresholds.ks_pvalue, "js_threshold": f.thresholds.js,
            "null_share_delta_threshold": f.thresholds.null_share_delta,
            "histogram": [
                {"label": b.label, "lower": b.lower, "upper": b.upper, "reference": b.reference, "current": b.current}
                for b in f.bins
            ],
        }
        for f in result.features
    ]


def write_drift(
    spark: SparkSession,
    path: str | Path,
    result: DriftResult,
    *,
    batch_id: str,
    model_name: str,
    model_version: str | int,
    scored_at: datetime,
) -> int:
    """Append one row per column of ``result`` to the monitoring Delta table at ``path`` (created
    on first use) in one commit; return the table version. Re-running a batch appends again:
    readers pick the latest ``scored_at`` per batch, or filter."""
    from engine.store._owned_tables import write_rows

    if not str(path).strip():
        raise InvalidArgumentError(argument="path", expected="a table location", found=repr(path))
    rows = drift_rows(result, batch_id=batch_id, model_name=model_name, model_version=model_version, scored_at=scored_at)
    if not rows:
        raise InvalidArgumentError(argument="result", expected="a drift result of at least one column", found="none")
    version = write_rows(spark, str(path), DRIFT_TABLE_DDL, rows, comment="Feature Factory drift monitoring")
    log.info("drift of batch %s (%d columns, %d flagged) -> %s v%d", batch_id, len(rows), len(result.flagged), path, version)
    return version


def read_drift(spark: SparkSession, path: str | Path, *, batch_id: str | None = None) -> DataFrame:
    """The monitoring table (optionally one batch's rows)."""
    from pyspark.sql import functions as F

    from engine.store import delta

    frame = delta.read(spark, str(path))
    return frame if batch_id is None else frame.where(F.col("batch_id") == F.lit(batch_id))


# ---------------------------------------------------------------------------------------------
# MLflow


_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_. /:-]")


def _metric_key(prefix: str, name: str) -> str:
    return prefix + "." + _METRIC_UNSAFE.sub("_", name)


def log_to_mlflow(
    result: DriftResult,
    paths: Sequence[str | Path],
    *,
    run_name: str,
    experiment: str,
) -> str:
    """Log the PNGs in ``paths`` and the markdown report as artifacts (under ``drift/``) and
    ``psi.<column>`` / ``ks.<column>`` / ``js.<column>`` metrics to a new MLflow run in
    ``experiment`` (created if missing); return the run id. Tracking: :func:`engine.tracking.ensure_tracking`."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from engine.tracking import ensure_experiment, ensure_tracking

    if not isinstance(result, DriftResult):
        raise InvalidArgumentError(argument="result", expected="a DriftResult", found=type(result).__name__)
    if isinstance(paths, (str, Path)):
        raise InvalidArgumentError(argument="paths", expected="a list of file paths", found=repr(paths))
    files = [Path(p) for p in paths]
    for file in files:
        if not file.is_file():
            raise NotFoundError(kind="plot file", name=str(file), hint="Pass the paths plot_drift returned.")
    if not isinstance(run_name, str) or not run_name.strip():
        raise InvalidArgumentError(argument="run_name", expected="a non-empty run name", found=repr(run_name))

    ensure_tracking()
    experiment_id = ensure_experiment(experiment)
    client = MlflowClient()
    run = client.create_run(experiment_id, run_name=run_name, tags={"ff.kind": "drift"})
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)  # MLflow's own record of when the metric was logged
        metrics = [Metric("drift.flagged_columns", float(len(result.flagged)), now, 0)]
        for f in result.features:
            for name in ("psi", "ks", "js", "null_share_delta"):
                value = getattr(f, name)
                if value is not None and math.isfinite(value):
                    metrics.append(Metric(_metric_key(name, f.feature), float(value), now, 0))
        params = [
            Param("reference_rows", str(result.reference_rows)), Param("current_rows", str(result.current_rows)),
            Param("bins", str(result.config.bins)), Param("flagged", ",".join(result.flagged)[:6000] or "-"),
        ]
        client.log_batch(run_id, metrics=metrics, params=params)
        for file in files:
            client.log_artifact(run_id, str(file), artifact_path="drift")
        client.log_text(run_id, drift_report(result), "drift/report.md")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    log.info("drift logged to MLflow run %s (%d artifacts)", run_id, len(files) + 1)
    return run_id
