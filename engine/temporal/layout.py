"""Right tables laid out in hash buckets of their keys: what the ``layout`` as-of strategy needs.

A :class:`BucketedSource` describes a table whose rows are stored by bucket: the rows with
``pmod(hash(key_columns...), buckets) == b`` (Spark's ``hash``, Murmur3 with seed 42, over the key
columns in the order given) are exactly what ``read_bucket(b, columns)`` returns, as an Arrow
table. Feature groups written by :mod:`engine.store` are laid out this way (one Delta partition
per bucket), so an as-of lookup over them shuffles only the spine: each task takes one bucket of
spine rows and reads that bucket's feature rows itself (see :mod:`engine.temporal._asof_layout`).

``read_bucket`` runs on the executors: it must be picklable and read only what the bucket holds
(for a Delta table: the files of one pinned version). The temporal core does no I/O itself; the
reader is the store's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidArgumentError

__all__ = ["BucketedSource"]


@dataclass(frozen=True)
class BucketedSource:
    """A right table readable one hash bucket at a time.

    ``key_columns``: the bucketing key columns, named as in the lookup's right DataFrame, in hash
    order. ``read_bucket(bucket, columns)``: that bucket's rows, with exactly ``columns`` (names
    of the right DataFrame), as a ``pyarrow.Table``; it must return the same rows as the right
    DataFrame restricted to the bucket. ``description`` shows in :func:`explain_asof_many`.
    ``rows``: the table's row count where the source knows it (e.g. from Delta's file statistics);
    the plan then takes it instead of asking Spark's optimizer for an estimate, which for a Delta
    table lists the files with Spark jobs.
    """

    buckets: int
    key_columns: tuple[str, ...]
    read_bucket: Callable[[int, Sequence[str]], Any]
    description: str = ""
    rows: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.buckets, bool) or not isinstance(self.buckets, int) or self.buckets < 1:
            raise InvalidArgumentError(argument="buckets", expected="an integer >= 1", found=repr(self.buckets))
        if not self.key_columns or not all(isinstance(k, str) for k in self.key_columns):
            raise InvalidArgumentError(argument="key_columns", expected="a non-empty tuple of column names",
                                       found=repr(self.key_columns))
        if self.rows is not None and (isinstance(self.rows, bool) or not isinstance(self.rows, int) or self.rows < 0):
            raise InvalidArgumentError(argument="rows", expected="None or an integer >= 0", found=repr(self.rows))
        if not callable(self.read_bucket):
            raise InvalidArgumentError(argument="read_bucket", expected="a callable (bucket, columns) -> pyarrow.Table",
                                       found=type(self.read_bucket).__name__)
