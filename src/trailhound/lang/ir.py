"""Typed intermediate representation of EQL queries.

The IR keeps everything Elasticsearch's semantics depend on: the operator's case
sensitivity (`:` vs `==`, `in~`, `fn~`), optional fields (`?f`), raw patterns,
stage keys by position, `runs`, missing stages. Backends (compile/) and the
correlators (engine/) consume it; nothing here knows about Polars or SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from typing import Literal as Lit

Scalar = str | int | float | bool | None


# ---- expressions ----------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    path: str
    optional: bool = False

    def __str__(self) -> str:
        return ("?" if self.optional else "") + self.path


@dataclass(frozen=True)
class Literal:
    value: Scalar

    def __str__(self) -> str:
        if isinstance(self.value, str):
            return '"' + self.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if self.value is None:
            return "null"
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return repr(self.value)


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class And:
    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Expr, ...]


CompareOp = Lit["==", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class Compare:
    """`left op right`; `x == null` / `x != null` are IsNull, never Compare."""

    op: CompareOp
    left: Expr
    right: Expr


@dataclass(frozen=True)
class InSet:
    """`value in (...)` (exact membership; `in~` compares case-insensitively)."""

    value: Expr
    options: tuple[Expr, ...]
    case_insensitive: bool = False


@dataclass(frozen=True)
class Match:
    """`:`, `like`, `like~`, `regex`, `regex~`, each with one or more patterns (any of)."""

    value: Expr
    kind: Lit["wildcard", "regex"]
    patterns: tuple[str, ...]
    case_insensitive: bool


@dataclass(frozen=True)
class IsNull:
    operand: Expr


ArithOp = Lit["+", "-", "*", "/", "%"]


@dataclass(frozen=True)
class Arith:
    op: ArithOp
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate:
    operand: Expr


@dataclass(frozen=True)
class Call:
    """A function call; `name` is the canonical ES name, `case_insensitive` its `~` form."""

    name: str
    args: tuple[Expr, ...]
    case_insensitive: bool = False


#: Sigma's time parts (`|hour`...): `_timePart(field, "hour")`, an internal function the Sigma translator
#: emits (the underscore keeps it out of EQL's names); compile/functions.part_of_ns defines its meaning
TIME_PART = "_timePart"

Expr = Field | Literal | Not | And | Or | Compare | InSet | Match | IsNull | Arith | Negate | Call

#: Predicates: the units to which any-element (array) semantics applies.
ATOMS = (Compare, InSet, Match, IsNull, Call, Field, Literal)


def children(e: Expr) -> tuple[Expr, ...]:
    get = _CHILDREN.get(type(e))
    return get(e) if get is not None else ()


#: each node type's children, by type: one dict lookup instead of a chain of isinstance tests (walks run over
#: every rule's filters many times, thousands of nodes each)
_CHILDREN: dict[type, Callable[[Any], tuple[Expr, ...]]] = {
    Not: lambda e: (e.operand,),
    Negate: lambda e: (e.operand,),
    IsNull: lambda e: (e.operand,),
    And: lambda e: e.terms,
    Or: lambda e: e.terms,
    Compare: lambda e: (e.left, e.right),
    Arith: lambda e: (e.left, e.right),
    InSet: lambda e: (e.value, *e.options),
    Match: lambda e: (e.value,),
    Call: lambda e: e.args,
}


def walk(e: Expr) -> Iterator[Expr]:
    """Every node, parents first, without recursion (a query may nest deeply)."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        get = _CHILDREN.get(type(node))
        if get is not None:
            stack.extend(reversed(get(node)))


def fields_of(e: Expr) -> list[Field]:
    """The fields `e` reads, in walk order (parents first, left to right), repeats kept."""
    out: list[Field] = []
    stack: list[Expr] = [e]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is Field:
            out.append(node)  # type: ignore[arg-type]  # kind is Field
            continue
        get = _CHILDREN.get(kind)
        if get is not None:
            stack.extend(reversed(get(node)))
    return out


def fold_alternatives(terms: tuple[Expr, ...]) -> tuple[Expr, ...]:
    """The terms of an `or`, with the equalities on one field merged into one membership test
    and the patterns on one field into one Match, each where the first of them stood.

    `f == 1 or f == 2` is `f in (1, 2)` to Elasticsearch (term queries on one field, which a
    `terms` query runs at once): same result, with or without the field, under negation and on
    arrays. Without this, a rule listing thousands of values costs thousands of expressions."""
    slots: dict[tuple, int] = {}
    merged: list[list] = []  # per slot: [first term, [(key, option or pattern), ...]]
    out: list[Expr | None] = []
    for t in terms:
        key, items = _alternative(t)
        if key is None:
            out.append(t)
            continue
        if key in slots:
            merged[slots[key]][1].extend(items)
            continue
        slots[key] = len(merged)
        merged.append([t, list(items), len(out)])
        out.append(None)
    for first, items, at in merged:
        unique = list({k: v for k, v in items}.values())
        if len(items) == len(_alternative(first)[1]):
            out[at] = first  # nothing to merge with: the term as written
            continue
        key = _alternative(first)[0]
        assert key is not None  # only a foldable term opened a slot
        kind, value, *rest = key
        if kind == "in":
            out[at] = InSet(value, tuple(unique), rest[0])
        else:
            out[at] = Match(value, rest[0], tuple(unique), rest[1])
    return tuple(t for t in out if t is not None)


