"""Expectation suites: what to check (definitions only; :mod:`engine.validation.runner` runs them).

A suite is a name, a policy and a tuple of expectations, each a Great Expectations 1.x
expectation type plus its keyword arguments. In YAML (read only through
:func:`engine.config.load_yaml`)::

    name: weather_hourly
    policy: quarantine          # or reject (the default)
    expectations:
      - type: expect_column_values_to_not_be_null
        kwargs: {column: origin}
      - type: expect_column_values_to_be_between
        kwargs: {column: temp, min_value: -20, max_value: 120}

Loading checks everything that can be checked without data: unknown keys, unknown expectation
types and keyword arguments GE's own model refuses (a missing ``column``, ``min_value: "abc"``)
are :class:`~engine.errors.ConfigError` naming the key. Whether the named columns exist is checked
against the DataFrame when the suite runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from engine.config import load_yaml
from engine.errors import ConfigError, InvalidArgumentError

__all__ = ["POLICIES", "Expectation", "ExpectationSuite", "load_suite", "suite_from_dict"]

Policy = Literal["reject", "quarantine"]
POLICIES: tuple[str, ...] = ("reject", "quarantine")

_SUITE_KEYS = ("name", "policy", "expectations")
_EXPECTATION_KEYS = ("type", "kwargs")


@dataclass(frozen=True)
class Expectation:
    """One Great Expectations 1.x expectation: its snake_case ``type`` and keyword arguments.

    ``Expectation("expect_column_values_to_be_between", {"column": "temp", "min_value": -20})``.
    ``kwargs`` is stored as a read-only mapping; :attr:`label` is the readable, unique name used
    in reports and in the quarantine table's ``_failed_expectations`` column.
    """

    type: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type.startswith("expect_"):
            raise InvalidArgumentError(
                argument="type", expected="a GE expectation name such as 'expect_column_values_to_not_be_null'",
                found=repr(self.type),
            )
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(k, str) for k in self.kwargs):
            raise InvalidArgumentError(argument="kwargs", expected="a mapping of str to values", found=repr(self.kwargs))
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))

    @property
    def label(self) -> str:
        """``expect_column_values_to_be_between(column=temp, min_value=-20, max_value=120)``."""
        args = ", ".join(f"{k}={_show(v)}" for k, v in self.kwargs.items() if k not in ("meta", "notes", "description"))
        return f"{self.type}({args})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "kwargs": dict(self.kwargs)}


@dataclass(frozen=True)
class ExpectationSuite:
    """A named tuple of expectations and what to do when data fails them.

    ``policy="reject"``: a failing batch raises :class:`~engine.errors.ValidationFailedError` and
    nothing is written. ``policy="quarantine"``: rows that fail row-level expectations are set
    aside (see :func:`engine.validation.split_by_suite`); a failing table-level expectation still
    rejects the whole batch.
    """

    name: str
    expectations: tuple[Expectation, ...]
    policy: Policy = "reject"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgumentError(argument="name", expected="a non-empty suite name", found=repr(self.name))
        if self.policy not in POLICIES:
            raise InvalidArgumentError(argument="policy", expected=f"one of {list(POLICIES)}", found=repr(self.policy))
        expectations = tuple(self.expectations)
        bad = next((e for e in expectations if not isinstance(e, Expectation)), None)
        if bad is not None or not expectations:
            raise InvalidArgumentError(
                argument="expectations", expected="a non-empty sequence of Expectation",
                found=repr(bad) if bad is not None else "an empty sequence",
            )
        labels = [e.label for e in expectations]
        duplicate = next((label for i, label in enumerate(labels) if label in labels[:i]), None)
        if duplicate is not None:
            raise InvalidArgumentError(
                argument="expectations", expected="each expectation once", found=f"{duplicate} twice",
            )
        object.__setattr__(self, "expectations", expectations)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form, accepted back by :meth:`from_dict`."""
        return {"name": self.name, "policy": self.policy, "expectations": [e.to_dict() for e in self.expectations]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "expectation suite") -> ExpectationSuite:
        """Same as :func:`suite_from_dict`."""
        return suite_from_dict(data, source=source)


def load_suite(path: str | Path) -> ExpectationSuite:
    """Read a suite from a YAML file; any problem is a :class:`ConfigError` naming the key."""
    return suite_from_dict(load_yaml(path), source=str(path))


def suite_from_dict(data: Mapping[str, Any], *, source: str) -> ExpectationSuite:
    """Build and check a suite from a mapping (parsed YAML), ``source`` naming it in errors.

    Checks keys, the policy, that every ``type`` is a registered GE expectation and that GE
    accepts its ``kwargs`` (this imports ``great_expectations``, a few seconds once per process).
    """
    from engine.validation import _gx  # imports Great Expectations lazily

    if not isinstance(data, Mapping):
        raise ConfigError(source=source, key="<root>", expected="a mapping", found=type(data).__name__)
    _no_unknown_keys(data, _SUITE_KEYS, source=source, path="")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(source=source, key="name", expected="a non-empty string", found=repr(name))
    policy = data.get("policy", "reject")
    if policy not in POLICIES:
        raise ConfigError(source=source, key="policy", expected=f"one of {list(POLICIES)}", found=repr(policy))
    items = data.get("expectations")
    if not isinstance(items, list) or not items:
        raise ConfigError(source=source, key="expectations", expected="a non-empty list", found=repr(items))

    known = _gx.expectation_types()
    expectations: list[Expectation] = []
    for i, item in enumerate(items):
        path = f"expectations[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(source=source, key=path, expected="a mapping with `type` and `kwargs`", found=repr(item))
        _no_unknown_keys(item, _EXPECTATION_KEYS, source=source, path=path)
        kind = item.get("type")
        if kind not in known:
            raise ConfigError(
                source=source, key=f"{path}.type", expected="a Great Expectations 1.x expectation type",
                found=repr(kind), hint=_close_matches(kind, known),
            )
        kwargs = item.get("kwargs", {})
        if not isinstance(kwargs, Mapping):
            raise ConfigError(source=source, key=f"{path}.kwargs", expected="a mapping", found=repr(kwargs))
        expectation = Expectation(kind, {str(k): v for k, v in kwargs.items()})
        _gx.check_kwargs(expectation, source=source, key=f"{path}.kwargs")
        expectations.append(expectation)
    try:
        return ExpectationSuite(name=name, expectations=tuple(expectations), policy=policy)
    except InvalidArgumentError as err:
        raise ConfigError(
            source=source, key=f"expectations ({err.params['argument']})", expected=err.params.get("expected", ""),
            found=err.params.get("found", ""),
        ) from None


def _no_unknown_keys(data: Mapping[str, Any], allowed: tuple[str, ...], *, source: str, path: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ConfigError(
            source=source, key=f"{path}.{unknown[0]}" if path else unknown[0], expected=f"one of {list(allowed)}",
            found="an unknown key", hint="Unknown keys are errors, to catch typos.",
        )


def _close_matches(name: Any, known: frozenset[str]) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), sorted(known), n=3)
    return f"Did you mean {' or '.join(close)}?" if close else "See the GE 1.x expectation gallery."


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)
