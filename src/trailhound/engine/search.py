"""Run one parsed EQL query over an event frame: vectorized filters, then correlation.

Filters for every stage are evaluated in one Polars pass; only rows matching some stage
(candidates) reach the Python correlators, after a vectorized semi-join on join keys has
dropped stage-k rows whose key never occurs at stage k-1.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
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
from .prepare import ORDER, FrameOptions, prepare
from .shared import SharedFilters
from .threshold import ThresholdSpec


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


def needed_fields(query: ir.Query, options: FrameOptions) -> list[str]:
    names = [f.path for f in ir.query_fields(query)]
    names += [options.timestamp_field, options.event_category_field]
    if options.tiebreaker_field:
        names.append(options.tiebreaker_field)
    out = []
    for n in names:
        out.append(options.aliases.get(n, n))
        out.append(n)
    return list(dict.fromkeys(out))


def search(query: ir.Query, frame: pl.DataFrame, options: SearchOptions = SearchOptions()) -> SearchResult:
    lf, schema, compiler = _prepared(frame, options, [query])
    warnings = _unknown_field_warnings(query, schema) + unknown_category_warnings(
        query, lambda: _frame_categories(lf, schema, options.event_category_field))

    if isinstance(query, ir.EventQuery):
        result = _events(query, lf, compiler, options)
    elif isinstance(query, ir.SequenceQuery):
        result = _sequences(query, lf, compiler, schema, options)
    else:
        result = _samples(query, lf, compiler, schema, options)
    result.warnings[:0] = warnings
    return result


def _prepared(frame: pl.DataFrame, options: FrameOptions, queries: list[ir.Query],
              extra_fields: AbstractSet[str] = frozenset()) -> tuple[pl.LazyFrame, Schema, PolarsCompiler]:
    """The prepared frame for these queries, its schema, and a compiler that reads the
    lower-cased companion columns added for their case-insensitive matches."""
    needed = set(extra_fields)
    for q in queries:
        needed.update(needed_fields(q, options))
    lf, types = prepare(frame, options, needed)
    schema = Schema.of_frame(lf, types)
    lower = lowered_columns([f.condition for q in queries for f in ir.query_filters(q)], schema)
    if lower:
        lf, _ = prepare(frame, options, needed, list(lower.values()))
    return lf, schema, PolarsCompiler(schema, frozenset(lower))


def _unknown_field_warnings(query: ir.Query, schema: Schema) -> list[str]:
    missing = [f.path for f in ir.query_fields(query) if not f.optional and f.path not in schema]
    if not missing:
        return []
    return [f"field {name!r} occurs in no event; it reads as null" for name in missing]


def _frame_categories(lf: pl.LazyFrame, schema: Schema, field: str) -> list:
    """The distinct event categories of a prepared frame (array elements for an array field)."""
    info = schema.get(field)
    if info.dtype is None:
        return []
    col = pl.col(field).explode() if info.multi else pl.col(field)
    return lf.select(col.unique()).collect().to_series().to_list()


def _shared_categories(shared: SharedFilters, field: str) -> list:
    """The distinct event categories of a frame, from its shared dictionary encoding."""
    if field not in shared.source:
        return []
    return shared.field(field).items().items.to_list()


def _add_category_warnings(queries: list, outcome: list, shared: SharedFilters, field: str) -> None:
    present: list | None = None

    def categories() -> list:
        nonlocal present
        if present is None:
            present = _shared_categories(shared, field)
        return present

    for q, result in zip(queries, outcome):
        if isinstance(result, SearchResult):
            result.warnings.extend(unknown_category_warnings(q, categories))


def _stage_filter(compiler: PolarsCompiler, f: ir.EventFilter, options: FrameOptions) -> pl.Expr:
    cond = compiler.predicate(f.condition)
    return (compiler.category(f.category, options.event_category_field) & cond).fill_null(False)


def _distinct_filters(compiler: PolarsCompiler, filters: list[ir.EventFilter], options: FrameOptions,
                      prefix: str = "__") -> tuple[list[pl.Expr], list[pl.Expr]]:
    """`{prefix}s{i}` columns with each distinct filter evaluated once (`runs=N` repeats one
    filter N times): the evaluated columns, and the copies to add after them."""
    first: dict[ir.EventFilter, int] = {}
    evaluated, copies = [], []
    for i, f in enumerate(filters):
        if f in first:
            copies.append(pl.col(f"{prefix}s{first[f]}").alias(f"{prefix}s{i}"))
        else:
            first[f] = i
            evaluated.append(_stage_filter(compiler, f, options).alias(f"{prefix}s{i}"))
    return evaluated, copies


def _limit(items: list, pipes: tuple[ir.Pipe, ...], options: SearchOptions) -> list:
    for p in pipes:
        items = items[: p.count] if p.kind == "head" else items[len(items) - p.count:] if p.count else []
    if options.size is not None:
        n = options.size
        items = items[:n] if options.result_position == "head" else (items[len(items) - n:] if n else [])
    return items


# ---- many queries over one frame ----------------------------------------------------------

#: per live frame (by id; frames are not hashable), the SharedFilters of each set of frame options,
#: so that hunt's event, sequence and new_terms batches over one load share their work
_SHARED: dict[int, tuple[weakref.ref, dict[tuple, SharedFilters]]] = {}


def shared_filters(frame: pl.DataFrame, options: FrameOptions) -> SharedFilters:
    """The SharedFilters for this frame and these options (made on first use)."""
    key = _frame_key(options)
    entry = _SHARED.get(id(frame))
    if entry is None or entry[0]() is not frame:
        entry = _SHARED[id(frame)] = (weakref.ref(frame), {})
        weakref.finalize(frame, _SHARED.pop, id(frame), None)
    per_frame = entry[1]
    if key not in per_frame:
        per_frame[key] = SharedFilters(frame, options)
    return per_frame[key]


def _frame_key(options: FrameOptions) -> tuple:
    """Every frame option, by value: a SharedFilters' work (filters, and the event order that the
    timestamp and tiebreaker decide) depends on all of them. The search-only options of a
    SearchOptions (size, ...) are left out, so that they do not split the sharing."""
    parts = []
    for f in dataclasses.fields(FrameOptions):
        value = getattr(options, f.name)
        parts.append(tuple(sorted(value.items())) if isinstance(value, Mapping) else value)
    return tuple(parts)


def _ordered_rows(frame: pl.DataFrame, options: FrameOptions, positions: np.ndarray,
                  fields: AbstractSet[str] = frozenset()) -> pl.DataFrame:
    """These rows (by position, kept as `__pos`) with ORDER and `fields` prepared, in event order.
    The order keys come from the SharedFilters, which parses the timestamps once per frame,
    unless the rows are few and no order was made yet: then they are sorted on their own."""
    shared = shared_filters(frame, options)
    wanted = set(fields) | {options.aliases[a] for a in fields if a in options.aliases}
    if not shared.has_order() and len(positions) * 8 < frame.height:
        ts, tb = options.timestamp_field, options.tiebreaker_field
        for f in (ts, tb, options.aliases.get(ts), options.aliases.get(tb) if tb is not None else None):
            if f is not None:
                wanted.add(f)
        base = frame.select(sorted((wanted & set(frame.columns)) | {"__row"})).gather(positions)
        return (prepare(base, options, set(fields))[0].with_columns(pl.Series("__pos", positions, dtype=pl.Int64))
                .sort(ORDER, nulls_last=True).collect())
    keys = shared.order()[0]
    positions = shared.in_event_order(positions)
    base = frame.select(sorted((wanted & set(frame.columns)) | {"__row"})).gather(positions)
    prepared = prepare(base, options, set(fields))[0].drop("__ts", "__tb").collect()
    return pl.concat([prepared, keys[positions]], how="horizontal").with_columns(
        pl.Series("__pos", positions, dtype=pl.Int64))


def _places(ordered: pl.DataFrame, height: int) -> np.ndarray:
    """Each frame row's place in `ordered` (rows by `__pos`), -1 where it is not there."""
    place = np.full(height, -1, dtype=np.int64)
    place[ordered["__pos"].to_numpy()] = np.arange(ordered.height)
    return place


