"""The live pipeline: documents as they are read → process tree → micro-batches in event order → the rules
(`engine.incremental`) → alerts (suppression, max_signals per execution, carried across batches) → sinks.

Over any chunking of an input, the alerts written are those `pipeline.run_hunt` writes over the completed input
(same ids, same documents; a folded suppression updates an alert already written, which is written again with the
same `kibana.alert.uuid`, as Kibana updates it in place). What makes it so:

* Event order. `run_hunt` sorts every event by time; a stream holds each read event until no source can still
  give an earlier one: the watermark is the smallest, over the sources still expected to write, of the latest
  time each has given, less a reorder window (`REORDER_SECONDS`, `lateness_ns`). A source that closed or is idle
  does not hold the others back. The window is there because a file's events are not always in time order: auditd
  stamps an event when its syscall begins and writes it when the syscall returns, so an execve that takes a few
  milliseconds is written after events that began later (the lab capture has two, 4 and 8 ms behind). Within the
  window they are sorted as `run_hunt` sorts a whole load. An event older than what was already evaluated ("late":
  behind by more than the window) still goes through the event rules; the correlators, which need event order,
  count it as late and leave it out.
* Rows. A document's `__row` is (source number << 40) | its line, so events of equal time keep the order of
  `run_hunt`, which numbers rows through the inputs in order.
* The process tree is applied in event order as events are evaluated (`run_hunt` applies it file by file, so the
  two agree unless two inputs hold the same process ids at overlapping times).
* Documents. The documents of a batch are kept while rules use them, and after it only those of rows the
  correlators still hold (`IncrementalHunt.live_rows`): a later hit is built from them.

Everything is JSON values (`to_dict`/`from_dict`): the buffered events, the kept documents, the process tree, the
correlators and the alert replay, so a checkpoint between batches resumes exactly.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..alerts.build import _time, alerts_for_hits, utc_now
from ..alerts.suppression import SuppressionState
from ..engine.incremental import IncrementalHunt, LiveRule
from ..enrich import ProcessTree
from ..rules.model import Rule
from ..sinks import Sink
from ..sources.ecs_readers import dump_document, load_document
from .hunt import Plan

REORDER_SECONDS = 0.25
"""How far behind the latest event of its input an event may come and still be evaluated in time order: the
watermark trails the inputs by this much (it adds to the delay from event to alert while inputs are busy)."""

ROW_BITS = 40
"""A row id is (source << ROW_BITS) | line: a trillion lines per source, eight million sources."""


def row_id(source: int, line: int) -> int:
    return (source << ROW_BITS) | line


class AlertReplay:
    """One rule's alerts from its hits as they come: the batch path's `alerts.build.alerts_for_hits` (the one
    home of the schedule: executions, suppression, max_signals), called per micro-batch with the state it
    carries across them (the suppression windows and the count of alerts per execution). Hits come in event
    order, so an execution's count is only needed until a later execution begins (and execution 0, of events
    without a time)."""

    def __init__(self, rule: Rule, max_signals: int | None = None) -> None:
        self.rule = rule
        self.max_signals = max_signals
        self.spec = rule.suppression_spec()
        self.suppression = SuppressionState(self.spec) if self.spec else None
        self.interval = rule.interval_ns()
        self.per_execution: dict[int, int] = {}
        self.suppressed = 0
        self.over_max_signals = 0

    def alerts(self, kind: str, live: LiveRule, hits: Sequence, docs: dict[int, dict], now: str) -> list[dict]:
        """The new alerts of these hits, then the alerts a suppression fold updated (to be written again)."""
        state = self.suppression
        batch = alerts_for_hits(self.rule, kind, hits, docs, live.timestamp_field, now, self.max_signals,
                                suppression=state, per_execution=self.per_execution)
        self.suppressed += batch.suppressed
        self.over_max_signals += batch.over_max_signals
        out = batch.alerts
        per_execution = self.per_execution
        if len(per_execution) > 8:
            latest = max(per_execution)
            for e in [e for e in per_execution if e not in (0, latest)]:
                del per_execution[e]
        if state is not None:
            fresh = {id(a) for a in out}
            out.extend(a for a in state.take_changed() if id(a) not in fresh)
            if hits:  # windows that no later hit (in event order) can fall into are dropped
                last = [docs[r] for r in hits[-1].rows if r is not None]
                time_ns = max((_time(d, live.timestamp_field)[0] for d in last), default=0)
                if time_ns:
                    state.expire(time_ns, time_ns // self.interval)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"per_execution": [[e, n] for e, n in self.per_execution.items()], "suppressed": self.suppressed,
                "over_max_signals": self.over_max_signals,
                "suppression": self.suppression.to_dict() if self.suppression is not None else None}

    def restore(self, data: dict[str, Any]) -> None:
        self.per_execution = {e: n for e, n in data["per_execution"]}
        self.suppressed, self.over_max_signals = data["suppressed"], data["over_max_signals"]
        if self.spec is not None and data["suppression"] is not None:
            self.suppression = SuppressionState.from_dict(self.spec, data["suppression"])


@dataclass
class SourceState:
    """What the pipeline knows of one input: how far in time it has come, and whether more is expected soon."""

    name: str
    enrich: bool  # a non-ECS format: its documents go through the process tree, as in `load_events`
    latest: int | None = None  # the latest event time it gave (ns)
    closed: bool = False
    idle: bool = False
    events: int = 0


@dataclass
class WatchStats:
    events: int = 0  # read
    evaluated: int = 0
    batches: int = 0
    alerts: int = 0  # written (a suppression update counts again)
    late: int = 0  # events older than the watermark already passed
    errors: list[str] = field(default_factory=list)


class StreamPipeline:
    """The rules of `planned` over documents given one by one (`add`), evaluated in micro-batches (`step`)."""

    def __init__(self, planned: Plan, sinks: Sequence[Sink] = (), *, now: str | None = None,
                 max_signals: int | None = None, lateness_ns: int = int(REORDER_SECONDS * 1e9)) -> None:
        self.planned = planned
        self.sinks = list(sinks)
        self.now = now  # a fixed creation time (tests), else each batch's wall clock
        self.max_signals = max_signals
        self.lateness_ns = lateness_ns
        self.engine = IncrementalHunt(planned.runnable, planned.rules.exceptions)
        self.replays = [AlertReplay(live.check.rule, max_signals) for live in self.engine.rules]
        self.tree = ProcessTree()
        self.sources: list[SourceState] = []
        self.buffer: list[tuple[int | None, int, bytes, dict | None]] = []  # (time, row, document, its dict)
        self.store: dict[int, bytes] = {}  # row → document, for rows the correlators hold
        self.kept = 0  # live rows at the last pruning
        self.passed: int | None = None  # the watermark evaluated up to
        self.stats = WatchStats()

    # ---- input ---------------------------------------------------------------------------

    def add_source(self, name: str, enrich: bool) -> int:
        self.sources.append(SourceState(name, enrich))
        return len(self.sources) - 1

    def add(self, source: int, doc: dict, line: int) -> None:
        """One document read from `source` (at `line`), in the order the source gives them."""
        src = self.sources[source]
        ts = _event_time(doc)
        if ts is not None:
            if self.passed is not None and ts < self.passed:
                self.stats.late += 1
            if src.latest is None or ts > src.latest:
                src.latest = ts
        src.events += 1
        self.stats.events += 1
        self.buffer.append((ts, row_id(source, line), b"", doc))

    def set_enrich(self, source: int, enrich: bool) -> None:
        """Whether `source`'s documents go through the process tree (a non-ECS format, as in `load_events`)."""
        self.sources[source].enrich = enrich

    def set_idle(self, source: int, idle: bool) -> None:
        """An idle source (nothing new for a while) holds the others back no longer."""
        self.sources[source].idle = idle

    def close_source(self, source: int) -> None:
        """No more events will come from `source`: it no longer holds the others back."""
        self.sources[source].closed = True

    def watermark(self) -> int | None:
        """Events before this time can be evaluated (None: none can yet)."""
        waiting = [s for s in self.sources if not s.closed and not s.idle]
        if not waiting:
            return _FOREVER
        if any(s.latest is None for s in waiting):
            return None
        return min(s.latest for s in waiting if s.latest is not None) - self.lateness_ns

    # ---- evaluation ----------------------------------------------------------------------

    def step(self, final: bool = False) -> int:
        """Evaluate the events the watermark lets through (all with `final`); the alerts written."""
        mark = _FOREVER if final else self.watermark()
        if mark is None or not self.buffer:
            return 0
        ready = [e for e in self.buffer if e[0] is None or e[0] < mark]
        if not ready:
            return 0
        self.buffer = [e for e in self.buffer if not (e[0] is None or e[0] < mark)]
        if mark != _FOREVER:
            self.passed = mark if self.passed is None else max(self.passed, mark)
        else:
            latest = max((e[0] for e in ready if e[0] is not None), default=None)
            if latest is not None:
                self.passed = latest if self.passed is None else max(self.passed, latest)
        return self._evaluate(ready)

    def finish(self) -> int:
        """The end of every input: what is buffered is evaluated and the correlators decide the rest."""
        written = self.step(final=True)
        return written + self._write(self.engine.finish())

    def _evaluate(self, ready: list[tuple[int | None, int, bytes, dict | None]]) -> int:
        from ..sources import events_from_documents

        ready.sort(key=lambda e: (e[0] is None, e[0] or 0, e[1]))
        docs = [e[3] if e[3] is not None else load_document(e[2]) for e in ready]
        rows = [e[1] for e in ready]
        for doc, row in zip(docs, rows):
            if self.sources[row >> ROW_BITS].enrich:
                self.tree.apply(doc)  # in event order: a process's relatives are those started before it
            self.store[row] = dump_document(doc)  # as `load_events` keeps them: the alerts read them back
        table = events_from_documents(docs, self.engine.fields)
        frame = table.frame.with_columns(pl.Series("__row", rows, dtype=pl.Int64))
        self.stats.batches += 1
        self.stats.evaluated += len(ready)
        written = self._write(self.engine.feed(frame, table.present))
        if len(self.store) > max(4096, 2 * self.kept):
            self.prune()
        return written

    def prune(self) -> None:
        """Forget the documents of rows no correlator holds."""
        live = self.engine.live_rows()
        self.store = {r: b for r, b in self.store.items() if r in live}
        self.kept = len(self.store)

    def _write(self, results) -> int:
        now = self.now or utc_now()
        written = 0
        for rh in results:
            rows = {r for h in rh.hits for r in h.rows if r is not None}
            written += self.deliver(rh.index, rh.hits, {r: load_document(self.store[r]) for r in rows}, now)
        return written

    def deliver(self, index: int, hits, docs: dict, now: str) -> int:
        """Rule `index`'s hits through its alert replay (suppression, max_signals) to the sinks; the alerts
        written. The Spark stream's keyed step hands its hits here too."""
        live = self.engine.rules[index]
        alerts = self.replays[index].alerts(live.kind, live, hits, docs, now)
        if alerts:
            for sink in self.sinks:
                sink.write(alerts)
        self.stats.alerts += len(alerts)
        return len(alerts)

    # ---- state ---------------------------------------------------------------------------

    def state_size(self) -> int:
        """Documents held: buffered and kept for the correlators."""
        return len(self.buffer) + len(self.store)

    def to_dict(self) -> dict[str, Any]:
        self.prune()
        return {
            "engine": self.engine.to_dict(),
            "replays": [r.to_dict() for r in self.replays],
            "tree": self.tree.to_dict(),
            "sources": [[s.name, s.enrich, s.latest, s.closed, s.events] for s in self.sources],
            "buffer": [[ts, row, _b64(dump_document(doc) if doc is not None else blob)]
                       for ts, row, blob, doc in self.buffer],
            "store": [[row, _b64(blob)] for row, blob in self.store.items()],
            "passed": self.passed,
            "stats": [self.stats.events, self.stats.evaluated, self.stats.batches, self.stats.alerts, self.stats.late],
        }

    @classmethod
    def from_dict(cls, planned: Plan, data: dict[str, Any], sinks: Sequence[Sink] = (), *, now: str | None = None,
                  max_signals: int | None = None, lateness_ns: int = int(REORDER_SECONDS * 1e9)) -> StreamPipeline:
        """The pipeline as saved; ValueError with the reason when it was saved for another rule set."""
        p = cls(planned, sinks, now=now, max_signals=max_signals, lateness_ns=lateness_ns)
        p.engine = IncrementalHunt.from_dict(planned.runnable, planned.rules.exceptions, data["engine"])
        for replay, saved in zip(p.replays, data["replays"]):
            replay.restore(saved)
        p.tree = ProcessTree.from_dict(data["tree"])
        p.sources = [SourceState(name, enrich, latest, closed, False, events)
                     for name, enrich, latest, closed, events in data["sources"]]
        p.buffer = [(ts, row, _unb64(blob), None) for ts, row, blob in data["buffer"]]
        p.store = {row: _unb64(blob) for row, blob in data["store"]}
        p.kept = len(p.store)
        p.passed = data["passed"]
        s = p.stats
        s.events, s.evaluated, s.batches, s.alerts, s.late = data["stats"]
        return p


