"""Argument checks shared by the temporal functions. They read only DataFrame schemas, so they
run before any Spark job and every failure names the argument, the column and the found type."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import ColumnNotFoundError, ColumnTypeError, IncompatibleTypesError, InvalidArgumentError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType

TimeKind = Literal["timestamp", "timestamp_ntz", "date", "integral", "fractional"]


def as_list(value: str | Sequence[str] | None, *, argument: str) -> list[str]:
    """``"a"`` -> ``["a"]``; a list/tuple of strings as a list; ``None`` -> ``[]``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgumentError(argument=argument, expected="a column name or a list of column names", found=repr(value))


def require_dataframe(value: object, *, argument: str, allow_none: bool = False) -> None:
    """``value`` must be a Spark DataFrame (classic or Connect); a feature group or a pandas frame
    gets a hint on how to pass its rows."""
    from pyspark.sql import DataFrame

    if isinstance(value, DataFrame) or (allow_none and value is None):
        return
    kind = type(value)
    found = f"{kind.__module__}.{kind.__qualname__}"
    hint = ""
    if kind.__name__ in ("FeatureGroup", "FeatureView") and callable(getattr(value, "read", None)):
        hint = f"Pass the group's rows: `{argument}=group.read()` (or `group.read(as_of_version=...)`)."
    elif kind.__module__.split(".")[0] in ("pandas", "polars", "pyarrow"):
        hint = f"Convert it first: `{argument}=spark.createDataFrame(frame)`."
    raise InvalidArgumentError(
        argument=argument, expected="a pyspark.sql.DataFrame" + (" or None" if allow_none else ""), found=found, hint=hint
    )


def require_columns(df: DataFrame, columns: Sequence[str], *, argument: str, side: str) -> None:
    available = df.columns
    for column in columns:
        if column not in available:
            raise ColumnNotFoundError(argument=argument, column=column, side=side, available=available)


def field_type(df: DataFrame, column: str) -> DataType:
    return df.schema[column].dataType


def time_kind(df: DataFrame, column: str, *, argument: str) -> TimeKind:
    """Classify a time column; anything that is not a time or a number is a ColumnTypeError."""
    from pyspark.sql import types as T

    dtype = field_type(df, column)
    if isinstance(dtype, T.TimestampNTZType):
        return "timestamp_ntz"
    if isinstance(dtype, T.TimestampType):
        return "timestamp"
    if isinstance(dtype, T.DateType):
        return "date"
    if isinstance(dtype, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "integral"
    if isinstance(dtype, (T.FloatType, T.DoubleType, T.DecimalType)):
        return "fractional"
    raise ColumnTypeError(
        argument=argument, column=column, expected="a timestamp, date or numeric column", found=dtype.simpleString()
    )


def check_time_columns(left: DataFrame, left_col: str, right: DataFrame, right_col: str, *, argument: str) -> TimeKind:
    """Both time columns must be of one comparable kind (TIMESTAMP vs TIMESTAMP_NTZ is not)."""
    lk = time_kind(left, left_col, argument=argument)
    rk = time_kind(right, right_col, argument=argument)
    numeric = {"integral", "fractional"}
    if lk == rk or (lk in numeric and rk in numeric):
        return lk if lk == rk else "fractional"
    hint = ""
    if {lk, rk} == {"timestamp", "timestamp_ntz"}:
        hint = "TIMESTAMP is an instant, TIMESTAMP_NTZ a wall-clock time: convert one explicitly (e.g. to_utc_timestamp)."
    raise IncompatibleTypesError(
        argument=argument, left_column=left_col, left_type=field_type(left, left_col).simpleString(),
        right_column=right_col, right_type=field_type(right, right_col).simpleString(), hint=hint,
    )


def check_key_types(left: DataFrame, left_by: Sequence[str], right: DataFrame, right_by: Sequence[str], *, argument: str) -> None:
    """Key columns pair up one to one and have equal types (no silent casts in an equi-join)."""
    if len(left_by) != len(right_by):
        raise InvalidArgumentError(
            argument=argument, expected="as many left as right key columns", found=f"left {list(left_by)}, right {list(right_by)}"
        )
    for lcol, rcol in zip(left_by, right_by, strict=True):
        lt, rt = field_type(left, lcol), field_type(right, rcol)
        if lt != rt:
            raise IncompatibleTypesError(
                argument=argument, left_column=lcol, left_type=lt.simpleString(), right_column=rcol,
                right_type=rt.simpleString(), hint="Cast one side so both key columns have the same type.",
            )


def check_window(value: Any, kind: TimeKind, *, argument: str, allow_none: bool = True, allow_zero: bool = True) -> Any:
    """A tolerance / window: a timedelta for time columns, a number for numeric ones, not negative."""
    if value is None:
        if allow_none:
            return None
        raise InvalidArgumentError(argument=argument, expected="a value", found="None")
    if kind in ("timestamp", "timestamp_ntz", "date"):
        ok = isinstance(value, timedelta)
        expected = "a datetime.timedelta (the time column is a " + kind + ")"
        zero: Any = timedelta(0)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        expected = "a number (the time column is numeric)"
        zero = 0
    if not ok:
        raise InvalidArgumentError(argument=argument, expected=expected, found=f"{value!r} ({type(value).__name__})")
    if value < zero or (value == zero and not allow_zero):
        raise InvalidArgumentError(
            argument=argument, expected=expected.replace("a ", "a positive ", 1) if not allow_zero else expected + " >= 0",
            found=repr(value),
        )
    return value


def time_as_number(column: Any, kind: TimeKind) -> Any:
    """A Column of the time, as a number that orders like it: microseconds for timestamps,
    days for dates, the value itself for numbers."""
    from pyspark.sql import functions as F

    if kind in ("timestamp", "timestamp_ntz"):
        return F.unix_micros(column.cast("timestamp")) if kind == "timestamp_ntz" else F.unix_micros(column)
    if kind == "date":
        return F.unix_date(column)
    return column


def window_as_number(value: Any, kind: TimeKind) -> Any:
    """A tolerance/window in the units of :func:`time_as_number`."""
    if value is None:
        return None
    if kind in ("timestamp", "timestamp_ntz"):
        return value // timedelta(microseconds=1)
    if kind == "date":
        return value / timedelta(days=1)
    return value


def resolve_on(on: str | None, left_on: str | None, right_on: str | None) -> tuple[str, str]:
    """The (left, right) time columns from ``on`` or ``left_on`` + ``right_on``."""
    if on is not None:
        if left_on is not None or right_on is not None:
            raise InvalidArgumentError(
                argument="on", expected="either `on` or `left_on`/`right_on`, not both",
                found=f"on={on!r}, left_on={left_on!r}, right_on={right_on!r}",
            )
        if not isinstance(on, str):
            raise InvalidArgumentError(argument="on", expected="one column name", found=repr(on))
        return on, on
    if left_on is None or right_on is None:
        raise InvalidArgumentError(argument="on", expected="`on`, or both `left_on` and `right_on`",
                                   found=f"left_on={left_on!r}, right_on={right_on!r}")
    for arg, value in (("left_on", left_on), ("right_on", right_on)):
        if not isinstance(value, str):
            raise InvalidArgumentError(argument=arg, expected="one column name", found=repr(value))
    return left_on, right_on
