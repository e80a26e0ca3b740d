"""Schema checks of data against a Delta table (no Spark job: schemas only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import SchemaMismatchError

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

__all__ = ["check_schema"]


def check_schema(found: StructType, expected: StructType, *, target: str, allow_extra: bool = False) -> None:
    """Raise :class:`SchemaMismatchError` unless ``found`` has ``expected``'s columns and types."""
    want = {f.name: f.dataType for f in expected.fields}
    have = {f.name: f.dataType for f in found.fields}
    for name, dtype in want.items():
        if name not in have:
            raise SchemaMismatchError(
                target=target, column=name, expected=dtype.simpleString(), found="no such column",
                hint=f"The data has columns {sorted(have)}.",
            )
        if have[name] != dtype:
            raise SchemaMismatchError(
                target=target, column=name, expected=dtype.simpleString(), found=have[name].simpleString(),
                hint="Cast the column before writing.",
            )
    extra = sorted(set(have) - set(want))
    if extra and not allow_extra:
        raise SchemaMismatchError(
            target=target, column=extra[0], expected="only the table's columns " + str(sorted(want)),
            found="an extra column", hint="Drop it, or allow additive schema evolution.",
        )
