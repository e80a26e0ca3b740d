"""Feast's own Spark offline store as a benchmark plan (only where ``feast[spark]`` imports).

``feast[spark]`` 0.67 installs beside pyspark 4.2.0, but it is not one of the project's
dependencies (it brings ~25 packages, a pytest plugin among them), so the harness runs it only
when ``import feast`` works: see benchmarks/README.md for the separate benchmark environment.

The feature store is set up once per data set (outside the timer): a file registry under
``benchmarks/data/feast_repo/<size>/``, one entity ``key`` (INT64), one feature view ``fv`` over
the feature Parquet file (``SparkSource``, timestamp ``ts``, no TTL: ``ttl=timedelta(0)``, no
created-timestamp column). The timed part is ``get_historical_features(entity_df=<spine Spark
DataFrame>)`` -> ``to_spark_df()`` -> Parquet write, i.e. the SQL Feast generates, run by Feast.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from benchmarks.plan import Plan

__all__ = ["FEAST_PLAN"]

_STORES: dict[str, object] = {}  # features path -> FeatureStore
_QUOTED_REGEX = "spark.sql.parser.quotedRegexColumnNames"
_saved_conf: dict[str, str | None] = {}


def _missing() -> str | None:
    try:
        import feast  # noqa: F401
        from feast.infra.offline_stores.contrib.spark_offline_store.spark import SparkOfflineStore  # noqa: F401
    except Exception as err:
        return f"feast[spark] not installed in this environment ({type(err).__name__}); see benchmarks/README.md"
    return None


def _store(features: Path):
    import logging

    from feast import Entity, FeatureStore, FeatureView, Field, RepoConfig, ValueType
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import SparkOfflineStoreConfig
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.types import Float64

    logging.getLogger("feast").setLevel(logging.ERROR)
    key = str(features.resolve())
    if key in _STORES:
        return _STORES[key]
    repo = features.parent.parent / "feast_repo" / features.parent.name
    repo.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="bench",
        provider="local",
        registry=str(repo / "registry.db"),
        offline_store=SparkOfflineStoreConfig(),
        online_store={"type": "sqlite", "path": str(repo / "online.db")},
        entity_key_serialization_version=3,
        repo_path=str(repo),
    )
    store = FeatureStore(config=config)
    entity = Entity(name="key", join_keys=["key"], value_type=ValueType.INT64)
    source = SparkSource(name="features", path=key, file_format="parquet", timestamp_field="ts")
    view = FeatureView(
        name="fv", entities=[entity], ttl=timedelta(0), source=source,
        schema=[Field(name=name, dtype=Float64) for name in ("f1", "f2", "f3")],
    )
    store.apply([entity, view])
    _STORES[key] = store
    return store


def _build(spark, features: Path, spine: Path):
    import warnings

    store = _store(features)
    _saved_conf[_QUOTED_REGEX] = spark.conf.get(_QUOTED_REGEX, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = store.get_historical_features(
            entity_df=spark.read.parquet(str(spine)), features=["fv:f1", "fv:f2", "fv:f3"]
        )
        return job.to_spark_df()


def _after(spark) -> None:
    """Feast turns on quotedRegexColumnNames for the whole session: put it back."""
    previous = _saved_conf.pop(_QUOTED_REGEX, None)
    if previous is None:
        spark.conf.unset(_QUOTED_REGEX)
    else:
        spark.conf.set(_QUOTED_REGEX, previous)


FEAST_PLAN = Plan(
    "feast", "Feast SparkOfflineStore (its own code)", "spark", "feast[spark] 0.67, its own code",
    build=_build, available=_missing, after=_after,
)
