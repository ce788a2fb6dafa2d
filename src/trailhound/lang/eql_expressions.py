"""EQL expressions (the conditions of a filter) → IR, with Elasticsearch's acceptance rules:
the expression half of the parse-tree transformer, which parser.py's query rules extend."""

from __future__ import annotations

import re
from typing import Any, Literal, cast

from lark import Token, Transformer, v_args

from ..compile import functions as F
from ..compile.patterns import check_pattern
from . import ir
from .errors import EqlSemanticError, QueryError, nearest
from .functions import FUNCTIONS, UNSUPPORTED, canonical_names, literal_kind
from .limits import INT64_MAX, INT64_MIN, MAX_DEPTH, depth_hint, expr_depth

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "b": "\b", "f": "\f"}
_ESCAPE_RE = re.compile(r"\\(u\{[0-9a-fA-F]{1,8}\}|.)", re.S)


def _is_field_free(e: ir.Expr) -> bool:
    return not ir.fields_of(e)


def _has_required_field(e: ir.Expr) -> bool:
    # `?f` may be unmapped and fold to null, so `?x == ?y` is decided at compile time
    return any(not f.optional for f in ir.fields_of(e))


@v_args(meta=True)
class ExpressionRules(Transformer):
    """The grammar's expression rules; a subclass adds the query rules (parser._ToIR)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self._depths: dict = {}  # expr_depth's memo for arithmetic chains

    # -- helpers
    def _err(self, meta: Any, message: str, hint: str | None = None) -> EqlSemanticError:
        line = getattr(meta, "line", None)
        col = getattr(meta, "column", None)
        end = getattr(meta, "end_column", None) if getattr(meta, "end_line", line) == line else None
        return EqlSemanticError(message, self.text, line, col, end, hint)

    def _tok_err(self, tok: Token, message: str, hint: str | None = None) -> EqlSemanticError:
        end = None if tok.column is None else tok.column + len(str(tok))
        return EqlSemanticError(message, self.text, tok.line, tok.column, end, hint)

    def or_expr(self, meta, items):
        terms = ir.fold_alternatives(tuple(_flatten(ir.Or, [i for i in items if not isinstance(i, Token)])))
        return terms[0] if len(terms) == 1 else ir.Or(terms)

    def and_expr(self, meta, items):
        return ir.And(tuple(_flatten(ir.And, [i for i in items if not isinstance(i, Token)])))

    def not_(self, meta, items):
        return ir.Not(items[1])

    def comparison(self, meta, items):
        left, op, right = items
        op = str(op)
        if isinstance(right, ir.Literal) and right.value is None and op in ("==", "!="):
            e: ir.Expr = ir.IsNull(left)
            return e if op == "==" else ir.Not(e)
        if isinstance(left, ir.Literal) and left.value is None and op in ("==", "!="):
            e = ir.IsNull(right)
            return e if op == "==" else ir.Not(e)
        if _has_required_field(left) and _has_required_field(right):
            raise self._err(meta, "comparisons against fields are not supported", "compare a field with a constant")
        return ir.Compare(cast(ir.CompareOp, op), left, right)  # the grammar's comparison operators

    def assign_error(self, meta, items):
        raise self._tok_err(items[1], "`=` is not an EQL operator", "use == to compare")

    def _set_options(self, meta, value, options):
        if not _is_field_free(value) and any(not _is_field_free(o) for o in options):
            raise self._err(meta, "comparisons against fields are not supported", "list constants only")
        return tuple(options)

    def in_(self, meta, items):
        value, op, options = items
        return ir.InSet(value, self._set_options(meta, value, options), str(op) == "in~")

    def not_in(self, meta, items):
        value, _not, op, options = items
        return ir.Not(ir.InSet(value, self._set_options(meta, value, options), str(op) == "in~"))

    def expr_list(self, meta, items):
        return list(items)

    def match(self, meta, items):
        value, op, pats = items
        op = str(op)
        pats = pats if isinstance(pats, list) else [pats]
        literals = []
        for p in pats:
            if not isinstance(p, ir.Literal):
                raise self._err(meta, f"the right side of {op!r} must be constants")
            literals.append(p.value)
        if op == ":" and any(not isinstance(v, str) for v in literals):
            # `:` on a non-string constant is insensitive equality in ES: no pattern to expand
            if all(not isinstance(v, str) for v in literals):
                return ir.InSet(value, tuple(ir.Literal(v) for v in literals), True)
        patterns = [v for v in literals if isinstance(v, str)]
        if len(patterns) != len(literals):
            raise self._err(meta, f"{op!r} takes string patterns")
        kind: Literal["wildcard", "regex"] = "regex" if op.startswith("regex") else "wildcard"
        insensitive = op == ":" or op.endswith("~")
        for p in patterns:
            try:
                check_pattern(kind, p, insensitive)
            except QueryError as e:
                raise self._err(meta, e.message, e.hint) from None
        return ir.Match(value, kind, tuple(patterns), insensitive)

    def unary(self, meta, items):
        op, operand = items
        if str(op) == "+":
            return operand
        if isinstance(operand, ir.Literal) and isinstance(operand.value, (int, float)) and not isinstance(operand.value, bool):
            return ir.Literal(-operand.value)
        self._check_numeric(meta, operand)
        return ir.Negate(operand)

    def sum(self, meta, items):
        return self._arith_chain(meta, items)

    def product(self, meta, items):
        return self._arith_chain(meta, items)

    def _arith_chain(self, meta, items: list) -> ir.Expr:
        for operand in items[::2]:
            self._check_numeric(meta, operand)
        acc = items[0]
        for op, rhs in zip(items[1::2], items[2::2]):
            acc = ir.Arith(cast(ir.ArithOp, str(op)), acc, rhs)  # ADD_OP / MUL_OP tokens
            self._check_overflow(meta, acc)
        # a chain is a left-deep tree: `1 + 1 + ... + 1` nests once per operator
        depth = expr_depth(acc, self._depths)
        if depth > MAX_DEPTH:
            raise self._err(meta, f"the query nests {depth} levels deep; the limit is {MAX_DEPTH}", depth_hint())
        return acc

    def _check_numeric(self, meta, operand: ir.Expr) -> None:
        if isinstance(operand, ir.Literal) and isinstance(operand.value, (str, bool)):
            raise self._err(meta, f"arithmetic needs numbers, found {operand}", "convert text with number(...)")

    def _check_overflow(self, meta, e: ir.Arith) -> None:
        """Constant arithmetic beyond a long fails in ES (Java's exact arithmetic): say so here."""
        a, b = e.left, e.right
        if not (isinstance(a, ir.Literal) and isinstance(b, ir.Literal)):
            return
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (a.value, b.value)):
            return
        fn = F.ARITH_OPS[e.op]
        v = fn(a.value, b.value)
        if v is not None and not INT64_MIN <= v <= INT64_MAX:
            raise self._err(meta, f"{a} {e.op} {b} overflows a 64-bit integer",
                            "ES computes integers as Java longs; write a decimal (e.g. 1.0) to compute in doubles")

    def function_call(self, meta, items):
        name_tok, *args = items
        args = [a for a in args if a is not None]
        raw = str(name_tok)
        insensitive = raw.endswith("~")
        base = raw.rstrip("~")
        sig = FUNCTIONS.get(base.lower())
        if sig is None:
            if base.lower() in UNSUPPORTED:
                raise self._tok_err(name_tok, f"function {UNSUPPORTED[base.lower()]!r} is not supported by Elasticsearch EQL")
            near = nearest(base, canonical_names())
            raise self._tok_err(name_tok, f"unknown function {base!r}", f"did you mean {near!r}?" if near else None)
        if insensitive and not sig.insensitive_variant:
            raise self._tok_err(name_tok, f"function {sig.name!r} has no case-insensitive (~) form")
        if len(args) < sig.min_args or (sig.max_args is not None and len(args) > sig.max_args):
            want = (
                f"{sig.min_args}" if sig.min_args == sig.max_args
                else f"at least {sig.min_args}" if sig.max_args is None
                else f"{sig.min_args} to {sig.max_args}"
            )
            raise self._err(meta, f"{sig.name} takes {want} arguments, got {len(args)}")
        for i, a in enumerate(args):
            want_kind = sig.arg_kind(i)
            if isinstance(a, ir.Literal) and want_kind != "any":
                got = literal_kind(a.value)
                if got is not None and got != want_kind:
                    raise self._err(meta, f"argument {i + 1} of {sig.name} must be {want_kind}, found {a}")
        if sig.name == "cidrMatch":
            self._check_cidrs(meta, args[1:])
        return ir.Call(sig.name, tuple(args), insensitive)

    def _check_cidrs(self, meta, args: list) -> None:
        """ES takes cidrMatch's networks as constants and refuses one it cannot parse."""
        for i, a in enumerate(args, 2):
            if ir.fields_of(a):
                raise self._err(meta, f"argument {i} of cidrMatch must be a constant network, found a field",
                                'write the network, e.g. cidrMatch(source.ip, "10.0.0.0/8")')
            if isinstance(a, ir.Literal) and isinstance(a.value, str):
                try:
                    F.network(a.value)
                except QueryError as e:
                    raise self._err(meta, e.message, e.hint) from None

    def field(self, meta, items):
        optional, path = items
        return ir.Field(path, optional is not None)

    def field_path(self, meta, items):
        return ".".join(items)

    def field_part(self, meta, items):
        tok = items[0]
        if isinstance(tok, str) and not isinstance(tok, Token):
            return tok
        s = str(tok)
        if tok.type == "BACKTICK_NAME":
            return s[1:-1].replace("``", "`")
        return s

    def keyword_as_name(self, meta, items):
        return str(items[0])

    def number(self, meta, items):
        return ir.Literal(self._number(items[0]))

    def _number(self, tok: Token) -> int | float:
        """A number as ES reads it: a long, or a double when it is too large for one; too large
        for a double is an error ("Number [...] is too large")."""
        value = _number(tok)
        if value is None:
            shown = str(tok) if len(str(tok)) <= 40 else str(tok)[:20] + "..." + str(tok)[-10:]
            raise self._tok_err(tok, f"number {shown} is too large", "numbers go up to about 1.8e308")
        return value

    def true(self, meta, items):
        return ir.Literal(True)

    def false(self, meta, items):
        return ir.Literal(False)

    def null(self, meta, items):
        return ir.Literal(None)

    def string(self, meta, items):
        tok = items[0]
        s = str(tok)
        if tok.type == "RAW_STRING":
            return ir.Literal(s[3:-3])
        if tok.type == "SINGLE_QUOTED":
            raise self._tok_err(tok, "single-quoted strings are not EQL", 'use double quotes: "text" (or """raw""")')
        return ir.Literal(self._unescape(tok, s[1:-1]))

    def _unescape(self, tok: Token, body: str) -> str:
        def repl(m: re.Match) -> str:
            esc = m.group(1)
            if esc.startswith("u{"):
                code = int(esc[2:-1], 16)
                if 0xD800 <= code <= 0xDFFF:
                    raise self._tok_err(tok, f"\\{esc} is a surrogate code, not a character",
                                        "write the character itself, or its code point above U+FFFF")
                if code > 0x10FFFF:
                    raise self._tok_err(tok, f"\\{esc} is not a Unicode character", "code points go up to 10FFFF")
                return chr(code)
            if esc in _ESCAPES:
                return _ESCAPES[esc]
            raise self._tok_err(tok, f"unknown escape sequence \\{esc} in string", 'write \\\\ for a backslash, or use a """raw""" string')

        return _ESCAPE_RE.sub(repl, body)


def _number(tok: Any) -> int | float | None:
    """An integer that fits a long, else a double; None when it is too large for a double."""
    s = str(tok)
    if re.fullmatch(r"\d+", s):
        digits = s.lstrip("0")
        if len(digits) <= 19 and int(s) <= INT64_MAX:
            return int(s)
    v = float(s)
    return v if v != float("inf") else None


def _flatten(kind: type[ir.And] | type[ir.Or], items: list[ir.Expr]) -> list[ir.Expr]:
    out: list[ir.Expr] = []
    for i in items:
        out.extend(i.terms if isinstance(i, kind) else [i])
    return out
