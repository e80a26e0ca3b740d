"""A feature group definition checked before anything is created: names, keys, event time, schema
(a StructType, a DDL string or a DataFrame's schema), expectations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.errors import ColumnNotFoundError, ColumnTypeError, InvalidArgumentError
from engine.store.bucketing import check_buckets
from engine.store.feature_group import FeatureGroup
from engine.store.names import check_name, check_names

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from engine.store.feature_store import FeatureStore

__all__ = ["as_list", "check_version", "define_group", "parse_schema", "structural_differences"]


def define_group(
    store: FeatureStore,
    name: str,
    version: int = 1,
    *,
    primary_key: str | Sequence[str],
    event_time: str,
    schema: StructType | str | DataFrame,
    partition_by: str | Sequence[str] | None = None,
    description: str = "",
    tags: Sequence[str] | None = None,
    expectations: Any = None,
    tie_breaker: str | None = None,
    statistics: bool = True,
    buckets: int | None = None,
) -> FeatureGroup:
    """See :meth:`engine.store.feature_store.FeatureStore.define_feature_group`."""
    from pyspark.sql import types as T

    check_name(name, argument="name")
    check_version(version)
    struct = parse_schema(store.spark, schema)
    columns = struct.fieldNames()
    check_names(columns, argument="schema (column name)")
    keys = as_list(primary_key, argument="primary_key")
    if not keys:
        raise InvalidArgumentError(argument="primary_key", expected="at least one column", found="[]")
    for argument, wanted in (("primary_key", keys), ("event_time", [event_time]),
                             ("partition_by", as_list(partition_by, argument="partition_by")),
                             ("tie_breaker", [tie_breaker] if tie_breaker else [])):
        for column in wanted:
            if column not in columns:
                raise ColumnNotFoundError(argument=argument, column=column, side="schema", available=columns)
    if event_time in keys or (tie_breaker and tie_breaker in [*keys, event_time]):
        raise InvalidArgumentError(
            argument="event_time/tie_breaker", expected="columns distinct from the primary key and each other",
            found=f"primary_key={keys}, event_time={event_time!r}, tie_breaker={tie_breaker!r}",
        )
    event_type = struct[event_time].dataType
    if not isinstance(event_type, T.TimestampType) or isinstance(event_type, T.TimestampNTZType):
        raise ColumnTypeError(
            argument="event_time", column=event_time, expected="TIMESTAMP (a UTC instant)",
            found=event_type.simpleString(),
            hint="TIMESTAMP_NTZ is a wall-clock time: convert it, e.g. to_utc_timestamp(col, 'America/New_York')."
            if isinstance(event_type, T.TimestampNTZType) else "Convert it, e.g. with to_timestamp(col).",
        )
    if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
        raise InvalidArgumentError(argument="tags", expected="a list of strings", found=repr(tags))
    suite = load_suite(expectations)
    return FeatureGroup(
        store, name=name, version=version, schema=struct, primary_key=keys, event_time=event_time,
        partition_by=as_list(partition_by, argument="partition_by"), description=description,
        tags=list(tags or []), tie_breaker=tie_breaker, expectations=suite, statistics=statistics,
        buckets=check_buckets(buckets),
    )


def parse_schema(spark: SparkSession, schema: StructType | str | Any) -> StructType:
    from pyspark.sql.types import StructType

    if isinstance(schema, StructType):
        return schema
    frame_schema = getattr(schema, "schema", None)  # a DataFrame (classic or Spark Connect)
    if isinstance(frame_schema, StructType) and hasattr(schema, "columns"):
        return frame_schema
    if isinstance(schema, str) and schema.strip():
        try:
            return spark.createDataFrame([], schema).schema
        except Exception as err:
            raise InvalidArgumentError(
                argument="schema", expected="a valid DDL string such as 'id BIGINT, ts TIMESTAMP'",
                found=repr(schema), hint=str(err).splitlines()[0][:200],
            ) from None
    raise InvalidArgumentError(
        argument="schema", expected="a StructType, a DDL string or a DataFrame", found=type(schema).__name__
    )


def check_version(version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgumentError(argument="version", expected="an integer >= 1", found=repr(version))


def as_list(value: str | Sequence[str] | None, *, argument: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgumentError(argument=argument, expected="a column name or a list of them", found=repr(value))


def same_columns(a: StructType, b: StructType) -> bool:
    return [(f.name, f.dataType) for f in a.fields] == [(f.name, f.dataType) for f in b.fields]


def structural_differences(stored: FeatureGroup, group: FeatureGroup) -> list[str]:
    """What makes two definitions of one version incompatible (anything but metadata)."""
    return [
        attr for attr in ("primary_key", "event_time", "tie_breaker", "partition_by")
        if getattr(stored, attr) != getattr(group, attr)
    ] + ([] if same_columns(stored.schema, group.schema) else ["schema"])


def load_suite(expectations: Any) -> Any:
    """``None``, an ExpectationSuite, or the path of a suite YAML file -> a suite or None."""
    if expectations is None:
        return None
    from engine import validation

    if isinstance(expectations, (str, os.PathLike)):
        return validation.load_suite(expectations)
    if isinstance(expectations, validation.ExpectationSuite):
        return expectations
    raise InvalidArgumentError(
        argument="expectations", expected="an ExpectationSuite or the path of a suite YAML file",
        found=type(expectations).__name__,
    )
