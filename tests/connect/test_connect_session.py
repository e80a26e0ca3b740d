"""build_spark with a Spark Connect session active: the remote profile returns it, a classic
profile says what it found (SESSION_CONFLICT) instead of a misleading DELTA_JARS error, and the
engine's session helpers see the remote session for what it is."""

from __future__ import annotations

import pytest

from engine.errors import SessionConflictError
from engine.remote import describe_session, is_remote
from engine.session import build_spark


def test_remote_session_is_recognised(connect_spark, connect_server):
    assert is_remote(connect_spark)
    assert describe_session(connect_spark) == f"Spark Connect session on {connect_server.url}"


def test_classic_profile_with_a_connect_session_active_names_it(connect_spark, connect_server):
    with pytest.raises(SessionConflictError) as err:
        build_spark("local", {"spark.master": "local[1]"})
    assert err.value.error_class == "SESSION_CONFLICT"
    assert err.value.params["profile"] == "local" and "local[1]" in err.value.params["expected"]
    assert connect_server.url in err.value.params["found"]


def test_remote_and_ambient_profiles_return_the_active_session(connect_spark, connect_server, monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", connect_server.url)
    assert build_spark("remote") is connect_spark
    assert build_spark("databricks") is connect_spark  # ambient: the session that already exists


def test_remote_profile_beside_a_classic_session_names_it(spark, connect_spark, monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:1")  # another server: PySpark refuses before connecting
    with pytest.raises(SessionConflictError) as err:
        build_spark("remote")
    assert err.value.params["profile"] == "remote" and "sc://127.0.0.1:1" in err.value.params["expected"]
    assert "classic session on local[2]" in err.value.params["found"]
