"""Sigma v2 correlations over the hits of their base rules: explicit, bounded, serializable state, fed
in time order like the runs of engine/correlate.py (feed / finish / to_dict / from_dict).

When a correlation alerts (README, "Sigma"):

* Its events are the hits of the rules it names, in time order (timestamp, then row); an event of
  two named rules counts for each. Events are grouped by the `group-by` values (through `aliases`
  per rule); an event without one of them is left out (and counted in `ungrouped`). Values are
  compared exactly, as their text.
* event_count with a growing condition (only `gt`/`gte`; K = the least count that meets it: N for
  `gte: N`, N + 1 for `gt: N`): at each event e, the window is the group's events in [t - timespan, t]
  (sliding, inclusive, like EQL's maxspan). If it holds K events or more, one alert is raised, and it
  links the K newest: e and the K - 1 events before it. Events are not used up: the next event whose
  window still holds K raises the next alert. So a burst of M events within the timespan gives
  M - K + 1 alerts, exactly the sequences of EQL's `[..] with runs=K` (which takes the K consecutive
  events ending at each event), and the alerts' events together are every event of a window that meets
  the condition. The alert count and windows are those of SigmaHQ's sliding-window backend
  (pySigma-backend-sqlite: one alert per event that ends a window meeting the condition); where that
  backend links the whole window, linking the K newest keeps each alert's evidence bounded by K, and
  loses no event (an event of such a window is among the K newest of the window ending K - 1 events
  after it).
* temporal_ordered with a growing condition (K = the least number of its rules, in order, that meets
  it: all of them by default): the steps of EQL's sequences. Per group, step i holds one chain (events of
  rules 0..i in order, the first within the timespan of the newest event): an event of rule 0 starts a
  chain at step 0 (replacing the one there), an event of rule i extends the chain of step i - 1, which
  moves on to step i (replacing the one there; step i - 1 is then empty). A chain that reaches K steps is
  an alert linking its K events, one per rule. So `a a b` alerts once, with the second `a` and the `b`,
  exactly as `sequence [a] [b]`; the spec asks that the events appear in order within the timespan and
  says no more about which of them an alert links: EQL's choice makes Sigma and EQL agree.
* The other growing conditions (value_count and value_sum with `gt`/`gte`; temporal with a condition
  without `not`): at each event, the window is the group's unused events in [t - timespan, t]. If the
  condition holds there, one alert is raised with those events, and they are used.
* Any other condition (`lt`, `lte`, `eq`, `neq`, a `not` in a temporal condition; and value_avg,
  value_percentile, value_median, whose value can fall as events arrive): windows are judged once
  closed. The group's first unused event a opens [a.t, a.t + timespan]; the window closes when an
  event later than its end arrives (of any group) or the input ends. If the condition holds, one
  alert is raised with the window's events, which are used; else a is dropped and the next event
  opens the next window.
* What is measured: event_count the events; value_count the distinct non-null values of `field`;
  temporal the named rules present; temporal_ordered the longest prefix of the named rules found in
  order (default condition: all of them); value_sum / value_avg / value_median / value_percentile
  the numbers in `field` (others are ignored; none at all never alerts); percentiles interpolate
  linearly between the closest ranks.

* Correlations of correlations: an alert of a named correlation is one event of the correlation that
  names it. It happens at its last event (when it is known: a temporal_ordered step is done when its
  last event arrived), it lies inside a window only if all its events do (its first event too: so a
  chain's timespan bounds all its source events, like EQL's maxspan over a sequence with `runs`), its
  fields are its group-by values (under the group-by names of the correlation that raised it), and it
  brings all its events' rows to the alert it helps raise.

Input must arrive in time order (a batch earlier than what was fed is refused); whatever the batch
cut points, the hits are those of one batch. State holds, per group, only events within a timespan
of the newest.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..lang.sigma.correlation import CorrelationSpec
from . import checkpoint
from .correlate import Hit

_SWEEP_EVERY = 4096


@dataclass(frozen=True)
class BaseEvent:
    ts: int  # ms
    row: int
    rule: int  # index in the spec's references
    key: tuple  # the group-by values
    value: Any = None  # `field`'s value, for the value_* types
    start: int | None = None  # a correlation's alert fed to another: the time of its first event (ts: its last)
    rows: tuple[int, ...] = ()  # ... and all its events' rows

    @property
    def begin(self) -> int:
        """When this event began: its time, or for a correlation's alert the time of its first event."""
        return self.ts if self.start is None else self.start