def _alternative(t: Expr) -> tuple[tuple | None, list]:
    """(merge key, its options as (identity, value)) for a foldable term, else (None, [])."""
    def lit_key(lit: Literal) -> tuple:
        return (type(lit.value).__name__, lit.value)  # 1, 1.0 and True are different options

    if isinstance(t, Compare) and t.op == "==":
        field_, lit = (t.left, t.right) if isinstance(t.left, Field) else (t.right, t.left)
        if isinstance(field_, Field) and isinstance(lit, Literal) and lit.value is not None:
            return ("in", field_, False), [(lit_key(lit), lit)]
    if isinstance(t, InSet) and isinstance(t.value, Field) and t.options and all(
            isinstance(o, Literal) for o in t.options):
        return ("in", t.value, t.case_insensitive), [(lit_key(o), o) for o in t.options if isinstance(o, Literal)]
    if isinstance(t, Match) and isinstance(t.value, Field):
        return ("match", t.value, t.kind, t.case_insensitive), [(p, p) for p in t.patterns]
    return None, []


# ---- queries --------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    category: str | None  # None: `any`
    condition: Expr


@dataclass(frozen=True)
class Stage:
    filter: EventFilter
    keys: tuple[Field, ...] = ()  # sequence-level keys first, then the stage's own (always fields)
    missing: bool = False  # `![...]`
    runs: int = 1  # `with runs=N`: N copies of this stage


@dataclass(frozen=True)
class Pipe:
    kind: Lit["head", "tail"]
    count: int


@dataclass(frozen=True)
class EventQuery:
    filter: EventFilter
    pipes: tuple[Pipe, ...] = ()


@dataclass(frozen=True)
class SequenceQuery:
    stages: tuple[Stage, ...]
    maxspan_ms: int | None = None
    until: Stage | None = None
    pipes: tuple[Pipe, ...] = ()

    def expanded(self) -> tuple[Stage, ...]:
        """Stages with `runs=N` unrolled: runs is a pure macro in ES."""
        out: list[Stage] = []
        for s in self.stages:
            out.extend([Stage(s.filter, s.keys, s.missing, 1)] * s.runs)
        return tuple(out)


@dataclass(frozen=True)
class SampleQuery:
    stages: tuple[Stage, ...]
    pipes: tuple[Pipe, ...] = ()


Query = EventQuery | SequenceQuery | SampleQuery


@dataclass(frozen=True)
class Parsed:
    """A parsed query with the source text it came from (for messages)."""

    query: Query
    text: str
    fields: tuple[Field, ...] = field(default=())


def query_filters(q: Query) -> list[EventFilter]:
    if isinstance(q, EventQuery):
        return [q.filter]
    stages = list(q.stages)
    if isinstance(q, SequenceQuery) and q.until is not None:
        stages.append(q.until)
    return [s.filter for s in stages]


def query_fields(q: Query) -> list[Field]:
    """Every field the query reads, in first-use order, without duplicates."""
    seen: dict[str, Field] = {}
    exprs: list[Expr] = [f.condition for f in query_filters(q)]
    if not isinstance(q, EventQuery):
        stages = list(q.stages) + ([q.until] if isinstance(q, SequenceQuery) and q.until else [])
        for s in stages:
            exprs.extend(s.keys)
    for e in exprs:
        for f in fields_of(e):
            prev = seen.get(f.path)
            # a field used both ways is required: `?` only relaxes the unknown-field check
            if prev is None or (prev.optional and not f.optional):
                seen[f.path] = f
    return list(seen.values())


def restrict(q: Query, cond: Expr) -> Query:
    """`q` run over only the events matching `cond`, as ES applies a search's `filter` to every
    event it reads: each stage, `until` and missing-event step gets `and cond`."""
    def narrowed(f: EventFilter) -> EventFilter:
        return replace(f, condition=And((f.condition, cond)))

    if isinstance(q, EventQuery):
        return replace(q, filter=narrowed(q.filter))
    stages = tuple(replace(s, filter=narrowed(s.filter)) for s in q.stages)
    if isinstance(q, SequenceQuery):
        until = replace(q.until, filter=narrowed(q.until.filter)) if q.until else None
        return replace(q, stages=stages, until=until)
    return replace(q, stages=stages)
