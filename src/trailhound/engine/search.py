"""Queries over an event frame: the candidate step (engine/filter/), then the correlators.

`search` runs one query: its stage filters are evaluated in one Polars pass and only rows matching
some stage (candidates) reach the correlators. The `search_*_batch` functions run many queries of
one kind over one frame through a SharedFilters (the per-frame shared work): pass the same one to
several batches (as engine.hunt does) and they share its dictionaries, atoms and event order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from ..compile.polars import PolarsCompiler, lowered_columns
from ..compile.schema import Schema
from ..lang import ir
from ..lang.categories import unknown_category_warnings
from ..lang.errors import QueryError
from .correlate import Hit, NewTermsRun, SampleRun, SequenceRun, ThresholdRun
from .filter.candidates import (
    add_all,
    candidates,
    flag,
    frame_categories,
    needed_fields,
    ordered_rows,
    places,
    prepared,
    prepared_candidates,
    shared_candidates,
    shared_categories,
    stage_filter,
    union,
)
from .filter.frame import ORDER, FrameOptions, prepare
from .filter.shared import SharedFilters
from .threshold import ThresholdSpec

__all__ = ["FrameOptions", "Hit", "NewTermsRule", "SearchOptions", "SearchResult", "SharedFilters", "candidates",
           "needed_fields", "search", "search_events_batch", "search_new_terms", "search_new_terms_batch",
           "search_samples_batch", "search_sequences_batch", "search_threshold", "search_threshold_batch",
           "shared_work", "ThresholdRule"]


@dataclass(frozen=True)
class SearchOptions(FrameOptions):
    size: int | None = None  # None: every result
    result_position: Literal["head", "tail"] = "head"
    max_samples_per_key: int = 1


@dataclass
class SearchResult:
    kind: Literal["events", "sequences", "samples", "threshold"]
    hits: list[Hit]
    warnings: list[str] = field(default_factory=list)
    candidates: int = 0  # rows that reached correlation


def search(query: ir.Query, frame: pl.DataFrame, options: SearchOptions = SearchOptions()) -> SearchResult:
    lf, schema, compiler = prepared(frame, options, [query])
    warnings = _unknown_field_warnings(query, schema) + unknown_category_warnings(
        query, lambda: frame_categories(lf, schema, options.event_category_field))

    if isinstance(query, ir.EventQuery):
        narrowed = _events_in_two_steps(query, frame, options, schema)
        result = _events(query, lf, compiler, options) if narrowed is None else _event_result(query, narrowed, options)
    elif isinstance(query, ir.SequenceQuery):
        result = _sequences(query, lf, compiler, schema, options)
    else:
        result = _samples(query, lf, compiler, schema, options)
    result.warnings[:0] = warnings
    return result


def _unknown_field_warnings(query: ir.Query, schema: Schema) -> list[str]:
    missing = [f.path for f in ir.query_fields(query) if not f.optional and f.path not in schema]
    if not missing:
        return []
    return [f"field {name!r} occurs in no event; it reads as null" for name in missing]


def _add_category_warnings(queries: list, outcome: list, shared: SharedFilters, field: str) -> None:
    present: list | None = None

    def categories() -> list:
        nonlocal present
        if present is None:
            present = shared_categories(shared, field)
        return present

    for q, result in zip(queries, outcome):
        if isinstance(result, SearchResult):
            result.warnings.extend(unknown_category_warnings(q, categories))


def _limit(items: list, pipes: tuple[ir.Pipe, ...], options: SearchOptions) -> list:
    for p in pipes:
        items = items[: p.count] if p.kind == "head" else items[len(items) - p.count:] if p.count else []
    if options.size is not None:
        n = options.size
        items = items[:n] if options.result_position == "head" else (items[len(items) - n:] if n else [])
    return items


# ---- many queries over one frame ----------------------------------------------------------


def shared_work(frame: pl.DataFrame, options: FrameOptions, shared: SharedFilters | None = None) -> SharedFilters:
    """The per-frame work a batch search uses: the caller's `shared` (made for this frame and these
    frame options; searches that pass the same one share its dictionaries, atoms and event order),
    or, without one, work of its own for this call."""
    if shared is None:
        return SharedFilters(frame, options)
    if not shared.serves(frame, options):
        raise ValueError("this SharedFilters was made for another frame or other frame options "
                         "(timestamp, tiebreaker, category field, types or aliases)")
    return shared


# ---- event queries -----------------------------------------------------------------------


def _events(q: ir.EventQuery, lf: pl.LazyFrame, compiler: PolarsCompiler, options: SearchOptions) -> SearchResult:
    keep = stage_filter(compiler, q.filter, options)
    out = lf.filter(keep).select(ORDER).sort(ORDER, nulls_last=True).collect()
    return _event_result(q, out, options)


def _events_in_two_steps(q: ir.EventQuery, frame: pl.DataFrame, options: SearchOptions,
                         schema: Schema) -> pl.DataFrame | None:
    """An event query whose case-insensitive matches read lower-cased companions (`x : "-i"` on process.args):
    its other conjuncts first, then the companions made for the rows they keep only, and the rest. Lower-casing a
    column of a million arrays costs more than the whole rest of the query. The rows of `_events`, in its order;
    None where there is nothing to gain."""
    cond = q.filter.condition
    terms = list(cond.terms) if isinstance(cond, ir.And) else [cond]
    rest = [t for t in terms if lowered_columns([t], schema)]
    first = [t for t in terms if not lowered_columns([t], schema)]
    if not rest or (not first and q.filter.category is None):
        return None
    base, _ = prepare(frame, options, set(needed_fields(q, options)))
    head = ir.EventFilter(q.filter.category, _all(first) if first else ir.Literal(True))
    narrowed = base.filter(stage_filter(PolarsCompiler(schema), head, options))
    lower = lowered_columns(rest, schema)
    keep = PolarsCompiler(schema, frozenset(lower)).predicate(_all(rest)).fill_null(False)
    return (narrowed.with_columns(list(lower.values())).filter(keep).select(ORDER)
            .sort(ORDER, nulls_last=True).collect())


def _all(terms: list[ir.Expr]) -> ir.Expr:
    return terms[0] if len(terms) == 1 else ir.And(tuple(terms))


def _event_result(q: ir.EventQuery, matched: pl.DataFrame, options: SearchOptions) -> SearchResult:
    """Hits from a query's matching rows (already in event order)."""
    return _event_hits(q, matched["__row"].to_list(), matched.filter(pl.col("__ts").is_null()).height, options)


