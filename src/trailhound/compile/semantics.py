"""Semantic decisions shared by every backend (Polars, SQL): one place for each rule."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Generic, TypeVar

from ..lang import ir
from ..lang.errors import EqlSemanticError
from ..lang.functions import FUNCTIONS
from ..lang.limits import INT64_MAX, INT64_MIN
from . import functions as F
from .dates import parse_date_ns
from .schema import FieldInfo

#: `not (x op c)` on a pushed-down range is the opposite range
FLIP: dict[ir.CompareOp, ir.CompareOp] = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
#: `c op x` written as `x op' c`
SWAP: dict[ir.CompareOp, ir.CompareOp] = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


#: the EQL functions that are arithmetic operators, which backends compile as the operator
ARITH_FUNCTIONS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "modulo": "%"}


T_ = TypeVar("T_")


def balanced(parts: list[T_], combine: Callable[[T_, T_], T_]) -> T_:
    """`a op b op ...` as a balanced tree of `combine`: a deep left chain makes Polars' optimizer
    quadratic and sqlglot's generator recurse once per term."""
    while len(parts) > 1:
        parts = [combine(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]


def is_pushable(e: ir.Expr) -> bool:
    """A field-vs-constants predicate, which ES runs as a two-valued Lucene query."""
    if isinstance(e, ir.Compare):
        sides = (e.left, e.right)
        return any(isinstance(s, ir.Field) for s in sides) and any(isinstance(s, ir.Literal) for s in sides)
    if isinstance(e, (ir.InSet, ir.Match)):
        return isinstance(e.value, ir.Field) and all(isinstance(o, ir.Literal) for o in getattr(e, "options", ()))
    if isinstance(e, ir.IsNull):
        return True
    if isinstance(e, ir.Call) and e.name == "cidrMatch":
        # ES turns cidrMatch(field, constants) into a term query on the ip field
        return isinstance(e.args[0], ir.Field) and all(isinstance(a, ir.Literal) for a in e.args[1:])
    return False





def check_int(v: int) -> int:
    """An integer constant as a long; EqlSemanticError beyond (ES computes integers as Java longs)."""
    if not INT64_MIN <= v <= INT64_MAX:
        digits = str(v) if abs(v) < 10 ** 40 else f"of {v.bit_length()} bits"
        raise EqlSemanticError(f"integer {digits} overflows a 64-bit integer",
                               hint="ES computes integers as Java longs; write a decimal (e.g. 1.0) to compute in doubles")
    return v


def version_key(v: object) -> str | None:
    """A string whose byte order is ES's `version` field order (invalid versions last)."""
    if v is None:
        return None
    s = str(v)
    m = re.fullmatch(r"(\d+(?:\.\d+)*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?", s)
    if not m:
        return "1" + s
    nums = ".".join(f"{int(p):012d}" for p in m.group(1).split("."))
    pre = m.group(2)
    return "0" + nums + ("!" + pre if pre else "~")


def coerce_const(v: object, kind: str, info: FieldInfo | None = None) -> object:
    """A constant converted to a field's kind, as ES converts query values; ... if impossible."""
    if v is None:
        return None
    if kind == "string" or kind == "ip":
        return F.to_string(v)
    if kind in ("int", "float"):
        if isinstance(v, bool):
            return ...
        if isinstance(v, (int, float)):
            return v
        n = F.number(v)
        return ... if n is None else n
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v in ("true", "false"):
            return v == "true"
        return ...
    if kind == "date":
        ns = parse_date_ns(v, nanos=bool(info and info.es_type == "date_nanos"))
        return ... if ns is None else ns
    if kind == "version":
        return version_key(v)
    return v


def const_kind(v: object) -> str:
    if v is None:
        return "null"
    return {bool: "bool", int: "int", float: "float"}.get(type(v), "string")


def fold_compare(op: str, a: F.Value, b: F.Value) -> bool | None:
    """`a op b` for two constants, as the compilers compare a value with a constant: the right one
    converted to the left one's kind (None when it cannot be). Both backends fold it alike."""
    if a is None or b is None:
        return None
    ka, kb = const_kind(a), const_kind(b)
    if {ka, kb} != {"int", "float"} and ka != kb:
        b = coerce_const(b, ka)
        if b is ... or b is None:
            return None
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def check_arith_kinds(a_kind: str, b_kind: str | None = None) -> None:
    """Arithmetic takes numbers (ES's verifier refuses the rest)."""
    for k in (a_kind, b_kind):
        if k is not None and k not in ("int", "float", "null"):
            raise EqlSemanticError(f"arithmetic needs numbers, found a {k} value",
                                   hint="convert text with number(...)")


#: value kinds each declared argument kind takes (ES's verifier refuses the others)
_ARG_KINDS = {"string": {"string", "ip", "version", "null"}, "numeric": {"int", "float", "null"},
              "boolean": {"bool", "null"}}


def check_arg_kinds(name: str, kinds: list[str]) -> None:
    """A function's arguments against its signature, by the kinds of the values they read."""
    sig = FUNCTIONS.get(name.lower())
    if sig is None:
        return
    for i, kind in enumerate(kinds):
        want = sig.arg_kind(i)
        if want in _ARG_KINDS and kind not in _ARG_KINDS[want]:
            raise EqlSemanticError(f"argument {i + 1} of {sig.name} must be {want}, found a {kind} value",
                                   hint="convert it first: string(...) or number(...)")


E = TypeVar("E")


class ConditionCompiler(Generic[E]):
    """The boolean skeleton every backend shares: De Morgan, and ES's pushdown negation.

    A backend supplies how to spell conjunction, disjunction, negation, "null is false" and
    the evaluation of one atom (with any-element semantics over arrays).
    """

    def predicate(self, e: ir.Expr) -> E:
        """A boolean; null means "no match" to the caller."""
        return self._bool(e, False)

    def _bool(self, e: ir.Expr, negated: bool) -> E:
        if isinstance(e, ir.Not):
            return self._bool(e.operand, not negated)
        if isinstance(e, (ir.And, ir.Or)):
            parts = [self._bool(t, negated) for t in e.terms]
            conj = isinstance(e, ir.And) != negated  # De Morgan under negation
            return self.all_of(parts) if conj else self.any_of(parts)
        return self._atom(e, negated)

    def _atom(self, e: ir.Expr, negated: bool) -> E:
        if isinstance(e, ir.Compare) and e.op == "!=" and is_pushable(e):
            e, negated = replace(e, op="=="), not negated  # Lucene: must_not(term)
        if negated and isinstance(e, ir.Compare) and e.op in FLIP and is_pushable(e):
            e, negated = replace(e, op=FLIP[e.op]), False  # the opposite range
        core = self.any_element(e)
        if is_pushable(e):
            core = self.false_if_null(core)  # a term query never matches a missing field
        return self.negate(core) if negated else core

    def _scalar_atom(self, e: ir.Expr, bind: dict) -> E:
        """One predicate on scalar values (`bind` maps array fields to their element)."""
        if isinstance(e, ir.Compare):
            return self._compare(e, bind)
        if isinstance(e, ir.InSet):
            return self._in(e, bind)
        if isinstance(e, ir.Match):
            return self._match(e, bind)
        if isinstance(e, ir.IsNull):
            return self.is_null(self.value(e.operand, bind).expr)
        v = self.value(e, bind)
        if v.kind in ("bool", "null"):
            return self.as_boolean(v.expr)
        # ES: a non-boolean condition is a verification error
        raise EqlSemanticError(f"condition {type(e).__name__} is not a boolean")

    # backend hooks
    def all_of(self, parts: list[E]) -> E:
        raise NotImplementedError

    def any_of(self, parts: list[E]) -> E:
        raise NotImplementedError

    def negate(self, e: E) -> E:
        raise NotImplementedError

    def false_if_null(self, e: E) -> E:
        raise NotImplementedError

    def any_element(self, e: ir.Expr) -> E:
        raise NotImplementedError

    def is_null(self, value: E) -> E:
        raise NotImplementedError

    def as_boolean(self, value: E) -> E:
        raise NotImplementedError

    def value(self, e: ir.Expr, bind: dict):
        raise NotImplementedError

    def _compare(self, e: ir.Compare, bind: dict) -> E:
        raise NotImplementedError

    def _in(self, e: ir.InSet, bind: dict) -> E:
        raise NotImplementedError

    def _match(self, e: ir.Match, bind: dict) -> E:
        raise NotImplementedError
