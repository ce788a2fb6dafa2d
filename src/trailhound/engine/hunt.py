"""Run many rules over the same events: one load of the union of their fields, then each rule.

`timestamp_override` (Elastic rules use `event.ingested`) orders a rule's events when the data
carries that field; where no event does, the rule falls back to `@timestamp` and says so, as
Kibana's query rules do (replayed telemetry rarely has `event.ingested`).

A rule's exception items narrow every filter of its query (Kibana sends them as the search's
filter); each item's count is the events that matched one of the rule's filters and the item.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence

import polars as pl

from .._gc import no_gc
from ..compile.patterns import check_wildcards
from ..lang import ir
from ..lang.errors import QueryError
from ..rules.check import RuleCheck, ecs
from ..rules.errors import RuleError, reason_of
from ..rules.exceptions import ExceptionItem, ExceptionList, excluding, items_for
from ..rules.model import date_math_ms
from ..sources import EventTable, ReadOptions, load_events
from ..sources.dictionary import Encoding
from .filter.frame import FrameOptions
from .filter.shared import SharedFilters
from .runs import Hunt, RuleRun
from .search import (
    NewTermsRule,
    SearchOptions,
    SearchResult,
    ThresholdRule,
    needed_fields,
    search,
    search_events_batch,
    search_new_terms_batch,
    search_samples_batch,
    search_sequences_batch,
    search_threshold_batch,
)

#: the start of the warning for a rule whose timestamp_override no event has (said once for all rules)
TIMESTAMP_FALLBACK = "no event has timestamp_override"

@functools.lru_cache(maxsize=1)
def _es_types() -> dict[str, str]:
    """ECS's comparison-changing types, made once: building the dict for each of 355 rules took
    half a second. Shared by every rule's options, which only read it."""
    return ecs().es_types()


def _options(check: RuleCheck, present: frozenset[str]) -> tuple[SearchOptions, list[str]]:
    rule = check.rule
    warnings = []
    ts = rule.timestamp_override or "@timestamp"
    if ts not in present and ts != "@timestamp":
        warnings.append(f"{TIMESTAMP_FALLBACK} {ts!r}; ordering by @timestamp")
        ts = "@timestamp"
    options = SearchOptions(
        timestamp_field=ts,
        tiebreaker_field=rule.tiebreaker_field,
        event_category_field=rule.event_category_override or "event.category",
        es_types=_es_types(),
    )
    return options, warnings


class _Frame:
    """The frame the rules search, and its shared filter work per set of frame options (made on first
    use, passed to every batch with those options). A rule that raises half-way may leave that work
    half done, so after a failure the rules go on with fresh work (nothing shared yet): a failure
    costs some repeated work, never another rule's result."""

    def __init__(self, frame: pl.DataFrame, encodings: dict[str, Encoding] | None = None) -> None:
        self.current = frame
        self.encodings = encodings  # columns the store kept encoded (EventTable.encodings)
        self._work: dict[tuple, SharedFilters] = {}

    def shared(self, options: FrameOptions) -> SharedFilters:
        key = options.key()
        work = self._work.get(key)
        if work is None:
            work = self._work[key] = SharedFilters(self.current, options, encodings=self.encodings)
        return work

    def spoil(self) -> None:
        self._work.clear()


def _isolated(run_batch, members: list[int], frame: _Frame) -> list[tuple[int, SearchResult | Exception]]:
    """(member, result or exception) for every member of a batch. The whole batch runs at once;
    if it raises, it is split in halves, each run with fresh shared work, down to the rules that fail,
    so one bad rule costs about log2(batch) extra runs and the others keep their results."""
    try:
        results = run_batch(members, frame)
    except Exception as e:  # noqa: BLE001 - one rule's failure must not stop the others
        frame.spoil()
        if len(members) == 1:
            return [(members[0], e)]
        mid = len(members) // 2
        return _isolated(run_batch, members[:mid], frame) + _isolated(run_batch, members[mid:], frame)
    return list(zip(members, results))


