"""EQL text → IR, with Elasticsearch's acceptance rules and author-friendly errors."""

from __future__ import annotations

import functools
import re
from typing import Any, Literal, cast

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..compile import functions as F
from ..compile.patterns import check_pattern
from . import grammars, ir
from .errors import EqlSemanticError, EqlSyntaxError, QueryError, nearest, transform
from .functions import FUNCTIONS, UNSUPPORTED, canonical_names, literal_kind
from .limits import INT64_MAX, INT64_MIN, MAX_DEPTH, check_text, depth_hint, expr_depth, tree_depth

TIME_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_RUNS = 100
SUPPORTED_PIPES = ("head", "tail")
UNSUPPORTED_PIPES = ("count", "filter", "sort", "unique", "unique_count")


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return grammars.lalr("eql")


def parse(text: str) -> ir.Query:
    """Parse one EQL query. Raises EqlSyntaxError / EqlSemanticError."""
    check_text(text, EqlSyntaxError)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(text, e) from None
    depth, meta = tree_depth(tree)
    if depth > MAX_DEPTH:
        raise EqlSemanticError(f"the query nests {depth} levels deep; the limit is {MAX_DEPTH}", text,
                               getattr(meta, "line", None), getattr(meta, "column", None), None, depth_hint())
    query = transform(_ToIR(text), tree)
    check_query_depth(query, text, EqlSemanticError)
    return query


def check_query_depth(query: ir.Query, text: str, error: type[QueryError]) -> None:
    """The last guard: no expression of the query nests deeper than the compilers may recurse."""
    exprs = [f.condition for f in ir.query_filters(query)]
    if not isinstance(query, ir.EventQuery):
        exprs += [k for s in query.stages for k in s.keys]
    memo: dict = {}
    depth = max((expr_depth(e, memo) for e in exprs), default=0)
    if depth > MAX_DEPTH:
        raise error(f"the query nests {depth} levels deep; the limit is {MAX_DEPTH}", text, 1, 1, None, depth_hint())


# ---- syntax errors ----------------------------------------------------------------

_TOKEN_WORDS = {
    "LSQB": '"["', "RSQB": '"]"', "LPAR": '"("', "RPAR": '")"', "COMMA": '","', "VBAR": '"|"',
    "WHERE": '"where"', "NAME": "a name", "STRING": "a string", "NUMBER": "a number",
    "COMP_OP": "a comparison", "MATCH_OP": '":", "like" or "regex"', "IN_OP": '"in"',
    "FUNC_NAME": "a function", "AND": '"and"', "OR": '"or"', "NOT": '"not"', "BY": '"by"',
    "WITH": '"with"', "UNTIL": '"until"', "DOT": '"."', "EQUAL": '"="', "RAW_STRING": "a string",
    "BACKTICK_NAME": "a `quoted` name", "SINGLE_QUOTED": "a string", "OPTIONAL": '"?"', "ANY": '"any"', "__ANON_0": '"!["', "BANG": '"!["',
}


def _describe_expected(expected: set[str]) -> str:
    words = sorted({_TOKEN_WORDS.get(t, t.lower()) for t in expected if not t.startswith("$")})
    if len(words) > 8:
        return ""
    return "expected " + ", ".join(words) if words else ""


