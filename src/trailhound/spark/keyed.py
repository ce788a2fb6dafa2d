"""The correlators' state partitioned by key, for `watch --engine spark`: what runs in Spark's keyed state store.

A sequence whose stages (and `until`) all join on the same fields, without pipes and without a trailing missing
stage, a sample whose filters all join on the same fields, and a new_terms rule, depend per key on that key's
events only: a sequence's partial matches and missing-event times are kept per join key, a sample's rows per
filter and key (its samples are made per key at the end, `finish_key`, and ordered by key), a first-seen
history per combination of the term values. So each
such rule's candidate rows are split by key (`split`), and each key's rows go, batch after batch, through the
incremental engine's own correlator for that key alone (`run_key`: `engine.correlate.SequenceRun` or
`SampleRun` or `NewTermsRun`, fed the key's rows, saved with `to_dict` and restored with `from_dict`), with the documents of
the rows it still holds. Spark keeps that state per (rule, key) in its state store (`applyInPandasWithState`)
and checkpoints it; the driver holds none of it. `merge` puts the keys' hits back in the order one correlator
over all the keys releases them, so the alerts are those of `watch` and `hunt`.

Bounded state: a first-seen term is dropped once the rule's clock (its correlator's watermark: the time of the last
candidate row it took, over all keys) has passed the history window after the term was last seen, a sequence's
partial match once it has passed maxspan after the match began (a missing stage's times, twice maxspan), exactly
as the local correlator over all keys drops them (`expire`, at the batch where the rule's clock passes). A key
with rows in the batch is expired at the rule's clock after its rows; an idle key is woken by Spark's event-time
timeout: each key sets as its timeout the rule time after which its state next changes (`deadline`), and the
keyed query's event-time watermark is the latest of the keyed rules' clocks (`clock`), never behind any rule's
clock, so an idle key is woken no later than the batch where its rule's clock passes. It may be woken earlier
(another rule's clock is ahead): it then expires at its own rule's clock, keeps what is still in the window, and
waits for the next batch. A key whose state is empty is removed from the store. Samples have no time bound (ES
samples ignore time), and neither has a sequence without maxspan: their keys set no timeout.

Why these rules and not others: a sequence with a trailing missing stage (`![...]` last) is decided when time
has passed for the whole stream, not for its key (a key's correlator sees only its own events); `| head` counts
over all keys; a threshold rule runs on
Kibana's schedule, one execution at a time over every group, with a signal history shared by the executions.
Those stay in the driver (spark/stream.py), as do event rules (stateless) and the process tree (which needs
every file of a host in event order).

Nothing here imports pyspark: the driver (spark/stream.py) builds the Spark query around these functions.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..engine.correlate import Hit, NewTermsRun, SampleRun, SequenceRun, _check_order, sort_key
from ..engine.sample import key_order
from ..lang import ir

if TYPE_CHECKING:
    import polars as pl

    from ..compile.schema import Schema
    from ..engine.incremental import LiveRule

#: the rows the driver writes for each micro-batch: per (rule, key) the key's candidate rows of the batch, the rule's
#: clock (`wm`, ns: its correlator's watermark after the batch) and the stream's clock (`clock`, µs: the latest of
#: the keyed rules' clocks, the keyed query's event time); one row of rule CLOCK carries the clock alone
UNITS_SCHEMA = "batch long, rule int, key string, payload binary, types binary, es string, wm long, clock long"
#: the rule number of the one clock row of each units file (no rule, no state)
CLOCK = -1
#: `wm` of a rule without a clock (samples), and of the clock row (a null would make the column floats in pandas)
NO_CLOCK = -(2**63)
#: what the keyed step gives back: per (rule, key) the hits of the batch, as JSON
HITS_SCHEMA = "batch long, rule int, key string, hits string"
#: the state Spark keeps per (rule, key): the correlator's to_dict and the documents of the rows it holds, as JSON
STATE_SCHEMA = "state string"

#: columns the driver adds to a key's candidate rows: the row's document, its place in the batch, and (new_terms)
#: the place of its term combination among the row's combinations
DOC, POS, COMBO = "__keyed_doc", "__keyed_pos", "__keyed_combo"


@dataclass(frozen=True)
class KeyedSpec:
    """What a task needs to rebuild one keyed rule's correlator."""

    index: int  # the rule's place among IncrementalHunt.rules
    kind: str  # "sequence", "sample" or "new_terms"
    query: ir.Query
    terms: tuple[str, ...] = ()
    history_ms: int = 0

    def new_run(self) -> Any:
        if self.kind == "sequence":
            assert isinstance(self.query, ir.SequenceQuery)
            return SequenceRun(self.query)
        if self.kind == "sample":
            assert isinstance(self.query, ir.SampleQuery)
            return SampleRun(self.query, _max_per_key())
        assert isinstance(self.query, ir.EventQuery)
        return NewTermsRun(self.query, list(self.terms), self.history_ms)

    def restore(self, data: dict[str, Any]) -> Any:
        if self.kind == "sequence":
            assert isinstance(self.query, ir.SequenceQuery)
            return SequenceRun.from_dict(self.query, data)
        if self.kind == "sample":
            assert isinstance(self.query, ir.SampleQuery)
            return SampleRun.from_dict(self.query, _max_per_key(), data)
        assert isinstance(self.query, ir.EventQuery)
        return NewTermsRun.from_dict(self.query, list(self.terms), self.history_ms, data)

    def stage(self) -> ir.Stage:
        """A stage whose keys are the rule's split keys: every key optional, so that no row is dropped here (the
        key's correlator drops what it would drop over all keys)."""
        if self.kind in ("sequence", "sample"):
            assert isinstance(self.query, (ir.SequenceQuery, ir.SampleQuery))
            first = self.query.stages[0]
            return ir.Stage(first.filter, tuple(ir.Field(k.path, True) for k in first.keys))
        assert isinstance(self.query, ir.EventQuery)
        return ir.Stage(self.query.filter, tuple(ir.Field(f) for f in self.terms))

    def stages(self) -> list[ir.Stage]:
        """The stages whose keys decide the key types (as the correlator decides them)."""
        if self.kind == "sequence":
            assert isinstance(self.query, ir.SequenceQuery)
            q = self.query
            return list(q.expanded()) + ([q.until] if q.until is not None else [])
        if self.kind == "sample":
            assert isinstance(self.query, ir.SampleQuery)
            return list(self.query.stages)
        return [self.stage()]


