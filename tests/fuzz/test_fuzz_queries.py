"""Fuzzing the EQL and KQL parsers and both compilers (Polars, SQL on DuckDB).

Queries come from a small grammar, from mutations of real queries (the SSH pack's rules and a
few hand-written ones) and from random text. Each must end in a QueryError (a parse error names
its line and column) or in a result, within a time budget; never another exception. Where both
backends accept a filter, they must select the same events, and the batch engine that `hunt`
uses (shared filters) must find what the single-query one finds.
"""

from __future__ import annotations

import re
import time
import tomllib
from importlib import resources

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from trailhound.lang.functions import FUNCTIONS
from trailhound.lang.kql import parse_kql_query
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

#: seconds one query may take, parse to result, on this handful of events
BUDGET = 10.0

DOCS = [
    {"@timestamp": "2024-05-01T10:00:00Z", "event": {"category": ["process"], "type": ["start"]},
     "process": {"name": "ssh", "pid": 10, "args": ["ssh", "-i", "key", "host"], "exit_code": 0},
     "source": {"ip": "10.1.2.3", "port": 22}, "user": {"name": "root"}, "opcode": 1, "ratio": 0.5, "flag": True},
    {"@timestamp": "2024-05-01T10:00:01Z", "event": {"category": "process", "type": "end"},
     "process": {"name": "SSHD", "pid": -3, "args": [], "exit_code": 255},
     "source": {"ip": "fe80::1"}, "user": {"name": ["alice", "Bob"]}, "opcode": "x", "ratio": 2, "flag": False},
    {"@timestamp": "2024-05-01T10:00:02Z", "event": {"category": ["file", "process"]},
     "file": {"path": "/root/.ssh/authorized_keys", "name": "authorized_keys"},
     "process": {"name": "cp", "args": [None, "a*b?"]}, "source": {"ip": "not an ip"}, "opcode": [1, "2"]},
    {"@timestamp": 1714557603000, "event": {"category": "network"}, "destination": {"port": 443},
     "process": {"name": "curl\u00e9\u4e2d", "pid": 1234, "title": "a\\b\"c"}, "opcode": None, "ratio": -1.5e10},
    {"event": {"category": "authentication", "outcome": "success"}, "user": {"name": "root"}, "flag": None},
]
FRAME = events_from_documents(DOCS).frame

FIELDS = ["process.name", "process.pid", "process.args", "process.exit_code", "process.title", "source.ip",
          "source.port", "user.name", "opcode", "ratio", "flag", "file.path", "file.name", "event.type",
          "event.outcome", "destination.port", "host.name", "nosuch.field", "@timestamp", "event.category"]

_CON = None


def _connection():
    global _CON
    if _CON is None:
        _CON = duckdb.connect()
        register_udfs(_CON)
    return _CON


# ---- the check every generated query goes through ------------------------------------------


def check_query(text: str, kql: bool = False) -> None:
    started = time.monotonic()
    try:
        query = parse_kql_query(text) if kql else parse(text)
    except QueryError as e:
        assert e.line is not None and e.column is not None, f"parse error without a position: {e!r}"
        assert e.message
        e.render().encode("utf-8")  # printable as it is
        return
    try:
        result = search(query, FRAME)
    except QueryError as e:
        assert e.message
        e.render().encode("utf-8")
        return
    finally:
        assert time.monotonic() - started < BUDGET, f"{time.monotonic() - started:.1f}s for {text[:200]!r}"
    batch_search = {ir.EventQuery: search_events_batch, ir.SequenceQuery: search_sequences_batch,
                    ir.SampleQuery: search_samples_batch}[type(query)]
    batch = batch_search([query], FRAME)[0]
    assert not isinstance(batch, Exception), f"hunt's engine refused what search ran: {batch}"
    hits = [(h.rows, h.join_keys) for h in result.hits]
    assert [(h.rows, h.join_keys) for h in batch.hits] == hits, text
    _backends_agree(query)
    assert time.monotonic() - started < BUDGET, f"{time.monotonic() - started:.1f}s for {text[:200]!r}"


