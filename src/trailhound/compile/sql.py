"""IR → SQL (a sqlglot tree), for DuckDB locally and Spark SQL at scale.

The same semantics as compile/polars.py (see its docstring), over a table with the same
columns: dotted field names, LIST columns for multi-valued fields, dates as Int64 ns. The
shared rules (pushdown, range flips, constant coercion, patterns) come from semantics.py and
patterns.py, so the two backends differ only in how they spell things. Tests run both on the
same data and require the same rows.

`SqlCompiler(schema, dialect="spark")` spells the same tree for Spark SQL (tests/spark/test_spark_sql.py
runs it on a real Spark against the Polars backend). It differs from DuckDB's where the engines differ:
Java regexes (`$` also matches before a final line break, `(?i)` is ASCII-only), decimal literals
(`1.5` is a DECIMAL in Spark: floats are written as DOUBLE casts), integer division (`DIV`), a date's
parts computed from its epoch nanoseconds without the session's time zone, and the reference functions as
Spark Python UDFs (`register_spark_udfs`), which Spark cannot call inside an array lambda: such a
filter is refused (`UnsupportedSqlError`). Spark runs it with `spark.sql.ansi.enabled=false`
(Java's wrapping long arithmetic, as Elasticsearch computes; see spark/sql_stage.py).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlglot.expressions as exp

from ..lang import ir
from ..lang.errors import EqlSemanticError
from ..rules.errors import UnsupportedError
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

_X = "__x"  # the lambda variable for one element of an array
DIALECTS = ("duckdb", "spark")


class UnsupportedSqlError(EqlSemanticError, UnsupportedError):
    """A filter this SQL dialect cannot run with our semantics (the Polars backend can)."""

    def __init__(self, message: str) -> None:
        EqlSemanticError.__init__(self, message)
        self.reason = message


class SqlValue:
    __slots__ = ("expr", "kind", "const")

    def __init__(self, expr: exp.Expression, kind: str, const: object = ...) -> None:
        self.expr, self.kind, self.const = expr, kind, const

    @property
    def is_const(self) -> bool:
        return self.const is not ...


def _lit(v: object) -> SqlValue:
    if v is None:
        return SqlValue(exp.Null(), "null", None)
    if isinstance(v, bool):
        return SqlValue(exp.Boolean(this=v), "bool", v)
    if isinstance(v, int):
        return SqlValue(exp.Literal.number(check_int(v)), "int", v)
    if isinstance(v, float):
        return SqlValue(exp.Literal.number(repr(v)), "float", v)
    return SqlValue(exp.Literal.string(str(v)), "string", v)


def column(name: str) -> exp.Column:
    return exp.Column(this=exp.Identifier(this=name, quoted=True))


def _balanced(cls: type, parts: list[exp.Expression]) -> exp.Expression:
    return balanced(parts, lambda a, b: cls(this=exp.Paren(this=a), expression=exp.Paren(this=b)))


def _or(parts: list[exp.Expression]) -> exp.Expression:
    return _balanced(exp.Or, parts)


def _and(parts: list[exp.Expression]) -> exp.Expression:
    return _balanced(exp.And, parts)


def _not(e: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Paren(this=e))


def _coalesce_false(e: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=e, expressions=[exp.false()])


class SqlCompiler(ConditionCompiler[exp.Expression]):
    def __init__(self, schema: Schema, dialect: str = "duckdb") -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown SQL dialect {dialect!r} (one of {', '.join(DIALECTS)})")
        self.schema = schema
        self.dialect = dialect
        self.spark = dialect == "spark"
        #: the UDFs (udf_name) the compiled conditions call: what register_spark_udfs must register
        self.udfs: set[str] = set()
        self._in_lambda: str | None = None  # the multi-valued field whose element is being compiled

    def where(self, e: ir.Expr) -> str:
        """The condition as SQL text in the compiler's dialect."""
        return self.predicate(e).sql(self.dialect)

    def _lit(self, v: object) -> SqlValue:
        """A constant. Spark reads `1.5` as a DECIMAL, whose arithmetic is not a double's: a DOUBLE cast
        of its text instead (Double.parseDouble round-trips Python's repr)."""
        out = _lit(v)
        if self.spark and out.kind == "float":
            out.expr = exp.Cast(this=exp.Literal.string(repr(v)), to=exp.DataType.build("DOUBLE"))
        return out

    def _udf(self, name: str, args: list[exp.Expression]) -> exp.Expression:
        """A call of a reference implementation registered as a UDF (register_udfs, register_spark_udfs)."""
        if self.spark and self._in_lambda is not None:
            raise UnsupportedSqlError(
                f"{_shown(name)} over the multi-valued field {self._in_lambda!r} needs a Python function, "
                "which Spark SQL cannot call inside an array lambda")
        self.udfs.add(name)
        return exp.Anonymous(this=name, expressions=args)

    def category(self, category: str | None, field: str) -> exp.Expression:
        if category is None:
            return exp.true()
        info = self.schema.get(field)
        if info.dtype is None:
            return exp.false()
        if info.multi:
            return _coalesce_false(exp.ArrayContains(this=column(field), expression=exp.Literal.string(category)))
        return _coalesce_false(exp.EQ(this=column(field), expression=exp.Literal.string(category)))

    # ---- backend hooks for the shared boolean skeleton --------------------------------------

    def all_of(self, parts: list[exp.Expression]) -> exp.Expression:
        return _and(parts)

    def any_of(self, parts: list[exp.Expression]) -> exp.Expression:
        return _or(parts)

    def negate(self, e: exp.Expression) -> exp.Expression:
        return _not(e)

    def false_if_null(self, e: exp.Expression) -> exp.Expression:
        return _coalesce_false(e)

    def any_element(self, e: ir.Expr) -> exp.Expression:
        multi = sorted({f.path for f in ir.fields_of(e) if self.schema.get(f.path).multi})
        if isinstance(e, ir.IsNull) and isinstance(e.operand, ir.Field) and multi:
            return _no_values(column(e.operand.path))
        if not multi:
            return self._scalar_atom(e, {})
        others = {f.path for f in ir.fields_of(e)} - set(multi)
        if len(multi) > 1 or others:
            raise EqlSemanticError(
                f"this condition combines the multi-valued field {multi[0]!r} with other fields, "
                "which Trailhound cannot evaluate yet"
            )
        path = multi[0]
        x = exp.Column(this=exp.Identifier(this=_X))
        self._in_lambda = path
        try:
            inner = self._scalar_atom(e, {path: x})
        finally:
            self._in_lambda = None
        hits = exp.ArrayFilter(
            this=column(path), expression=exp.Lambda(this=inner, expressions=[exp.Identifier(this=_X)])
        )
        any_true = exp.GT(this=exp.ArraySize(this=hits), expression=exp.Literal.number(0))
        if is_pushable(e):
            return any_true
        as_missing = self._scalar_atom(e, {path: exp.Null()})
        return exp.Case(ifs=[exp.If(this=_no_values(column(path)), true=as_missing)], default=any_true)

    # ---- atoms ---------------------------------------------------------------------------

    def is_null(self, value: exp.Expression) -> exp.Expression:
        return exp.Is(this=value, expression=exp.Null())

    def as_boolean(self, value: exp.Expression) -> exp.Expression:
        return exp.Cast(this=value, to=exp.DataType.build("BOOLEAN"))

    def _compare(self, e: ir.Compare, bind) -> exp.Expression:
        left, right = self.value(e.left, bind), self.value(e.right, bind)
        op = e.op
        if not left.is_const and not right.is_const:
            raise EqlSemanticError("comparisons against fields are not supported")
        for x, y in ((left, right), (right, left)):
            if x.is_const and x.const is None and op in ("==", "!="):
                test = exp.Is(this=y.expr, expression=exp.Null()) if not y.is_const else exp.Boolean(this=y.const is None)
                return test if op == "==" else _not(test)
        if left.is_const and right.is_const:
            folded = fold_compare(op, left.const, right.const)
            return exp.Null() if folded is None else exp.Boolean(this=folded)
        if left.is_const:
            left, right, op = right, left, SWAP[op]
        field = e.left if isinstance(e.left, ir.Field) else e.right if isinstance(e.right, ir.Field) else None
        info = self.schema.get(field.path) if field is not None else None
        a = left.expr
        c = right.const
        if left.kind == "version":
            a = self._udf(VERSION_KEY_UDF, [a])
        if c is not None and right.kind != left.kind and left.kind != "null":
            if left.kind == "int" and right.kind == "float":
                a = exp.Cast(this=a, to=exp.DataType.build("DOUBLE"))
            else:
                c = coerce_const(c, left.kind, info)
                if c is ...:
                    return exp.Null()
        b = self._lit(c).expr
        ops: dict[str, type[exp.Expression]] = {"==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE,
                                                 ">": exp.GT, ">=": exp.GTE}
        cls = ops[op]
        return cls(this=a, expression=b)

    def _in(self, e: ir.InSet, bind) -> exp.Expression:
        v = self.value(e.value, bind)
        opts = [self.value(o, bind) for o in e.options]
        if not all(o.is_const for o in opts):
            return _or([self._compare(ir.Compare("==", e.value, o), bind) for o in e.options])
        info = self.schema.get(e.value.path) if isinstance(e.value, ir.Field) else None
        consts: list[F.Value] = []  # constants of the value's kind (str, int, float, ...)
        for o in opts:
            if o.const is None:
                continue
            c = coerce_const(o.const, v.kind, info) if v.kind != "null" else o.const
            if c is not ...:
                consts.append(c)
        a = v.expr
        if v.kind == "null":
            return exp.Null()  # no event has the field: nothing is a member
        if e.case_insensitive and v.kind == "string":
            a = exp.Lower(this=a)
            consts = [c.lower() for c in consts]
        if not consts:
            return exp.Case(ifs=[exp.If(this=exp.Is(this=a, expression=exp.Null()), true=exp.Null())], default=exp.false())
        return exp.In(this=a, expressions=[self._lit(c).expr for c in consts])

    def _match(self, e: ir.Match, bind) -> exp.Expression:
        v = self.value(e.value, bind)
        s = v.expr if v.kind == "string" else exp.Cast(this=v.expr, to=exp.DataType.build("VARCHAR"))
        if e.kind == "regex":
            return _or([exp.RegexpLike(this=s, expression=exp.Literal.string(self._regex(lucene_to_regex(
                p, e.case_insensitive)))) for p in e.patterns])
        if e.case_insensitive:
            s = exp.Lower(this=s)
        parts: list[exp.Expression] = []
        for p in e.patterns:
            plan = plan_wildcard(p.lower() if e.case_insensitive else p)
            lit = exp.Literal.string(plan.text)
            if plan.kind == "equals":
                parts.append(exp.EQ(this=s, expression=lit))
            elif plan.kind == "prefix":
                parts.append(exp.StartsWith(this=s, expression=lit))
            elif plan.kind == "suffix":
                parts.append(exp.EndsWith(this=s, expression=lit))
            elif plan.kind == "contains":
                parts.append(exp.Contains(this=s, expression=lit))
            elif plan.kind == "exists":
                parts.append(exp.Not(this=exp.Is(this=s, expression=exp.Null())))
            else:
                parts.append(exp.RegexpLike(this=s, expression=exp.Literal.string(self._regex(plan.text))))
        return _or(parts)

    def _regex(self, text: str) -> str:
        """An anchored regex of patterns.py in this dialect. Java's `$` also matches before a final line
        break (Rust's, Polars', does not): `\\z`; Java's `(?i)` folds ASCII only (Rust's all of Unicode): `u`."""
        if not self.spark:
            return text
        if text.startswith("(?si)"):
            text = "(?siu)" + text[len("(?si)"):]
        assert text.endswith("$"), text  # patterns.py anchors every regex
        return text[:-1] + "\\z"

    # ---- values --------------------------------------------------------------------------

    def value(self, e: ir.Expr, bind) -> SqlValue:
        if isinstance(e, ir.Literal):
            return self._lit(e.value)
        if isinstance(e, ir.Field):
            info = self.schema.get(e.path)
            if e.path in bind:
                return SqlValue(bind[e.path], info.kind)
            if info.dtype is None:
                return SqlValue(exp.Null(), "null", None)
            return SqlValue(column(e.path), info.kind)
        if isinstance(e, ir.Negate):
            v = self.value(e.operand, bind)
            check_arith_kinds(v.kind)
            if v.is_const:
                return self._lit(None if v.const is None else F.multiply(v.const, -1))
            return SqlValue(exp.Neg(this=exp.Paren(this=v.expr)), v.kind)
        if isinstance(e, ir.Arith):
            return self._arith(e.op, self.value(e.left, bind), self.value(e.right, bind))
        if isinstance(e, ir.Call):
            return self._call(e, bind)
        if isinstance(e, ir.Not):
            return SqlValue(_not(self.value(e.operand, bind).expr), "bool")
        if isinstance(e, (ir.And, ir.Or)):
            parts = [self.value(t, bind).expr for t in e.terms]
            return SqlValue(_and(parts) if isinstance(e, ir.And) else _or(parts), "bool")
        if isinstance(e, (ir.Compare, ir.InSet, ir.Match, ir.IsNull)):
            return SqlValue(self._scalar_atom(e, bind), "bool")
        raise EqlSemanticError(f"cannot evaluate {type(e).__name__}")

    def _arith(self, op: str, a: SqlValue, b: SqlValue) -> SqlValue:
        check_arith_kinds(a.kind, b.kind)
        if a.is_const and b.is_const:
            fn = F.ARITH_OPS[op]
            return self._lit(fn(a.const, b.const))
        kind = "float" if "float" in (a.kind, b.kind) else "int"
        x, y = exp.Paren(this=a.expr), exp.Paren(this=b.expr)
        if op in "+-*":
            ops: dict[str, type[exp.Expression]] = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul}
            cls = ops[op]
            return SqlValue(cls(this=x, expression=y), kind)
        safe_y = exp.Nullif(this=y, expression=exp.Literal.number(0))
        if op == "/" and kind == "int" and self.spark:  # Spark's DIV: Java's long division, exact
            return SqlValue(exp.IntDiv(this=x, expression=safe_y), "int")
        if op == "/":
            q = exp.Div(this=exp.Cast(this=x, to=exp.DataType.build("DOUBLE")), expression=safe_y)
            if kind == "int":  # Java: truncate toward zero
                return SqlValue(exp.Cast(this=exp.Trunc(this=q), to=exp.DataType.build("BIGINT")), "int")
            return SqlValue(q, "float")
        # SQL's % takes the sign of the dividend, as Java's does
        return SqlValue(exp.Mod(this=x, expression=safe_y), kind)

    def _call(self, e: ir.Call, bind) -> SqlValue:
        args = [self.value(a, bind) for a in e.args]
        name, ci = e.name, e.case_insensitive
        check_arg_kinds(name, [a.kind for a in args])
        if all(a.is_const for a in args):
            return self._lit(F.call(name, [a.const for a in args], ci))
        if name in ARITH_FUNCTIONS:
            return self._arith(ARITH_FUNCTIONS[name], args[0], args[1])
        if name == F.TIME_PART:
            return self._time_part(args[0], args[1].const)
        if name in ("startsWith", "endsWith", "stringContains") and args[1].is_const:
            needle = args[1].const
            if needle is None:
                return SqlValue(exp.Null(), "bool")
            s = _as_string(args[0])
            if ci:
                s, needle = exp.Lower(this=s), str(needle).lower()
            lit = exp.Literal.string(str(needle))
            if name == "startsWith":
                return SqlValue(exp.StartsWith(this=s, expression=lit), "bool")
            if name == "endsWith":
                return SqlValue(exp.EndsWith(this=s, expression=lit), "bool")
            if needle == "":
                return SqlValue(exp.Case(ifs=[exp.If(this=exp.Is(this=s, expression=exp.Null()), true=exp.Null())],
                                         default=exp.false()), "bool")
            return SqlValue(exp.Contains(this=s, expression=lit), "bool")
        if name == "length":
            return SqlValue(exp.Length(this=_as_string(args[0])), "int")
        if name == "string":
            return SqlValue(_as_string(args[0]), "string")
        if name == "concat":
            out = _as_string(args[0])
            for a in args[1:]:
                out = exp.DPipe(this=out, expression=_as_string(a), safe=False)  # null-propagating ||
            return SqlValue(out, "string")
        # the rest call the reference implementation as a UDF (see register_udfs)
        if name == "cidrMatch":
            for a in args[1:]:
                if a.is_const and a.const is not None:
                    F.network(str(a.const))  # an invalid network is a compile error, not a failed run
        kind = UDF_KINDS[name]
        # DuckDB's UDFs take text (register_udfs); Spark's take the values as typed, as Polars' do
        call = self._udf(udf_name(name, len(args), ci), [a.expr if self.spark else _as_string(a) for a in args])
        return SqlValue(call, kind)

    def _time_part(self, v: SqlValue, part: object) -> SqlValue:
        """A date's part in UTC (functions.part_of_ns). A date field (Int64 epoch ns) is computed in SQL, in each
        dialect's spelling (`_duckdb_date_part`, `_spark_date_part`); a string is parsed by dates.py in the
        reference UDF, as the Polars backend parses it; other kinds are not dates."""
        if part not in F.TIME_PARTS:
            F.time_part(None, part)  # the error naming the parts
        if v.kind == "string":
            return SqlValue(self._udf(udf_name(F.TIME_PART, 2, False), [v.expr, exp.Literal.string(str(part))]), "int")
        if v.kind != "date":
            return SqlValue(exp.Null(), "int")
        date_part = _spark_date_part if self.spark else _duckdb_date_part
        return SqlValue(date_part(v.expr, str(part)), "int")