_FOREVER = 1 << 62


def _event_time(doc: dict) -> int | None:
    ns, text = _time(doc, "@timestamp")
    return ns if text is not None else None


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def monotonic() -> float:
    return time.monotonic()


# ---- the watch loop ------------------------------------------------------------------------


class AlertFile:
    """`--out FILE` for a watch: NDJSON appended, synced at each checkpoint, and cut back at a restart to the
    size the checkpoint recorded, so the alerts written after it (which the restart writes again, with the same
    ids) are not repeated. `-` is standard output, which cannot be cut back."""

    def __init__(self, path: str) -> None:
        import sys

        self.path = path
        self.stdout = path == "-"
        self._out = sys.stdout.buffer if self.stdout else open(path, "ab")  # noqa: SIM115 - closed by close()

    def write(self, alerts) -> None:
        import orjson

        out = self._out
        for alert in alerts:
            out.write(orjson.dumps(alert, default=str) + b"\n")
        out.flush()  # readable at once (a reader of the file sees the alert now); synced to disk at checkpoints

    def sync(self) -> int | None:
        """Flush to disk; the file's size (None for standard output)."""
        import os

        self._out.flush()
        if self.stdout:
            return None
        os.fsync(self._out.fileno())
        return self._out.tell()

    def cut_back(self, size: int | None) -> str | None:
        """Drop what was written after a checkpoint's `size`; a note when that cannot be done."""
        import os

        if self.stdout or size is None:
            return None
        have = os.fstat(self._out.fileno()).st_size
        if have < size:
            return (f"{self.path}: shorter than at the last checkpoint ({have} < {size} bytes): rotated or cut by "
                    "someone else; new alerts are appended")
        if have > size:
            self._out.flush()
            os.truncate(self.path, size)
            self._out.seek(0, os.SEEK_END)
        return None

    def close(self) -> None:
        self.sync()
        if not self.stdout:
            self._out.close()