def _backends_agree(query: ir.Query) -> None:
    options = FrameOptions()
    lf, types = prepare(FRAME, options, set(needed_fields(query, options)))
    prepared = lf.collect()
    schema = Schema.of_frame(prepared, types)
    pc, sc = PolarsCompiler(schema), SqlCompiler(schema)
    con = _connection()
    con.register("events", prepared.to_arrow())
    for f in ir.query_filters(query):
        want = sorted(prepared.filter((pc.category(f.category, options.event_category_field)
                                       & pc.predicate(f.condition)).fill_null(False))["__row"].to_list())
        try:
            where = (f"({sc.category(f.category, options.event_category_field).sql('duckdb')}) "
                     f"AND ({sc.where(f.condition)})")
        except QueryError:
            continue  # the SQL backend may decline what Polars runs, never the reverse silently
        got = [r[0] for r in con.sql(f'SELECT "__row" FROM events WHERE {where} ORDER BY "__row"').fetchall()]
        assert got == want, where


# ---- EQL from a small grammar --------------------------------------------------------------

_ident = st.sampled_from(FIELDS)
_field = st.builds(lambda opt, f: ("?" if opt else "") + f, st.booleans(), _ident) | st.just("`odd name`.x")
_int = st.one_of(st.integers(-1000, 1000), st.sampled_from(
    [0, 10, 255, 9223372036854775807, 9223372036854775808, 18446744073709551616, 10 ** 30, 10 ** 400]))
_float = st.sampled_from(["0.5", "1.0", "2e3", "1e308", "1e999", ".5", "1.5e-7", "-1.5e10"])
_escapes = st.sampled_from(["\\n", "\\t", "\\\\", '\\"', "\\u{41}", "\\u{1F600}", "\\u{D800}", "\\u{FFFFFFFF}", "\\q"])
_chars = st.text(st.sampled_from("abcSH*?.-/ \u00e9\u4e2d_:()[]{}+|@#~&<>\"'0123456789"), max_size=8)
_string = st.builds(lambda parts: '"' + "".join(parts) + '"',
                    st.lists(st.one_of(_chars.map(lambda s: s.replace('"', "").replace("\\", "")), _escapes),
                             max_size=4)) | _chars.map(lambda s: '"""' + s.replace('"', "") + '"""')
_plain = st.one_of(st.integers(-20, 2000).map(str), st.sampled_from(['"ssh"', '"SSH*"', '"root"', '"10.1.2.3"', '"cp"',
                                                                     '"-i"', '"*key*"', '"a*b?"', '""', "0.5"]))
_hazard = st.one_of(_int.map(str), _float, _string, st.sampled_from(["null", "true", "false"]))
_literal = st.one_of(_plain, _plain, _plain, _hazard)  # mostly plain values, so that queries get past the parser
_regex = st.sampled_from(['"s.*"', '"[a-z]+"', '"(ss|cp)h?"', '"(?=a)"', '"a{3,2}"', '"a{1000}{1000}"', '"("',
                          '"\\\\d+"', '"a~b"', '"@"', '"#"', '"<1-5>"', '"[^a]"', '"a{2,4}"', '""'])


def _fn(args: st.SearchStrategy) -> st.SearchStrategy:
    """A call: mostly of a known function with an arity it takes, sometimes anything."""
    sigs = sorted(FUNCTIONS.values(), key=lambda s: s.name)

    @st.composite
    def call(draw):
        if draw(st.integers(0, 9)) == 0:
            name = draw(st.sampled_from([s.name for s in sigs] + ["match", "wildcard", "nosuchfn"]))
            return f"{name}{draw(st.sampled_from(['', '~']))}({', '.join(draw(st.lists(args, max_size=4)))})"
        sig = draw(st.sampled_from(sigs))
        n = draw(st.integers(sig.min_args, sig.max_args if sig.max_args is not None else sig.min_args + 2))
        first = draw(_field)
        rest = draw(st.lists(args, min_size=n - 1, max_size=n - 1))
        ci = "~" if sig.insensitive_variant and draw(st.booleans()) else ""
        return f"{sig.name}{ci}({', '.join([first] + rest)})"

    return call()


def _values(inner):
    return st.one_of(
        _fn(inner),
        st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from("+-*/%"), inner),
        st.builds(lambda a: f"-{a}", inner),
        st.builds(lambda a: f"({a})", inner),
    )


_value = st.recursive(st.one_of(_field, _literal), _values, max_leaves=6)
_constant = st.recursive(_literal, lambda inner: st.builds(lambda a, op, b: f"{a} {op} {b}", inner,
                                                           st.sampled_from("+-*/%"), inner), max_leaves=3)