def _add_all(shared: SharedFilters, filters: list[ir.EventFilter]) -> QueryError | None:
    try:
        for f in filters:
            shared.add(f)
    except QueryError as e:
        return e
    return None


def _union(parts: list[np.ndarray], height: int) -> np.ndarray:
    mask = np.zeros(height, dtype=bool)
    for p in parts:
        mask[p] = True
    return np.flatnonzero(mask)


def _flag(rows: np.ndarray, positions: np.ndarray, height: int) -> np.ndarray:
    """Which of `positions` are among `rows`."""
    mask = np.zeros(height, dtype=bool)
    mask[rows] = True
    return mask[positions]


# ---- event queries -----------------------------------------------------------------------


def _events(q: ir.EventQuery, lf: pl.LazyFrame, compiler: PolarsCompiler, options: SearchOptions) -> SearchResult:
    keep = _stage_filter(compiler, q.filter, options)
    out = lf.filter(keep).select(ORDER).sort(ORDER, nulls_last=True).collect()
    return _event_result(q, out, options)


def _event_result(q: ir.EventQuery, matched: pl.DataFrame, options: SearchOptions) -> SearchResult:
    """Hits from a query's matching rows (already in event order)."""
    warnings = []
    no_ts = matched.filter(pl.col("__ts").is_null()).height
    if no_ts:
        warnings.append(f"{no_ts} matching events have no {options.timestamp_field!r}; they are listed last")
    rows = matched["__row"].to_list()
    return SearchResult("events", [Hit((r,)) for r in _limit(rows, q.pipes, options)], warnings, len(rows))


