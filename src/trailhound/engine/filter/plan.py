"""A filter planned over shared atoms: the boolean skeleton of a filter with single-field
predicates as leaves (evaluated once per distinct value, see shared.py) and Polars expressions for
the others, evaluated as Kleene truth arrays over candidate rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from ...compile.polars import PolarsCompiler
from ...compile.schema import Schema
from ...compile.semantics import ConditionCompiler
from ...lang import ir
from .encoding import FieldValues


class LazyExpr:
    """An atom's Polars expression, compiled the first time it is wanted: most wildcard atoms find their needles
    in no value at all (see shared.py), and then no expression of theirs is ever evaluated. Only what cannot fail
    is left for later (the atom's checks ran when it was made, so a compile error still belongs to the filter
    being added). Copies of an atom share it: compiled once for frames alike (a stream's batches)."""

    __slots__ = ("_make", "_expr")

    def __init__(self, make: Callable[[], pl.Expr]) -> None:
        self._make: Callable[[], pl.Expr] | None = make
        self._expr: pl.Expr | None = None

    def __call__(self) -> pl.Expr:
        if self._expr is None:
            assert self._make is not None
            self._expr, self._make = self._make(), None
        return self._expr

    @property
    def compiled(self) -> bool:
        return self._expr is not None


@dataclass
class Atom:
    expr: pl.Expr | LazyExpr  # evaluated over the field's distinct values (or its distinct array elements)
    field: str | None  # None: a constant (its arrays have one value)
    element_wise: bool  # true for a value when one of its array elements satisfies `expr`
    true: np.ndarray | None = None  # per distinct value: definitely true
    false: np.ndarray | None = None  # per distinct value: definitely false (neither: null)
    count: int = 0  # rows where it is true
    lowered: bool = False  # reads the field's lower-cased companion (LOWER_PREFIX + field)
    lookup: frozenset | None = None  # an exact match: the (lower-cased if `lowered`) strings that make it true
    key: str = ""  # its name among a SharedFilters' atoms (the predicate's repr)
    cidrs: tuple | None = None  # cidrMatch(field, these constants): evaluated with the field's other cidrMatch atoms
    #: a wildcard match: texts (lower-cased if `lowered`) it can be true for contain one of these (see shared.py)
    needles: tuple[str, ...] | None = None
    #: with `needles`: per pattern, its plan's kind and text (compile.patterns.plan_wildcard) and its needle, so that
    #: each pattern is tested on the texts holding its needle only (a `*needle*` one is true for exactly those)
    patterns: tuple[tuple[str, str, str], ...] | None = None

    def expression(self) -> pl.Expr:
        """Its Polars expression (compiled now if it was left for later)."""
        return self.expr() if isinstance(self.expr, LazyExpr) else self.expr

    def unevaluated(self) -> Atom:
        """The same predicate with no results yet (for another frame, or other values). Made directly:
        dataclasses.replace costs more than the rest of adopting a plan, for thousands of atoms."""
        return Atom(self.expr, self.field, self.element_wise, None, None, 0, self.lowered, self.lookup, self.key,
                    self.cidrs, self.needles, self.patterns)


def exact_strings(e: ir.Expr, info) -> tuple[frozenset, bool] | None:
    """For an exact match on a string field (`==`, `in`, `in~`, `:` without wildcards): the
    strings that satisfy it, and whether they are compared lower-cased. Hundreds of rules test
    process.args and process.name this way: one dictionary probe per distinct value serves them all."""
    if info.inner not in (pl.String, pl.Utf8):
        return None
    if isinstance(e, ir.Compare) and e.op == "==":
        lit = e.right if isinstance(e.left, ir.Field) else e.left if isinstance(e.right, ir.Field) else None
        if isinstance(lit, ir.Literal) and isinstance(lit.value, str):
            return frozenset((lit.value,)), False
        return None
    if isinstance(e, ir.InSet) and isinstance(e.value, ir.Field) and e.options:
        strings = [o.value for o in e.options if isinstance(o, ir.Literal) and isinstance(o.value, str)]
        if len(strings) < len(e.options):
            return None
        ci = e.case_insensitive
        return frozenset(v.lower() if ci else v for v in strings), ci
    if (isinstance(e, ir.Match) and e.kind == "wildcard" and isinstance(e.value, ir.Field) and e.patterns
            and not any("*" in p or "?" in p for p in e.patterns)):
        ci = e.case_insensitive
        return frozenset(p.lower() if ci else p for p in e.patterns), ci
    return None


@dataclass(frozen=True)
class AnyOf:
    """Candidate rows: those of any part (a disjunction of necessary conditions)."""

    parts: tuple
    count: int


#: a filter compiled to a tree over Kleene truth arrays:
#: ("atom", Atom) | ("expr", pl.Expr) | ("const", bool | None) | ("and"|"or", parts) | ("not"|"known", part)
Node = tuple


class Atoms(Protocol):
    """Where a plan's atoms come from and are read (a SharedFilters)."""

    schema: Schema

    def atom_for(self, e: ir.Expr) -> Atom | None: ...

    def category_atom(self, category: str, field: str) -> Atom: ...

    def field(self, path: str) -> FieldValues: ...

    def resolve(self, atom: Atom) -> Atom: ...


class Planner(ConditionCompiler[Node]):
    """The shared boolean skeleton, with atoms as leaves: shared single-field atoms, and Polars
    expressions (over the rows' real columns) for the others."""

    def __init__(self, owner: Atoms) -> None:
        self.owner = owner
        self.polars = PolarsCompiler(owner.schema)
        self.fallback_fields: set[str] = set()

    def all_of(self, parts: list[Node]) -> Node:
        return ("and", parts) if len(parts) > 1 else parts[0]

    def any_of(self, parts: list[Node]) -> Node:
        return ("or", parts) if len(parts) > 1 else parts[0]

    def negate(self, e: Node) -> Node:
        return ("not", e)

    def false_if_null(self, e: Node) -> Node:
        return ("known", e)

    def any_element(self, e: ir.Expr) -> Node:
        atom = self.owner.atom_for(e)
        if atom is not None:
            return ("atom", atom)
        self.fallback_fields.update(f.path for f in ir.fields_of(e))
        return ("expr", self.polars.any_element(e))

    def category(self, category: str | None, field: str) -> Node:
        if category is None:
            return ("const", True)
        if self.owner.schema.get(field).dtype is None:
            return ("const", False)
        return ("atom", self.owner.category_atom(category, field))


def truth(node: Node, rows: np.ndarray, owner: Atoms, exprs: dict[int, pl.Series]) -> tuple:
    """(definitely true, definitely false) over `rows`, with Kleene's and/or/not."""
    kind = node[0]
    if kind == "atom":
        atom = owner.resolve(node[1])
        assert atom.true is not None and atom.false is not None  # evaluated before any filter runs
        if atom.field is None:
            return np.full(len(rows), atom.true[0]), np.full(len(rows), atom.false[0])
        codes = owner.field(atom.field).codes[rows]
        return np.take(atom.true, codes), np.take(atom.false, codes)
    if kind == "expr":
        s = exprs[id(node)]
        return s.fill_null(False).to_numpy(), (~s).fill_null(False).to_numpy()
    if kind == "const":
        n = len(rows)
        return np.full(n, node[1] is True), np.full(n, node[1] is False)
    if kind == "not":
        t, f = truth(node[1], rows, owner, exprs)
        return f, t
    if kind == "known":
        t, _ = truth(node[1], rows, owner, exprs)
        return t, ~t
    parts = [truth(p, rows, owner, exprs) for p in node[1]]
    t, f = parts[0]
    for pt, pf in parts[1:]:
        t, f = (t & pt, f | pf) if kind == "and" else (t | pt, f & pf)
    return t, f


def tree_atoms(node: Node, out: dict[str, Atom] | None = None) -> dict[str, Atom]:
    """The distinct atoms of a tree, by key."""
    out = {} if out is None else out
    kind = node[0]
    if kind == "atom":
        out.setdefault(node[1].key, node[1])
    elif kind in ("and", "or"):
        for p in node[1]:
            tree_atoms(p, out)
    elif kind in ("not", "known"):
        tree_atoms(node[1], out)
    return out


def conjuncts(node: Node) -> list[Node]:
    return [x for p in node[1] for x in conjuncts(p)] if node[0] == "and" else [node]


def expr_nodes(node: Node) -> list[Node]:
    if node[0] == "expr":
        return [node]
    if node[0] in ("and", "or"):
        return [x for p in node[1] for x in expr_nodes(p)]
    if node[0] in ("not", "known"):
        return expr_nodes(node[1])
    return []

