"""Incremental correlation: the stateful step after the vectorized filters, fed batch after batch.

A query's candidate rows (those matching one of its filters, in event order: `__ts`, `__tb`,
`__row`, the key fields and one boolean `__s{i}` column per stage, `__until` for a sequence's
until) arrive in time-ordered batches; each correlator keeps explicit, bounded state between
them and can save it as JSON (`to_dict`) and resume from it (`from_dict`):

    run = SequenceRun(query)
    for batch in batches:                    # each batch's rows after the previous batch's
        hits += run.feed(batch, schema)      # sequences decided by what has arrived
        saved = json.dumps(run.to_dict())    # a checkpoint, any time between batches
        run = SequenceRun.from_dict(query, json.loads(saved))
    hits += run.finish(schema)               # the end of input decides the rest

Whatever the cut points, the hits are those of one batch, in the same order (batch hunting is one
batch). A hit is reported once it is sure, and only after every earlier hit: a sequence ending in
a missing event (`![...]`) waits until maxspan has passed; a threshold execution until its time has
passed; samples, which ES orders by key and not by time, until the end. `| head`, `| tail` and
`size` apply to the whole result, so they are the caller's, after `finish`.

The state is bounded by time: a sequence's partial matches and missing-event times by maxspan, a
new_terms history by its window, a threshold's events by its lookback. Samples have no time bound
(ES samples ignore time); per key each filter keeps only the rows a sample can use.

What a batch costs is mostly Polars calls, so work is made once where it can be: a sequence's stages with the
same rows and keys (`runs=N`) are keyed once and share one frame (`_keyed_stages`); a new_terms batch of more
than `_SMALL_NEW_TERMS` rows finds its first-seen combinations by group-bys, looking at and recording the state
once per distinct combination (`NewTermsRun._first_seen`), a smaller one event by event through the state
(`_per_event`, the reference; tests/unit/test_correlation_paths.py holds them equal); a hunt's one batch
(`NewTermsRun.replay`) keeps no state.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from ..compile.schema import DATE_TYPES, Schema
from ..lang import ir
from . import checkpoint
from .missing import MissingIndex, keep_candidate
from .new_terms import NewTermsState
from .sample import build_samples
from .sequence import Completed, SequenceState
from .threshold import ThresholdSpec, ThresholdState

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

Key = tuple[Hashable, ...]

#: how many events the sequence state takes between sweeps of expired partial matches
_EXPIRE_EVERY = 4096
#: at most this many candidate rows, a sequence batch's stream is made in Python (SequenceRun._small_stream)
_SMALL_STREAM = 512


@dataclass(frozen=True)
class Hit:
    """One result: the `__row` ids of its events (None for a missing-event placeholder)."""

    rows: tuple[int | None, ...]
    join_keys: tuple[Any, ...] | None = None


class Correlator(Protocol):
    """What every run below offers (its `from_dict` takes the query, and the rule's parameters, too)."""

    def feed(self, cand: pl.DataFrame, schema: Schema) -> list[Hit]: ...

    def finish(self, schema: Schema) -> list[Hit]: ...

    def to_dict(self) -> dict[str, Any]: ...


# ---- join keys ---------------------------------------------------------------------------


def key_dtypes(stages: list[ir.Stage], schema: Schema) -> list[PolarsDataType]:
    """One dtype per key position; positions whose fields disagree compare as strings."""
    n = len(stages[0].keys)
    out: list[PolarsDataType] = []
    for i in range(n):
        dts = {d for s in stages if (d := schema.get(s.keys[i].path).inner) is not None} - {pl.Null}
        out.append(dts.pop() if len(dts) == 1 else pl.String)
    return out


def keyed(df: pl.DataFrame, stage: ir.Stage, schema: Schema, dtypes: list[PolarsDataType], cols: list[str]) -> pl.DataFrame:
    """Rows of one stage, one per distinct join-key combination (cartesian over arrays, whose values come in the
    order of their first occurrence)."""
    exprs = []
    for i, key in enumerate(stage.keys):
        info = schema.get(key.path)
        base = pl.col(key.path) if info.dtype is not None else pl.lit(None)
        if info.multi:
            if info.inner != dtypes[i]:
                base = base.list.eval(pl.element().cast(dtypes[i]))
            base = base.list.drop_nulls().list.unique(maintain_order=True)
            # an empty array is a missing key
            base = pl.when(base.list.len() > 0).then(base).otherwise(None)
        else:
            base = base.cast(dtypes[i])
        exprs.append(base.alias(f"__k{i}"))
    out = df.select([pl.col(c) for c in cols] + exprs)
    for i, key in enumerate(stage.keys):
        if schema.get(key.path).multi:
            out = out.explode(f"__k{i}")
    required = [f"__k{i}" for i, k in enumerate(stage.keys) if not k.optional]
    if required:
        out = out.drop_nulls(required)
    # an ordinal is one row's own: its combinations are distinct already (each array's values are)
    return out if "__ord" in cols else out.unique(maintain_order=True)


def _keyed_stages(cand: pl.DataFrame, stages: list[ir.Stage], schema: Schema, dtypes: list[PolarsDataType],
                  cols: list[str]) -> list[pl.DataFrame]:
    """`keyed` rows of each stage (its `__s{i}` rows), made once per distinct stage (a `runs=N` stage repeats one
    stage N times; equal stages have equal rows): those stages share one frame (the same object)."""
    made: dict[ir.Stage, pl.DataFrame] = {}
    out = []
    for i, s in enumerate(stages):
        if s not in made:
            made[s] = keyed(cand.filter(cand[f"__s{i}"]), s, schema, dtypes, cols)
        out.append(made[s])
    return out


def semi(df: pl.DataFrame, other: pl.DataFrame, keys: list[str], held: Sequence[Key] = ()) -> pl.DataFrame:
    """The rows of `df` whose key occurs in `other` or among `held` keys (from earlier batches)."""
    if not keys:
        return df if other.height or held else df.clear()
    if held:
        cols = other.select(keys)
        # strict=False: a key held from a batch whose column had another type still compares (as this one's)
        other = pl.concat([cols, pl.DataFrame([list(k) for k in held], schema=cols.schema, orient="row",
                                              strict=False)])
    return df.join(other.select(keys).unique(), on=keys, how="semi", nulls_equal=True)


def render_key(v: Any, es_type: str | None, for_sample: bool) -> Any:
    if es_type in DATE_TYPES and isinstance(v, int):
        if for_sample:
            return v // 1_000_000
        dt = datetime.fromtimestamp(v / 1e9, tz=UTC)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(v // 1_000_000) % 1000:03d}Z"
    return v


def sort_key(key: tuple) -> tuple:
    return tuple((0, "") if v is None else (1, v) if isinstance(v, str) else (1, str(v)) for v in key)


def _check_order(kind: str, watermark: int | None, cand: pl.DataFrame) -> None:
    if watermark is not None and cand.height and cand["__ts"][0] < watermark:
        raise ValueError(f"{kind}: a batch starts at {cand['__ts'][0]}, before the previous batch's last "
                         f"event ({watermark}); batches must come in event order")


# ---- sequences ---------------------------------------------------------------------------


class SequenceRun:
    """One sequence query's matching over its candidate rows, batch after batch (see the module doc)."""

    def __init__(self, query: ir.SequenceQuery) -> None:
        self.query = query
        self.stages = list(query.expanded())
        self.missing = [s.missing for s in self.stages]
        self.positive = [i for i, m in enumerate(self.missing) if not m]
        self.maxspan_ns = query.maxspan_ms * 1_000_000 if query.maxspan_ms is not None else None
        self.state = SequenceState(len(self.positive), self.maxspan_ns)
        self.next_ord = 0  # ordinal of the next candidate row, over all batches
        self.watermark: int | None = None  # the latest timestamp fed
        #: per missing stage and key, the (sorted) times of its events still able to decide a sequence
        self.absent: dict[int, dict[Key, list[int]]] = {i: {} for i, m in enumerate(self.missing) if m}
        #: completed sequences in result order, each with its verdict (None: waits for a trailing missing event)
        self.queue: list[list] = []

    def _identity(self) -> dict[str, Any]:
        return {"stages": len(self.stages), "missing": self.missing, "maxspan_ns": self.maxspan_ns,
                "keys": len(self.stages[0].keys)}

    def feed(self, cand: pl.DataFrame, schema: Schema) -> list[Hit]:
        """Correlate one batch of candidate rows (with a timestamp, in event order, after the rows
        fed before); return the sequences now sure, in result order."""
        _check_order("sequence", self.watermark, cand)
        if cand.height == 0:
            return self._release(schema)
        if not self.state.pending and not any(self.missing) and not cand[f"__s{self.positive[0]}"].any():
            # nothing can start or go on: no partial sequence is held and no row matches the first stage, so every
            # row of a later stage (or of until) would be pruned (see below); a watch batch is mostly so
            self.next_ord += cand.height
            self.watermark = cand["__ts"][-1]
            self._decide(final=False)
            return self._release(schema)
        q, stages = self.query, self.stages
        all_stages = stages + ([q.until] if q.until is not None else [])
        dtypes = key_dtypes(all_stages, schema)
        small = self._small_stream(cand, schema, dtypes, all_stages)
        if small is not None:
            self.next_ord += cand.height
            return self._correlate_stream(small, len(dtypes), cand, [], [], schema)
        cand = cand.with_row_index("__ord", offset=self.next_ord)
        self.next_ord += cand.height
        key_cols = [f"__k{i}" for i in range(len(dtypes))]
        base_cols = ["__ord", "__ts", "__row"]
        keyed_rows = _keyed_stages(cand, stages, schema, dtypes, base_cols)
        held = list(self.state.pending)  # keys with a partial match from earlier batches
        positive = self.positive
        # prune: a positive stage's rows need a key seen at the previous positive stage (or held)
        base = list(keyed_rows)
        for a, b in zip(positive, positive[1:]):
            # a stage keying the same rows as the previous one (`runs`): what that one kept, as the join would
            # (rows of X whose key is among those X kept, or held, are those X kept)
            keyed_rows[b] = keyed_rows[a] if base[b] is base[a] else semi(keyed_rows[b], keyed_rows[a], key_cols, held)
        # one part per distinct frame of rows, labelled with every stage it serves (in stage order)
        labels: dict[int, tuple[pl.DataFrame, list[int]]] = {}
        for j, i in enumerate(positive):
            labels.setdefault(id(keyed_rows[i]), (keyed_rows[i], []))[1].append(j)
        parts = [rows.with_columns(pl.lit(js, dtype=pl.List(pl.Int32)).alias("__stage")) for rows, js in labels.values()]
        if q.until is not None:
            until_rows = keyed(cand.filter(pl.col("__until")), q.until, schema, dtypes, base_cols)
            until_rows = semi(until_rows, keyed_rows[positive[0]], key_cols, held)
            parts.append(until_rows.with_columns(pl.lit([-1], dtype=pl.List(pl.Int32)).alias("__stage")))
        if len(parts) == 1:
            # keyed rows are distinct per (ordinal, key) and in ordinal order already
            stream = parts[0].select(["__ord"] + key_cols + ["__ts", "__row", "__stage"])
        else:
            stream = (
                pl.concat(parts)
                .group_by(["__ord"] + key_cols, maintain_order=True)
                .agg(pl.col("__ts").first(), pl.col("__row").first(), pl.col("__stage").explode())
                .sort("__ord", maintain_order=True)
            )
        return self._correlate_stream(stream.iter_rows(), len(key_cols), cand, keyed_rows, key_cols, schema)

    def _correlate_stream(self, stream: Iterable[tuple], nkeys: int, cand: pl.DataFrame, keyed_rows: list[pl.DataFrame],
                          key_cols: list[str], schema: Schema) -> list[Hit]:
        """Feed the state with the batch's stream rows: (ordinal, *key, ts, row, stages) in ordinal order."""
        state, done, ts = self.state, [], None
        for i, row in enumerate(stream):
            o, ts, r, st = row[0], row[1 + nkeys], row[2 + nkeys], row[3 + nkeys]
            state.feed(o, ts, tuple(row[1:1 + nkeys]), [s for s in st if s >= 0], -1 in st, r)
            if self.maxspan_ns is not None and i % _EXPIRE_EVERY == _EXPIRE_EVERY - 1:
                state.expire(ts)
                done.extend(state.take_completed())
        done.extend(state.take_completed())
        self.watermark = cand["__ts"][-1]
        if self.maxspan_ns is not None:
            state.expire(self.watermark)
        self._add_absent(keyed_rows, key_cols)
        done.sort(key=lambda c: (c.events[-1], sort_key(c.key)))
        self.queue.extend([c, None] for c in done)
        self._decide(final=False)
        return self._release(schema)

    def _small_stream(self, cand: pl.DataFrame, schema: Schema, dtypes: list[PolarsDataType],
                      all_stages: list[ir.Stage]) -> list[tuple] | None:
        """The stream `feed` makes with Polars, made in Python for a few candidate rows (a watch batch's: a dozen
        Polars calls per rule and batch cost more than the matching), where it is the same by construction: scalar
        keys of one integer, string or boolean type across stages (no cast, no array), keys held of that type too,
        and no missing stage. None: the Polars way decides."""
        if cand.height > _SMALL_STREAM or any(self.missing):
            return None
        kinds: list[type] = []
        for d in dtypes:
            if d == pl.String:
                kinds.append(str)
            elif d == pl.Boolean:
                kinds.append(bool)
            elif d.is_integer():
                kinds.append(int)
            else:
                return None
        for s in all_stages:
            for i, k in enumerate(s.keys):
                info = schema.get(k.path)
                if info.dtype is not None and (info.multi or info.dtype != dtypes[i]):
                    return None
        held = self.state.pending
        for key in held:
            if any(v is not None and type(v) is not t for v, t in zip(key, kinds)):
                return None
        h = cand.height
        ords = range(self.next_ord, self.next_ord + h)
        times, row_ids = cand["__ts"].to_list(), cand["__row"].to_list()
        columns: dict[str, list] = {}

        def column(path: str) -> list:
            if path not in columns:
                columns[path] = cand[path].to_list() if schema.get(path).dtype is not None else [None] * h
            return columns[path]

        def keyed_rows(stage: ir.Stage, flags: list) -> list[tuple]:
            values = [column(k.path) for k in stage.keys]
            required = [i for i, k in enumerate(stage.keys) if not k.optional]
            out = []
            for j in range(h):
                if flags[j]:
                    key = tuple(v[j] for v in values)
                    if all(key[i] is not None for i in required):
                        out.append((ords[j], key, times[j], row_ids[j]))
            return out

        def semi(rows: list[tuple], other: list[tuple]) -> list[tuple]:
            if not dtypes:
                return rows if other or held else []
            keys = {r[1] for r in other}
            return [r for r in rows if r[1] in keys or r[1] in held]

        stages = self.stages
        per_stage = [keyed_rows(st, cand[f"__s{i}"].to_list()) for i, st in enumerate(stages)]
        positive = self.positive
        for a, b in zip(positive, positive[1:]):
            per_stage[b] = semi(per_stage[b], per_stage[a])
        parts = [(j, per_stage[i]) for j, i in enumerate(positive)]
        if self.query.until is not None:
            until = keyed_rows(self.query.until, cand["__until"].to_list())
            parts.append((-1, semi(until, per_stage[positive[0]])))
        groups: dict[tuple, list] = {}
        for label, rows in parts:
            for o, key, t, r in rows:
                g = groups.get((o, key))
                if g is None:
                    groups[(o, key)] = [o, key, t, r, [label]]
                else:
                    g[4].append(label)
        ordered = sorted(groups.values(), key=lambda g: g[0])
        return [(g[0], *g[1], g[2], g[3], g[4]) for g in ordered]

    def finish(self, schema: Schema) -> list[Hit]:
        """The end of input: every sequence still waiting is decided."""
        self._decide(final=True)
        return self._release(schema)

    def _add_absent(self, keyed_rows: list[pl.DataFrame], key_cols: list[str]) -> None:
        nkeys = len(key_cols)
        for i, per_key in self.absent.items():
            rows = keyed_rows[i]
            if rows.height == 0:
                continue
            groups = (rows.group_by(key_cols, maintain_order=True).agg(pl.col("__ts")).iter_rows() if nkeys
                      else [(rows["__ts"].to_list(),)])
            for g in groups:
                times = per_key.setdefault(tuple(g[:nkeys]), [])
                times.extend(sorted(g[nkeys]))  # after the earlier batches' times: still sorted

    def _decide(self, final: bool) -> None:
        trailing = bool(self.missing) and self.missing[-1]
        index = MissingIndex(self.absent) if any(self.missing) else None  # self.absent is not changed in the loop
        waiting_from = None
        for entry in self.queue:
            if entry[1] is not None:
                continue
            c: Completed = entry[0]
            if index is None:
                entry[1] = True
                continue
            assert self.maxspan_ns is not None  # the parser requires a maxspan with missing stages
            if trailing and not final and self.watermark is not None and self.watermark <= c.start_ts + self.maxspan_ns:
                # a later event of the trailing missing stage, within maxspan, may still discard it
                waiting_from = c.start_ts if waiting_from is None else min(waiting_from, c.start_ts)
            else:
                entry[1] = keep_candidate(self.missing, c.times, c.key, index, self.maxspan_ns)
        if self.absent and self.watermark is not None and not final:
            assert self.maxspan_ns is not None  # missing stages (self.absent) come with a maxspan
            self._forget_absent(self.watermark - self.maxspan_ns if waiting_from is None
                                else min(waiting_from, self.watermark - self.maxspan_ns))

    def _forget_absent(self, first_start: int) -> None:
        """Drop missing-stage times older than maxspan before any sequence yet to be decided starts:
        such a time decides as no event would (see missing.keep_candidate)."""
        assert self.maxspan_ns is not None
        cutoff = first_start - self.maxspan_ns
        for per_key in self.absent.values():
            for key in list(per_key):
                times = per_key[key]
                if times[0] < cutoff:
                    j = bisect.bisect_left(times, cutoff)
                    if j == len(times):
                        del per_key[key]
                    else:
                        del times[:j]

    def _release(self, schema: Schema) -> list[Hit]:
        """The decided prefix of the queue, as hits (kept sequences only)."""
        n = 0
        while n < len(self.queue) and self.queue[n][1] is not None:
            n += 1
        if not n:
            return []
        ready, self.queue = self.queue[:n], self.queue[n:]
        key_types = [schema.get(k.path).es_type for k in self.stages[0].keys]
        hits = []
        for c, keep in ready:
            if keep:
                it = iter(c.rows)
                rows = tuple(None if m else next(it) for m in self.missing)
                hits.append(Hit(rows, tuple(render_key(v, t, False) for v, t in zip(c.key, key_types))))
        return hits

    def expire_at(self, clock: int) -> None:
        """Drop what a watermark of `clock` lets go (partial matches older than maxspan, missing-stage times no
        sequence can still use), as a batch ending at `clock` drops them: for a correlator that sees part of the
        rule's keys (spark/keyed.py), woken at the clock of the rule's correlator over all of them."""
        if self.maxspan_ns is None:
            return
        self.state.expire(clock)
        if any(self.absent.values()):
            self._forget_absent(clock - self.maxspan_ns)

    def deadline(self) -> int | None:
        """The rule time (ns) after which something this correlator holds expires (`expire_at` a clock past it drops
        it); None when nothing ever does (no maxspan)."""
        if self.maxspan_ns is None:
            return None
        span = self.maxspan_ns
        due = [p.start_ts + span for slots in self.state.pending.values() for p in slots if p is not None]
        due += [times[0] + 2 * span for per_key in self.absent.values() for times in per_key.values() if times]
        return min(due) if due else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **checkpoint.header("sequence", **self._identity()),
            "state": self.state.to_dict(), "next_ord": self.next_ord, "watermark": self.watermark,
            "absent": [[i, [[checkpoint.value_out(k), t] for k, t in per_key.items()]]
                       for i, per_key in self.absent.items()],
            "queue": [[c.to_list(), keep] for c, keep in self.queue],
        }

    @classmethod
    def from_dict(cls, query: ir.SequenceQuery, data: dict[str, Any]) -> SequenceRun:
        run = cls(query)
        checkpoint.check(data, "sequence", **run._identity())
        run.state = SequenceState.from_dict(data["state"])
        run.next_ord, run.watermark = data["next_ord"], data["watermark"]
        for i, per_key in data["absent"]:
            run.absent[i] = {checkpoint.key_in(k): list(t) for k, t in per_key}
        run.queue = [[Completed.from_list(c), keep] for c, keep in data["queue"]]
        return run


# ---- samples -----------------------------------------------------------------------------


class SampleRun:
    """One sample query over its candidate rows, batch after batch. Samples are ordered by key and
    take events in input order, not time, so they are all made at `finish()`. Per key, each filter
    keeps only its first `max_per_key + filters - 1` rows (by `__row`): the first N samples of a key
    never use a later one (among the earlier rows of that filter, at most filters - 1 are taken by
    the sample's other events and the rest each make a sample of their own that comes first)."""

    def __init__(self, query: ir.SampleQuery, max_per_key: int) -> None:
        self.query = query
        self.stages = list(query.stages)
        self.max_per_key = max_per_key
        self.cap = max_per_key + len(self.stages) - 1
        self.rows: list[dict[Key, list[int]]] = [{} for _ in self.stages]  # per filter: key → sorted rows

    def _identity(self) -> dict[str, Any]:
        return {"stages": len(self.stages), "keys": len(self.stages[0].keys), "max_per_key": self.max_per_key}

    def feed(self, cand: pl.DataFrame, schema: Schema, prune: bool = False) -> list[Hit]:
        """Take one batch of candidate rows (`__row`, key fields, `__s{i}`); samples come at finish().
        `prune` (for one batch with no state before it): drop keys that some filter lacks."""
        dtypes = key_dtypes(self.stages, schema)
        key_cols = [f"__k{i}" for i in range(len(dtypes))]
        per_stage = [keyed(cand.filter(pl.col(f"__s{i}")), s, schema, dtypes, ["__row"])
                     for i, s in enumerate(self.stages)]
        if prune:
            for i in range(len(per_stage)):
                for j in range(len(per_stage)):
                    if i != j:
                        per_stage[i] = semi(per_stage[i], per_stage[j], key_cols)
        nkeys = len(key_cols)
        for mine, rows in zip(self.rows, per_stage):
            if rows.height == 0:
                continue
            groups = (rows.sort("__row").group_by(key_cols, maintain_order=True).agg(pl.col("__row").head(self.cap))
                      .iter_rows() if nkeys else [(rows["__row"].sort().head(self.cap).to_list(),)])
            for g in groups:
                key, new = tuple(g[:nkeys]), g[nkeys]
                held = mine.get(key)
                if held is None:
                    mine[key] = list(new)
                else:
                    held.extend(new)
                    held.sort()
                    del held[self.cap:]
        return []

    def finish(self, schema: Schema) -> list[Hit]:
        key_types = [schema.get(k.path).es_type for k in self.stages[0].keys]
        samples = build_samples(self.rows, self.max_per_key)
        return [Hit(tuple(rows), tuple(render_key(v, t, True) for v, t in zip(key, key_types)))
                for key, rows in samples]

    def to_dict(self) -> dict[str, Any]:
        return {**checkpoint.header("sample", **self._identity()),
                "rows": [[[checkpoint.value_out(k), r] for k, r in per_key.items()] for per_key in self.rows]}

    @classmethod
    def from_dict(cls, query: ir.SampleQuery, max_per_key: int, data: dict[str, Any]) -> SampleRun:
        run = cls(query, max_per_key)
        checkpoint.check(data, "sample", **run._identity())
        run.rows = [{checkpoint.key_in(k): list(r) for k, r in per_key} for per_key in data["rows"]]
        return run


# ---- new_terms ---------------------------------------------------------------------------


class NewTermsRun:
    """One new_terms rule's first-seen replay over its matching rows, batch after batch."""

    def __init__(self, query: ir.EventQuery, fields: list[str], history_ms: int) -> None:
        self.query, self.fields = query, list(fields)
        self.state = NewTermsState(history_ms * 1_000_000)
        self.watermark: int | None = None

    def feed(self, cand: pl.DataFrame, schema: Schema) -> list[Hit]:
        """One batch of the rule's matching rows (with a timestamp, in event order); the events that
        bring a new term, each hit's join_keys its new terms (flattened)."""
        return self._feed(cand, schema, True)

    def replay(self, cand: pl.DataFrame, schema: Schema) -> list[Hit]:
        """`feed` of the last batch, with nothing after it (a hunt's one batch): the same hits, but the state is
        not brought up to date (recording tens of thousands of terms costs more than finding the new ones), so the
        run takes no further batch."""
        hits = self._feed(cand, schema, False)
        self.watermark = _SPENT
        return hits

    def _feed(self, cand: pl.DataFrame, schema: Schema, keep: bool) -> list[Hit]:
        if self.watermark == _SPENT:
            raise ValueError("new_terms: this run replayed its last batch; it takes no more")
        _check_order("new_terms", self.watermark, cand)
        if cand.height == 0:
            return []
        stage = ir.Stage(self.query.filter, tuple(ir.Field(f) for f in self.fields))
        dtypes = key_dtypes([stage], schema)
        key_cols = [f"__k{i}" for i in range(len(self.fields))]
        rows = keyed(cand.with_row_index("__ord"), stage, schema, dtypes, ["__ord", "__ts", "__row"])
        # the group-bys need the engine's own state; a stand-in (a Spark part's, which sees only its part's
        # combinations and notes where each new one stands) is fed event by event, as it expects
        vectorized = (rows.height > _SMALL_NEW_TERMS and type(self.state) is NewTermsState
                      and _groups_as_python(dtypes, rows))
        hits = self._first_seen(rows, key_cols, keep) if vectorized else self._per_event(rows, key_cols)
        self.watermark = cand["__ts"][-1]
        if keep:
            self.state.expire(self.watermark)
        return hits

    def _first_seen(self, rows: pl.DataFrame, key_cols: list[str], keep: bool = True) -> list[Hit]:
        """`_per_event`'s hits and state, with the per-event replay done by group-bys: a term combination is new at
        an event when the previous event with it (in event order: this batch's, else the state's time) is more than
        the history window before it, or there is none. Only the batch's first occurrences of its combinations look
        at the state, and only the last one of each is recorded there (unless `keep` is False: nothing follows)."""
        state, history = self.state, self.state.history_ns
        if rows.height == 0:
            return []
        times = rows["__ts"].to_numpy()
        # each combination's previous time: rows sorted by combination (stable: in event order within one), the
        # previous row's time where it has the same combination (a window `over` the terms costs four times this)
        same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in key_cols])
        by_term = (rows.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("__i"), "__ts", *key_cols)
                   .sort(key_cols, maintain_order=True)
                   .select("__i", pl.when(same).then(pl.col("__ts").shift(1)).alias("__prev")))
        at = by_term["__i"].to_numpy()
        prev = by_term["__prev"]
        first = np.empty(rows.height, dtype=bool)
        first[at] = prev.is_null().to_numpy()
        before = np.empty(rows.height, dtype=np.int64)
        before[at] = prev.fill_null(0).to_numpy()
        new = first | (times - before > history)
        if state.last_seen:
            at = np.flatnonzero(first)
            for j, term in zip(at.tolist(), rows[at].select(key_cols).iter_rows()):
                seen = state.last_seen.get(term)
                if seen is not None and int(times[j]) - seen <= history:
                    new[j] = False
        if keep:
            last = rows.group_by(key_cols, maintain_order=True).agg(pl.col("__ts").last())
            state.last_seen.update(zip(last.select(key_cols).rows(), last["__ts"].to_list()))
        picked = rows.filter(pl.Series(new))
        if picked.height == 0:
            return []
        ords, row_ids = picked["__ord"].to_numpy(), picked["__row"].to_list()
        terms = picked.select(key_cols).rows()
        if picked.height == 1 or bool((ords[1:] != ords[:-1]).all()):  # one new combination per event: most often
            return [Hit((r,), t) for r, t in zip(row_ids, terms)]
        hits: list[Hit] = []
        bounds = np.flatnonzero(ords[1:] != ords[:-1]) + 1
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(terms)]):
            hits.append(Hit((row_ids[lo],), tuple(v for t in terms[lo:hi] for v in t)))
        return hits

    def _per_event(self, rows: pl.DataFrame, key_cols: list[str]) -> list[Hit]:
        """The first-seen replay event by event through the state (the reference `_first_seen` equals)."""
        per_event = rows.group_by(["__ord", "__ts", "__row"], maintain_order=True).agg(
            pl.struct(key_cols).alias("__terms")).sort("__ord")
        state = self.state
        hits = []
        for i, (_, ts, row, terms) in enumerate(per_event.iter_rows()):
            new = state.feed(ts, [tuple(t[c] for c in key_cols) for t in terms])
            if new:
                hits.append(Hit((row,), tuple(v for t in new for v in t)))
            if i % _EXPIRE_EVERY == _EXPIRE_EVERY - 1:
                state.expire(ts)
        return hits

    def finish(self, schema: Schema) -> list[Hit]:
        return []

    def expire_at(self, clock: int) -> None:
        """Drop the terms a watermark of `clock` lets go (last seen longer than the history window before it), as a
        batch ending at `clock` drops them (see SequenceRun.expire_at)."""
        self.state.expire(clock)

    def deadline(self) -> int | None:
        """The rule time (ns) after which a term this correlator holds expires; None when it holds none."""
        seen = self.state.last_seen
        return min(seen.values()) + self.state.history_ns if seen else None

    def to_dict(self) -> dict[str, Any]:
        return {**checkpoint.header("new_terms", fields=self.fields), "state": self.state.to_dict(),
                "watermark": self.watermark}

    @classmethod
    def from_dict(cls, query: ir.EventQuery, fields: list[str], history_ms: int, data: dict[str, Any]) -> NewTermsRun:
        run = cls(query, fields, history_ms)
        checkpoint.check(data, "new_terms", fields=run.fields)
        run.state = NewTermsState.from_dict(data["state"])
        if run.state.history_ns != history_ms * 1_000_000:
            raise ValueError("new_terms checkpoint: it was saved with another history window")
        run.watermark = data["watermark"]
        return run