def _event_hits(q: ir.EventQuery, rows: list[int], no_ts: int, options: SearchOptions) -> SearchResult:
    """Hits from a query's matching rows (their `__row` ids, in event order; `no_ts` of them without a time)."""
    warnings = []
    if no_ts:
        warnings.append(f"{no_ts} matching events have no {options.timestamp_field!r}; they are listed last")
    return SearchResult("events", [Hit((r,)) for r in _limit(rows, q.pipes, options)], warnings, len(rows))


def search_events_batch(queries: list[ir.EventQuery], frame: pl.DataFrame,
                        options: SearchOptions = SearchOptions(),
                        shared: SharedFilters | None = None, warn: bool = True) -> list[SearchResult | QueryError]:
    """Many event queries over one frame; each filter is evaluated on distinct values and on
    its candidate rows only (see engine/filter/shared.py), and the matches are ordered together.
    `warn=False`: without the warnings about fields and categories no event has (a caller that does not
    report them, batch after batch, need not pay for them)."""
    shared = shared_work(frame, options, shared)
    schema = shared.schema
    outcome: list[SearchResult | QueryError | None] = [add_all(shared, [q.filter]) for q in queries]
    matches = {i: shared.rows(q.filter) for i, q in enumerate(queries) if outcome[i] is None}
    every = union(list(matches.values()), frame.height)
    ordered = ordered_rows(shared, every).select(ORDER + ["__pos"])
    rank = np.empty(len(every), dtype=np.int64)
    rank[np.searchsorted(every, ordered["__pos"].to_numpy())] = np.arange(len(every))
    # each query's hits read from numpy arrays of the ordered matches: hundreds of queries, most with no match,
    # cost no Polars call each (which a micro-batch of watch feels)
    no_time = ordered["__ts"].is_null().to_numpy()
    row_ids = ordered["__row"].to_numpy()
    for i, rows in matches.items():
        q = queries[i]
        mine = np.sort(rank[np.searchsorted(every, rows)])
        result = _event_hits(q, row_ids[mine].tolist(), int(no_time[mine].sum()), options)
        if warn:
            result.warnings[:0] = _unknown_field_warnings(q, schema)
        outcome[i] = result
    if warn:
        _add_category_warnings(queries, outcome, shared, options.event_category_field)
    return outcome  # type: ignore[return-value]