def search_events_batch(queries: list[ir.EventQuery], frame: pl.DataFrame,
                        options: SearchOptions = SearchOptions()) -> list[SearchResult | QueryError]:
    """Many event queries over one frame; each filter is evaluated on distinct values and on
    its candidate rows only (see engine/shared.py), and the matches are ordered together."""
    shared = shared_filters(frame, options)
    schema = shared.schema
    outcome: list[SearchResult | QueryError | None] = [_add_all(shared, [q.filter]) for q in queries]
    matches = {i: shared.rows(q.filter) for i, q in enumerate(queries) if outcome[i] is None}
    union = _union(list(matches.values()), frame.height)
    ordered = _ordered_rows(frame, options, union).select(ORDER + ["__pos"])
    rank = np.empty(len(union), dtype=np.int64)
    rank[np.searchsorted(union, ordered["__pos"].to_numpy())] = np.arange(len(union))
    for i, rows in matches.items():
        q = queries[i]
        result = _event_result(q, ordered[np.sort(rank[np.searchsorted(union, rows)])], options)
        result.warnings[:0] = _unknown_field_warnings(q, schema)
        outcome[i] = result
    _add_category_warnings(queries, outcome, shared, options.event_category_field)
    return outcome  # type: ignore[return-value]


# ---- sequences ---------------------------------------------------------------------------


def _sequence_columns(q: ir.SequenceQuery, compiler: PolarsCompiler, options: FrameOptions, names: list[str],
                      prefix: str = "__") -> tuple[list[pl.Expr], list[pl.Expr], list[str], list[str]]:
    """The stage (and until) filter columns of a sequence, their names, and its key fields."""
    stages = list(q.expanded())
    filters, copies = _distinct_filters(compiler, [s.filter for s in stages], options, prefix)
    if q.until is not None:
        filters.append(_stage_filter(compiler, q.until.filter, options).alias(f"{prefix}until"))
    flags = [f"{prefix}s{i}" for i in range(len(stages))] + ([f"{prefix}until"] if q.until is not None else [])
    key_fields = sorted({k.path for s in stages + ([q.until] if q.until else []) for k in s.keys} & set(names))
    return filters, copies, flags, key_fields


def _sequences(q: ir.SequenceQuery, lf: pl.LazyFrame, compiler: PolarsCompiler, schema: Schema,
               options: SearchOptions) -> SearchResult:
    return _correlate(q, _candidates(q, lf, compiler, options), schema, options)


def candidates(query: ir.Query, frame: pl.DataFrame, options: FrameOptions = SearchOptions(),
               fields: Collection[str] = ()) -> tuple[pl.DataFrame, Schema]:
    """The filter step on its own: the rows of `frame` a correlator of engine/correlate.py takes for
    `query`, in event order, and the schema it reads their keys with. A sequence's or a sample's rows
    carry a `__s{i}` column per stage (and `__until`); an event query's (new_terms, threshold) are
    the rows it matches, with `fields`. Rows without a timestamp are left out, but for samples."""
    lf, schema, compiler = _prepared(frame, options, [query], set(fields))
    return _candidates(query, lf, compiler, options, fields), schema


