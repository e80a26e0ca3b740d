"""Monitoring of scored batches: distribution drift against the training rows (statistics on
Spark, a Delta table of results, a markdown report, PNG plots, MLflow artifacts) and realised
metrics once labels arrive.

    from engine.monitoring import compute_drift, load_monitoring_config, drift_report, plot_drift
    result = compute_drift(training_rows, batch, features=[...], prediction="probability",
                           config=load_monitoring_config("conf/monitoring/demo.yaml"))
    print(drift_report(result))

Nothing heavy is imported here: pyspark, scipy, matplotlib and mlflow load inside the
functions that need them.
"""

from __future__ import annotations

from engine.monitoring.drift import (
    Bin,
    DriftResult,
    FeatureDrift,
    MonitoringConfig,
    Thresholds,
    compute_drift,
    load_monitoring_config,
    monitoring_config,
)
from engine.monitoring.performance import read_realised, realised_metrics, write_realised
from engine.monitoring.plots import plot_drift
from engine.monitoring.report import drift_report, log_to_mlflow, read_drift, write_drift

__all__ = [
    "Bin",
    "DriftResult",
    "FeatureDrift",
    "MonitoringConfig",
    "Thresholds",
    "compute_drift",
    "drift_report",
    "load_monitoring_config",
    "log_to_mlflow",
    "monitoring_config",
    "plot_drift",
    "read_drift",
    "read_realised",
    "realised_metrics",
    "write_drift",
    "write_realised",
]