# ---- sequences ---------------------------------------------------------------------------


def _sequences(q: ir.SequenceQuery, lf: pl.LazyFrame, compiler: PolarsCompiler, schema: Schema,
               options: SearchOptions) -> SearchResult:
    return _correlate(q, prepared_candidates(q, lf, compiler, options), schema, options)


def search_sequences_batch(queries: list[ir.SequenceQuery], frame: pl.DataFrame,
                           options: SearchOptions = SearchOptions(),
                           shared: SharedFilters | None = None) -> list[SearchResult | QueryError]:
    """Many sequence queries with their stage filters evaluated together (engine/filter/shared.py);
    each query then correlates only the rows that match one of its own stages."""
    shared = shared_work(frame, options, shared)
    schema = shared.schema
    outcome: list[SearchResult | QueryError | None] = []
    parts: dict[int, list[ir.EventFilter]] = {}
    for j, q in enumerate(queries):
        filters = [s.filter for s in q.expanded()] + ([q.until.filter] if q.until is not None else [])
        outcome.append(add_all(shared, filters))
        if outcome[j] is None:
            parts[j] = filters
    for j in list(parts):
        q = queries[j]
        if _keyless_stage(q, schema) or any(len(shared.rows(s.filter)) == 0 for s in q.expanded() if not s.missing):
            # a stage that no event matches, or whose required join key no event has: no sequence can complete,
            # so no rows to correlate (and, in the first case, no filter to run)
            outcome[j] = SearchResult("sequences", [], [], 0)
            del parts[j]
    # each query takes its own rows with its own key fields: gathering the union of all queries' rows with the
    # union of their keys (126k rows, a dozen fields, arrays among them, over the 1M bench) cost more than this
    for j, filters in parts.items():
        q = queries[j]
        stages = list(q.expanded()) + ([q.until] if q.until is not None else [])
        names = [f"__s{i}" for i in range(len(q.expanded()))] + (["__until"] if q.until is not None else [])
        rows = [shared.rows(f) for f in filters]
        ordered = ordered_rows(shared, union(rows, frame.height),
                               {k.path for s in stages for k in s.keys if k.path in schema})
        ordered = ordered.filter(pl.col("__ts").is_not_null())
        positions = ordered["__pos"].to_numpy()
        made: dict[int, np.ndarray] = {}  # a filter repeated (runs=N) is flagged once: its rows are one array
        flags = [pl.Series(n, made[id(r)] if id(r) in made else made.setdefault(id(r), flag(r, positions, frame.height)))
                 for n, r in zip(names, rows)]
        key_fields = sorted({k.path for s in stages for k in s.keys} & set(ordered.columns))
        cand = ordered.select(ORDER + key_fields).with_columns(flags)
        try:
            outcome[j] = _correlate(q, cand, schema, options)
        except QueryError as e:
            outcome[j] = e
    _add_category_warnings(queries, outcome, shared, options.event_category_field)
    return outcome  # type: ignore[return-value]


def _keyless_stage(q: ir.SequenceQuery, schema: Schema) -> bool:
    """Whether an event stage of the sequence joins on a required key that no event has (a field absent from the
    frame, or always null): `correlate.keyed` leaves that stage no rows."""
    for s in q.expanded():
        if not s.missing:
            for k in s.keys:
                dtype = schema.get(k.path).dtype
                if not k.optional and (dtype is None or dtype == pl.Null):
                    return True
    return False


