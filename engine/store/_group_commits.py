"""A feature group's bookkeeping around its Delta commits: the registry's commit rows kept in
agreement with the Delta history, and time travel kept possible for training datasets.

**Registry vs. Delta.** A group's data commit and its registry row are two commits of two tables,
so a process can die between them. Delta's history is the truth: :func:`unrecorded_commits` lists
the group's data commits (MERGE / WRITE) that have no registry row, and :func:`record_commit`,
called after every data commit, records any such gap *in the same registry commit* as the new
row (marked ``metrics["engine.reconciled"] = "true"``, without statistics: the rows a dead process
wrote are not re-read). So after a re-run the data and the registry agree. A writer that records
its own commit after a concurrent writer reconciled it leaves two rows for one version: readers
prefer the writer's own row (:meth:`engine.store.registry.Registry.commits`).

**Time travel for training datasets.** Delta bounds time travel twice: it refuses to read a
version older than ``delta.deletedFileRetentionDuration`` (7 days by default), and when it
writes a checkpoint it deletes log files older than ``delta.logRetentionDuration`` (30 days).
Either would make a training dataset unrebuildable after a week or a month. When a dataset is
registered, :func:`protect_time_travel` sets on each source group both retentions to
``PROTECTED_RETENTION`` (10 years) and turns expired-log clean-up off (marked
``engine.timeTravelProtected``); :func:`check_time_travel` (before every write of a group)
refuses to write when someone shortened them or turned clean-up back on, naming the datasets.
Data files are guarded by :meth:`engine.store.feature_group.FeatureGroup.vacuum`. (With the
retention at 10 years, Delta's own retention check refuses a shorter VACUUM retention unless the
session turns ``spark.databricks.delta.retentionDurationCheck.enabled`` off.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError, NotFoundError
from engine.store import _delta_log, delta
from engine.store.registry import Commit, as_utc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.store.feature_group import FeatureGroup
    from engine.store.statistics import ColumnStatistics

log = logging.getLogger("engine.store.feature_group")

DATA_OPERATIONS = ("MERGE", "WRITE")
VACUUM_MARGIN = timedelta(seconds=10)
CLEANUP = "delta.enableExpiredLogCleanup"
PROTECTED = "engine.timeTravelProtected"
PROTECTED_RETENTION = timedelta(days=3650)
RETENTIONS = {"delta.deletedFileRetentionDuration": timedelta(days=7), "delta.logRetentionDuration": timedelta(days=30)}
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}
RECONCILED = "engine.reconciled"


def _commit(group: FeatureGroup, entry: Mapping[str, Any], **extra: str) -> Commit:
    metrics = {k: str(v) for k, v in (entry["operationMetrics"] or {}).items()} | extra
    # rows of the batch: a MERGE's source rows; a WRITE's output rows minus the stored rows it
    # only copied (a replaceWhere rewrites a file that also holds rows outside its range)
    rows = int(metrics.get("numSourceRows", int(metrics.get("numOutputRows", "0")) - int(metrics.get("numCopiedRows", "0"))))
    return Commit(
        feature_group=group.name, version=group.version, delta_version=int(entry["version"]),
        operation=entry["operation"], rows=rows,
        timestamp=as_utc(entry["timestamp"]), metrics=metrics,
    )


def commit_entry(spark: SparkSession, path: str, version: int) -> dict[str, Any]:
    """One commit's entry as :func:`history` gives it (without a Spark job on classic sessions)."""
    entry = _delta_log.commit_entry(spark, path, version)
    if entry is not None:
        return entry
    found = next((h for h in delta.history(spark, path) if h["version"] == version), None)
    if found is None:
        raise NotFoundError(kind="Delta commit", name=f"{path} version {version}", hint="")
    return found


def rows_written(spark: SparkSession, path: str, version: int, *, otherwise: DataFrame) -> int:
    """The rows commit ``version`` wrote (Delta's ``numOutputRows``: no job), or, if the commit
    does not say, ``otherwise.count()`` (the caller's frame of exactly those rows)."""
    rows = (commit_entry(spark, path, version).get("operationMetrics") or {}).get("numOutputRows")
    return otherwise.count() if rows is None else int(rows)


def unrecorded_commits(group: FeatureGroup, history: Sequence[Mapping[str, Any]] | None = None) -> list[Commit]:
    """The group's Delta data commits that the registry has no row for, oldest first."""
    entries = delta.history(group.store.spark, group.path) if history is None else history
    recorded = group.store.registry.recorded_versions(group.name, group.version)
    return [_commit(group, h, **{RECONCILED: "true"}) for h in entries
            if h["operation"] in DATA_OPERATIONS and int(h["version"]) not in recorded]


