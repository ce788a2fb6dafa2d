"""compile/sql.py's Spark spelling, read as text (no Spark needed: tests/spark/test_spark_sql.py runs it on
Spark against the Polars backend); DuckDB's spelling of the same filters is unchanged."""

import polars as pl
import pytest

from trailhound.compile.schema import FieldInfo, Schema
from trailhound.compile.sql import SqlCompiler, UnsupportedSqlError
from trailhound.lang.parser import parse
from trailhound.rules.errors import UnsupportedError

SCHEMA = Schema({
    "process.name": FieldInfo("process.name", pl.String),
    "process.args": FieldInfo("process.args", pl.List(pl.String)),
    "process.pid": FieldInfo("process.pid", pl.Int64),
    "source.ip": FieldInfo("source.ip", pl.String),
    "@timestamp": FieldInfo("@timestamp", pl.Int64, "date"),
})


def where(query: str, dialect: str) -> tuple[str, SqlCompiler]:
    c = SqlCompiler(SCHEMA, dialect)
    return c.where(parse(query).filter.condition), c


def test_spark_regexes_end_at_the_end_of_the_text():
    """Java's `$` matches before a final line break too; `\\z` only at the end, as Rust's `$`."""
    sql, _ = where('process where process.name regex "s+h" or process.name : "a*b?c"', "spark")
    assert "\\\\z'" in sql and "$'" not in sql
    duck, _ = where('process where process.name regex "s+h"', "duckdb")
    assert duck.endswith("$'), FALSE)") and "\\z" not in duck


def test_spark_case_insensitive_regexes_fold_unicode():
    sql, _ = where('process where process.name regex~ "élodie"', "spark")
    assert "(?siu)" in sql


def test_spark_floats_are_doubles_not_decimals():
    sql, _ = where("process where process.pid * 0.1 != 0.7", "spark")
    assert "CAST('0.1' AS DOUBLE)" in sql and "CAST('0.7' AS DOUBLE)" in sql
    duck, _ = where("process where process.pid * 0.1 != 0.7", "duckdb")
    assert "0.1" in duck and "CAST('0.1'" not in duck


def test_spark_integer_division_is_div():
    sql, _ = where("process where process.pid / 2 == -1", "spark")
    assert " DIV " in sql


def test_udfs_are_recorded_and_refused_inside_an_array_lambda():
    sql, c = where('network where cidrMatch(source.ip, "10.0.0.0/8")', "spark")
    assert c.udfs == {"th_cidrmatch_2"} and "TH_CIDRMATCH_2" in sql
    with pytest.raises(UnsupportedSqlError, match="cidrMatch over the multi-valued field 'process.args'") as e:
        where('process where cidrMatch(process.args, "10.0.0.0/8")', "spark")
    assert isinstance(e.value, UnsupportedError)
    where('process where cidrMatch(process.args, "10.0.0.0/8")', "duckdb")  # DuckDB calls UDFs in lambdas


def test_unknown_dialect():
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        SqlCompiler(SCHEMA, "oracle")


def test_udf_names_read_back_to_their_function():
    """Both backends register a UDF under the name the compiler calls (`udf_name`) by reading it back
    (`udf_function`): every function, arity and case, and the version key."""
    from trailhound.compile.sql import UDF_KINDS, VERSION_KEY_UDF, udf_function, udf_name

    for name, kind in UDF_KINDS.items():
        for ci in (False, True):
            for arity in (1, 2, 16):
                assert udf_function(udf_name(name, arity, ci)) == (name, ci, kind)
    assert udf_function(VERSION_KEY_UDF) == ("version_key", False, "string")
    with pytest.raises(ValueError, match="th_nosuch_2"):
        udf_function("th_nosuch_2")


def test_a_udf_runs_the_reference_function_on_typed_values():
    from trailhound.compile.semantics import version_key
    from trailhound.compile.sql import reference, udf_function

    assert reference("cidrMatch", False)("10.1.2.3", "10.0.0.0/8") is True
    assert reference("indexOf", True)("ABC", "b") == 1 and reference("indexOf", False)("ABC", "b") is None
    assert reference("number", False)("12", None) == 12.0 and isinstance(reference("number", False)("12", None), float)
    assert reference("number", False)("x", None) is None
    assert reference("version_key", False) is version_key
    _, c = where('process where indexOf~(process.name, "a") == 2', "spark")
    assert [udf_function(u) for u in c.udfs] == [("indexOf", True, "int")]
