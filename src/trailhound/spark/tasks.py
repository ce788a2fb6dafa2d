"""What the Spark tasks run: plain functions over plain values, so that they are tested without Spark
and run the local engine's own code (`sources`, `engine.search`, `alerts.build`).

Two stages (`spark/driver.py` wires them into Spark):

1. `scan_file`, one task per input file: the file is loaded by the local loader (any format: ECS
   NDJSON plain or compressed, Parquet, raw auditd or syslog, which must be read whole by one task for
   audit grouping, syslog years and the process tree), every rule's filters are evaluated over it with
   the local engine, and the task returns what the driver needs: the file's report (lines, events,
   bad lines with their line numbers, field types) and, per rule, the rows matching one of the rule's
   filters (its candidates) with their documents. A file that cannot be read is a record, not a failed
   task.
2. `correlate_rule`, per rule: the rule's candidates from every file, in global input
   order, typed as a load of all the files would type them (`FileScan.types` joined), go through the
   local engine's search (sequences, samples, new_terms and threshold through engine/correlate.py's
   Run classes), and its alerts are built (`alerts.build`): the same hits, documents and alert ids as
   `trailhound hunt` without Spark. A rule whose parts are independent (`split_of`: sequences and
   samples by join key, new_terms by term combination, threshold by group) is correlated part by
   part (`split_payload`, `route_payload`, `correlate_rule(part=...)`) and merged (`merge_parts`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

#: bad lines kept in full per file (the count is always complete)
SKIPPED_KEPT = 1000
#: distinct non-ECS event categories a file reports (for the unknown-category warnings)
MAX_CATEGORIES = 10_000


@dataclass
class RuleSpec:
    """One runnable rule as the tasks need it: its check (rule and query), the query with its exceptions
    folded in, and the fields its search reads."""

    index: int
    check: Any  # rules.check.RuleCheck
    query: Any  # lang.ir.Query, with the rule's exception items as a filter
    fields: list[str]
    error: str | None = None  # why it cannot run (found while its fields were gathered)
    unsupported: str | None = None
    exceptions: list = field(default_factory=list)  # rules.exceptions.ExceptionItem attached to the rule


@dataclass
class FileScan:
    """What one input gave: the loader's figures for it, and the field types of its events."""

    file_no: int
    name: str
    format: str = "ecs"
    lines: int = 0
    events: int = 0
    skipped: list[tuple[str, int, str]] = field(default_factory=list)
    skipped_count: int = 0
    notes: list[str] = field(default_factory=list)
    types: dict[str, tuple[str, bool]] = field(default_factory=dict)  # field → (base kind, is a list)
    excepted: dict[str, dict[str, int]] = field(default_factory=dict)  # rule index → item label → events
    categories: dict[str, list[str]] = field(default_factory=dict)  # category field → its values that are not ECS's
    error: str | None = None  # the input cannot be read at all (a SourceError)
    seconds: dict[str, float] = field(default_factory=dict)  # where the task's time went: load, filter, encode


def rule_specs(checks, exceptions=()) -> list[RuleSpec]:
    """The runnable rules of a plan, their exceptions folded in as engine.hunt does."""
    from ..engine.hunt import rule_query
    from ..rules.errors import UnsupportedError, reason_of

    specs = []
    for i, c in enumerate(x for x in checks if x.status == "ok" and x.query is not None):
        spec = RuleSpec(i, c, c.query, [])
        try:
            spec.exceptions, spec.query, wanted = rule_query(c, exceptions)
            spec.fields = sorted(wanted | {"@timestamp"})
        except UnsupportedError as e:
            spec.unsupported = reason_of(e)
        except Exception as e:  # noqa: BLE001 - the rule says why; the others run
            spec.error = reason_of(e)
        specs.append(spec)
    return specs


def _column_type(dtype) -> tuple[str, bool] | None:
    import polars as pl

    is_list = isinstance(dtype, pl.List)
    base = dtype.inner if is_list else dtype
    kind = {pl.Boolean: "bool", pl.Int64: "int", pl.Float64: "float", pl.String: "str"}.get(base)
    return None if kind is None else (kind, is_list)