def keyed_spec(index: int, live: LiveRule) -> KeyedSpec | None:
    """The rule's KeyedSpec when its state can be split by key (see the module doc), else None."""
    from ..rules.model import date_math_ms

    if live.status != "ok" or live.query is None:
        return None
    q, run = live.query, live.run
    if type(run) is NewTermsRun and isinstance(q, ir.EventQuery):
        terms, history = live.check.rule.new_terms_spec()
        return KeyedSpec(index, "new_terms", q, tuple(terms), date_math_ms(history))
    if type(run) is SampleRun and isinstance(q, ir.SampleQuery) and not q.pipes and live.head is None:
        paths = [tuple(k.path for k in s.keys) for s in q.stages]
        if paths[0] and all(p == paths[0] for p in paths) and len(set(paths[0])) == len(paths[0]):
            return KeyedSpec(index, "sample", q)
        return None
    if type(run) is not SequenceRun or not isinstance(q, ir.SequenceQuery) or q.pipes or live.head is not None:
        return None
    stages = list(q.expanded()) + ([q.until] if q.until is not None else [])
    paths = [tuple(k.path for k in s.keys) for s in stages]
    if not paths[0] or any(p != paths[0] for p in paths) or len(set(paths[0])) != len(paths[0]):
        return None
    if stages[len(q.expanded()) - 1].missing:
        return None  # decided once time has passed over the whole stream, not a key's
    return KeyedSpec(index, "sequence", q)


