"""Many rules over a stream of event batches: the filter step per batch, the correlators' state between batches.

`engine.hunt` runs every rule over one load; `IncrementalHunt` runs the same rules over frames that arrive one after
another (each frame the events of one micro-batch, in event order after the frames before it), and gives, rule by
rule, the hits of each batch as they become sure. Fed the batches of an input and then `finish()`ed, it gives the
hits `engine.hunt` gives over the whole input, in the same order:

* event queries (eql, query) are stateless: the batch's matches, through the shared filter step of engine/search.py;
* sequences, samples, new_terms and threshold rules keep their correlator (engine/correlate.py) between batches:
  their candidate rows come from the batch's shared filter work (`filter.candidates.shared_candidates`), and
  the correlator decides what is sure;
* a rule's exception items narrow its query, as in `engine.hunt`;
* `| head N` counts over the stream; `| tail N` needs the end of input and is refused (a rule that cannot run
  live says why, as unsupported).

The whole state is JSON values (`to_dict`/`from_dict`), checked against the rules it was saved for. Rows are the
`__row` ids of the frames: the caller keeps the documents of every row that `live_rows()` still names, since the
hits that later complete are built from them. A rule that fails is reported and the others go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import polars as pl

from .._gc import no_gc
from ..compile.schema import Schema
from ..lang import ir
from ..rules.check import RuleCheck
from ..rules.errors import UnsupportedError, reason_of
from ..rules.exceptions import ExceptionList
from ..rules.model import date_math_ms
from .correlate import Hit, NewTermsRun, SampleRun, SequenceRun, ThresholdRun
from .filter import CompiledAtoms, SharedFilters
from .filter.candidates import ordered_rows, places, shared_candidates, union
from .hunt import rule_query
from .search import SearchOptions, candidates, search_events_batch

STATE_VERSION = 1


@dataclass
class RuleHits:
    """What one rule gave over one batch (or at the end)."""

    index: int  # the rule's place among IncrementalHunt.rules
    hits: list[Hit]


@dataclass
class LiveRule:
    """One rule's standing in the stream."""

    check: RuleCheck
    query: ir.Query | None = None  # with its exception items folded in
    kind: str = ""  # events, sequences, samples or threshold (as SearchResult.kind)
    options: SearchOptions | None = None  # decided by the first batch with events
    timestamp_field: str = "@timestamp"
    run: Any = None  # the correlator, None for event queries
    head: int | None = None  # hits still allowed by `| head`
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    unsupported: str | None = None
    schema: Schema | None = None  # the last batch's, to render keys at finish
    late: int = 0  # candidate rows that came after later events had been correlated (not seen by the correlator)

    @property
    def status(self) -> str:
        return "unsupported" if self.unsupported else "error" if self.error else "ok"

    def fail(self, error: BaseException | str) -> None:
        self.run = None
        if isinstance(error, UnsupportedError):
            self.unsupported = reason_of(error)
        else:
            self.error = error if isinstance(error, str) else reason_of(error)


def rules_fingerprint(checks: Sequence[RuleCheck], exceptions: Sequence[ExceptionList] = ()) -> str:
    """Identifies a rule set for a saved state: each rule's id, type, query and parameters, and the exception items."""
    parts = []
    for c in checks:
        r = c.rule
        parts.append([r.rule_id, r.type, r.language, r.query, r.timestamp_override, r.tiebreaker_field,
                      r.event_category_override, repr(getattr(r, "threshold", None)), repr(getattr(r, "new_terms", None)),
                      repr(r.alert_suppression), r.interval, r.max_signals, c.status])
    parts.append([repr(lst) for lst in exceptions])
    return hashlib.sha256(orjson.dumps(parts, default=str)).hexdigest()


