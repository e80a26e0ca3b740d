"""The `remote` profile and $SPARK_REMOTE, before any connection: no Spark needed."""

from __future__ import annotations

import pytest

from engine.errors import InvalidArgumentError
from engine.session import build_spark, load_profile


def test_remote_profile_loads_and_needs_no_java_or_jars():
    prof = load_profile("remote")
    assert prof.connect and prof.remote is None and not prof.check_java and not prof.delta_packages


def test_remote_profile_without_a_url_says_where_it_looked(monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    with pytest.raises(InvalidArgumentError) as err:
        build_spark("remote")
    assert err.value.params["found"] == "neither is set" and "$SPARK_REMOTE" in err.value.params["expected"]


def test_spark_remote_must_be_a_connect_url(monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", "http://127.0.0.1:15002")
    with pytest.raises(InvalidArgumentError) as err:
        build_spark("remote")
    assert err.value.params["argument"] == "$SPARK_REMOTE" and "sc://" in err.value.params["expected"]
