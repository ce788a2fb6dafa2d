"""EQL functions: ES's own function table, and the vectorized forms against the reference."""

import re
import tomllib

import polars as pl
import pytest

from trailhound.compile import functions as F
from trailhound.compile.polars import PolarsCompiler
from trailhound.compile.schema import Schema
from trailhound.lang import ir
from trailhound.lang.errors import QueryError
from trailhound.lang.parser import parse

import es_eql

TABLE = es_eql.SUITE / "unit" / "test_string_functions.toml"


def _table_cases():
    if not TABLE.exists():
        return []
    src = TABLE.read_text()
    cases = []
    for block in re.split(r"\n(?=\s*\[\[)", src):
        m = re.search(r"expression = (.*)$", block, re.M)
        if not m:
            continue
        expr = tomllib.loads("x = " + m.group(1))["x"]
        # the table writes an expected null as a comment
        em = re.search(r"^\s*expected = (.*)$", block, re.M)
        expected = tomllib.loads("x = " + em.group(1))["x"] if em else None
        cases.append((expr, expected, "verifier.failures" in block))
    return cases


def _fold(e: ir.Expr):
    if isinstance(e, ir.Literal):
        return e.value
    if isinstance(e, ir.Negate):
        return -_fold(e.operand)
    assert isinstance(e, ir.Call)
    return F.call(e.name, [_fold(a) for a in e.args], e.case_insensitive)


@pytest.mark.skipif(not TABLE.exists(), reason="ES function table not found (../shared absent)")
@pytest.mark.parametrize("expr, expected, must_fail", _table_cases())
def test_es_function_table(expr, expected, must_fail):
    if must_fail:
        with pytest.raises(QueryError):
            parse(f"any where {expr} == null")
        return
    value = _fold(parse(f"any where {expr} == null").filter.condition.operand)
    assert value == expected and type(value) is type(expected)


STRINGS = ["", "a", "Abc", "abcabc", "Hello World", "ß", None, "x y z", "0x1F", " 12 ", "-7", "1.5e3"]
NEEDLES = ["", "a", "b", "abc", "ABC", "World", "z", None]


@pytest.mark.parametrize("name", ["startsWith", "endsWith", "stringContains", "indexOf", "between"])
@pytest.mark.parametrize("ci", [False, True])
def test_vectorized_string_functions_match_reference(name, ci):
    frame = pl.DataFrame({"s": pl.Series(STRINGS, dtype=pl.String)})
    compiler = PolarsCompiler(Schema.of_frame(frame))
    for needle in NEEDLES:
        args = (ir.Field("s"), ir.Literal(needle)) + ((ir.Literal("c"),) if name == "between" else ())
        call = ir.Call(name, args, ci)
        got = frame.with_columns(compiler.value(call, {}).expr.alias("v"))["v"].to_list()
        want = [F.call(name, [s, needle] + (["c"] if name == "between" else []), ci) for s in STRINGS]
        assert got == want, (name, needle)


@pytest.mark.parametrize("name", ["startsWith", "endsWith", "stringContains"])
@pytest.mark.parametrize("ci", [False, True])
def test_string_functions_with_a_field_needle_match_reference(name, ci):
    pairs = [(s, n) for s in STRINGS for n in NEEDLES]
    frame = pl.DataFrame({"s": [s for s, _ in pairs], "n": [n for _, n in pairs]}, schema={"s": pl.String, "n": pl.String})
    compiler = PolarsCompiler(Schema.of_frame(frame))
    call = ir.Call(name, (ir.Field("s"), ir.Field("n")), ci)
    got = frame.with_columns(compiler.value(call, {}).expr.alias("v"))["v"].to_list()
    assert got == [F.call(name, [s, n], ci) for s, n in pairs]


@pytest.mark.parametrize("name", ["length", "string", "number"])
def test_vectorized_unary_functions_match_reference(name):
    frame = pl.DataFrame({"s": pl.Series(STRINGS, dtype=pl.String)})
    compiler = PolarsCompiler(Schema.of_frame(frame))
    got = frame.select(compiler.value(ir.Call(name, (ir.Field("s"),)), {}).expr.alias("v"))["v"].to_list()
    want = [F.call(name, [s]) for s in STRINGS]
    assert [None if w is None else float(w) if name == "number" else w for w in want] == got


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "%"])
def test_vectorized_arithmetic_matches_java_semantics(op):
    xs = [7, -7, 0, 5, -5, None, 3]
    ys = [2, 2, 3, -2, -2, 1, 0]
    frame = pl.DataFrame({"x": xs, "y": ys})
    compiler = PolarsCompiler(Schema.of_frame(frame))
    expr = compiler.value(ir.Arith(op, ir.Field("x"), ir.Field("y")), {}).expr
    got = frame.select(expr.alias("v"))["v"].to_list()
    fn = {"+": F.add, "-": F.subtract, "*": F.multiply, "/": F.divide, "%": F.modulo}[op]
    assert got == [fn(x, y) for x, y in zip(xs, ys)]


def test_cidr_match_ipv4_and_ipv6():
    assert F.cidr_match("10.1.2.3", "10.0.0.0/8") is True
    assert F.cidr_match("10.1.2.3", "192.168.0.0/16", "10.1.2.0/24") is True
    assert F.cidr_match("fe80::1", "fe80::/10") is True
    assert F.cidr_match("fe80::1", "10.0.0.0/8") is False
    assert F.cidr_match(None, "10.0.0.0/8") is None


def test_vectorized_cidr_match_matches_reference():
    ips = ["10.1.2.3", "192.168.1.1", "8.8.8.8", "fe80::1", "::1", "2001:db8::5", "not-an-ip", "", None, "10.1.2.3",
           "172.31.255.255", "172.32.0.0", "::ffff:10.0.0.1", "0.0.0.0"]
    cidrs = ["10.0.0.0/8", "172.16.0.0/12", "FE80::/10", "::1", "192.168.1.1/32"]
    frame = pl.DataFrame({"ip": pl.Series(ips, dtype=pl.String)})
    compiler = PolarsCompiler(Schema.of_frame(frame))
    call = ir.Call("cidrMatch", (ir.Field("ip"),) + tuple(ir.Literal(c) for c in cidrs))
    got = frame.with_columns(compiler.value(call, {}).expr.alias("v"))["v"].to_list()
    assert got == [F.cidr_match(ip, *cidrs) for ip in ips]
