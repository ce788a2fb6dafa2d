"""What a hunt returns: one RuleRun per rule (its hits, warnings, errors, time) and the Hunt around them.

Its own module so that the hunt and the rule kinds it hands work to (raw audit records, Sigma
correlations) share these types without importing one another."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..rules.errors import UnsupportedError, reason_of

if TYPE_CHECKING:
    from ..rules.check import RuleCheck
    from ..rules.exceptions import ExceptionItem
    from ..sources import EventTable
    from .search import Hit


@dataclass
class RuleRun:
    check: RuleCheck
    kind: str = ""
    hits: list[Hit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # why the rule failed at run time (its hits are then empty)
    seconds: float = 0.0
    timestamp_field: str = "@timestamp"
    exceptions: list[ExceptionItem] = field(default_factory=list)
    excepted: dict[str, int] = field(default_factory=dict)  # item label → events it excepted
    unsupported: str | None = None  # a feature the rule needs that Trailhound lacks (not an error)
    table: EventTable | None = None  # where its hits' rows are, when not the hunt's table (raw audit records)

    @property
    def status(self) -> str:
        """ok, error or unsupported: how this rule's run ended."""
        return "unsupported" if self.unsupported else "error" if self.error else "ok"

    def fail(self, error: BaseException | str) -> None:
        """Record why the rule did not run (UnsupportedError: as unsupported); it has no hits."""
        self.kind, self.hits = "", []
        if isinstance(error, UnsupportedError):
            self.unsupported = reason_of(error)
        else:
            self.error = error if isinstance(error, str) else reason_of(error)

    def record(self, result) -> None:
        """Take a search's outcome (a SearchResult): its kind, hits and warnings."""
        self.kind, self.hits = result.kind, result.hits
        self.warnings.extend(result.warnings)


@dataclass
class Hunt:
    table: EventTable
    runs: list[RuleRun]
    load_seconds: float
