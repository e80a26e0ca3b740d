"""The one place that talks to Great Expectations 1.x (imported lazily: ``import great_expectations``
costs several seconds, so it happens on first use, once per process).

GE runs on its own Spark execution engine, on the caller's DataFrame:
``get_context(mode="ephemeral")`` -> ``data_sources.add_spark(persist=False)`` -> a DataFrame asset
-> a whole-DataFrame batch definition -> ``batch.validate(suite, result_format=...)``. The context,
data source, asset and batch definition are built once per SparkSession and thread and reused
(~0.1 s to build): a GE context is not thread-safe, so threads validating at the same time (pipelines
backfilled side by side) each use their own, and their Spark jobs run side by side instead of one
validation waiting for another. Building a context is serialised (GE's import and its global project
context). GE's progress bars are switched off through the context's own ``progress_bars`` setting,
GE's warnings are silenced only while some GE call runs (in any thread), and no logging
configuration is touched.

``persist=False``: GE's default would ``persist()`` the caller's DataFrame and never unpersist it.
Each GE run is several Spark jobs over the DataFrame, so callers with an expensive upstream plan
should persist it themselves (``FeatureGroup.insert`` does).
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.validation.suite import Expectation, ExpectationSuite

log = logging.getLogger(__name__)

_SETUP = threading.RLock()  # building a context (and the first import of GE)
_LOCAL = threading.local()  # .cache: (SparkSession, GE batch definition) of this thread
_QUIET = threading.Lock()
_quiet_state: list[Any] = [0, None]  # GE calls running now (all threads), the warnings guard they share
INDEX_META_KEY = "engine_index"  # put into each GE expectation's meta to match results to the suite

# Map expectations whose verdict on a row depends on the other rows of the batch: removing rows
# changes which rows are unexpected, so they cannot be quarantined row by row.
BATCH_DEPENDENT = frozenset({
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_column_values_to_be_increasing",
    "expect_column_values_to_be_decreasing",
    "expect_column_value_z_scores_to_be_less_than",
    "expect_column_values_to_not_be_outliers",
})
_COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")


@functools.cache
def expectation_types() -> frozenset[str]:
    """Snake_case names of every expectation registered with GE."""
    import great_expectations  # noqa: F401  (registers the core expectations)
    from great_expectations.expectations.registry import list_registered_expectation_implementations

    return frozenset(list_registered_expectation_implementations())


def expectation_class(kind: str, *, source: str = "expectation", key: str = "type") -> type:
    from great_expectations.expectations.registry import get_expectation_impl

    if kind not in expectation_types():
        raise ConfigError(source=source, key=key, expected="a Great Expectations 1.x expectation type", found=repr(kind))
    return get_expectation_impl(kind)


def is_row_level(kind: str) -> bool:
    """True for map expectations that judge each row on its own (they can be quarantined)."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    cls = expectation_class(kind)
    row_level = issubclass(cls, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation))
    return row_level and kind not in BATCH_DEPENDENT


def domain_columns(expectation: Expectation) -> list[tuple[str, str]]:
    """``(kwarg, column)`` pairs naming the columns an expectation reads (its GE domain).

    Only domain kwargs count: ``expect_table_columns_to_match_set(column_set=...)`` or
    ``expect_column_to_exist(column=...)`` check column presence as data, not as configuration.
    """
    domain_keys = getattr(expectation_class(expectation.type), "domain_keys", ())
    pairs: list[tuple[str, str]] = []
    for key in _COLUMN_KWARGS:
        if key not in domain_keys or key not in expectation.kwargs:
            continue
        value = expectation.kwargs[key]
        names = value if isinstance(value, (list, tuple)) else [value]
        pairs.extend((key, str(name)) for name in names)
    return pairs


def check_kwargs(expectation: Expectation, *, source: str, key: str) -> None:
    """Build the GE expectation once to let GE's own model check the kwargs (-> ConfigError)."""
    build(expectation, index=0, source=source, key=key)