def scan_files(files: list[tuple[int, Any]], specs: list[RuleSpec], input_format: str | None = None,
               read_options=None) -> tuple[list[FileScan], list[tuple[int, bytes]], list[tuple[int, int, bytes]]]:
    """Stage 1 over inputs loaded together (`files`: (file number, path or `sources.inputs.Source`: a file
    whose bytes Spark read, `Source.from_bytes`), in input order): a report per
    file; (rule index, Arrow IPC payload) per rule with candidates: the rows matching one of the rule's filters,
    its fields as the loader typed them, and each row's file number and row in its file (`FILE_COLUMN`,
    `ROW_COLUMN`); and (file number, row, document JSON: `EventTable.document_texts`) of each of those rows, once. Raw logs
    are loaded together so that the process tree runs across them as locally."""
    import polars as pl

    from .._gc import no_gc
    from ..engine.search import SearchOptions, search_events_batch
    from ..lang import ir
    from ..sources import SourceError, load_events

    scans = [FileScan(n, path if isinstance(path, str) else path.name) for n, path in files]
    t0 = time.perf_counter()
    fields = sorted({f for s in specs for f in s.fields} | {"@timestamp"})
    try:
        table = load_events([path for _, path in files], fields, format=input_format, options=read_options)
    except SourceError as e:
        scans[0].error = str(e)
        return scans, [], []
    report = table.report
    t1 = time.perf_counter()
    scans[0].seconds["load"] = t1 - t0
    starts, start = [], 0
    for scan, stats in zip(scans, report.inputs):
        scan.name, scan.format, scan.lines, scan.events = stats.file, stats.format, stats.lines, stats.events
        scan.skipped_count = stats.skipped
        starts.append(start)
        start += stats.events
    by_name = {scan.name: scan for scan in scans}
    for bad in report.skipped:
        if bad.file in by_name and len(by_name[bad.file].skipped) < SKIPPED_KEPT:
            by_name[bad.file].skipped.append((bad.file, bad.line, bad.reason))
    scans[0].notes = list(report.notes)
    types = {name: t for name in table.present if (t := _column_type(table.frame.schema[name])) is not None}
    for scan in scans:
        scan.types = types
    frame = table.frame
    from ..lang.categories import ECS_CATEGORIES

    for name in {s.check.rule.event_category_override or "event.category" for s in specs}:
        if name in frame.columns:  # what the rules' unknown-category warnings ask of the data (stage 2)
            col = frame[name].explode() if isinstance(frame.schema[name], pl.List) else frame[name]
            other = [v for v in col.unique().to_list() if isinstance(v, str) and v not in ECS_CATEGORIES]
            scans[0].categories[name] = sorted(other)[:MAX_CATEGORIES]
    # every filter of every rule, one batch per category field (the only frame option a filter reads)
    by_category: dict[str, list[tuple[int, ir.EventQuery]]] = {}
    for s in specs:
        if s.error or s.unsupported:
            continue
        category = s.check.rule.event_category_override or "event.category"
        for f in ir.query_filters(s.query):
            by_category.setdefault(category, []).append((s.index, ir.EventQuery(f)))
    # per rule and exception item: its events that matched one of the rule's filters (engine.hunt counts so)
    counted: list[tuple[int, str, ir.EventQuery]] = []
    for s in specs:
        if not (s.error or s.unsupported):
            for item in s.exceptions:
                for f in ir.query_filters(s.check.query):
                    q = ir.EventQuery(ir.EventFilter(f.category, ir.And((f.condition, item.condition))))
                    counted.append((s.index, item.label, q))
    rows_of: dict[int, set[int]] = {}
    with no_gc():
        excepted: dict[tuple[int, str], set[int]] = {}
        for s in specs:
            category = s.check.rule.event_category_override or "event.category"
            items = [(index, label, q) for index, label, q in counted if index == s.index]
            if not items:
                continue
            results = search_events_batch([q for _, _, q in items], frame, SearchOptions(event_category_field=category))
            for (index, label, _), result in zip(items, results):
                seen = excepted.setdefault((index, label), set())
                if not isinstance(result, Exception):
                    seen.update(r for h in result.hits if (r := h.rows[0]) is not None)
        for (index, label), seen in excepted.items():
            scans[0].excepted.setdefault(str(index), {})[label] = len(seen)
        for category, group in by_category.items():
            options = SearchOptions(event_category_field=category)
            results = search_events_batch([q for _, q in group], frame, options)
            for (index, _), result in zip(group, results):
                if isinstance(result, Exception):
                    continue  # the rule fails again, with its reason, in stage 2
                rows_of.setdefault(index, set()).update(r for h in result.hits if (r := h.rows[0]) is not None)
        t2 = time.perf_counter()
        scans[0].seconds["filter"] = t2 - t1
        wanted = sorted({r for rows in rows_of.values() for r in rows})
        texts = table.document_texts(wanted)

    # per rule, only the fields it reads, as the loader typed them, in one Arrow IPC payload per rule with each
    # row's (file number, row in the file); stage 2 types them as one load of all the files would (`_retyped`).
    # Each document once, for the driver to fetch those of the hits.
    import numpy as np

    starts_arr = np.asarray(starts, dtype=np.int64)
    events_arr = np.asarray([s.events for s in scans], dtype=np.int64)
    numbers = np.asarray([s.file_no for s in scans], dtype=np.int32)

    def place(rows: list[int]) -> tuple[Any, Any]:
        at = np.asarray(rows, dtype=np.int64)
        k = np.searchsorted(starts_arr, at, side="right") - 1
        # inputs without events share a start with the next: the last of them holds the row
        k = np.maximum(k, 0)
        while True:
            moved = (k + 1 < len(starts_arr)) & (starts_arr[np.minimum(k + 1, len(starts_arr) - 1)] == starts_arr[k]) \
                & (events_arr[k] == 0)
            if not moved.any():
                break
            k = k + moved
        return numbers[k], at - starts_arr[k]

    out: list[tuple[int, bytes]] = []
    by_index = {s.index: s for s in specs}
    if rows_of:
        frame = frame.rechunk()  # the loader's columns come in chunks: gathering rows across them cost ~10x more
    for index, rows in rows_of.items():
        ordered = sorted(rows)
        cols = [f for f in by_index[index].fields if f in frame.columns]
        files_of, local = place(ordered)
        part = frame.select(cols)[ordered].with_columns(pl.Series(FILE_COLUMN, files_of, dtype=pl.Int32),
                                                        pl.Series(ROW_COLUMN, local, dtype=pl.Int64))
        out.append((index, to_ipc(part)))
    files_of, local = place(wanted)
    scans[0].seconds["encode"] = time.perf_counter() - t2
    return scans, out, list(zip(files_of.tolist(), local.tolist(), texts))


