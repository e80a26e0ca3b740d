"""The part of Delta's ``DeltaTable`` Python API the engine uses, in SQL and the DataFrame API.

Why: ``delta.tables.DeltaTable`` talks to the JVM through py4j on a classic session and, on a
Spark Connect session (Databricks serverless, shared clusters, ``builder.remote("sc://...")``),
needs Delta's Connect server plugin; without it every call fails with
``[CONNECT_INVALID_PLAN.NO_HANDLER_FOR_EXTENSION] ... delta.connect.DeltaRelation``. SQL on a
``delta.`<path>``` identifier and ``spark.read.format("delta")`` work on both kinds of session.

:func:`delta_table_api` returns the class to use for a session: Delta's own ``DeltaTable`` on a
classic session, :class:`SqlDeltaTable` (same method names, same results) on Spark Connect, so
:mod:`engine.store.delta` keeps one body per operation. Only the calls the engine makes exist:

=====================================================  =====================================================
``DeltaTable`` call                                    SQL / DataFrame API run by :class:`SqlDeltaTable`
=====================================================  =====================================================
``isDeltaTable(spark, path)``                          ``DESCRIBE DETAIL delta.`path``` (missing: False)
``create(spark).location().addColumns()...execute()``  ``CREATE TABLE delta.`path` (...) USING DELTA ...``
``forPath(spark, path).history(n)``                    ``DESCRIBE HISTORY delta.`path` [LIMIT n]``
``.alias("t").merge(df.alias("s"), cond)...execute()`` ``MERGE [WITH SCHEMA EVOLUTION] INTO ... USING {s}``
``.optimize().executeCompaction()``                    ``OPTIMIZE delta.`path```
``.vacuum(hours)``                                     ``VACUUM delta.`path` RETAIN <hours> HOURS``
=====================================================  =====================================================

The merge source is passed with ``spark.sql``'s DataFrame parameters (``spark.sql(q, s=df)``),
which both classic and Connect sessions support; nothing is registered in the catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import InvalidArgumentError
from engine.remote import is_remote

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

__all__ = ["SqlDeltaTable", "delta_table_api", "table_identifier"]

# What Delta answers for a path that holds no Delta table (missing, empty, or other files).
_NOT_A_TABLE = ("DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND", "PATH_NOT_FOUND")


def delta_table_api(spark: SparkSession) -> Any:
    """``delta.tables.DeltaTable`` on a classic session, :class:`SqlDeltaTable` on Spark Connect."""
    if is_remote(spark):
        return SqlDeltaTable
    from delta.tables import DeltaTable

    return DeltaTable


def table_identifier(path: str) -> str:
    """``delta.`<path>``` with embedded backticks doubled."""
    return "delta.`" + str(path).replace("`", "``") + "`"


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(text: str) -> str:
    """A SQL string literal (single quotes and backslashes escaped)."""
    return "'" + str(text).replace("\\", "\\\\").replace("'", "\\'") + "'"


def ddl_type(dtype: DataType) -> str:
    """A Spark SQL type for ``dtype``, nested field names quoted."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    if isinstance(dtype, StructType):
        return "STRUCT<" + ", ".join(_column(f, sep=": ") for f in dtype.fields) + ">"
    if isinstance(dtype, ArrayType):
        return f"ARRAY<{ddl_type(dtype.elementType)}>"
    if isinstance(dtype, MapType):
        return f"MAP<{ddl_type(dtype.keyType)}, {ddl_type(dtype.valueType)}>"
    return dtype.simpleString()


def _column(field: Any, *, sep: str = " ") -> str:
    text = _quote(field.name) + sep + ddl_type(field.dataType)
    if not field.nullable:
        text += " NOT NULL"
    comment = (field.metadata or {}).get("comment")
    if comment:
        text += f" COMMENT {_string(comment)}"
    return text


class SqlDeltaTable:
    """A Delta table at a path, driven through SQL (see the module docs for the call mapping)."""

    def __init__(self, spark: SparkSession, path: str, alias: str | None = None) -> None:
        self._spark = spark
        self._path = str(path)
        self._alias = alias

    @staticmethod
    def isDeltaTable(spark: SparkSession, path: str) -> bool:  # noqa: N802 - DeltaTable's name
        from pyspark.errors import AnalysisException

        try:
            spark.sql(f"DESCRIBE DETAIL {table_identifier(path)}").collect()
        except AnalysisException as err:
            condition = err.getCondition() or ""
            if condition in _NOT_A_TABLE or any(marker in str(err) for marker in _NOT_A_TABLE):
                return False
            raise
        return True

    @classmethod
    def forPath(cls, spark: SparkSession, path: str) -> SqlDeltaTable:  # noqa: N802 - DeltaTable's name
        return cls(spark, path)

    @staticmethod
    def create(spark: SparkSession) -> _CreateBuilder:
        return _CreateBuilder(spark)

    def toDF(self) -> DataFrame:  # noqa: N802 - DeltaTable's name
        return self._spark.read.format("delta").load(self._path)

    def alias(self, name: str) -> SqlDeltaTable:
        return SqlDeltaTable(self._spark, self._path, alias=name)

    def detail(self) -> DataFrame:
        return self._spark.sql(f"DESCRIBE DETAIL {table_identifier(self._path)}")

    def history(self, limit: int | None = None) -> DataFrame:
        query = f"DESCRIBE HISTORY {table_identifier(self._path)}"
        if limit:
            query += f" LIMIT {_positive(limit, 'limit')}"
        return self._spark.sql(query)

    def merge(self, source: DataFrame, condition: str, *, source_alias: str | None = None) -> _MergeBuilder:
        """``source_alias``: the name ``condition`` uses for the source; by default the alias of
        ``source`` (``df.alias("s")`` on Spark Connect), else ``s``."""
        alias = source_alias or _dataframe_alias(source) or "s"
        return _MergeBuilder(self._spark, self._path, self._alias or "t", source, alias, condition)

    def optimize(self) -> _Optimize:
        return _Optimize(self._spark, self._path)

    def vacuum(self, retentionHours: float | None = None) -> DataFrame:  # noqa: N803 - DeltaTable's name
        query = f"VACUUM {table_identifier(self._path)}"
        if retentionHours is not None:
            if retentionHours < 0:
                raise InvalidArgumentError(argument="retentionHours", expected="a number >= 0", found=repr(retentionHours))
            query += f" RETAIN {float(retentionHours)!r} HOURS"
        return self._spark.sql(query)


