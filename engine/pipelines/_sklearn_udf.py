"""The pandas UDF that applies a scikit-learn estimator to Arrow batches (see
:func:`engine.pipelines.inference.predict`).

A module of its own, with real (not postponed) annotations: PySpark reads the UDF's type hints to
know it maps an iterator of batches, and the closure holds only the estimator and what it names.
"""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["sklearn_udf"]


def sklearn_udf(estimator: Any, method: str, kinds: dict[str, str], width: int, uri: str) -> Any:
    """``estimator.<method>`` on each batch (inputs converted as at training by
    :func:`engine.pipelines._sklearn_run.input_frame`). ``width`` 0: one DOUBLE per row (a
    regressor); else a struct ``p0 .. p<width-1>`` of class probabilities, checked to have one
    column per class of the model's contract."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from engine.pipelines._sklearn_run import input_frame

    def values(batches: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        apply = getattr(estimator, method)
        for batch in batches:
            yield pd.Series(np.asarray(apply(input_frame(batch, kinds)), dtype="float64").reshape(len(batch)))

    def probabilities(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        apply = getattr(estimator, method)
        for batch in batches:
            out = np.asarray(apply(input_frame(batch, kinds)), dtype="float64")
            if out.ndim != 2 or out.shape[1] != width:
                raise ValueError(f"model {uri}: {method} returned shape {out.shape}, expected ({len(batch)}, {width}): "
                                 "one probability per class of the model's contract")
            yield pd.DataFrame({f"p{i}": out[:, i] for i in range(width)})

    if not width:
        return F.pandas_udf(values, T.DoubleType())  # type: ignore[call-overload]
    schema = T.StructType([T.StructField(f"p{i}", T.DoubleType()) for i in range(width)])
    return F.pandas_udf(probabilities, schema)  # type: ignore[call-overload]