class IncrementalHunt:
    """Every runnable rule of `checks` over a stream of frames (see the module doc)."""

    def __init__(self, checks: Sequence[RuleCheck], exceptions: Sequence[ExceptionList] = ()) -> None:
        self.checks = [c for c in checks if c.status == "ok" and c.query is not None]
        self.fingerprint = rules_fingerprint(self.checks, exceptions)
        self.rules = [LiveRule(c) for c in self.checks]
        self.started = False
        self._shared_frame: pl.DataFrame | None = None  # the batch whose shared filter work `_shared` holds
        self._shared: dict[tuple, SharedFilters] = {}
        self._ordered_rows: dict[tuple, tuple[SharedFilters, pl.DataFrame, np.ndarray]] = {}  # see _ordered
        self._compiled = CompiledAtoms()  # the filters' atoms, compiled once for every batch alike
        fields: set[str] = {"@timestamp"}
        for live in self.rules:
            c = live.check
            try:
                items, query, wanted = rule_query(c, exceptions)
                live.head = _head(query)
            except Exception as e:  # noqa: BLE001 - one rule's failure must not stop the others
                live.fail(e)
                continue
            live.query = query
            fields |= wanted
        self.fields = sorted(fields)

    # ---- the stream --------------------------------------------------------------------

    def feed(self, frame: pl.DataFrame, present: frozenset[str]) -> list[RuleHits]:
        """One batch of events (a loaded frame whose `__row` ids are the caller's); the hits now sure, per rule."""
        if frame.height == 0:
            return []
        with no_gc():  # thousands of small objects per batch over a heap of compiled rules: see trailhound._gc
            return self._feed(frame, present)

    def _feed(self, frame: pl.DataFrame, present: frozenset[str]) -> list[RuleHits]:
        if not self.started:
            self._start(present)
        out: list[RuleHits] = []
        groups: dict[tuple, list[int]] = {}
        self._add_correlated(frame)
        for i, live in enumerate(self.rules):
            if live.status != "ok" or live.options is None:
                continue
            if live.run is None:
                o = live.options
                groups.setdefault((o.timestamp_field, o.tiebreaker_field, o.event_category_field), []).append(i)
                continue
            try:
                hits = self._correlate(live, frame)
            except Exception as e:  # noqa: BLE001 - a rule that cannot run on this data says why
                live.fail(e)
                continue
            if hits:
                out.append(RuleHits(i, self._limited(live, hits)))
        for members in groups.values():
            out.extend(self._events(members, frame))
        out.sort(key=lambda rh: rh.index)
        return [rh for rh in out if rh.hits]

    def finish(self) -> list[RuleHits]:
        """The end of input: what every correlator still holds is decided."""
        out = []
        for i, live in enumerate(self.rules):
            if live.status != "ok" or live.run is None:
                continue
            try:
                schema = live.schema or self._empty_schema(live)
                hits = live.run.finish(schema)
            except Exception as e:  # noqa: BLE001
                live.fail(e)
                continue
            if hits:
                out.append(RuleHits(i, self._limited(live, hits)))
        return out

    def live_rows(self) -> set[int]:
        """The rows the correlators still hold (their documents are needed for hits still to come)."""
        rows: set[int] = set()
        for live in self.rules:
            rows |= held_rows(live.run)
        return rows

    # ---- state -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION, "fingerprint": self.fingerprint, "started": self.started,
            "rules": [{"rule_id": live.check.rule.rule_id, "status": live.status, "error": live.error,
                       "unsupported": live.unsupported, "timestamp_field": live.timestamp_field,
                       "warnings": live.warnings, "head": live.head, "late": live.late,
                       "run": live.run.to_dict() if live.run is not None else None}
                      for live in self.rules],
        }

    @classmethod
    def from_dict(cls, checks: Sequence[RuleCheck], exceptions: Sequence[ExceptionList],
                  data: dict[str, Any]) -> IncrementalHunt:
        """The stream as saved; ValueError (with the reason) for a state of another version or rule set."""
        hunt = cls(checks, exceptions)
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"the saved state is of another version ({data.get('version') if isinstance(data, dict) else '?'}"
                             f", this Trailhound writes {STATE_VERSION})")
        if data.get("fingerprint") != hunt.fingerprint:
            raise ValueError("the saved state belongs to another rule set (rules, exceptions or their parameters "
                             "changed)")
        saved = data["rules"]
        if len(saved) != len(hunt.rules):
            raise ValueError("the saved state holds another number of rules")
        if data["started"]:
            hunt._start(None, [s["timestamp_field"] for s in saved])
        for live, s in zip(hunt.rules, saved):
            if s["rule_id"] != live.check.rule.rule_id:
                raise ValueError(f"the saved state's rules differ ({s['rule_id']!r} where {live.check.rule.rule_id!r} is)")
            live.warnings, live.head, live.late = list(s["warnings"]), s["head"], s["late"]
            if s["error"] or s["unsupported"]:
                live.run, live.error, live.unsupported = None, s["error"], s["unsupported"]
                continue
            if s["run"] is not None and live.run is not None:
                live.run = _restore(live, s["run"])
        return hunt

    # ---- inside ------------------------------------------------------------------------

    def _start(self, present: frozenset[str] | None, timestamp_fields: list[str] | None = None) -> None:
        """Per rule its frame options and correlator. The timestamp_override fallback (engine.hunt) is decided by
        the first batch: a stream cannot know whether a later event carries the field."""
        from .hunt import _options

        self.started = True
        for j, live in enumerate(self.rules):
            if live.status != "ok" or live.query is None:
                continue
            try:
                if present is not None:
                    options, warnings = _options(live.check, present)
                    live.warnings.extend(warnings)
                else:
                    assert timestamp_fields is not None
                    options, _ = _options(live.check, frozenset({timestamp_fields[j]}))
                live.options, live.timestamp_field = options, options.timestamp_field
                live.kind, live.run = _kind_and_run(live.check, live.query)
            except Exception as e:  # noqa: BLE001
                live.fail(e)

    def _correlate(self, live: LiveRule, frame: pl.DataFrame) -> list[Hit]:
        run, q, options = live.run, live.query, live.options
        assert q is not None and options is not None
        shared = self._shared_filters(frame, options)
        found = self._found(live, shared)
        if not any(len(r) for r in found):
            return []  # nothing for this correlator in the batch: as an empty batch, it would change nothing
        # the correlator's candidate rows from the batch's shared filter work (engine/filter/shared.py): each
        # filter's rows are known already, so its stage flags are read from them rather than compiled again; the
        # rows of every correlator (with these frame options) are put in event order once per batch
        cand, schema = shared_candidates(q, shared, found, _correlated_fields(live), self._ordered(shared))
        live.schema = schema
        if isinstance(run, SampleRun):
            return run.feed(cand, schema)
        watermark = run.state.last_ts if isinstance(run, ThresholdRun) else run.watermark
        if watermark is not None and cand.height and cand["__ts"][0] < watermark:
            keep = cand["__ts"] >= watermark
            live.late += cand.height - int(keep.sum())
            cand = cand.filter(keep)
        return run.feed(cand, schema)

    def _add_correlated(self, frame: pl.DataFrame) -> None:
        """Every correlating rule's filters into the batch's shared work at once, so that their atoms are
        evaluated together (one pass per field) rather than rule by rule. A filter that cannot be compiled is
        left for `_correlate`, which fails its rule with the reason."""
        for live in self.rules:
            if live.status != "ok" or live.run is None or live.query is None or live.options is None:
                continue
            shared = self._shared_filters(frame, live.options)
            for f in ir.query_filters(live.query):
                try:
                    shared.add(f)
                except Exception:  # noqa: BLE001, S112 - said by _correlate, which adds it again
                    continue

    def _found(self, live: LiveRule, shared: SharedFilters) -> list[np.ndarray]:
        """The rows of the batch each of a rule's filters holds on."""
        assert live.query is not None
        filters = ir.query_filters(live.query)
        for f in filters:
            shared.add(f)
        return [shared.rows(f) for f in filters]

    def _ordered(self, shared: SharedFilters) -> tuple[pl.DataFrame, np.ndarray]:
        """The rows of the batch any correlating rule with these frame options takes, in event order with the fields
        they read (`filter.candidates.ordered_rows`), and each row's place among them; made once per batch."""
        made = self._ordered_rows.get(shared.key)
        if made is None or made[0] is not shared:
            parts: list[np.ndarray] = []
            fields: set[str] = set()
            for live in self.rules:
                if live.status != "ok" or live.run is None or live.options is None or live.options.key() != shared.key:
                    continue
                try:
                    parts.extend(self._found(live, shared))
                except Exception:  # noqa: BLE001, S112 - said by _correlate, which adds it again
                    continue
                fields |= _correlated_fields(live)
            every = union(parts, shared.height)
            ordered = ordered_rows(shared, every, fields)
            made = self._ordered_rows[shared.key] = (shared, ordered, places(ordered, shared.height))
        return made[1], made[2]

    def _shared_filters(self, frame: pl.DataFrame, options: SearchOptions) -> SharedFilters:
        """The batch's shared filter work for these frame options: one per batch (frame) and options, made here
        and passed on, as engine.hunt does for a whole load."""
        if self._shared_frame is not frame:
            self._shared_frame, self._shared, self._ordered_rows = frame, {}, {}
        key = options.key()
        work = self._shared.get(key)
        if work is None:
            work = self._shared[key] = SharedFilters(frame, options, self._compiled)
        return work

    def _events(self, members: list[int], frame: pl.DataFrame) -> list[RuleHits]:
        options = self.rules[members[0]].options
        assert options is not None
        queries = [self.rules[i].query for i in members]
        try:
            results = search_events_batch(queries, frame, options,  # type: ignore[arg-type]
                                          shared=self._shared_filters(frame, options), warn=False)
        except Exception:  # noqa: BLE001 - one by one, so that only the failing rule fails
            self._shared = {}  # a search that raised half-way may have left the shared work half done
            results = []
            for q in queries:
                try:
                    results.extend(search_events_batch([q], frame, options))  # type: ignore[list-item]
                except Exception as e:  # noqa: BLE001
                    results.append(e)  # type: ignore[arg-type]
        out = []
        for i, result in zip(members, results):
            live = self.rules[i]
            if isinstance(result, Exception):
                live.fail(result)
                continue
            if result.hits:
                out.append(RuleHits(i, self._limited(live, result.hits)))
        return out

    def _limited(self, live: LiveRule, hits: list[Hit]) -> list[Hit]:
        if live.head is None:
            return hits
        hits = hits[:live.head]
        live.head -= len(hits)
        return hits

    def _empty_schema(self, live: LiveRule) -> Schema:
        from ..sources import events_from_documents

        assert live.query is not None and live.options is not None
        return candidates(live.query, events_from_documents([{}], self.fields).frame, live.options)[1]


