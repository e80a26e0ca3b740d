"""The suite's local session and the driver JVM's class archive (engine.jvm_archive) ``make jars``
writes: the JVM was started with it and shares classes from it."""

from __future__ import annotations

import pytest


def test_the_local_session_maps_the_jvm_class_archive_when_make_jars_wrote_it(spark):
    """``make jars`` writes the archive (engine.jvm_archive.build); a local session built after it
    starts its JVM with it and the JVM really shares classes from it."""
    from engine import delta_jars, jvm_archive
    from engine.session import load_profile, spark_settings

    settings = spark_settings(load_profile("local"))
    delta_jars.use_resolved(settings)
    archive = jvm_archive.archive_file(settings)
    if archive is None or not archive.is_file() or not jvm_archive.enabled():
        pytest.skip(f"no JVM class archive at {archive} (make jars writes it)")
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={archive}" in arguments, arguments
    bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
    assert bean.getVMOption("UseSharedSpaces").getValue() == "true"
    assert bean.getVMOption("SharedArchiveFile").getValue() == str(archive)


def test_the_session_merges_shuffle_partitions_into_no_fewer_than_two_tasks_per_core(spark):
    from engine.session import MIN_PARTITIONS

    assert spark.conf.get(MIN_PARTITIONS) == str(2 * spark.sparkContext.defaultParallelism)