def _candidates(q: ir.Query, lf: pl.LazyFrame, compiler: PolarsCompiler, options: FrameOptions,
                fields: Collection[str] = ()) -> pl.DataFrame:
    names = lf.collect_schema().names()
    if isinstance(q, ir.SequenceQuery):
        filters, copies, flags, key_fields = _sequence_columns(q, compiler, options, names)
        return (lf.select([*ORDER, *key_fields, *filters]).with_columns(copies)
                .filter(pl.any_horizontal(flags) & pl.col("__ts").is_not_null())
                .sort(ORDER, nulls_last=True).collect())
    if isinstance(q, ir.SampleQuery):
        stages = list(q.stages)
        filters = [_stage_filter(compiler, s.filter, options).alias(f"__s{i}") for i, s in enumerate(stages)]
        flags = [f"__s{i}" for i in range(len(stages))]
        key_fields = sorted({k.path for s in stages for k in s.keys} & set(names))
        return lf.select([*ORDER, *key_fields, *filters]).filter(pl.any_horizontal(flags)).sort(
            ORDER, nulls_last=True).collect()
    keep = _stage_filter(compiler, q.filter, options)
    present = sorted(set(fields) & set(names))
    return lf.filter(keep & pl.col("__ts").is_not_null()).select(ORDER + present).sort(ORDER, nulls_last=True).collect()


def search_sequences_batch(queries: list[ir.SequenceQuery], frame: pl.DataFrame,
                           options: SearchOptions = SearchOptions()) -> list[SearchResult | QueryError]:
    """Many sequence queries with their stage filters evaluated together (engine/shared.py);
    each query then correlates only the rows that match one of its own stages."""
    shared = shared_filters(frame, options)
    schema = shared.schema
    outcome: list[SearchResult | QueryError | None] = []
    parts: dict[int, list[ir.EventFilter]] = {}
    keys: set[str] = set()
    for j, q in enumerate(queries):
        filters = [s.filter for s in q.expanded()] + ([q.until.filter] if q.until is not None else [])
        outcome.append(_add_all(shared, filters))
        if outcome[j] is None:
            parts[j] = filters
            stages = list(q.expanded()) + ([q.until] if q.until is not None else [])
            keys.update(k.path for s in stages for k in s.keys if k.path in schema)
    for j in list(parts):
        q = queries[j]
        if any(len(shared.rows(s.filter)) == 0 for s in q.expanded() if not s.missing):
            # a stage that no event matches: no sequence can complete, so no rows to correlate
            outcome[j] = SearchResult("sequences", [], [], 0)
            del parts[j]
    union = _union([shared.rows(f) for filters in parts.values() for f in filters], frame.height)
    ordered = _ordered_rows(frame, options, union, keys).filter(pl.col("__ts").is_not_null())
    positions = ordered["__pos"].to_numpy()
    place = _places(ordered, frame.height)  # so that a query takes just its own rows, in order
    for j, filters in parts.items():
        q = queries[j]
        names = [f"__s{i}" for i in range(len(q.expanded()))] + (["__until"] if q.until is not None else [])
        rows = [shared.rows(f) for f in filters]
        mine = place[_union(rows, frame.height)]
        mine = np.sort(mine[mine >= 0])
        flags = [pl.Series(n, _flag(r, positions[mine], frame.height)) for n, r in zip(names, rows)]
        key_fields = sorted({k.path for s in list(q.expanded()) + ([q.until] if q.until else []) for k in s.keys}
                            & set(ordered.columns))
        cand = ordered.select(ORDER + key_fields).gather(mine).with_columns(flags)
        try:
            outcome[j] = _correlate(q, cand, schema, options)
        except QueryError as e:
            outcome[j] = e
    _add_category_warnings(queries, outcome, shared, options.event_category_field)
    return outcome  # type: ignore[return-value]


def _correlate(q: ir.SequenceQuery, cand: pl.DataFrame, schema: Schema, options: SearchOptions) -> SearchResult:
    """Sequences from the candidate rows (in event order, with `__s{i}`, `__until`): one batch
    through the incremental correlator (engine/correlate.py)."""
    run = SequenceRun(q)
    hits = run.feed(cand, schema) + run.finish(schema)
    return SearchResult("sequences", _limit(hits, q.pipes, options), [], cand.height)


# ---- samples -----------------------------------------------------------------------------


def _samples(q: ir.SampleQuery, lf: pl.LazyFrame, compiler: PolarsCompiler, schema: Schema,
             options: SearchOptions) -> SearchResult:
    return _sample_hits(q, _candidates(q, lf, compiler, options), schema, options)