#: the columns of a candidate payload that say where each row comes from
FILE_COLUMN, ROW_COLUMN = "__trailhound_file", "__trailhound_row"


def to_ipc(frame) -> bytes:
    """A frame as Arrow IPC bytes (what a task hands Spark: one binary value per rule, not one per row)."""
    import io

    buf = io.BytesIO()
    frame.write_ipc(buf, compression="uncompressed")
    return buf.getvalue()


def from_ipc(payload: bytes):
    import io

    import polars as pl

    return pl.read_ipc(io.BytesIO(payload))


def join_types(scans: list[FileScan]) -> dict[str, tuple[str, bool]]:
    """The type a load of all the files gives each field: the join of their types (`ecs_values.join_kinds`)."""
    from ..sources.ecs_values import join_kinds

    kinds: dict[str, tuple[set[str], bool]] = {}
    for s in scans:
        for name, (base, is_list) in s.types.items():
            k, was = kinds.get(name, (set(), False))
            kinds[name] = (k | {base}, was or is_list)
    out = {}
    for name, (k, is_list) in kinds.items():
        if (t := join_kinds(k, is_list)) is not None:
            out[name] = (t.base, t.is_list)
    return out


@dataclass
class RuleResult:
    """What stage 2 gives for one rule: run.status-like fields, and its alerts in order."""

    index: int
    kind: str = ""
    hits: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    unsupported: str | None = None
    timestamp_field: str = "@timestamp"
    suppressed: int = 0
    over_max_signals: int = 0
    seconds: float = 0.0
    found: list = field(default_factory=list)  # the hits: [global rows (None: a missing event), join keys]
    #: with a rule split by join key: each hit's place in event order (its last event's time, tiebreaker,
    #: global row), by which the driver merges the parts as one run orders them (`merge_parts`)
    order: list = field(default_factory=list)
    #: with a new_terms rule split by term: per hit, the place of each of its new terms among its event's
    #: combinations (the order one run gives them in; `merge_parts` joins an event's terms from every part)
    picks: list = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)  # built by the driver (`build_alerts`)