_NS_MINUTE, _NS_HOUR, _NS_DAY = 60 * 10**9, 3600 * 10**9, 86400 * 10**9


def _spark_date_part(ns: exp.Expression, part: str) -> exp.Expression:
    """A date's part in UTC from its epoch nanoseconds, in integers (PMOD is a floor modulo; DIV exact):
    Spark's timestamps would follow the session's time zone. `weekofyear` is ISO 8601's week."""
    def pmod(a: exp.Expression, n: int) -> exp.Expression:
        return exp.Anonymous(this="pmod", expressions=[a, exp.Literal.number(n)])

    def div(a: exp.Expression, n: int) -> exp.Expression:
        return exp.IntDiv(this=exp.Paren(this=a), expression=exp.Literal.number(n))

    x = exp.Paren(this=ns)
    if part == "minute":
        return div(pmod(x, _NS_HOUR), _NS_MINUTE)
    if part == "hour":
        return div(pmod(x, _NS_DAY), _NS_HOUR)
    days = div(exp.Sub(this=x, expression=pmod(x, _NS_DAY)), _NS_DAY)
    date = exp.Anonymous(this="date_from_unix_date", expressions=[exp.Cast(this=days, to=exp.DataType.build("INT"))])
    fn = {"day": "dayofmonth", "week": "weekofyear", "month": "month", "year": "year"}[part]
    return exp.Cast(this=exp.Anonymous(this=fn, expressions=[date]), to=exp.DataType.build("BIGINT"))


