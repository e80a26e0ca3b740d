"""Drift monitoring configuration: thresholds per metric (and per column) and the binning.

Read from a mapping (a repository's ``monitoring.<name>.thresholds``) or a YAML file; unknown keys
and values out of range are :class:`~engine.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import from_mapping, load_yaml
from engine.errors import ConfigError

__all__ = ["MonitoringConfig", "Thresholds", "load_monitoring_config", "monitoring_config"]


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted; ``None`` disables a metric's flag."""

    psi: float | None = 0.2  # flag when PSI > psi
    ks: float | None = 0.1  # flag when the KS statistic > ks (numeric)
    ks_pvalue: float | None = None  # flag when the KS p-value < ks_pvalue (numeric); off by default
    js: float | None = 0.1  # flag when the JS distance > js (categorical)
    null_share_delta: float | None = 0.05  # flag when |current - reference NULL share| > this


_THRESHOLD_KEYS = tuple(f.name for f in dataclasses.fields(Thresholds))


@dataclass(frozen=True)
class MonitoringConfig:
    """Drift thresholds and binning (``conf/monitoring/*.yaml``)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    overrides: dict[str, dict[str, float | None]] = field(default_factory=dict)  # feature -> thresholds
    categorical: list[str] = field(default_factory=list)  # compare these as categories, whatever the type
    bins: int = 10  # PSI bins from reference quantiles (10: deciles)
    ks_grid: int = 100  # quantiles per side for the KS grid
    max_categories: int = 30  # categories kept per column; the rest pooled into __other__
    psi_epsilon: float = 1e-4  # floor of a bin's share in PSI
    quantile_accuracy: int = 10_000  # percentile_approx accuracy (relative rank error 1/accuracy)

    def __post_init__(self) -> None:
        _check_config(self, source="MonitoringConfig")

    def thresholds_for(self, feature: str) -> Thresholds:
        """The default thresholds with ``feature``'s overrides applied."""
        return dataclasses.replace(self.thresholds, **self.overrides.get(feature, {}))


def _check_config(config: MonitoringConfig, *, source: str) -> None:
    def bad(key: str, expected: str, found: Any) -> ConfigError:
        return ConfigError(source=source, key=key, expected=expected, found=repr(found))

    for key, low in (("bins", 2), ("ks_grid", 2), ("max_categories", 1), ("quantile_accuracy", 100)):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise bad(key, f"an integer >= {low}", value)
    if not isinstance(config.psi_epsilon, (int, float)) or not 0 < config.psi_epsilon < 0.1:
        raise bad("psi_epsilon", "a number in (0, 0.1)", config.psi_epsilon)
    if not isinstance(config.thresholds, Thresholds):
        raise bad("thresholds", "a Thresholds", config.thresholds)
    checks = [("thresholds", dataclasses.asdict(config.thresholds))]
    checks += [(f"overrides.{name}", values) for name, values in config.overrides.items()]
    for key, values in checks:
        if not isinstance(values, Mapping):
            raise bad(key, "a mapping of metric -> threshold", values)
        for metric, value in values.items():
            if metric not in _THRESHOLD_KEYS:
                raise ConfigError(
                    source=source, key=f"{key}.{metric}", expected=f"one of {list(_THRESHOLD_KEYS)}",
                    found="an unknown metric",
                )
            upper = math.inf if metric == "psi" else 1.0
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= upper):
                raise bad(f"{key}.{metric}", f"null or a number in [0, {upper}]", value)
    if isinstance(config.categorical, str) or not all(isinstance(c, str) for c in config.categorical):
        raise bad("categorical", "a list of column names", config.categorical)


def monitoring_config(data: Mapping[str, Any], *, source: str = "config") -> MonitoringConfig:
    """A checked :class:`MonitoringConfig` from a mapping (parsed YAML); unknown keys are errors."""
    try:
        return from_mapping(MonitoringConfig, data, source=source)
    except ConfigError as err:
        if err.params.get("source") == source:
            raise
        raise ConfigError(**{**err.params, "source": source}) from None


def load_monitoring_config(path: str | Path) -> MonitoringConfig:
    """Read and check ``conf/monitoring/<name>.yaml`` (or any path)."""
    return monitoring_config(load_yaml(path), source=str(path))