def candidate_frame(parts: list[bytes], offsets: dict[int, int], types: dict[str, tuple[str, bool]]):
    """(global rows, frame): one rule's candidates from stage 1's payloads (any order), in global input order,
    each field in the type a load of all the files gives it (`types`), with the loader's `__row` (the position
    in this frame) and `__file` columns, as `events_from_documents` over them would give."""
    import polars as pl

    frames = []
    for payload in parts:
        part = from_ipc(payload)
        at = pl.Series([offsets[f] for f in part[FILE_COLUMN].to_list()], dtype=pl.Int64) + part[ROW_COLUMN]
        typed = _retyped(part.select([c for c in part.columns if c in types]), types)
        frames.append(typed.select(list(types)).with_columns(at.alias("__global")))
    if frames:
        frame = pl.concat(frames, how="vertical").sort("__global")
    else:
        frame = pl.DataFrame(schema={**{n: _dtype(t) for n, t in types.items()}, "__global": pl.Int64})
    rows = frame["__global"].to_list()
    frame = frame.drop("__global").with_columns(pl.int_range(0, frame.height, dtype=pl.Int64).alias("__row"),
                                                pl.lit(0, dtype=pl.Int32).alias("__file"))
    return rows, frame


@dataclass(frozen=True)
class Split:
    """How a rule's candidates are split into independent parts (`split_of`).

    `by` "key": by the hash of each row's join key (sequences and samples whose stages all join on the same
    scalar fields): one part per row. "terms": by the hash of each of a row's term combinations (new_terms) or
    threshold groups (threshold), cartesian over array values: a row goes to the part of each, and each part
    feeds its correlator only the combinations or groups that are its own (`correlate_rule(part=...)`)."""

    kind: str  # "sequence", "sample", "new_terms", "threshold"
    by: str  # "key" or "terms"
    keys: tuple[str, ...]


def split_of(spec: RuleSpec, types: dict[str, tuple[str, bool]]) -> Split | str:
    """The rule's split (`Split`), or why its candidates are correlated whole.

    * sequences and samples, by the key positions that every stage (and a sequence's `until`) fills from the
      same field, each a scalar in every file and not a date (the engine compares dates as instants, two
      texts of one instant would hash apart), without pipes (`| head`/`| tail` count over every key): a
      key's sequences and samples read that key's events only. Samples come in key order, sequences in the
      order of their last event: `merge_parts` puts the parts' hits back in that order.
    * new_terms: each term combination's first-seen history reads that combination's events only (an event
      with array values has several, maybe in several parts; it alerts once, with the new terms of every
      part, in its own order of combinations: `merge_parts`).
    * threshold with `threshold.field`: counts, cardinality and signal history are per group; the schedule
      is global (its first execution follows the first counted event of all the data, its last one interval
      after the last one): each part gets those times (`threshold_bounds`). Without a field, every event is
      in the one group: whole.
    """
    from ..engine.hunt import _options
    from ..lang import ir
    from ..rules.model import date_math_ms

    if spec.error or spec.unsupported:
        return "the rule does not run"
    rule, q = spec.check.rule, spec.query
    try:
        options, _ = _options(spec.check, frozenset(types))
    except Exception as e:  # noqa: BLE001 - the whole run reports it
        return f"its options fail ({e})"
    es_types = options.types()
    if rule.type in ("new_terms", "threshold"):
        if not isinstance(q, ir.EventQuery):
            return f"a {rule.type} rule over a sequence or sample query fails whole"
        if q.pipes:
            return "its pipes count over every term"
        try:
            if rule.type == "new_terms":
                fields, history = rule.new_terms_spec()
                date_math_ms(history)
            else:
                fields = list(rule.threshold_spec().fields)
        except Exception as e:  # noqa: BLE001 - the whole run reports the rule's error
            return f"its {rule.type} settings fail ({e})"
        if not fields:
            return "a threshold without threshold.field counts every event in one group"
        if any(f not in types for f in fields):
            return "a term field occurs in no event (no combination, nothing to split)"
        return Split(rule.type, "terms", tuple(fields))
    if not isinstance(q, (ir.SequenceQuery, ir.SampleQuery)):
        return "an event query has no correlation"
    kind = "sequence" if isinstance(q, ir.SequenceQuery) else "sample"
    if q.pipes:
        return "its pipes (head, tail) count over every key"
    stages = list(q.expanded() if isinstance(q, ir.SequenceQuery) else q.stages)
    if isinstance(q, ir.SequenceQuery) and q.until is not None:
        stages.append(q.until)
    paths = [tuple(k.path for k in s.keys) for s in stages]
    if not paths[0]:
        return f"a {kind} without join keys is one key"
    # the key positions every stage fills from the same field (`by host.id` of `sequence by host.id [..] by
    # process.entity_id [..] by process.parent.entity_id`): the events of one sequence or sample share the
    # whole key, so those values too; the other positions are cast to a type common to their fields
    common = tuple(f for i, f in enumerate(paths[0]) if all(len(p) > i and p[i] == f for p in paths))
    if not common:
        return "its stages join on different fields at every key position"
    from ..compile.schema import DATE_TYPES

    for f in common:
        if f not in types:
            return f"the join key {f} occurs in no event"
        if types[f][1]:
            return f"the join key {f} holds arrays (an event in several keys)"
        if es_types.get(f) in DATE_TYPES:
            return f"the join key {f} is a date (compared as an instant, not as its text)"
    return Split(kind, "key", common)