def search_samples_batch(queries: list[ir.SampleQuery], frame: pl.DataFrame,
                         options: SearchOptions = SearchOptions()) -> list[SearchResult | QueryError]:
    """Many sample queries with their stage filters evaluated with the frame's other filters
    (engine/shared.py); each query then joins only the rows of its own stages."""
    shared = shared_filters(frame, options)
    schema = shared.schema
    outcome: list[SearchResult | QueryError] = []
    for q in queries:
        filters = [s.filter for s in q.stages]
        error = _add_all(shared, filters)
        if error is not None:
            outcome.append(error)
            continue
        rows = [shared.rows(f) for f in filters]
        if any(len(r) == 0 for r in rows):  # every sample takes one event of each stage
            outcome.append(SearchResult("samples", [], [], 0))
            continue
        union = _union(rows, frame.height)
        keys = {k.path for s in q.stages for k in s.keys if k.path in schema}
        ordered = _ordered_rows(frame, options, union, keys)
        positions = ordered["__pos"].to_numpy()
        flags = [pl.Series(f"__s{i}", _flag(r, positions, frame.height)) for i, r in enumerate(rows)]
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
    lf, schema, compiler = _prepared(frame, options, [query], set(fields))
    cand = _candidates(query, lf, compiler, options, fields)
    return _new_terms(query, cand, fields, history_ms, schema, options)


@dataclass(frozen=True)
class NewTermsRule:
    query: ir.EventQuery
    fields: tuple[str, ...]
    history_ms: int


def search_new_terms_batch(rules: list[NewTermsRule], frame: pl.DataFrame,
                           options: SearchOptions = SearchOptions()) -> list[SearchResult | QueryError]:
    """Many new_terms rules: their filters evaluated together with the frame's other filters
    (engine/shared.py), then each rule's first-seen replay over its own matching rows."""
    shared = shared_filters(frame, options)
    schema = shared.schema
    outcome: list[SearchResult | QueryError | None] = [_add_all(shared, [r.query.filter]) for r in rules]
    ok = [i for i, o in enumerate(outcome) if o is None]
    union = _union([shared.rows(rules[i].query.filter) for i in ok], frame.height)
    terms = {f for i in ok for f in rules[i].fields if f in schema}
    ordered = _ordered_rows(frame, options, union, terms).filter(pl.col("__ts").is_not_null())
    place = _places(ordered, frame.height)
    for i in ok:
        r = rules[i]
        mine = place[shared.rows(r.query.filter)]
        present = [f for f in r.fields if f in schema]
        cand = ordered.select(ORDER + present).gather(np.sort(mine[mine >= 0]))
        try:
            outcome[i] = _new_terms(r.query, cand, list(r.fields), r.history_ms, schema, options)
        except QueryError as e:
            outcome[i] = e
    return outcome  # type: ignore[return-value]


def _new_terms(query: ir.EventQuery, cand: pl.DataFrame, fields: list[str], history_ms: int, schema: Schema,
               options: SearchOptions) -> SearchResult:
    """The new-terms replay over a rule's matching rows (with a timestamp, in event order): one batch
    through the incremental correlator (engine/correlate.py)."""
    hits = NewTermsRun(query, fields, history_ms).feed(cand, schema)
    warnings = _unknown_field_warnings(query, schema)
    return SearchResult("events", _limit(hits, query.pipes, options), warnings, cand.height)


# ---- threshold ---------------------------------------------------------------------------


def search_threshold(query: ir.EventQuery, frame: pl.DataFrame, spec: ThresholdSpec,
                     options: SearchOptions = SearchOptions()) -> SearchResult:
    """Groups of events matching `query` that reach the threshold on Kibana's schedule; each hit's
    rows are the events counted and its join_keys the group's values."""
    card_fields = [f for f, _ in spec.cardinality]
    lf, schema, compiler = _prepared(frame, options, [query], set(spec.fields) | set(card_fields))
    cand = _candidates(query, lf, compiler, options, set(spec.fields) | set(card_fields))
    run = ThresholdRun(query, spec)
    hits = run.feed(cand, schema) + run.finish(schema)
    return SearchResult("threshold", _limit(hits, query.pipes, options), _unknown_field_warnings(query, schema),
                        cand.height)