@dataclass
class WatchStatus:
    """What the status line and the structured logs say."""

    events: int
    rate: float  # events per second, over the last interval
    lag: float | None  # seconds from the newest event read to the last one evaluated (event time)
    alerts: int
    state: int  # documents held (buffered and kept for correlators)
    sources: int
    late: int
    checkpoint: int | None = None  # bytes of the last checkpoint


@dataclass
class WatchSettings:
    batch_events: int = 20000  # a micro-batch is evaluated once this many events wait...
    batch_seconds: float = 0.2  # ...or this long after the last one
    poll_seconds: float = 0.1  # between polls of the inputs when nothing new came
    checkpoint_seconds: float = 5.0
    status_seconds: float = 1.0
    idle_seconds: float = 0.5  # an input with nothing new for this long holds the others back no longer
    lateness_seconds: float = REORDER_SECONDS  # the reorder window (an input's events out of time order)
    audit_event_seconds: float = 0.3  # an audit event with no new record for this long is complete (no EOE in logs)


MALLOC_ARENAS = 2


def bound_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let glibc's malloc use at most `arenas` arenas in this process; True when it took.

    glibc gives threads that allocate at once arenas of their own (up to 8 per core), and a watch's threads (Polars'
    pool, one reader per followed file) allocate and free a micro-batch's worth every 200 ms: memory freed in one
    arena is not reused by the others, so a long-running watch's resident set rose by a fifth in its first minutes
    before levelling off, with everything it holds flat. With two arenas it stays level (bench/RESULTS.md, "memory
    over 35 minutes"). Nothing is done where MALLOC_ARENA_MAX is already set (the user's choice) or off glibc."""
    import ctypes
    import os
    import sys

    if sys.platform != "linux" or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-8, arenas))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def run_watch(planned: Plan, patterns: list[str], out: AlertFile | None, *, sinks: Sequence[Sink] = (),
              state_dir: str | None = None, from_start: bool = False, reset_state: bool = False,
              input_format: str | None = None, read_options=None, max_signals: int | None = None,
              settings: WatchSettings | None = None, stop=None, on_status=None, on_note=None,
              on_skip=None, journal: bool = False, journal_directory: str | None = None) -> StreamPipeline:
    """Follow `patterns` (paths, quoted globs, `-`), and with `journal` the systemd journal (`journalctl -f`; of
    `journal_directory` when given), and write the alerts of `planned`'s rules to `out` and `sinks` until `stop`
    (a threading.Event) is set, or standard input, the only input, ends. With `state_dir`, resume from its
    checkpoint (the journal from its cursor) and write one every few seconds and at the end. Raises
    `checkpoint.CheckpointError` for a state directory that cannot be used and `sources.tail.FollowError` for an
    input that cannot be followed (the journal too: journalctl missing or refusing)."""
    import threading

    from ..sources.journal import Journal
    from ..sources.tail import Follower
    from . import checkpoint

    settings = settings or WatchSettings()
    stop = stop or threading.Event()
    note = on_note or (lambda text: None)
    all_sinks: list[Sink] = ([out] if out is not None else []) + list(sinks)
    lock = checkpoint.open_state(state_dir) if state_dir is not None else None
    reader: Journal | None = None
    try:
        lateness = int(settings.lateness_seconds * 1e9)
        fingerprint = IncrementalHunt(planned.runnable, planned.rules.exceptions).fingerprint
        saved = None
        if state_dir is not None:
            if reset_state and checkpoint.reset(state_dir):
                note(f"{state_dir}: checkpoint removed (--reset-state); starting over")
            saved = checkpoint.load(state_dir, fingerprint)
        if saved is not None:
            try:
                pipe = StreamPipeline.from_dict(planned, saved["pipeline"], all_sinks, max_signals=max_signals,
                                                lateness_ns=lateness)
            except (KeyError, TypeError, ValueError) as e:
                raise checkpoint.CheckpointError(f"{state_dir}: the checkpoint cannot be resumed ({e}); start "
                                                 "over with --reset-state") from None
        else:
            pipe = StreamPipeline(planned, all_sinks, max_signals=max_signals, lateness_ns=lateness)
        for live in pipe.engine.rules:
            if live.status != "ok" and saved is None:
                note(f"rule not run live: {live.check.rule.name}: {live.error or live.unsupported}")
        skip = on_skip or (lambda f, n, r: None)
        follower = Follower(patterns, pipe, skip=skip, input_format=input_format,
                            options=read_options, from_start=from_start, idle_after=settings.idle_seconds,
                            event_seconds=settings.audit_event_seconds)
        if journal:
            reader = Journal(pipe, skip=skip, options=read_options, from_start=from_start,
                             directory=journal_directory, idle_after=settings.idle_seconds)
            resume = saved.get("journal") if saved is not None else None
            if resume is not None and resume.get("directory") != journal_directory:
                raise checkpoint.CheckpointError(
                    f"{state_dir}: the checkpoint followed the journal of {resume.get('directory') or 'the system'}"
                    f", not of {journal_directory or 'the system'}; start over with --reset-state")
            reader.start(resume)
        if saved is not None:
            if out is not None and (why := out.cut_back(saved["out"])):
                note(why)
            follower.resume(saved["follower"])
            followed = {f.source for f in follower.files} | ({reader.source} if reader is not None else set())
            for i, src in enumerate(pipe.sources):
                if i not in followed and not src.closed:
                    pipe.close_source(i)  # stdin, or a file gone while nobody watched
            note(f"resumed from {state_dir}: {len(follower.files)} file(s), {pipe.state_size()} events held")

        def save() -> int | None:
            if state_dir is None:
                for s in all_sinks:
                    getattr(s, "sync", lambda: None)()
                return None
            size = out.sync() if out is not None else None
            for s in sinks:
                getattr(s, "sync", lambda: None)()
            return checkpoint.save(state_dir, {"fingerprint": fingerprint, "pipeline": pipe.to_dict(),
                                               "follower": follower.to_dict(), "out": size,
                                               "journal": reader.to_dict() if reader is not None else None})

        if saved is None:
            follower.discover()
            save()  # where the files were found: a restart before the next checkpoint reads on from there
        now = monotonic()
        last_step = last_save = last_status = now
        counted, saved_bytes = pipe.stats.events, None
        only_stdin = patterns == ["-"] and reader is None
        try:
            while not stop.is_set():
                read = follower.poll()
                if reader is not None:
                    read += reader.poll()
                for text in follower.notes:
                    note(text)
                follower.notes.clear()
                now = monotonic()
                if follower.behind and len(pipe.buffer) < settings.batch_events:
                    continue  # catching up: a bigger batch shares the per-batch work among more events
                if len(pipe.buffer) >= settings.batch_events or now - last_step >= settings.batch_seconds:
                    pipe.step()
                    last_step = now
                if only_stdin and follower.stdin_done:
                    pipe.finish()
                    break
                if now - last_save >= settings.checkpoint_seconds:
                    saved_bytes = save() or saved_bytes
                    last_save = now
                if on_status is not None and now - last_status >= settings.status_seconds:
                    on_status(_status(pipe, follower, (pipe.stats.events - counted) / (now - last_status),
                                      saved_bytes))
                    counted, last_status = pipe.stats.events, now
                if not read:
                    stop.wait(settings.poll_seconds)
            pipe.step()
            save()
        finally:
            follower.close()
            if reader is not None:
                reader.close()
        return pipe
    finally:
        if reader is not None:
            reader.close()
        if lock is not None:
            lock.close()


def _status(pipe: StreamPipeline, follower, rate: float, saved: int | None) -> WatchStatus:
    newest = max((s.latest for s in pipe.sources if s.latest is not None), default=None)
    lag = (newest - pipe.passed) / 1e9 if newest is not None and pipe.passed is not None else None
    return WatchStatus(pipe.stats.events, rate, None if lag is None else max(lag, 0.0), pipe.stats.alerts,
                       pipe.state_size(), len(follower.files), pipe.stats.late, saved)
