"""The hunt pipeline, as one function: rules → sources (read, normalize) → enrich → filter →
correlate (`engine.hunt`) → alerts (`alerts.build`) → sinks; it returns a `HuntReport`.

`trailhound hunt` and `trailhound test` call it, and a live `watch` or a Spark driver will: the
command line only parses arguments and renders the report. Nothing here prints.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Callable, Sequence

from .report import HuntReport, RuleOutcome

TIMESTAMP_FALLBACK = "no event has timestamp_override"  # engine.hunt's warning, said once for all rules


def run_hunt(rules, paths: Sequence[str | os.PathLike], *, input_format: str | None = None, read_options=None,
             max_signals: int | None = None, sinks: Sequence = (), now: str | None = None,
             progress: Callable[[int, int], None] | None = None, keep_alerts: bool = False) -> HuntReport:
    """Run every rule of `rules` (a `rules.loader.RuleSet`) over the event files `paths`.

    Alerts go to each of `sinks` (objects with `write(alerts)`; the caller opens and closes them)
    rule by rule, in the report's order, and are kept on each `RuleOutcome` with `keep_alerts`.
    Raises `sources.SourceError` when an input cannot be read at all."""
    from .._gc import no_gc
    from ..alerts.build import alerts_for_hits, flatten, utc_now
    from ..engine.hunt import hunt
    from ..rules.check import check_rule
    from ..rules.exceptions import unattached

    started = time.perf_counter()
    report = HuntReport(load_errors=[str(e) for e in rules.errors],
                        unattached_lists=[(lst.list_id, str(lst.source)) for lst in unattached(rules.rules, rules.exceptions)])
    checks = [check_rule(r) for r in rules.rules]
    report.timings["rules"] = time.perf_counter() - started
    result = hunt(checks, paths, rules.exceptions, progress=progress, input_format=input_format,
                  read_options=read_options)
    report.timings["load"] = result.load_seconds
    report.timings["evaluate"] = time.perf_counter() - started - result.load_seconds - report.timings["rules"]
    loaded = result.table.report
    report.files, report.inputs, report.events = list(loaded.files), list(loaded.inputs), loaded.events
    report.skipped, report.skipped_count, report.notes = list(loaded.skipped), loaded.skipped_count, list(loaded.notes)

    t0 = time.perf_counter()
    now = now or utc_now()
    hosts: Counter = Counter()
    users: Counter = Counter()
    with no_gc():  # tens of thousands of alert dicts: see trailhound._gc
        for run in sorted(result.runs, key=lambda r: (-len(r.hits), r.check.rule.name)):
            rule = run.check.rule
            fallback = [w for w in run.warnings if w.startswith(TIMESTAMP_FALLBACK)]
            if fallback:
                report.fallbacks[fallback[0]] = report.fallbacks.get(fallback[0], 0) + 1
            outcome = RuleOutcome.of(rule, "error" if run.error else "ran", run.error or "", kind=run.kind,
                                     hits=len(run.hits), excepted=dict(sorted(run.excepted.items())),
                                     seconds=run.seconds, notes=[w for w in run.warnings if w not in fallback])
            if run.hits:
                rows = sorted({r for h in run.hits for r in h.rows if r is not None})
                docs = dict(zip(rows, result.table.documents(rows)))
                batch = alerts_for_hits(rule, run.kind, run.hits, docs, run.timestamp_field, now, max_signals)
                outcome.alerts, outcome.suppressed = len(batch.alerts), batch.suppressed
                outcome.over_max_signals = batch.over_max_signals
                outcome.max_signals = rule.max_signals if max_signals is None else max_signals
                for alert in batch.alerts:
                    if "kibana.alert.group.index" in alert:
                        continue  # a sequence's building block: its shell speaks for the hit
                    flat = flatten(alert)
                    report.observe(flat.get("host.name"), flat.get("user.name"),
                                   flat.get("kibana.alert.original_time"), hosts, users)
                for sink in sinks:
                    sink.write(batch.alerts)
                if keep_alerts:
                    outcome.alert_documents = batch.alerts
            report.rules.append(outcome)
    for c in checks:
        if c.status != "ok":
            report.rules.append(RuleOutcome.of(c.rule, c.status, c.reason))
    report.hosts, report.users = dict(hosts.most_common()), dict(users.most_common())
    report.timings["alerts"] = time.perf_counter() - t0
    report.timings["total"] = time.perf_counter() - started
    return report