def part_of(term: tuple, parts: int) -> int:
    """The part of one term combination or threshold group (its values as the correlator sees them): a hash
    that is the same in every process (Python's own hash of a string is not)."""
    import zlib

    return zlib.crc32(orjson.dumps(term, option=orjson.OPT_PASSTHROUGH_DATETIME, default=repr)) % parts


def split_payload(payload: bytes, types: dict[str, tuple[str, bool]], keys: list[str],
                  parts: int) -> list[tuple[int, bytes]]:
    """One stage-1 payload as (part, payload) by the hash of its rows' join keys, typed as one load of every
    file types them (so that a value typed apart by two files lands in one part)."""
    import polars as pl

    frame = from_ipc(payload)
    typed = _retyped(frame.select([c for c in frame.columns if c in types]), types)
    typed = typed.with_columns(frame[FILE_COLUMN], frame[ROW_COLUMN])
    bucket = (typed.select(pl.struct(keys).hash(seed=0) % parts).to_series()).alias("__part")
    out = []
    for (k,), group in typed.with_columns(bucket).group_by("__part", maintain_order=True):
        out.append((int(k), to_ipc(group.drop("__part"))))
    return out


def _terms_frame(spec: RuleSpec, payload: bytes, types: dict[str, tuple[str, bool]]):
    """(the payload's frame, the rule's frame over it as `correlate_rule` makes it, with `__row` the row of
    the payload)."""
    import polars as pl

    frame = from_ipc(payload)
    mine = {f: types[f] for f in spec.fields if f in types}
    typed = _retyped(frame.select([c for c in frame.columns if c in mine]), mine).select(list(mine))
    return frame, typed.with_columns(pl.int_range(0, typed.height, dtype=pl.Int64).alias("__row"),
                                     pl.lit(0, dtype=pl.Int32).alias("__file"))


def _term_rows(spec: RuleSpec, split: Split, frame, types: dict[str, tuple[str, bool]]):
    """The rule's candidates as its correlator sees them (`search_new_terms`'s or `search_threshold`'s):
    (options, schema, candidates in event order, [(time, row, term or group, cardinality values)] in event
    order, a row's combinations in the order the engine makes them)."""
    from ..engine.correlate import ThresholdRun, key_dtypes, keyed
    from ..engine.filter.candidates import prepared, prepared_candidates
    from ..engine.hunt import _options
    from ..lang import ir

    options, _ = _options(spec.check, frozenset(types))
    q = spec.query
    if split.kind == "threshold":
        tspec = spec.check.rule.threshold_spec()
        wanted = set(tspec.fields) | {f for f, _ in tspec.cardinality}
        lf, schema, compiler = prepared(frame, options, [q], wanted)
        cand = prepared_candidates(q, lf, compiler, options, wanted)
        return options, schema, cand, ThresholdRun(q, tspec)._events(cand, schema)
    fields = list(split.keys)
    lf, schema, compiler = prepared(frame, options, [q], set(fields))
    cand = prepared_candidates(q, lf, compiler, options, fields)
    # the combinations as engine.correlate.NewTermsRun.feed makes them
    stage = ir.Stage(q.filter, tuple(ir.Field(f) for f in fields))
    rows = keyed(cand.with_row_index("__ord"), stage, schema, key_dtypes([stage], schema), ["__ord", "__ts", "__row"])
    key_cols = [f"__k{i}" for i in range(len(fields))]
    out = [(r[1], r[2], tuple(r[3:]), ()) for r in rows.select(["__ord", "__ts", "__row", *key_cols]).iter_rows()]
    return options, schema, cand, out


def route_payload(spec: RuleSpec, split: Split, payload: bytes, types: dict[str, tuple[str, bool]],
                  parts: int) -> list[tuple[int, bytes]]:
    """One stage-1 payload of a rule split by terms (`Split.by` "terms") as (part, payload): each row in the
    part of each of its term combinations (new_terms) or threshold groups, once per part; a row with none
    (a term field missing) in no part, as the correlator would drop it."""
    frame, typed = _terms_frame(spec, payload, types)
    _, _, _, events = _term_rows(spec, split, typed, types)
    rows_of: dict[int, set[int]] = {}
    for _, row, term, _ in events:
        rows_of.setdefault(part_of(term, parts), set()).add(row)
    return [(part, to_ipc(frame[sorted(rows_of[part])])) for part in sorted(rows_of)]


