"""Session profiles, Java checks, config parsing: no Spark needed (except a subprocess that
shows an unresolvable Delta coordinate becomes a DeltaJarsError)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from engine.config import apply_overrides, from_mapping, load_yaml, parse_duration
from engine.errors import ConfigError, EngineError, JavaError, UnknownProfileError
from engine.session import DELTA_COORDINATE, build_spark, java_major_version, load_profile, spark_settings

ROOT = Path(__file__).resolve().parents[2]


def test_profiles_load_and_pin_utc_and_delta():
    for name in ("local", "standalone", "databricks"):
        load_profile(name)
    settings = spark_settings(load_profile("local"), {"spark.sql.shuffle.partitions": 3})
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert settings["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert settings["spark.sql.shuffle.partitions"] == "3"
    assert settings["spark.jars.packages"].split(",")[0] == DELTA_COORDINATE
    assert settings["spark.sql.warehouse.dir"].startswith(tempfile.gettempdir())  # not the working directory
    offline = spark_settings(load_profile("local"), {"spark.jars": "/x/delta.jar"})
    assert "spark.jars.packages" not in offline


@pytest.mark.parametrize("profile", ["prod", "../local", "", "local.yaml"])
def test_unknown_profile(profile):
    with pytest.raises(UnknownProfileError) as err:
        build_spark(profile)
    assert err.value.params["profile"] == profile
    assert "local" in err.value.params["available"]
    assert any("profiles" in folder for folder in err.value.params["searched"])  # where it looked


def test_user_profiles_come_first_and_relative_warehouses_are_refused(monkeypatch, tmp_path):
    from engine.errors import ConfigError

    monkeypatch.setenv("FF_SPARK_PROFILES", str(tmp_path))
    (tmp_path / "local.yaml").write_text("master: local[1]\napp_name: mine\n")
    (tmp_path / "rel.yaml").write_text("warehouse: wh\n")
    assert load_profile("local").app_name == "mine"
    assert load_profile("standalone").master == "spark://127.0.0.1:7077"  # the packaged one
    with pytest.raises(ConfigError, match="absolute path"):
        load_profile("rel")


def test_missing_java_is_reported_with_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(JavaError) as err:
        java_major_version()
    assert "no `java`" in err.value.params["found"] or "no-jdk" in str(err.value)
    assert "Install a JDK" in str(err.value)


def test_old_java_is_refused(tmp_path):
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(0o755)
    with pytest.raises(JavaError) as err:
        java_major_version(str(fake))
    assert "Java 11" in err.value.params["found"]


def test_java_8_version_string_is_parsed(tmp_path):
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'java version "1.8.0_301"\' >&2\n')
    fake.chmod(0o755)
    with pytest.raises(JavaError) as err:
        java_major_version(str(fake))
    assert "Java 8" in err.value.params["found"]


def test_this_machine_has_java_17_or_newer():
    assert java_major_version() >= 17


def test_make_java_check_fails_clearly_without_java(tmp_path):
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "nothing"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(ROOT / "scripts" / "check_java.sh")], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "Java >= 17" in out.stderr


def test_unresolvable_jars_raise_delta_jars_error(tmp_path):
    """No reachable repository: the error names the coordinate and the offline fixes."""
    settings = tmp_path / "ivysettings.xml"
    settings.write_text(
        f"""<ivysettings><settings defaultResolver="empty"/>
        <resolvers><filesystem name="empty"><artifact pattern="{tmp_path}/repo/[artifact].[ext]"/></filesystem></resolvers>
        </ivysettings>"""
    )
    code = (
        "import json\n"
        "from engine.session import build_spark\n"
        "from engine.errors import EngineError\n"
        "try:\n"
        f"    build_spark('local', {{'spark.master': 'local[1]', 'spark.jars.ivySettings': {str(settings)!r}, 'spark.jars.ivy': {str(tmp_path / 'ivy')!r}}})\n"
        "except EngineError as err:\n"
        "    print(json.dumps({'class': err.error_class, 'message': str(err)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["class"] == "DELTA_JARS"
    assert DELTA_COORDINATE in result["message"]
    assert "spark.jars" in result["message"] and "mvn dependency:get" in result["message"]


@dataclass(frozen=True)
class _Inner:
    window: timedelta
    names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Outer:
    name: str
    inner: _Inner
    parallelism: int = 2
    ratio: float | None = None


def test_config_is_typed_and_rejects_unknown_keys(tmp_path):
    cfg = from_mapping(_Outer, {"name": "x", "inner": {"window": "7d", "names": ["a"]}, "ratio": 1})
    assert cfg.inner.window == timedelta(days=7) and cfg.ratio == 1.0 and cfg.parallelism == 2
    with pytest.raises(ConfigError) as err:
        from_mapping(_Outer, {"name": "x", "inner": {"window": "7d", "windw": 1}})
    assert err.value.params["key"] == "inner.windw"
    with pytest.raises(ConfigError) as err:
        from_mapping(_Outer, {"name": "x", "inner": {"window": "7d"}, "parallelism": "2"})
    assert err.value.params["key"] == "parallelism" and err.value.params["found"] == "'2'"
    with pytest.raises(ConfigError) as err:
        from_mapping(_Outer, {"inner": {"window": "7d"}})
    assert err.value.params["key"] == "name"
    with pytest.raises(ConfigError):
        parse_duration("a week")


def test_yaml_is_data_only_and_missing_files_are_named(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("x: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):
        load_yaml(evil)
    with pytest.raises(ConfigError) as err:
        load_yaml(tmp_path / "missing.yaml")
    assert "missing.yaml" in str(err.value)


def test_overrides_set_nested_keys():
    data = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c=[1, 2]", "d=hello"], source="cli")
    assert data == {"a": {"b": 2, "c": [1, 2]}, "d": "hello"}
    with pytest.raises(ConfigError):
        apply_overrides({}, ["novalue"], source="cli")


def test_every_error_has_a_class_and_params():
    err = JavaError(required=17, found="Java 11", hint="h")
    assert isinstance(err, EngineError) and err.error_class == "JAVA" and err.params["found"] == "Java 11"


def test_packaged_profiles_load_from_a_zip_outside_the_checkout(tmp_path):
    """As on executors and drivers that import the engine from the --py-files zip: the profiles are
    package data, read through importlib.resources, whatever the working directory."""
    import zipfile

    archive = tmp_path / "ff.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (ROOT / "engine").rglob("*"):
            if path.suffix in {".py", ".yaml"} and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(ROOT).as_posix())
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import engine.session as s; "
            "assert s.__file__.startswith(sys.argv[1]), s.__file__; print(s.load_profile('local').master)")
    out = subprocess.run([sys.executable, "-c", code, str(archive)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120, env={k: v for k, v in os.environ.items() if not k.startswith("FF_")})
    assert out.returncode == 0 and out.stdout.strip() == "local[*]", out.stderr[-2000:]


def test_resolved_delta_jars_replace_the_resolution_only_when_every_jar_is_there(tmp_path):
    from engine import delta_jars
    from engine.session import DELTA_COORDINATE

    jars = tmp_path / "jars"
    jars.mkdir()
    files = [jars / "io.delta_delta-spark_4.2_2.13-4.4.0.jar", jars / "io.delta_delta-storage-4.4.0.jar"]
    for f in files:
        f.write_bytes(b"PK")
    base = {"spark.jars.ivy": str(tmp_path), "spark.jars.packages": DELTA_COORDINATE}

    settings = dict(base)
    assert not delta_jars.use_resolved(settings) and settings == base  # no manifest yet: resolve
    delta_jars.manifest(base).write_text("".join(f"file://{f}\n" for f in files))
    settings = dict(base)
    assert delta_jars.use_resolved(settings)
    assert "spark.jars.packages" not in settings and settings["spark.jars"] == ",".join(f"file://{f}" for f in files)
    other = {**base, "spark.jars.packages": f"{DELTA_COORDINATE},org.example:extra:1.0"}
    assert not delta_jars.use_resolved(dict(other))  # another package: Spark resolves them all
    files[1].unlink()
    settings = dict(base)
    assert not delta_jars.use_resolved(settings) and settings == base  # a jar went missing: resolve again


def test_jvm_archive_is_used_only_by_a_local_driver_when_it_exists_for_the_class_path(tmp_path, monkeypatch):
    from engine import jvm_archive

    monkeypatch.delenv("FF_JVM_ARCHIVE", raising=False)
    settings = {"spark.jars.ivy": str(tmp_path), "spark.jars": "/x/delta.jar"}
    archive = jvm_archive.archive_file(settings)
    assert archive is not None and archive.parent == tmp_path / "jars"
    assert jvm_archive.archive_file({**settings, "spark.jars": "/y/delta.jar"}) != archive  # another class path
    assert not jvm_archive.use(dict(settings), "local[2]")  # not written yet: nothing changes
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"x")
    local = dict(settings)
    assert jvm_archive.use(local, "local[2]")
    assert f"-XX:SharedArchiveFile={archive}" in local["spark.driver.extraJavaOptions"]
    assert not jvm_archive.use(dict(settings), "spark://host:7077")  # spark-submit starts that driver
    assert not jvm_archive.use(dict(settings), None)  # under spark-submit
    own = {**settings, "spark.driver.extraJavaOptions": "-Xss4m -XX:SharedArchiveFile=/mine.jsa"}
    assert not jvm_archive.use(own, "local[2]") and own["spark.driver.extraJavaOptions"].endswith("/mine.jsa")
    kept = {**settings, "spark.driver.extraJavaOptions": "-Xss4m"}
    assert jvm_archive.use(kept, "local") and kept["spark.driver.extraJavaOptions"].startswith("-Xss4m -XX:Shared")
    monkeypatch.setenv("FF_JVM_ARCHIVE", "0")
    assert not jvm_archive.use(dict(settings), "local[2]")
