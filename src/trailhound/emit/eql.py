"""IR → EQL text: the printer whose output our parser reads back to the same IR.

`parse(print_query(q)) == q` for every query the parser produces (tested over the ES EQL QA suite
and the SSH pack). Expressions are printed with the fewest parentheses the grammar's precedence
allows; strings are always double-quoted with escapes, never raw; field parts that are not plain
names (or are keywords) are back-quoted.
"""

from __future__ import annotations

import re

from ..lang import ir

# precedence levels, loosest first (lang/eql.lark: or < and < not < predicate < sum < product < unary)
_OR, _AND, _NOT, _PRED, _SUM, _PRODUCT, _UNARY, _PRIMARY = range(1, 9)

_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_@]*\Z")
#: words the lexer reads as keywords or operators, so they cannot be a bare field part or category
KEYWORDS = frozenset({
    "any", "sequence", "sample", "by", "with", "until", "and", "or", "not", "true", "false", "null", "in", "like",
    "regex", "where", "join", "of",
})
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


def string(value: str) -> str:
    """A double-quoted EQL string; control characters as escapes."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u{%X}" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def literal(value: ir.Scalar) -> str:
    if isinstance(value, str):
        return string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".e") else text + ".0"
    return str(value)


def field_name(path: str) -> str:
    """A dotted field path with each part that needs it back-quoted."""
    parts = path.split(".")
    return ".".join(p if _NAME.match(p) and p not in KEYWORDS else "`" + p.replace("`", "``") + "`" for p in parts)


def field(f: ir.Field) -> str:
    return ("?" if f.optional else "") + field_name(f.path)


def duration(ms: int) -> str:
    """maxspan in the largest unit that divides it exactly."""
    for unit, size in _UNITS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def print_expr(e: ir.Expr) -> str:
    return _expr(e)[0]


def _at(e: ir.Expr, level: int) -> str:
    """`e` printed where the grammar needs at least `level`; parenthesized when it binds looser."""
    text, own = _expr(e)
    return text if own >= level else f"({text})"


def _expr(e: ir.Expr) -> tuple[str, int]:
    """(text, precedence level of that text)."""
    if isinstance(e, ir.Field):
        return field(e), _PRIMARY
    if isinstance(e, ir.Literal):
        text = literal(e.value)
        return text, _UNARY if text.startswith("-") else _PRIMARY
    if isinstance(e, ir.Or):
        return " or ".join(_at(t, _AND) for t in e.terms), _OR
    if isinstance(e, ir.And):
        return " and ".join(_at(t, _NOT) for t in e.terms), _AND
    if isinstance(e, ir.Not):
        inner = e.operand
        if isinstance(inner, ir.IsNull):
            return f"{_at(inner.operand, _SUM)} != null", _PRED
        if isinstance(inner, ir.InSet):
            return _inset(inner, negated=True), _PRED
        return "not " + _at(inner, _NOT), _NOT
    if isinstance(e, ir.IsNull):
        return f"{_at(e.operand, _SUM)} == null", _PRED
    if isinstance(e, ir.Compare):
        return f"{_at(e.left, _SUM)} {e.op} {_at(e.right, _SUM)}", _PRED
    if isinstance(e, ir.InSet):
        return _inset(e, negated=False), _PRED
    if isinstance(e, ir.Match):
        op = ("regex" if e.kind == "regex" else "like") + ("~" if e.case_insensitive else "")
        if op == "like~":
            op = ":"  # the usual spelling of an insensitive wildcard; the same IR
        pats = [string(p) for p in e.patterns]
        rhs = pats[0] if len(pats) == 1 else "(" + ", ".join(pats) + ")"
        return f"{_at(e.value, _SUM)} {op} {rhs}", _PRED
    if isinstance(e, ir.Arith):
        if e.op in ("+", "-"):
            return f"{_at(e.left, _SUM)} {e.op} {_at(e.right, _PRODUCT)}", _SUM
        return f"{_at(e.left, _PRODUCT)} {e.op} {_at(e.right, _UNARY)}", _PRODUCT
    if isinstance(e, ir.Negate):
        operand = _at(e.operand, _UNARY)
        return "-" + (" " + operand if operand.startswith("-") else operand), _UNARY
    if isinstance(e, ir.Call):
        if e.name == ir.TIME_PART:  # internal (a Sigma time part): EQL has no such function
            from . import ConversionRefused

            what = f"|{e.args[1].value}" if len(e.args) == 2 and isinstance(e.args[1], ir.Literal) else e.name
            raise ConversionRefused(f"the time-part modifier {what}: EQL has no function for a part of a date")
        name = e.name + ("~" if e.case_insensitive else "")
        return f"{name}({', '.join(print_expr(a) for a in e.args)})", _PRIMARY
    raise TypeError(f"not an EQL expression: {type(e).__name__}")


def _inset(e: ir.InSet, negated: bool) -> str:
    op = ("not " if negated else "") + ("in~" if e.case_insensitive else "in")
    return f"{_at(e.value, _SUM)} {op} ({', '.join(print_expr(o) for o in e.options)})"


def category(name: str | None) -> str:
    if name is None:
        return "any"
    return name if _NAME.match(name) and name not in KEYWORDS else string(name)


def event_filter(f: ir.EventFilter) -> str:
    return f"{category(f.category)} where {print_expr(f.condition)}"


def _keys(keys: tuple[ir.Field, ...]) -> str:
    return ", ".join(field(k) for k in keys)


def _shared_keys(stages: list[ir.Stage]) -> int:
    """How many leading keys every stage shares: those print once, after `sequence by`."""
    n = min(len(s.keys) for s in stages)
    for i in range(n):
        if any(s.keys[i] != stages[0].keys[i] for s in stages):
            return i
    return n


def _stage(s: ir.Stage, shared: int, indent: str) -> str:
    text = f"{indent}{'!' if s.missing else ''}[{event_filter(s.filter)}]"
    own = s.keys[shared:]
    if own:
        text += " by " + _keys(own)
    if s.runs != 1:
        text += f" with runs={s.runs}"
    return text


def print_query(q: ir.Query, indent: str = "  ") -> str:
    """The query as EQL text: one line for an event query, one line per stage otherwise."""
    if isinstance(q, ir.EventQuery):
        text = event_filter(q.filter)
    elif isinstance(q, ir.SequenceQuery):
        stages = list(q.stages) + ([q.until] if q.until is not None else [])
        shared = _shared_keys(stages)
        head = "sequence"
        if shared:
            head += " by " + _keys(stages[0].keys[:shared])
        if q.maxspan_ms is not None:
            head += f" with maxspan={duration(q.maxspan_ms)}"
        lines = [head] + [_stage(s, shared, indent) for s in q.stages]
        if q.until is not None:
            lines.append("until " + _stage(q.until, shared, "").lstrip())
        text = "\n".join(lines)
    elif isinstance(q, ir.SampleQuery):
        stages = list(q.stages)
        shared = _shared_keys(stages)
        head = "sample" + (" by " + _keys(stages[0].keys[:shared]) if shared else "")
        text = "\n".join([head] + [_stage(s, shared, indent) for s in stages])
    else:
        raise TypeError(f"not an EQL query: {type(q).__name__}")
    for p in q.pipes:
        text += f" | {p.kind} {p.count}"
    return text