def threshold_bounds(spec: RuleSpec, split: Split, payload: bytes,
                     types: dict[str, tuple[str, bool]]) -> tuple[int, int] | None:
    """(first, last) time of the events a threshold rule counts in one stage-1 payload (those with a group),
    or None: the schedule of a rule split by group is that of all of them (`correlate_rule(bounds=...)`)."""
    _, typed = _terms_frame(spec, payload, types)
    times = [e[0] for e in _term_rows(spec, split, typed, types)[3]]
    return (min(times), max(times)) if times else None


class _PartTerms:
    """A NewTermsState that sees only the term combinations of its part, and notes where each new term
    stands among its event's combinations (`RuleResult.picks`)."""

    def __init__(self, history_ns: int, part: int, parts: int) -> None:
        from ..engine.new_terms import NewTermsState

        self.inner = NewTermsState(history_ns)
        self.part, self.parts = part, parts
        self.picks: list[list[int]] = []

    def feed(self, ts: int, terms) -> list:
        at = {t: i for i, t in enumerate(terms) if part_of(t, self.parts) == self.part}
        new = self.inner.feed(ts, list(at))
        if new:
            self.picks.append([at[t] for t in new])
        return new

    def expire(self, now_ts: int) -> None:
        self.inner.expire(now_ts)