def closing(spec: CorrelationSpec) -> bool:
    """Whether the spec's windows are judged once closed (else as they grow)."""
    if spec.kind in ("value_avg", "value_percentile", "value_median"):
        return True
    if spec.expression is not None:
        return "not" in repr(spec.expression)
    return any(op not in (">", ">=") for op, _ in spec.condition)


def ordered_need(spec: CorrelationSpec) -> int:
    """For a temporal_ordered with a growing condition, how many of its rules, in order, meet it (its chains
    have that many steps); 0 for every other spec."""
    if spec.kind != "temporal_ordered" or closing(spec) or spec.expression is not None or not spec.condition:
        return 0
    return max(1, *(math.ceil(bound) if op == ">=" else math.floor(bound) + 1 for op, bound in spec.condition))


def least_count(spec: CorrelationSpec) -> int:
    """For an event_count with a growing condition, the least number of events that meets it (its alerts
    link that many events); 0 for every other spec."""
    if spec.kind != "event_count" or closing(spec) or not spec.condition:
        return 0
    return max(1, *(math.ceil(bound) if op == ">=" else math.floor(bound) + 1 for op, bound in spec.condition))


class SigmaCorrelationRun:
    def __init__(self, spec: CorrelationSpec) -> None:
        self.spec = spec
        self.closing = closing(spec)
        self.groups: dict[tuple, list[BaseEvent]] = {}
        self.deadlines: list[tuple[int, int, tuple]] = []  # closing mode: (window end, tie, key)
        self.watermark: int | None = None
        self.seen = 0
        self.ungrouped = 0  # events left out for a missing group-by value (counted by the caller)
        self._tie = 0
        self.nested = False  # fed correlation alerts (events with a duration): windows filter by their start
        self.least = least_count(spec)  # > 0: an event_count whose windows slide without using events up
        self.sliding: dict[tuple, deque[BaseEvent]] = {}  # its windows (a deque: one event leaves as one comes)
        self.need = ordered_need(spec)  # > 0: a temporal_ordered run as EQL's sequence automaton, `need` steps
        self.partials: dict[tuple, list[tuple[BaseEvent, ...] | None]] = {}  # per group: step i → its chain

    # ---- feeding -------------------------------------------------------------------------------

    def feed(self, events: Sequence[BaseEvent]) -> list[Hit]:
        out: list[Hit] = []
        for e in events:
            if self.watermark is not None and e.ts < self.watermark:
                raise ValueError(f"correlation input out of order: {e.ts} after {self.watermark}")
            self.watermark = e.ts
            if e.start is not None and e.start != e.ts:
                self.nested = True
            if self.closing:
                out += self._close_before(e.ts)
                window = self.groups.setdefault(e.key, [])
                if not window or e.begin < window[0].begin:  # it opens the group's earliest window
                    self._schedule(e.key, e.begin)
                if self.nested:  # closing windows are kept in the order they begin
                    bisect.insort(window, e, key=lambda x: x.begin)
                else:
                    window.append(e)
                continue
            start = e.ts - self.spec.timespan_ms
            if self.least:
                self._slide(e, start, out)
            elif self.need:
                self._order(e, start, out)
            else:
                window = self.groups.setdefault(e.key, [])
                if self.nested:
                    window[:] = [x for x in window if x.begin >= start]
                while window and window[0].ts < start:
                    window.pop(0)
                window.append(e)
                if self._holds(window):
                    out.append(self._hit(e.key, window))
                    window.clear()
            self.seen += 1
            if self.seen % _SWEEP_EVERY == 0:
                self._sweep(start)
        return out

    def _slide(self, e: BaseEvent, start: int, out: list[Hit]) -> None:
        """An event_count's window slides to `e`: an alert of its `least` newest events when it holds that many."""
        window = self.sliding.get(e.key)
        if window is None:
            window = self.sliding[e.key] = deque()
        if self.nested and any(x.begin < start for x in window):
            window = self.sliding[e.key] = deque(x for x in window if x.begin >= start)
        while window and window[0].ts < start:
            window.popleft()
        window.append(e)
        if len(window) >= self.least:
            out.append(self._hit(e.key, list(itertools.islice(reversed(window), self.least))[::-1]))

    def _order(self, e: BaseEvent, start: int, out: list[Hit]) -> None:
        """A temporal_ordered step: like an EQL sequence, each step holds one chain per group (the latest); an
        event of rule i extends the chain of step i - 1 (which moves on), an event of the first rule starts a
        chain; a chain whose first event left the window is dropped."""
        parts = self.partials.get(e.key)
        if parts is None:
            parts = self.partials[e.key] = [None] * self.need
        for i, chain in enumerate(parts):
            if chain is not None and chain[0].begin < start:
                parts[i] = None
        if e.rule >= self.need or e.begin < start:  # a rule past the condition's prefix; an alert begun too early
            return
        if e.rule == 0:
            chain = (e,)
        else:
            prev = parts[e.rule - 1]
            if prev is None or (not e.rows and any(x.row == e.row and not x.rows for x in prev)):
                return  # nothing to extend (or the same event as a step already in the chain)
            chain, parts[e.rule - 1] = (*prev, e), None
        if len(chain) == self.need:
            out.append(self._hit(e.key, list(chain)))
        else:
            parts[e.rule] = chain

    def finish(self) -> list[Hit]:
        return self._close_before(None) if self.closing else []

    def _schedule(self, key: tuple, first_ts: int) -> None:
        self._tie += 1
        heapq.heappush(self.deadlines, (first_ts + self.spec.timespan_ms, self._tie, key))

    def _close_before(self, ts: int | None) -> list[Hit]:
        """Judge every window that ends before `ts` (None: all of them), in the order they end."""
        out: list[Hit] = []
        span = self.spec.timespan_ms
        while self.deadlines and (ts is None or self.deadlines[0][0] < ts):
            end, _, key = heapq.heappop(self.deadlines)
            window = self.groups.get(key)
            if not window or window[0].begin + span != end:
                continue  # that window was judged already
            opened = window[0].begin
            inside = [x for x in window if x.ts <= end and x.begin >= opened]
            if self.nested:
                inside.sort(key=lambda x: (x.ts, x.row))
            if self._holds(inside):
                out.append(self._hit(key, inside))
                used = {id(x) for x in inside}
                window[:] = [x for x in window if id(x) not in used]
            else:
                window.pop(0)
            if window:
                self._schedule(key, window[0].begin)  # the next window: judged in this loop if it ended too
            else:
                del self.groups[key]
        return out

    def _sweep(self, start: int) -> None:
        for key in [k for k, w in self.groups.items() if not w or w[-1].ts < start]:
            del self.groups[key]
        for key in [k for k, d in self.sliding.items() if not d or d[-1].ts < start]:
            del self.sliding[key]
        for key in [k for k, ps in self.partials.items() if all(c is None or c[0].begin < start for c in ps)]:
            del self.partials[key]

    def _hit(self, key: tuple, window: list[BaseEvent]) -> Hit:
        if self.spec.kind == "temporal_ordered":  # events before the first of the first rule take no part in the order
            window = window[next((i for i, e in enumerate(window) if e.rule == 0), 0):]
        rows = tuple(dict.fromkeys(r for e in window for r in (e.rows or (e.row,))))
        return Hit(rows, key)

    # ---- the condition -------------------------------------------------------------------------

    def _holds(self, window: list[BaseEvent]) -> bool:
        spec = self.spec
        if not window:
            return False
        if spec.expression is not None:
            present = {e.rule for e in window}
            return _evaluate(spec.expression, present)
        measure = self.measure(window)
        if measure is None:
            return False
        return all(_compare(measure, op, bound) for op, bound in spec.condition)

    def measure(self, window: list[BaseEvent]) -> float | None:
        kind = self.spec.kind
        if kind == "event_count":
            return float(len(window))
        if kind == "value_count":
            return float(len({_text(e.value) for e in window if e.value is not None}))
        if kind == "temporal":
            return float(len({e.rule for e in window}))
        if kind == "temporal_ordered":
            want = 0
            for e in window:
                if e.rule == want:
                    want += 1
                    if want == len(self.spec.references):
                        break
            return float(want)
        numbers = sorted(x for e in window if (x := _number(e.value)) is not None)
        if not numbers:
            return None
        if kind == "value_sum":
            return math.fsum(numbers)
        if kind == "value_avg":
            return math.fsum(numbers) / len(numbers)
        q = 50.0 if kind == "value_median" else float(self.spec.percentile or 0)
        return _percentile(numbers, q)

    # ---- state as JSON -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"version": checkpoint.VERSION, "kind": "sigma_correlation", "watermark": self.watermark,
                "seen": self.seen, "ungrouped": self.ungrouped,
                "groups": [[checkpoint.value_out(k), [[e.ts, e.row, e.rule, checkpoint.value_out(e.value),
                                                       *([e.start, list(e.rows)] if e.start is not None else [])]
                                                      for e in w]] for k, w in [*self.groups.items(),
                                                                               *self.sliding.items(),
                                                                               *self._chains()]],
                "deadlines": [[end, checkpoint.value_out(k)] for end, _, k in sorted(self.deadlines)]}

    def _chains(self) -> list[tuple[tuple, list[BaseEvent]]]:
        """Each group's chains, in step order, as one list of events (each chain begins with an event of rule 0)."""
        return [(k, [e for c in ps if c is not None for e in c]) for k, ps in self.partials.items()]

    def _restore_chains(self, key: tuple, events: list[BaseEvent]) -> None:
        chains: list[list[BaseEvent]] = []
        for e in events:
            if e.rule == 0 or not chains:
                chains.append([])
            chains[-1].append(e)
        parts: list[tuple[BaseEvent, ...] | None] = [None] * self.need
        for c in chains:
            if [e.rule for e in c] != list(range(len(c))) or len(c) >= self.need:
                # a checkpoint of the earlier, windowed engine: its unused events become chains as they would
                # have (what they complete was not an alert then, and is not raised now)
                self.partials.pop(key, None)
                for e in events:
                    self._order(e, e.ts - self.spec.timespan_ms, [])
                return
            parts[len(c) - 1] = tuple(c)
        self.partials[key] = parts

    @classmethod
    def from_dict(cls, spec: CorrelationSpec, data: dict[str, Any]) -> SigmaCorrelationRun:
        if data.get("version") != checkpoint.VERSION or data.get("kind") != "sigma_correlation":
            raise ValueError("not a checkpoint of a Sigma correlation (or of another version)")
        run = cls(spec)
        run.watermark, run.seen, run.ungrouped = data["watermark"], int(data["seen"]), int(data["ungrouped"])
        for key, events in data["groups"]:
            k = _key_in(key)
            run.groups[k] = [BaseEvent(int(ts), int(row), int(rule), k, _key_in(v) if isinstance(v, list) else v,
                                       int(more[0]) if more else None, tuple(int(r) for r in more[1]) if more else ())
                             for ts, row, rule, v, *more in events]
            run.nested = run.nested or any(e.start is not None and e.start != e.ts for e in run.groups[k])
            if run.least:
                run.sliding[k] = deque(run.groups.pop(k))
            elif run.need:
                run._restore_chains(k, run.groups.pop(k))
        for end, key in data["deadlines"]:
            run._tie += 1
            heapq.heappush(run.deadlines, (int(end), run._tie, _key_in(key)))
        return run


def _key_in(v: Any) -> Any:
    return tuple(_key_in(x) for x in v) if isinstance(v, list) else checkpoint.value_in(v) \
        if isinstance(v, dict) else v


def _evaluate(expr: list, present: set[int]) -> bool:
    op = expr[0]
    if op == "ref":
        return expr[1] in present
    if op == "not":
        return not _evaluate(expr[1], present)
    parts = (_evaluate(x, present) for x in expr[1])
    return all(parts) if op == "and" else any(parts)


def _compare(x: float, op: str, bound: float) -> bool:
    return {"<": x < bound, "<=": x <= bound, ">": x > bound, ">=": x >= bound, "==": x == bound,
            "!=": x != bound}[op]


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    try:
        x = float(str(v))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _percentile(sorted_values: list[float], q: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * min(max(q, 0.0), 100.0) / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
