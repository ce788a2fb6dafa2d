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

Wildcard atoms, hundreds over a few text fields, are not compiled to Polars expressions at all: one
multi-pattern scan per field finds the texts holding each pattern's literal run, and each pattern
is tested on those texts only (`_evaluate_narrowed`). Other atoms are checked when their filter is
added (so a query error is that filter's) and compiled when first evaluated (plan.LazyExpr).

Most rules match nothing and most candidate sets are tiny, so the cost per rule is small and
does not grow with the number of events beyond the index lookups.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

import numpy as np
import polars as pl

from ...compile.dates import date_to_ns
from ...compile.patterns import plan_wildcard, required_literal
from ...compile.polars import LOWER_PREFIX, PolarsCompiler, _insensitive_field, cidr_match_many, lowered_columns
from ...compile.schema import DATE_TYPES, Schema
from ...compile.semantics import FLIP, is_pushable
from ...lang import ir
from ...sources.dictionary import Encoding
from .encoding import FieldValues, encode, stable_argsort
from .frame import FrameOptions, prepare
from .plan import AnyOf, Atom, LazyExpr, Node, Planner, conjuncts, exact_strings, expr_nodes, tree_atoms, truth

_WORKERS = min(4, os.cpu_count() or 1)
#: below this many rows, fields are evaluated one after another: a thread pool per evaluation costs more than it
#: saves on a micro-batch (and Polars runs each query on its own threads anyway)
_THREADED_ROWS = 20_000
#: distinct values of one field whose atom truths a stream remembers; past it, it starts over (memory stays flat)
_REMEMBERED_VALUES = 50_000


class CompiledAtoms:
    """Compiled single-field atoms kept across frames alike (same frame options, column names and dtypes), so
    that a stream of small frames (watch's micro-batches) compiles each predicate once, not once per frame.
    What an atom holds of a frame (its truth per distinct value) is not kept. Bounded: a few schemas."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._by_schema: dict[tuple, _Compiled] = {}

    def of(self, key: tuple, frame: pl.DataFrame) -> _Compiled:
        signature = (key, tuple((name, repr(dtype)) for name, dtype in frame.schema.items()))
        compiled = self._by_schema.get(signature)
        if compiled is None:
            if len(self._by_schema) >= self.limit:
                self._by_schema.pop(next(iter(self._by_schema)))
            compiled = self._by_schema[signature] = _Compiled()
        return compiled


class _Compiled:
    """For one frame signature: atoms by key, and filters planned (their trees name template atoms, which a new
    frame replaces by its own, by key)."""

    def __init__(self) -> None:
        self.atoms: dict[str, Atom] = {}
        #: per filter key: its tree, its planner, and the distinct atoms of the tree (templates, by key)
        self.plans: dict[str, tuple[Node, Planner, list[Atom]]] = {}
        #: per field and atoms evaluated together: their truths per value seen (SharedFilters._evaluate_remembered)
        self.values: dict[tuple, _Truths] = {}
        #: per group of exact-match atoms (their keys): the strings they look for (SharedFilters._lookup_index)
        self.lookups: dict[tuple, dict[str, list[int]]] = {}
        #: per filter key: where its candidate rows come from (see SharedFilters._need_plan), by atom key
        self.needs: dict[str, tuple | None] = {}
        #: a filter's or an expression's key (its repr) by its id, kept with it (a rule's filters live as long as the
        #: stream): the repr of a large filter costs more than evaluating it over a micro-batch (SharedFilters._key)
        self.keys: dict[int, tuple[ir.EventFilter | ir.Expr, str]] = {}


class _Truths:
    """Atoms' truths per distinct value of one field, over the values frames alike had (see
    SharedFilters._evaluate_remembered): one row per atom, one column per value, grown by doubling."""

    def __init__(self, atoms: int) -> None:
        self.index: dict = {}  # value → its column
        self.true = np.zeros((atoms, 64), dtype=bool)
        self.false = np.zeros((atoms, 64), dtype=bool)

    def add(self, values: list, true: list[np.ndarray], false: list[np.ndarray]) -> None:
        start = len(self.index)
        for v in values:
            self.index[v] = len(self.index)
        end = len(self.index)
        if end > self.true.shape[1]:
            size = max(end, 2 * self.true.shape[1])
            for name in ("true", "false"):
                old = getattr(self, name)
                grown = np.zeros((old.shape[0], size), dtype=bool)
                grown[:, :start] = old[:, :start]
                setattr(self, name, grown)
        if true:
            self.true[:, start:end] = np.vstack(true)
            self.false[:, start:end] = np.vstack(false)


#: the expression of an atom answered by dictionary probes (SharedFilters._evaluate_lookups): never evaluated
_PROBED = pl.lit(None, dtype=pl.Boolean)
#: a wildcard atom whose needles occur in more than this share of the values is evaluated over all of them
_NARROW_SHARE = 0.25


def _evaluate_narrowed(frame: pl.DataFrame, path: str, atoms: list[Atom],
                       falses: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(definitely true, definitely false) of each atom over the rows of `frame` (distinct values or array elements
    of `path`, with its lower-cased companion if an atom reads it), as atoms × rows (an atom's truths contiguous);
    without the second (None) when `falses` is off (array elements: only what is true of them is read).

    Hundreds of wildcard atoms read the same few fields (process.args, process.command_line, file.path), each a
    Polars pass per pattern over tens of thousands of distinct texts, and nearly all of them match few or none. A
    text a wildcard pattern matches contains the pattern's longest literal run (its needle), so one multi-pattern
    scan (Aho-Corasick, `str.extract_many`) finds, for all patterns at once, the texts that may match. A `*needle*`
    pattern is true for exactly those; any other pattern is tested on those only, all patterns of a kind in one
    vectorized pass (`starts_with`, `ends_with`, `==`, regex, each with one pattern per text). An atom (any of its
    patterns) is then true where one of its patterns is, false on any other text, and unknown on a missing one,
    as the full evaluation says. Atoms without needles are evaluated over every text; their expressions are
    compiled now (LazyExpr): the narrowed ones are never compiled."""
    n, k = frame.height, len(atoms)
    true = np.zeros((k, n), dtype=bool)
    false = np.zeros((k, n), dtype=bool) if falses else None
    rows = _needle_rows(frame, path, atoms)
    # the needles are looked for in text columns only (a value the compiler reads otherwise is evaluated whole)
    texts = {lw: (name := LOWER_PREFIX + path if lw else path) in frame.columns and frame[name].dtype == pl.String
             for lw in (False, True)}
    whole = [j for j, a in enumerate(atoms) if a.patterns is None or not texts[a.lowered]]
    narrowed = [j for j, a in enumerate(atoms) if a.patterns is not None and texts[a.lowered]]
    if narrowed:
        # (pattern text, its atom, the rows it is tested on), by the kind of test, per text column
        tests: dict[tuple[bool, str], list[tuple[str, int, np.ndarray]]] = {}
        for j in narrowed:
            a = atoms[j]
            for kind, text, needle in a.patterns or ():
                r = rows.get((a.lowered, needle))
                if r is None or not len(r):
                    continue
                if kind == "contains":
                    true[j, r] = True
                else:
                    tests.setdefault((a.lowered, kind), []).append((text, j, r))
        for (lowered, kind), group in tests.items():
            column = frame[LOWER_PREFIX + path if lowered else path]
            where = np.concatenate([r for _, _, r in group])
            owner = np.repeat(np.asarray([j for _, j, _ in group], dtype=np.int64), [len(r) for _, _, r in group])
            patterns = pl.Series([t for t, _, _ in group], dtype=pl.String).gather(
                np.repeat(np.arange(len(group)), [len(r) for _, _, r in group]))
            value, pattern = pl.col("text"), pl.col("pattern")
            test = (value == pattern if kind == "equals" else value.str.starts_with(pattern) if kind == "prefix"
                    else value.str.ends_with(pattern) if kind == "suffix"
                    # an anchored regex (compile.patterns.wildcard_to_regex), checked when its atom was made
                    else value.str.contains(pattern))
            hit = pl.DataFrame({"text": column.gather(where), "pattern": patterns}).select(test).to_series()
            found = hit.fill_null(False).to_numpy()
            true[owner[found], where[found]] = True
        if false is not None:
            present = frame[path].is_not_null().to_numpy()
            false[narrowed] = present & ~true[narrowed]
    if whole:
        # with_columns: a constant atom still gets one value per row
        out = frame.with_columns(atoms[j].expression().alias(f"a{i}") for i, j in enumerate(whole)).select(
            f"a{i}" for i in range(len(whole)))
        true[whole] = out.select(pl.all().fill_null(False)).to_numpy().T
        if false is not None:
            false[whole] = out.select((~pl.all()).fill_null(False)).to_numpy().T
    return true, false


