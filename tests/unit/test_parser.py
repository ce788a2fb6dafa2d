"""The EQL front end: what it accepts, the IR it builds, and the errors it gives."""

import pytest

from trailhound.lang import ir
from trailhound.lang.errors import EqlSemanticError, EqlSyntaxError, QueryError
from trailhound.lang.parser import parse


def cond(text: str) -> ir.Expr:
    return parse(f"any where {text}").filter.condition


def test_operators_keep_case_sensitivity():
    assert cond('a == "X"') == ir.Compare("==", ir.Field("a"), ir.Literal("X"))
    assert cond('a : "x*"') == ir.Match(ir.Field("a"), "wildcard", ("x*",), True)
    assert cond('a like "x*"') == ir.Match(ir.Field("a"), "wildcard", ("x*",), False)
    assert cond('a like~ ("x*", "y")') == ir.Match(ir.Field("a"), "wildcard", ("x*", "y"), True)
    assert cond('a regex "x.*"') == ir.Match(ir.Field("a"), "regex", ("x.*",), False)
    assert cond('a regex~ "x.*"') == ir.Match(ir.Field("a"), "regex", ("x.*",), True)
    assert cond('a in~ ("X")') == ir.InSet(ir.Field("a"), (ir.Literal("X"),), True)
    assert cond('a not in ("X")') == ir.Not(ir.InSet(ir.Field("a"), (ir.Literal("X"),), False))
    assert cond('startsWith~(a, "x")') == ir.Call("startsWith", (ir.Field("a"), ir.Literal("x")), True)


def test_null_comparisons_are_null_tests():
    assert cond("a == null") == ir.IsNull(ir.Field("a"))
    assert cond("null != a") == ir.Not(ir.IsNull(ir.Field("a")))


def test_fields_optional_backticks_keywords_after_dot():
    assert cond("?a.b == 1").left == ir.Field("a.b", optional=True)
    assert cond("`odd name`.x == 1").left == ir.Field("odd name.x")
    assert cond("event.sequence == 1").left == ir.Field("event.sequence")
    assert cond("@timestamp > 1").left == ir.Field("@timestamp")
    # keywords are not prefixes of names
    assert cond("android == 1 and index in (1) and inode : 2 and notes == 1").terms[0].left == ir.Field("android")


def test_strings_escapes_raw_and_comments():
    assert cond('a == "tab\\there \\u{41}"').right == ir.Literal("tab\there A")
    assert cond('a == """C:\\new\\dir"""').right == ir.Literal("C:\\new\\dir")
    assert cond('a == 1 // trailing comment\n /* block */').right == ir.Literal(1)


def test_arithmetic_precedence_and_negative_numbers():
    e = cond("a + 2 * 3 == -1")
    assert e.left == ir.Arith("+", ir.Field("a"), ir.Arith("*", ir.Literal(2), ir.Literal(3)))
    assert e.right == ir.Literal(-1)


def test_sequence_keys_maxspan_runs_until_missing():
    q = parse("sequence by h with maxspan=5m [process where true] by p [any where true] by q with runs=2 "
              "![file where true] by r until [end where true] by s")
    assert isinstance(q, ir.SequenceQuery)
    assert q.maxspan_ms == 300_000
    assert [s.keys for s in q.stages] == [(ir.Field("h"), ir.Field(k)) for k in "pqr"]
    assert [s.runs for s in q.stages] == [1, 2, 1]
    assert [s.missing for s in q.stages] == [False, False, True]
    assert len(q.expanded()) == 4
    assert q.until.keys == (ir.Field("h"), ir.Field("s"))


def test_sample_and_pipes():
    q = parse("sample by h [a where true] by x [b where true] by y")
    assert isinstance(q, ir.SampleQuery) and q.stages[1].keys == (ir.Field("h"), ir.Field("y"))
    q = parse("process where true | head 5 | tail 2")
    assert q.pipes == (ir.Pipe("head", 5), ir.Pipe("tail", 2))


@pytest.mark.parametrize(
    "query, message, hint",
    [
        ("process where a = 1", "`=` is not an EQL operator", "use =="),
        ("process where a == 'x'", "single-quoted", "double quotes"),
        ("process where startWith(a, \"x\")", "unknown function 'startWith'", "startsWith"),
        ("process where a < b < c", "unexpected '<'", "cannot be chained"),
        ("sequence with maxspan=5 [a where true] [b where true]", "needs a time unit", "5s"),
        ("process where a == b", "comparisons against fields", None),
        ("process where a == 1 | unique a", "not supported by Elasticsearch EQL", "head N"),
        ("sequence [a where true]", "at least two stages", None),
        ("sequence [a where true] by x [b where true]", "same number of join keys", None),
        ("sequence ![a where true] [b where true]", "needs `with maxspan", None),
        ("sample by h [a where true] | head 1", "samples do not accept pipes", None),
        ("process where arrayContains(a, \"x\")", "not supported by Elasticsearch EQL", None),
        ("process where length(a, 1) == 1", "length takes 1 arguments", None),
        ("process where startsWith(1, \"x\")", "must be string", None),
        ("sequence [a where true] with runs=101 [b where true]", "from 1 to 100", None),
        ("process where (a == 1", "ends too early", '")"'),
        ("process a == 1", "unexpected 'a'", '"where"'),
        ("process where a == \"\\d\"", "unknown escape", "raw"),
    ],
)
def test_rejections_explain_where_and_why(query, message, hint):
    with pytest.raises(QueryError) as info:
        parse(query)
    e = info.value
    assert message in e.message
    if hint:
        assert hint in (e.hint or "")
    assert e.line == 1 and e.column >= 1
    rendered = str(e)
    assert query in rendered and "^" in rendered  # the line and a caret under the spot
    caret_line = rendered.splitlines()[2]
    assert caret_line.index("^") - 2 == e.column - 1


def test_error_positions_on_later_lines():
    with pytest.raises(EqlSyntaxError) as info:
        parse("process where\n  a == 1 and\n  b ~ 2")
    assert (info.value.line, info.value.column) == (3, 5)
    with pytest.raises(EqlSemanticError) as info:
        parse("process where\n  a == 1 and bogus(b)")
    assert (info.value.line, info.value.column) == (2, 14)


def test_query_fields_in_first_use_order():
    q = parse("sequence by host.name [process where ?x == 1 and process.name : \"a\"] [any where x > 2]")
    assert [str(f) for f in ir.query_fields(q)] == ["x", "process.name", "host.name"]