def _correlated_fields(live: LiveRule) -> set[str]:
    """The fields a correlator reads besides a sequence's or a sample's keys: new terms, threshold groups."""
    run = live.run
    if isinstance(run, NewTermsRun):
        return set(run.fields)
    if isinstance(run, ThresholdRun):
        return set(run.spec.fields) | {f for f, _ in run.spec.cardinality}
    if isinstance(run, (SequenceRun, SampleRun)):
        q = run.query
        stages = list(q.stages) + ([q.until] if isinstance(q, ir.SequenceQuery) and q.until is not None else [])
        return {k.path for s in stages for k in s.keys}
    return set()


def _head(query: ir.Query) -> int | None:
    """The hits `| head` pipes allow over the whole stream; UnsupportedError for `| tail`, which needs the end."""
    head = None
    for p in getattr(query, "pipes", ()):
        if p.kind != "head":
            if isinstance(query, ir.SampleQuery):
                continue
            raise UnsupportedError(f"| {p.kind} keeps the last results of the whole input; a live stream has no end")
        head = p.count if head is None else min(head, p.count)
    return head


def _kind_and_run(check: RuleCheck, query: ir.Query) -> tuple[str, Any]:
    rule = check.rule
    if rule.type == "threshold":
        if not isinstance(query, ir.EventQuery):
            raise UnsupportedError("a threshold rule counts single events")
        return "threshold", ThresholdRun(query, rule.threshold_spec())
    if rule.type == "new_terms":
        assert isinstance(query, ir.EventQuery)
        terms, history = rule.new_terms_spec()
        return "events", NewTermsRun(query, list(terms), date_math_ms(history))
    if isinstance(query, ir.SequenceQuery):
        return "sequences", SequenceRun(query)
    if isinstance(query, ir.SampleQuery):
        return "samples", SampleRun(query, SearchOptions().max_samples_per_key)
    return "events", None