#: DuckDB's function for each time part of a TIMESTAMP (`week` is ISO 8601's, as functions.part_of_ns)
_TIME_PART_SQL = {"minute": "minute", "hour": "hour", "day": "day", "week": "week", "month": "month", "year": "year"}


def _duckdb_date_part(ns: exp.Expression, part: str) -> exp.Expression:
    """A date's part in UTC from its epoch nanoseconds: a zone-less TIMESTAMP of its UTC time (not TIMESTAMPTZ:
    its parts would follow the session's zone)."""
    x = exp.Paren(this=ns)
    thousand = exp.Literal.number(1000)
    # floor division to microseconds (DuckDB's // truncates toward zero; dates before 1970 are negative)
    below = exp.Mod(this=exp.Paren(this=exp.Add(this=exp.Mod(this=x, expression=thousand), expression=thousand)),
                    expression=thousand)
    micros = exp.IntDiv(this=exp.Paren(this=exp.Sub(this=x, expression=below)), expression=thousand)
    stamp = exp.Anonymous(this="make_timestamp", expressions=[micros])
    return exp.Anonymous(this=_TIME_PART_SQL[part], expressions=[stamp])


#: functions run as UDFs, with the kind of value they return
UDF_KINDS = {F.TIME_PART: "int", "between": "string", "cidrMatch": "bool", "indexOf": "int", "number": "float",
             "substring": "string", "startsWith": "bool", "endsWith": "bool", "stringContains": "bool"}