_predicate = st.one_of(
    st.builds(lambda a, op, b: f"{a} {op} {b}", _value, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), _constant),
    st.builds(lambda a, op, b: f"{a} {op} {b}", _field, st.sampled_from(["==", "!=", "<", ">="]), _literal),
    st.builds(lambda a, op, b: f"{a} {op} {b}", _field, st.sampled_from([":", "like", "like~"]),
              _string | st.lists(_string, min_size=1, max_size=3).map(lambda x: "(" + ", ".join(x) + ")")),
    st.builds(lambda a, op, b: f"{a} {op} {b}", _field, st.sampled_from(["regex", "regex~"]), _regex),
    st.builds(lambda a, op, b: f"{a} {op} ({', '.join(b)})", _value, st.sampled_from(["in", "in~", "not in"]),
              st.lists(_literal, min_size=1, max_size=5)),
    st.builds(lambda f, vs: " or ".join(f"{f} == {v}" for v in vs), _field, st.lists(_literal, min_size=2, max_size=6)),
    _fn(_value), _field, st.sampled_from(["true", "false", "null"]),
)


def _conditions(inner):
    return st.one_of(
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a: f"({a})", inner),
        st.builds(lambda xs, op: f" {op} ".join(xs), st.lists(inner, min_size=2, max_size=4), st.sampled_from(["and", "or"])),
    )


_condition = st.recursive(_predicate, _conditions, max_leaves=8)
_category = st.sampled_from(["process", "file", "any", "network", "proces", '"process"', "authentication", "web"])
_event_query = st.builds(lambda c, cond, pipe: f"{c} where {cond}{pipe}", _category, _condition,
                         st.sampled_from(["", " | head 1", " | tail 2", " | head 0", " | count"]))
_stage = st.builds(lambda c, cond: f"[{c} where {cond}]", _category, _condition)


@st.composite
def _sequence(draw):
    by = draw(st.sampled_from(["", " by user.name", " by source.ip"]))
    stage_by = draw(st.sampled_from(["", " by process.pid"]))  # the same at every stage
    stages = [draw(_stage) + stage_by + draw(st.sampled_from(["", "", " with runs=2"]))
              for _ in range(draw(st.integers(2, 3)))]
    span = draw(st.sampled_from(["", " with maxspan=5s", " with maxspan=1h", " with maxspan=99999999999999999999d"]))
    until = draw(st.sampled_from(["", "", " until [process where true]"]))
    if draw(st.integers(0, 4)) == 0:
        stages[-1] = "!" + stages[-1]
    return f"sequence{by}{span} {' '.join(stages)}{until.replace(']', ']' + stage_by)}"


_sample = st.builds(lambda stages: "sample by user.name " + " ".join(stages), st.lists(_stage, min_size=2, max_size=3))


@given(_event_query | _event_query | _sequence() | _sample)
def test_generated_eql(text):
    check_query(text)


# ---- KQL from a small grammar --------------------------------------------------------------

_kql_word = (st.text(st.sampled_from("abcssh*?-./1230\u00e9"), min_size=1, max_size=8)
             | st.text(st.sampled_from("abcssh*?\\:()\"<>{}-./1230 \u00e9"), min_size=1, max_size=8).map(str.strip)
             ).filter(lambda w: bool(w) and w.lower() not in ("or", "and", "not"))
_kql_value = st.one_of(
    _kql_word, _int.map(str), st.sampled_from(["10.0.0.0/8", "fe80::/10", "10.0.0.0/99", "*", "true", '"quoted *"']),
    _string,
)


def _kql_values(inner):
    return st.builds(lambda xs, op: "(" + f" {op} ".join(xs) + ")", st.lists(inner, min_size=1, max_size=4),
                     st.sampled_from(["or", "and", "or not"]))


_kql_term = st.one_of(
    st.builds(lambda f, v: f"{f}:{v}", _ident, st.recursive(_kql_value, _kql_values, max_leaves=6)),
    st.builds(lambda f, op, v: f"{f} {op} {v}", _ident, st.sampled_from(["<", "<=", ">", ">="]), _kql_value),
    st.builds(lambda f, inner: f"{f.split('.')[0]}:{{ {inner} }}", _ident,
              st.builds(lambda f, v: f"{f.split('.')[-1]}:{v}", _ident, _kql_value)),
    st.builds(lambda f, v: f"{f}:{v}", _ident, _kql_value),
    st.builds(lambda f, v: f"{f}:{v}", _ident, st.sampled_from(["ssh", "root", "10.1.2.3", "10.0.0.0/8", "s*", "0", "-3"])),
    _kql_word,
)