def _register_filters(frame: _Frame, batches: dict[tuple, list[int]], batch_options: dict[tuple, SearchOptions],
                      queries: dict[int, ir.Query]) -> None:
    """Every batch's filters registered with the shared work before any is evaluated, so that each field's atoms
    are evaluated in one pass (one needle scan of its texts, one probe of its distinct values) rather than once per
    batch kind (events, sequences, new_terms) that reads the field. A filter that does not compile is left to its
    batch, which reports it; anything else spoils the shared work (the batches start afresh)."""
    # the regexes of every wildcard checked in one query of the regex engine, not one each (compile/patterns.py)
    check_wildcards(p.lower() if e.case_insensitive else p for members in batches.values() for i in members
                    for f in ir.query_filters(queries[i]) for e in ir.walk(f.condition)
                    if isinstance(e, ir.Match) and e.kind == "wildcard" for p in e.patterns)
    try:
        for key, members in batches.items():
            shared = frame.shared(batch_options[key])
            for i in members:
                for f in ir.query_filters(queries[i]):
                    try:
                        shared.add(f)
                    except QueryError:
                        pass
    except Exception:  # noqa: BLE001 - the batches meet it again and report it on their rules
        frame.spoil()


@no_gc()
def hunt(checks: Sequence[RuleCheck], paths: Sequence[str | os.PathLike],
         exceptions: Sequence[ExceptionList] = (), progress=None, input_format: str | None = None,
         read_options: ReadOptions | None = None) -> Hunt:
    """Run every runnable rule; `progress(done, total)` (if given) hears as rules finish.

    A rule that fails (while its fields are gathered, while it searches or correlates) is
    reported on its RuleRun (`error`, or `unsupported` for a feature we lack) and the hunt goes
    on with the others. Errors reading the input (SourceError) still end the hunt."""
    runnable = [c for c in checks if c.status == "ok" and c.query is not None]
    from .records import hunt_records, reads_records  # Sigma rules over raw audit records: their own events
    from .sigma_hunt import is_correlation, run_correlations

    correlations = [c for c in checks if c.status == "ok" and is_correlation(c)]
    records = [c for c in runnable if reads_records(c)]
    if records:
        runnable = [c for c in runnable if not reads_records(c)]
    runs = {i: RuleRun(c) for i, c in enumerate(runnable)}
    queries: dict[int, ir.Query] = {}
    fields: set[str] = {"@timestamp"}
    for i, c in enumerate(runnable):
        try:
            items, query, wanted = rule_query(c, exceptions)
        except Exception as e:  # noqa: BLE001
            runs[i].fail(e)
            continue
        runs[i].exceptions = items
        queries[i] = query
        fields |= wanted
    started = time.perf_counter()
    table = load_events(paths, sorted(fields), format=input_format, options=read_options, encoded=True)
    load_seconds = time.perf_counter() - started
    frame = _Frame(table.lean_frame, table.encodings)
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(runnable))

    if len(queries) < len(runnable):
        tick(len(runnable) - len(queries))  # rules that failed before the search
    # event and sequence rules that share frame options run together, one vectorized pass per kind
    batches: dict[tuple, list[int]] = {}
    batch_options: dict[tuple, SearchOptions] = {}
    new_terms: dict[int, NewTermsRule] = {}
    thresholds: dict[int, ThresholdRule] = {}
    singles: list[tuple[int, SearchOptions]] = []
    for i in queries:
        c = runs[i].check
        try:
            options, warnings = _options(c, table.present)
            runs[i].warnings, runs[i].timestamp_field = warnings, options.timestamp_field
            kind = None
            if c.rule.type in ("eql", "query") and type(c.query) in _BATCHES:
                kind = _BATCHES[type(c.query)]
            elif c.rule.type == "new_terms" and isinstance(q := queries[i], ir.EventQuery):
                terms, history = c.rule.new_terms_spec()
                new_terms[i] = NewTermsRule(q, tuple(terms), date_math_ms(history))
                kind = "new_terms"
            elif c.rule.type == "threshold":
                if not isinstance(q := queries[i], ir.EventQuery):
                    raise RuleError(c.rule.source, "query", "a threshold rule counts single events, not a "
                                    f"{'sequence' if isinstance(q, ir.SequenceQuery) else 'sample'}")
                thresholds[i] = ThresholdRule(q, c.rule.threshold_spec())
                kind = "threshold"
        except Exception as e:  # noqa: BLE001 - e.g. a bad history_window_start, a threshold over a sequence
            runs[i].fail(e)
            tick()
            continue
        if kind is None:
            singles.append((i, options))
            continue
        key = (kind, options.timestamp_field, options.tiebreaker_field, options.event_category_field)
        batches.setdefault(key, []).append(i)
        batch_options[key] = options
    for i, options in singles:
        t0 = time.perf_counter()
        try:
            runs[i].record(search(queries[i], table.frame, options))
        except Exception as e:  # noqa: BLE001 - a rule that cannot run on this data says why
            runs[i].fail(e)  # a single search shares no work: nothing to spoil
        runs[i].seconds = time.perf_counter() - t0
        tick()
    _register_filters(frame, batches, batch_options, queries)  # a new_terms or threshold rule's query is queries[i]
    # new_terms last: it reuses the filter work the event and sequence batches did on the frame
    for key, members in sorted(batches.items(), key=lambda kv: kv[0][0] == "new_terms"):
        t0 = time.perf_counter()
        options = batch_options[key]
        run_batch: Callable[[list[int], _Frame], list[SearchResult | QueryError]]
        if key[0] == "new_terms":
            def run_new_terms(ids, f, options=options):
                return search_new_terms_batch([new_terms[i] for i in ids], f.current, options, shared=f.shared(options))
            run_batch = run_new_terms
        elif key[0] == "threshold":
            def run_thresholds(ids, f, options=options):
                return search_threshold_batch([thresholds[i] for i in ids], f.current, options, shared=f.shared(options))
            run_batch = run_thresholds
        else:
            batch = {"events": search_events_batch, "sequences": search_sequences_batch,
                     "samples": search_samples_batch}[key[0]]

            def run_queries(ids, f, batch=batch, options=options):
                return batch([queries[i] for i in ids], f.current, options, shared=f.shared(options))
            run_batch = run_queries
        outcome = _isolated(run_batch, members, frame)
        share = (time.perf_counter() - t0) / len(members)
        for i, got in outcome:
            if isinstance(got, Exception):
                runs[i].fail(got)
            else:
                runs[i].record(got)
            runs[i].seconds = share
        tick(len(members))
    ordered = [runs[i] for i in range(len(runnable))]
    _count_exceptions(ordered, table, frame)
    if records:
        ordered += hunt_records(records, paths, exceptions, input_format, read_options)
        if progress:
            progress(len(runnable) + len(records), len(runnable) + len(records))
    if correlations:  # after every other rule: they read those rules' hits
        ordered += run_correlations(correlations, ordered, table)
    return Hunt(table, ordered, load_seconds)


