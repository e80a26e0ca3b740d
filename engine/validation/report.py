"""Validation reports: what GE found, per expectation, in plain frozen dataclasses.

A :class:`ValidationReport` is independent of GE's result objects (so it can be stored, logged,
compared and carried by :class:`~engine.errors.ValidationFailedError`); ``to_dict`` / ``to_json``
give a JSON-safe form and ``summary`` a few readable lines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from engine.errors import ValidationFailedError

__all__ = ["ExpectationResult", "ValidationReport"]


@dataclass(frozen=True)
class ExpectationResult:
    """The outcome of one expectation on one batch.

    ``unexpected_*`` are set for map (row-level) expectations, ``observed_value`` for table-level
    ones; ``error`` holds the message when GE could not evaluate the expectation (e.g. a range
    check on a string column), which counts as a failure. ``partial_unexpected_values`` and
    ``partial_unexpected_keys`` (the key columns of those rows) hold at most 20 examples.
    """

    type: str
    kwargs: Mapping[str, Any]
    success: bool
    row_level: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    observed_value: Any = None
    partial_unexpected_values: tuple[Any, ...] = ()
    partial_unexpected_keys: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None

    @property
    def expectation(self) -> str:
        """The expectation's label, as in :attr:`engine.validation.Expectation.label`."""
        from engine.validation.suite import Expectation

        return Expectation(self.type, self.kwargs).label

    def describe(self) -> str:
        """``label: 3 unexpected (1.2%), e.g. [130.0, ...]`` or ``label: observed 0``."""
        if self.error is not None:
            return f"{self.expectation}: could not be evaluated: {self.error}"
        if self.unexpected_count is not None:
            percent = f" ({self.unexpected_percent:.3g}%)" if self.unexpected_percent is not None else ""
            examples = f", e.g. {list(self.partial_unexpected_values[:5])!r}" if self.unexpected_count else ""
            return f"{self.expectation}: {self.unexpected_count} unexpected of {self.element_count}{percent}{examples}"
        return f"{self.expectation}: observed {_jsonable(self.observed_value)!r}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "type": self.type,
            "kwargs": _jsonable(dict(self.kwargs)),
            "success": self.success,
            "row_level": self.row_level,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": _jsonable(self.unexpected_percent),
            "element_count": self.element_count,
            "observed_value": _jsonable(self.observed_value),
            "partial_unexpected_values": _jsonable(list(self.partial_unexpected_values)),
            "partial_unexpected_keys": _jsonable([dict(k) for k in self.partial_unexpected_keys]),
            "error": self.error,
        }


@dataclass(frozen=True)
class ValidationReport:
    """One suite run on one batch.

    ``quarantined_rows`` is set by :func:`~engine.validation.split_by_suite` (rows set aside),
    None after a plain :func:`~engine.validation.validate`.
    """

    suite: str
    policy: str
    success: bool
    evaluated_rows: int
    results: tuple[ExpectationResult, ...]
    key_columns: tuple[str, ...] = ()
    quarantined_rows: int | None = None
    great_expectations_version: str = field(default="", compare=False)

    @property
    def failed(self) -> tuple[ExpectationResult, ...]:
        return tuple(r for r in self.results if not r.success)

    def failures(self) -> list[str]:
        """One line per failed expectation: its label and what was found."""
        return [r.describe() for r in self.failed]

    def error(self, *, target: str) -> ValidationFailedError:
        """The :class:`ValidationFailedError` for this report (``params["report"]`` is the report)."""
        return ValidationFailedError(
            target=target, failed=len(self.failed), total=len(self.results), failures=self.failures(),
            suite=self.suite, report=self,
        )

    def raise_if_failed(self, *, target: str) -> None:
        """Raise :meth:`error` unless every expectation passed."""
        if not self.success:
            raise self.error(target=target)

    def with_quarantined(self, rows: int) -> ValidationReport:
        return replace(self, quarantined_rows=rows)

    def summary(self) -> str:
        verdict = "passed" if self.success else f"FAILED ({len(self.failed)} of {len(self.results)} expectations)"
        head = f"suite {self.suite} [{self.policy}] on {self.evaluated_rows} rows: {verdict}"
        if self.quarantined_rows is not None:
            head += f"; {self.quarantined_rows} row(s) quarantined"
        lines = [head] + [f"  {'ok  ' if r.success else 'FAIL'} {r.describe()}" for r in self.results]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "policy": self.policy,
            "success": self.success,
            "evaluated_rows": self.evaluated_rows,
            "key_columns": list(self.key_columns),
            "quarantined_rows": self.quarantined_rows,
            "great_expectations_version": self.great_expectations_version,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)


def _jsonable(value: Any) -> Any:
    """Spark/GE values -> JSON-safe values (instants as ISO text, NaN as None, Decimal as str)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)
