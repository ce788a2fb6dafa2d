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
    from ..alerts.build import utc_now
    from ..engine.hunt import hunt
    from ..rules.exceptions import unattached
    from .alert_stage import alert_batches

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
    # alert documents only where something needs them whole; NDJSON sinks take the lines, made faster
    form = ("dicts" if keep_alerts or not all(hasattr(s, "write_lines") for s in sinks)
            else "lines" if sinks else "facts")
    with no_gc():  # tens of thousands of alert dicts: see trailhound._gc
        runs = sorted(result.runs, key=lambda r: (-len(r.hits), r.check.rule.name))
        for run, batch in alert_batches(result, runs, now, max_signals, form):
            rule = run.check.rule
            status = {"ok": "ran", "error": "failed"}.get(run.status, run.status)
            outcome = rule_outcome(report, rule, status, run.error or run.unsupported or "", kind=run.kind,
                                   hits=len(run.hits), excepted=dict(sorted(run.excepted.items())),
                                   seconds=run.seconds, warnings=run.warnings, error=run.error)
            if batch is not None:
                deliver(outcome, rule, batch.alerts if form == "dicts" else batch.facts, suppressed=batch.suppressed,
                        over_max_signals=batch.over_max_signals, max_signals=max_signals, sinks=sinks,
                        keep_alerts=keep_alerts, lines=batch.lines if form == "lines" else None)
            report.rules.append(outcome)
    for c in planned.checks:
        if c.status != "ok":
            report.rules.append(RuleOutcome.of(c.rule, c.status, c.reason or ""))
    report.timings["alerts"] = time.perf_counter() - t0
    report.timings["total"] = time.perf_counter() - started
    return report


def rule_outcome(report: HuntReport, rule, status: str, reason: str, *, kind: str | None, hits: int,
                 excepted: dict[str, int], seconds: float, warnings: Sequence[str], error: str | None) -> RuleOutcome:
    """A rule's line of the report, its notes from the run's warnings; a timestamp-fallback warning is
    counted once for the report (`report.fallbacks`), not repeated per rule. The local and the Spark
    runners both build their outcomes here."""
    from ..engine.hunt import TIMESTAMP_FALLBACK

    fallback = [w for w in warnings if w.startswith(TIMESTAMP_FALLBACK)]
    if fallback:
        report.fallbacks[fallback[0]] = report.fallbacks.get(fallback[0], 0) + 1
    outcome = RuleOutcome.of(rule, status, reason, kind=kind, hits=hits, excepted=excepted, seconds=seconds)
    outcome.notes = [error] if error else [w for w in warnings if w not in fallback]
    return outcome


def deliver(outcome: RuleOutcome, rule, alerts: list[dict], *, suppressed: int, over_max_signals: int,
            max_signals: int | None, sinks: Sequence[Sink], keep_alerts: bool, lines: list[bytes] | None = None) -> None:
    """A rule's alerts: counted on its outcome (with notes for what suppression and max_signals held back),
    written to every sink, and kept on the outcome when asked.

    With `lines` (the alerts as NDJSON, `alerts.build.alert_json`), the sinks take those (`write_lines`) and
    `alerts` need only hold each alert's source fields and original time (`AlertBatch.facts`)."""
    if suppressed:
        outcome.notes.append(f"{suppressed} suppressed into earlier alerts")
    if over_max_signals:
        outcome.notes.append(f"{over_max_signals} hits over max_signals "
                             f"({rule.max_signals if max_signals is None else max_signals} per "
                             "execution); see --max-signals")
    outcome.alerts = len(alerts)
    for alert in alerts:
        outcome.add_alert(alert)
    for sink in sinks:
        if lines is not None:
            sink.write_lines(lines)  # type: ignore[attr-defined]  # run_hunt passes lines only to sinks that take them
        else:
            sink.write(alerts)
    if keep_alerts:
        outcome.alert_documents = alerts