def _stash(run: Any, cand: pl.DataFrame, schema: Schema) -> list[Hit]:
    """What the driver's stand-in for a keyed rule's correlator does with a batch's candidate rows: it keeps the
    watermark (so that late rows are left out exactly as by one correlator) and keeps the rows, with their
    documents, for the keyed step instead of correlating them."""
    if not isinstance(run, SampleRun):  # samples take events in any order
        _check_order("keyed", run.watermark, cand)
    if cand.height:
        if not isinstance(run, SampleRun):
            run.watermark = cand["__ts"][-1]
        run.batches.append((cand, schema, [run.docs(r) for r in cand["__row"].to_list()]))
    return []


class StashedSequence(SequenceRun):
    """A keyed sequence rule's stand-in in the driver's IncrementalHunt (see `_stash`)."""

    docs: Any  # row → document bytes at feed time (the pipeline's store)
    batches: list

    def feed(self, cand: pl.DataFrame, schema: Schema) -> list[Hit]:
        return _stash(self, cand, schema)


class StashedSample(SampleRun):
    """A keyed sample rule's stand-in in the driver's IncrementalHunt (see `_stash`)."""

    docs: Any
    batches: list

    def feed(self, cand: pl.DataFrame, schema: Schema, prune: bool = False) -> list[Hit]:
        return _stash(self, cand, schema)


class StashedNewTerms(NewTermsRun):
    """A keyed new_terms rule's stand-in in the driver's IncrementalHunt (see `_stash`)."""

    docs: Any
    batches: list

    def feed(self, cand: pl.DataFrame, schema: Schema) -> list[Hit]:
        return _stash(self, cand, schema)


def stand_in(spec: KeyedSpec, run: Any, docs) -> Any:
    """The driver's stand-in for `run` (a fresh or restored correlator of `spec`'s rule), with its watermark."""
    out: Any
    if spec.kind == "sequence":
        assert isinstance(spec.query, ir.SequenceQuery)
        out = StashedSequence(spec.query)
    elif spec.kind == "sample":
        assert isinstance(spec.query, ir.SampleQuery)
        out = StashedSample(spec.query, _max_per_key())
        out.docs, out.batches = docs, []
        return out
    else:
        assert isinstance(spec.query, ir.EventQuery)
        out = StashedNewTerms(spec.query, list(spec.terms), spec.history_ms)
    out.watermark, out.docs, out.batches = run.watermark, docs, []
    return out


# ---- the driver: split a batch's candidates by key; merge the keys' hits ---------------------------------


def split(spec: KeyedSpec, batch: int, stashed: list, wm: int,
          clock: int) -> list[tuple[int, int, str, bytes, bytes, str, int, int]]:
    """A rule's stashed candidate frames of one micro-batch as units of UNITS_SCHEMA: per key its rows (a row with
    arrays in a key field goes to each of its keys, the field narrowed to that key's value, as the correlator
    explodes it), with their documents and places in the batch, the rule's clock `wm` and the stream's `clock`."""
    import polars as pl

    from ..engine.correlate import key_dtypes, keyed
    from .tasks import to_ipc

    stage = spec.stage()
    units: dict[str, list] = {}
    types_es: tuple[bytes, str] | None = None
    for n, (cand, schema, docs) in enumerate(stashed):
        dtypes = key_dtypes(spec.stages(), schema)
        nkeys = len(stage.keys)
        cols = [f"__k{i}" for i in range(nkeys)]
        member = keyed(cand.with_row_index("__i"), stage, schema, dtypes, ["__i"]).with_row_index("__m")
        paths = [k.path for k in stage.keys]
        multi = [schema.get(p).multi for p in paths]
        types_es = schema_payload(spec, schema)
        with_docs = cand.with_columns(pl.Series(DOC, docs, dtype=pl.Binary),
                                      (pl.int_range(0, cand.height, dtype=pl.Int64) + (n << 32)).alias(POS))
        for key, group in member.group_by(cols, maintain_order=True):
            rows = with_docs[group["__i"].to_list()].with_columns(group["__m"].cast(pl.Int64).alias(COMBO))
            narrowed = [pl.lit(None if v is None else [v], dtype=schema.get(p).dtype).alias(p)
                        for p, v, m in zip(paths, key, multi) if m]
            if narrowed:
                rows = rows.with_columns(narrowed)
            units.setdefault(_key_text(key), []).append(rows)
    assert types_es is not None
    return [(batch, spec.index, key, to_ipc(pl.concat(parts)), types_es[0], types_es[1], wm, clock)
            for key, parts in units.items()]