def record_commit(
    group: FeatureGroup, delta_version: int, statistics: list[ColumnStatistics] | None, *, known: int | None,
    extra: Mapping[str, str] | None = None,
) -> Commit:
    """Record commit ``delta_version`` (plus any unrecorded earlier data commit) in one registry commit.

    ``known`` is the last version this process recorded for the group: when the new commit is
    the next one, no gap can exist and the registry is not read.
    """
    spark = group.store.spark
    gap_possible = known is None or delta_version != known + 1
    missing = []
    if gap_possible:
        entries = delta.history(spark, group.path)
        entry = next(h for h in entries if h["version"] == delta_version)
        missing = [c for c in unrecorded_commits(group, entries) if c.delta_version < delta_version]
    else:
        entry = commit_entry(spark, group.path, delta_version)
    commit = _commit(group, entry, **dict(extra or {}))
    group.store.registry.record_commits([*[(c, None) for c in missing], (commit, statistics)])
    return commit


def _duration(text: str | None, default: timedelta) -> timedelta | None:
    """A Delta interval property ('interval 7 days', '30 days') as a timedelta; None if unreadable."""
    if text is None:
        return default
    words = text.lower().replace("interval", " ").split()
    if len(words) % 2:
        return None
    total = 0.0
    for number, unit in zip(words[::2], words[1::2], strict=True):
        factor = _UNITS.get(unit.rstrip("s"))
        if factor is None or not number.isdigit():
            return None
        total += int(number) * factor
    return timedelta(seconds=total)


def _weak_settings(properties: Mapping[str, str]) -> dict[str, str]:
    """The settings of a group that no longer keep its old versions readable (name -> found)."""
    weak = {}
    if properties.get(CLEANUP, "true").lower() != "false":
        weak[CLEANUP] = properties.get(CLEANUP, "true (the default)")
    for key, default in RETENTIONS.items():
        found = _duration(properties.get(key), default)
        if found is None or found < PROTECTED_RETENTION:
            weak[key] = properties.get(key, f"{default.days} days (the default)")
    return weak


def protect_time_travel(group: FeatureGroup) -> None:
    """Keep the group's old versions readable (retentions, no log clean-up), in one commit unless already so."""
    properties = delta.check_log(group.store.spark, group.path)
    if properties.get(PROTECTED) == "true" and not _weak_settings(properties):
        return
    interval = f"interval {PROTECTED_RETENTION.days} days"
    delta.set_properties(group.store.spark, group.path, {**dict.fromkeys(RETENTIONS, interval), CLEANUP: "false",
                                                         PROTECTED: "true"})


def check_time_travel(group: FeatureGroup, properties: Mapping[str, str]) -> None:
    """Refuse a write of a protected group whose settings would let Delta break its old versions."""
    if properties.get(PROTECTED) != "true":
        return
    weak = _weak_settings(properties)
    protected = group.protected_versions() if weak else {}
    if not protected:
        return
    names = ", ".join(f"{name} (Delta version {version})" for name, version in sorted(protected.items()))
    key, found = next(iter(weak.items()))
    raise InvalidArgumentError(
        argument=f"{key} of {group.node_name}",
        expected=("'false'" if key == CLEANUP else f"at least {PROTECTED_RETENTION.days} days")
        + f" while training datasets were built from it: {names}",
        found=repr(found),
        hint=("Nothing was written. Delta refuses time travel beyond delta.deletedFileRetentionDuration and deletes "
              "log files older than delta.logRetentionDuration at checkpoints: those versions would become "
              f"unreadable. Set {', '.join(weak)} back (ALTER TABLE ... SET TBLPROPERTIES), or delete the datasets."),
    )


def vacuum(group: FeatureGroup, retention: timedelta) -> None:
    """VACUUM the group, unless ``retention`` would delete files of a protected version.

    VACUUM deletes files removed from the table before ``now - retention`` (Delta's own clock,
    hence the clock read here). A version stays readable while every commit after it is newer
    than that cutoff, so the retention must exceed the age of the oldest protected version's
    commit, plus ``VACUUM_MARGIN`` for the time between this check and Delta's.
    """
    if not isinstance(retention, timedelta) or retention < timedelta(0):
        raise InvalidArgumentError(argument="retention", expected="a timedelta >= 0", found=repr(retention))
    protected = group.protected_versions()
    if protected:
        dataset, oldest = min(protected.items(), key=lambda item: item[1])
        committed = next(as_utc(h["timestamp"]) for h in delta.history(group.store.spark, group.path)
                         if h["version"] == oldest)
        needed = datetime.now(UTC) - committed + VACUUM_MARGIN  # Delta's VACUUM reads the clock too
        if retention < needed:
            raise InvalidArgumentError(
                argument="retention", expected=f"at least {needed} to keep Delta version {oldest} of "
                f"{group.node_name}, which training dataset {dataset} was built from", found=repr(retention),
                hint="Nothing was deleted. Delete the training dataset first, or keep a longer retention.",
            )
    delta.vacuum(group.store.spark, group.path, retention=retention)
    log.info("%s: vacuumed with retention %s (protected versions: %s)", group.node_name, retention, protected)
