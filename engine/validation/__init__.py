"""Data validation with Great Expectations 1.x, run on Spark, before anything is written.

::

    from engine.validation import load_suite, validate, split_by_suite

    suite = load_suite("conf/expectations/weather_hourly.yaml")
    report = validate(df, suite, key_columns=["origin", "time_hour"])
    report.raise_if_failed(target="weather_hourly@v1")       # policy "reject"
    passing, quarantined, report = split_by_suite(df, suite, key_columns=["origin", "time_hour"])

* :class:`Expectation` / :class:`ExpectationSuite`: GE expectation types + kwargs, a name and a
  policy (``reject`` or ``quarantine``); :func:`load_suite` reads YAML, :func:`suite_from_dict`
  a mapping (unknown keys, unknown expectation types and kwargs GE refuses are ConfigErrors).
* :func:`validate` runs the suite with GE's own Spark execution engine (GE 1.24.1 runs on
  pyspark 4.2; no pandas conversion) and returns a :class:`ValidationReport`.
* :func:`split_by_suite` is the ``quarantine`` mechanism: rows GE found unexpected for a failed
  row-level expectation go to a second DataFrame with ``_failed_expectations``; a failing
  table-level expectation rejects the whole batch (see :mod:`engine.validation.runner`).
* :func:`store_report` / :func:`list_reports`: reports as rows of a Delta table.

Columns named by expectations are checked against the DataFrame before GE runs
(:class:`~engine.errors.ColumnNotFoundError` names the expectation and the column).
``great_expectations`` is imported on first use (several seconds, once per process); its context
is built once per process and reused.
"""

from __future__ import annotations

from engine.validation.report import ExpectationResult, ValidationReport
from engine.validation.runner import FAILED_COLUMN, split_by_suite, validate
from engine.validation.store import list_reports, report_schema, store_report
from engine.validation.suite import POLICIES, Expectation, ExpectationSuite, load_suite, suite_from_dict

__all__ = [
    "FAILED_COLUMN",
    "POLICIES",
    "Expectation",
    "ExpectationResult",
    "ExpectationSuite",
    "ValidationReport",
    "list_reports",
    "load_suite",
    "report_schema",
    "split_by_suite",
    "store_report",
    "suite_from_dict",
    "validate",
]
