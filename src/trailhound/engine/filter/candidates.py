"""The candidate step: which rows of a frame a correlator takes for a query, in event order.

Two ways to the same rows: `candidates` (one query: its filters compiled to Polars and run over the
prepared frame) and the batch helpers below over a SharedFilters (many queries: each filter's rows
from the shared per-frame work, then the union of them ordered once). Sequences and samples carry
a `__s{i}` flag column per stage (and `__until`).
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Set as AbstractSet

import numpy as np
import polars as pl

from ...compile.polars import PolarsCompiler, lowered_columns
from ...compile.schema import Schema
from ...lang import ir
from ...lang.errors import QueryError
from .frame import ORDER, FrameOptions, prepare
from .shared import SharedFilters


def needed_fields(query: ir.Query, options: FrameOptions) -> list[str]:
    """The fields a query reads, with the frame options' own (timestamp, category, tiebreaker) and
    the targets of aliases: what a load for this query must keep."""
    names = [f.path for f in ir.query_fields(query)]
    names += [options.timestamp_field, options.event_category_field]
    if options.tiebreaker_field:
        names.append(options.tiebreaker_field)
    out = []
    for n in names:
        out.append(options.aliases.get(n, n))
        out.append(n)
    return list(dict.fromkeys(out))


# ---- one query: Polars over the prepared frame ---------------------------------------------


def prepared(frame: pl.DataFrame, options: FrameOptions, queries: list[ir.Query],
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


def stage_filter(compiler: PolarsCompiler, f: ir.EventFilter, options: FrameOptions) -> pl.Expr:
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
            evaluated.append(stage_filter(compiler, f, options).alias(f"{prefix}s{i}"))
    return evaluated, copies


def _sequence_columns(q: ir.SequenceQuery, compiler: PolarsCompiler, options: FrameOptions, names: list[str],
                      prefix: str = "__") -> tuple[list[pl.Expr], list[pl.Expr], list[str], list[str]]:
    """The stage (and until) filter columns of a sequence, their names, and its key fields."""
    stages = list(q.expanded())
    filters, copies = _distinct_filters(compiler, [s.filter for s in stages], options, prefix)
    if q.until is not None:
        filters.append(stage_filter(compiler, q.until.filter, options).alias(f"{prefix}until"))
    flags = [f"{prefix}s{i}" for i in range(len(stages))] + ([f"{prefix}until"] if q.until is not None else [])
    key_fields = sorted({k.path for s in stages + ([q.until] if q.until else []) for k in s.keys} & set(names))
    return filters, copies, flags, key_fields


def candidates(query: ir.Query, frame: pl.DataFrame, options: FrameOptions = FrameOptions(),
               fields: Collection[str] = ()) -> tuple[pl.DataFrame, Schema]:
    """The filter step on its own: the rows of `frame` a correlator of engine/correlate.py takes for
    `query`, in event order, and the schema it reads their keys with. A sequence's or a sample's rows
    carry a `__s{i}` column per stage (and `__until`); an event query's (new_terms, threshold) are
    the rows it matches, with `fields`. Rows without a timestamp are left out, but for samples."""
    lf, schema, compiler = prepared(frame, options, [query], set(fields))
    return prepared_candidates(query, lf, compiler, options, fields), schema


def prepared_candidates(q: ir.Query, lf: pl.LazyFrame, compiler: PolarsCompiler, options: FrameOptions,
                        fields: Collection[str] = ()) -> pl.DataFrame:
    """`candidates` over a frame `prepared` already."""
    names = lf.collect_schema().names()
    if isinstance(q, ir.SequenceQuery):
        filters, copies, flags, key_fields = _sequence_columns(q, compiler, options, names)
        return (lf.select([*ORDER, *key_fields, *filters]).with_columns(copies)
                .filter(pl.any_horizontal(flags) & pl.col("__ts").is_not_null())
                .sort(ORDER, nulls_last=True).collect())
    if isinstance(q, ir.SampleQuery):
        stages = list(q.stages)
        filters = [stage_filter(compiler, s.filter, options).alias(f"__s{i}") for i, s in enumerate(stages)]
        flags = [f"__s{i}" for i in range(len(stages))]
        key_fields = sorted({k.path for s in stages for k in s.keys} & set(names))
        return lf.select([*ORDER, *key_fields, *filters]).filter(pl.any_horizontal(flags)).sort(
            ORDER, nulls_last=True).collect()
    keep = stage_filter(compiler, q.filter, options)
    present = sorted(set(fields) & set(names))
    return lf.filter(keep & pl.col("__ts").is_not_null()).select(ORDER + present).sort(ORDER, nulls_last=True).collect()


def frame_categories(lf: pl.LazyFrame, schema: Schema, field: str) -> list:
    """The distinct event categories of a prepared frame (array elements for an array field)."""
    info = schema.get(field)
    if info.dtype is None:
        return []
    col = pl.col(field).explode() if info.multi else pl.col(field)
    return lf.select(col.unique()).collect().to_series().to_list()


# ---- many queries: rows from the shared per-frame work ---------------------------------------


def shared_categories(shared: SharedFilters, field: str) -> list:
    """The distinct event categories of a frame, from its shared dictionary encoding."""
    if field not in shared.source:
        return []
    return shared.field(field).items().items.to_list()


def add_all(shared: SharedFilters, filters: list[ir.EventFilter]) -> QueryError | None:
    """Register filters with the shared work; the first one that does not compile, if any."""
    try:
        for f in filters:
            shared.add(f)
    except QueryError as e:
        return e
    return None


def shared_candidates(q: ir.Query, shared: SharedFilters, found: list[np.ndarray], fields: Collection[str] = (),
                      base: tuple[pl.DataFrame, np.ndarray] | None = None) -> tuple[pl.DataFrame, Schema]:
    """`candidates` of one query over the frame of a SharedFilters, from the rows each of its filters
    (`ir.query_filters(q)`, in that order) holds on there: the same rows, columns and order, with no
    filter compiled or evaluated again (watch's correlating rules, batch after batch). `base`: `ordered_rows`
    of rows and fields that include this query's (its rows are taken from them), and `places` of it."""
    height = shared.height
    every = union(found, height)
    schema = shared.schema

    def in_order(positions: np.ndarray, fields: AbstractSet[str]) -> pl.DataFrame:
        if base is None:
            return _ordered_rows(shared, positions, fields)
        ordered, place = base
        return ordered[np.sort(place[positions])]

    if isinstance(q, ir.SequenceQuery):
        stages = list(q.expanded())
        until = [q.until] if q.until is not None else []
        keys = {k.path for s in stages + until for k in s.keys if k.path in schema}
        ordered = in_order(every, keys).filter(pl.col("__ts").is_not_null())
        positions = ordered["__pos"].to_numpy()
        # expanded stages repeat their filter `runs` times: their rows are those of the stage's filter
        rows = [found[i] for i, s in enumerate(q.stages) for _ in range(s.runs)]
        names = [f"__s{i}" for i in range(len(stages))]
        if q.until is not None:
            rows.append(found[-1])
            names.append("__until")
        flags = [pl.Series(n, flag(r, positions, height)) for n, r in zip(names, rows)]
        return ordered.select(ORDER + sorted(keys & set(ordered.columns))).with_columns(flags), schema
    if isinstance(q, ir.SampleQuery):
        keys = {k.path for s in q.stages for k in s.keys if k.path in schema}
        ordered = in_order(every, keys)
        positions = ordered["__pos"].to_numpy()
        flags = [pl.Series(f"__s{i}", flag(r, positions, height)) for i, r in enumerate(found)]
        return ordered.select(ORDER + sorted(keys & set(ordered.columns))).with_columns(flags), schema
    wanted = {f for f in fields if f in schema}
    ordered = in_order(every, wanted).filter(pl.col("__ts").is_not_null())
    return ordered.select(ORDER + sorted(wanted & set(ordered.columns))), schema


def _ordered_rows(shared: SharedFilters, positions: np.ndarray,
                  fields: AbstractSet[str] = frozenset()) -> pl.DataFrame:
    """These rows (by position, kept as `__pos`) with ORDER and `fields` prepared, in event order.
    The order keys come from the SharedFilters, which parses the timestamps once per frame,
    unless the rows are few and no order was made yet: then they are sorted on their own."""
    options = shared.options
    wanted = set(fields) | {options.aliases[a] for a in fields if a in options.aliases}
    if not shared.has_order() and len(positions) * 8 < shared.height:
        ts, tb = options.timestamp_field, options.tiebreaker_field
        for f in (ts, tb, options.aliases.get(ts), options.aliases.get(tb) if tb is not None else None):
            if f is not None:
                wanted.add(f)
        base = shared.columns(sorted((wanted & shared.names) | {"__row"}), positions)
        return (prepare(base, options, set(fields))[0].with_columns(pl.Series("__pos", positions, dtype=pl.Int64))
                .sort(ORDER, nulls_last=True).collect())
    keys = shared.order()[0]
    positions = shared.in_event_order(positions)
    base = shared.columns(sorted((wanted & shared.names) | {"__row"}), positions)
    prepared = prepare(base, options, set(fields))[0].drop("__ts", "__tb").collect()
    return pl.concat([prepared, keys[positions]], how="horizontal").with_columns(
        pl.Series("__pos", positions, dtype=pl.Int64))


ordered_rows = _ordered_rows


def places(ordered: pl.DataFrame, height: int) -> np.ndarray:
    """Each frame row's place in `ordered` (rows by `__pos`), -1 where it is not there."""
    place = np.full(height, -1, dtype=np.int64)
    place[ordered["__pos"].to_numpy()] = np.arange(ordered.height)
    return place


def union(parts: list[np.ndarray], height: int) -> np.ndarray:
    """The sorted distinct row positions of all parts."""
    mask = np.zeros(height, dtype=bool)
    for p in parts:
        mask[p] = True
    return np.flatnonzero(mask)


def flag(rows: np.ndarray, positions: np.ndarray, height: int) -> np.ndarray:
    """Which of `positions` are among `rows`."""
    mask = np.zeros(height, dtype=bool)
    mask[rows] = True
    return mask[positions]