def _kql_conditions(inner):
    return st.one_of(
        st.builds(lambda a: f"not {a}", inner),
        st.builds(lambda a: f"({a})", inner),
        st.builds(lambda xs, op: f" {op} ".join(xs), st.lists(inner, min_size=2, max_size=4), st.sampled_from(["and", "or"])),
    )


@given(st.recursive(_kql_term, _kql_conditions, max_leaves=8))
def test_generated_kql(text):
    check_query(text, kql=True)


# ---- mutations of real queries, and random text ---------------------------------------------


def _seed_queries() -> list[tuple[str, bool]]:
    out = []
    for path in sorted(resources.files("trailhound.pack").iterdir(), key=lambda p: p.name):
        if path.name.endswith(".toml") and not path.name.endswith(".test.toml"):
            rule = tomllib.loads(path.read_text()).get("rule", {})
            if rule.get("query"):
                out.append((rule["query"], rule.get("language") == "kuery"))
    out += [
        ('process where process.name : ("ssh", "scp") and process.args : "-i" and not user.name in ("root")', False),
        ('sequence by user.name with maxspan=1m [process where process.pid > 5] ![file where true] [any where true]', False),
        ('process where cidrMatch(source.ip, "10.0.0.0/8") and length(process.name) * 2 + 1 > 3', False),
        ('process where process.name regex~ "s[a-z]+" or substring(process.name, 1, -1) == "sh"', False),
        ('event.category:process and process.name:(ssh or scp* or "c p") and not source.ip:10.0.0.0/8', True),
        ('process:{ name:ssh and pid >= 5 } or user.name:root', True),
    ]
    return out


SEEDS = _seed_queries()
_SPECIALS = ['"', "'", "(", ")", "[", "]", "{", "}", "\\", "*", "?", ":", "~", "|", "`", "\n", "\x00", "\udcff",
             "not ", " or ", " and ", "==", "!=", "9" * 30, "\\u{", "/*", "//", "regex ", " in (", "\u00e9", "?\""]


@st.composite
def _mutated(draw):
    text, kql = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 20)))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "replace"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(_SPECIALS)) + text[i:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] * draw(st.integers(1, 3)) + text[j:]
        else:
            text = text[:i] + draw(st.text(max_size=6)) + text[j:]
    return text, kql


@given(_mutated())
def test_mutated_real_queries(case):
    text, kql = case
    check_query(text, kql)


@given(st.lists(st.sampled_from(list("abprocesswhere =!<>:~()[]\"'*?.,|\\{}0123456789-+/%@#` \n") + _SPECIALS),
                max_size=40).map("".join), st.booleans())
def test_random_text(text, kql):
    check_query(text, kql)


def test_seed_queries_run():
    """The seeds themselves parse and agree on both backends (so mutations start from valid queries)."""
    for text, kql in SEEDS:
        query = parse_kql_query(text) if kql else parse(text)
        assert query is not None
        check_query(text, kql)


@pytest.mark.parametrize("text, kql", [
    ("process where " + "not " * 3000 + "true", False),
    ("process where " + " or ".join(f"process.pid == {i}" for i in range(3000)), False),
    ("process.pid:(" + " or ".join(str(i) for i in range(3000)) + ")", True),
    ('process where process.name : "' + "a*" * 200_000 + '"', False),
    ("process where opcode in (0, 1, 2)", False),
    ("process where process.pid < 18446744073709551616", False),
    (b'process where process.name == "\xff"'.decode("utf-8", "surrogateescape"), False),
])
def test_known_hazards(text, kql):
    check_query(text, kql)


def test_parse_errors_point_inside_the_text():
    for text in ["process where (", "process where x ==", "proc ess where true", "x:(a or", "a:b c:d)"]:
        kql = ":" in text and "where" not in text
        with pytest.raises(QueryError) as info:
            parse_kql_query(text) if kql else parse(text)
        lines = text.splitlines() or [""]
        assert 1 <= info.value.line <= len(lines) + 1
        assert re.search(r"line \d+, column \d+", info.value.render())