def _syntax_error(text: str, e: UnexpectedInput) -> EqlSyntaxError:
    line, col = e.line, e.column
    hint = None
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream or 0  # lark declares it None; the lexer sets the offending offset
        ch = text[pos] if pos < len(text) else ""
        msg = f"unexpected character {ch!r}"
        if ch == "'":
            hint = 'strings are written in double quotes: "text" (or """raw""")'
        elif ch == "=":
            hint = "use == to compare"
        elif ch == "?" or text[pos:].startswith('?"'):
            hint = '?"..." raw strings are not EQL; use """..."""'
        return EqlSyntaxError(msg, text, line, col, col + 1, hint)
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        expected = getattr(e, "expected", None) or getattr(e, "accepts", set()) or set()
        lines = text.rstrip().splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        return EqlSyntaxError("the query ends too early", text, line, col, col + 1, _describe_expected(set(expected)) or None)
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    value = str(tok)
    end = col + max(1, len(value))
    if tok.type == "SINGLE_QUOTED":
        hint = 'strings are written in double quotes: "text" (or """raw""")'
    elif tok.type == "ASSIGN" or value == "=":
        hint = "use == to compare"
    elif tok.type == "COMP_OP":
        hint = "comparisons cannot be chained; combine them with and"
    elif tok.type in ("STRING", "RAW_STRING") and text[: tok.start_pos].rstrip().endswith("?"):
        hint = '?"..." raw strings are not EQL; use """..."""'
    elif value.lower() == "join":
        hint = "join is not supported by Elasticsearch EQL; use sequence"
    elif value.lower() in ("of",):
        hint = "lineage (descendant of, child of, event of) is not supported by Elasticsearch EQL"
    else:
        hint = _describe_expected(set(e.expected)) or None
    return EqlSyntaxError(f"unexpected {value!r}", text, line, col, end, hint)


# ---- tree → IR ----------------------------------------------------------------------

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'", "b": "\b", "f": "\f"}
_ESCAPE_RE = re.compile(r"\\(u\{[0-9a-fA-F]{1,8}\}|.)", re.S)


def _is_field_free(e: ir.Expr) -> bool:
    return not ir.fields_of(e)


def _has_required_field(e: ir.Expr) -> bool:
    # `?f` may be unmapped and fold to null, so `?x == ?y` is decided at compile time
    return any(not f.optional for f in ir.fields_of(e))