_UDF_TYPES = {"string": "VARCHAR", "bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE"}
_MAX_UDF_ARGS = {F.TIME_PART: 2, "between": 4, "cidrMatch": 16, "indexOf": 3, "number": 2, "substring": 3,
                 "startsWith": 2, "endsWith": 2, "stringContains": 2}


#: the UDF a comparison of a version field calls (semantics.version_key): the key that orders versions
VERSION_KEY_UDF = "th_version_key"


def udf_name(name: str, arity: int, ci: bool) -> str:
    """The name of the UDF that calls function `name` (of UDF_KINDS) with `arity` arguments."""
    return f"th_{name.lower()}{'_ci' if ci else ''}_{arity}"


def udf_function(udf: str) -> tuple[str, bool, str]:
    """(function, case-insensitive, kind of its value) of a UDF name the compiler calls (`udf_name`, or
    `version_key` for VERSION_KEY_UDF): what a backend registers under that name (`reference`)."""
    if udf == VERSION_KEY_UDF:
        return "version_key", False, "string"
    base, ci = udf.removeprefix("th_").rsplit("_", 1)[0], False
    if base.endswith("_ci"):
        base, ci = base.removesuffix("_ci"), True
    name = next((n for n in UDF_KINDS if n.lower() == base), None)
    if name is None:
        raise ValueError(f"{udf!r} is not a UDF name of compile/sql.py")
    return name, ci, UDF_KINDS[name]


