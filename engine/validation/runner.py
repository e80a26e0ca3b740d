"""Run a suite on a Spark DataFrame with Great Expectations, and split a batch by its verdict.

GE 1.24.1's own Spark execution engine does the work (it runs on pyspark 4.2.0): every metric is
a Spark job over the caller's DataFrame, nothing is converted to pandas.

Row-level versus table-level
----------------------------
*Row-level* expectations are GE's map expectations that judge each row on its own
(``expect_column_values_to_*`` such as not-null / between / in-set / regex, column-pair and
multicolumn map expectations). For these GE reports the unexpected rows, so under the
``quarantine`` policy :func:`split_by_suite` sets exactly those rows aside.

*Table-level* expectations judge the batch as a whole (row count, column set, mean / max /
proportions, and the map expectations whose verdict on a row depends on the other rows:
uniqueness of a column or of a compound key, increasing / decreasing, z-scores, outliers). Removing
rows cannot repair them row by row, so under ``quarantine`` a failing table-level expectation
rejects the whole batch (:class:`~engine.errors.ValidationFailedError`, nothing written), as does
an expectation GE could not evaluate.

How quarantined rows are found (faithfully)
-------------------------------------------
:func:`split_by_suite` first runs the whole suite for verdicts and counts only (result format
``BASIC`` without example rows: a few Spark jobs, the cheap path when everything passes). If row-level expectations failed, it runs GE again on just
those, with result format ``COMPLETE`` and ``unexpected_index_column_names`` set to the key
columns: GE returns the keys of every unexpected row. Rows of the DataFrame whose keys
(NULL-safe equality) GE reported go to quarantine, with the labels of the expectations they failed
in ``_failed_expectations``; all other rows pass. Then one Spark aggregation checks that, for
every failed expectation, the number of quarantined rows carrying its label equals GE's
``unexpected_count`` -- duplicate keys (or keys that do not survive the round trip through
Python, such as a timestamp in a DST-repeated hour of a non-UTC process time zone) raise instead of
silently quarantining the wrong rows. Passing and quarantined rows are an exact partition of the
input (an anti join and an inner join on the same condition, against one row per distinct key).

An expectation that *succeeds* thanks to ``mostly`` quarantines nothing: GE judged the batch good
enough for it. The keys of unexpected rows are collected to the driver by GE (that is how GE 1.x
reports them), so the number of failing rows per failed expectation must fit in driver memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from engine.errors import ColumnNotFoundError, InvalidArgumentError, ValidationFailedError
from engine.validation import _gx
from engine.validation.report import ExpectationResult, ValidationReport
from engine.validation.suite import ExpectationSuite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["FAILED_COLUMN", "check_columns", "split_by_suite", "validate"]

log = logging.getLogger(__name__)

FAILED_COLUMN = "_failed_expectations"
PARTIAL_COUNT = 20


def validate(df: DataFrame, suite: ExpectationSuite, *, key_columns: Sequence[str] | None = None) -> ValidationReport:
    """Run ``suite`` on ``df`` and report; failed expectations do not raise (see ``raise_if_failed``).

    A first GE run gets the verdicts and counts only (a few Spark jobs, whatever the suite size).
    If map expectations failed, a second run on just those adds up to 20 example values each and,
    with ``key_columns``, the keys of those rows. Raises :class:`ColumnNotFoundError` before any
    Spark job when an expectation or ``key_columns`` names a column ``df`` does not have.
    """
    keys = check_columns(df, suite, key_columns=key_columns)
    report = _run(df, suite, keys=[], result_format=_format("BASIC", [], partial=0))[0]
    positions = [i for i, r in enumerate(report.results) if not r.success and r.error is None and r.unexpected_count]
    if not positions:
        return report
    return _rerun(df, suite, report, positions, keys=keys, result_format=_format("SUMMARY" if keys else "BASIC", keys))[0]


def split_by_suite(
    df: DataFrame,
    suite: ExpectationSuite,
    *,
    key_columns: Sequence[str],
    target: str | None = None,
) -> tuple[DataFrame, DataFrame, ValidationReport]:
    """Split ``df`` into ``(passing, quarantined, report)`` by the suite's row-level verdicts.

    ``quarantined`` has ``df``'s columns plus ``_failed_expectations`` (array<string>, labels in
    suite order); it is empty when nothing failed, and ``report.quarantined_rows`` says how many
    rows it holds. ``key_columns`` must identify the rows of ``df`` (a primary key, with event time).
    Raises :class:`ValidationFailedError` (named after ``target``, default the suite name;
    ``params["report"]`` is the report) when a table-level expectation fails or an expectation
    cannot be evaluated, since such failures cannot be split by row. The policy of ``suite`` is
    not consulted: this is the mechanism behind ``quarantine``.
    """
    keys = check_columns(df, suite, key_columns=key_columns)
    if FAILED_COLUMN in df.columns:
        raise InvalidArgumentError(
            argument="df", expected=f"no column named {FAILED_COLUMN} (the split adds it)", found=str(df.columns)
        )
    if not keys:
        raise InvalidArgumentError(
            argument="key_columns", expected="the columns that identify each row (e.g. primary key + event time)",
            found=repr(key_columns), hint="The quarantine split matches GE's unexpected rows by these keys.",
        )
    report = _run(df, suite, keys=[], result_format=_format("BASIC", [], partial=0))[0]
    if report.success:
        return df, _partition(df, keys, {})[1], report.with_quarantined(0)
    unsplittable = [r.expectation for r in report.failed if not r.row_level or r.error is not None]
    if unsplittable:
        _reject(report, target=target, reason=f"table-level or not evaluable: {unsplittable}")

    positions = [i for i, r in enumerate(report.results) if not r.success]
    report, reruns = _rerun(df, suite, report, positions, keys=keys, result_format=_format("COMPLETE", keys))
    failed_by_key: dict[tuple[Any, ...], list[str]] = {}  # key tuple -> labels of expectations it failed
    for result, gx_result in reruns:
        rows = _gx.key_rows(gx_result, keys)
        if result.success or result.error is not None or rows is None:
            _reject(report, target=target, reason=f"GE's second run of {result.expectation} gave no unexpected rows")
        for key in rows:
            labels = failed_by_key.setdefault(key, [])
            if result.expectation not in labels:
                labels.append(result.expectation)

    passing, quarantined = _partition(df, keys, failed_by_key)
    quarantined_rows = _check_agreement(quarantined, [result for result, _ in reruns], keys=keys)
    return passing, quarantined, report.with_quarantined(quarantined_rows)


def check_columns(df: DataFrame, suite: ExpectationSuite, *, key_columns: Sequence[str] | None = None) -> list[str]:
    """Check the arguments and that every column the suite reads exists; return the key columns."""
    from pyspark.sql import DataFrame as SparkDataFrame

    if not isinstance(df, SparkDataFrame):
        raise InvalidArgumentError(argument="df", expected="a Spark DataFrame", found=type(df).__name__)
    if not isinstance(suite, ExpectationSuite):
        raise InvalidArgumentError(argument="suite", expected="an engine.validation.ExpectationSuite", found=type(suite).__name__)
    if isinstance(key_columns, str):
        raise InvalidArgumentError(argument="key_columns", expected="a list of column names", found=repr(key_columns))
    available = df.columns
    keys = list(key_columns or [])
    for key in keys:
        if key not in available:
            raise ColumnNotFoundError(argument="key_columns", column=key, side="data", available=available)
    for position, expectation in enumerate(suite.expectations):
        for kwarg, column in _gx.domain_columns(expectation):
            if column not in available:
                raise ColumnNotFoundError(
                    argument=f"{expectation.type}.{kwarg}", column=column, side="data", available=available,
                    hint=f"Expectation #{position + 1} of suite {suite.name}: {expectation.label}.",
                    expectation=expectation.label, suite=suite.name,
                )
    return keys


def _format(name: str, keys: list[str], *, partial: int = PARTIAL_COUNT) -> dict[str, Any]:
    """A GE result format. ``partial=0`` skips GE's example-row queries (one Spark job per map
    expectation each): counts and verdicts come from one aggregation pass."""
    result_format: dict[str, Any] = {
        "result_format": name, "partial_unexpected_count": partial, "return_unexpected_index_query": False,
    }
    if keys:
        result_format["unexpected_index_column_names"] = keys
    return result_format


def _run(
    df: DataFrame, suite: ExpectationSuite, *, keys: list[str], result_format: dict[str, Any]
) -> tuple[ValidationReport, list[Any]]:
    import great_expectations as gx

    started = time.perf_counter()
    pairs = _gx.run(df, suite, result_format=result_format)
    gx_results = [r for _, r in pairs]
    results = tuple(_result(e.type, e.kwargs, r, keys) for e, r in zip(suite.expectations, gx_results, strict=True))
    report = ValidationReport(
        suite=suite.name, policy=suite.policy, success=all(r.success for r in results),
        evaluated_rows=_evaluated_rows(df, results), results=results, key_columns=tuple(keys),
        great_expectations_version=gx.__version__,
    )
    log.info(
        "suite %s on %d rows: %d of %d expectations passed (%.1fs)", suite.name, report.evaluated_rows,
        len(results) - len(report.failed), len(results), time.perf_counter() - started,
    )
    return report, gx_results


def _rerun(
    df: DataFrame,
    suite: ExpectationSuite,
    report: ValidationReport,
    positions: list[int],
    *,
    keys: list[str],
    result_format: dict[str, Any],
) -> tuple[ValidationReport, list[tuple[ExpectationResult, Any]]]:
    """Run GE again on the expectations at ``positions``; their new results replace the old ones."""
    subset = ExpectationSuite(suite.name, tuple(suite.expectations[i] for i in positions), suite.policy)
    rerun, gx_results = _run(df, subset, keys=keys, result_format=result_format)
    results = list(report.results)
    for position, result in zip(positions, rerun.results, strict=True):
        results[position] = result
    merged = replace(report, results=tuple(results), success=all(r.success for r in results), key_columns=tuple(keys))
    return merged, list(zip(rerun.results, gx_results, strict=True))


def _result(kind: str, kwargs: Any, gx_result: Any, keys: list[str]) -> ExpectationResult:
    body = gx_result.result or {}
    error = _gx.exception_message(gx_result)
    partial_keys = tuple({k: item.get(k) for k in keys} for item in body.get("partial_unexpected_index_list") or ())
    return ExpectationResult(
        type=kind, kwargs=kwargs, success=bool(gx_result.success) and error is None, row_level=_gx.is_row_level(kind),
        unexpected_count=body.get("unexpected_count"), unexpected_percent=body.get("unexpected_percent"),
        element_count=body.get("element_count"), observed_value=body.get("observed_value"),
        partial_unexpected_values=tuple(body.get("partial_unexpected_list") or ()),
        partial_unexpected_keys=partial_keys if keys else (), error=error,
    )


def _evaluated_rows(df: DataFrame, results: tuple[ExpectationResult, ...]) -> int:
    """The batch's row count, from GE's results when it computed one, else one ``count()``."""
    for result in results:
        if result.element_count is not None:
            return int(result.element_count)
        if result.type in ("expect_table_row_count_to_be_between", "expect_table_row_count_to_equal") and (
            isinstance(result.observed_value, int) and "row_condition" not in result.kwargs
        ):
            return int(result.observed_value)
    return int(df.count())


def _reject(report: ValidationReport, *, target: str | None, reason: str) -> NoReturn:
    err = report.error(target=target or report.suite)
    log.warning("%s: cannot quarantine row by row (%s); rejecting the batch", target or report.suite, reason)
    raise ValidationFailedError(**{**err.params, "reason": reason})


def _partition(
    df: DataFrame, keys: list[str], failed_by_key: dict[tuple[Any, ...], list[str]]
) -> tuple[DataFrame, DataFrame]:
    """Anti join / join of ``df`` with the failing keys (NULL-safe), computed by Spark."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    aliases = [f"__key{i}" for i in range(len(keys))]
    key_fields = [StructField(alias, df.schema[key].dataType, True) for alias, key in zip(aliases, keys, strict=True)]
    schema = StructType([*key_fields, StructField(FAILED_COLUMN, ArrayType(StringType(), True), True)])
    # Broadcast: a frame built from Python rows has no size estimate, and Spark would otherwise
    # shuffle the whole batch for a sort-merge join. The keys are in driver memory already.
    failing = F.broadcast(
        df.sparkSession.createDataFrame([(*key, labels) for key, labels in failed_by_key.items()], schema)
    )
    condition = None
    for key, alias in zip(keys, aliases, strict=True):
        term = df[_quote(key)].eqNullSafe(failing[alias])
        condition = term if condition is None else condition & term
    passing = df.join(failing, condition, "left_anti")
    quarantined = df.join(failing, condition, "inner").select(*[df[_quote(c)] for c in df.columns], failing[FAILED_COLUMN])
    return passing, quarantined


def _check_agreement(quarantined: DataFrame, failed: list[ExpectationResult], *, keys: list[str]) -> int:
    """One aggregation: per failed expectation, quarantined rows with its label == GE's count."""
    from pyspark.sql import functions as F

    labels = [r.expectation for r in failed]
    row = quarantined.agg(
        F.count(F.lit(1)).alias("rows"),
        *[F.sum(F.array_contains(F.col(FAILED_COLUMN), label).cast("long")).alias(f"e{i}") for i, label in enumerate(labels)],
    ).first()
    for i, result in enumerate(failed):
        found = int(row[f"e{i}"] or 0)
        if found != result.unexpected_count:
            raise InvalidArgumentError(
                argument="key_columns", expected=f"columns {keys} whose values identify each row",
                found=f"{found} row(s) with the keys of the {result.unexpected_count} row(s) GE found unexpected "
                f"for {result.expectation}",
                hint="Duplicate keys make the quarantine ambiguous: deduplicate first, or add a column to the key.",
            )
    return int(row["rows"])


def _quote(name: str) -> str:
    """Backtick-quote a column name so dots in it are not read as struct access."""
    return "`" + name.replace("`", "``") + "`"
