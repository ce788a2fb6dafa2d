"""`--sink SPEC` for the commands that write alerts (hunt, watch): the option, its specs parsed and
checked before the work (exit 2 with the reason), the sinks opened, and their delivery figures
reported after (a sink that did not deliver every alert makes the run exit 2: EXIT_ERROR)."""

from __future__ import annotations

from .common import err, fail
from .safe import m

SINK_HELP = ("Also send the alerts to SPEC (repeatable): ndjson:PATH (add ?max_bytes=100M&keep=5 to rotate), "
             "stdout, syslog:unix:///dev/log, syslog:udp://HOST:PORT, syslog:tcp://HOST:PORT (RFC 5424), "
             "webhook:http://HOST:PORT/PATH (JSON, retries, on-disk spool), "
             "elasticsearch:http://HOST:9200[?index=NAME] (_bulk; credentials from TRAILHOUND_ES_API_KEY or "
             "TRAILHOUND_ES_USERNAME/TRAILHOUND_ES_PASSWORD). An alert not delivered makes the run exit 2. "
             "README \"Sinks\" lists the options.")


def check_sinks(texts: list[str], inputs=(), taken=(), stdout_taken: bool = False) -> list:
    """The parsed specs, each checked now; exit 2 naming the first bad one and why. `taken`: files
    the command writes already (--out, --summary; None ignored), which no sink may write again;
    `stdout_taken`: the alerts go to standard output already."""
    from pathlib import Path

    from ..sinks import SinkSpecError, is_stdout, parse_sink

    specs = []
    files = {Path(p).resolve() for p in taken if p is not None and not is_stdout(p)}
    stdout = stdout_taken or any(p is not None and is_stdout(p) for p in taken)
    for n, text in enumerate(texts):
        if text in texts[:n]:
            raise fail(f"[red]error[/red]: --sink '{m(text)}' is given twice")
        try:
            spec = parse_sink(text)
            problem = spec.problem(inputs)
        except SinkSpecError as e:
            problem = str(e)
        if not problem and spec.kind == "ndjson":
            if spec.target == "-":
                problem = "the alerts go to standard output already" if stdout else None
                stdout = True
            elif (path := Path(spec.target).resolve()) in files:
                problem = "another output writes this file already; give each its own"
            else:
                files.add(path)
        if problem:
            raise fail(f"[red]error[/red]: --sink '{m(text)}': {m(problem)}")
        specs.append(spec)
    return specs


def open_sinks(specs: list) -> list:
    """Open every sink, or none: exit 2 with the reason (those already opened are closed)."""
    from ..sinks import SinkError, SinkSpecError

    opened: list = []
    for spec in specs:
        try:
            opened.append(spec.open())
        except (SinkError, SinkSpecError) as e:
            for s in opened:
                s.close()
            raise fail(f"[red]error[/red]: --sink '{m(spec.text)}': {m(e)}") from None
    return opened


def report_delivery(sinks: list) -> tuple[list[dict], bool]:
    """Say on stderr what each counting sink delivered; (figures per sink, True when every alert was
    delivered). Problems are printed in red: a sink that lost or held alerts is never quiet."""
    from ..sinks import delivery_of

    rows, complete = [], True
    for sink in sinks:
        d = delivery_of(sink)
        if d is None:
            continue
        given = getattr(sink, "name", None)  # a --sink's spec; None: --out or --format ndjson
        path = getattr(sink, "path", None)
        name = given or ("-" if path is None else str(path))
        rows.append({"sink": name, **d.as_dict()})
        if d.complete and given is None:
            continue  # --out says where the alerts went in the summary line already
        figures = f"{d.delivered} alerts delivered" + (f", {d.duplicates} already there" if d.duplicates else "")
        if d.retries:
            figures += f", {d.retries} retries"
        if d.complete:
            err.print(f"[dim]sink '{m(name)}': {figures}[/dim]")
            continue
        complete = False
        lost = ([f"{d.failed} not delivered"] if d.failed else []) + ([f"{d.spooled} spooled"] if d.spooled else [])
        err.print(f"[red]sink '{m(name)}'[/red]: {figures}, {', '.join(lost)}")
        for p in d.problems:
            err.print(f"  [red]{m(p)}[/red]")
        if d.problem_count > len(d.problems):
            err.print(f"  ... {d.problem_count - len(d.problems)} more problems")
    return rows, complete
