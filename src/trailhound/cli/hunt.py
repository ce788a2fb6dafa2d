"""`trailhound hunt`: detection rules over event files, alerts in Kibana's schema."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import orjson
import typer

from .common import (
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_OK,
    AllowBadInput,
    Host,
    InputFormat,
    OutputFormat,
    SigmaPlaceholder,
    SigmaPlaceholders,
    TimeZone,
    Year,
    bad_inputs,
    check_output,
    err,
    fail,
    input_options,
    inputs_summary,
    is_stdout,
    open_output,
    print_report,
    report_bad_inputs,
    sigma_placeholders,
    starting,
)
from .render import TableWriter, cell
from .safe import m
from .sink_options import SINK_HELP, check_sinks, open_sinks, report_delivery

_NAMES_SHOWN = 3  # hosts or users named in a row; more are counted


def _names(values: set) -> str:
    shown = sorted(values)[:_NAMES_SHOWN]
    more = len(values) - len(shown)
    return ", ".join(shown) + (f" +{more}" if more else "")


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar of the rules run on a terminal (rich.progress is imported only
    there: 20 ms of every hunt otherwise); None elsewhere."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("rules"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("rules", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def hunt(
    files: list[str] = typer.Argument(..., help="Event files: ECS NDJSON or JSON arrays, auditd or syslog logs (.gz too); "
                                      "with --engine spark also URIs Spark reads (file:, hdfs://, s3a://...)."),
    rules: list[Path] = typer.Option([], "--rules", "-r", help="Rule files or directories (detection-rules TOML, Sigma YAML; "
                                     "default: Trailhound's SSH pack)."),
    exceptions: list[Path] = typer.Option([], "--exceptions", "-x", help="Exception lists: detection-rules "
                                          "exception TOML or Kibana's export NDJSON (files or directories)."),
    value_lists: list[Path] = typer.Option([], "--value-lists", help="Directories of value lists (one value "
                                           "per line, file named by list id) for `list` exception entries."),
    max_signals: int | None = typer.Option(None, "--max-signals", min=0, help="Alerts per rule execution for "
                                              "every rule (default: each rule's max_signals; 0: no limit)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write alerts as NDJSON (Kibana alert schema); "
                                       "'-' is standard output, a .gz name is gzip-compressed."),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table: alerts per rule; "
                                        "ndjson: the alerts themselves on standard output (the table goes to stderr)."),
    sink_specs: list[str] = typer.Option([], "--sink", metavar="SPEC", help=SINK_HELP),
    summary: Path | None = typer.Option(None, "--summary", help="Also write the summary as JSON to this file."),
    html: Path | None = typer.Option(None, "--html", help="Also write a self-contained HTML report of the alerts "
                                        "(see trailhound report)."),
    navigator: Path | None = typer.Option(None, "--navigator", help="Also write an ATT&CK Navigator layer (JSON)."),
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write a Markdown summary of the alerts."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when rules raise alerts "
                                   "(errors still exit 2)."),
    input_format: InputFormat = None,
    year: Year = None,
    tz: TimeZone = None,
    host: Host = None,
    allow_bad_input: AllowBadInput = False,
    placeholders: SigmaPlaceholders = None,
    placeholder: SigmaPlaceholder = None,
    engine: str = typer.Option("local", "--engine", help="local, or spark: the same hunt on Apache Spark "
                               "(pip install 'trailhound[spark]'; README \"Spark and Parquet\")."),
    master: str | None = typer.Option(None, "--master", help="With --engine spark: local[N], spark://host:port, "
                                      "or sc://host:port for Spark Connect (default local[*])."),
    out_format: str = typer.Option("ndjson", "--out-format", help="ndjson: --out is a file; parquet: --out is a "
                                   "directory of alerts-NNNNN.parquet files (the same alert documents)."),
) -> None:
    """Run detection rules over event files and report the alerts they raise.

    Exit codes: 0 no alerts; 1 alerts raised; 2 the run cannot be trusted: a rule, exception list
    or input that did not load, a rule that failed, no rule to run, an input with no events and
    mostly bad lines, an output that cannot be written, a --sink that did not deliver every alert.
    --exit-zero turns 1 into 0, never 2.
    Rules that cannot run (esql, ML, ...) are listed with the reason. Exception lists sitting among
    the rule files apply to the rules they name.
    """
    with starting():
        from ..engine import hunt as _engine  # noqa: F401 - the engine, imported here with the rest
        from ..pack import DIR as PACK
        from ..pipeline import HITS_AND_ALERTS, plan, run_hunt
        from ..rules.errors import RuleError
        from ..rules.loader import load_rules
        from ..rules.sigma import with_placeholders
        from ..sinks import NdjsonSink, Sink, SinkError
        from ..sources import SourceError

    paths = [Path(f) for f in files]  # `files` as given: a URI (s3a://bucket/key) is not a Path
    if out_format not in ("ndjson", "parquet"):
        raise fail(f"[red]error[/red]: unknown --out-format {m(repr(out_format))}; choose ndjson or parquet")
    if out_format == "parquet":
        from ..sinks.parquet import directory_problem

        why = "give the directory with --out DIR" if out is None else directory_problem(out, paths)
        if why is not None:
            raise fail(f"[red]error[/red]: --out-format parquet: {m(why)}")
    else:
        check_output(out, inputs=paths)
    checked_sinks = check_sinks(sink_specs, inputs=paths, taken=[out, summary],
                                stdout_taken=format is OutputFormat.ndjson)
    check_output(summary, "--summary", inputs=[*paths, *([out] if out is not None else [])])
    if summary is not None and is_stdout(summary) and (format is OutputFormat.ndjson or is_stdout(out)):
        raise fail("[red]error[/red]: the alerts go to standard output; write --summary to a file")
    if out is not None and summary is not None and not is_stdout(out) and Path(out).resolve() == Path(summary).resolve():
        raise fail(f"[red]error[/red]: --out and --summary name the same file ({m(str(out))}); give two files")
    reports = html is not None or navigator is not None or markdown is not None
    if reports:
        from .report import check_outputs

        check_outputs(html, navigator, markdown, None,
                      inputs=[*paths, *([out] if out is not None else []), *([summary] if summary else [])])
    options = input_options(year, tz, host)
    if engine not in ("local", "spark"):
        raise fail(f"[red]error[/red]: unknown --engine {m(repr(engine))}; choose local or spark")
    if master is not None and engine != "spark":
        raise fail("[red]error[/red]: --master goes with --engine spark")
    if engine == "local" and (uris := [f for f in files if _is_uri(f)]):
        raise fail(f"[red]error[/red]: {m(uris[0])} is a URI: inputs on Spark's filesystems are read with "
                   "--engine spark")
    started = time.perf_counter()
    rule_paths = rules or [PACK]
    values = sigma_placeholders(placeholders, placeholder)
    try:
        loaded_rules = load_rules(rule_paths, exceptions, value_lists)
        loaded_rules.rules[:] = with_placeholders(loaded_rules.rules, values)
        planned = plan(loaded_rules)
    except RuleError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None
    loaded = planned.rules
    for error in loaded.errors:
        err.print(f"[red]rule error[/red]: {m(error)}")
    unsupported = [c for c in planned.checks if c.status == "unsupported"]
    errors = [c for c in planned.checks if c.status == "error"]
    for c in unsupported:
        err.print(f"[yellow]not run[/yellow] {m(c.rule.name)}: {m(c.reason)}")
    for c in errors:
        err.print(f"[red]not run (error)[/red] {m(c.rule.name)}: {m(c.reason.splitlines()[0] if c.reason else '')}")
    if not planned.runnable:
        why = ("no rule loaded from " + ", ".join(map(str, rule_paths))
               + " (rules are detection-rules *.toml and Sigma *.yml files)"
               if not loaded.rules else f"none of the {len(loaded.rules)} rules loaded can run")
        err.print(f"[red]error[/red]: {m(why)}")
        err.print(f"0 rules run, {len(unsupported)} unsupported, {len(errors) + len(loaded.errors)} errors; "
                  "inputs not read")
        raise typer.Exit(EXIT_ERROR)

    to_stdout = format is OutputFormat.ndjson or is_stdout(out) or any(s.target == "-" for s in checked_sinks)
    try:
        sinks: list[Sink] = [] if out is None else [NdjsonSink(out)] if out_format == "ndjson" else [_parquet_sink(out)]
        if format is OutputFormat.ndjson and not is_stdout(out):
            sinks.append(NdjsonSink("-"))
    except SinkError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None
    sinks += open_sinks(checked_sinks)
    try:
        with _progress() as progress:
            runner = run_hunt
            if engine == "spark":
                from ..spark.driver import SparkUnavailable, run_hunt_spark, session

                try:
                    runner = partial(run_hunt_spark, spark=session(master))
                except SparkUnavailable as e:
                    raise fail(f"[red]error[/red]: {m(e)}") from None
            try:
                report = runner(planned, files if engine == "spark" else paths, input_format=input_format,
                                read_options=options, max_signals=max_signals, sinks=sinks, keep_alerts=reports,
                                progress=progress)
            except Exception as e:
                if engine == "spark":
                    from ..spark.driver import out_of_memory

                    if (why := out_of_memory(e)) is not None:
                        raise fail(f"[red]error[/red]: {m(why)}") from None
                raise
    except SourceError as e:
        err.print(f"[red]error reading input[/red]: {m(e)}")
        raise fail(f"0 rules run ({len(planned.runnable)} loaded and runnable); {len(files)} input(s) given, "
                   "not all readable") from None
    finally:
        for s in sinks:
            s.close()
    for lst in report.unattached_lists:
        err.print(f"[yellow]exception list {m(repr(lst.list_id))}[/yellow] ({m(lst.source)}) "
                  "names none of the loaded rules")

    ran = report.with_status("ran", "failed")
    shown = [r for r in ran if r.hits or r.status == "failed"]
    table_stream = sys.stderr if to_stdout else sys.stdout
    table = TableWriter(("rule", "severity", "hits", "alerts", "hosts", "users", "note"), table_stream,
                        title="alerts by rule")
    for r in shown:
        table.add([cell(r.name), cell(r.severity), str(r.hits), str(r.alerts), cell(_names(r.hosts)),
                   cell(_names(r.users)), cell("; ".join(r.notes))])
    table.close()
    excepted = [(r.name, label, n) for r in ran for label, n in r.excepted.items()]
    if excepted:
        ex = TableWriter(("rule", "exception", "events"), table_stream, title="events excepted")
        for name, label, n in excepted:
            ex.add([cell(name), cell(label), str(n)])
        ex.close()
    for warning, n in report.fallbacks.items():
        err.print(f"[yellow]{n} rules[/yellow]: {m(warning)}")
    for r in report.with_status("failed"):
        err.print(f"[red]rule failed[/red] {m(r.name)}: {m(r.reason)}")
    said = {(c.rule.rule_id, c.rule.name) for c in unsupported}  # before the run
    for r in report.with_status("unsupported"):
        if (r.rule_id, r.name) not in said:  # found to need a feature we lack while running
            err.print(f"[yellow]not run[/yellow] {m(r.name)}: {m(r.reason)}")
    delivery, delivered = report_delivery(sinks)
    load = report.load
    print_report(load)
    bad = bad_inputs(load)
    failed_input = report_bad_inputs(bad, allow_bad_input)

    total_alerts = report.alerts
    hosts, users = report.hosts, report.users
    first, last = report.span
    if total_alerts:
        span = f", from {m(first)} to {m(last)}" if first else ""
        err.print(f"alerts on {len(hosts)} host(s) ({m(_names(hosts))}), {len(users)} user(s) "
                  f"({m(_names(users))}){span}")
        err.print(f"[dim]{HITS_AND_ALERTS}[/dim]")
    err.print(
        f"{total_alerts} alerts from {sum(bool(r.hits) for r in ran)} rules; "
        f"{len(report.with_status('ran'))} rules run, {len(report.with_status('unsupported'))} unsupported, "
        f"{report.errors} errors; {inputs_summary(load)}; {time.perf_counter() - started:.2f}s "
        f"(load {report.timings['load']:.2f}s)"
        + (f"; alerts written to {m(out)}" if out and not is_stdout(out) else "")
    )
    code = EXIT_ERROR if report.errors or failed_input or not delivered else EXIT_FOUND if total_alerts and not exit_zero else EXIT_OK
    if summary is not None:
        with open_output(summary) as sink:
            doc = report.to_dict(code, [b.file for b in bad])
            doc["sinks"] = delivery
            sink.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str) + b"\n")
    if reports:
        from .report import hunt_reports

        for line in hunt_reports(report, paths, loaded.rules, code, [b.file for b in bad], html=html,
                                 navigator=navigator, markdown=markdown, input_format=input_format, options=options):
            err.print(line)
    raise typer.Exit(code)


def _parquet_sink(out: Path):
    from ..sinks.parquet import ParquetSink

    return ParquetSink(out)


def _is_uri(text: str) -> bool:
    from ..spark.driver import is_uri

    return is_uri(text)
