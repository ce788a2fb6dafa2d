"""The hunt pipeline: rules → sources (read, normalize) → enrich → filter → correlate
(`engine.hunt`) → alerts (`alerts.build`) → sinks, returning a `HuntReport`.

`trailhound hunt` and `trailhound test` run it, and a live `watch` or a Spark driver will: the
command line only parses arguments and renders the report. Nothing here prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..sinks import Sink
from .report import HuntReport, RuleOutcome

if TYPE_CHECKING:
    from ..rules.loader import RuleSet



@dataclass
class Plan:
    """The rules of a hunt, checked: what will run, and what cannot (with the reason)."""

    rules: RuleSet
    checks: list = field(default_factory=list)  # rules.check.RuleCheck, one per rule

    @property
    def runnable(self) -> list:
        return [c for c in self.checks if c.status == "ok"]


def plan(rules) -> Plan:
    """Check every rule of `rules` (a `rules.loader.RuleSet`) with both backends."""
    from ..rules.check import check_rule

    return Plan(rules, [check_rule(r) for r in rules.rules])


def run_hunt(planned: Plan, paths: Sequence[str | os.PathLike], *, input_format: str | None = None,
             read_options=None, max_signals: int | None = None, sinks: Sequence[Sink] = (), now: str | None = None,
             progress: Callable[[int, int], None] | None = None, keep_alerts: bool = False) -> HuntReport:
    """Run the runnable rules of `planned` over the event files `paths`.

    Alerts go to each of `sinks` (objects with `write(alerts)`; the caller opens and closes them)
    rule by rule, in the report's order, and are kept on each `RuleOutcome` with `keep_alerts`.
    Raises `sources.SourceError` when an input cannot be read at all."""
    from .._gc import no_gc
    from ..alerts.build import alerts_for_hits, utc_now
    from ..engine.hunt import TIMESTAMP_FALLBACK, hunt
    from ..rules.exceptions import unattached

    started = time.perf_counter()
    rules = planned.rules
    report = HuntReport(load_errors=list(rules.errors), unattached_lists=unattached(rules.rules, rules.exceptions))
    result = hunt(planned.checks, paths, rules.exceptions, progress=progress, input_format=input_format,
                  read_options=read_options)
    report.load = result.table.report
    report.timings["load"] = result.load_seconds
    report.timings["evaluate"] = time.perf_counter() - started - result.load_seconds

    t0 = time.perf_counter()
    now = now or utc_now()
    with no_gc():  # tens of thousands of alert dicts: see trailhound._gc
        for run in sorted(result.runs, key=lambda r: (-len(r.hits), r.check.rule.name)):
            rule = run.check.rule
            fallback = [w for w in run.warnings if w.startswith(TIMESTAMP_FALLBACK)]
            if fallback:
                report.fallbacks[fallback[0]] = report.fallbacks.get(fallback[0], 0) + 1
            status = {"ok": "ran", "error": "failed"}.get(run.status, run.status)
            outcome = RuleOutcome.of(rule, status, run.error or run.unsupported or "",
                                     kind=run.kind, hits=len(run.hits), excepted=dict(sorted(run.excepted.items())),
                                     seconds=run.seconds)
            outcome.notes = [run.error] if run.error else [w for w in run.warnings if w not in fallback]
            if run.hits:
                rows = sorted({r for h in run.hits for r in h.rows if r is not None})
                docs = dict(zip(rows, (run.table if run.table is not None else result.table).documents(rows)))
                batch = alerts_for_hits(rule, run.kind, run.hits, docs, run.timestamp_field, now, max_signals)
                if batch.suppressed:
                    outcome.notes.append(f"{batch.suppressed} suppressed into earlier alerts")
                if batch.over_max_signals:
                    outcome.notes.append(f"{batch.over_max_signals} hits over max_signals "
                                         f"({rule.max_signals if max_signals is None else max_signals} per "
                                         "execution); see --max-signals")
                outcome.alerts = len(batch.alerts)
                for alert in batch.alerts:
                    outcome.add_alert(alert)
                for sink in sinks:
                    sink.write(batch.alerts)
                if keep_alerts:
                    outcome.alert_documents = batch.alerts
            report.rules.append(outcome)
    for c in planned.checks:
        if c.status != "ok":
            report.rules.append(RuleOutcome.of(c.rule, c.status, c.reason or ""))
    report.timings["alerts"] = time.perf_counter() - t0
    report.timings["total"] = time.perf_counter() - started
    return report
