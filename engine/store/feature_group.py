"""A feature group: a versioned Delta table of feature rows keyed by (primary key, event time).

Every write -- :meth:`FeatureGroup.insert` (upsert) or :meth:`FeatureGroup.replace_range`
(replace one time range, for pipelines) -- is one Delta commit, preceded by checks that read only
the schema or run one aggregation, so bad input is refused before anything is written:

* the data's columns and types must be the group's (a :class:`SchemaMismatchError` names the
  column, the expected and the found type); new columns only with ``evolve_schema=True``;
* no NULL primary key or event time, no two rows with the same (key, event time) -- unless the
  group has a ``tie_breaker`` column, in which case the row with the greatest tie breaker wins:
  within the batch, and for ``insert`` also against the row already stored (``replace_range``
  deletes the stored rows of its range, so they take no part) (:class:`PrimaryKeyError`);
* for ``replace_range``, every row inside the range;
* the expectation suite, if one is attached: policy ``reject`` raises
  :class:`ValidationFailedError` and writes nothing; ``quarantine`` writes the passing rows and,
  only once that commit succeeded, upserts the failing rows (with the names of the expectations
  they failed) into the group's quarantine table on (primary key, event time). Dying between the
  two leaves the passing rows committed and the refused ones not yet quarantined; re-running the
  batch (a pipeline re-runs the chunk: it is logged done after both) quarantines them once.
* the log: a corrupt commit file is a :class:`~engine.errors.CorruptTableError`; a group a
  training dataset was built from must keep its old log (see :mod:`engine.store._group_commits`).

Maintenance: :meth:`FeatureGroup.compact` (``OPTIMIZE``) and :meth:`FeatureGroup.vacuum`
(``VACUUM``, refusing a retention that would break time travel to a version a registered
training dataset was built from).

After the commit, the commit is recorded in the registry (with any earlier data commit a dead
process left unrecorded, see :meth:`FeatureGroup.unrecorded_commits`) and statistics of the written
rows are computed (two Spark passes, or from the Arrow rows of a small batch) and stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, wait
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError, ValidationFailedError
from engine.store import _group_commits, _local_group_write, delta
from engine.store._beside import beside
from engine.store._key_check import check_keys, resolve_ties
from engine.store._owned_tables import upsert_frame
from engine.store.bucketing import BUCKET_COLUMN, bucketed_source, layout_of, with_bucket
from engine.store.names import check_names
from engine.store.registry import Commit, Entity, Node, as_utc
from engine.store.statistics import ColumnStatistics, compute_statistics, statistics_of_rows
from engine.temporal.ranges import TimeRange

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

    from engine.store.feature_store import FeatureStore
    from engine.temporal.layout import BucketedSource

__all__ = ["FeatureGroup"]

log = logging.getLogger(__name__)

ROWS_PER_FILE = 1_000_000
"""A write coalesces its rows into about this many per task (so per file and bucket): a pipeline
chunk of 1,200 rows aggregated over 200 shuffle partitions was 119 files, one per partition."""

class FeatureGroup:
    """A handle on one version of a feature group; get one from :class:`~engine.store.FeatureStore`."""

    def __init__(
        self,
        store: FeatureStore,
        *,
        name: str,
        version: int,
        schema: StructType,
        primary_key: Sequence[str],
        event_time: str,
        partition_by: Sequence[str] = (),
        description: str = "",
        tags: Sequence[str] = (),
        tie_breaker: str | None = None,
        expectations: Any = None,
        statistics: bool = True,
        buckets: int | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.version = version
        self.schema = schema
        self.primary_key = list(primary_key)
        self.event_time = event_time
        self.partition_by = list(partition_by)
        self.description = description
        self.tags = list(tags)
        self.tie_breaker = tie_breaker
        # An engine.validation ExpectationSuite, or its dict form (built on first use: building
        # imports Great Expectations, which a plain read of the group should not pay for).
        self._expectations = expectations
        self.compute_statistics = statistics
        self.buckets = buckets  # the table's layout at creation (engine.store.bucketing); None: none
        self.path = store.feature_group_path(name, version)
        self.quarantine_path = store.quarantine_path(name, version)
        self._recorded_through: int | None = None  # the last Delta version this object recorded

    def __repr__(self) -> str:
        return f"FeatureGroup({self.name!r}, version={self.version}, primary_key={self.primary_key}, event_time={self.event_time!r})"

    @property
    def expectations(self) -> Any:
        """The attached ``engine.validation.ExpectationSuite``, or None."""
        if isinstance(self._expectations, dict):
            from engine.validation import ExpectationSuite

            self._expectations = ExpectationSuite.from_dict(self._expectations, source=f"registry: {self._target}")
        return self._expectations

    @property
    def node(self) -> Node:
        """This group as a lineage node."""
        return Node("feature_group", self.name, self.version)

    @property
    def keys(self) -> list[str]:
        """The row identity: primary key columns and the event time."""
        return [*self.primary_key, self.event_time]

    @property
    def features(self) -> list[str]:
        """The feature columns: every column except the keys, the event time and the tie breaker."""
        skip = {*self.keys, self.tie_breaker}
        return [f.name for f in self.schema.fields if f.name not in skip]

    @property
    def _target(self) -> str:
        return f"feature group {self.name} v{self.version}"

    # -- reading -------------------------------------------------------------------------------

    def read(self, *, as_of_version: int | None = None, as_of_timestamp: datetime | None = None) -> DataFrame:
        """The group's rows, now or as of a Delta version or a (timezone-aware) timestamp (a log
        Delta cannot replay is a :class:`~engine.errors.CorruptTableError`, raised here)."""
        if as_of_version is None and as_of_timestamp is None:
            delta.check_log(self.store.spark, self.path)
        frame = delta.read(self.store.spark, self.path, version=as_of_version, timestamp=as_of_timestamp)
        return frame.drop(BUCKET_COLUMN) if BUCKET_COLUMN in frame.columns else frame

    def lookup_source(self, delta_version: int, *, names: Mapping[str, str] | None = None) -> BucketedSource | None:
        """Delta version ``delta_version`` of this group as a source a lookup can read one hash
        bucket per task (no shuffle of the features), or None where only the Spark read works
        (see :mod:`engine.store.bucketing`). ``names``: lookup column -> group column."""
        if self.buckets is None:
            return None
        return bucketed_source(self.store.spark, self.path, version=delta_version,
                               properties=delta.check_log(self.store.spark, self.path), partition_by=self.partition_by,
                               names=names, description=f"{self.node_name} at Delta version {delta_version}")

    def delta_version(self) -> int:
        """The current Delta version of the group's table."""
        return delta.current_version(self.store.spark, self.path)

    def commits(self) -> list[Commit]:
        """Every recorded commit of this group, oldest first."""
        return self.store.registry.commits(self.name, self.version)

    def unrecorded_commits(self) -> list[Commit]:
        """Delta data commits of this group without a registry row (a process died between the
        two); the next write records them."""
        return _group_commits.unrecorded_commits(self)

    def statistics(self, delta_version: int | None = None) -> dict[str, ColumnStatistics]:
        """Column statistics of the rows written by one commit (the latest by default), by column."""
        return {s.column: s for s in self.store.registry.statistics(self.name, self.version, delta_version)}

    def quarantine(self) -> DataFrame | None:
        """Rows refused by the ``quarantine`` policy, with ``_failed_expectations``; None if none yet."""
        if not delta.table_exists(self.store.spark, self.quarantine_path):
            return None
        return delta.read(self.store.spark, self.quarantine_path)

    def validation_reports(self) -> DataFrame | None:
        """Stored validation reports of this group, oldest first (see :func:`engine.validation.list_reports`)."""
        from engine.validation import list_reports

        path = self.store.validation_reports_path
        if not delta.table_exists(self.store.spark, path):
            return None
        return list_reports(self.store.spark, path, target=self.node_name)

    @property
    def node_name(self) -> str:
        """``name@vN``: how reports and logs name this group."""
        return f"{self.name}@v{self.version}"

    # -- writing -------------------------------------------------------------------------------

    def insert(self, df: DataFrame, *, evolve_schema: bool = False) -> Commit:
        """Upsert ``df`` on (primary key, event time) in one Delta commit; return the commit.

        Rows whose (key, event time) already exists replace the stored row, others are added.
        With ``evolve_schema=True`` new columns are added to the group (existing rows get NULL);
        columns can never be dropped or change type.
        """
        return self._write(df, time_range=None, evolve_schema=evolve_schema)

    def replace_range(self, df: DataFrame, time_range: TimeRange) -> Commit:
        """Replace exactly the rows with event time in ``time_range`` by ``df``, in one commit.

        Idempotent: the same data for the same range gives the same table. Every row of ``df``
        must have its event time in the range. Used by feature pipelines, one commit per chunk.
        """
        if not isinstance(time_range, TimeRange):
            raise InvalidArgumentError(argument="time_range", expected="an engine TimeRange", found=repr(time_range))
        return self._write(df, time_range=time_range, evolve_schema=False)

    def _write(self, df: DataFrame, *, time_range: TimeRange | None, evolve_schema: bool) -> Commit:
        from pyspark import StorageLevel
        from pyspark.sql import DataFrame as SparkDataFrame

        if not isinstance(df, SparkDataFrame):
            raise InvalidArgumentError(argument="df", expected="a Spark DataFrame", found=type(df).__name__)
        new_columns = self._check_schema(df, evolve_schema=evolve_schema)
        cached = df.select(*[delta.quote_identifier(c) for c in [*self.schema.fieldNames(), *new_columns]])
        cached = cached.persist(StorageLevel.MEMORY_AND_DISK)  # checks, validation, write, statistics: one evaluation
        data = cached
        statistics: Any = None
        pending: list[Future[Any]] = []  # jobs beside the write: ended before the rows are dropped
        try:
            spark = self.store.spark
            properties = delta.check_log(spark, self.path)
            _group_commits.check_time_travel(self, properties)
            if self.tie_breaker:
                least, greatest, count = self._check_keys(data, time_range)
                data = self._resolve_ties(data, against_stored=time_range is None)
                data, quarantined, report = self._validate(data)
            else:  # the key check (no side effect) runs beside the validation of the same rows
                checked = beside(spark, self._check_keys, data, time_range)
                pending.append(checked)
                try:
                    data, quarantined, report = self._validate(data, keys_checked=checked)
                except BaseException:
                    checked.result()  # a key error comes first, as when the check ran before
                    raise
                least, greatest, count = checked.result()
            layout = layout_of(properties)  # the table's own record of its layout
            rows = data.coalesce(max(1, -(-count // ROWS_PER_FILE)))  # not a file per shuffle partition
            rows = rows if layout is None else with_bucket(rows, *layout, self.partition_by, self.event_time)
            within = ((self.event_time, as_utc(least), as_utc(greatest))
                      if isinstance(least, datetime) and isinstance(greatest, datetime) else None)
            local = None if new_columns else _local_group_write.write(
                spark, self.path, rows, primary_key=self.primary_key, event_time=self.event_time,
                time_range=time_range, within=within, count=count)  # a small batch: no Spark MERGE
            if local is not None:  # (version, the rows as Arrow): their statistics without a job
                version = local[0]
                statistics = statistics_of_rows(data, local[1]) if self.compute_statistics else None
            else:
                if self.compute_statistics:  # the rows are final: their statistics run beside the write
                    statistics = beside(spark, compute_statistics, data)
                    pending.append(statistics)
                version = (delta.upsert(spark, self.path, rows, keys=self.keys, merge_schema=bool(new_columns),
                                        log_checked=True, within=within)
                           if time_range is None else delta.replace_range(
                               spark, self.path, rows, column=self.event_time, time_range=time_range, log_checked=True))
                statistics = None if statistics is None else statistics.result()
            commit = self._record(version, statistics)
            if quarantined is not None:
                self._quarantine(quarantined, report)
            if report is not None:
                self._store_report(report, version)
            if new_columns:
                self._evolve(new_columns)
            log.info("%s: committed Delta version %d (%s, %d rows)", self._target, version, commit.operation, commit.rows)
            return commit
        finally:
            wait(pending)
            cached.unpersist()

    # -- maintenance ---------------------------------------------------------------------------

    def compact(self) -> dict[str, Any]:
        """Rewrite small files into few large ones (Delta ``OPTIMIZE``), one commit; rows unchanged."""
        metrics = delta.optimize(self.store.spark, self.path)
        log.info("%s: compacted %s file(s) into %s", self._target, metrics.get("numFilesRemoved"),
                 metrics.get("numFilesAdded"))
        return metrics

    def protected_versions(self) -> dict[str, int]:
        """Delta versions of this group that registered training datasets were built from
        (``"<view>_v<n>#<dataset version>" -> Delta version``): time travel to them must keep working."""
        key = f"{self.name}:v{self.version}"
        found = {}
        for entity in self.store.registry.entities(kind="training_dataset"):
            version = (entity.definition.get("source_versions") or {}).get(key)
            if version is not None:
                found[f"{entity.name}_{entity.parent}#{entity.version}"] = int(version)
        return found

    def vacuum(self, retention: timedelta) -> None:
        """Delete files older than ``retention`` (Delta ``VACUUM``, rounded up to whole hours),
        refusing a retention that would break time travel to a version a registered training
        dataset needs (the dataset, the version and the retention needed are named; nothing is
        deleted). See :func:`engine.store._group_commits.vacuum`."""
        _group_commits.vacuum(self, retention)

    # -- checks (schema only, or one aggregation; nothing written yet) --------------------------

    def _check_schema(self, df: DataFrame, *, evolve_schema: bool) -> list[str]:
        """Raise on missing columns or wrong types (and extra columns unless evolving); return new columns."""
        delta.check_schema(df.schema, self.schema, target=self._target, allow_extra=evolve_schema)
        new = [c for c in df.columns if c not in self.schema.fieldNames()]
        return check_names(new, argument="df (new column)")

    def _check_keys(self, data: DataFrame, time_range: TimeRange | None) -> tuple[Any, Any, int]:
        """One aggregation: NULL keys, duplicate (key, event time) rows, rows outside ``time_range``;
        returns the least and greatest event time of ``data`` and its row count."""
        return check_keys(data, self.primary_key, self.event_time, self.tie_breaker, time_range, target=self._target)

    def _resolve_ties(self, data: DataFrame, *, against_stored: bool) -> DataFrame:
        """Per (key, event time) the row with the greatest tie breaker (see :func:`resolve_ties`)."""
        return resolve_ties(data, self.keys, self.tie_breaker or "", self.read() if against_stored else None)

    def _validate(self, data: DataFrame, *, keys_checked: Future[Any] | None = None) -> tuple[DataFrame, DataFrame | None, Any]:
        """Run the attached suite before the write; return the rows to write, the rows to
        quarantine after the write (None if none) and the report. ``keys_checked``: the key check
        running beside; its error comes first (a batch with bad keys stores no report).

        ``reject``: a failing batch raises :class:`ValidationFailedError` (its report stored).
        ``quarantine``: failing rows are set aside, the rest returned; a failing table-level
        expectation still rejects the batch (see :func:`engine.validation.split_by_suite`).
        """
        suite = self.expectations
        if suite is None:
            return data, None, None
        from engine import validation

        try:
            if suite.policy == "reject":
                report = validation.validate(data, suite, key_columns=self.keys)
                report.raise_if_failed(target=self._target)
                return data, None, report
            passing, quarantined, report = validation.split_by_suite(data, suite, key_columns=self.keys, target=self._target)
        except ValidationFailedError as err:
            if keys_checked is not None:
                keys_checked.result()  # raises the key check's error, if any
            if err.params.get("report") is not None:
                self._store_report(err.params["report"], self.delta_version())
            raise
        return passing, (quarantined if report.quarantined_rows else None), report

    def _quarantine(self, quarantined: DataFrame, report: Any) -> None:
        """Upsert the refused rows of a committed batch on (key, event time): a re-run writes them once."""
        upsert_frame(self.store.spark, self.quarantine_path, quarantined, keys=self.keys, rows=report.quarantined_rows)
        log.warning("%s: %d row(s) quarantined in %s", self._target, report.quarantined_rows, self.quarantine_path)

    def _store_report(self, report: Any, target_version: int) -> None:
        from engine.validation import store_report

        store_report(self.store.spark, self.store.validation_reports_path, report, target=self.node_name,
                     target_version=target_version)

    # -- bookkeeping after the commit ---------------------------------------------------------

    def _record(self, delta_version: int, statistics: list[ColumnStatistics] | None) -> Commit:
        commit = _group_commits.record_commit(self, delta_version, statistics, known=self._recorded_through)
        self._recorded_through = delta_version
        return commit

    def _suite_definition(self) -> dict[str, Any] | None:
        if self._expectations is None or isinstance(self._expectations, dict):
            return self._expectations
        return dict(self._expectations.to_dict())

    def _evolve(self, new_columns: list[str]) -> None:
        self.schema = delta.read(self.store.spark, self.path).drop(BUCKET_COLUMN).schema
        self.store._register_group(self)
        log.info("%s: schema evolved, new columns %s", self._target, new_columns)

    def to_entities(self) -> list[Entity]:
        """The registry rows of this group and its features."""
        definition = {
            "primary_key": self.primary_key, "event_time": self.event_time, "partition_by": self.partition_by,
            "tie_breaker": self.tie_breaker, "schema": self.schema.jsonValue(), "path": self.path,
            "statistics": self.compute_statistics, "expectations": self._suite_definition(), "buckets": self.buckets,
        }
        group = Entity(
            kind="feature_group", name=self.name, version=self.version, description=self.description,
            tags=tuple(self.tags), definition=definition,
        )
        features = [
            Entity(
                kind="feature", name=f.name, version=self.version, parent=self.name,
                description=str(f.metadata.get("comment", "")), tags=tuple(self.tags),
                data_type=f.dataType.simpleString(),
            )
            for f in self.schema.fields
            if f.name in self.features
        ]
        return [group, *features]
