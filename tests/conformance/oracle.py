"""Comparing our ECS documents with a pipeline's expected ones, field by field."""

from __future__ import annotations

from dataclasses import dataclass, field

from trailhound.alerts.build import flatten


@dataclass
class Agreement:
    equal: int = 0  # fields both sides set, with the same value
    common: int = 0  # fields both sides set
    total: int = 0  # fields the oracle sets (less the ignored ones)
    problems: list[tuple] = field(default_factory=list)  # (where, field, ours, theirs), unexplained

    def add(self, where, ours: dict, theirs: dict, ignored: tuple[str, ...], intentional) -> None:
        """One document pair; `intentional(where, key)` says whether a difference is on purpose.
        Arrays compare as unordered collections, as Elasticsearch indexes them."""
        ours, theirs = flatten(ours), flatten(theirs)
        for key, value in theirs.items():
            if key.startswith(ignored):
                continue
            self.total += 1
            if key in ours:
                self.common += 1
                same = ours[key] == value or (isinstance(value, list) and
                                              sorted(map(str, ours[key] or [])) == sorted(map(str, value)))
                self.equal += same
                if not same and not intentional(where, key):
                    self.problems.append((where, key, ours[key], value))
            elif not intentional(where, key):
                self.problems.append((where, key, None, value))
