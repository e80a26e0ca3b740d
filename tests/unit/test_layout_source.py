"""A BucketedSource's row count: given only where every file's Delta statistics have it."""

from __future__ import annotations

import pytest

from engine.errors import InvalidArgumentError
from engine.store.bucketing import _records
from engine.temporal.layout import BucketedSource


def _read(bucket, columns):  # pragma: no cover - never called here
    raise AssertionError


@pytest.mark.parametrize("rows", [-1, 1.5, True, "3"])
def test_a_bad_row_count_names_the_argument(rows):
    with pytest.raises(InvalidArgumentError, match="rows"):
        BucketedSource(buckets=2, key_columns=("k",), read_bucket=_read, rows=rows)


def test_the_row_count_is_optional():
    assert BucketedSource(buckets=2, key_columns=("k",), read_bucket=_read).rows is None
    assert BucketedSource(buckets=2, key_columns=("k",), read_bucket=_read, rows=0).rows == 0


@pytest.mark.parametrize(("add", "expected"), [
    ({"stats": '{"numRecords": 12, "minValues": {}}'}, 12),
    ({"stats": '{"numRecords": 0}'}, 0),
    ({}, None),  # a file written without statistics
    ({"stats": None}, None),
    ({"stats": '{"minValues": {}}'}, None),
    ({"stats": '{"numRecords": -3}'}, None),
    ({"stats": '{"numRecords": true}'}, None),
    ({"stats": "not json"}, None),
])
def test_a_file_counts_only_with_its_numrecords_statistic(add, expected):
    assert _records(add) == expected
