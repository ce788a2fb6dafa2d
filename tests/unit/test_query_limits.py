"""Hostile queries end in a QueryError that names the spot, or in the right result: never a
traceback, never minutes of work on two events (issue 15, "Queries never crash or explode")."""

import time

import duckdb
import pytest

from trailhound.compile import functions as F
from trailhound.compile.polars import PolarsCompiler
from trailhound.compile.schema import Schema
from trailhound.compile.sql import SqlCompiler, register_udfs
from trailhound.engine.filter.frame import FrameOptions, prepare
from trailhound.engine.search import (
    needed_fields,
    search,
    search_events_batch,
    search_samples_batch,
    search_sequences_batch,
)
from trailhound.lang import ir
from trailhound.lang.errors import QueryError
from trailhound.lang.kql import parse_kql_query
from trailhound.lang.limits import MAX_DEPTH, MAX_REGEX_LENGTH, MAX_WILDCARD_LENGTH
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

from helpers import ev, run

DOCS = [
    ev(1, 1, process={"name": "ssh", "pid": 5}, source={"ip": "10.0.0.1"}, opcode=1),
    ev(2, 2, process={"name": "bash", "pid": 7}, source={"ip": "192.168.0.1"}, opcode="x"),
    ev(3, 3, "file", file={"path": "/etc/passwd"}),
]


def kql_ids(text: str, docs=DOCS) -> list:
    result = search(parse_kql_query(text), events_from_documents(docs).frame)
    return [docs[h.rows[0]]["id"] for h in result.hits]


def error_of(text: str, kql: bool = False) -> QueryError:
    with pytest.raises(QueryError) as info:
        parse_kql_query(text) if kql else parse(text)
    e = info.value
    assert e.line is not None and e.column is not None, e.render()
    return e


def deeper(n: int, fn):
    """`fn()` called under n more Python frames, as when a CLI or a test runner calls in."""
    return fn() if n == 0 else deeper(n - 1, fn)


# ---- nesting ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, kql", [
    ("process where " + "not " * 500 + "process.pid == 1", False),
    ("process where " + "length(" * 1000 + "process.name" + ")" * 1000 + " == 1", False),
    ("process where process.pid " + "+ 1 " * 2000 + "== 1", False),
    ("process where " + "(" * 3000 + "process.pid" + ")" * 3000 + " * 2" * 150 + " == 1", False),
    ("not " * 500 + "process.pid:1", True),
    ("process:{" * 300 + "pid:1" + "}" * 300, True),
    ("process.pid:" + "(1 or " * 400 + "2" + ")" * 400, True),
    ("process where " + "length(string(" * 30 + "+".join(["process.pid"] + ["1"] * 60) + "))" * 30 + " > 0", False),
])
def test_deep_nesting_is_an_error_with_position_not_a_recursion_error(text, kql):
    e = error_of(text, kql)
    assert "levels deep; the limit is" in e.message
    assert e.hint


