"""Sequence matching as Elasticsearch does it, as an explicit state object.

Per join key there is one pending partial sequence per stage; a newer one replaces the
older (ES SequenceMatcher + OrdinalGroup.trimBefore: the latest pending sequence at stage
k-1 is taken and every older one discarded). Events arrive in ordinal order, so the state
can be fed batch by batch and snapshotted between batches (follow mode). Memory is bounded
by (number of live keys × stages); `expire()` drops partial sequences past maxspan.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import checkpoint

Key = tuple[Hashable, ...]


@dataclass(frozen=True)
class Partial:
    events: tuple[int, ...]  # ordinals of the matched events, one per stage so far
    start_ts: int  # timestamp (ns) of the first event
    last_ts: int
    rows: tuple[int, ...] = ()  # the events' row ids (their ordinals unless given)
    times: tuple[int, ...] = ()  # the events' timestamps

    def to_list(self) -> list:
        return [list(self.events), self.start_ts, self.last_ts, list(self.rows), list(self.times)]

    @classmethod
    def from_list(cls, v: list) -> Partial:
        events, start, last, rows, times = v
        return cls(tuple(events), start, last, tuple(rows), tuple(times))


@dataclass(frozen=True)
class Completed:
    events: tuple[int, ...]
    key: Key
    start_ts: int
    last_ts: int
    rows: tuple[int, ...] = ()
    times: tuple[int, ...] = ()

    def to_list(self) -> list:
        return [list(self.events), checkpoint.value_out(self.key), self.start_ts, self.last_ts, list(self.rows),
                list(self.times)]

    @classmethod
    def from_list(cls, v: list) -> Completed:
        events, key, start, last, rows, times = v
        return cls(tuple(events), checkpoint.key_in(key), start, last, tuple(rows), tuple(times))


@dataclass
class SequenceState:
    """State of one sequence query over the positive (non-missing) stages."""

    stages: int
    maxspan_ns: int | None = None
    pending: dict[Key, list[Partial | None]] = field(default_factory=dict)
    completed: list[Completed] = field(default_factory=list)

    def feed(self, ordinal: int, ts: int, key: Key, stages: Sequence[int], until: bool = False,
             row: int | None = None) -> None:
        """One event (for one of its join keys) matching `stages` (and/or the until filter)."""
        row = ordinal if row is None else row
        if until:
            # the until event may still complete a sequence; it then cuts every sequence of
            # its key still pending, including any it just extended (ES: inclusive bound)
            self._advance(ordinal, ts, key, stages, row)
            self.pending.pop(key, None)
            return
        self._advance(ordinal, ts, key, stages, row)

    def _advance(self, ordinal: int, ts: int, key: Key, stages: Sequence[int], row: int) -> None:
        slots = self.pending.get(key)
        n = self.stages
        if slots is None:
            if 0 not in stages:
                return
            slots = self.pending[key] = [None] * max(1, n - 1)
        # higher stages first, so one event can extend a sequence and start another,
        # but never extend a sequence it started itself
        for k in sorted(stages, reverse=True):
            if k == 0:
                if n == 1:
                    self.completed.append(Completed((ordinal,), key, ts, ts, (row,), (ts,)))
                else:
                    slots[0] = Partial((ordinal,), ts, ts, (row,), (ts,))
                continue
            prev = slots[k - 1]
            if prev is None:
                continue
            slots[k - 1] = None
            if self.maxspan_ns is not None and ts - prev.start_ts > self.maxspan_ns:
                continue
            grown = Partial(prev.events + (ordinal,), prev.start_ts, ts, prev.rows + (row,), prev.times + (ts,))
            if k == n - 1:
                self.completed.append(Completed(grown.events, key, grown.start_ts, ts, grown.rows, grown.times))
            else:
                slots[k] = grown
        if all(s is None for s in slots):
            del self.pending[key]

    def expire(self, now_ts: int) -> None:
        """Forget partial sequences that can no longer complete within maxspan."""
        if self.maxspan_ns is None:
            return
        horizon = now_ts - self.maxspan_ns
        for key in list(self.pending):
            slots = self.pending[key]
            for i, p in enumerate(slots):
                if p is not None and p.start_ts < horizon:
                    slots[i] = None
            if all(s is None for s in slots):
                del self.pending[key]

    def take_completed(self) -> list[Completed]:
        out, self.completed = self.completed, []
        return out

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON values (pending partials per key; completed ones not yet taken)."""
        return {
            "stages": self.stages, "maxspan_ns": self.maxspan_ns,
            "pending": [[checkpoint.value_out(k), [None if p is None else p.to_list() for p in slots]]
                        for k, slots in self.pending.items()],
            "completed": [c.to_list() for c in self.completed],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequenceState:
        state = cls(data["stages"], data["maxspan_ns"])
        for k, slots in data["pending"]:
            state.pending[checkpoint.key_in(k)] = [None if p is None else Partial.from_list(p) for p in slots]
        state.completed = [Completed.from_list(c) for c in data["completed"]]
        return state

