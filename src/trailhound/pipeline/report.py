"""What a hunt did, as data: the inputs it read, the rules it ran or could not run and why, what
each found, and where the alerts point (hosts, users, time span). The terminal summary, `--summary
FILE` (JSON), the HTML report and a live status line are renderings of this object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..sources.ecs_json import InputStats, Skipped

#: "hits" and "alerts", as the summary explains them
MEANING = {
    "hits": "matches of the rule's query: an event, a sequence, a sample, a new term or a threshold group",
    "alerts": "Kibana alert documents written for the hits: one per event hit, a shell plus one building "
              "block per event for a sequence; suppressed and over-max_signals hits write none",
}


@dataclass
class RuleOutcome:
    name: str
    rule_id: str
    severity: str
    type: str
    status: str  # "ran", "error" (it could not be run: see reason), "unsupported"
    reason: str = ""
    kind: str = ""  # events, sequences, samples, threshold
    hits: int = 0
    alerts: int = 0
    suppressed: int = 0
    over_max_signals: int = 0
    max_signals: int | None = None
    excepted: dict[str, int] = field(default_factory=dict)  # exception item → events it excepted
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    alert_documents: list[dict] | None = None  # only with run_hunt(keep_alerts=True)

    @classmethod
    def of(cls, rule, status: str, reason: str = "", **kw: Any) -> "RuleOutcome":
        return cls(rule.name, rule.rule_id, rule.severity, rule.type, status, reason, **kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("alert_documents")
        return d


@dataclass
class HuntReport:
    files: list[str] = field(default_factory=list)
    inputs: list[InputStats] = field(default_factory=list)
    events: int = 0
    skipped: list[Skipped] = field(default_factory=list)  # the first bad lines, in full
    skipped_count: int = 0
    notes: list[str] = field(default_factory=list)
    load_errors: list[str] = field(default_factory=list)  # rule or exception files that did not load
    unattached_lists: list[tuple[str, str]] = field(default_factory=list)  # (list id, file) naming no loaded rule
    rules: list[RuleOutcome] = field(default_factory=list)  # those that ran first, most hits first
    fallbacks: dict[str, int] = field(default_factory=dict)  # a warning shared by many rules → how many
    hosts: dict[str, int] = field(default_factory=dict)  # host.name → alerts (shells and event alerts)
    users: dict[str, int] = field(default_factory=dict)
    first_alert: str | None = None  # the earliest and latest kibana.alert.original_time
    last_alert: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def alerts(self) -> int:
        return sum(r.alerts for r in self.rules)

    @property
    def ran(self) -> list[RuleOutcome]:
        return [r for r in self.rules if r.status == "ran"]

    @property
    def unsupported(self) -> list[RuleOutcome]:
        return [r for r in self.rules if r.status == "unsupported"]

    @property
    def errors(self) -> list[RuleOutcome]:
        return [r for r in self.rules if r.status == "error"]

    def bad_inputs(self, ratio: float = 0.5) -> list[InputStats]:
        """Inputs that gave no event while more than `ratio` of their lines were bad: most likely
        not a log Trailhound reads (a binary, a CSV, a wrong encoding)."""
        return [i for i in self.inputs if i.events == 0 and i.lines and i.skipped > ratio * i.lines]

    def observe(self, host: Any, user: Any, when: Any, hosts, users) -> None:
        for value, counter in ((host, hosts), (user, users)):
            for v in value if isinstance(value, list) else [value]:
                if v not in (None, ""):
                    counter[str(v)] += 1
        if isinstance(when, str) and when:
            if self.first_alert is None or when < self.first_alert:
                self.first_alert = when
            if self.last_alert is None or when > self.last_alert:
                self.last_alert = when

    def to_dict(self) -> dict:
        """The report as JSON-ready data, with stable keys (`hunt --summary FILE`)."""
        return {
            "inputs": [asdict(i) for i in self.inputs],
            "events": self.events,
            "bad_lines": self.skipped_count,
            "bad_line_examples": [asdict(s) for s in self.skipped],
            "notes": self.notes,
            "rules": {"ran": len(self.ran), "unsupported": len(self.unsupported),
                      "errors": len(self.errors) + len(self.load_errors)},
            "load_errors": self.load_errors,
            "unattached_exception_lists": [{"list_id": i, "file": f} for i, f in self.unattached_lists],
            "alerts": self.alerts,
            "hits": sum(r.hits for r in self.rules),
            "meaning": MEANING,
            "hosts": self.hosts,
            "users": self.users,
            "first_alert": self.first_alert,
            "last_alert": self.last_alert,
            "per_rule": [r.to_dict() for r in self.rules],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
