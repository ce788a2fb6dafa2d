"""IR → Polars expressions, with Elasticsearch's EQL semantics.

Semantics (shared/docs/research/eql-conformance.md §3):
* A predicate on a multi-valued field is true when any value satisfies it; nulls inside
  arrays are ignored and an empty array is a missing field.
* Three-valued logic: comparisons and functions on null yield null, a null filter result
  does not match, `x == null` / `x != null` are IS NULL / IS NOT NULL.
* Negation follows what Elasticsearch pushes down to Lucene. A predicate between a field and
  constants (`==`, `in`, `:`, `like`, `regex`) is a term-level query, two-valued: a missing
  field does not match it, so `!=`, `not in` and `not :` match documents without the field.
  A negated range becomes the opposite range (`not x > 1` is `x <= 1`), which a missing field
  does not match. Predicates over functions or arithmetic are scripts and keep three-valued
  logic (their negation on a missing field is null, so no match).
"""

from __future__ import annotations

import ipaddress
import operator
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ..lang import ir
from ..lang.errors import EqlSemanticError
from . import functions as F
from .patterns import lucene_to_regex, plan_wildcard
from .schema import Schema
from .semantics import (
    ARITH_FUNCTIONS,
    SWAP,
    ConditionCompiler,
    balanced,
    check_arg_kinds,
    check_arith_kinds,
    check_int,
    coerce_const,
    fold_compare,
    is_pushable,
    version_key,
)

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

Bind = dict[str, pl.Expr]


class Value:
    """A compiled value expression and its kind (string/int/float/bool/date/ip/version/null)."""

    __slots__ = ("expr", "kind", "const", "lowered")

    def __init__(self, expr: pl.Expr, kind: str, const: object = ..., lowered: bool = False) -> None:
        self.expr = expr
        self.kind = kind
        self.const = const  # the Python value when known at compile time
        self.lowered = lowered  # already lower-cased (read from a companion column)

    @property
    def is_const(self) -> bool:
        return self.const is not ...


def _lit(v: object) -> Value:
    if v is None:
        return Value(pl.lit(None), "null", None)
    if isinstance(v, bool):
        return Value(pl.lit(v, dtype=pl.Boolean), "bool", v)
    if isinstance(v, int):
        return Value(pl.lit(check_int(v), dtype=pl.Int64), "int", v)
    if isinstance(v, float):
        return Value(pl.lit(v, dtype=pl.Float64), "float", v)
    return Value(pl.lit(str(v), dtype=pl.String), "string", v)