def _correlate(q: ir.SequenceQuery, cand: pl.DataFrame, schema: Schema, options: SearchOptions) -> SearchResult:
    """Sequences from the candidate rows (in event order, with `__s{i}`, `__until`): one batch
    through the incremental correlator (engine/correlate.py)."""
    run = SequenceRun(q)
    hits = run.feed(cand, schema) + run.finish(schema)
    return SearchResult("sequences", _limit(hits, q.pipes, options), [], cand.height)


# ---- samples -----------------------------------------------------------------------------


def _samples(q: ir.SampleQuery, lf: pl.LazyFrame, compiler: PolarsCompiler, schema: Schema,
             options: SearchOptions) -> SearchResult:
    return _sample_hits(q, prepared_candidates(q, lf, compiler, options), schema, options)


def search_samples_batch(queries: list[ir.SampleQuery], frame: pl.DataFrame,
                         options: SearchOptions = SearchOptions(),
                         shared: SharedFilters | None = None) -> list[SearchResult | QueryError]:
    """Many sample queries with their stage filters evaluated with the frame's other filters
    (engine/filter/shared.py); each query then joins only the rows of its own stages."""
    shared = shared_work(frame, options, shared)
    schema = shared.schema
    outcome: list[SearchResult | QueryError] = []
    for q in queries:
        filters = [s.filter for s in q.stages]
        error = add_all(shared, filters)
        if error is not None:
            outcome.append(error)
            continue
        rows = [shared.rows(f) for f in filters]
        if any(len(r) == 0 for r in rows):  # every sample takes one event of each stage
            outcome.append(SearchResult("samples", [], [], 0))
            continue
        every = union(rows, frame.height)
        keys = {k.path for s in q.stages for k in s.keys if k.path in schema}
        ordered = ordered_rows(shared, every, keys)
        positions = ordered["__pos"].to_numpy()
        flags = [pl.Series(f"__s{i}", flag(r, positions, frame.height)) for i, r in enumerate(rows)]
        cand = ordered.select(["__row"] + sorted(keys)).with_columns(flags).sort("__row")
        try:
            outcome.append(_sample_hits(q, cand, schema, options))
        except QueryError as e:
            outcome.append(e)
    _add_category_warnings(queries, outcome, shared, options.event_category_field)
    return outcome


def _sample_hits(q: ir.SampleQuery, cand: pl.DataFrame, schema: Schema, options: SearchOptions) -> SearchResult:
    """Samples from the candidate rows (by `__row`, with their key fields and `__s{i}` flags)."""
    run = SampleRun(q, options.max_samples_per_key)
    run.feed(cand, schema, prune=True)
    return SearchResult("samples", _limit(run.finish(schema), (), options), [], cand.height)


# ---- new_terms ---------------------------------------------------------------------------


def search_new_terms(query: ir.EventQuery, frame: pl.DataFrame, fields: list[str], history_ms: int,
                     options: SearchOptions = SearchOptions()) -> SearchResult:
    """Events matching `query` that bring a combination of `fields` values not seen within
    `history_ms` before them; each hit's join_keys are its new terms (flattened)."""
    lf, schema, compiler = prepared(frame, options, [query], set(fields))
    cand = prepared_candidates(query, lf, compiler, options, fields)
    return _new_terms(query, cand, fields, history_ms, schema, options)


@dataclass(frozen=True)
class NewTermsRule:
    query: ir.EventQuery
    fields: tuple[str, ...]
    history_ms: int


