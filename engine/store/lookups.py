"""The parts of a feature view definition: lookups and on-demand features (frozen values).

Both are plain data that serialise to the registry (``to_dict`` / ``from_dict``); an on-demand
function is stored by reference (``module:function``), so a model that records its view can apply
it again at scoring time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine.errors import InvalidArgumentError

__all__ = ["FeatureLookup", "OnDemandFeature", "resolve_function"]


@dataclass(frozen=True)
class FeatureLookup:
    """Look features up from one feature group.

    ``keys`` maps the group's primary key columns to spine columns (default: same names).
    ``lookback`` bounds how old a feature row may be (``None``: any age). Output columns are
    ``prefix + feature`` and ``prefix + event_time``; the default prefix is ``"<group>__"``.
    """

    feature_group: str
    version: int | None = None
    features: Sequence[str] | None = None
    lookback: timedelta | None = None
    prefix: str | None = None
    keys: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_group": self.feature_group, "version": self.version,
            "features": None if self.features is None else list(self.features),
            "lookback_seconds": None if self.lookback is None else self.lookback.total_seconds(),
            "prefix": self.prefix, "keys": None if self.keys is None else dict(self.keys),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureLookup:
        seconds = data.get("lookback_seconds")
        return cls(
            feature_group=data["feature_group"], version=data.get("version"), features=data.get("features"),
            lookback=None if seconds is None else timedelta(seconds=seconds), prefix=data.get("prefix"),
            keys=data.get("keys"),
        )


@dataclass(frozen=True)
class OnDemandFeature:
    """``name = function(*inputs)`` per row; ``function`` is importable (or ``"module:function"``).

    NULL inputs arrive as ``None``; ``return_type`` is a Spark SQL type name.
    """

    name: str
    function: Callable[..., Any] | str
    inputs: Sequence[str]
    return_type: str = "double"

    @property
    def reference(self) -> str:
        if isinstance(self.function, str):
            return self.function
        return f"{self.function.__module__}:{self.function.__qualname__}"

    def resolve(self) -> Callable[..., Any]:
        return resolve_function(self.reference, argument=f"on_demand[{self.name}].function")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "function": self.reference, "inputs": list(self.inputs), "return_type": self.return_type}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OnDemandFeature:
        return cls(name=data["name"], function=data["function"], inputs=tuple(data["inputs"]), return_type=data["return_type"])


def resolve_function(reference: str, *, argument: str) -> Callable[..., Any]:
    """Import ``module:qualname``; anything not importable (lambdas, closures) is an error."""
    module_name, _, qualname = reference.partition(":")
    if not module_name or not qualname or "<" in qualname:
        raise InvalidArgumentError(
            argument=argument, expected="an importable top-level function ('module:function')", found=repr(reference),
            hint="Lambdas and nested functions cannot be stored with a feature view or a model.",
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise InvalidArgumentError(
            argument=argument, expected="an importable function", found=repr(reference), hint=str(err)
        ) from None
    if not callable(target):
        raise InvalidArgumentError(argument=argument, expected="a callable", found=repr(reference))
    return target