def _restore(live: LiveRule, data: dict[str, Any]) -> Any:
    rule, q, run = live.check.rule, live.query, live.run
    if isinstance(run, SequenceRun):
        assert isinstance(q, ir.SequenceQuery)
        return SequenceRun.from_dict(q, data)
    if isinstance(run, SampleRun):
        assert isinstance(q, ir.SampleQuery)
        return SampleRun.from_dict(q, run.max_per_key, data)
    if isinstance(run, NewTermsRun):
        assert isinstance(q, ir.EventQuery)
        terms, history = rule.new_terms_spec()
        return NewTermsRun.from_dict(q, list(terms), date_math_ms(history), data)
    assert isinstance(run, ThresholdRun) and isinstance(q, ir.EventQuery)
    return ThresholdRun.from_dict(q, rule.threshold_spec(), data)


def held_rows(run: Any) -> set[int]:
    """The rows one correlator still holds: a later hit may be built from their documents."""
    rows: set[int] = set()
    if isinstance(run, SequenceRun):
        for slots in run.state.pending.values():
            for p in slots:
                if p is not None:
                    rows.update(p.rows)
        for c in run.state.completed:
            rows.update(c.rows)
        for c, _ in run.queue:
            rows.update(c.rows)
    elif isinstance(run, SampleRun):
        for per_key in run.rows:
            for held in per_key.values():
                rows.update(held)
    elif isinstance(run, ThresholdRun):
        rows.update(e[1] for e in run.state.events)
    return rows
