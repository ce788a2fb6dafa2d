"""The Polars and SQL (DuckDB) backends must select the same events for every filter."""

import duckdb
import polars as pl
import pytest
from test_semantics import DOCS

from trailhound.compile.polars import PolarsCompiler
from trailhound.compile.schema import Schema
from trailhound.compile.sql import SqlCompiler, register_udfs
from trailhound.engine.filter.frame import FrameOptions, prepare
from trailhound.engine.search import needed_fields
from trailhound.lang import ir
from trailhound.lang.errors import QueryError
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

import es_eql

_CON = None


def _connection():
    global _CON
    if _CON is None:  # registering the UDFs once keeps this test fast
        _CON = duckdb.connect()
        register_udfs(_CON)
    return _CON


def both(query: ir.Query, frame: pl.DataFrame, options: FrameOptions):
    """Per filter of the query: (rows by Polars, rows by DuckDB), or None where SQL declines."""
    lf, types = prepare(frame, options, set(needed_fields(query, options)))
    prepared = lf.collect()
    schema = Schema.of_frame(prepared, types)
    pc, sc = PolarsCompiler(schema), SqlCompiler(schema)
    con = _connection()
    con.register("events", prepared.to_arrow())
    out = []
    for f in ir.query_filters(query):
        want = prepared.filter((pc.category(f.category, options.event_category_field) & pc.predicate(f.condition))
                               .fill_null(False))["__row"].to_list()
        try:
            where = f"({sc.category(f.category, options.event_category_field).sql('duckdb')}) AND ({sc.where(f.condition)})"
        except QueryError as e:
            out.append((want, None, str(e)))
            continue
        got = [r[0] for r in con.sql(f'SELECT "__row" FROM events WHERE {where} ORDER BY "__row"').fetchall()]
        out.append((sorted(want), got, where))
    return out


FIXTURE_QUERIES = [
    'process where process.name == "ssh"', 'process where process.name : "SS?"', 'process where process.name like~ "S*"',
    'process where process.name regex~ "s+h"', 'process where process.name in~ ("SSH", "cp")',
    'process where process.args : ("-i", "*key*")', 'process where process.args != "-i"',
    'process where not process.pid > 5', 'process where process.pid / 2 == -1 or process.pid % 2 == -1',
    'process where not startsWith(process.name, "s")', 'process where process.args == null',
    'process where length(process.args) == 2', 'process where concat(process.name, "-", process.pid) : "ssh-*"',
    'process where null == (process.pid > 5)', 'process where stringContains~(process.name, "SH")',
    'any where file.path : "*/.ssh/*" and not process.name in ("sh", "bash")',
    'process where between(process.name, "s", "h") == "s" or indexOf~(process.name, "H") == 2',
    'process where substring(process.name, -2) == "sh" and number(string(process.pid)) > 0',
    # or-chains folded into one membership test (and patterns into one Match), negated too
    'process where process.pid == 10 or process.pid == -3 or process.name == "cp" or process.pid == "7"',
    'process where not (process.args == "-i" or process.args == "cp" or process.args : "ss*" or process.args : "*ey")',
    'process where process.pid in (10.0, 7.5, 18446744073709551616) or process.pid < -18446744073709551616',
    'process where process.pid < 18446744073709551616 and nosuch.field not in (1, 2)',
    # constants compared with constants fold alike in both backends
    'process where 0 != "" or "b" > "a" and 1.5 >= 1 and "10" == 10',
]


@pytest.mark.parametrize("query", FIXTURE_QUERIES)
def test_backends_agree_on_fixtures(query):
    for want, got, where in both(parse(query), events_from_documents(DOCS).frame, FrameOptions()):
        assert got is not None, where
        assert got == want, where


@pytest.mark.skipif(not es_eql.available(), reason="ES EQL suite not found (../shared absent)")
def test_backends_agree_on_the_es_suite():
    compared = declined = 0
    reasons = set()
    for cls, spec in es_eql.all_cases():
        table, types, aliases = es_eql.dataset(cls.name)
        options = FrameOptions(tiebreaker_field=cls.tiebreaker, es_types=types, aliases=aliases)
        for want, got, where in both(parse(spec.query), table.frame, options):
            if got is None:
                declined += 1
                reasons.add(where.splitlines()[0])
                continue
            compared += 1
            assert got == want, f"{spec.file}::{spec.name}: {where}"
    assert declined == 0, reasons
    assert compared > 700


#: date strings in many layouts, for the Sigma time parts: both backends read them with compile/dates.py
TIME_STRINGS = ["2026-01-01T02:30:00+05:00", "2026-01-01T02:30:00", "2026-01-01 02:30:00", "2026-01-01",
                "2026-01-01T02:30:00.123456789Z", "2020-12-31T23:59:59-01:00", "2021-01-03T12:00:00+0530",
                "1609459200000", "  1609459200000 ", "-1", "1969-12-31T23:59:59.9999Z", "not a date", "", "12:30",
                "2026-02-30T00:00:00Z", "+10000-01-01T00:00:00Z", None]


@pytest.mark.parametrize("part", ["minute", "hour", "day", "week", "month", "year"])
def test_backends_agree_on_time_parts(part):
    docs = [{"@timestamp": 1_700_000_000_000, "event": {"category": "process"}, "custom": {"when": w}}
            for w in TIME_STRINGS]
    docs += [{"@timestamp": t, "event": {"category": "process"}} for t in
             ("2020-12-31T23:30:00-01:00", "1969-12-31T23:59:59.999Z", "2021-01-03T00:00:00Z")]
    frame = events_from_documents(docs).frame
    seen = 0
    for field in ("custom.when", "@timestamp"):
        call = ir.Call(ir.TIME_PART, (ir.Field(field), ir.Literal(part)))
        for value in range(1965, 2030) if part == "year" else range(0, 60):
            query = ir.EventQuery(ir.EventFilter(None, ir.Compare("==", call, ir.Literal(value))))
            [(want, got, where)] = both(query, frame, FrameOptions())
            assert got == want, where
            seen += len(want)
        absent = ir.EventQuery(ir.EventFilter(None, ir.IsNull(call)))
        [(want, got, where)] = both(absent, frame, FrameOptions())
        assert got == want, where
    assert seen > 0


def test_backends_agree_on_time_parts_of_multi_valued_fields():
    """Any value of a list matches, as Elasticsearch's term on a multi-valued field does."""
    docs = [{"@timestamp": 1, "event": {"category": "process"}, "custom": {"when": w}} for w in
            (["2026-01-01T02:30:00+05:00", "not a date"], ["2026-01-01T02:30:00Z"], [], ["x"], None)]
    frame = events_from_documents(docs).frame
    call = ir.Call(ir.TIME_PART, (ir.Field("custom.when"), ir.Literal("hour")))
    rows = {}
    for hour in (2, 21, 3):
        [(want, got, where)] = both(ir.EventQuery(ir.EventFilter(None, ir.Compare("==", call, ir.Literal(hour)))),
                                    frame, FrameOptions())
        assert got == want, where
        rows[hour] = want
    assert rows == {2: [1], 21: [0], 3: []}
