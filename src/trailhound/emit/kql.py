"""IR condition → KQL text, for threshold rules (Kibana's threshold rules take KQL, not EQL).

KQL compares keyword text case-sensitively and has no regex or single-character wildcard, so a
case-insensitive test, a regex or a `?` wildcard is refused, naming it. Values are quoted (exact)
unless they hold a wildcard; numbers are written as they are.
"""

from __future__ import annotations

import re

from ..lang import ir
from . import ConversionRefused
from .eql import print_expr

_SPECIAL = re.compile(r'([\\():<>"*{}\s])')
_OR, _AND, _NOT, _ATOM = range(1, 5)


def _field(f: ir.Expr) -> str:
    if not isinstance(f, ir.Field):
        raise ConversionRefused(f"`{print_expr(f)}` tests a computed value: KQL tests fields")
    return _SPECIAL.sub(r"\\\1", f.path)


def _quoted(v: ir.Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if v is None:
        raise ConversionRefused("a comparison with null: write `not field:*`")
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wildcard(pattern: str) -> str:
    if "?" in pattern:
        raise ConversionRefused(f"the wildcard {pattern!r} uses `?`, which KQL reads as a plain character")
    return "*".join(_SPECIAL.sub(r"\\\1", part) for part in pattern.split("*"))


def print_kql(e: ir.Expr) -> str:
    return _expr(e)[0]


def _at(e: ir.Expr, level: int) -> str:
    text, own = _expr(e)
    return text if own >= level else f"({text})"


def _refuse(e: ir.Expr, why: str) -> ConversionRefused:
    return ConversionRefused(f"`{print_expr(e)}` {why}")


def _expr(e: ir.Expr) -> tuple[str, int]:
    if isinstance(e, ir.Or):
        return " or ".join(_at(t, _AND) for t in e.terms), _OR
    if isinstance(e, ir.And):
        return " and ".join(_at(t, _NOT) for t in e.terms), _AND
    if isinstance(e, ir.Not):
        if isinstance(e.operand, ir.IsNull):
            return f"{_field(e.operand.operand)}:*", _ATOM
        return "not " + _at(e.operand, _NOT), _NOT
    if isinstance(e, ir.IsNull):
        return f"not {_field(e.operand)}:*", _NOT
    if isinstance(e, ir.Compare):
        left, right, op = e.left, e.right, e.op
        if isinstance(left, ir.Literal) and isinstance(right, ir.Field):
            left, right = right, left
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)  # type: ignore[assignment]
        if not isinstance(right, ir.Literal):
            raise _refuse(e, "compares computed values: KQL compares a field with a value")
        if op == "==":
            return f"{_field(left)}:{_quoted(right.value)}", _ATOM
        if op == "!=":
            return f"not {_field(left)}:{_quoted(right.value)}", _NOT
        return f"{_field(left)} {op} {_quoted(right.value)}", _ATOM
    if isinstance(e, ir.InSet):
        if e.case_insensitive and any(isinstance(o, ir.Literal) and isinstance(o.value, str) for o in e.options):
            raise _refuse(e, "compares text case-insensitively; KQL compares keywords as written")
        if not all(isinstance(o, ir.Literal) for o in e.options):
            raise _refuse(e, "lists computed values")
        values = [_quoted(o.value) for o in e.options if isinstance(o, ir.Literal)]
        body = values[0] if len(values) == 1 else "(" + " or ".join(values) + ")"
        return f"{_field(e.value)}:{body}", _ATOM
    if isinstance(e, ir.Match):
        if e.kind == "regex":
            raise _refuse(e, "is a regex; KQL has none")
        if e.case_insensitive:
            raise _refuse(e, "matches case-insensitively; KQL matches keywords as written")
        values = [_wildcard(p) for p in e.patterns]
        body = values[0] if len(values) == 1 else "(" + " or ".join(values) + ")"
        return f"{_field(e.value)}:{body}", _ATOM
    if isinstance(e, ir.Call) and e.name == "cidrMatch" and all(
            isinstance(a, ir.Literal) and isinstance(a.value, str) for a in e.args[1:]):
        nets = [_SPECIAL.sub(r"\\\1", str(a.value)) for a in e.args[1:] if isinstance(a, ir.Literal)]
        body = nets[0] if len(nets) == 1 else "(" + " or ".join(nets) + ")"
        return f"{_field(e.args[0])}:{body}", _ATOM
    if isinstance(e, ir.Literal) and e.value is True:
        raise _refuse(e, "matches every event")
    raise _refuse(e, "has no KQL form")


def filter_kql(f: ir.EventFilter) -> str:
    """An event filter as KQL: its category as an `event.category` test."""
    terms: list[ir.Expr] = []
    if f.category is not None:
        terms.append(ir.Compare("==", ir.Field("event.category"), ir.Literal(f.category)))
    if isinstance(f.condition, ir.And):
        terms.extend(f.condition.terms)
    elif not (isinstance(f.condition, ir.Literal) and f.condition.value is True):
        terms.append(f.condition)
    if not terms:
        raise ConversionRefused("the filter matches every event")
    return print_kql(terms[0] if len(terms) == 1 else ir.And(tuple(terms)))
