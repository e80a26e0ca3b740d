"""Safe names: feature group, feature and pipeline names end up in paths and in SQL.

Only ``[A-Za-z_][A-Za-z0-9_]{0,127}`` is accepted, so a name can never climb out of its folder
(``../x``), break out of a quoted identifier (``x'``, ``x`;drop``) or change meaning with spaces.
Names are still backtick-quoted whenever they appear in SQL (:func:`engine.store.delta.quote_identifier`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from engine.errors import UnsafeNameError

__all__ = ["MAX_NAME_LENGTH", "check_name", "check_names"]

MAX_NAME_LENGTH = 128
_SAFE = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_NAME_LENGTH - 1}}}")


def check_name(name: Any, *, argument: str) -> str:
    """Return ``name`` if it is a safe identifier, else raise :class:`UnsafeNameError` naming ``argument``."""
    if not isinstance(name, str) or not _SAFE.fullmatch(name):
        raise UnsafeNameError(argument=argument, name=name, max_length=MAX_NAME_LENGTH)
    return name


def check_names(names: Iterable[Any], *, argument: str) -> list[str]:
    """:func:`check_name` for each of ``names``; returns them as a list."""
    return [check_name(name, argument=argument) for name in names]