#: the watermark of a NewTermsRun after `replay`
_SPENT = 2**63

#: at most this many (event, combination) rows, new_terms replays event by event (`NewTermsRun._per_event`): for a
#: watch micro-batch its few Polars calls cost less than the group-bys' (about 500 rows break even)
_SMALL_NEW_TERMS = 512


def _groups_as_python(dtypes: list[PolarsDataType], rows: pl.DataFrame) -> bool:
    """Whether Polars groups these term columns as Python's dict compares their values: strings, integers and
    booleans do (floats differ: NaN, -0.0), and every time is there, their differences within 64 bits."""
    for d in dtypes:
        if not (d == pl.String or d == pl.Boolean or d == pl.Categorical or d.is_integer()):
            return False
    if rows.height == 0:
        return True
    if rows["__ts"].null_count():
        return False
    lo, hi = rows["__ts"].min(), rows["__ts"].max()
    return isinstance(lo, int) and isinstance(hi, int) and hi - lo < 2**62


# ---- threshold ---------------------------------------------------------------------------


class ThresholdRun:
    """One threshold rule's replay on Kibana's schedule over its matching rows, batch after batch:
    an execution is run once its time has passed (engine/threshold.py)."""

    def __init__(self, query: ir.EventQuery, spec: ThresholdSpec) -> None:
        self.query, self.spec = query, spec
        self.state = ThresholdState(spec)

    def feed(self, cand: pl.DataFrame, schema: Schema) -> list[Hit]:
        """One batch of the rule's matching rows (with a timestamp, in event order, with the threshold
        and cardinality fields); each hit's rows are the events counted, its join_keys the group."""
        _check_order("threshold", self.state.last_ts, cand)
        return [Hit(h.rows, h.group) for h in self.state.feed(self._events(cand, schema))]

    def finish(self, schema: Schema) -> list[Hit]:
        return [Hit(h.rows, h.group) for h in self.state.finish()]

    def _events(self, cand: pl.DataFrame, schema: Schema) -> list[tuple[int, int, Key, tuple]]:
        spec = self.spec
        card_fields = [f for f, _ in spec.cardinality]
        stage = ir.Stage(self.query.filter, tuple(ir.Field(f) for f in spec.fields))
        rows = keyed(cand.with_row_index("__ord"), stage, schema, key_dtypes([stage], schema),
                     ["__ord", "__ts", "__row"] + [f for f in card_fields if f in cand.columns])
        key_cols = [f"__k{i}" for i in range(len(spec.fields))]
        events = []
        for row in rows.sort("__ord", maintain_order=True).iter_rows(named=True):
            card = tuple(_scalar(row.get(f)) for f in card_fields)
            events.append((row["__ts"], row["__row"], tuple(row[k] for k in key_cols), card))
        return events

    def to_dict(self) -> dict[str, Any]:
        return {**checkpoint.header("threshold"), "state": self.state.to_dict()}

    @classmethod
    def from_dict(cls, query: ir.EventQuery, spec: ThresholdSpec, data: dict[str, Any]) -> ThresholdRun:
        checkpoint.check(data, "threshold")
        run = cls(query, spec)
        run.state = ThresholdState.from_dict(spec, data["state"])
        return run


def _scalar(v):
    return tuple(v) if isinstance(v, list) else v