@v_args(meta=True)
class _ToIR(Transformer):
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

    # -- queries
    def query(self, meta, items):
        base, *pipes = items
        if isinstance(base, ir.SampleQuery) and pipes:
            raise self._err(meta, "samples do not accept pipes")
        return type(base)(**{**base.__dict__, "pipes": tuple(pipes)})

    def event_query(self, meta, items):
        return ir.EventQuery(items[0])

    def event_filter(self, meta, items):
        category, cond = items
        return ir.EventFilter(category, cond)

    def any_category(self, meta, items):
        return None

    def name_category(self, meta, items):
        return str(items[0])

    def string_category(self, meta, items):
        return items[0].value

    def sequence_by_after_with(self, meta, items):
        raise self._err(meta, "sequence keys must come before `with`", "write: sequence by <keys> with maxspan=<time>")

    def sequence(self, meta, items):
        items = [i for i in items if not (isinstance(i, Token) and i.type == "SEQUENCE")]
        keys: tuple[ir.Field, ...] = ()
        maxspan = None
        stages: list[ir.Stage] = []
        until = None
        for it in items:
            if isinstance(it, _JoinBy):
                keys = it.keys
            elif isinstance(it, _MaxSpan):
                maxspan = it.ms
            elif isinstance(it, _Until):
                until = it.stage
            elif isinstance(it, ir.Stage):
                stages.append(it)
        stages = [ir.Stage(s.filter, keys + s.keys, s.missing, s.runs) for s in stages]
        if until is not None:
            if until.missing:
                raise self._err(meta, "an until stage cannot be a missing event")
            until = ir.Stage(until.filter, keys + until.keys, False, 1)
        total = sum(s.runs for s in stages)
        if total < 2:
            raise self._err(meta, "a sequence needs at least two stages", "use an event query for a single filter")
        if all(s.missing for s in stages):
            raise self._err(meta, "a sequence needs at least one stage that is not a missing event")
        if any(s.missing for s in stages) and maxspan is None:
            raise self._err(meta, "a sequence with missing events (![...]) needs `with maxspan=...`")
        self._check_key_counts(meta, stages + ([until] if until else []))
        return ir.SequenceQuery(tuple(stages), maxspan, until)

    def sample(self, meta, items):
        keys: tuple[ir.Field, ...] = ()
        stages: list[ir.Stage] = []
        for it in items:
            if isinstance(it, _JoinBy):
                keys = it.keys
            elif isinstance(it, ir.Stage):
                if it.missing:
                    raise self._err(meta, "samples do not support missing events (![...])")
                if it.runs != 1:
                    raise self._err(meta, "samples do not support `with runs`")
                stages.append(ir.Stage(it.filter, keys + it.keys))
        self._check_key_counts(meta, stages)
        if not stages[0].keys:
            raise self._err(meta, "a sample needs join keys", "write: sample by <field> [...] [...]")
        return ir.SampleQuery(tuple(stages))

    def _check_key_counts(self, meta, stages: list[ir.Stage]) -> None:
        counts = {len(s.keys) for s in stages}
        if len(counts) > 1:
            raise self._err(
                meta,
                "every stage must have the same number of join keys "
                f"(found {', '.join(str(len(s.keys)) for s in stages)})",
                "keys match by position across stages",
            )

    def seq_params(self, meta, items):
        _, name, ms = items
        if str(name) != "maxspan":
            raise self._tok_err(name, f"unknown sequence parameter {str(name)!r}", "the only one is maxspan, e.g. with maxspan=5m")
        if ms <= 0:
            raise self._err(meta, "maxspan must be positive")
        return _MaxSpan(ms)

    def time_value(self, meta, items):
        num, unit = items
        value = self._number(num)
        if unit is None:
            raise self._tok_err(num, "maxspan needs a time unit", f"write {num}s (units: ms, s, m, h, d)")
        u = str(unit)
        if u not in TIME_UNITS_MS:
            raise self._tok_err(unit, f"unknown time unit {u!r}", "units are ms, s, m, h, d")
        if not isinstance(value, int) and str(num).isdigit():
            raise self._tok_err(num, "maxspan is too long", "the longest is about 292 years")
        if not isinstance(value, int):
            raise self._tok_err(num, "maxspan must be a whole number", "use a smaller unit, e.g. 1500ms")
        if value * TIME_UNITS_MS[u] > INT64_MAX // 1_000_000:
            raise self._tok_err(num, "maxspan is too long", "the longest is about 292 years")
        return value * TIME_UNITS_MS[u]

    def until(self, meta, items):
        return _Until(items[1])

    def stage(self, meta, items):
        (missing, filt), join, runs = items
        keys = join.keys if join is not None else ()
        return ir.Stage(filt, keys, missing, runs if runs is not None else 1)

    def present_stage(self, meta, items):
        return (False, items[0])

    def missing_stage(self, meta, items):
        return (True, items[0])

    def runs(self, meta, items):
        _, name, num = items
        if str(name) != "runs":
            raise self._tok_err(name, f"unknown stage parameter {str(name)!r}", "the only one is runs, e.g. with runs=3")
        n = self._number(num)
        if not isinstance(n, int) or not 1 <= n <= MAX_RUNS:
            raise self._tok_err(num, f"runs must be a whole number from 1 to {MAX_RUNS}")
        return n

    def join_by(self, meta, items):
        return _JoinBy(tuple(k for k in items if not isinstance(k, Token)))

    def join_key(self, meta, items):
        key = items[0]
        if not isinstance(key, ir.Field):
            raise self._err(meta, "join keys must be fields", "compute keys in the data; `by f * 2` is not supported")
        return key

    def pipe(self, meta, items):
        name, *args = items
        kind = str(name)
        args = [a for a in args if a is not None]
        if kind not in SUPPORTED_PIPES:
            why = "not supported by Elasticsearch EQL" if kind in UNSUPPORTED_PIPES else "unknown"
            raise self._tok_err(name, f"pipe {kind!r} is {why}", "supported pipes: head N, tail N")
        if len(args) > 1:
            raise self._err(meta, f"{kind} takes one number")
        count = 10
        if args:
            a = args[0]
            if not (isinstance(a, ir.Literal) and isinstance(a.value, int) and not isinstance(a.value, bool)) or a.value < 0:
                raise self._err(meta, f"{kind} takes a non-negative whole number")
            count = a.value
        return ir.Pipe("head" if kind == "head" else "tail", count)

    # -- expressions
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


class _JoinBy:
    def __init__(self, keys: tuple[ir.Field, ...]) -> None:
        self.keys = keys


class _MaxSpan:
    def __init__(self, ms: int) -> None:
        self.ms = ms


class _Until:
    def __init__(self, stage: ir.Stage) -> None:
        self.stage = stage


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


