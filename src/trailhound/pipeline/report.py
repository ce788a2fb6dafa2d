"""What a hunt did, as data: the inputs it read, the rules it ran or could not run and why, what
each found, and where the alerts point (hosts, users, time span). The terminal summary, `--summary
FILE` (JSON), the HTML report and a live status line are renderings of this object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

HITS_AND_ALERTS = ("hits: what the rule matched (an event, a sequence, a threshold group, a new term); "
                   "alerts: the Kibana alert documents they give (a sequence gives one per event plus one "
                   "for the whole; suppression and max_signals fold or cap them)")


@dataclass
class RuleOutcome:
    """One rule of the hunt. `status`: "ran"; "failed" (it ran and failed on the data: `reason`);
    "error" (it could not be run: its query does not parse or compile, `reason`); "unsupported"
    (it needs a feature Trailhound lacks: `reason`)."""

    rule_id: str
    name: str
    severity: str
    file: str | None
    status: str
    reason: str = ""
    kind: str = ""  # events, sequences, samples, threshold
    hits: int = 0
    alerts: int = 0
    hosts: set[str] = field(default_factory=set)  # host.name / user.name of the alerts
    users: set[str] = field(default_factory=set)
    first: str | None = None  # the earliest and latest kibana.alert.original_time
    last: str | None = None
    notes: list[str] = field(default_factory=list)  # warnings, suppressed and over-max_signals counts
    excepted: dict[str, int] = field(default_factory=dict)  # exception item → events it excepted
    seconds: float = 0.0
    alert_documents: list[dict] | None = None  # only with run_hunt(keep_alerts=True)
    author: tuple[str, ...] = ()  # the rule's authors (the Detection Rule License of SigmaHQ's rules asks for them)

    @classmethod
    def of(cls, rule, status: str, reason: str = "", **kw: Any) -> RuleOutcome:
        return cls(rule.rule_id, rule.name, rule.severity, rule.source, status, reason,
                   author=tuple(getattr(rule, "author", ()) or ()), **kw)

    def add_alert(self, alert: dict) -> None:
        """Count one alert into the hosts, users and time span."""
        from ..alerts.build import field_value

        for target, key in ((self.hosts, "host.name"), (self.users, "user.name")):
            v = field_value(alert, key)
            for x in v if isinstance(v, list) else [v]:
                if x not in (None, ""):
                    target.add(str(x))
        t = alert.get("kibana.alert.original_time")
        if t:
            t = str(t)
            self.first = t if self.first is None or t < self.first else self.first
            self.last = t if self.last is None or t > self.last else self.last

    def as_dict(self) -> dict:
        return {"rule_id": self.rule_id, "name": self.name, "severity": self.severity, "file": self.file,
                "status": self.status, "kind": self.kind, "hits": self.hits, "alerts": self.alerts,
                "hosts": sorted(self.hosts), "users": sorted(self.users), "first": self.first, "last": self.last,
                "notes": self.notes, "error": self.reason if self.status in ("failed", "error") else None,
                "excepted": self.excepted, "seconds": round(self.seconds, 4), "author": list(self.author)}


@dataclass
class HuntReport:
    load: Any = None  # the sources' LoadReport: files, inputs (per file), events, bad lines, notes
    load_errors: list = field(default_factory=list)  # RuleErrors: rule or exception files that did not load
    unattached_lists: list = field(default_factory=list)  # ExceptionLists naming no loaded rule
    rules: list[RuleOutcome] = field(default_factory=list)  # those run first (most hits first), then the rest
    fallbacks: dict[str, int] = field(default_factory=dict)  # a warning many rules share → how many
    timings: dict[str, float] = field(default_factory=dict)

    def with_status(self, *status: str) -> list[RuleOutcome]:
        return [r for r in self.rules if r.status in status]

    @property
    def alerts(self) -> int:
        return sum(r.alerts for r in self.rules)

    @property
    def hosts(self) -> set[str]:
        return set().union(*(r.hosts for r in self.rules))

    @property
    def users(self) -> set[str]:
        return set().union(*(r.users for r in self.rules))

    @property
    def span(self) -> tuple[str | None, str | None]:
        times = [t for r in self.rules for t in (r.first, r.last) if t]
        return (min(times), max(times)) if times else (None, None)

    @property
    def errors(self) -> int:
        """Rules that could not be run or failed, and files that did not load."""
        return len(self.with_status("error", "failed")) + len(self.load_errors)

    def to_dict(self, exit_code: int | None = None, mostly_bad: Sequence[str] = ()) -> dict:
        """The report as JSON-ready data with stable keys (`hunt --summary FILE`)."""
        first, last = self.span
        load = self.load
        ran = self.with_status("ran", "failed")
        return {
            "exit_code": exit_code,
            "alerts": self.alerts,
            "hits": sum(r.hits for r in self.rules),
            "rules_run": len([r for r in ran if r.status == "ran"]),
            "hosts": sorted(self.hosts), "users": sorted(self.users), "first": first, "last": last,
            "rules": [r.as_dict() for r in ran],
            "unsupported": [{"rule_id": r.rule_id, "name": r.name, "reason": r.reason}
                            for r in self.with_status("unsupported")],
            "errors": [{"rule_id": r.rule_id, "name": r.name, "file": r.file, "reason": r.reason}
                       for r in self.with_status("error", "failed")]
                      + [{"rule_id": None, "name": None, "file": e.source, "reason": str(e)} for e in self.load_errors],
            "excepted": [{"rule": r.name, "exception": label, "events": n}
                         for r in self.rules for label, n in r.excepted.items()],
            "inputs": {"files": list(load.files) if load else [], "events": load.events if load else 0,
                       "bad_lines": load.skipped_count if load else 0, "mostly_bad": list(mostly_bad),
                       "notes": list(load.notes) if load else [],
                       "per_file": [asdict(i) for i in load.inputs] if load else []},
            "hits_and_alerts": HITS_AND_ALERTS,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