def schema_payload(spec: KeyedSpec, schema: Schema) -> tuple[bytes, str]:
    """What a task needs of a batch's schema for this rule: its key fields' types (an empty frame as Arrow IPC) and
    Elasticsearch types (JSON)."""
    import polars as pl

    from .tasks import to_ipc

    fields = {p: schema.get(p) for p in _fields(spec) if schema.get(p).dtype is not None}
    return (to_ipc(pl.DataFrame(schema={p: f.dtype for p, f in fields.items()})),
            orjson.dumps({p: f.es_type for p, f in fields.items()}).decode())


def _schema(types: bytes, es: str) -> Schema:
    from ..compile.schema import FieldInfo, Schema
    from .tasks import from_ipc

    es_types = orjson.loads(es)
    return Schema({n: FieldInfo(n, dt, es_types.get(n)) for n, dt in from_ipc(types).schema.items()})


def merge(spec: KeyedSpec, found: list[dict]) -> list[Hit]:
    """The hits of a rule's keys in one batch, in the order one correlator over all keys releases them:
    sequences by their last event's place in the batch, then by key; samples (made at the end) by key, each
    key's in its own order; new_terms by event, one hit per event with the new combinations of its terms in the
    order the correlator makes them."""
    if spec.kind == "sample":
        found = sorted(found, key=lambda h: key_order(tuple(h["key"])))
        return [Hit(tuple(h["rows"]), tuple(h["join_keys"])) for h in found]
    if spec.kind == "sequence":
        found = sorted(found, key=lambda h: (h["pos"], sort_key(tuple(h["key"]))))
        return [Hit(tuple(h["rows"]), tuple(h["join_keys"]) if h["join_keys"] is not None else None) for h in found]
    out: list[Hit] = []
    by_pos: dict[int, list[dict]] = {}
    for h in found:
        by_pos.setdefault(h["pos"], []).append(h)
    for pos in sorted(by_pos):
        hs = sorted(by_pos[pos], key=lambda h: h["combo"])
        out.append(Hit(tuple(hs[0]["rows"]), tuple(v for h in hs for v in h["join_keys"])))
    return out


def hit_documents(found: list[dict]) -> dict[int, bytes]:
    return {int(r): base64.b64decode(d) for h in found for r, d in h["docs"]}


# ---- a task: one key's correlator, batch after batch ------------------------------------------------------


