"""Pipelines: feature pipelines (backfill + incremental); training and inference build on them."""

from engine.pipelines.feature import ChunkResult, FeaturePipeline, Input

__all__ = ["ChunkResult", "FeaturePipeline", "Input"]
