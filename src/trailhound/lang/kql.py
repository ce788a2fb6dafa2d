"""KQL text → the same IR as EQL, with Kibana's semantics for keyword fields.

* `f:value` is an exact, case-sensitive term; `f:"quoted"` too, with `*` taken literally.
* An unquoted `*` is a wildcard (case-sensitive, as Kibana sends it without
  `case_insensitive`); `?` is an ordinary character in KQL.
* `f:*` tests that the field exists; `f > v` etc. are ranges; `f:(a or b and not c)` applies
  the value logic to the field; `f:{ sub:1 and other:2 }` queries sub-fields of `f`.
* `f:10.0.0.0/8` on an address is a CIDR match, as a term query on an `ip` field is.
* Negation is Lucene's `must_not`, which the shared compilers already apply to term queries.
Free-text (field-less) search is refused: it depends on the index's default fields.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import cast

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedEOF, UnexpectedInput

from ..compile.patterns import check_pattern
from . import grammars, ir
from .errors import QueryError, transform
from .limits import check_text, check_tree_depth
from .wildcards import wildcard_query


class KqlSyntaxError(QueryError):
    """The text is not valid KQL, or uses KQL that cannot run here."""


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return grammars.lalr("kql")


def parse_kql(text: str) -> ir.Expr:
    """Parse a KQL query into an IR condition."""
    check_text(text, KqlSyntaxError)
    if not text.strip():
        return ir.Literal(True)  # an empty KQL query matches every document
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        token = getattr(e, "token", None)
        if isinstance(e, UnexpectedEOF) or (token is not None and token.type == "$END"):
            lines = text.rstrip().splitlines() or [""]
            col = len(lines[-1]) + 1
            raise KqlSyntaxError("the query ends too early", text, len(lines), col, col + 1,
                                 "close every ( and {, and give each field a value") from None
        pos = e.pos_in_stream or 0  # lark declares it None; the lexer sets the offending offset
        found = str(token or text[pos:pos + 1])
        hint = "escape special characters with a backslash, or quote the value" if found in '():<>"{}\\' else None
        raise KqlSyntaxError(f"unexpected {found!r}", text, e.line, e.column, e.column + max(1, len(found)), hint) from None
    check_tree_depth(tree, text, KqlSyntaxError)
    return transform(_ToIR(text), tree)


def parse_kql_query(text: str) -> ir.EventQuery:
    """A KQL rule query as an event query over every category."""
    return ir.EventQuery(ir.EventFilter(None, parse_kql(text)))


class _Value:
    """One value: its text (unescaped) and, for unquoted values, where the wildcards are."""

    def __init__(self, pieces: list[tuple[str, bool]], quoted: bool) -> None:
        self.pieces = pieces  # (text, is_wildcard)
        self.quoted = quoted

    @property
    def text(self) -> str:
        return "".join("*" if w else t for t, w in self.pieces)

    @property
    def has_wildcard(self) -> bool:
        return any(w for _, w in self.pieces)


_ESC = re.compile(r"\\(.)", re.S)


def _unquoted_pieces(raw: str) -> list[tuple[str, bool]]:
    pieces: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            pieces.append((raw[i + 1], False))
            i += 2
        else:
            pieces.append((ch, ch == "*"))
            i += 1
    return pieces


@v_args(meta=True)
class _ToIR(Transformer):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _err(self, meta, message: str, hint: str | None = None) -> KqlSyntaxError:
        return KqlSyntaxError(message, self.text, getattr(meta, "line", None), getattr(meta, "column", None),
                              getattr(meta, "end_column", None), hint)

    def or_query(self, meta, items):
        return _or(tuple(i for i in items if not isinstance(i, Token)))

    def and_query(self, meta, items):
        return ir.And(tuple(i for i in items if not isinstance(i, Token)))

    def not_(self, meta, items):
        return ir.Not(items[1])

    def quoted(self, meta, items):
        body = str(items[0])[1:-1]
        return _Value([(_ESC.sub(r"\1", body), False)], quoted=True)

    def unquoted(self, meta, items):
        return _Value(_unquoted_pieces(" ".join(str(t) for t in items)), quoted=False)

    def free_text(self, meta, items):
        raise self._err(meta, "free-text search (a value without a field) is not supported",
                        "name the field, e.g. process.name:ssh")

    def _field(self, meta, tok: Token) -> str:
        name = str(tok)
        if "*" in name:
            raise self._err(meta, f"wildcard field names ({name}) are not supported", "name each field")
        return _ESC.sub(r"\1", name)

    def field_value(self, meta, items):
        field = ir.Field(self._field(meta, items[0]))
        expr = _apply(items[1], field)
        for node in ir.walk(expr):
            if isinstance(node, ir.Match):
                for p in node.patterns:
                    try:
                        check_pattern(node.kind, p, node.case_insensitive, from_wildcard=True)
                    except QueryError as e:
                        raise self._err(meta, e.message, e.hint) from None
        return expr

    def field_range(self, meta, items):
        field = ir.Field(self._field(meta, items[0]))
        op, value = str(items[1]), items[2]
        if value.has_wildcard:
            raise self._err(meta, "a range bound cannot contain a wildcard")
        return ir.Compare(cast(ir.CompareOp, op), field, ir.Literal(value.text))  # the grammar's range operators

    def nested(self, meta, items):
        prefix = self._field(meta, items[0])
        return _prefix_fields(items[1], prefix)

    # value-level logic stays a small tree until it meets its field
    def value_or(self, meta, items):
        return ("or", [i for i in items if not isinstance(i, Token)])

    def value_and(self, meta, items):
        return ("and", [i for i in items if not isinstance(i, Token)])

    def value_negated(self, meta, items):
        return ("not", [items[1]])


def _apply(values, field: ir.Field) -> ir.Expr:
    if isinstance(values, _Value):
        return _term(values, field)
    kind, parts = values
    exprs = tuple(_apply(p, field) for p in parts)
    if kind == "not":
        return ir.Not(exprs[0])
    return ir.And(exprs) if kind == "and" else _or(exprs)


def _or(terms: tuple[ir.Expr, ...]) -> ir.Expr:
    """`a or b`, with the equalities (and patterns) on one field merged (ir.fold_alternatives)."""
    terms = ir.fold_alternatives(terms)
    return terms[0] if len(terms) == 1 else ir.Or(terms)


def _term(v: _Value, field: ir.Field) -> ir.Expr:
    if v.quoted or not v.has_wildcard:
        text = v.pieces[0][0] if v.quoted else "".join(t for t, _ in v.pieces)
        if not v.quoted and "/" in text and _is_cidr(text):
            return ir.Call("cidrMatch", (field, ir.Literal(text)))
        return ir.Compare("==", field, ir.Literal(text))
    return wildcard_query(field, [(t, "*" if w else "") for t, w in v.pieces])


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


def _prefix_fields(e: ir.Expr, prefix: str) -> ir.Expr:
    if isinstance(e, ir.Field):
        return ir.Field(f"{prefix}.{e.path}", e.optional)
    if isinstance(e, (ir.And, ir.Or)):
        return type(e)(tuple(_prefix_fields(t, prefix) for t in e.terms))
    if isinstance(e, ir.Not):
        return ir.Not(_prefix_fields(e.operand, prefix))
    if isinstance(e, ir.IsNull):
        return ir.IsNull(_prefix_fields(e.operand, prefix))
    if isinstance(e, ir.Compare):
        return ir.Compare(e.op, _prefix_fields(e.left, prefix), _prefix_fields(e.right, prefix))
    if isinstance(e, ir.Match):
        return ir.Match(_prefix_fields(e.value, prefix), e.kind, e.patterns, e.case_insensitive)
    if isinstance(e, ir.Call):
        return ir.Call(e.name, tuple(_prefix_fields(a, prefix) for a in e.args), e.case_insensitive)
    return e