def run_key(spec: KeyedSpec, key: list, saved: str | None, units: list[tuple[int, bytes, bytes, str, int | None]],
            clock: int | None) -> tuple[str | None, list[tuple[int, str]], int | None]:
    """One key's (`key`, its values) state (STATE_SCHEMA's JSON, None for a new key) fed the key's units (batch,
    payload, types, es, the rule's clock `wm`) in batch order, the state expired at the rule's clock after each
    batch's rows; or, woken by its timeout (no units), expired at its rule's `clock`. Returns the state to keep
    (None: the correlator holds nothing, the key's state can go), per batch its hits as JSON (rows, join_keys,
    the documents of the rows, the places `merge` orders them by), and the key's `deadline` (None: nothing in it
    expires)."""
    import polars as pl

    from ..engine.incremental import held_rows
    from .tasks import from_ipc

    state = orjson.loads(saved) if saved else None
    run = spec.restore(state["run"]) if state else spec.new_run()
    docs: dict[int, str] = {int(r): d for r, d in state["docs"]} if state else {}
    out: list[tuple[int, str]] = []
    for batch, payload, types, es, wm in sorted(units, key=lambda u: u[0]):
        cand = from_ipc(payload)
        schema = _schema(types, es)
        rows = cand["__row"].to_list()
        pos = dict(zip(rows, cand[POS].to_list()))
        combo = dict(zip(rows, cand[COMBO].to_list()))
        for r, d in zip(rows, cand[DOC].to_list()):
            docs[r] = base64.b64encode(d).decode("ascii")
        hits = run.feed(cand.drop(DOC, POS, COMBO).with_columns(pl.col("__row").cast(pl.Int64)), schema)
        found = []
        for h in hits:
            held = [r for r in h.rows if r is not None]
            found.append({"rows": list(h.rows), "join_keys": None if h.join_keys is None else list(h.join_keys),
                          "pos": pos[held[-1]], "combo": combo[held[-1]], "key": key,
                          "docs": [[r, docs[r]] for r in held]})
        if found:
            out.append((batch, orjson.dumps(found).decode()))
        expire(run, wm)
    if not units:
        expire(run, clock)
    live = held_rows(run)  # the documents of expired rows are never read again
    docs = {r: d for r, d in docs.items() if r in live}
    if _empty(run):
        return None, out, None
    kept = orjson.dumps({"run": run.to_dict(), "docs": [[r, d] for r, d in docs.items()]}).decode()
    return kept, out, deadline(run)


def expire(run: Any, clock: int | None) -> None:
    """Drop what one key's correlator holds that the rule's correlator over all keys drops once its watermark is
    `clock` (their `expire_at`; samples keep everything until the end)."""
    if clock is not None and isinstance(run, (NewTermsRun, SequenceRun)):
        run.expire_at(clock)


def deadline(run: Any) -> int | None:
    """The rule time (ns) after which something in a key's state expires (`expire` at a clock past it drops it);
    None when nothing in it ever expires (samples, sequences without maxspan)."""
    return run.deadline() if isinstance(run, (NewTermsRun, SequenceRun)) else None


def timeout_ms(due: int, watermark_ms: int) -> int:
    """The event-time timeout (ms, as Spark takes it: a key times out once the watermark is past it) that wakes a
    key whose state changes once its rule's clock is past `due` (ns): the rule's clock is never ahead of the
    stream's, so a watermark past `due` is past this timeout. Not before the current watermark (Spark refuses
    one), and positive."""
    return max(due // 1_000_000 - 1, watermark_ms, 1)


def finish_key(spec: KeyedSpec, key: list, saved: str, types: bytes, es: str) -> str | None:
    """The end of input for one key of a sample rule: its samples (`SampleRun.finish`), as `run_key` gives hits."""
    state = orjson.loads(saved)
    run = spec.restore(state["run"])
    docs = {int(r): d for r, d in state["docs"]}
    found = []
    for h in run.finish(_schema(types, es)):
        held = [r for r in h.rows if r is not None]
        found.append({"rows": list(h.rows), "join_keys": None if h.join_keys is None else list(h.join_keys),
                      "pos": 0, "combo": 0, "key": key, "docs": [[r, docs[r]] for r in held]})
    return orjson.dumps(found).decode() if found else None


def _empty(run: Any) -> bool:
    """Whether the correlator holds nothing that a later event of its key could use."""
    if isinstance(run, SequenceRun):
        return not run.state.pending and not run.state.completed and not run.queue and \
            not any(run.absent.values())
    if isinstance(run, SampleRun):
        return not any(run.rows)
    return not run.state.last_seen


def _fields(spec: KeyedSpec) -> set[str]:
    return {k.path for s in spec.stages() for k in s.keys}


def _key_text(key: tuple) -> str:
    return orjson.dumps(list(key), default=str).decode()


def _max_per_key() -> int:
    from ..engine.search import SearchOptions

    return SearchOptions().max_samples_per_key