def _needle_rows(frame: pl.DataFrame, path: str, atoms: list[Atom]) -> dict[tuple[bool, str], np.ndarray]:
    """(lower-cased?, needle) → the rows (sorted) whose text (lower-cased or not) contains the needle, for the
    needles of `atoms`; a needle in no text has no entry. One scan per text column (as it is, lower-cased) for all
    the needles; its (row, needle) pairs grouped by needle."""
    out: dict[tuple[bool, str], np.ndarray] = {}
    for lowered in (False, True):
        needles = sorted({x for a in atoms if a.lowered == lowered for x in a.needles or ()})
        name = LOWER_PREFIX + path if lowered else path
        if not needles or name not in frame.columns or frame[name].dtype != pl.String:
            continue
        found = frame[name].str.extract_many(needles, overlapping=True)
        pairs = pl.DataFrame({"needle": found}).with_row_index("row").explode("needle").drop_nulls("needle")
        ids = pairs["needle"].cast(pl.Enum(needles)).to_physical().to_numpy()
        order = stable_argsort(ids, len(needles))
        ids, by_needle = ids[order], pairs["row"].to_numpy().astype(np.int64)[order]  # rows ascending per needle
        # a text holding a needle more than once gives a pair each time: keep one
        first = np.ones(len(ids), dtype=bool)
        first[1:] = (ids[1:] != ids[:-1]) | (by_needle[1:] != by_needle[:-1])
        ids, by_needle = ids[first], by_needle[first]
        starts = np.searchsorted(ids, np.arange(len(needles) + 1))
        for i, needle in enumerate(needles):
            if starts[i + 1] > starts[i]:
                out[(lowered, needle)] = by_needle[starts[i]:starts[i + 1]]
    return out


