"""Run many rules over the same events: one load of the union of their fields, then each rule.

`timestamp_override` (Elastic rules use `event.ingested`) orders a rule's events when the data
carries that field; where no event does, the rule falls back to `@timestamp` and says so, as
Kibana's query rules do (replayed telemetry rarely has `event.ingested`).

A rule's exception items narrow every filter of its query (Kibana sends them as the search's
filter); each item's count is the events that matched one of the rule's filters and the item.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Sequence

from .._gc import no_gc
from ..rules.check import RuleCheck, ecs
from ..rules.exceptions import ExceptionItem, ExceptionList, items_for
from ..sources import EventTable, ReadOptions, load_events
from .new_terms import date_math_span_ms
from ..lang import ir
from .search import (Hit, NewTermsRule, SearchOptions, needed_fields, search, search_events_batch,
                     search_new_terms_batch, search_samples_batch, search_sequences_batch,
                     search_threshold)


@dataclass
class RuleRun:
    check: RuleCheck
    kind: str = ""
    hits: list[Hit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    timestamp_field: str = "@timestamp"
    exceptions: list[ExceptionItem] = field(default_factory=list)
    excepted: dict[str, int] = field(default_factory=dict)  # item label → events it excepted


@dataclass
class Hunt:
    table: EventTable
    runs: list[RuleRun]
    load_seconds: float


def _options(check: RuleCheck, present: frozenset[str]) -> tuple[SearchOptions, list[str]]:
    rule = check.rule
    warnings = []
    ts = rule.timestamp_override or "@timestamp"
    if ts not in present and ts != "@timestamp":
        warnings.append(f"no event has timestamp_override {ts!r}; ordering by @timestamp")
        ts = "@timestamp"
    options = SearchOptions(
        timestamp_field=ts,
        tiebreaker_field=rule.tiebreaker_field,
        event_category_field=rule.event_category_override or "event.category",
        es_types=ecs().es_types(),
    )
    return options, warnings


@no_gc()
def hunt(checks: Sequence[RuleCheck], paths: Sequence[str | os.PathLike],
         exceptions: Sequence[ExceptionList] = (), progress=None, input_format: str | None = None,
         read_options: ReadOptions | None = None) -> Hunt:
    """Run every runnable rule; `progress(done, total)` (if given) hears as rules finish."""
    runnable = [c for c in checks if c.status == "ok" and c.query is not None]
    items = [items_for(c.rule, exceptions) for c in runnable]
    queries = [ir.restrict(c.query, ir.Not(_any([i.condition for i in its]))) if its else c.query
               for c, its in zip(runnable, items)]
    fields: set[str] = set()
    for c, q in zip(runnable, queries):
        base = SearchOptions(timestamp_field=c.rule.timestamp_override or "@timestamp",
                             tiebreaker_field=c.rule.tiebreaker_field,
                             event_category_field=c.rule.event_category_override or "event.category")
        fields.update(needed_fields(q, base))
        fields.add("@timestamp")
        if c.rule.type == "new_terms":
            fields.update(c.rule.new_terms_spec()[0])
        elif c.rule.type == "threshold":
            spec = c.rule.threshold_spec()
            fields.update(spec.fields)
            fields.update(f for f, _ in spec.cardinality)
    started = time.perf_counter()
    table = load_events(paths, sorted(fields), format=input_format, options=read_options)
    load_seconds = time.perf_counter() - started
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(runnable))

    runs: dict[int, RuleRun] = {}
    # event and sequence rules that share frame options run together, one vectorized pass per kind
    batches: dict[tuple, list[int]] = {}
    batch_options: dict[tuple, SearchOptions] = {}
    new_terms: dict[int, NewTermsRule] = {}
    for i, c in enumerate(runnable):
        options, warnings = _options(c, table.present)
        runs[i] = RuleRun(c, warnings=warnings, timestamp_field=options.timestamp_field, exceptions=items[i])
        kind = None
        if c.rule.type in ("eql", "query") and type(c.query) in _BATCHES:
            kind = _BATCHES[type(c.query)]
        elif c.rule.type == "new_terms" and isinstance(queries[i], ir.EventQuery):
            terms, history = c.rule.new_terms_spec()
            try:
                new_terms[i] = NewTermsRule(queries[i], tuple(terms), date_math_span_ms(history))
            except ValueError as e:  # a bad history_window_start: the rule says why
                runs[i].error = str(e)
                tick()
                continue
            kind = "new_terms"
        if kind is not None:
            key = (kind, options.timestamp_field, options.tiebreaker_field, options.event_category_field)
            batches.setdefault(key, []).append(i)
            batch_options[key] = options
            continue
        t0 = time.perf_counter()
        try:
            if c.rule.type == "threshold":
                result = search_threshold(queries[i], table.frame, c.rule.threshold_spec(), options)
            else:
                result = search(queries[i], table.frame, options)
            _record(runs[i], result)
        except ValueError as e:  # a rule that cannot run on this data says why
            runs[i].error = str(e)
        runs[i].seconds = time.perf_counter() - t0
        tick()
    # new_terms last: it reuses the filter work the event and sequence batches cached on the frame
    for key, members in sorted(batches.items(), key=lambda kv: kv[0][0] == "new_terms"):
        t0 = time.perf_counter()
        if key[0] == "new_terms":
            results = search_new_terms_batch([new_terms[i] for i in members], table.frame, batch_options[key])
        else:
            batch = {"events": search_events_batch, "sequences": search_sequences_batch,
                     "samples": search_samples_batch}[key[0]]
            results = batch([queries[i] for i in members], table.frame, batch_options[key])
        share = (time.perf_counter() - t0) / len(members)
        for i, result in zip(members, results):
            if isinstance(result, Exception):
                runs[i].error = str(result)
            else:
                _record(runs[i], result)
            runs[i].seconds = share
        tick(len(members))
    _count_exceptions([runs[i] for i in range(len(runnable))], table)
    return Hunt(table, [runs[i] for i in range(len(runnable))], load_seconds)


_BATCHES = {ir.EventQuery: "events", ir.SequenceQuery: "sequences", ir.SampleQuery: "samples"}


def _any(conditions: list[ir.Expr]) -> ir.Expr:
    return conditions[0] if len(conditions) == 1 else ir.Or(tuple(conditions))


def _count_exceptions(runs: list[RuleRun], table: EventTable) -> None:
    """Per rule and item: the events that matched one of the rule's filters and the item."""
    by_options: dict[tuple, tuple[SearchOptions, list[tuple[RuleRun, ExceptionItem, ir.EventQuery]]]] = {}
    for run in runs:
        if not run.exceptions or run.error:
            continue
        options, _ = _options(run.check, table.present)
        key = (options.timestamp_field, options.tiebreaker_field, options.event_category_field)
        group = by_options.setdefault(key, (options, []))[1]
        for item in run.exceptions:
            for f in ir.query_filters(run.check.query):
                group.append((run, item, ir.EventQuery(ir.EventFilter(f.category, ir.And((f.condition, item.condition))))))
    for options, group in by_options.values():
        results = search_events_batch([q for _, _, q in group], table.frame, options)
        rows: dict[tuple[int, str], set] = {}
        for (run, item, _), result in zip(group, results):
            seen = rows.setdefault((id(run), item.label), set())
            if isinstance(result, Exception):
                run.warnings.append(f"exception {item.label} could not be counted: {result}")
                continue
            seen.update(h.rows[0] for h in result.hits)
            run.excepted[item.label] = len(seen)


def _record(run: RuleRun, result) -> None:
    run.kind, run.hits = result.kind, result.hits
    run.warnings.extend(result.warnings)
