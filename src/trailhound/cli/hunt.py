"""`trailhound hunt`: detection rules over event files, alerts in Kibana's schema."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import orjson
import typer

from .common import (ALLOW_BAD_HELP, EXIT_ERROR, EXIT_FOUND, EXIT_OK, HOST_HELP, TZ_HELP, YEAR_HELP, OutputFormat,
                     bad_inputs, check_output, err, fail, input_format_option, input_options, inputs_summary,
                     is_stdout, open_output, print_report, report_bad_inputs)
from .render import TableWriter, cell
from .safe import m

TIMESTAMP_FALLBACK = "no event has timestamp_override"  # engine.hunt's warning
HITS_AND_ALERTS = ("hits: what the rule matched (an event, a sequence, a threshold group, a new term); "
                   "alerts: the Kibana alert documents they give (a sequence gives one per event plus one "
                   "for the whole; suppression and max_signals fold or cap them)")
_NAMES_SHOWN = 3  # hosts or users named in a row; more are counted


@dataclass
class RuleSummary:
    rule_id: str
    name: str
    severity: str
    file: str | None
    hits: int = 0
    alerts: int = 0
    hosts: set = field(default_factory=set)
    users: set = field(default_factory=set)
    first: str | None = None
    last: str | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def add_alert(self, alert: dict, get) -> None:
        self.alerts += 1
        for target, key in ((self.hosts, "host.name"), (self.users, "user.name")):
            v = get(alert, key)
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
                "hits": self.hits, "alerts": self.alerts, "hosts": sorted(self.hosts), "users": sorted(self.users),
                "first": self.first, "last": self.last, "notes": self.notes, "error": self.error}


def _names(values: set) -> str:
    shown = sorted(values)[:_NAMES_SHOWN]
    more = len(values) - len(shown)
    return ", ".join(shown) + (f" +{more}" if more else "")


def hunt(
    files: list[Path] = typer.Argument(..., help="Event files: ECS NDJSON or JSON arrays, auditd or syslog logs (.gz too)."),
    rules: list[Path] = typer.Option([], "--rules", "-r", help="Rule files or directories (detection-rules TOML; "
                                     "default: Trailhound's SSH pack)."),
    exceptions: list[Path] = typer.Option([], "--exceptions", "-x", help="Exception lists: detection-rules "
                                          "exception TOML or Kibana's export NDJSON (files or directories)."),
    value_lists: list[Path] = typer.Option([], "--value-lists", help="Directories of value lists (one value "
                                           "per line, file named by list id) for `list` exception entries."),
    max_signals: Optional[int] = typer.Option(None, "--max-signals", min=0, help="Alerts per rule execution for "
                                              "every rule (default: each rule's max_signals; 0: no limit)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write alerts as NDJSON (Kibana alert schema); "
                                       "'-' is standard output, a .gz name is gzip-compressed."),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table: alerts per rule; "
                                        "ndjson: the alerts themselves on standard output (the table goes to stderr)."),
    summary: Optional[Path] = typer.Option(None, "--summary", help="Also write the summary as JSON to this file."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when rules raise alerts "
                                   "(errors still exit 2)."),
    input_format: Optional[str] = input_format_option(),
    year: Optional[int] = typer.Option(None, "--year", help=YEAR_HELP),
    tz: Optional[str] = typer.Option(None, "--timezone", help=TZ_HELP),
    host: Optional[str] = typer.Option(None, "--host", help=HOST_HELP),
    allow_bad_input: bool = typer.Option(False, "--allow-bad-input", help=ALLOW_BAD_HELP),
) -> None:
    """Run detection rules over event files and report the alerts they raise.

    Exit codes: 0 no alerts; 1 alerts raised; 2 the run cannot be trusted: a rule, exception list
    or input that did not load, a rule that failed, no rule to run, an input with no events and
    mostly bad lines, an output that cannot be written. --exit-zero turns 1 into 0, never 2.
    Rules that cannot run (esql, ML, ...) are listed with the reason. Exception lists sitting among
    the rule files apply to the rules they name.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .._gc import no_gc
    from ..alerts.build import alerts_for_hits, field_value, utc_now
    from ..engine.hunt import hunt as run_hunt
    from ..pack import DIR as PACK
    from ..rules.check import check_rule
    from ..rules.errors import RuleError
    from ..rules.exceptions import unattached
    from ..rules.loader import load_rules
    from ..sources import SourceError

    check_output(out, inputs=files)
    check_output(summary, "--summary", inputs=files)
    options = input_options(year, tz, host)
    started = time.perf_counter()
    rule_paths = rules or [PACK]
    try:
        loaded = load_rules(rule_paths, exceptions, value_lists)
    except RuleError as e:
        raise fail(f"[red]error[/red]: {m(e)}")
    for e in loaded.errors:
        err.print(f"[red]rule error[/red]: {m(e)}")
    for lst in unattached(loaded.rules, loaded.exceptions):
        err.print(f"[yellow]exception list {m(repr(lst.list_id))}[/yellow] ({m(lst.source)}) "
                  "names none of the loaded rules")
    checks = [check_rule(r) for r in loaded.rules]
    unsupported = [c for c in checks if c.status == "unsupported"]
    errors = [c for c in checks if c.status == "error"]
    for c in unsupported:
        err.print(f"[yellow]not run[/yellow] {m(c.rule.name)}: {m(c.reason)}")
    for c in errors:
        err.print(f"[red]not run (error)[/red] {m(c.rule.name)}: {m(c.reason.splitlines()[0] if c.reason else '')}")
    runnable = len(checks) - len(unsupported) - len(errors)
    if runnable == 0:
        why = ("no rule loaded from " + ", ".join(map(str, rule_paths)) + " (rules are detection-rules *.toml files)"
               if not loaded.rules else f"none of the {len(loaded.rules)} rules loaded can run")
        err.print(f"[red]error[/red]: {m(why)}")
        err.print(f"0 rules run, {len(unsupported)} unsupported, {len(errors) + len(loaded.errors)} errors; "
                  "inputs not read")
        raise typer.Exit(EXIT_ERROR)

    bar = Progress(TextColumn("rules"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                   transient=True, disable=not err.is_terminal)
    try:
        with bar:
            task = bar.add_task("rules", total=None)
            result = run_hunt(checks, files, loaded.exceptions,
                              progress=lambda done, total: bar.update(task, completed=done, total=total),
                              input_format=input_format, read_options=options)
    except SourceError as e:
        err.print(f"[red]error reading input[/red]: {m(e)}")
        raise fail(f"0 rules run ({runnable} loaded and runnable); {len(files)} input(s) given, not all readable")

    now = utc_now()
    to_stdout = format is OutputFormat.ndjson or is_stdout(out)
    sinks = []
    if out is not None:
        sinks.append(open_output(out))
    if format is OutputFormat.ndjson and not is_stdout(out):
        sinks.append(open_output(None))
    rows: list[RuleSummary] = []
    excepted: list[tuple[str, str, int]] = []
    fallbacks: dict[str, int] = {}  # said once for all rules, not on every row
    with no_gc():  # tens of thousands of alert dicts: see trailhound._gc
        try:
            for run in sorted(result.runs, key=lambda r: (-len(r.hits), r.check.rule.name)):
                rule = run.check.rule
                row = RuleSummary(rule.rule_id, rule.name, rule.severity, rule.source, len(run.hits), error=run.error)
                excepted.extend((rule.name, label, n) for label, n in sorted(run.excepted.items()))
                fallback = [w for w in run.warnings if w.startswith(TIMESTAMP_FALLBACK)]
                if fallback:
                    fallbacks[fallback[0]] = fallbacks.get(fallback[0], 0) + 1
                row.notes = [run.error] if run.error else [w for w in run.warnings if w not in fallback]
                if run.hits:
                    hit_rows = sorted({r for h in run.hits for r in h.rows if r is not None})
                    docs = dict(zip(hit_rows, result.table.documents(hit_rows)))
                    batch = alerts_for_hits(rule, run.kind, run.hits, docs, run.timestamp_field, now, max_signals)
                    if batch.suppressed:
                        row.notes.append(f"{batch.suppressed} suppressed into earlier alerts")
                    if batch.over_max_signals:
                        row.notes.append(f"{batch.over_max_signals} hits over max_signals "
                                         f"({rule.max_signals if max_signals is None else max_signals} per "
                                         "execution); see --max-signals")
                    for a in batch.alerts:
                        row.add_alert(a, field_value)
                        if sinks:
                            line = orjson.dumps(a, default=str) + b"\n"
                            for s in sinks:
                                s.write(line)
                rows.append(row)
        finally:
            for s in sinks:
                s.close()

    shown = [r for r in rows if r.hits or r.error]
    table_stream = sys.stderr if to_stdout else sys.stdout
    table = TableWriter(("rule", "severity", "hits", "alerts", "hosts", "users", "note"), table_stream,
                        title="alerts by rule")
    for r in shown:
        table.add([cell(r.name), cell(r.severity), str(r.hits), str(r.alerts), cell(_names(r.hosts)),
                   cell(_names(r.users)), cell("; ".join(r.notes))])
    table.close()
    if excepted:
        ex = TableWriter(("rule", "exception", "events"), table_stream, title="events excepted")
        for name, label, n in excepted:
            ex.add([cell(name), cell(label), str(n)])
        ex.close()
    for warning, n in fallbacks.items():
        err.print(f"[yellow]{n} rules[/yellow]: {m(warning)}")
    run_errors = [r for r in rows if r.error]
    for r in run_errors:
        err.print(f"[red]rule failed[/red] {m(r.name)}: {m(r.error)}")
    report = result.table.report
    print_report(report)
    bad = bad_inputs(report)
    failed_input = report_bad_inputs(bad, allow_bad_input)

    total_alerts = sum(r.alerts for r in rows)
    hosts = set().union(*(r.hosts for r in rows)) if rows else set()
    users = set().union(*(r.users for r in rows)) if rows else set()
    times = [t for r in rows for t in (r.first, r.last) if t]
    n_errors = len(errors) + len(loaded.errors) + len(run_errors)
    if total_alerts:
        span = f", from {m(min(times))} to {m(max(times))}" if times else ""
        err.print(f"alerts on {len(hosts)} host(s) ({m(_names(hosts))}), {len(users)} user(s) "
                  f"({m(_names(users))}){span}")
        err.print(f"[dim]{HITS_AND_ALERTS}[/dim]")
    err.print(
        f"{total_alerts} alerts from {sum(bool(r.hits) for r in rows)} rules; "
        f"{len(result.runs) - len(run_errors)} rules run, {len(unsupported)} unsupported, {n_errors} errors; "
        f"{inputs_summary(report)}; {time.perf_counter() - started:.2f}s (load {result.load_seconds:.2f}s)"
        + (f"; alerts written to {m(out)}" if out and not is_stdout(out) else "")
    )
    code = EXIT_ERROR if n_errors or failed_input else EXIT_FOUND if total_alerts and not exit_zero else EXIT_OK
    if summary is not None:
        doc = {
            "exit_code": code, "alerts": total_alerts, "rules_run": len(result.runs) - len(run_errors),
            "hosts": sorted(hosts), "users": sorted(users),
            "first": min(times) if times else None, "last": max(times) if times else None,
            "rules": [r.as_dict() for r in rows],
            "unsupported": [{"rule_id": c.rule.rule_id, "name": c.rule.name, "reason": c.reason} for c in unsupported],
            "errors": [{"rule_id": c.rule.rule_id, "name": c.rule.name, "file": c.rule.source, "reason": c.reason}
                       for c in errors] + [{"rule_id": None, "name": None, "file": e.source, "reason": str(e)}
                                           for e in loaded.errors],
            "excepted": [{"rule": name, "exception": label, "events": n} for name, label, n in excepted],
            "inputs": {"files": report.files, "events": report.events, "bad_lines": report.skipped_count,
                       "mostly_bad": [b.file for b in bad]},
            "hits_and_alerts": HITS_AND_ALERTS,
        }
        with open_output(summary) as sink:
            sink.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str) + b"\n")
    raise typer.Exit(code)