_BATCHES = {ir.EventQuery: "events", ir.SequenceQuery: "sequences", ir.SampleQuery: "samples"}


def rule_query(check: RuleCheck, exceptions: Sequence[ExceptionList] = ()) -> tuple[list, ir.Query, set[str]]:
    """What a runnable rule searches: its exception items, its query with them folded in (events
    matching an item are left out), and the fields that query and its rule type read. One home for the
    local hunt, `watch` (engine.incremental) and the Spark tasks."""
    rule = check.rule
    assert check.query is not None  # runnable checks have a query
    items = items_for(rule, exceptions)
    query = excluding(check.query, items)
    base = SearchOptions(timestamp_field=rule.timestamp_override or "@timestamp",
                         tiebreaker_field=rule.tiebreaker_field,
                         event_category_field=rule.event_category_override or "event.category")
    wanted = set(needed_fields(query, base))
    if rule.type == "new_terms":
        wanted.update(rule.new_terms_spec()[0])
    elif rule.type == "threshold":
        spec = rule.threshold_spec()
        wanted.update(spec.fields)
        wanted.update(f for f, _ in spec.cardinality)
    return items, query, wanted


def _count_exceptions(runs: list[RuleRun], table: EventTable, frame: _Frame) -> None:
    """Per rule and item: the events that matched one of the rule's filters and the item."""
    by_options: dict[tuple, tuple[SearchOptions, list[tuple[RuleRun, ExceptionItem, ir.EventQuery]]]] = {}
    for run in runs:
        if not run.exceptions or run.status != "ok":
            continue
        options, _ = _options(run.check, table.present)
        key = (options.timestamp_field, options.tiebreaker_field, options.event_category_field)
        group = by_options.setdefault(key, (options, []))[1]
        assert run.check.query is not None  # runs are of runnable checks
        for item in run.exceptions:
            for f in ir.query_filters(run.check.query):
                group.append((run, item, ir.EventQuery(ir.EventFilter(f.category, ir.And((f.condition, item.condition))))))
    for options, group in by_options.values():
        outcome = _isolated(lambda ids, f, options=options, group=group: search_events_batch(
            [group[j][2] for j in ids], f.current, options, shared=f.shared(options)), list(range(len(group))), frame)
        rows: dict[tuple[int, str], set] = {}
        for j, result in outcome:
            run, item, _ = group[j]
            seen = rows.setdefault((id(run), item.label), set())
            if isinstance(result, Exception):
                run.warnings.append(f"exception {item.label} could not be counted: {reason_of(result)}")
                continue
            seen.update(h.rows[0] for h in result.hits)
            run.excepted[item.label] = len(seen)
