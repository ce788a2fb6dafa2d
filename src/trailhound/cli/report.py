"""`trailhound report`: an alerts file (what `hunt --out` writes) as a self-contained HTML report,
an ATT&CK Navigator layer, a Markdown summary and exception entries for review; `hunt --html`
writes the same from the hunt it just ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer

from .common import (
    EXIT_OK,
    Host,
    InputFormat,
    TimeZone,
    Year,
    check_output,
    err,
    fail,
    input_options,
)
from .safe import m

MAX_BAD_SHOWN = 20


def read_alerts(path: Path) -> tuple[list[dict], list[dict]]:
    """The alert documents of an NDJSON file (compressed too), and its bad lines ({file, line,
    reason}): a line that is not a JSON object is reported, never dropped silently."""
    from ..sources.inputs import Source, SourceError, bounded_lines

    alerts: list[dict] = []
    bad: list[dict] = []
    try:
        src = Source.open(str(path))
        with src.open_binary() as fh:
            for n, line in enumerate(bounded_lines(fh, 64 << 20), 1):
                if isinstance(line, int):
                    bad.append({"file": str(path), "line": n, "reason": f"line of {line} bytes, over the 64 MiB limit"})
                    continue
                if not line.strip():
                    continue
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    bad.append({"file": str(path), "line": n, "reason": f"not JSON: {e}"})
                    continue
                if not isinstance(doc, dict):
                    bad.append({"file": str(path), "line": n, "reason": "not a JSON object"})
                    continue
                alerts.append(doc)
    except (SourceError, OSError, EOFError) as e:
        raise fail(f"[red]error reading alerts[/red]: {m(e)}") from None
    return alerts, bad


def write_outputs(data: Any, *, html: Path | None = None, navigator: Path | None = None,
                  markdown: Path | None = None, exceptions_out: Path | None = None,
                  title: str = "Trailhound report") -> list[str]:
    """Write each asked-for rendering of `data` (a `report.ReportData`); what was written, for
    the closing line. An output that cannot be written exits 2 with the reason."""
    from ..report.html import render_html
    from ..report.markdown import markdown_summary
    from ..report.navigator import navigator_layer
    from ..report.tuning import exception_files

    done = []
    try:
        if html is not None:
            html.write_text(render_html(data, title), encoding="utf-8")
            done.append(f"report {html}")
        if navigator is not None:
            navigator.write_bytes(orjson.dumps(navigator_layer(data, title), option=orjson.OPT_INDENT_2) + b"\n")
            done.append(f"Navigator layer {navigator}")
        if markdown is not None:
            markdown.write_text(markdown_summary(data, title), encoding="utf-8")
            done.append(f"summary {markdown}")
        if exceptions_out is not None:
            files = exception_files(data.tuning, data.rules)
            exceptions_out.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (exceptions_out / name).write_text(text, encoding="utf-8")
            done.append(f"{len(files)} exception lists in {exceptions_out}")
    except OSError as e:
        raise fail(f"[red]error[/red]: cannot write: {m(e)}") from None
    return done


def check_outputs(html: Path | None, navigator: Path | None, markdown: Path | None, exceptions_out: Path | None,
                  inputs=()) -> None:
    """Refuse (exit 2) before any work an output that cannot be written or that names an input."""
    for path, what in ((html, "--html"), (navigator, "--navigator"), (markdown, "--markdown")):
        if path is not None and str(path) == "-":
            raise fail(f"[red]error[/red]: {what} needs a file name")
        check_output(path, what, inputs=inputs)
    named = [p.resolve() for p in (html, navigator, markdown) if p is not None]
    if len(set(named)) != len(named):
        raise fail("[red]error[/red]: two outputs name the same file; give one file each")
    if exceptions_out is not None and exceptions_out.exists() and not exceptions_out.is_dir():
        raise fail(f"[red]error[/red]: --exceptions-out {m(str(exceptions_out))} is a file; give a directory")


def report(
    alerts_file: Path = typer.Argument(..., help="Alerts as NDJSON (what hunt --out writes; .gz too)."),
    events: list[Path] | None = typer.Argument(None, help="The event files of the hunt: the process tree around each "
                                        "alert's event is built from them."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the HTML report here (default: report.html "
                                       "when no other output is asked for)."),
    summary: Path | None = typer.Option(None, "--summary", help="The hunt's --summary JSON: inputs, skipped "
                                           "lines, rules run and rules that could not run."),
    rules: list[Path] = typer.Option([], "--rules", "-r", help="The rules of the hunt (author, license, file); "
                                     "default: Trailhound's SSH pack, for the alerts of its rules."),
    navigator: Path | None = typer.Option(None, "--navigator", help="Also write an ATT&CK Navigator layer (JSON)."),
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write a Markdown summary (for tickets)."),
    exceptions_out: Path | None = typer.Option(None, "--exceptions-out", help="Write, into this directory, one "
                                                  "exception list (detection-rules TOML) per noisy rule, for review."),
    title: str = typer.Option("Trailhound report", "--title", help="The report's title."),
    input_format: InputFormat = None,
    year: Year = None,
    tz: TimeZone = None,
    host: Host = None,
) -> None:
    """Write a self-contained HTML report of an alerts file: overview (severities, rules, hosts,
    users, ATT&CK matrix, timeline, the run), a sortable and filterable alert list, each alert's
    rule, events, sequence steps, process tree, investigation guide and exception entry, and a
    tuning view of the noisiest rules. No network: the file opens offline in any browser.

    Exit codes: 0 written; 2 an input that cannot be read or an output that cannot be written.
    """
    from ..pack import DIR as PACK
    from ..report import build_report
    from ..rules.errors import RuleError
    from ..rules.loader import load_rules
    from ..sources import SourceError

    events = events or []
    if out is None and navigator is None and markdown is None and exceptions_out is None:
        out = Path("report.html")
    check_outputs(out, navigator, markdown, exceptions_out, inputs=[alerts_file, *events, *([summary] if summary else [])])
    options = input_options(year, tz, host)
    alerts, bad = read_alerts(alerts_file)
    for b in bad[:MAX_BAD_SHOWN]:
        err.print(f"[yellow]skipped[/yellow] {m(b['file'])}:{b['line']}: {m(b['reason'])}")
    if len(bad) > MAX_BAD_SHOWN:
        err.print(f"[yellow]... {len(bad) - MAX_BAD_SHOWN} more bad lines[/yellow]")
    if not alerts and bad:
        raise fail(f"[red]error[/red]: {m(str(alerts_file))}: no alert; {len(bad)} bad lines (not an alerts file?)")
    summary_doc = None
    if summary is not None:
        try:
            summary_doc = orjson.loads(summary.read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            raise fail(f"[red]error reading --summary[/red] {m(str(summary))}: {m(e)}") from None
        if not isinstance(summary_doc, dict) or "rules" not in summary_doc:
            raise fail(f"[red]error[/red]: --summary {m(str(summary))} is not a hunt --summary file")
    try:
        loaded = load_rules(rules or [PACK])
    except RuleError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None
    for problem in loaded.errors:
        err.print(f"[yellow]rule not loaded[/yellow]: {m(problem)}")
    index, skipped = None, [dict(b) for b in bad]
    if events:
        from ..report.processes import index_events

        try:
            index, load = index_events(events, input_format, options)
        except SourceError as e:
            raise fail(f"[red]error reading input[/red]: {m(e)}") from None
        skipped += [{"file": s.file, "line": s.line, "reason": s.reason} for s in load.skipped]
    data = build_report(alerts, summary=summary_doc, rules=loaded.rules, processes=index, skipped=skipped,
                        meta={"source": alerts_file.name})
    done = write_outputs(data, html=out, navigator=navigator, markdown=markdown, exceptions_out=exceptions_out,
                         title=title)
    err.print(f"{data.count} alerts from {len(data.rules)} rules; " + "; ".join(m(d) for d in done))
    raise typer.Exit(EXIT_OK)


def _has_pid(alert: dict) -> bool:
    process = alert.get("process")
    return "process.pid" in alert or (isinstance(process, dict) and "pid" in process)


def hunt_reports(hunt_report: Any, files: list[Path], rules: list, code: int, mostly_bad: list[str], *,
                 html: Path | None, navigator: Path | None, markdown: Path | None, input_format: str | None,
                 options: Any) -> list[str]:
    """`hunt --html/--navigator/--markdown`: the report of the hunt that just ran (its
    `HuntReport`, run with `keep_alerts`), with the process trees of its event files."""
    from ..report import build_report
    from ..report.processes import index_events
    from ..sources import SourceError

    alerts = [a for r in hunt_report.rules for a in (r.alert_documents or [])]
    index = None
    # the event files are read again for the process trees: only when some alert names a process
    if html is not None and any(_has_pid(a) for a in alerts):
        try:
            index, _ = index_events(files, input_format, options)
        except SourceError as e:  # the hunt read them a moment ago: say it, still write the report
            err.print(f"[yellow]warning[/yellow]: process trees left out: {m(e)}")
    load = hunt_report.load
    skipped = [{"file": s.file, "line": s.line, "reason": s.reason} for s in (load.skipped if load else [])]
    data = build_report(alerts, summary=hunt_report.to_dict(code, mostly_bad), rules=rules, processes=index,
                        skipped=skipped)
    done = write_outputs(data, html=html, navigator=navigator, markdown=markdown)
    return [m(d) + " written" for d in done]
