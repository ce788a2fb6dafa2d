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
2. `correlate_rule`, one group per rule: the rule's candidates from every file, in global input
   order, typed as a load of all the files would type them (`FileScan.types` joined), go through the
   local engine's search (sequences, samples, new_terms and threshold through engine/correlate.py's
   Run classes), and its alerts are built (`alerts.build`): the same hits, documents and alert ids as
   `trailhound hunt` without Spark.
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
    `ROW_COLUMN`); and (file number, row, document JSON) of each of those rows, once. Raw logs are loaded
    together so that the process tree runs across them as locally."""
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
        docs = dict(zip(wanted, (orjson.dumps(d, default=str) for d in table.documents(wanted))))

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
    for index, rows in rows_of.items():
        ordered = sorted(rows)
        cols = [f for f in by_index[index].fields if f in frame.columns]
        files_of, local = place(ordered)
        part = frame[ordered].select(cols).with_columns(pl.Series(FILE_COLUMN, files_of, dtype=pl.Int32),
                                                        pl.Series(ROW_COLUMN, local, dtype=pl.Int64))
        out.append((index, to_ipc(part)))
    found = list(docs.items())
    files_of, local = place([r for r, _ in found])
    scans[0].seconds["encode"] = time.perf_counter() - t2
    return scans, out, [(int(f), int(r), doc) for f, r, (_, doc) in zip(files_of, local, found)]


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


def split_keys(spec: RuleSpec, types: dict[str, tuple[str, bool]]) -> list[str] | None:
    """The join key fields by which this rule's candidates can be split into independent parts, or None.

    A sequence whose every stage (and `until`) joins on the same fields, each a scalar in every file, and
    without pipes (head/tail count over all keys): one key per event, and a key's sequences depend on that
    key's events only, so running each part through the same search gives, together, the hits of one run;
    `merge_parts` puts them back in that run's order. Other rules stay whole (one part)."""
    from ..lang import ir

    q = spec.query
    if spec.error or spec.unsupported or spec.check.rule.type in ("threshold", "new_terms") \
            or not isinstance(q, ir.SequenceQuery) or q.pipes:
        return None
    stages = list(q.expanded()) + ([q.until] if q.until is not None else [])
    paths = [tuple(k.path for k in s.keys) for s in stages]
    if not paths[0] or any(p != paths[0] for p in paths):
        return None
    if any(f not in types or types[f][1] for f in paths[0]):
        return None
    return list(paths[0])


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


def merge_parts(results: list[RuleResult]) -> RuleResult:
    """The parts of a rule split by join key (`split_keys`) as one result: the hits in event order of their
    last event (as one run releases them), the warnings once each, the first failure."""
    if len(results) == 1:
        return results[0]
    out = RuleResult(results[0].index, timestamp_field=results[0].timestamp_field)
    failed = next((r for r in results if r.error or r.unsupported), None)
    if failed is not None:
        out.error, out.unsupported, out.warnings = failed.error, failed.unsupported, failed.warnings
        out.seconds = sum(r.seconds for r in results)
        return out
    hits = sorted(((o, f) for r in results for o, f in zip(r.order, r.found)), key=lambda x: tuple(x[0]))
    out.found = [f for _, f in hits]
    out.kind = next((r.kind for r in results if r.kind), "")
    out.hits = len(out.found)
    for r in results:
        out.warnings.extend(w for w in r.warnings if w not in out.warnings)
    out.seconds = sum(r.seconds for r in results)
    return out


def _event_order(frame, options, last: list[int], rows: list[int]) -> list[list]:
    """Each hit's sort key in the engine's event order (`__ts`, then `__tb` with nulls last, then the row) of
    its last event (a row of `frame`), with that event's global row for the row."""
    from ..engine.filter.frame import prepare

    keys = prepare(frame, options, set())[0].select("__ts", "__tb").collect()
    ts, tb = keys["__ts"].to_list(), keys["__tb"].to_list()
    return [[ts[r], tb[r] is None, 0 if tb[r] is None else tb[r], rows[r]] for r in last]


def correlate_rule(spec: RuleSpec, parts: list[bytes], offsets: dict[int, int], types: dict[str, tuple[str, bool]],
                   present: frozenset[str], now: str, max_signals: int | None,
                   categories: dict[str, set[str]] | None = None, ordered: bool = False) -> RuleResult:
    """Stage 2 for one rule (or one part of it: `ordered` then gives each hit's place, `RuleResult.order`):
    `parts` are its candidate payloads from stage 1 (`scan_files`) or `split_payload`, `offsets` each file's
    first global row. The hits come back as global rows (`RuleResult.found`); the driver builds the alerts
    (`build_alerts`)."""
    from ..engine.hunt import _options
    from ..engine.search import search, search_new_terms, search_threshold
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
        if rule.type == "threshold":
            if not isinstance(q, ir.EventQuery):
                raise RuleError(rule.source, "query", "a threshold rule counts single events, not a "
                                f"{'sequence' if isinstance(q, ir.SequenceQuery) else 'sample'}")
            result = search_threshold(q, frame, rule.threshold_spec(), options)
        elif rule.type == "new_terms" and isinstance(q, ir.EventQuery):
            terms, history = rule.new_terms_spec()
            result = search_new_terms(q, frame, list(terms), date_math_ms(history), options)
        else:
            result = search(q, frame, options)
        out.found = [[[None if r is None else rows[r] for r in h.rows], h.join_keys] for h in result.hits]
        out.kind, out.hits = result.kind, len(out.found)
        if ordered and result.hits:
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