def _compile_atom(compiler: PolarsCompiler, e: ir.Expr, path: str, element_wise: bool, lowered: bool) -> pl.Expr:
    """An atom's Polars expression over the distinct values (or elements, `element_wise`) of `path`, reading its
    lower-cased companion when `lowered` (then `compiler` is one that reads it, for a whole value)."""
    return compiler.element_atom(e, path, lowered) if element_wise else compiler.any_element(e)


def _owners(items, found: np.ndarray):
    """k → the values (rows of the field's dictionary) that item k of `found` belongs to: itself for a scalar
    field, the arrays holding that element for an array field (grouped for those items only)."""
    if not items.elements:
        return lambda k: k
    mask = np.zeros(items.items.len(), dtype=bool)
    mask[found] = True
    pairs = np.flatnonzero(np.take(mask, items.codes))
    codes = items.codes[pairs]
    order = np.argsort(codes, kind="stable")
    codes, owners = codes[order], items.owners[pairs[order]]
    return lambda k: owners[np.searchsorted(codes, k, "left"):np.searchsorted(codes, k, "right")]


def _reads(e: ir.Expr, path: str) -> bool:
    """Whether `e` is the field `path` itself, optional (`?path`, null where the data lacks it) or not: either
    reads the same column."""
    return isinstance(e, ir.Field) and e.path == path


def _hashable(value):
    """A column value as a dict key (arrays as tuples)."""
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


