"""One exception hierarchy for the whole engine.

Every error carries a stable ``error_class`` (what tests and callers match on) and the
``params`` it was built from (the argument or column, what was expected, what was found).
The message is rendered from those parameters, so it always names the bad input::

    try:
        asof_join(spine, weather, on="ts", by="origin")
    except ColumnNotFoundError as err:
        err.error_class   # "COLUMN_NOT_FOUND"
        err.params        # {"argument": "by", "column": "origin", "side": "right", ...}
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExistsError",
    "ColumnNotFoundError",
    "ColumnTypeError",
    "ConcurrentWriteError",
    "ConfigError",
    "CorruptTableError",
    "DeltaJarsError",
    "EngineError",
    "IncompatibleTypesError",
    "InvalidArgumentError",
    "JavaError",
    "NotFoundError",
    "PrimaryKeyError",
    "SchemaMismatchError",
    "StorageError",
    "TimeRangeError",
    "UnknownProfileError",
    "UnsafeNameError",
    "ValidationFailedError",
]


class EngineError(Exception):
    """Base class: an error class string plus the parameters the message is built from."""

    error_class: ClassVar[str] = "ENGINE_ERROR"
    template: ClassVar[str] = "{message}"

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = params
        fields = {k: _show(v) for k, v in params.items()}
        text = self.template.format_map(_Defaults(fields))
        super().__init__(f"[{self.error_class}] {text}")


class _Defaults(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return ""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return repr(value)


class InvalidArgumentError(EngineError, ValueError):
    """An argument has a value or type the function cannot accept."""

    error_class = "INVALID_ARGUMENT"
    template = "argument `{argument}`: expected {expected}, found {found}. {hint}"


class ColumnNotFoundError(EngineError, KeyError):
    """A named column does not exist in the DataFrame or table it should be in."""

    error_class = "COLUMN_NOT_FOUND"
    template = (
        "argument `{argument}`: column {column!s} not found in the {side} columns {available}. {hint}"
    )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class ColumnTypeError(EngineError, TypeError):
    """A column exists but has the wrong type."""

    error_class = "COLUMN_TYPE"
    template = "argument `{argument}`: column {column} must be {expected}, found {found}. {hint}"


class IncompatibleTypesError(EngineError, TypeError):
    """Two columns that are compared with each other have types that cannot be compared."""

    error_class = "INCOMPATIBLE_TYPES"
    template = (
        "argument `{argument}`: left column {left_column} ({left_type}) cannot be compared "
        "with right column {right_column} ({right_type}). {hint}"
    )


class TimeRangeError(EngineError, ValueError):
    """A time range is empty, backwards, or uses naive timestamps."""

    error_class = "TIME_RANGE"
    template = "argument `{argument}`: expected {expected}, found start={start}, end={end}. {hint}"


class SchemaMismatchError(EngineError, ValueError):
    """The data does not have the schema of the table it is written to."""

    error_class = "SCHEMA_MISMATCH"
    template = "{target}: column {column} expected {expected}, found {found}. {hint}"


class PrimaryKeyError(EngineError, ValueError):
    """NULL or duplicate primary keys in data about to be written."""

    error_class = "PRIMARY_KEY"
    template = "{target}: {problem} in columns {columns}; found {count} row(s), e.g. {example}. {hint}"


class UnsafeNameError(EngineError, ValueError):
    """A name used in paths or SQL is not a safe identifier."""

    error_class = "UNSAFE_NAME"
    template = (
        "argument `{argument}`: {name!r} is not a safe name; expected letters, digits and "
        "underscores, starting with a letter or underscore, at most {max_length} characters."
    )


class NotFoundError(EngineError, LookupError):
    """A named object (feature group, profile file, model, ...) does not exist."""

    error_class = "NOT_FOUND"
    template = "{kind} {name} not found. {hint}"


class AlreadyExistsError(EngineError, ValueError):
    """Creating something that already exists with a different definition."""

    error_class = "ALREADY_EXISTS"
    template = "{kind} {name} already exists. {hint}"


class UnknownProfileError(EngineError, ValueError):
    """A Spark profile name with no ``<name>.yaml`` in the profile folders searched."""

    error_class = "UNKNOWN_PROFILE"
    template = (
        "argument `profile`: unknown Spark profile {profile!r}; expected one of {available} "
        "(searched {searched}). {hint}"
    )


class ConfigError(EngineError, ValueError):
    """A configuration file or mapping is malformed (unknown key, wrong type, missing file)."""

    error_class = "CONFIG"
    template = "{source}: key `{key}`: expected {expected}, found {found}. {hint}"

    def __init__(self, **params: Any) -> None:
        from engine.redaction import REDACTED, is_secret_key

        if is_secret_key(params.get("key")) and params.get("found") not in (None, "an unknown key", "nothing (missing)"):
            params["found"] = f"a value ({REDACTED})"  # never echo a password back
        super().__init__(**params)


class JavaError(EngineError, RuntimeError):
    """Java is missing or too old for Spark."""

    error_class = "JAVA"
    template = "Spark needs Java >= {required}; found {found}. {hint}"


class DeltaJarsError(EngineError, RuntimeError):
    """The Delta Lake jars could not be resolved."""

    error_class = "DELTA_JARS"
    template = "could not resolve the Delta Lake jars {coordinate}: {reason}. {hint}"


class ValidationFailedError(EngineError, ValueError):
    """Data failed its expectation suite under the `reject` policy; nothing was written."""

    error_class = "VALIDATION_FAILED"
    template = "{target}: {failed} of {total} expectations failed: {failures}. Nothing was written."


class ConcurrentWriteError(EngineError, RuntimeError):
    """A Delta commit kept conflicting with concurrent writers after all retries."""

    error_class = "CONCURRENT_WRITE"
    template = "{target}: gave up after {attempts} attempts: {reason}. Nothing was written by this call."


class CorruptTableError(EngineError, RuntimeError):
    """A Delta table's transaction log cannot be read (a truncated or corrupt commit file)."""

    error_class = "CORRUPT_TABLE"
    template = (
        "Delta table {table}: the transaction log at version {version} cannot be read ({reason}). "
        "Nothing was read or written. {hint}"
    )


class StorageError(EngineError, OSError):
    """The file system refused a write (disk full, read-only, no permission); nothing was committed."""

    error_class = "STORAGE"
    template = "{target}: the file system refused the write ({reason}). Nothing was committed. {hint}"


class TrainingFailedError(EngineError, RuntimeError):
    """No hyperparameter trial of a training run succeeded."""

    error_class = "TRAINING_FAILED"
    template = "model family {family}: none of {trials} trial(s) succeeded; first error: {first_error}"

__all__.append("TrainingFailedError")


class ModelLineageError(EngineError, LookupError):
    """A registered model's recorded inputs (its feature view, its features) no longer resolve."""

    error_class = "MODEL_LINEAGE"
    template = "model {model}: {problem}; expected {expected}, found {found}. {hint}"

__all__.append("ModelLineageError")


class SessionConflictError(EngineError, RuntimeError):
    """The session a profile asks for cannot be built beside the session this process already has
    (e.g. a classic ``local`` session while PySpark is in Spark Connect mode)."""

    error_class = "SESSION_CONFLICT"
    template = "profile {profile!r} asks for {expected}, found {found}. {hint}"

__all__.append("SessionConflictError")