def reference(name: str, ci: bool) -> Callable[..., object]:
    """The reference implementation a UDF runs for function `name` (of `udf_function`), on typed values; `number`
    gives a float, as its SQL type (DOUBLE) wants."""
    if name == "version_key":
        return version_key

    def call(*vals):  # no type hints: pyspark would read them as a pandas UDF's (and warn it cannot)
        out = F.call(name, list(vals), ci)
        return float(out) if name == "number" and out is not None else out

    return call


def _shown(udf: str) -> str:
    """The function a UDF name stands for, as a rule writes it (th_cidrmatch_2 → cidrMatch)."""
    if udf == VERSION_KEY_UDF:
        return "a comparison of a version field"
    return udf_function(udf)[0]


def _from_text(name: str, i: int, v: str | None):
    """UDF arguments travel as text; give numeric and boolean ones back their type."""
    if v is None:
        return None
    if (name == "substring" and i > 0) or (name == "indexOf" and i == 2) or (name == "number" and i == 1):
        return int(float(v))
    if name == "between" and i == 3:
        return v == "true"
    return v


def register_udfs(con) -> None:
    """Register the reference implementations as DuckDB functions (the SQL backend's fallback)."""
    con.create_function(VERSION_KEY_UDF, reference("version_key", False), ["VARCHAR"], "VARCHAR",
                        null_handling="special")
    for name, kind in UDF_KINDS.items():
        for ci in (False, True):
            for arity in range(1, _MAX_UDF_ARGS[name] + 1):
                con.create_function(udf_name(name, arity, ci), _duckdb_udf(name, ci, arity), ["VARCHAR"] * arity,
                                    _UDF_TYPES[kind], null_handling="special", side_effects=False)