class _CreateBuilder:
    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark
        self._path: str | None = None
        self._columns: list[str] = []
        self._partitions: list[str] = []
        self._properties: dict[str, str] = {}
        self._comment: str | None = None

    def location(self, path: str) -> _CreateBuilder:
        self._path = str(path)
        return self

    def addColumns(self, schema: StructType) -> _CreateBuilder:  # noqa: N802 - DeltaTable's name
        self._columns.extend(_column(f) for f in schema.fields)
        return self

    def partitionedBy(self, *columns: str) -> _CreateBuilder:  # noqa: N802 - DeltaTable's name
        self._partitions.extend(columns)
        return self

    def property(self, key: str, value: str) -> _CreateBuilder:
        self._properties[str(key)] = str(value)
        return self

    def comment(self, text: str) -> _CreateBuilder:
        self._comment = text
        return self

    def statement(self) -> str:
        if self._path is None or not self._columns:
            raise InvalidArgumentError(argument="create", expected="a location and at least one column",
                                       found=f"location={self._path!r}, {len(self._columns)} column(s)")
        parts = [f"CREATE TABLE {table_identifier(self._path)} ({', '.join(self._columns)}) USING DELTA"]
        if self._partitions:
            parts.append("PARTITIONED BY (" + ", ".join(map(_quote, self._partitions)) + ")")
        if self._comment:
            parts.append(f"COMMENT {_string(self._comment)}")
        if self._properties:
            parts.append("TBLPROPERTIES (" + ", ".join(f"{_string(k)} = {_string(v)}"
                                                      for k, v in self._properties.items()) + ")")
        return " ".join(parts)

    def execute(self) -> SqlDeltaTable:
        self._spark.sql(self.statement()).collect()
        return SqlDeltaTable(self._spark, str(self._path))


class _MergeBuilder:
    def __init__(self, spark: SparkSession, path: str, target: str, source: DataFrame, source_alias: str,
                 condition: str) -> None:
        self._spark = spark
        self._path = path
        self._target = target
        self._source = source
        self._source_alias = source_alias
        self._condition = condition
        self._clauses: list[str] = []
        self._evolve = False

    def whenMatchedUpdateAll(self) -> _MergeBuilder:  # noqa: N802 - DeltaTable's name
        self._clauses.append("WHEN MATCHED THEN UPDATE SET *")
        return self

    def whenNotMatchedInsertAll(self) -> _MergeBuilder:  # noqa: N802 - DeltaTable's name
        self._clauses.append("WHEN NOT MATCHED THEN INSERT *")
        return self

    def whenMatchedDelete(self) -> _MergeBuilder:  # noqa: N802 - DeltaTable's name
        self._clauses.append("WHEN MATCHED THEN DELETE")
        return self

    def withSchemaEvolution(self) -> _MergeBuilder:  # noqa: N802 - DeltaTable's name
        self._evolve = True
        return self

    def statement(self) -> str:
        if not self._clauses:
            raise InvalidArgumentError(argument="merge", expected="at least one WHEN clause", found="none")
        evolve = " WITH SCHEMA EVOLUTION" if self._evolve else ""
        target = _braces(f"{table_identifier(self._path)} AS {_quote(self._target)}")
        on = _braces(f"AS {_quote(self._source_alias)} ON {self._condition} " + " ".join(self._clauses))
        return f"MERGE{evolve} INTO {target} USING {{__ff_source}} {on}"  # {__ff_source}: spark.sql's DataFrame argument

    def execute(self) -> DataFrame:
        result = self._spark.sql(self.statement(), __ff_source=self._source)
        result.collect()
        return result


class _Optimize:
    def __init__(self, spark: SparkSession, path: str) -> None:
        self._spark = spark
        self._path = path

    def executeCompaction(self) -> DataFrame:  # noqa: N802 - DeltaTable's name
        # A command: spark.sql runs it once, eagerly, and returns its (path, metrics) rows.
        return self._spark.sql(f"OPTIMIZE {table_identifier(self._path)}")


def _dataframe_alias(df: Any) -> str | None:
    """The alias a Spark Connect DataFrame was given with ``df.alias(name)``, if any."""
    plan = getattr(df, "_plan", None)
    if type(plan).__name__ == "SubqueryAlias":
        alias = getattr(plan, "_alias", None)
        return str(alias) if alias else None
    return None


def _braces(text: str) -> str:
    """Escape ``{`` and ``}`` for spark.sql's argument formatter."""
    return text.replace("{", "{{").replace("}", "}}")


def _positive(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(argument=argument, expected="an integer >= 1", found=repr(value))
    return value

