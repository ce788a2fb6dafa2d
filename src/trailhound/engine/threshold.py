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
from dataclasses import dataclass, field
from typing import Hashable, Sequence

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
    spec: ThresholdSpec
    last_signal: dict[Group, int] = field(default_factory=dict)  # group → last counted event time


def run_threshold(events: Sequence[tuple[int, int, Group, tuple]], spec: ThresholdSpec) -> list[ThresholdHit]:
    """`events`: (ts_ns, row, group, cardinality values) in event order."""
    if not events:
        return []
    state = ThresholdState(spec)
    step = spec.interval_ns
    t = (events[0][0] // step + 1) * step
    end = events[-1][0] + step
    hits: list[ThresholdHit] = []
    lo = 0
    while t <= end:
        while lo < len(events) and events[lo][0] <= t - spec.lookback_ns:
            lo += 1
        buckets: dict[Group, list[tuple[int, int, tuple]]] = defaultdict(list)
        i = lo
        while i < len(events) and events[i][0] <= t:
            ts, row, group, card = events[i]
            if ts > state.last_signal.get(group, -1 << 62):
                buckets[group].append((ts, row, card))
            i += 1
        for group, members in buckets.items():
            if len(members) < spec.value:
                continue
            distinct = tuple((f, len({m[2][k] for m in members if m[2][k] is not None}))
                             for k, (f, _) in enumerate(spec.cardinality))
            if any(n < need for (_, n), (_, need) in zip(distinct, spec.cardinality)):
                continue
            hits.append(ThresholdHit(group, len(members), tuple(m[1] for m in members), members[0][0], t, distinct))
            state.last_signal[group] = members[-1][0]
        t += step
    return hits
