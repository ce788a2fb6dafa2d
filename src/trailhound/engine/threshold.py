"""threshold rules, replayed on Kibana's schedule.

Kibana runs the rule every `interval` over the lookback window `(t - lookback, t]`, groups the
matching events by the threshold fields, and raises one alert per group whose count reaches
`value` (and, with `cardinality`, whose number of distinct values of that field reaches its
value). It keeps a signal history per group so events already counted by an alert do not
count again. Here executions fall on multiples of the interval from the first event to one
interval past the last, and the history is the explicit `last_signal` map.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import checkpoint

Group = tuple[Hashable, ...]


@dataclass(frozen=True)
class ThresholdSpec:
    fields: tuple[str, ...]
    value: int
    cardinality: tuple[tuple[str, int], ...] = ()
    interval_ns: int = 5 * 60 * 1_000_000_000
    lookback_ns: int = 6 * 60 * 1_000_000_000


@dataclass(frozen=True)
class ThresholdHit:
    group: Group
    count: int
    rows: tuple[int, ...]  # the events counted, in event order
    first_ts: int
    execution_ts: int
    cardinality: tuple[tuple[str, int], ...] = ()


@dataclass
class ThresholdState:
    """The replay, fed events batch after batch (in event order): executions run as soon as every
    event they count has arrived (a batch's events reach its last timestamp, and the next batch
    starts no earlier), the rest at `finish()`. Bounded: only events inside the next execution's
    lookback (and those after it) are held, and only signal history that can still exclude one."""

    spec: ThresholdSpec
    last_signal: dict[Group, int] = field(default_factory=dict)  # group → last counted event time
    events: list[tuple[int, int, Group, tuple]] = field(default_factory=list)  # held: (ts, row, group, card)
    next_t: int | None = None  # the next execution's time
    last_ts: int | None = None  # the latest event's time
    _lo: int = field(default=0, init=False, repr=False)  # events before it are past every later lookback

    def feed(self, events: Sequence[tuple[int, int, Group, tuple]]) -> list[ThresholdHit]:
        """`events`: (ts_ns, row, group, cardinality values), in event order, after those fed before."""
        if not events:
            return []
        if self.last_ts is not None and events[0][0] < self.last_ts:
            raise ValueError(f"threshold: events out of time order ({events[0][0]} after {self.last_ts})")
        step = self.spec.interval_ns
        if self.next_t is None:
            self.next_t = (events[0][0] // step + 1) * step
        self.events.extend(events)
        self.last_ts = events[-1][0]
        hits: list[ThresholdHit] = []
        while self.next_t < self.last_ts:  # every event at or before it has arrived
            self._execute(hits)
        self._forget()
        return hits

    def finish(self) -> list[ThresholdHit]:
        """The executions left: up to one interval past the last event."""
        hits: list[ThresholdHit] = []
        if self.last_ts is None or self.next_t is None:
            return hits
        end = self.last_ts + self.spec.interval_ns
        while self.next_t <= end:
            self._execute(hits)
        self._forget()
        return hits

    def _execute(self, hits: list[ThresholdHit]) -> None:
        spec, t = self.spec, self.next_t
        assert t is not None
        events, lo = self.events, self._lo
        while lo < len(events) and events[lo][0] <= t - spec.lookback_ns:
            lo += 1
        self._lo = lo
        buckets: dict[Group, list[tuple[int, int, tuple]]] = defaultdict(list)
        for i in range(lo, len(events)):
            ts, row, group, card = events[i]
            if ts > t:
                break
            if ts > self.last_signal.get(group, -1 << 62):
                buckets[group].append((ts, row, card))
        for group, members in buckets.items():
            if len(members) < spec.value:
                continue
            distinct = tuple((f, len({m[2][k] for m in members if m[2][k] is not None}))
                             for k, (f, _) in enumerate(spec.cardinality))
            if any(n < need for (_, n), (_, need) in zip(distinct, spec.cardinality)):
                continue
            hits.append(ThresholdHit(group, len(members), tuple(m[1] for m in members), members[0][0], t, distinct))
            self.last_signal[group] = members[-1][0]
        self.next_t = t + spec.interval_ns

    def _forget(self) -> None:
        """Drop events no later execution counts, and signal history no later event can fall under."""
        assert self.next_t is not None
        horizon = self.next_t - self.spec.lookback_ns
        lo = self._lo
        while lo < len(self.events) and self.events[lo][0] <= horizon:
            lo += 1
        if lo:
            del self.events[:lo]
        self._lo = 0
        if len(self.last_signal) > 64:
            self.last_signal = {g: s for g, s in self.last_signal.items() if s > horizon}

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "spec": [list(spec.fields), spec.value, [list(c) for c in spec.cardinality], spec.interval_ns,
                     spec.lookback_ns],
            "last_signal": [[checkpoint.value_out(g), s] for g, s in self.last_signal.items()],
            "events": [[ts, row, checkpoint.value_out(g), checkpoint.value_out(c)] for ts, row, g, c in self.events],
            "next_t": self.next_t, "last_ts": self.last_ts,
        }

    @classmethod
    def from_dict(cls, spec: ThresholdSpec, data: dict[str, Any]) -> ThresholdState:
        fields, value, card, interval, lookback = data["spec"]
        if (tuple(fields), value, tuple(tuple(c) for c in card), interval, lookback) != (
                spec.fields, spec.value, spec.cardinality, spec.interval_ns, spec.lookback_ns):
            raise ValueError("threshold checkpoint: it was saved for another threshold specification")
        return cls(spec, {checkpoint.key_in(g): s for g, s in data["last_signal"]},
                   [(ts, row, checkpoint.key_in(g), checkpoint.key_in(c)) for ts, row, g, c in data["events"]],
                   data["next_t"], data["last_ts"])