class SharedFilters:
    """Row sets of event filters over one frame, sharing dictionaries and atoms across filters.

    The caller makes one for a frame and a set of frame options and passes it to the searches that
    should share its work (engine.hunt: every batch of rules with those options); it lives as long
    as the caller keeps it. A search that raised half-way may leave it half done: start a new one."""

    def __init__(self, frame: pl.DataFrame, options: FrameOptions, compiled: CompiledAtoms | None = None,
                 encodings: dict[str, Encoding] | None = None) -> None:
        self.frame = frame
        #: columns already dictionary-encoded (EventTable.encodings: the columnar store keeps its codes), in `frame`
        #: or not (EventTable.lean_frame): the filters read them through their codes (`field`, `columns`)
        self.encodings = {n: e for n, e in (encodings or {}).items() if e.rows == frame.height}
        if any(n not in frame.columns and e.rows != frame.height for n, e in (encodings or {}).items()):
            raise ValueError("a column kept encoded has another number of rows than the frame")
        self.options = options
        self.key = options.key()
        self.height = frame.height
        self.types = options.types()
        self._in_frame = set(frame.columns)
        missing = [pl.Series(n, [], dtype=e.dtype) for n, e in self.encodings.items() if n not in self._in_frame]
        names = self.names = self._in_frame | set(self.encodings)
        self.source: dict[str, str] = {n: n for n in names}
        for alias, target in options.aliases.items():
            if alias not in names and target in names:
                self.source[alias] = target
                if target in self.types and alias not in self.types:
                    self.types[alias] = self.types[target]
        head = frame.head(0).with_columns(missing) if missing else frame.head(0)
        lf, _ = prepare(head, options, set(self.source))
        self.schema = Schema.of_frame(lf, self.types)
        self._fields: dict[str, FieldValues] = {}
        self._atoms: dict[str, Atom] = {}
        self._pending: dict[str, list[Atom]] = {}
        self._constants: list[tuple[Atom, pl.Expr]] = []  # constant atoms whose value is not computed yet
        self._rows: dict[str, np.ndarray] = {}
        self._plans: dict[str, tuple[Node, Planner, list[Atom]]] = {}
        self._values = PolarsCompiler(self.schema)
        self._lowered_values: dict[str, PolarsCompiler] = {}  # per field: reads its lower-cased companion
        self._order: tuple[pl.DataFrame, np.ndarray] | None = None
        # compiled atoms of earlier frames alike (same options, columns and dtypes): a stream's batches
        self._compiled = compiled.of(self.key, head) if compiled is not None else _Compiled()
        # a stream of frames alike remembers the atoms' truths per value; one frame (a hunt) has no use for it
        self._remember = compiled is not None

    def serves(self, frame: pl.DataFrame, options: FrameOptions) -> bool:
        """Whether this work is that of `frame` under `options` (search-only options aside)."""
        return frame is self.frame and options.key() == self.key

    # ---- atoms ---------------------------------------------------------------------------

    def atom_for(self, e: ir.Expr) -> Atom | None:
        """The shared atom for this predicate if it reads exactly one field, which the frame has,
        or no field the frame has (a constant: rules name many fields the data lacks).
        Its expression is compiled now, so that a query error belongs to the filter being added (a wildcard match on
        a string field is checked now and compiled when some value may satisfy it: see LazyExpr)."""
        key = self._key(e)
        atom = self._atoms.get(key)
        if atom is not None:  # rules repeat predicates (process.name == "bash" in dozens): made once
            return atom
        paths = {f.path for f in ir.fields_of(e)}
        present = {p for p in paths if self.schema.get(p).dtype is not None}
        if not present:
            return self._constant_atom(e)
        if len(paths) != 1:
            return None
        (path,) = paths
        info = self.schema.get(path)
        if atom is None and (known := self._compiled.atoms.get(key)) is not None:
            atom = self._atoms[key] = replace(known)  # the expression compiled for a frame alike; no results yet
            self._pending.setdefault(path, []).append(atom)
        if atom is None:
            # on an array, a pushable predicate is true when one element satisfies it, so each
            # distinct element is tested once; other predicates see the whole array
            element_wise = info.multi and is_pushable(e) and not isinstance(e, ir.IsNull)
            # case-insensitive matches read a lower-cased companion, made once per field rather
            # than once per pattern (hundreds of patterns read process.args, file.path...)
            lowered = _insensitive_field(e) == path and info.inner in (pl.String, pl.Utf8)
            exact = exact_strings(e, info)
            wildcard = (isinstance(e, ir.Match) and e.kind == "wildcard" and _reads(e.value, path)
                        and info.inner in (pl.String, pl.Utf8) and (element_wise or not info.multi))
            compiler = self._values
            if lowered and not element_wise:
                compiler = self._lowered_values.get(path) or self._lowered_values.setdefault(
                    path, PolarsCompiler(self.schema, lowered=frozenset({path})))
            expr: pl.Expr | LazyExpr
            if exact is not None:
                # answered by dictionary probes (_evaluate_lookups), never by an expression: an equality or
                # membership of string constants on a string field compiles without error, so none is made
                # (a third of the hunt's compile time went to expressions no one read)
                expr = _PROBED
            elif wildcard:
                assert isinstance(e, ir.Match)  # for mypy: `wildcard` says so
                # what can fail in compiling a wildcard match on a string field is planning its patterns (too
                # long to run as a regex): done now, the rest when a value holds one of its needles, if ever
                plans = [plan_wildcard(p.lower() if e.case_insensitive else p) for p in e.patterns]
                expr = LazyExpr(partial(_compile_atom, compiler, e, path, element_wise, lowered))
            else:
                expr = _compile_atom(compiler, e, path, element_wise, lowered)
            atom = self._atoms[key] = Atom(expr, path, element_wise, lowered=lowered, key=key)
            if exact is not None:
                atom.lookup, atom.lowered = exact
            elif (isinstance(e, ir.Call) and e.name == "cidrMatch" and _reads(e.args[0], path) and not info.multi
                  and info.dtype == pl.String and all(isinstance(a, ir.Literal) for a in e.args[1:])):
                atom.cidrs = tuple(a.value for a in e.args[1:] if isinstance(a, ir.Literal))
            elif wildcard:
                assert isinstance(e, ir.Match)
                # the compiled match reads the lower-cased companion with lower-cased patterns when `lowered`
                runs = [required_literal(p.lower() if lowered else p) for p in e.patterns]
                # patterns tested on the texts holding their needles: over the texts the needles were looked for
                # in (lower-cased when the match is case-insensitive), and none that holds for a text without one
                if "" not in runs and lowered == e.case_insensitive and all(p.kind != "exists" for p in plans):
                    atom.needles = tuple(sorted(set(runs)))
                    atom.patterns = tuple((plan.kind, plan.text, run) for plan, run in zip(plans, runs))
            self._compiled.atoms[key] = replace(atom)
            self._pending.setdefault(path, []).append(atom)
        return atom

    def _constant_atom(self, e: ir.Expr) -> Atom:
        """The atom of a predicate that reads no field the frame has: one value for every row. Its value is computed
        with the other constants' in one Polars call (`_evaluate_constants`), not one call each: a hunt has a
        hundred and fifty of them (rules name many fields the data lacks)."""
        key = self._key(e)
        atom = self._atoms.get(key)
        if atom is not None:
            return atom
        known = self._compiled.atoms.get(key)
        if known is not None and known.true is not None:  # its truth is the constant's, whatever the frame
            self._adopt(known)
            return self._atoms[key]
        expr = self._values.any_element(e)
        atom = self._atoms[key] = Atom(expr, None, False, key=key)  # its expression until evaluated, then its value
        self._constants.append((atom, expr))
        self._compiled.atoms[key] = atom
        return atom

    def _evaluate_constants(self) -> None:
        pending, self._constants = self._constants, []
        if not pending:
            return
        try:
            row = pl.select(expr.alias(f"c{i}") for i, (_, expr) in enumerate(pending)).row(0)
        except Exception:  # noqa: BLE001 - one bad constant: each alone, so the error is its own (and its rule's)
            row = tuple(pl.select(expr.alias("v")).to_series()[0] for _, expr in pending)
        for (atom, _), value in zip(pending, row):
            atom.expr = pl.lit(value)
            atom.true, atom.false = np.array([value is True]), np.array([value is False])
            atom.count = self.height if value is True else 0

    def category_atom(self, category: str, field: str) -> Atom:
        key = f"category:{field}:{category!r}"
        atom = self._atoms.get(key)
        if atom is None:
            atom = self._atoms[key] = Atom(self._values.category(category, field), field, False, key=key)
            self._pending.setdefault(field, []).append(atom)
        return atom

    def field(self, path: str) -> FieldValues:
        fv = self._fields.get(path)
        if fv is None:
            fv = self._fields[path] = self._encode(path)
        return fv

    def columns(self, names: Sequence[str], positions: np.ndarray | None = None) -> pl.DataFrame:
        """These columns (of the frame's, `names`), at these row positions (every row when None): a column kept
        encoded is its distinct values gathered by the codes of those rows."""
        out = []
        for name in names:
            if name in self._in_frame:
                column = self.frame.get_column(name)
                out.append(column if positions is None else column.gather(positions))
            else:
                out.append(self.encodings[name].column(name, positions))
        return pl.DataFrame(out)

    def _encode(self, path: str) -> FieldValues:
        name = self.source[path]
        known = self.encodings.get(name)
        counts = None
        if known is not None and (name not in self._in_frame or known.dtype == self.frame.schema[name]):
            values, codes, counts = known.merged()
        else:
            values, codes = encode(self.frame[name])
        es_type = self.types.get(path)
        if es_type in DATE_TYPES:
            values = pl.select(date_to_ns(pl.lit(values), values.dtype, es_type == "date_nanos")).to_series()
        return FieldValues(values.alias(path).to_frame(), codes, counts)

    def _evaluate_pending(self) -> None:
        self._evaluate_constants()
        pending, self._pending = self._pending, {}
        if len(pending) > 1 and _WORKERS > 1 and self.height >= _THREADED_ROWS:
            # fields are independent and Polars releases the GIL: encoding and atom evaluation
            # of one field overlap with another's (measured 1.5x on two cores)
            with ThreadPoolExecutor(_WORKERS) as pool:
                for future in [pool.submit(self._evaluate_field, p, a) for p, a in pending.items()]:
                    future.result()
        else:
            for path, atoms in pending.items():
                self._evaluate_field(path, atoms)

    def _evaluate_field(self, path: str, atoms: list[Atom]) -> None:
        fv = self.field(path)
        if self._remember:
            self._evaluate_remembered(path, fv, atoms)
        else:
            self._evaluate_values(path, fv, atoms)
        for a in atoms:
            a.count = int(fv.counts[a.true].sum())

    def _evaluate_remembered(self, path: str, fv: FieldValues, atoms: list[Atom]) -> None:
        """The atoms' truths per distinct value, from those of the values earlier frames alike had: a stream's
        batches repeat the values of most fields (a process name, a user, a category), and an atom's truth is
        that of the value alone. Only the values not seen yet are evaluated."""
        table = self._compiled.values.get((path, tuple(a.key for a in atoms)))
        if table is None or len(table.index) > _REMEMBERED_VALUES:
            table = self._compiled.values[(path, tuple(a.key for a in atoms))] = _Truths(len(atoms))
        seen = [_hashable(v) for v in fv.values[path].to_list()]
        index = table.index
        new = [i for i, v in enumerate(seen) if v not in index]
        if new:
            fresh = [a.unevaluated() for a in atoms]
            part = FieldValues(fv.values[new], np.arange(len(new), dtype=np.uint32))
            self._evaluate_values(path, part, fresh)
            table.add([seen[i] for i in new], [a.true for a in fresh], [a.false for a in fresh])  # type: ignore[misc]
        places = np.fromiter((index[v] for v in seen), dtype=np.int64, count=len(seen))
        true, false = table.true[:, places], table.false[:, places]
        for j, a in enumerate(atoms):
            a.true, a.false = true[j], false[j]

    def _evaluate_values(self, path: str, fv: FieldValues, atoms: list[Atom]) -> None:
        exact = [a for a in atoms if a.lookup is not None]
        if exact:
            self._evaluate_lookups(path, fv, exact)
        cidrs = [a for a in atoms if a.cidrs is not None]
        if cidrs:
            self._evaluate_cidrs(path, fv, cidrs)
        whole = [a for a in atoms if not a.element_wise and a.lookup is None and a.cidrs is None]
        if whole:
            values = fv.values
            if any(a.lowered for a in whole):
                values = values.with_columns(lowered_columns([ir.Match(ir.Field(path), "wildcard", ("",), True)],
                                                             self.schema).values())
            true, false = _evaluate_narrowed(values, path, whole)
            assert false is not None  # asked for
            for j, a in enumerate(whole):  # rows of the matrices, each contiguous: no copy to fault in
                a.true, a.false = true[j], false[j]
        element_wise = [a for a in atoms if a.element_wise and a.lookup is None]
        if element_wise:
            self._evaluate_elements(path, fv, element_wise)

    def _evaluate_cidrs(self, path: str, fv: FieldValues, atoms: list[Atom]) -> None:
        """cidrMatch atoms of one (string, single-valued) field: its distinct addresses parsed once for all of
        them (parsing took longer than testing, once per atom); a null address is unknown, as the atom's
        expression says."""
        column = fv.values[path]
        present = column.is_not_null().to_numpy()
        hits = cidr_match_many(column.filter(pl.Series(present)), [list(a.cidrs or ()) for a in atoms])
        for a, hit in zip(atoms, hits):
            a.true = np.zeros(len(present), dtype=bool)
            a.true[present] = hit
            a.false = present & ~a.true

    def _evaluate_lookups(self, path: str, fv: FieldValues, atoms: list[Atom]) -> None:
        """Exact-match atoms by dictionary probes: each distinct value (or array element), as
        it is and lower-cased, is looked up once among all the atoms' strings."""
        column = fv.values[path]
        items = fv.items()
        multi = items.elements
        for lowered, group in ((lw, [a for a in atoms if a.lowered == lw]) for lw in (False, True)):
            if not group:
                continue
            index = self._lookup_index(group)
            hits = np.zeros((len(group), fv.values.height), dtype=bool)
            # the few values (elements) equal to a looked-for string, found by one hash probe of all of them
            texts = items.lowered() if lowered else items.items
            found = np.flatnonzero(texts.is_in(pl.Series(list(index), dtype=pl.String).implode())
                                   .fill_null(False).to_numpy())
            if len(found):
                owners_of = _owners(items, found)
                for k, text in zip(found.tolist(), texts.gather(found).to_list()):
                    own = owners_of(k)
                    for j in index[text]:
                        hits[j, own] = True
            present = None if multi else column.is_not_null().to_numpy()
            for j, a in enumerate(group):
                a.true = hits[j]
                # a missing value (or an array without values) is unknown for a whole atom, and false
                # element-wise (pushdown); a scalar value that did not match is false
                a.false = ~hits[j] if a.element_wise or present is None else (~hits[j] & present)

    def _lookup_index(self, group: list[Atom]) -> dict[str, list[int]]:
        """Each string the exact-match atoms of `group` look for → the atoms (by place) it makes true; made once
        per group of atoms for frames alike."""
        key = tuple(a.key for a in group)
        index = self._compiled.lookups.get(key)
        if index is None:
            index = {}
            for j, a in enumerate(group):
                assert a.lookup is not None  # only exact-match atoms come here
                for value in a.lookup:
                    index.setdefault(value, []).append(j)
            self._compiled.lookups[key] = index
        return index

    def _evaluate_elements(self, path: str, fv: FieldValues, atoms: list[Atom]) -> None:
        """Each distinct element tested once, then any() per distinct array (null and empty
        arrays have no element, so no atom is true for them; pushdown makes that false)."""
        items = fv.items()
        elem_codes, vids = items.codes, items.owners
        frame = items.items.alias(path).to_frame()
        if any(a.lowered for a in atoms):
            frame = frame.with_columns(items.lowered().alias(LOWER_PREFIX + path))
        mat, _ = _evaluate_narrowed(frame, path, atoms, falses=False)
        # only the (array, element) pairs of elements some atom is true for are read, once per atom that is true
        # for one: most atoms match no element, and reading every pair per atom cost more than the evaluation
        some = np.asarray(mat.any(axis=0), dtype=bool)
        pairs = np.flatnonzero(np.take(some, elem_codes)) if some.any() else np.empty(0, dtype=np.int64)
        codes, owners = elem_codes[pairs], vids[pairs]
        # the atoms true of no array (most) share one pair of read-only truths: a pair each was ~100 MB of fresh
        # memory over process.args's 400 atoms and 60k arrays
        nothing, everything = np.zeros(fv.values.height, dtype=bool), np.ones(fv.values.height, dtype=bool)
        nothing.flags.writeable = everything.flags.writeable = False
        for j, a in enumerate(atoms):
            if len(pairs) and mat[j].any():
                a.true = np.zeros(fv.values.height, dtype=bool)
                a.true[owners[mat[j][codes]]] = True
                a.false = ~a.true
            else:
                a.true, a.false = nothing, everything

    # ---- event order ---------------------------------------------------------------------

    def order(self) -> tuple[pl.DataFrame, np.ndarray]:
        """`__ts` and `__tb` of every row, and the row positions in event order (made once)."""
        if self._order is None:
            ts, tb = self.options.timestamp_field, self.options.tiebreaker_field
            wanted = {ts, tb, self.options.aliases.get(ts), self.options.aliases.get(tb) if tb is not None else None}
            base = self.columns(sorted((self.names & wanted) | {"__row"}))
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

    def _key(self, e: ir.EventFilter | ir.Expr) -> str:
        """A filter's or an expression's key (its repr: it tells 1, 1.0 and True apart, which == does not), made once
        per object: an atom's is asked for when its filter is planned and again when its rows are needed, and a repr
        of a deep expression costs as much as planning."""
        known = self._compiled.keys.get(id(e))
        if known is not None and known[0] is e:
            return known[1]
        key = repr(e)
        if len(self._compiled.keys) >= _REMEMBERED_VALUES:  # a stream's rules are a few thousand expressions
            self._compiled.keys.clear()
        self._compiled.keys[id(e)] = (e, key)
        return key

    def add(self, f: ir.EventFilter) -> None:
        """Compile a filter (raising its QueryError) and register its atoms for evaluation."""
        key = self._key(f)
        if key not in self._rows and key not in self._plans:
            known = self._compiled.plans.get(key)
            if known is not None:  # planned for a frame alike: its tree, read with this frame's atoms (by key)
                for template in known[2]:
                    if template.key not in self._atoms:
                        self._adopt(template)
                self._plans[key] = known
                return
            planner = Planner(self)
            cond = planner.predicate(f.condition)
            root = ("known", ("and", [planner.category(f.category, self.options.event_category_field), cond]))
            self._plans[key] = self._compiled.plans[key] = (root, planner, list(tree_atoms(root).values()))

    def _adopt(self, template: Atom) -> None:
        """This frame's atom for a template planned over another frame alike (same key, no results yet)."""
        if template.field is None and template.true is not None:  # a constant: its truth holds on every frame
            atom = replace(template, count=self.height if template.true[0] else 0)
        elif template.field is None:  # a constant never evaluated (its frame ran no filter): its expression
            atom = template.unevaluated()
            self._constants.append((atom, template.expression()))
        else:
            atom = template.unevaluated()
            self._pending.setdefault(template.field, []).append(atom)
        self._atoms[template.key] = atom

    def resolve(self, atom: Atom) -> Atom:
        """This frame's atom of a plan's tree (the tree may have been planned over another frame alike)."""
        return self._atoms[atom.key]

    def rows(self, f: ir.EventFilter) -> np.ndarray:
        """The sorted row positions where an added filter holds."""
        key = self._key(f)
        if key not in self._rows:
            self._evaluate_pending()
            root, planner, _ = self._plans.pop(key)
            self._rows[key] = self._run(f, key, root, planner)
        return self._rows[key]

    def _run(self, f: ir.EventFilter, key: str, root: Node, planner: Planner) -> np.ndarray:
        if key not in self._compiled.needs:
            self._compiled.needs[key] = self._need_plan(f.condition, False)
        need = self._need(self._compiled.needs[key])
        if f.category is not None and self.schema.get(self.options.event_category_field).dtype is not None:
            cat = self.category_atom(f.category, self.options.event_category_field)
            need = cat if need is None or cat.count < need.count else need
        rows = self._candidates(need) if need is not None else np.arange(self.height, dtype=np.int64)
        if len(rows) == 0:
            return rows
        # the filter is a conjunction: test its parts one by one, cheapest first, each on the
        # rows that passed the previous ones (Polars-evaluated parts last, on the fewest rows)
        parts = conjuncts(root[1])
        parts.sort(key=lambda n: bool(expr_nodes(n)))
        for part in parts:
            exprs = {}
            nodes = expr_nodes(part)
            if nodes:
                present = [p for p in planner.fallback_fields if p in self.source]
                base = self.columns(sorted({self.source[p] for p in present} | {"__row"}), rows)
                sub, _ = prepare(base, self.options, set(present))
                out = sub.with_columns(n[1].alias(f"e{i}") for i, n in enumerate(nodes)).collect()
                exprs = {id(n): out[f"e{i}"] for i, n in enumerate(nodes)}
            true, _ = truth(part, rows, self, exprs)
            rows = rows[true]
            if len(rows) == 0:
                break
        return rows

    def _need_plan(self, e: ir.Expr, negated: bool) -> tuple | None:
        """Where a condition's necessary condition (`_need`) comes from, by atom key, made once per filter:
        ("atom", key) | ("min", parts) | ("any", parts) | None. Mirrors ConditionCompiler._bool/_atom (De Morgan,
        pushdown)."""
        if isinstance(e, ir.Not):
            return self._need_plan(e.operand, not negated)
        if isinstance(e, (ir.And, ir.Or)):
            parts = [self._need_plan(t, negated) for t in e.terms]
            if isinstance(e, ir.And) != negated:
                known = [p for p in parts if p is not None]
                return ("min", known) if known else None
            if any(p is None for p in parts):
                return None
            return ("any", parts)
        if isinstance(e, ir.Compare) and e.op == "!=" and is_pushable(e):
            e, negated = replace(e, op="=="), not negated
        if negated and isinstance(e, ir.Compare) and e.op in FLIP and is_pushable(e):
            e, negated = replace(e, op=FLIP[e.op]), False
        if negated:
            return None
        return ("atom", self._key(e))

    def _need(self, plan: tuple | None):
        """A condition every row matching the filter satisfies: an atom, or an AnyOf of them; None if none is
        cheap to find (the conjunct with the fewest rows, of those this frame evaluated)."""
        if plan is None:
            return None
        kind = plan[0]
        if kind == "atom":
            atom = self._atoms.get(plan[1])
            return atom if atom is not None and atom.true is not None else None
        parts = [self._need(p) for p in plan[1]]
        if kind == "min":
            known = [p for p in parts if p is not None]
            return min(known, key=lambda p: p.count) if known else None
        if any(p is None for p in parts):
            return None
        return AnyOf(tuple(parts), sum(p.count for p in parts))

    def _candidates(self, need) -> np.ndarray:
        if isinstance(need, AnyOf):
            parts = [self._candidates(p) for p in need.parts]
            return np.unique(np.concatenate(parts))
        if need.field is None:
            return np.arange(self.height, dtype=np.int64) if need.true[0] else np.empty(0, dtype=np.int64)
        return self.field(need.field).rows_with(np.flatnonzero(need.true))

