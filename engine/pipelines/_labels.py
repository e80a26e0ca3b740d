"""Feature and label checks for training: schema-level (no Spark job) and one summary pass.

* :func:`feature_kinds`: every feature is numeric/boolean (fed to the model as float64) or STRING
  (encoded inside the model); anything else is a :class:`ColumnTypeError` naming the column.
* :func:`check_label_type`: the label's type fits the task (regression: a number; classification:
  boolean, integer, string, or a fractional type holding whole numbers).
* :func:`summarize_labels`: one aggregation per data set -- rows, classes and their counts
  (classification) or the train mean and the constant-mean baseline (regression) -- raising
  :class:`InvalidArgumentError` for NULL labels, too few classes, validation classes unseen in
  train, or more than ``max_classes`` classes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.errors import ColumnTypeError, InvalidArgumentError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["check_label_type", "feature_kinds", "summarize_labels"]

NUMERIC = re.compile(r"(tinyint|smallint|int|bigint|float|double|boolean|decimal\(\d+,\s*\d+\))")
_INTEGRAL = re.compile(r"(tinyint|smallint|int|bigint)")
_FRACTIONAL = re.compile(r"(float|double|decimal\(\d+,\s*\d+\))")
MAX_CLASSES = 1000


def feature_kinds(types: Mapping[str, str], features: list[str], *, side: str) -> dict[str, str]:
    """``{feature: "double" | "string"}`` from ``dtypes``; other types are errors."""
    kinds = {}
    for column in features:
        dtype = types[column]
        if NUMERIC.fullmatch(dtype):
            kinds[column] = "double"
        elif dtype == "string":
            kinds[column] = "string"
        else:
            raise ColumnTypeError(
                argument="features", column=column, expected="numeric, boolean or string", found=f"{dtype} in {side}",
                hint="Derive a number or a category from it (an on-demand feature), or exclude it from the view.",
            )
    return kinds


def check_label_type(dtype: str, *, label: str, task: str, side: str) -> None:
    """Raise :class:`ColumnTypeError` (argument ``label``) unless ``dtype`` fits ``task``."""
    if task == "regression":
        if NUMERIC.fullmatch(dtype) and dtype != "boolean":
            return
        expected = "a number (integer, float, double or decimal) for task 'regression'"
        hint = "For categories use task 'binary' or 'multiclass'."
    else:
        if dtype in ("boolean", "string") or _INTEGRAL.fullmatch(dtype) or _FRACTIONAL.fullmatch(dtype):
            return
        expected = f"a class (boolean, integer or string) for task {task!r}"
        hint = ""
    raise ColumnTypeError(argument="label", column=label, expected=expected, found=f"{dtype} in {side}", hint=hint)


def summarize_labels(frames: Mapping[str, DataFrame], *, label: str, task: str,
                     max_classes: int = MAX_CLASSES) -> dict[str, Any]:
    """Rows and label statistics of ``frames["train"]`` and ``frames["validation"]`` (Spark jobs)."""
    from pyspark.sql import functions as F

    y = F.col(_q(label))
    if task == "regression":
        out: dict[str, Any] = {}
        for side, df in frames.items():
            row = df.select(F.count(F.lit(1)).alias("rows"), F.count(F.when(y.isNull(), 1)).alias("nulls"),
                            F.avg(y.cast("double")).alias("mean")).first()
            _check_rows(side, int(row["rows"]), int(row["nulls"]), label)  # type: ignore[index]
            out[f"{side}_rows"] = int(row["rows"])  # type: ignore[index]
            out[f"{side}_mean"] = float(row["mean"])  # type: ignore[index]
        diff = y.cast("double") - F.lit(out["train_mean"])
        row = frames["validation"].select(F.avg(diff * diff).alias("mse"), F.avg(F.abs(diff)).alias("mae")).first()
        out["baseline_rmse"] = math.sqrt(float(row["mse"]))  # type: ignore[index]
        out["baseline_mae"] = float(row["mae"])  # type: ignore[index]
        return out

    counts: dict[str, dict[Any, int]] = {}
    for side, df in frames.items():
        rows = df.groupBy(y.alias("y")).count().limit(max_classes + 2).collect()
        found = {r["y"]: int(r["count"]) for r in rows}
        _check_rows(side, sum(found.values()), found.pop(None, 0), label)
        if len(found) > max_classes:
            raise InvalidArgumentError(argument="label", expected=f"at most {max_classes} classes in {label!r}",
                                       found=f"more than {max_classes} distinct values in {side}",
                                       hint="Is this a regression target?")
        odd = [v for v in found if isinstance(v, float) and not float(v).is_integer()]
        if odd:
            raise InvalidArgumentError(argument="label", expected=f"class values (whole numbers) for task {task!r}",
                                       found=f"{len(odd)} fractional value(s) in {side}, e.g. {odd[0]!r}",
                                       hint="Use task 'regression' for a continuous target.")
        counts[side] = found
    classes = sorted(counts["train"])
    if len(classes) < 2 or (task == "binary" and len(classes) != 2):
        raise InvalidArgumentError(argument="label", expected=f"{'exactly' if task == 'binary' else 'at least'} two "
                                   f"label values in {label!r} for task {task!r}", found=f"{classes} in train",
                                   hint="Use task 'multiclass' for more than two classes." if len(classes) > 2 else "")
    unseen = sorted(set(counts["validation"]) - set(classes), key=repr)
    if unseen:
        raise InvalidArgumentError(argument="label", expected=f"validation labels among the train classes {classes}",
                                   found=f"{unseen} in validation only")
    out = {
        "train_rows": sum(counts["train"].values()), "validation_rows": sum(counts["validation"].values()),
        "classes": [_plain(c) for c in classes],
        "train_counts": [counts["train"].get(c, 0) for c in classes],
        "validation_counts": [counts["validation"].get(c, 0) for c in classes],
    }
    if task == "binary":
        out["train_positive_rate"] = out["train_counts"][1] / out["train_rows"]
        out["validation_positive_rate"] = out["validation_counts"][1] / out["validation_rows"]
    return out


def run_stats(summary: Mapping[str, Any], task: str) -> dict[str, float]:
    """The numbers logged as the parent run's metrics."""
    keys = ["train_rows", "validation_rows"]
    keys += {"binary": ["train_positive_rate", "validation_positive_rate"], "regression": ["train_mean"]}.get(task, [])
    stats = {k: float(summary[k]) for k in keys}
    if task == "multiclass":
        stats["n_classes"] = float(len(summary["classes"]))
    return stats


def _check_rows(side: str, rows: int, nulls: int, label: str) -> None:
    if rows == 0:
        raise InvalidArgumentError(argument=side, expected="at least one row", found="an empty DataFrame")
    if nulls:
        raise InvalidArgumentError(argument="label", expected=f"no NULL labels in {side}", found=f"{nulls} NULL(s) in {label!r}")


def _plain(value: Any) -> Any:
    """JSON-ready class values (Decimal -> float)."""
    if isinstance(value, (bool, int, str, float)):
        return value
    return float(value)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