def _correlate_terms(spec: RuleSpec, split: Split, frame, types: dict[str, tuple[str, bool]], part: int, parts: int,
                     bounds: tuple[int, int] | None, out: RuleResult, rows: list[int]) -> None:
    """One part of a rule split by terms: the engine's correlator fed only this part's combinations or
    groups; for threshold, on the schedule of all the data (`bounds`). Fills `out` (hits as local rows of
    `frame`, mapped to global `rows`), with each hit's place in one run's order."""
    from ..engine.correlate import NewTermsRun
    from ..engine.search import _unknown_field_warnings
    from ..rules.model import date_math_ms

    options, schema, cand, events = _term_rows(spec, split, frame, types)
    q = spec.query
    if split.kind == "new_terms":
        fields, history = spec.check.rule.new_terms_spec()
        run = NewTermsRun(q, list(fields), date_math_ms(history))
        state = _PartTerms(run.state.history_ns, part, parts)
        # fed as the engine's state, with its part's combinations only
        run.state = state  # type: ignore[assignment]
        hits = run.feed(cand, schema)
        at = [r for h in hits for r in h.rows if r is not None]  # one event each
        out.kind, out.picks = "events", state.picks
        out.found = [[[rows[r]], list(h.join_keys or ())] for r, h in zip(at, hits)]
        out.order = _event_order(frame, options, at, rows) if hits else []
    else:
        from ..engine.correlate import ThresholdRun

        tspec = spec.check.rule.threshold_spec()
        place: dict[tuple, int] = {}
        seen: dict[int, int] = {}
        mine = []
        for e in events:
            place[(e[1], e[2])] = seen.get(e[1], 0)  # the group's place among its event's groups
            seen[e[1]] = seen.get(e[1], 0) + 1
            if part_of(e[2], parts) == part:
                mine.append(e)
        schedule = ThresholdRun(q, tspec).state
        found = []
        if mine and bounds is not None:
            step = tspec.interval_ns
            schedule.next_t = (bounds[0] // step + 1) * step  # the first execution of one run over all the data
            found = schedule.feed(mine)
            schedule.last_ts = max(schedule.last_ts or bounds[1], bounds[1])  # and its last
            found += schedule.finish()
        out.kind = "threshold"
        out.found = [[[rows[r] for r in h.rows], list(h.group)] for h in found]
        firsts = _event_order(frame, options, [h.rows[0] for h in found], rows) if found else []
        out.order = [[h.execution_ts, *o, place[(h.rows[0], h.group)]] for h, o in zip(found, firsts)]
    out.hits = len(out.found)
    out.warnings.extend(_unknown_field_warnings(q, schema))


def merge_parts(results: list[RuleResult], split: Split | None = None) -> RuleResult:
    """The parts of a split rule (`split_of`) as one result, as one run gives it: the hits in the order of
    `RuleResult.order` (a sequence's last event, a sample's key, a threshold's execution and first counted
    event); a new_terms event found in several parts once, with its new terms from all of them in its own
    order of combinations. The warnings once each, the first failure."""
    if len(results) == 1 and (split is None or split.kind != "new_terms"):
        return results[0]
    out = RuleResult(results[0].index, timestamp_field=results[0].timestamp_field)
    failed = next((r for r in results if r.error or r.unsupported), None)
    if failed is not None:
        out.error, out.unsupported, out.warnings = failed.error, failed.unsupported, failed.warnings
        out.seconds = sum(r.seconds for r in results)
        return out
    if split is not None and split.kind == "new_terms":
        width = len(split.keys)
        events: dict[int, tuple[list, list[tuple[int, list]]]] = {}
        for r in results:
            for order, (rows, keys), picks in zip(r.order, r.found, r.picks):
                terms = [keys[k * width:(k + 1) * width] for k in range(len(picks))]
                events.setdefault(rows[0], (order, []))[1].extend(zip(picks, terms))
        ordered = sorted(events.items(), key=lambda kv: tuple(kv[1][0]))
        out.found = [[[row], [v for _, t in sorted(terms, key=lambda x: x[0]) for v in t]]
                     for row, (_, terms) in ordered]
    else:
        hits = sorted(((o, f) for r in results for o, f in zip(r.order, r.found)), key=lambda x: tuple(x[0]))
        out.found = [f for _, f in hits]
    out.kind = next((r.kind for r in results if r.kind), "")
    out.hits = len(out.found)
    for r in results:
        out.warnings.extend(w for w in r.warnings if w not in out.warnings)
    out.seconds = sum(r.seconds for r in results)
    return out


def _key_order(key) -> list:
    """A sample's place in one run: its key in Elasticsearch's composite order (`engine.sample.key_order`),
    flat and as JSON values (a text compares by code point, as its UTF-8 bytes do)."""
    from ..engine.sample import key_order

    return [v.decode() if isinstance(v, bytes) else v for part in key_order(tuple(key)) for v in part]


def _event_order(frame, options, last: list[int], rows: list[int]) -> list[list]:
    """Each hit's sort key in the engine's event order (`__ts`, then `__tb` with nulls last, then the row) of
    its last event (a row of `frame`), with that event's global row for the row."""
    from ..engine.filter.frame import prepare

    keys = prepare(frame, options, set())[0].select("__ts", "__tb").collect()
    ts, tb = keys["__ts"].to_list(), keys["__tb"].to_list()
    return [[ts[r], tb[r] is None, 0 if tb[r] is None else tb[r], rows[r]] for r in last]


def correlate_rule(spec: RuleSpec, parts: list[bytes], offsets: dict[int, int], types: dict[str, tuple[str, bool]],
                   present: frozenset[str], now: str, max_signals: int | None,
                   categories: dict[str, set[str]] | None = None, ordered: bool = False,
                   split: Split | None = None, part: int = 0, key_parts: int = 1,
                   bounds: tuple[int, int] | None = None) -> RuleResult:
    """Stage 2 for one rule (or one part of it: `ordered` then gives each hit's place, `RuleResult.order`):
    `parts` are its candidate payloads from stage 1 (`scan_files`), `split_payload` or `route_payload`,
    `offsets` each file's first global row. A rule split by terms (`split`) correlates only the terms or
    groups of its `part` of `key_parts`, a threshold on the schedule of all the data (`bounds`,
    `threshold_bounds` over every payload). The hits come back as global rows (`RuleResult.found`); the
    driver builds the alerts (`build_alerts`)."""
    from ..engine.hunt import _options
    from ..engine.search import SearchResult, search, search_new_terms, search_threshold
    from ..lang import ir
    from ..rules.errors import RuleError, UnsupportedError, reason_of
    from ..rules.model import date_math_ms

    t0 = time.perf_counter()
    rule = spec.check.rule
    out = RuleResult(spec.index)
    try:
        options, warnings = _options(spec.check, present)
        out.warnings, out.timestamp_field = warnings, options.timestamp_field
        fields = [f for f in spec.fields if f in present]
        rows, frame = candidate_frame(parts, offsets, {f: types[f] for f in fields if f in types})
        q = spec.query
        if split is not None and split.by == "terms":
            _correlate_terms(spec, split, frame, types, part, key_parts, bounds, out, rows)
            out.seconds = time.perf_counter() - t0
            return out
        got: SearchResult | Exception
        if rule.type == "new_terms" and isinstance(q, ir.EventQuery):
            terms, history = rule.new_terms_spec()
            got = search_new_terms(q, frame, list(terms), date_math_ms(history), options)
        elif rule.type == "threshold":
            if not isinstance(q, ir.EventQuery):
                raise RuleError(rule.source, "query", "a threshold rule counts single events, not a "
                                f"{'sequence' if isinstance(q, ir.SequenceQuery) else 'sample'}")
            got = search_threshold(q, frame, rule.threshold_spec(), options)
        else:
            got = search(q, frame, options)
        if isinstance(got, Exception):
            raise got
        result = got
        out.found = [[[None if r is None else rows[r] for r in h.rows], h.join_keys] for h in result.hits]
        out.kind, out.hits = result.kind, len(out.found)
        if ordered and result.hits and result.kind == "samples":
            out.order = [[*_key_order(h.join_keys or ()), k] for k, h in enumerate(result.hits)]
        elif ordered and result.hits:
            last = [[r for r in h.rows if r is not None][-1] for h in result.hits]  # in stage order
            out.order = _event_order(frame, options, last, rows)
        out.warnings.extend(_category_warnings(q, result.warnings, (categories or {}).get(
            options.event_category_field, set())))
    except UnsupportedError as e:
        out.unsupported = reason_of(e)
    except Exception as e:  # noqa: BLE001 - one rule's failure is reported, the others go on
        out.error = reason_of(e)
    out.seconds = time.perf_counter() - t0
    if out.error or out.unsupported:
        out.kind, out.hits, out.found = "", 0, []
    return out


def build_alerts(spec: RuleSpec, result: RuleResult, docs: dict[int, dict], now: str, max_signals: int | None) -> None:
    """The rule's alerts from its hits and their documents (global row → document), as `run_hunt` builds them."""
    from ..alerts.build import alerts_for_hits
    from ..engine.search import Hit

    if not result.found:
        return
    hits = [Hit(tuple(rows), None if keys is None else tuple(keys)) for rows, keys in result.found]
    used = {r: docs[r] for h in hits for r in h.rows if r is not None}
    batch = alerts_for_hits(spec.check.rule, result.kind, hits, used, result.timestamp_field, now, max_signals)
    result.alerts, result.suppressed, result.over_max_signals = batch.alerts, batch.suppressed, batch.over_max_signals


def _category_warnings(query, warnings: list[str], categories: set[str]) -> list[str]:
    """`warnings` with the unknown-category ones said over every file's categories, not the candidates'."""
    from ..lang.categories import unknown_category_warnings

    at = [i for i, w in enumerate(warnings) if w.startswith("event category ")]
    if not at:
        return warnings
    kept = [w for w in warnings if not w.startswith("event category ")]
    return kept[:at[0]] + unknown_category_warnings(query, lambda: categories) + kept[at[0]:]


def _dtype(t: tuple[str, bool]):
    import polars as pl

    base = {"bool": pl.Boolean, "int": pl.Int64, "float": pl.Float64, "str": pl.String}[t[0]]
    return pl.List(base) if t[1] else base


def _retyped(frame, types: dict[str, tuple[str, bool]]):
    """The candidates' frame with each field in the type all the files give it, converted as the loader
    converts (`ecs_values.cast_sql`, in DuckDB); a field the candidates lack is a null column."""
    import duckdb
    import polars as pl

    from ..sources.ecs_values import ColumnType, cast_sql, ident

    dtype = _dtype
    missing = [pl.lit(None, dtype=dtype(t)).alias(n) for n, t in types.items() if n not in frame.columns]
    differ = {n: t for n, t in types.items() if n in frame.columns and frame.schema[n] != dtype(t)}
    if differ:
        select = []
        for name, want in differ.items():
            have = _column_type(frame.schema[name])
            assert have is not None  # the loader's frames hold these types only
            select.append(f"{cast_sql(ident(name), ColumnType(*have), ColumnType(*want))} AS {ident(name)}")
        with duckdb.connect() as con:
            rel = con.from_arrow(frame.select(list(differ)).to_arrow())
            result = rel.query("t", f"SELECT {', '.join(select)} FROM t")
            assert result is not None  # a SELECT gives a relation
            converted = result.to_arrow_table()
        cast = pl.from_arrow(converted)
        assert isinstance(cast, pl.DataFrame)
        frame = frame.with_columns(cast[n].cast(dtype(t)) for n, t in differ.items())
    return frame.with_columns(missing) if missing else frame