def search_new_terms_batch(rules: list[NewTermsRule], frame: pl.DataFrame,
                           options: SearchOptions = SearchOptions(),
                           shared: SharedFilters | None = None) -> list[SearchResult | QueryError]:
    """Many new_terms rules: their filters evaluated together with the frame's other filters
    (engine/filter/shared.py), then each rule's first-seen replay over its own matching rows."""
    shared = shared_work(frame, options, shared)
    schema = shared.schema
    outcome: list[SearchResult | QueryError | None] = [add_all(shared, [r.query.filter]) for r in rules]
    ok = [i for i, o in enumerate(outcome) if o is None]
    every = union([shared.rows(rules[i].query.filter) for i in ok], frame.height)
    # the term fields of the rules that match something: gathering a command line for rows no rule of it takes costs
    terms = {f for i in ok if len(shared.rows(rules[i].query.filter)) for f in rules[i].fields if f in schema}
    ordered = ordered_rows(shared, every, terms).filter(pl.col("__ts").is_not_null())
    place = places(ordered, frame.height)
    for i in ok:
        r = rules[i]
        mine = place[shared.rows(r.query.filter)]
        mine = mine[mine >= 0]
        if not len(mine):  # most rules match nothing: no frame to make
            outcome[i] = SearchResult("events", [], _unknown_field_warnings(r.query, schema), 0)
            continue
        present = [f for f in r.fields if f in schema]
        cand = ordered.select(ORDER + present).gather(np.sort(mine))
        try:
            outcome[i] = _new_terms(r.query, cand, list(r.fields), r.history_ms, schema, options)
        except QueryError as e:
            outcome[i] = e
    return outcome  # type: ignore[return-value]


def _new_terms(query: ir.EventQuery, cand: pl.DataFrame, fields: list[str], history_ms: int, schema: Schema,
               options: SearchOptions) -> SearchResult:
    """The new-terms replay over a rule's matching rows (with a timestamp, in event order): one batch
    through the incremental correlator (engine/correlate.py)."""
    hits = NewTermsRun(query, fields, history_ms).replay(cand, schema)
    warnings = _unknown_field_warnings(query, schema)
    return SearchResult("events", _limit(hits, query.pipes, options), warnings, cand.height)


# ---- threshold ---------------------------------------------------------------------------


def search_threshold(query: ir.EventQuery, frame: pl.DataFrame, spec: ThresholdSpec,
                     options: SearchOptions = SearchOptions()) -> SearchResult:
    """Groups of events matching `query` that reach the threshold on Kibana's schedule; each hit's
    rows are the events counted and its join_keys the group's values."""
    card_fields = [f for f, _ in spec.cardinality]
    lf, schema, compiler = prepared(frame, options, [query], set(spec.fields) | set(card_fields))
    cand = prepared_candidates(query, lf, compiler, options, set(spec.fields) | set(card_fields))
    return _threshold(query, spec, cand, schema, options)


def _threshold(query: ir.EventQuery, spec: ThresholdSpec, cand: pl.DataFrame, schema: Schema,
               options: SearchOptions) -> SearchResult:
    """One threshold rule's replay over its matching rows (one batch, then the last executions)."""
    run = ThresholdRun(query, spec)
    hits = run.feed(cand, schema) + run.finish(schema)
    return SearchResult("threshold", _limit(hits, query.pipes, options), _unknown_field_warnings(query, schema),
                        cand.height)


@dataclass(frozen=True)
class ThresholdRule:
    query: ir.EventQuery
    spec: ThresholdSpec


def search_threshold_batch(rules: list[ThresholdRule], frame: pl.DataFrame,
                           options: SearchOptions = SearchOptions(),
                           shared: SharedFilters | None = None) -> list[SearchResult | QueryError]:
    """Many threshold rules: their filters evaluated with the frame's other filters (engine/filter/shared.py),
    then each rule's replay over its own matching rows; `search_threshold`'s results, without a pass of Polars
    over the whole frame per rule."""
    shared = shared_work(frame, options, shared)
    schema = shared.schema
    outcome: list[SearchResult | QueryError] = []
    for r in rules:
        error = add_all(shared, [r.query.filter])
        if error is not None:
            outcome.append(error)
            continue
        fields = set(r.spec.fields) | {f for f, _ in r.spec.cardinality}
        try:
            cand, _ = shared_candidates(r.query, shared, [shared.rows(r.query.filter)], fields)
            outcome.append(_threshold(r.query, r.spec, cand, schema, options))
        except QueryError as e:
            outcome.append(e)
    return outcome