def _duckdb_udf(name: str, ci: bool, arity: int):
    """DuckDB's UDFs take text (`_from_text` gives arguments back their type) with exactly `arity` parameters."""
    ref = reference(name, ci)

    def call(vals: tuple) -> object:
        return ref(*[_from_text(name, i, v) for i, v in enumerate(vals)])

    # DuckDB binds UDFs by their exact positional signature, so build one with `arity` params
    params = ", ".join(f"a{i}" for i in range(arity))
    return eval(f"lambda {params}: call(({params},))", {"call": call})  # noqa: S307 - fixed text


def _as_string(v: SqlValue) -> exp.Expression:
    return v.expr if v.kind == "string" else exp.Cast(this=v.expr, to=exp.DataType.build("VARCHAR"))


def _no_values(col: exp.Expression) -> exp.Expression:
    x = exp.Column(this=exp.Identifier(this=_X))
    non_null = exp.ArrayFilter(this=col, expression=exp.Lambda(
        this=exp.Not(this=exp.Is(this=x, expression=exp.Null())), expressions=[exp.Identifier(this=_X)]))
    return exp.Or(this=exp.Is(this=col, expression=exp.Null()),
                  expression=exp.EQ(this=exp.ArraySize(this=non_null), expression=exp.Literal.number(0)))