def test_queries_just_under_the_depth_limit_run_on_both_backends_even_from_a_deep_stack():
    chain = "+".join(["process.pid"] + ["1"] * (MAX_DEPTH - 60))
    queries = [
        parse("process where " + "not " * (MAX_DEPTH - 8) + "process.pid == 5"),
        parse("process where " + "length(string(" * 24 + chain + "))" * 24 + " > 0"),
        parse("process where " + "length(string(" * (MAX_DEPTH // 2 - 4) + "process.name" + "))" * (MAX_DEPTH // 2 - 4)
              + " == 1"),
        parse_kql_query("not " * (MAX_DEPTH - 4) + "process.pid:5"),
    ]
    frame = events_from_documents(DOCS).frame
    con = duckdb.connect()
    register_udfs(con)
    for q in queries:
        def everything(q=q):
            hits = [h.rows for h in search(q, frame).hits]
            batch = search_events_batch([q], frame)[0]
            assert [h.rows for h in batch.hits] == hits
            hash(q), repr(q)
            lf, types = prepare(frame, FrameOptions(), set(needed_fields(q, FrameOptions())))
            where = SqlCompiler(Schema.of_frame(lf, types)).where(q.filter.condition)
            con.register("events", lf.collect().to_arrow())
            got = [r[0] for r in con.sql(f'SELECT "__row" FROM events WHERE {where} ORDER BY 1').fetchall()]
            want = sorted(lf.filter(PolarsCompiler(Schema.of_frame(lf, types)).predicate(q.filter.condition)
                                    .fill_null(False)).collect()["__row"].to_list())
            assert got == want
            return hits
        deeper(150, everything)


# ---- numbers ----------------------------------------------------------------------------


def test_integers_beyond_a_double_are_errors_and_beyond_a_long_are_doubles():
    assert "too large" in error_of("process where process.pid < " + "9" * 5000).message
    assert "too large" in error_of("process where process.pid < 1e999").message
    # every long is less than 2^64: decidable, as ES decides it (the number reads as a double)
    assert run("process where process.pid < 18446744073709551616", DOCS) == [1, 2]
    assert run("process where process.pid > 18446744073709551616", DOCS) == []
    assert run("process where process.pid in (18446744073709551616, 5)", DOCS) == [1]
    assert kql_ids("process.pid < 18446744073709551616") == [1, 2]
    assert kql_ids("process.pid:" + "9" * 5000) == []
    assert kql_ids("process.pid:(5 or 18446744073709551616)") == [1]


def test_constant_arithmetic_beyond_a_long_is_an_error():
    e = error_of("process where process.pid == 9223372036854775807 + 1")
    assert "overflows" in e.message and e.column == 30
    with pytest.raises(QueryError, match="overflows"):
        run("process where process.pid == add(9223372036854775807, 1)", DOCS)
    assert run("process where process.pid == 9223372036854775806 + 1 - 9223372036854775802", DOCS) == [1]


def test_number_function_on_huge_text():
    assert F.number("1" * 5000) is None  # a double's infinity: no number
    assert F.number("18446744073709551616") == float(2 ** 64)
    assert F.number("9223372036854775807") == 9223372036854775807
    assert F.number("ffffffffffffffffffff", 16) is None
    assert F.number("10", float("nan")) is None


# ---- patterns ---------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, why", [
    ("(?=a)", "look-around"), ("a{3,2}", "repetition"), ("a{1000}{1000}", "too large"), ("(", "unclosed"),
])
def test_regexes_the_engine_refuses_are_parse_errors(pattern, why):
    e = error_of(f'process where process.name regex "{pattern}"')
    assert why in e.message and e.column == 15


