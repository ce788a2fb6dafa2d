"""Many rules' filters over one frame, with the work they have in common done once.

Telemetry repeats itself: a million events carry a few dozen process names and tens of
thousands of command lines. So each field is dictionary-encoded once (its distinct values,
and per row the index of its value), and every predicate that reads a single field (an
"atom": `process.name in (...)`, `process.args : "-i"`, `startsWith(file.path, ...)`) is
evaluated once over that field's distinct values, whichever rules use it.

A rule's filter is then:
* narrowed to candidate rows: one conjunct (or disjunction of conjuncts) that must hold for
  the filter to hold, the most selective one, whose rows come from an inverted index;
* evaluated exactly on those rows only: the shared ConditionCompiler skeleton (De Morgan, ES's
  pushdown negation) over Kleene truth arrays, each atom read from its distinct-value result
  (computed by the Polars backend) and the few multi-field atoms computed by Polars on the rows.

Most rules match nothing and most candidate sets are tiny, so the cost per rule is small and
does not grow with the number of events beyond the index lookups.
"""

from __future__ import annotations

import os
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from ..compile.polars import LOWER_PREFIX, PolarsCompiler, _insensitive_field, lowered_columns
from ..compile.schema import DATE_TYPES, Schema
from ..compile.semantics import FLIP, ConditionCompiler, is_pushable
from ..lang import ir
from .prepare import FrameOptions, date_to_ns, prepare

#: above this many true distinct values, a mask over all rows beats gathering index slices
_SLICE_LIMIT = 256
_WORKERS = min(4, os.cpu_count() or 1)


class FieldValues:
    """One field dictionary-encoded: its distinct values (null included) and each row's code."""

    def __init__(self, values: pl.DataFrame, codes: np.ndarray) -> None:
        self.values = values  # one column, named after the field, values as the compiler reads them
        self.codes = codes  # uint32, one per row
        self.counts = np.bincount(codes, minlength=values.height)
        self._order: np.ndarray | None = None
        self._starts: np.ndarray | None = None
        self._items: _Items | None = None

    def items(self) -> _Items:
        """What exact-match and element-wise atoms read, made once per field (hunt's event,
        sequence and new_terms batches each bring new atoms for the same fields)."""
        if self._items is None:
            (column,) = self.values.get_columns()
            if isinstance(column.dtype, pl.List):
                pairs = self.values.with_row_index("__v").explode(column.name).drop_nulls(column.name)
                items, codes = encode(pairs[column.name])
                self._items = _Items(items, codes, pairs["__v"].to_numpy(), True)
            else:
                self._items = _Items(column, np.arange(column.len(), dtype=np.uint32),
                                     np.arange(column.len()), False)
        return self._items

    def rows_with(self, true_codes: np.ndarray) -> np.ndarray:
        """Row positions (sorted) whose value is one of `true_codes`."""
        if len(true_codes) == 0:
            return np.empty(0, dtype=np.int64)
        if len(true_codes) > _SLICE_LIMIT:
            mask = np.zeros(len(self.counts), dtype=bool)
            mask[true_codes] = True
            return np.flatnonzero(mask[self.codes])
        if self._order is None or self._starts is None:
            self._order, self._starts = _grouped(self.codes, len(self.counts))
        starts = self._starts
        parts = [self._order[starts[c]:starts[c + 1]] for c in true_codes]
        out = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return np.sort(out) if len(parts) > 1 else out


class _Items:
    """A field's distinct values or, for arrays, distinct elements; each element's code per
    (array value, element) pair, and the array value of each pair."""

    def __init__(self, items: pl.Series, codes: np.ndarray, owners: np.ndarray, elements: bool) -> None:
        self.items, self.codes, self.owners, self.elements = items, codes, owners, elements
        self._lowered: pl.Series | None = None
        self._texts: dict[bool, list] = {}
        self._by_item: tuple[np.ndarray, np.ndarray] | None = None

    def lowered(self) -> pl.Series:
        if self._lowered is None:
            self._lowered = self.items.str.to_lowercase()
        return self._lowered

    def texts(self, lowered: bool) -> list:
        if lowered not in self._texts:
            self._texts[lowered] = (self.lowered() if lowered else self.items).to_list()
        return self._texts[lowered]

    def by_item(self) -> tuple[np.ndarray, np.ndarray]:
        """The owners grouped by item: item k owns owners[starts[k]:starts[k + 1]]."""
        if self._by_item is None:
            if self.elements:
                order, starts = _grouped(self.codes, self.items.len())
                self._by_item = (self.owners[order], starts)
            else:  # one owner per item, itself
                self._by_item = (self.owners, np.arange(len(self.owners) + 1))
        return self._by_item


