"""Alert suppression as Kibana applies it, replayed on event time.

Alerts whose `group_by` values agree fold into the first one, which records the count of
folded alerts (`docs_count`) and the time span (`start`, `end`):
* without a duration, within one rule execution (an `interval` of event time);
* with a duration, for that long after the first alert of the group; the next alert after
  the window opens a new one.
With `missing_fields_strategy = "doNotSuppress"`, an alert missing any group_by field is never
folded; with "suppress" (the default) missing values group together like any value.

The open windows are the whole state, explicit so a stream can checkpoint it: `expire()` drops the
windows no later alert can fall into (so the state holds only the groups seen within the duration,
or within the current execution), `to_dict()`/`from_dict()` save and restore it as JSON values.
A stream emits each new alert at once; a later fold updates that alert's suppression fields, as
Kibana updates it in place, and `take_changed()` hands the updated alerts over to be written again
(by their `kibana.alert.uuid`). Fed in batches, with a checkpoint between them, the alerts in their
final state are those of one batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..rules.model import SuppressionSpec


@dataclass
class Window:
    start_ns: int
    execution: int
    alert: dict  # the alert that absorbs the group's repeats


@dataclass
class SuppressionState:
    spec: SuppressionSpec
    windows: dict[tuple, Window] = field(default_factory=dict)
    changed: dict[int, dict] = field(default_factory=dict)  # held alerts a fold updated, by identity

    def fold(self, values: tuple[Any, ...], time_ns: int, when: str | None, execution: int) -> bool:
        """True when an open window absorbs an alert with these group_by `values` (None where
        missing), at `time_ns` (`when` as text) in `execution`."""
        key = self._key(values)
        window = self.windows.get(key) if key is not None else None
        if window is None or not _open(self.spec, window, time_ns, execution):
            return False
        held = window.alert
        held["kibana.alert.suppression.docs_count"] += 1
        if when is not None:
            held["kibana.alert.suppression.end"] = when
        self.changed[id(held)] = held
        return True

    def start(self, alert: dict, values: tuple[Any, ...], time_ns: int, when: str | None, execution: int) -> None:
        """Open the group's window on a new `alert`, which gets the suppression fields."""
        terms = [{"field": f, "value": None if v is None else (v if isinstance(v, list) else [v])}
                 for f, v in zip(self.spec.group_by, values)]
        alert.update({
            "kibana.alert.suppression.terms": terms,
            "kibana.alert.suppression.start": when,
            "kibana.alert.suppression.end": when,
            "kibana.alert.suppression.docs_count": 0,
            "kibana.alert.instance.id": _instance_id(alert.get("kibana.alert.rule.rule_id", ""), terms),
        })
        key = self._key(values)
        if key is not None:
            self.windows[key] = Window(time_ns, execution, alert)

    def expire(self, time_ns: int, execution: int) -> None:
        """Forget the windows that no alert at or after `time_ns` (in `execution` or later) can fall
        into: past their duration, or of an earlier execution. Call with the time of the latest alert."""
        spec = self.spec
        closed = [k for k, w in self.windows.items()
                  if (w.execution < execution if spec.duration_ns is None else time_ns - w.start_ns > spec.duration_ns)]
        for k in closed:
            del self.windows[k]

    def take_changed(self) -> list[dict]:
        """The held alerts a fold has updated since the last call (each once), to be written again."""
        out = list(self.changed.values())
        self.changed.clear()
        return out

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "spec": [list(spec.group_by), spec.duration_ns, spec.missing_fields_strategy],
            "windows": [[[part.decode() for part in k], w.start_ns, w.execution, w.alert]
                        for k, w in self.windows.items()],
            "changed": list(self.changed.values()),  # copies: a later fold's update is taken after them
        }

    @classmethod
    def from_dict(cls, spec: SuppressionSpec, data: dict[str, Any]) -> SuppressionState:
        group_by, duration, strategy = data["spec"]
        if (tuple(group_by), duration, strategy) != (spec.group_by, spec.duration_ns, spec.missing_fields_strategy):
            raise ValueError("suppression checkpoint: it was saved for another alert_suppression")
        state = cls(spec)
        for k, start, execution, alert in data["windows"]:
            state.windows[tuple(part.encode() for part in k)] = Window(start, execution, alert)
        for a in data["changed"]:
            state.changed[id(a)] = a
        return state

    def _key(self, values: tuple[Any, ...]) -> tuple | None:
        if self.spec.missing_fields_strategy == "doNotSuppress" and any(v is None for v in values):
            return None  # never folded
        return tuple(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in values)


def _open(spec: SuppressionSpec, window: Window, time_ns: int, execution: int) -> bool:
    if spec.duration_ns is None:
        return window.execution == execution
    return time_ns - window.start_ns <= spec.duration_ns


def _instance_id(rule_id: str, terms: list[dict]) -> str:
    return hashlib.sha256(orjson.dumps([rule_id, terms], option=orjson.OPT_SORT_KEYS)).hexdigest()
