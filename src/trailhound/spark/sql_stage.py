"""Rules' filters as Spark SQL (compile/sql.py's Spark dialect) over a Parquet store read by Spark itself.

The alternative to stage 1's local filters (spark/tasks.py `scan_files`, our Polars code inside each task):
`spark.read.parquet` reads the store, every rule's filters are one boolean column each (the OR of the rule's
filters, event category included) in one pass, and the candidate rows (file, row in the file, the rules they
match) come out. Each rule's SQL selects the rows the Polars backend selects (tests/spark/test_spark_sql.py,
on a real local Spark); bench/spark_sql.py measures it against today's stage 1.

Spark SQL runs with `spark.sql.ansi.enabled=false` (`ansi_off`): Java's wrapping long arithmetic, as
Elasticsearch computes, and a cast that cannot convert gives null rather than failing the job. The reference
functions the SQL calls (cidrMatch, substring, ...) run as Spark Python UDFs (`register_spark_udfs`): the
workers need Trailhound, as stage 1's tasks do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: the columns a candidate row says where it comes from (Spark's Parquet metadata)
FILE_PATH, ROW_INDEX = "_metadata.file_path", "_metadata.row_index"


@dataclass
class SparkFilters:
    """Per rule (its index in the specs), the SQL condition selecting its candidates, or why it has none."""

    wheres: dict[int, str] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)  # rule index → reason (UnsupportedSqlError's)
    udfs: set[str] = field(default_factory=set)  # UDF names the conditions call (register_spark_udfs)
    filters: int = 0  # filters compiled
    filters_with_udfs: int = 0  # of them, how many call a Python UDF


def filter_sql(compiler, f, category_field: str) -> str:
    """One filter (`ir.EventFilter`) as a Spark SQL condition: its event category and its condition."""
    cat = compiler.category(f.category, category_field).sql(compiler.dialect)
    return f"({cat}) AND ({compiler.where(f.condition)})"


def compile_specs(specs: Sequence[Any], schema) -> SparkFilters:
    """Every runnable rule's filters (spark/tasks.py `RuleSpec`s) as one condition per rule."""
    from ..compile.sql import SqlCompiler
    from ..lang import ir
    from ..lang.errors import QueryError
    from ..rules.errors import reason_of

    out = SparkFilters()
    for s in specs:
        if s.error or s.unsupported:
            continue
        category = s.check.rule.event_category_override or "event.category"
        parts = []
        try:
            for f in ir.query_filters(s.query):
                read = {x.path for x in ir.fields_of(f.condition)}
                if dated := sorted(p for p in read if schema.get(p).kind == "date" and not _is_int(schema, p)):
                    raise _refuse(f"reads the date field {dated[0]!r}, stored as text: the local filters parse it")
                compiler = SqlCompiler(schema, "spark")
                parts.append(filter_sql(compiler, f, category))
                out.filters += 1
                out.filters_with_udfs += bool(compiler.udfs)
                out.udfs |= compiler.udfs
        except QueryError as e:
            out.refused[s.index] = reason_of(e)
            continue
        out.wheres[s.index] = " OR ".join(f"({p})" for p in parts)
    return out


def _refuse(reason: str):
    from ..compile.sql import UnsupportedSqlError

    return UnsupportedSqlError(reason)


def _is_int(schema, path: str) -> bool:
    import polars as pl

    return schema.get(path).inner == pl.Int64


def schema_of(struct, es_types: Mapping[str, str] | None = None):
    """Our `Schema` (compile/schema.py) of a Spark DataFrame's columns: the kinds the compiler reads."""
    import polars as pl
    from pyspark.sql import types as T

    from ..compile.schema import FieldInfo, Schema

    def dtype(t):
        if isinstance(t, T.ArrayType):
            inner = dtype(t.elementType)
            return None if inner is None else pl.List(inner)
        if isinstance(t, (T.LongType, T.IntegerType, T.ShortType, T.ByteType)):
            return pl.Int64
        if isinstance(t, (T.DoubleType, T.FloatType)):
            return pl.Float64
        if isinstance(t, T.BooleanType):
            return pl.Boolean
        if isinstance(t, T.StringType):
            return pl.String
        if isinstance(t, T.NullType):
            return pl.Null
        return None

    types = dict(es_types or {"@timestamp": "date"})
    fields = {}
    for f in struct.fields:
        if f.name.startswith("__") or (dt := dtype(f.dataType)) is None:
            continue
        fields[f.name] = FieldInfo(f.name, dt, types.get(f.name))
    return Schema(fields)


def register_spark_udfs(spark, names: Iterable[str]) -> None:
    """Register the UDFs the compiled conditions call (`SparkFilters.udfs`) in the session."""
    from pyspark.sql import functions as SF
    from pyspark.sql import types as T

    from ..compile.sql import reference, udf_function

    spark_types = {"string": T.StringType(), "bool": T.BooleanType(), "int": T.LongType(), "float": T.DoubleType()}
    for udf in sorted(set(names)):
        name, ci, kind = udf_function(udf)
        spark.udf.register(udf, SF.udf(reference(name, ci), spark_types[kind]))


@contextmanager
def ansi_off(spark) -> Iterator[None]:
    """Spark's non-ANSI semantics while our SQL runs (see the module's docstring); the session's setting after."""
    key = "spark.sql.ansi.enabled"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


@contextmanager
def interpreted(spark) -> Iterator[None]:
    """Spark's expressions interpreted, not compiled to Java, while the rules' SQL runs; the session's settings
    after. The rules' conditions are large: Janino spends minutes on each query's generated code, then gives up
    ("method too large") and Spark interprets them anyway, where interpreting them from the start takes seconds."""
    keys = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
    before = {k: spark.conf.get(k, None) for k in keys}
    for k, v in keys.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def flagged(df, wheres: Mapping[int, str], keep: Sequence[str] = ()):
    """`df` with one boolean column per rule (`r<index>`, null read as false), the `keep` columns, and Spark's
    file path and row index of each row: one pass over the data for every rule."""
    cols = [f"`{c}`" for c in keep] + [f"{FILE_PATH} AS __path", f"{ROW_INDEX} AS __index"]
    cols += [f"COALESCE(({w}), FALSE) AS r{i}" for i, w in wheres.items()]
    return df.selectExpr(*cols)


def candidates(df, wheres: Mapping[int, str], keep: Sequence[str] = ()):
    """The rows some rule selects: (`keep` columns, `__path`, `__index`, `__rules`: the indexes of the rules
    that select the row)."""
    if not wheres:
        return None
    rules = ", ".join(f"IF(r{i}, {i}, NULL)" for i in wheres)
    any_rule = " OR ".join(f"r{i}" for i in wheres)
    kept = [f"`{c}`" for c in keep] + ["__path", "__index"]
    return flagged(df, wheres, keep).where(any_rule).selectExpr(*kept, f"filter(array({rules}), x -> x IS NOT NULL)"
                                                                " AS __rules")
