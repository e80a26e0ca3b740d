"""Frozen, typed configuration objects, and the one place YAML is read.

Configs are plain frozen dataclasses. :func:`from_mapping` builds one from a mapping (parsed
YAML, ``--set`` overrides), checking every key and type: unknown keys, missing required keys and
values of the wrong type raise :class:`~engine.errors.ConfigError` naming the key path.
YAML is parsed with ``yaml.safe_load`` only (data, never objects).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar, Union

from engine.errors import ConfigError

__all__ = ["apply_overrides", "from_mapping", "load_yaml", "parse_duration", "parse_instant"]

T = TypeVar("T")

_DURATION = re.compile(
    r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|sec|secs|second|seconds|m|min|mins|minute|minutes|"
    r"h|hr|hrs|hour|hours|d|day|days|w|week|weeks)\s*$"
)
_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip


def parse_duration(value: Any, *, key: str = "duration", source: str = "config") -> timedelta:
    """``"7d"``, ``"30 days"``, ``"1h"``, ``"90 min"`` (or a timedelta) -> ``timedelta``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match:
            return timedelta(seconds=float(match["n"]) * _UNIT_SECONDS[match["unit"]])
    raise ConfigError(
        source=source, key=key, expected="a duration such as '7d', '12h' or '30 min'",
        found=repr(value),
    )


def parse_instant(value: Any, *, key: str = "time", source: str = "config") -> datetime:
    """An ISO date or datetime -> a UTC-aware ``datetime`` (naive values are read as UTC)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                source=source, key=key, expected="an ISO date or datetime such as '2013-11-01'",
                found=repr(value),
            ) from None
    else:
        raise ConfigError(
            source=source, key=key, expected="an ISO date or datetime", found=repr(value)
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def load_yaml(path: str | Path | Any) -> dict[str, Any]:
    """Read a YAML file (a path, or an ``importlib.resources`` Traversable such as a packaged
    profile inside a zip) as data. Missing files and non-mapping documents are ConfigErrors."""
    import yaml

    file = path if hasattr(path, "read_text") and not isinstance(path, (str, Path)) else Path(path)
    if not file.is_file():
        raise ConfigError(
            source=str(file), key="<file>", expected="an existing YAML file",
            found="no such file", hint="Check the path.",
        )
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(
            source=str(file), key="<file>", expected="valid YAML", found=str(err).splitlines()[0]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            source=str(file), key="<root>", expected="a mapping", found=type(data).__name__
        )
    return data


def apply_overrides(data: Mapping[str, Any], overrides: list[str], *, source: str) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML scalars) to a nested mapping."""
    import yaml

    result: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                source=source, key=item, expected="an override of the form key=value", found=item
            )
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    source=source, key=dotted, expected="a mapping at " + part,
                    found=type(child).__name__,
                )
            node = child
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def from_mapping(cls: type[T], data: Mapping[str, Any], *, source: str = "config", path: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``data``, checking keys and types recursively."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            source=source, key=path or "<root>", expected=f"a mapping for {cls.__name__}",
            found=type(data).__name__,
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            source=source, key=_join(path, unknown[0]), expected=f"one of {sorted(fields)}",
            found="an unknown key", hint="Unknown keys are errors, to catch typos.",
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key = _join(path, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], source=source, key=key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(source=source, key=key, expected="a value", found="nothing (missing)")
    return cls(**kwargs)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _convert(tp: Any, value: Any, *, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, source=source, key=key)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, source=source, path=key)  # type: ignore[arg-type]
    if tp is timedelta:
        return parse_duration(value, key=key, source=source)
    if tp is datetime:
        return parse_instant(value, key=key, source=source)
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(source=source, key=key, expected="a list", found=repr(value))
        item_type = args[0] if args else Any
        items = [_convert(item_type, v, source=source, key=f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(source=source, key=key, expected="a mapping", found=repr(value))
        value_type = args[1] if len(args) == 2 else Any
        return {str(k): _convert(value_type, v, source=source, key=f"{key}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(source=source, key=key, expected=f"one of {list(args)}", found=repr(value))
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(source=source, key=key, expected="true or false", found=repr(value))
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source=source, key=key, expected="an integer", found=repr(value))
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(source=source, key=key, expected="a number", found=repr(value))
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(source=source, key=key, expected="a string", found=repr(value))
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(source=source, key=key, expected=getattr(tp, "__name__", str(tp)), found=repr(value))