def test_long_patterns_are_refused_quickly():
    started = time.monotonic()
    for text in ['process where process.name : "' + "?" * 1_000_000 + '"',
                 'process where process.name : "' + "a*" * 500_000 + '"',
                 'process where process.name regex "' + "a" * (MAX_REGEX_LENGTH + 1) + '"']:
        assert "the limit is" in error_of(text).message
    assert "the limit is" in error_of("process.name:" + "a*" * (MAX_WILDCARD_LENGTH // 2 + 1), kql=True).message
    assert time.monotonic() - started < 10
    # a long literal is no regex: it is allowed
    assert run('process where process.name : "' + "a" * 50_000 + '"', DOCS) == []


def test_kql_values_are_bounded_as_wildcards_by_the_one_pattern_check():
    """KQL's values go through compile.patterns.check_pattern, as EQL's patterns do: bounded as
    wildcards (ES runs them as wildcard queries), even when said as a regex for a literal `*`."""
    literal_star = "process.name:ss\\*" + "h" * (MAX_REGEX_LENGTH + 10) + "*"  # longer than a regex may be
    assert kql_ids(literal_star) == []
    too_long = "process.name:" + "s" * MAX_WILDCARD_LENGTH + "*"  # a prefix: bounded in KQL whatever its plan
    for text in (too_long, too_long.replace("*", "\\**")):  # kept as a wildcard; said as a regex
        e = error_of(text, kql=True)
        assert e.message.startswith("the wildcard pattern is 100") and e.message.endswith(
            f"characters long; the limit is {MAX_WILDCARD_LENGTH}"), e.message
        assert e.hint == "match a shorter part of the value"


def test_patterns_up_to_the_limits_run():
    assert run('process where process.name : "' + "?" * (MAX_WILDCARD_LENGTH - 3) + '*"', DOCS) == []
    assert run('process where process.name regex "' + "s" * (MAX_REGEX_LENGTH - 2) + '.*"', DOCS) == []


# ---- text -------------------------------------------------------------------------------


def test_escapes_that_are_not_characters_are_errors():
    assert "not a Unicode character" in error_of('process where process.name == "\\u{FFFFFFFF}"').message
    assert "surrogate" in error_of('process where process.name == "\\u{D800}"').message
    assert run('process where process.name == "\\u{73}sh"', DOCS) == [1]


def test_text_that_was_not_utf8_on_the_command_line_is_an_error():
    argv = b'process where process.name == "a\xff"'.decode("utf-8", "surrogateescape")
    e = error_of(argv)
    assert "not valid UTF-8" in e.message and e.column == 33
    e.render().encode("utf-8")  # printable
    assert "not valid UTF-8" in error_of(b"process.name:a\xff".decode("utf-8", "surrogateescape"), kql=True).message


# ---- types ------------------------------------------------------------------------------


def test_membership_over_an_absent_or_null_field():
    assert run("process where opcode in (0, 1, 2)", DOCS) == [1]
    assert run("process where nosuch in (0, 1, 2)", DOCS) == []
    assert run("process where not nosuch in (0, 1, 2)", DOCS) == [1, 2]
    null_docs = [ev(1, 1, opcode=None), ev(2, 2, opcode=[])]
    assert run("process where opcode in (0, 1, 2)", null_docs) == []
    assert run('process where opcode in ("a", 1.5, true)', null_docs) == []
    assert run("process where opcode not in (0, 1)", null_docs) == [1, 2]
    schema = Schema({})  # `rules validate` compiles a field that is not in ECS as absent
    for backend in (PolarsCompiler(schema), SqlCompiler(schema)):
        backend.predicate(parse("process where opcode in (0, 1, 2)").filter.condition)


def test_a_decimal_in_a_set_over_an_integer_field_is_not_truncated():
    assert run("process where process.pid in (5.5, 7)", DOCS) == [2]
    assert run("process where process.pid in (5.0)", DOCS) == [1]


# ---- cidrMatch --------------------------------------------------------------------------


def test_cidr_match_networks_are_checked_when_parsed():
    e = error_of('process where cidrMatch(source.ip, "10.0.0.0/99")')
    assert "not a network" in e.message and e.hint
    assert "constant" in error_of("process where cidrMatch(source.ip, destination.ip)").message
    with pytest.raises(QueryError, match="not a network"):
        run('process where cidrMatch(source.ip, concat("10.0.0.0/", "99"))', DOCS)
    with pytest.raises(QueryError, match="not a network"):
        SqlCompiler(Schema({})).predicate(ir.Call("cidrMatch", (ir.Field("source.ip"), ir.Literal("x/1"))))
    assert run('process where cidrMatch(source.ip, "10.0.0.0/8", null)', DOCS) == [1]


# ---- slow paths ---------------------------------------------------------------------------


def test_or_chains_of_equalities_become_one_membership_test():
    q = parse("process where " + " or ".join(f"process.pid == {i}" for i in range(5000)))
    assert isinstance(q.filter.condition, ir.InSet) and len(q.filter.condition.options) == 5000
    k = parse_kql_query("process.pid:(" + " or ".join(str(i) for i in range(5000)) + ")")
    assert isinstance(k.filter.condition, ir.InSet)
    m = parse('process where process.name : "a*" or process.pid == 1 or process.name : "b*" or process.pid == 2')
    assert m.filter.condition == ir.Or((ir.Match(ir.Field("process.name"), "wildcard", ("a*", "b*"), True),
                                        ir.InSet(ir.Field("process.pid"), (ir.Literal(1), ir.Literal(2)))))
    # 1, 1.0 and true stay distinct options
    t = parse("process where x == 1 or x == 1.0 or x == true or x == 1")
    assert [o.value for o in t.filter.condition.options] == [1, 1.0, True]
    assert type(t.filter.condition.options[1].value) is float


@pytest.mark.parametrize("text, kql, want", [
    ("process where " + " or ".join(f"process.pid == {i}" for i in range(5000)), False, [1, 2]),
    ("process.pid:(" + " or ".join(str(i) for i in range(6, 5000)) + ")", True, [2]),
    (" or ".join(f"(process.pid:{i} and not process.name:bash)" for i in range(2000)), True, [1]),
    ("process where " + " or ".join(f'startsWith(process.name, "x{i}")' for i in range(2000)) + " or process.pid == 7",
     False, [2]),
    ("process where " + " and ".join(f"process.pid != {i}" for i in range(6, 2000)), False, [1]),
])
def test_long_queries_cost_little_on_two_events(text, kql, want):
    started = time.monotonic()
    q = parse_kql_query(text) if kql else parse(text)
    frame = events_from_documents(DOCS).frame
    hits = [DOCS[h.rows[0]]["id"] for h in search(q, frame).hits]
    batch = search_events_batch([q], frame)[0]
    assert [DOCS[h.rows[0]]["id"] for h in batch.hits] == hits == want
    assert time.monotonic() - started < 15


def test_folded_alternatives_select_what_the_alternatives_select():
    """The fold is exact: the IR written out term by term selects the same events, both backends."""
    docs = [ev(1, 1, f=1), ev(2, 2, f=[2, 9]), ev(3, 3, f="1"), ev(4, 4), ev(5, 5, f=[None]), ev(6, 6, f=1.5),
            ev(7, 7, g="ab"), ev(8, 8, g=["xb", "AB"]), ev(9, 9, g=None)]
    frame = events_from_documents(docs).frame
    f, g = ir.Field("f"), ir.Field("g")
    cases = [
        (f, [1, 2]), (f, [1, "1"]), (f, [1.5, 2]), (f, [True, 1]), (f, ["2", 3]),
        (g, ["ab", "AB"]), (g, ["xb", 1]),
    ]
    for field, values in cases:
        terms = tuple(ir.Compare("==", field, ir.Literal(v)) for v in values)
        folded = ir.fold_alternatives(terms)
        assert len(folded) == 1 and isinstance(folded[0], ir.InSet)
        for wrap in (lambda e: e, ir.Not):
            written = ir.EventQuery(ir.EventFilter(None, wrap(ir.Or(terms))))
            merged = ir.EventQuery(ir.EventFilter(None, wrap(folded[0])))
            want = [h.rows for h in search(written, frame).hits]
            assert [h.rows for h in search(merged, frame).hits] == want, (field, values)
            assert [h.rows for h in search_events_batch([merged], frame)[0].hits] == want, (field, values)
    patterns = (ir.Match(g, "wildcard", ("a*",), True), ir.Match(g, "wildcard", ("x?",), True))
    (merged,) = ir.fold_alternatives(patterns)
    assert merged == ir.Match(g, "wildcard", ("a*", "x?"), True)
    assert ([h.rows for h in search(ir.EventQuery(ir.EventFilter(None, ir.Or(patterns))), frame).hits]
            == [h.rows for h in search(ir.EventQuery(ir.EventFilter(None, merged)), frame).hits])


# ---- unknown event categories -----------------------------------------------------------


def test_an_unknown_event_category_is_warned_about_with_a_suggestion():
    docs = DOCS + [ev(4, 4, ["process", "my_custom"])]
    frame = events_from_documents(docs).frame
    warned = search(parse("proces where true"), frame).warnings
    assert any("'proces'" in w and "did you mean 'process'" in w for w in warned), warned
    assert search_events_batch([parse("proces where true")], frame)[0].warnings == warned
    # a category of the data, an ECS category absent from the data, `any`: no warning
    for text in ["my_custom where true", "network where true", "any where true"]:
        assert not [w for w in search(parse(text), frame).warnings if "category" in w], text
    near = search(parse("my_custon where true"), frame).warnings
    assert any("did you mean 'my_custom'" in w for w in near), near
    seq = parse("sequence [proces where true] [file where true]")
    assert any("'proces'" in w for w in search_sequences_batch([seq], frame)[0].warnings)
    assert any("'proces'" in w for w in search(seq, frame).warnings)
    sample = parse("sample by host.name [proces where true] [file where true]")
    assert any("'proces'" in w for w in search_samples_batch([sample], frame)[0].warnings)


# ---- found by tests/fuzz/test_fuzz_queries.py -------------------------------------------


@pytest.mark.parametrize("text", [
    "process where between(process.pid, process.name, process.name) == \"0\"",
    "process where substring(process.name, process.name) == \"0\"",
    "process where startsWith(process.pid, \"1\")",
    "process where number(process.name, process.name) == 0",
    "process where length(process.pid) == 1",
    "process where ?x == -process.name",
    "process where 0.5 * process.name == 1",
])
def test_functions_and_arithmetic_over_values_of_the_wrong_kind_are_compile_errors(text):
    q = parse(text)
    with pytest.raises(QueryError):
        search(q, events_from_documents(DOCS).frame)
    frame = events_from_documents(DOCS).frame
    lf, types = prepare(frame, FrameOptions(), set(needed_fields(q, FrameOptions())))
    with pytest.raises(QueryError):
        SqlCompiler(Schema.of_frame(lf, types)).predicate(q.filter.condition)


def test_arithmetic_on_text_constants_is_a_parse_error():
    for text in ['process where x == 0.5 * ""', 'process where x == -"a"', "process where 1 + true == 2"]:
        assert "arithmetic needs numbers" in error_of(text).message


def test_constants_compared_with_constants_fold_alike_in_both_backends():
    assert run('process where 0 != ""', DOCS) == []  # "" is no number: unknown, as in a script
    assert run('process where "10" == 10 and 1.5 > 1 and "b" > "a"', DOCS) == [1, 2]
    schema = Schema({})
    sql = SqlCompiler(schema).where(parse('process where 0 != ""').filter.condition)
    assert "NULL" in sql.upper()


def test_arithmetic_with_a_missing_operand_is_missing_on_both_backends():
    for text in ["process where ?nosuch / process.pid == 0", "process where -?nosuch + process.pid == 0",
                 "process where not ?nosuch % process.pid == 0"]:
        assert run(text, DOCS) == [], text
        q = parse(text)
        frame = events_from_documents(DOCS).frame
        lf, types = prepare(frame, FrameOptions(), set(needed_fields(q, FrameOptions())))
        con = duckdb.connect()
        register_udfs(con)
        con.register("events", lf.collect().to_arrow())
        where = SqlCompiler(Schema.of_frame(lf, types)).where(q.filter.condition)
        assert con.sql(f'SELECT "__row" FROM events WHERE {where}').fetchall() == [], where


def test_an_error_in_a_long_line_shows_a_window_around_its_spot():
    from trailhound.lang.errors import QueryError
    from trailhound.lang.parser import parse

    text = "process where " + " or ".join(f"process.pid == {i}" for i in range(300)) + " and startWith(process.name, 1)"
    with pytest.raises(QueryError) as e:
        parse(text)
    shown, caret = e.value.render().splitlines()[1:3]
    assert len(shown) < 200 and shown.strip().startswith("…")
    assert shown[caret.index("^"):].startswith("startWith")