def _grouped(codes: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions grouped by code (stable) and where each code's group starts (n_values + 1 ends)."""
    return _stable_argsort(codes, n_values), np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=n_values))))


def _stable_argsort(codes: np.ndarray, n_values: int) -> np.ndarray:
    """np.argsort(codes, kind="stable"), by 16-bit radix passes (NumPy radix-sorts 16-bit
    integers, about 10x faster than its timsort of 32-bit ones)."""
    if n_values <= 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    low = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((codes[low] >> 16).astype(np.uint16), kind="stable")]


def encode(series: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct values of a column (null last when present) and each row's index into them."""
    if series.dtype == pl.String:
        cats = series.drop_nulls().unique()
        coded = series.cast(pl.Enum(cats)).to_physical().cast(pl.UInt32)
        values = pl.concat([cats, pl.Series([None], dtype=pl.String)]) if coded.null_count() else cats
        return values, coded.fill_null(len(cats)).to_numpy()
    groups = (pl.DataFrame({"v": series}).with_row_index("__i")
              .group_by("v").agg(pl.col("__i")))
    codes = np.empty(series.len(), dtype=np.uint32)
    idx = groups["__i"].explode().to_numpy()
    codes[idx] = np.repeat(np.arange(groups.height, dtype=np.uint32), groups["__i"].list.len().to_numpy())
    return groups["v"], codes


@dataclass
class _Atom:
    expr: pl.Expr  # evaluated over the field's distinct values (or its distinct array elements)
    field: str | None  # None: a constant (its arrays have one value)
    element_wise: bool  # true for a value when one of its array elements satisfies `expr`
    true: np.ndarray | None = None  # per distinct value: definitely true
    false: np.ndarray | None = None  # per distinct value: definitely false (neither: null)
    count: int = 0  # rows where it is true
    lowered: bool = False  # reads the field's lower-cased companion (LOWER_PREFIX + field)
    lookup: frozenset | None = None  # an exact match: the (lower-cased if `lowered`) strings that make it true


def _lookup(e: ir.Expr, info) -> tuple[frozenset, bool] | None:
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
class _Any:
    """Candidate rows: those of any part (a disjunction of necessary conditions)."""

    parts: tuple
    count: int


#: a filter compiled to a tree over Kleene truth arrays:
#: ("atom", _Atom) | ("expr", pl.Expr) | ("const", bool | None) | ("and"|"or", parts) | ("not"|"known", part)
Node = tuple


class _Planner(ConditionCompiler[Node]):
    """The shared boolean skeleton, with atoms as leaves: shared single-field atoms, and Polars
    expressions (over the rows' real columns) for the others."""

    def __init__(self, owner: SharedFilters) -> None:
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
        atom = self.owner._atom_for(e)
        if atom is not None:
            return ("atom", atom)
        self.fallback_fields.update(f.path for f in ir.fields_of(e))
        return ("expr", self.polars.any_element(e))

    def category(self, category: str | None, field: str) -> Node:
        if category is None:
            return ("const", True)
        if self.owner.schema.get(field).dtype is None:
            return ("const", False)
        return ("atom", self.owner._category_atom(category, field))


def _truth(node: Node, rows: np.ndarray, owner: SharedFilters, exprs: dict[int, pl.Series]) -> tuple:
    """(definitely true, definitely false) over `rows`, with Kleene's and/or/not."""
    kind = node[0]
    if kind == "atom":
        atom = node[1]
        if atom.field is None:
            return np.full(len(rows), atom.true[0]), np.full(len(rows), atom.false[0])
        codes = owner.field(atom.field).codes[rows]
        return atom.true[codes], atom.false[codes]
    if kind == "expr":
        s = exprs[id(node)]
        return s.fill_null(False).to_numpy(), (~s).fill_null(False).to_numpy()
    if kind == "const":
        n = len(rows)
        return np.full(n, node[1] is True), np.full(n, node[1] is False)
    if kind == "not":
        t, f = _truth(node[1], rows, owner, exprs)
        return f, t
    if kind == "known":
        t, _ = _truth(node[1], rows, owner, exprs)
        return t, ~t
    parts = [_truth(p, rows, owner, exprs) for p in node[1]]
    t, f = parts[0]
    for pt, pf in parts[1:]:
        t, f = (t & pt, f | pf) if kind == "and" else (t | pt, f & pf)
    return t, f


def _conjuncts(node: Node) -> list[Node]:
    return [x for p in node[1] for x in _conjuncts(p)] if node[0] == "and" else [node]


def _expr_nodes(node: Node) -> list[Node]:
    if node[0] == "expr":
        return [node]
    if node[0] in ("and", "or"):
        return [x for p in node[1] for x in _expr_nodes(p)]
    if node[0] in ("not", "known"):
        return _expr_nodes(node[1])
    return []


class SharedFilters:
    """Row sets of event filters over one frame, sharing dictionaries and atoms across filters."""

    def __init__(self, frame: pl.DataFrame, options: FrameOptions) -> None:
        # weak: search.shared_filters keeps this object for as long as the frame lives, so a
        # strong reference would keep every frame ever searched alive
        self._frame = weakref.ref(frame)
        self.options = options
        self.height = frame.height
        self.types = options.types()
        names = set(frame.columns)
        self.source: dict[str, str] = {n: n for n in names}
        for alias, target in options.aliases.items():
            if alias not in names and target in names:
                self.source[alias] = target
                if target in self.types and alias not in self.types:
                    self.types[alias] = self.types[target]
        lf, _ = prepare(frame.head(0), options, set(self.source))
        self.schema = Schema.of_frame(lf, self.types)
        self._fields: dict[str, FieldValues] = {}
        self._atoms: dict[str, _Atom] = {}
        self._pending: dict[str, list[_Atom]] = {}
        self._rows: dict[str, np.ndarray] = {}
        self._plans: dict[str, tuple[Node, _Planner]] = {}
        self._values = PolarsCompiler(self.schema)
        self._lowered_values: dict[str, PolarsCompiler] = {}  # per field: reads its lower-cased companion
        self._order: tuple[pl.DataFrame, np.ndarray] | None = None

    @property
    def frame(self) -> pl.DataFrame:
        frame = self._frame()
        if frame is None:
            raise RuntimeError("the frame of these shared filters was freed")
        return frame

    # ---- atoms ---------------------------------------------------------------------------

    def _atom_for(self, e: ir.Expr) -> _Atom | None:
        """The shared atom for this predicate if it reads exactly one field, which the frame has,
        or no field the frame has (a constant: rules name many fields the data lacks).
        Its expression is compiled now, so that a query error belongs to the filter being added."""
        paths = {f.path for f in ir.fields_of(e)}
        present = {p for p in paths if self.schema.get(p).dtype is not None}
        if not present:
            return self._constant_atom(e)
        if len(paths) != 1:
            return None
        (path,) = paths
        info = self.schema.get(path)
        key = repr(e)  # repr tells 1, 1.0 and True apart, which == does not
        atom = self._atoms.get(key)
        if atom is None:
            # on an array, a pushable predicate is true when one element satisfies it, so each
            # distinct element is tested once; other predicates see the whole array
            element_wise = info.multi and is_pushable(e) and not isinstance(e, ir.IsNull)
            # case-insensitive matches read a lower-cased companion, made once per field rather
            # than once per pattern (hundreds of patterns read process.args, file.path...)
            lowered = _insensitive_field(e) == path and info.inner in (pl.String, pl.Utf8)
            if element_wise:
                self._values._pre = path if lowered else None
                try:
                    expr = self._values._scalar_atom(e, {path: pl.col(LOWER_PREFIX + path if lowered else path)})
                finally:
                    self._values._pre = None
            else:
                compiler = self._values
                if lowered:
                    compiler = self._lowered_values.get(path) or self._lowered_values.setdefault(
                        path, PolarsCompiler(self.schema, lowered=frozenset({path})))
                expr = compiler.any_element(e)
            exact = _lookup(e, info)
            atom = self._atoms[key] = _Atom(expr, path, element_wise, lowered=lowered)
            if exact is not None:
                atom.lookup, atom.lowered = exact
            self._pending.setdefault(path, []).append(atom)
        return atom

    def _constant_atom(self, e: ir.Expr) -> _Atom:
        key = repr(e)
        atom = self._atoms.get(key)
        if atom is None:
            value = pl.select(self._values.any_element(e).alias("v")).to_series()[0]
            atom = self._atoms[key] = _Atom(pl.lit(value), None, False, np.array([value is True]),
                                            np.array([value is False]), self.height if value is True else 0)
        return atom

    def _category_atom(self, category: str, field: str) -> _Atom:
        key = f"category:{field}:{category!r}"
        atom = self._atoms.get(key)
        if atom is None:
            atom = self._atoms[key] = _Atom(self._values.category(category, field), field, False)
            self._pending.setdefault(field, []).append(atom)
        return atom

    def field(self, path: str) -> FieldValues:
        fv = self._fields.get(path)
        if fv is None:
            values, codes = encode(self.frame[self.source[path]])
            es_type = self.types.get(path)
            if es_type in DATE_TYPES:
                values = pl.select(date_to_ns(pl.lit(values), values.dtype, es_type == "date_nanos")).to_series()
            fv = self._fields[path] = FieldValues(values.alias(path).to_frame(), codes)
        return fv

    def _evaluate_pending(self) -> None:
        pending, self._pending = self._pending, {}
        if len(pending) > 1 and _WORKERS > 1:
            # fields are independent and Polars releases the GIL: encoding and atom evaluation
            # of one field overlap with another's (measured 1.5x on two cores)
            with ThreadPoolExecutor(_WORKERS) as pool:
                for future in [pool.submit(self._evaluate_field, p, a) for p, a in pending.items()]:
                    future.result()
        else:
            for path, atoms in pending.items():
                self._evaluate_field(path, atoms)

    def _evaluate_field(self, path: str, atoms: list[_Atom]) -> None:
        fv = self.field(path)
        exact = [a for a in atoms if a.lookup is not None]
        if exact:
            self._evaluate_lookups(path, fv, exact)
        whole = [a for a in atoms if not a.element_wise and a.lookup is None]
        if whole:
            values = fv.values
            if any(a.lowered for a in whole):
                values = values.with_columns(lowered_columns([ir.Match(ir.Field(path), "wildcard", ("",), True)],
                                                             self.schema).values())
            # with_columns: a constant atom still gets one value per distinct value
            out = values.with_columns(a.expr.alias(f"a{j}") for j, a in enumerate(whole)).select(
                f"a{j}" for j in range(len(whole)))
            true = out.select(pl.all().fill_null(False)).to_numpy()
            false = out.select((~pl.all()).fill_null(False)).to_numpy()
            for j, a in enumerate(whole):
                a.true, a.false = true[:, j].copy(), false[:, j].copy()
        element_wise = [a for a in atoms if a.element_wise and a.lookup is None]
        if element_wise:
            self._evaluate_elements(path, fv, element_wise)
        for a in atoms:
            a.count = int(fv.counts[a.true].sum())

    def _evaluate_lookups(self, path: str, fv: FieldValues, atoms: list[_Atom]) -> None:
        """Exact-match atoms by dictionary probes: each distinct value (or array element), as
        it is and lower-cased, is looked up once among all the atoms' strings."""
        column = fv.values[path]
        items = fv.items()
        multi = items.elements
        owners, starts = items.by_item()
        for lowered, group in ((lw, [a for a in atoms if a.lowered == lw]) for lw in (False, True)):
            if not group:
                continue
            index: dict[str, list[int]] = {}
            for j, a in enumerate(group):
                assert a.lookup is not None  # only exact-match atoms come here
                for value in a.lookup:
                    index.setdefault(value, []).append(j)
            hits = np.zeros((len(group), fv.values.height), dtype=bool)
            for k, text in enumerate(items.texts(lowered)):
                found = index.get(text) if text is not None else None
                if found:
                    own = owners[starts[k]:starts[k + 1]]
                    for j in found:
                        hits[j, own] = True
            for j, a in enumerate(group):
                a.true = hits[j]
                # a missing value (or an array without values) is unknown for a whole atom, and false
                # element-wise (pushdown); a scalar value that did not match is false
                a.false = ~hits[j] if a.element_wise or multi else (~hits[j] & column.is_not_null().to_numpy())

    def _evaluate_elements(self, path: str, fv: FieldValues, atoms: list[_Atom]) -> None:
        """Each distinct element tested once, then any() per distinct array (null and empty
        arrays have no element, so no atom is true for them; pushdown makes that false)."""
        items = fv.items()
        elem_codes, vids = items.codes, items.owners
        frame = items.items.alias(path).to_frame()
        if any(a.lowered for a in atoms):
            frame = frame.with_columns(items.lowered().alias(LOWER_PREFIX + path))
        mat = frame.with_columns(a.expr.fill_null(False).alias(f"a{j}") for j, a in enumerate(atoms)).select(
            f"a{j}" for j in range(len(atoms))).to_numpy()
        for j, a in enumerate(atoms):
            a.true = np.zeros(fv.values.height, dtype=bool)
            a.true[vids[mat[elem_codes, j]]] = True
            a.false = ~a.true

    # ---- event order ---------------------------------------------------------------------

    def order(self) -> tuple[pl.DataFrame, np.ndarray]:
        """`__ts` and `__tb` of every row, and the row positions in event order (made once)."""
        if self._order is None:
            ts, tb = self.options.timestamp_field, self.options.tiebreaker_field
            wanted = {ts, tb, self.options.aliases.get(ts), self.options.aliases.get(tb) if tb is not None else None}
            base = self.frame.select(sorted((set(self.frame.columns) & wanted) | {"__row"}))
            keys = prepare(base, self.options, set())[0].select("__ts", "__tb", "__row").collect()
            by_order = keys.with_row_index("__pos").sort(["__ts", "__tb", "__row"], nulls_last=True)["__pos"]
            self._order = (keys.select("__ts", "__tb"), by_order.to_numpy().astype(np.int64))
        return self._order

    def has_order(self) -> bool:
        return self._order is not None

    def in_event_order(self, positions: np.ndarray) -> np.ndarray:
        """These row positions (distinct), sorted in event order."""
        by_order = self.order()[1]
        mask = np.zeros(self.height, dtype=bool)
        mask[positions] = True
        return by_order[mask[by_order]]

    # ---- filters -------------------------------------------------------------------------

    def add(self, f: ir.EventFilter) -> None:
        """Compile a filter (raising its QueryError) and register its atoms for evaluation."""
        key = repr(f)
        if key not in self._rows and key not in self._plans:
            planner = _Planner(self)
            cond = planner.predicate(f.condition)
            root = ("known", ("and", [planner.category(f.category, self.options.event_category_field), cond]))
            self._plans[key] = (root, planner)

    def rows(self, f: ir.EventFilter) -> np.ndarray:
        """The sorted row positions where an added filter holds."""
        key = repr(f)
        if key not in self._rows:
            self._evaluate_pending()
            self._rows[key] = self._run(f, *self._plans.pop(key))
        return self._rows[key]

    def _run(self, f: ir.EventFilter, root: Node, planner: _Planner) -> np.ndarray:
        need = self._necessary(f.condition, False)
        if f.category is not None and self.schema.get(self.options.event_category_field).dtype is not None:
            cat = self._category_atom(f.category, self.options.event_category_field)
            need = cat if need is None or cat.count < need.count else need
        rows = self._candidates(need) if need is not None else np.arange(self.height, dtype=np.int64)
        if len(rows) == 0:
            return rows
        # the filter is a conjunction: test its parts one by one, cheapest first, each on the
        # rows that passed the previous ones (Polars-evaluated parts last, on the fewest rows)
        parts = _conjuncts(root[1])
        parts.sort(key=lambda n: bool(_expr_nodes(n)))
        for part in parts:
            exprs = {}
            nodes = _expr_nodes(part)
            if nodes:
                present = [p for p in planner.fallback_fields if p in self.source]
                base = self.frame.select(sorted({self.source[p] for p in present} | {"__row"})).gather(rows)
                sub, _ = prepare(base, self.options, set(present))
                out = sub.with_columns(n[1].alias(f"e{i}") for i, n in enumerate(nodes)).collect()
                exprs = {id(n): out[f"e{i}"] for i, n in enumerate(nodes)}
            true, _ = _truth(part, rows, self, exprs)
            rows = rows[true]
            if len(rows) == 0:
                break
        return rows

    def _necessary(self, e: ir.Expr, negated: bool):
        """A condition every row matching `e` satisfies: an atom, or an _Any of them; None if
        none is cheap to find. Mirrors ConditionCompiler._bool/_atom (De Morgan, pushdown)."""
        if isinstance(e, ir.Not):
            return self._necessary(e.operand, not negated)
        if isinstance(e, (ir.And, ir.Or)):
            parts = [self._necessary(t, negated) for t in e.terms]
            if isinstance(e, ir.And) != negated:
                known = [p for p in parts if p is not None]
                return min(known, key=lambda p: p.count) if known else None
            if any(p is None for p in parts):
                return None
            return _Any(tuple(parts), sum(p.count for p in parts))
        if isinstance(e, ir.Compare) and e.op == "!=" and is_pushable(e):
            e, negated = replace(e, op="=="), not negated
        if negated and isinstance(e, ir.Compare) and e.op in FLIP and is_pushable(e):
            e, negated = replace(e, op=FLIP[e.op]), False
        if negated:
            return None
        atom = self._atoms.get(repr(e))
        return atom if atom is not None and atom.true is not None else None

    def _candidates(self, need) -> np.ndarray:
        if isinstance(need, _Any):
            parts = [self._candidates(p) for p in need.parts]
            return np.unique(np.concatenate(parts))
        if need.field is None:
            return np.arange(self.height, dtype=np.int64) if need.true[0] else np.empty(0, dtype=np.int64)
        return self.field(need.field).rows_with(np.flatnonzero(need.true))