class PolarsCompiler(ConditionCompiler[pl.Expr]):
    def __init__(self, schema: Schema, lowered: frozenset[str] = frozenset()) -> None:
        self.schema = schema
        #: fields whose lower-cased companion column (LOWER_PREFIX + name) is in the frame
        self.lowered = lowered
        self._pre: str | None = None  # the field the atom being compiled reads lower-cased
        # an atom's compilation sets `_pre`: atoms left for later (engine/filter LazyExpr) are compiled on threads
        self._compiling = threading.RLock()

    # ---- backend hooks for the shared boolean skeleton --------------------------------------

    def all_of(self, parts: list[pl.Expr]) -> pl.Expr:
        return pl.all_horizontal(parts) if len(parts) > 1 else parts[0]

    def any_of(self, parts: list[pl.Expr]) -> pl.Expr:
        return _any_of(parts)

    def negate(self, e: pl.Expr) -> pl.Expr:
        return ~e

    def false_if_null(self, e: pl.Expr) -> pl.Expr:
        return e.fill_null(False)

    def any_element(self, e: ir.Expr) -> pl.Expr:
        """Evaluate an atom; over a multi-valued field, true when any value satisfies it."""
        path = _insensitive_field(e)
        with self._compiling:
            self._pre = path if path in self.lowered else None
            try:
                return self._any_element(e)
            finally:
                self._pre = None

    def element_atom(self, e: ir.Expr, path: str, lowered: bool) -> pl.Expr:
        """An atom over one element of the array field `path`, bound to the column being evaluated (the field's
        distinct elements: engine/filter), read lower-cased (its LOWER_PREFIX companion) when `lowered`."""
        with self._compiling:
            self._pre = path if lowered else None
            try:
                return self._scalar_atom(e, {path: pl.col(LOWER_PREFIX + path if lowered else path)})
            finally:
                self._pre = None

    def _any_element(self, e: ir.Expr) -> pl.Expr:
        multi = sorted({f.path for f in ir.fields_of(e) if self.schema.get(f.path).multi})
        if isinstance(e, ir.IsNull) and isinstance(e.operand, ir.Field) and multi:
            return _no_values(pl.col(e.operand.path))
        if not multi:
            return self._scalar_atom(e, {})
        others = {f.path for f in ir.fields_of(e)} - set(multi)
        if len(multi) > 1 or others:
            raise EqlSemanticError(
                f"this condition combines the multi-valued field {multi[0]!r} with other fields "
                f"({', '.join(sorted(set(multi[1:]) | others))}), which Trailhound cannot evaluate yet"
            )
        path = multi[0]
        col = pl.col(LOWER_PREFIX + path if self._pre == path else path)
        any_true = col.list.eval(self._scalar_atom(e, {path: pl.element()})).list.any()
        if is_pushable(e):
            return any_true
        # a script on an array with no values sees null, like a missing field
        as_missing = self._scalar_atom(e, {path: pl.lit(None, dtype=self.schema.get(path).inner)})
        return pl.when(_no_values(col)).then(as_missing).otherwise(any_true)

    # ---- atoms ---------------------------------------------------------------------------

    def is_null(self, value: pl.Expr) -> pl.Expr:
        return value.is_null()

    def as_boolean(self, value: pl.Expr) -> pl.Expr:
        return value.cast(pl.Boolean)

    def _compare(self, e: ir.Compare, bind: Bind) -> pl.Expr:
        left, right = self.value(e.left, bind), self.value(e.right, bind)
        op = e.op
        if not left.is_const and not right.is_const:
            # the parser let this through because an optional field is involved; it is
            # only legal when that field is unmapped (it then reads as the null literal)
            raise EqlSemanticError(f"comparisons against fields are not supported: {_show(e)}")
        for x, y in ((left, right), (right, left)):
            if x.is_const and x.const is None and op in ("==", "!="):
                # ES rewrites `x == null` to IS NULL, also once an unmapped ?field became null
                test = y.expr.is_null() if not y.is_const else pl.lit(y.const is None)
                return test if op == "==" else ~test
        if left.is_const and right.is_const:
            return pl.lit(fold_compare(op, left.const, right.const), dtype=pl.Boolean)
        if left.is_const and not right.is_const:
            left, right, op = right, left, SWAP[op]
        left, right = self._unify(left, right, e.left if not left.is_const else e.right)
        if right.is_const and right.const is ...:
            return pl.lit(None, dtype=pl.Boolean)  # a constant that cannot be this field's type
        a, b = left.expr, right.expr
        if left.kind == "version":
            a = a.map_elements(version_key, return_dtype=pl.String)
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]

    def _unify(self, left: Value, right: Value, field_expr: ir.Expr) -> tuple[Value, Value]:
        """Convert a constant to the other side's kind (ES parses query values per mapping)."""
        info = self.schema.get(field_expr.path) if isinstance(field_expr, ir.Field) else None
        if right.is_const and left.kind == "int" and right.kind == "float":
            return Value(left.expr.cast(pl.Float64), "float"), right  # 4.5 must not become 4
        if right.is_const and left.kind not in ("null",) and right.kind != left.kind and right.const is not None:
            c = coerce_const(right.const, left.kind, info)
            if c is ...:
                return left, Value(pl.lit(None), "null", ...)
            if left.kind == "int" and isinstance(c, float):
                # a number beyond a long reads as a double (ES): compare as doubles
                return Value(left.expr.cast(pl.Float64), "float"), _lit(c)
            return left, Value(_typed_lit(c, left.kind), left.kind, c)
        if left.kind == "version" and right.is_const:
            c = version_key(right.const)
            return left, Value(pl.lit(c, dtype=pl.String), "version", c)
        if not right.is_const and left.kind != right.kind:
            if "string" in (left.kind, right.kind):
                return (Value(left.expr.cast(pl.String), "string"), Value(right.expr.cast(pl.String), "string"))
        return left, right

    def _in(self, e: ir.InSet, bind: Bind) -> pl.Expr:
        v = self.value(e.value, bind)
        opts = [self.value(o, bind) for o in e.options]
        if not all(o.is_const for o in opts):
            # `"x" in (field, ...)`: membership is equality with each option
            return _any_of([self._compare(ir.Compare("==", e.value, o), bind) for o in e.options])
        consts: list[F.Value] = []  # constants of the value's kind (str, int, float, ...)
        info = self.schema.get(e.value.path) if isinstance(e.value, ir.Field) else None
        for o in opts:
            if o.const is None:
                continue
            c = coerce_const(o.const, v.kind, info) if v.kind not in ("null",) else o.const
            if c is not ...:
                consts.append(c)
        expr = v.expr
        if v.kind == "version":
            expr = expr.map_elements(version_key, return_dtype=pl.String)
        if e.case_insensitive and v.kind == "string":
            expr = expr if v.lowered else expr.str.to_lowercase()
            consts = [c.lower() for c in consts]
        kind = v.kind
        if kind == "null":
            # no event has the field (or it holds only nulls): nothing is a member
            return pl.lit(None, dtype=pl.Boolean)
        if kind == "int" and any(isinstance(c, float) for c in consts):
            expr, kind = expr.cast(pl.Float64), "float"  # 4.5 must not become 4
            consts = [float(c) for c in consts]
        if not consts:
            return pl.when(expr.is_null()).then(None).otherwise(False)
        if len(consts) == 1:
            return expr == _typed_lit(consts[0], kind)
        return expr.is_in(pl.Series(consts, dtype=_dtype_of_kind(kind)).implode())

    def _match(self, e: ir.Match, bind: Bind) -> pl.Expr:
        v = self.value(e.value, bind)
        s = v.expr if v.kind == "string" else v.expr.cast(pl.String)
        ci = e.case_insensitive
        if e.kind == "regex":
            parts = [s.str.contains(lucene_to_regex(p, ci)) for p in e.patterns]
            return _any_of(parts)
        if ci and not v.lowered:
            s = s.str.to_lowercase()
        patterns = [p.lower() if ci else p for p in e.patterns]
        plans = [plan_wildcard(p) for p in patterns]
        contains = [p.text for p in plans if p.kind == "contains"]
        parts = []
        if len(contains) > 1:
            # one Aho-Corasick pass for all `*literal*` patterns
            parts.append(s.str.contains_any(contains))
            plans = [p for p in plans if p.kind != "contains"]
        equals = [p.text for p in plans if p.kind == "equals"]
        if len(equals) > 1:
            parts.append(s.is_in(pl.Series(equals, dtype=pl.String).implode()))
            plans = [p for p in plans if p.kind != "equals"]
        for p in plans:
            if p.kind == "equals":
                parts.append(s == p.text)
            elif p.kind == "prefix":
                parts.append(s.str.starts_with(p.text))
            elif p.kind == "suffix":
                parts.append(s.str.ends_with(p.text))
            elif p.kind == "contains":
                parts.append(s.str.contains(p.text, literal=True))
            elif p.kind == "exists":
                parts.append(s.is_not_null())
            else:
                parts.append(s.str.contains(p.text))
        return _any_of(parts)

    # ---- values --------------------------------------------------------------------------

    def value(self, e: ir.Expr, bind: Bind) -> Value:
        if isinstance(e, ir.Literal):
            return _lit(e.value)
        if isinstance(e, ir.Field):
            info = self.schema.get(e.path)
            lowered = e.path == self._pre
            if e.path in bind:
                return Value(bind[e.path], info.kind, lowered=lowered)
            if info.dtype is None:
                return Value(pl.lit(None), "null", None)
            return Value(pl.col(LOWER_PREFIX + e.path if lowered else e.path), info.kind, lowered=lowered)
        if isinstance(e, ir.Negate):
            v = self.value(e.operand, bind)
            check_arith_kinds(v.kind)
            if v.is_const:
                return _lit(F.multiply(v.const, -1) if v.const is not None else None)
            if v.kind == "null":
                return Value(pl.lit(None, dtype=pl.Int64), "int")
            return Value(-v.expr, v.kind)
        if isinstance(e, ir.Arith):
            return self._arith(e.op, self.value(e.left, bind), self.value(e.right, bind))
        if isinstance(e, ir.Call):
            return self._call(e, bind)
        # a boolean sub-expression used as a value, e.g. `null == (x > 1)`
        if isinstance(e, (ir.Compare, ir.InSet, ir.Match, ir.IsNull, ir.And, ir.Or, ir.Not)):
            return Value(self._bool_value(e, bind), "bool")
        raise EqlSemanticError(f"cannot evaluate {_show(e)}")

    def _bool_value(self, e: ir.Expr, bind: Bind) -> pl.Expr:
        """Three-valued truth of a nested condition (no pushdown: it sits inside a script)."""
        if isinstance(e, ir.Not):
            return ~self._bool_value(e.operand, bind)
        if isinstance(e, (ir.And, ir.Or)):
            parts = [self._bool_value(t, bind) for t in e.terms]
            return _all_of(parts) if isinstance(e, ir.And) else _any_of(parts)
        return self._scalar_atom(e, bind)

    def _arith(self, op: str, a: Value, b: Value) -> Value:
        check_arith_kinds(a.kind, b.kind)
        if a.is_const and b.is_const:
            fn = F.ARITH_OPS[op]
            return _lit(fn(a.const, b.const))
        kind = "float" if "float" in (a.kind, b.kind) else "int"
        if "null" in (a.kind, b.kind):
            # a missing operand: the result is missing (typed, so that Polars can go on with it)
            return Value(pl.lit(None, dtype=_dtype_of_kind(kind)), kind)
        x, y = a.expr, b.expr
        if op == "+":
            return Value(x + y, kind)
        if op == "-":
            return Value(x - y, kind)
        if op == "*":
            return Value(x * y, kind)
        safe_y = pl.when(y == 0).then(None).otherwise(y)
        if op == "/":
            if kind == "int":  # Java: integer division truncates toward zero
                q = (x.abs() // safe_y.abs())
                return Value(pl.when((x < 0) != (y < 0)).then(-q).otherwise(q), "int")
            return Value(x / safe_y, "float")
        # %: Java's remainder takes the sign of the dividend
        if kind == "int":
            r = x.abs() % safe_y.abs()
            return Value(pl.when(x < 0).then(-r).otherwise(r), "int")
        return Value(x - safe_y * (x / safe_y).cast(pl.Int64).cast(pl.Float64), "float")

    def _call(self, e: ir.Call, bind: Bind) -> Value:
        args = [self.value(a, bind) for a in e.args]
        name, ci = e.name, e.case_insensitive
        check_arg_kinds(name, [a.kind for a in args])
        if all(a.is_const for a in args):
            return _lit(F.call(name, [a.const for a in args], ci))
        if name in ARITH_FUNCTIONS:
            return self._arith(ARITH_FUNCTIONS[name], args[0], args[1])
        if name == F.TIME_PART:
            return _time_part(args[0], args[1].const)
        s = args[0]
        if name in ("startsWith", "endsWith", "stringContains") and args[1].is_const:
            needle = args[1].const
            if needle is None:
                return Value(pl.lit(None, dtype=pl.Boolean), "bool")
            assert isinstance(needle, str)  # check_arg_kinds let only a string constant through
            x = _as_string(s)
            if ci:
                x, needle = x.str.to_lowercase(), str(needle).lower()
            if name == "startsWith":
                return Value(x.str.starts_with(needle), "bool")
            if name == "endsWith":
                return Value(x.str.ends_with(needle), "bool")
            if needle == "":
                return Value(pl.when(x.is_null()).then(None).otherwise(False), "bool")
            return Value(x.str.contains(needle, literal=True), "bool")
        if name in ("startsWith", "endsWith", "stringContains") and s.kind == args[1].kind == "string":
            # needle read from another field: vectorized too (rules compare process.name with command_line)
            x, needle = s.expr, args[1].expr
            if ci:
                x, needle = x.str.to_lowercase(), needle.str.to_lowercase()
            if name == "startsWith":
                return Value(x.str.starts_with(needle), "bool")
            if name == "endsWith":
                return Value(x.str.ends_with(needle), "bool")
            return Value(pl.when(x.is_null() | needle.is_null()).then(None)
                         .when(needle == "").then(False)  # ES: an empty substring is not "contained"
                         .otherwise(x.str.contains(needle, literal=True)), "bool")
        if name == "length":
            return Value(_as_string(s).str.len_chars().cast(pl.Int64), "int")
        if name == "string":
            return Value(_as_string(s), "string")
        if name == "concat":
            return Value(pl.concat_str([_as_string(a) for a in args]), "string")
        if name == "cidrMatch" and all(a.is_const for a in args[1:]):
            cidrs = [a.const for a in args[1:]]
            for c in cidrs:
                if c is not None:
                    F.network(str(c))  # an invalid network is a compile error, not a failed run
            return Value(_as_string(s).map_batches(lambda ips: _cidr_match(ips, cidrs), return_dtype=pl.Boolean,
                                                   is_elementwise=True), "bool")
        # the rest run the reference implementation per value (they are rare in rules)
        kinds = {"startsWith": ("bool", pl.Boolean), "endsWith": ("bool", pl.Boolean),
                 "stringContains": ("bool", pl.Boolean), "between": ("string", pl.String), "indexOf": ("int", pl.Int64), "substring": ("string", pl.String),
                 "number": ("float", pl.Float64), "cidrMatch": ("bool", pl.Boolean)}
        kind, dtype = kinds[name]
        fn = lambda *vals: F.call(name, list(vals), ci)  # noqa: E731
        if name == "number":
            fn = lambda *vals: _float(F.call(name, list(vals), ci))  # noqa: E731
        return Value(_per_value(fn, [a.expr for a in args], dtype), kind)

    # ---- categories ----------------------------------------------------------------------

    def category(self, category: str | None, field: str) -> pl.Expr:
        if category is None:
            return pl.lit(True)
        info = self.schema.get(field)
        if info.dtype is None:
            return pl.lit(False)
        col = pl.col(field)
        if info.multi:
            return col.list.contains(pl.lit(category, dtype=info.inner)).fill_null(False)
        return (col == category).fill_null(False)


LOWER_PREFIX = "__lower:"


def _insensitive_field(e: ir.Expr) -> str | None:
    """The field a case-insensitive `:`/`like~`/`in~` reads directly (it can read it lower-cased)."""
    if isinstance(e, ir.Match) and e.kind == "wildcard" and e.case_insensitive and isinstance(e.value, ir.Field):
        return e.value.path
    if isinstance(e, ir.InSet) and e.case_insensitive and isinstance(e.value, ir.Field):
        return e.value.path
    return None


def lowered_columns(exprs: Iterable[ir.Expr], schema: Schema) -> dict[str, pl.Expr]:
    """Lower-cased companions of the string fields that case-insensitive matches read, so each
    is lower-cased once per frame rather than once per pattern and rule."""
    out: dict[str, pl.Expr] = {}
    for e in exprs:
        for node in ir.walk(e):
            path = _insensitive_field(node)
            info = schema.get(path) if path else None
            if not path or info is None or info.inner not in (pl.String, pl.Utf8) or path in out:
                continue
            col = pl.col(path)
            lower = col.list.eval(pl.element().str.to_lowercase()) if info.multi else col.str.to_lowercase()
            out[path] = lower.alias(LOWER_PREFIX + path)
    return out


def _no_values(col: pl.Expr) -> pl.Expr:
    """An array with no non-null value: ES sees a missing field."""
    return col.is_null() | (col.list.drop_nulls().list.len() == 0)


def _time_part(v: Value, part: object) -> Value:
    """A date's part in UTC (functions.part_of_ns): a date field's instant, a string parsed as a date
    (dates.py, as Elasticsearch parses one); any other value is not a date (null)."""
    from .dates import date_to_ns

    if part not in F.TIME_PARTS:
        F.time_part(None, part)  # the error naming the parts
    if v.kind == "date":
        ns = v.expr
    elif v.kind == "string":
        ns = date_to_ns(v.expr, pl.String, nanos=True)
    else:
        return Value(pl.lit(None, dtype=pl.Int64), "int")
    t = pl.from_epoch(ns, time_unit="ns").dt  # naive, in UTC
    parts = {"minute": t.minute, "hour": t.hour, "day": t.day, "week": t.week, "month": t.month, "year": t.year}
    return Value(parts[str(part)]().cast(pl.Int64), "int")


def _per_value(fn: Callable, exprs: list[pl.Expr], dtype: PolarsDataType) -> pl.Expr:
    if len(exprs) == 1:
        def by_distinct_value(s: pl.Series) -> pl.Series:
            # values repeat a lot in telemetry: call the Python function once per distinct value
            keys = s.drop_nulls().unique()
            mapped = s.replace_strict(keys, pl.Series([fn(v) for v in keys.to_list()], dtype=dtype),
                                      default=None, return_dtype=dtype)
            null_value = fn(None)
            return mapped if null_value is None else mapped.fill_null(s.is_null() & null_value)

        return exprs[0].map_batches(by_distinct_value, return_dtype=dtype, is_elementwise=True)
    packed = pl.struct([x.alias(f"a{i}") for i, x in enumerate(exprs)])
    return packed.map_elements(lambda d: fn(*d.values()), return_dtype=dtype, skip_nulls=False)


@lru_cache(maxsize=1 << 17)
def _ip_number(text: str) -> tuple[int, int] | None:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return None
    return a.version, int(a)


#: at most this many distinct addresses, cidrMatch tests each in Python (see _cidr_match)
_FEW_ADDRESSES = 512

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: exactly the dotted quads Python's ipaddress accepts (ASCII digits, no leading zeros)
_IPV4 = r"^" + r"\.".join([_OCTET] * 4) + r"$"


def _cidr_match(ips: pl.Series, cidrs: list) -> pl.Series:
    """F.cidr_match over a column: each distinct address once, dotted quads parsed and tested
    against every IPv4 network by Polars and numpy, anything else parsed by ipaddress (cached)."""
    keys = ips.drop_nulls().unique()
    (hit,) = cidr_match_many(keys, [cidrs])
    # a value that is not an address never matches; a null address stays null
    return ips.replace_strict(keys, pl.Series(hit, dtype=pl.Boolean), default=None, return_dtype=pl.Boolean)


def cidr_match_many(keys: pl.Series, cidr_lists: list[list]) -> list[np.ndarray]:
    """Per list of networks, which of `keys` (distinct, non-null address texts) fall in one of them: the addresses
    parsed once for all lists (dozens of rules test the same field against their own private ranges)."""
    nets_of = [[F._network(str(c)) for c in cidrs if c is not None] for cidrs in cidr_lists]

    def in_nets(p: tuple[int, int] | None, nets: list) -> bool:
        return p is not None and any(
            net.version == p[0] and (p[1] & int(net.netmask)) == int(net.network_address) for net in nets)

    if keys.len() <= _FEW_ADDRESSES:
        # a few addresses (a watch batch's): each parsed by ipaddress (cached), which accepts exactly the dotted
        # quads the vectorized path below reads, and the rest as that path does; no Polars pass per network
        parsed = [_ip_number(text) for text in keys.to_list()]
        return [np.array([in_nets(p, nets) for p in parsed], dtype=bool) for nets in nets_of]
    octets = keys.str.extract_groups(_IPV4).struct.unnest().cast(pl.UInt64)
    quad = octets.select(pl.all().fill_null(0)).to_numpy()
    v4 = octets.select(pl.all_horizontal(pl.all().is_not_null())).to_series().to_numpy()
    v4_ints = (quad[:, 0] << 24) | (quad[:, 1] << 16) | (quad[:, 2] << 8) | quad[:, 3]
    others = [(int(i), _ip_number(keys[int(i)])) for i in np.flatnonzero(~v4)]
    out = []
    for nets in nets_of:
        hit = np.zeros(len(keys), dtype=bool)
        for net in nets:
            if net.version == 4:
                hit |= v4 & ((v4_ints & np.uint64(int(net.netmask))) == np.uint64(int(net.network_address)))
        for i, p in others:
            hit[i] = in_nets(p, nets)
        out.append(hit)
    return out


def _float(v: F.Value) -> float | None:
    return None if v is None else float(v)


def _as_string(v: Value) -> pl.Expr:
    return v.expr if v.kind == "string" else v.expr.cast(pl.String)


def _dtype_of_kind(kind: str) -> PolarsDataType:
    return {"int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "date": pl.Int64}.get(kind, pl.String)


def _typed_lit(v: object, kind: str) -> pl.Expr:
    if kind == "float" and isinstance(v, int):
        v = float(v)
    return pl.lit(v, dtype=_dtype_of_kind(kind))


def _any_of(parts: list[pl.Expr]) -> pl.Expr:
    return balanced(parts, operator.or_)


def _all_of(parts: list[pl.Expr]) -> pl.Expr:
    """Kleene `and`."""
    return balanced(parts, operator.and_)


def _show(e: ir.Expr) -> str:
    if isinstance(e, ir.Field):
        return str(e)
    if isinstance(e, ir.Literal):
        return str(e)
    if isinstance(e, ir.Compare):
        return f"{_show(e.left)} {e.op} {_show(e.right)}"
    return type(e).__name__
