"""new_terms rules: alert on an event whose combination of term values was not seen recently.

Kibana runs the rule on a schedule and calls a term "new" when it does not occur in the
history window before the execution's own window. Replayed in event order, that is: an
event raises an alert when one of its term combinations was last seen more than the history
window before it (or never). Later events with the same combination inside the window do not
alert again. Multi-valued fields give one combination per value (cartesian over fields).
The state (term → last seen) is explicit and bounded by `expire()`, so a stream can checkpoint it.

`feed` below is the reference, event by event. engine/correlate.py's `NewTermsRun` finds the same new
terms over a whole batch with group-bys and consults and updates this state only once per distinct
combination of the batch (tests/unit/test_correlation_paths.py holds the two equal).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import checkpoint

Term = tuple[Hashable, ...]


@dataclass
class NewTermsState:
    history_ns: int
    last_seen: dict[Term, int] = field(default_factory=dict)

    def feed(self, ts: int, terms: Iterable[Term]) -> list[Term]:
        """Record one event's term combinations; return those that are new."""
        new = []
        for t in terms:
            prev = self.last_seen.get(t)
            if prev is None or ts - prev > self.history_ns:
                new.append(t)
            self.last_seen[t] = ts
        return new

    def expire(self, now_ts: int) -> None:
        """Forget terms last seen before the history window: they would be new again anyway."""
        horizon = now_ts - self.history_ns
        self.last_seen = {t: s for t, s in self.last_seen.items() if s >= horizon}

    def to_dict(self) -> dict[str, Any]:
        return {"history_ns": self.history_ns,
                "last_seen": [[checkpoint.value_out(t), s] for t, s in self.last_seen.items()]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewTermsState:
        return cls(data["history_ns"], {checkpoint.key_in(t): s for t, s in data["last_seen"]})