def build(expectation: Expectation, *, index: int, source: str, key: str = "kwargs") -> Any:
    """The GE expectation object for ``expectation``, tagged with its position in the suite."""
    from great_expectations.compatibility.pydantic import ValidationError

    reserved = sorted(set(expectation.kwargs) & _reserved())
    if reserved:
        raise ConfigError(
            source=source, key=f"{key}.{reserved[0]}", expected="not set in a suite",
            found=repr(expectation.kwargs[reserved[0]]), hint="The validation layer sets it itself.",
        )
    cls = expectation_class(expectation.type, source=source, key=f"{expectation.label}.type")
    kwargs = dict(expectation.kwargs)
    meta = dict(kwargs.pop("meta", None) or {})
    meta[INDEX_META_KEY] = index
    try:
        return cls(**kwargs, meta=meta)
    except ValidationError as err:
        # an unknown kwarg (a typo) explains the other errors ("column: field required"): name it first
        first = sorted(err.errors(), key=lambda e: e.get("type") != "value_error.extra")[0]
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
        raise ConfigError(
            source=source, key=f"{key}.{field}" if field else key,
            expected=f"arguments GE accepts for {expectation.type}", found=first.get("msg", str(err)),
            hint=f"Given: {dict(expectation.kwargs)!r}.",
        ) from None
    except (TypeError, ValueError) as err:
        raise ConfigError(
            source=source, key=key, expected=f"arguments GE accepts for {expectation.type}", found=str(err)
        ) from None


# Keyword arguments the validation layer sets itself (a suite may not): a per-expectation result
# format would break the quarantine split; batch ids / ids belong to the GE run, not to the suite.
RESERVED_KWARGS = frozenset({"result_format", "batch_id", "catch_exceptions", "include_config", "id", "rendered_content"})


def _reserved() -> frozenset[str]:
    return RESERVED_KWARGS


def run(df: DataFrame, suite: ExpectationSuite, *, result_format: dict[str, Any]) -> list[tuple[int, Any]]:
    """Validate ``df`` with GE's Spark engine; ``(suite index, GE result)`` pairs in suite order."""
    import great_expectations as gx

    expectations = [build(e, index=i, source=f"suite {suite.name}") for i, e in enumerate(suite.expectations)]
    with _quiet():
        batch = _batch_definition(df.sparkSession).get_batch(batch_parameters={"dataframe": df})
        gx_suite = gx.ExpectationSuite(name=suite.name, expectations=expectations)
        result = batch.validate(gx_suite, result_format=result_format)
    pairs = [(int(r.expectation_config.meta[INDEX_META_KEY]), r) for r in result.results]
    pairs.sort(key=lambda pair: pair[0])
    if [i for i, _ in pairs] != list(range(len(suite.expectations))):  # pragma: no cover - GE contract
        raise RuntimeError(f"GE returned results for expectations {[i for i, _ in pairs]} of suite {suite.name}")
    return pairs


def _batch_definition(spark: Any) -> Any:
    """The whole-DataFrame batch definition of an ephemeral context, built once per session and thread.

    GE's Spark engine keeps the session it found when it was built (``getOrCreate``); a new
    session (a notebook that stopped and rebuilt its own) gets a new context, which costs ~0.1 s.
    """
    cached = getattr(_LOCAL, "cache", None)
    if cached is not None and cached[0] is spark:
        return cached[1]
    with _SETUP:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            analytics_enabled=False,
        )
        with _quiet():
            context = gx.get_context(mode="ephemeral", project_config=config)
            source = context.data_sources.add_spark(name="engine_validation", persist=False)
            asset = source.add_dataframe_asset(name="dataframe")
            _LOCAL.cache = (spark, asset.add_batch_definition_whole_dataframe("whole_dataframe"))
        log.debug("Great Expectations %s context ready (thread %s)", gx.__version__, threading.current_thread().name)
    return _LOCAL.cache[1]


@contextmanager
def _quiet() -> Iterator[None]:
    """Hide GE's deprecation/user warnings while GE runs (no lasting filter change).

    ``warnings.catch_warnings`` saves and restores the process-wide filters, so two threads using
    it at once can restore each other's state; here the first GE call to start installs one guard
    and the last to finish removes it."""
    with _QUIET:
        if _quiet_state[0] == 0:
            guard = warnings.catch_warnings()
            guard.__enter__()
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            _quiet_state[1] = guard
        _quiet_state[0] += 1
    try:
        yield
    finally:
        with _QUIET:
            _quiet_state[0] -= 1
            if _quiet_state[0] == 0:
                _quiet_state[1].__exit__(None, None, None)
                _quiet_state[1] = None


def exception_message(result: Any) -> str | None:
    """The error GE caught while evaluating one expectation, or None."""
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():  # keyed by metric id when a metric failed
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def key_rows(result: Any, key_columns: Sequence[str]) -> list[tuple[Any, ...]] | None:
    """The key tuples of every row GE found unexpected (result format COMPLETE), or None."""
    index_list = (result.result or {}).get("unexpected_index_list")
    if index_list is None:
        return None
    return [tuple(item[k] for k in key_columns) for item in index_list]
