"""Storage faults, in the test's own Spark session: a damaged commit file in ``_delta_log`` and a
disk that fills up while a backfill chunk is written.

For each: nothing lost (the rows committed before are all readable once the fault is gone),
nothing half-written (no new commit, the table at its previous version), a clear
:mod:`engine.errors` error (naming the table, and for the log the version), and a re-run is safe
(it succeeds once the fault is repaired and gives the uninterrupted result).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from engine.errors import CorruptTableError, StorageError
from engine.pipelines import FeaturePipeline, Input
from engine.store import delta
from engine.store.feature_store import FeatureStore
from tests.reliability import _workers as W
from tests.reliability.conftest import delta_version, delta_versions

DAY = timedelta(days=1)


def rows(frame) -> list[tuple]:
    return sorted(tuple(r) for r in frame.collect())


# -- a truncated or corrupt commit file --------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "not json"])
def test_a_damaged_commit_file_is_a_clear_error_and_the_table_is_repairable(spark, tmp_path, damage):
    store = FeatureStore(spark, tmp_path / "store")
    group = store.create_feature_group("events", primary_key="id", event_time="ts", schema=W.INSERT_SCHEMA,
                                       statistics=False)
    for batch in range(3):
        group.insert(W.insert_rows(spark, list(range(batch * 10, batch * 10 + 10)), 0, batch))
    expected = rows(group.read())
    commit = Path(group.path) / "_delta_log" / f"{3:020d}.json"
    backup = tmp_path / "backup.json"
    shutil.copy(commit, backup)
    text = commit.read_text()
    if damage == "truncated":  # a short write: the .crc sidecar no longer matches
        commit.write_text(text[: len(text) // 2])
    else:  # garbage, and no checksum sidecar to catch it
        (commit.parent / f".{commit.name}.crc").unlink()
        commit.write_text("{not json\n")
    before = delta_versions(tmp_path / "store")

    for attempt in range(2):  # the same clear error every time: no crash-loop, no retry storm
        with pytest.raises(CorruptTableError) as err:
            group.insert(W.insert_rows(spark, [100 + attempt], 0, 9))
        assert err.value.params["table"] == group.path and err.value.params["version"] == 3, err.value
        assert f"{3:020d}.json" in str(err.value)
        with pytest.raises(CorruptTableError):
            group.read()
    assert delta_versions(tmp_path / "store") == before  # nothing written anywhere
    assert not (commit.parent / f"{4:020d}.json").exists()

    shutil.copy(backup, commit)  # the operator restores the file
    (commit.parent / f".{commit.name}.crc").unlink(missing_ok=True)
    assert rows(group.read()) == expected  # nothing lost
    group.insert(W.insert_rows(spark, [100], 0, 9))  # the re-run
    assert rows(group.read()) == sorted([*expected, *W.insert_rows(spark, [100], 0, 9).collect()])
    assert [c.delta_version for c in group.commits()] == [1, 2, 3, 4]


# -- disk full while a chunk is written ---------------------------------------------------------


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[dict[str, object]]:
    """A 2 MB tmpfs mounted at ``folder`` (root); ``fill()`` takes all its free space, ``free()``
    gives it back. Without the right to mount, the fault is a read-only directory instead (the
    file system refusing the write for another reason); as root without mount rights, skip."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted and os.geteuid() == 0:
        pytest.skip("cannot mount a tmpfs here, and as root a read-only directory does not refuse writes")
    filler = folder / "filler"

    def fill() -> None:
        if mounted:
            with open(filler, "wb") as out, contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
        else:
            for path in [folder, *folder.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o555)

    def free() -> None:
        if mounted:
            filler.unlink()
        else:
            for path in [folder, *folder.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o755)

    try:
        yield {"fill": fill, "free": free, "kind": "disk full" if mounted else "read-only directory"}
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        else:
            free()


def test_disk_full_while_writing_a_chunk_leaves_the_table_at_its_previous_version(spark, tmp_path):
    store = FeatureStore(spark, tmp_path / "store")
    raw = str(tmp_path / "raw")
    delta.create_table(spark, raw, spark.createDataFrame([], W.EVENTS).schema)
    delta.append(spark, raw, spark.createDataFrame(W.event_rows(users=8, days=3), W.EVENTS))
    with small_disk(Path(store.feature_group_path("sums", 1))) as disk:
        group = store.create_feature_group("sums", primary_key="user", event_time="ts", schema=W.OUTPUT,
                                           statistics=False)
        pipeline = FeaturePipeline("sums", W.rolling_sum, inputs={"events": Input(raw, time_column="ts")},
                                   output=group, lookback=W.WINDOW, step=DAY)
        pipeline.run(W.T0, W.T0 + DAY)
        first_day = rows(group.read())
        disk["fill"]()
        with pytest.raises(StorageError) as err:
            pipeline.run(W.T0, W.T0 + 2 * DAY)
        assert err.value.params["target"] == group.path, err.value
        reason = err.value.params["reason"]
        assert reason == ("no space left on device" if disk["kind"] == "disk full" else "permission denied")
        # nothing half-written: still at the first chunk's commit, its rows intact
        assert delta_version(group.path) == 1 and rows(group.read()) == first_day
        assert [(r["status"], r["delta_version"]) for r in pipeline.progress()] == [("done", 1), ("failed", None)]
        disk["free"]()
        results = pipeline.run(W.T0, W.T0 + 2 * DAY)  # the re-run, space back: resumes at the failed chunk
        assert [r.status for r in results] == ["skipped", "done"]
        reference = store.create_feature_group("reference", primary_key="user", event_time="ts", schema=W.OUTPUT,
                                               statistics=False)
        FeaturePipeline("reference", W.rolling_sum, inputs={"events": Input(raw, time_column="ts")},
                        output=reference, lookback=W.WINDOW, step=DAY).run(W.T0, W.T0 + 2 * DAY)
        assert rows(group.read()) == rows(reference.read())
        assert [c.delta_version for c in group.commits()] == [1, 2]
