"""`trailhound watch`: detection rules over logs as they grow, alerts as they happen."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import orjson
import typer

from .common import EXIT_ERROR, EXIT_OK, Host, InputFormat, TimeZone, Year, err, fail, input_options
from .safe import m

_SKIPS_SAID = 100  # bad lines told one by one; the rest are counted in the status


def watch(
    paths: list[str] | None = typer.Argument(None, help="Files to follow like tail -F (quote a glob to pick up new "
                                             "files; '-' is standard input): raw auditd, auth syslog, journald JSON, "
                                             "Sysmon for Linux, ECS NDJSON."),
    out: str = typer.Option(..., "--out", "-o", help="Append alerts as NDJSON (Kibana alert schema) to this file; "
                            "'-' is standard output."),
    rules: list[Path] = typer.Option([], "--rules", "-r", help="Rule files or directories (default: Trailhound's "
                                     "SSH pack)."),
    exceptions: list[Path] = typer.Option([], "--exceptions", "-x", help="Exception lists (TOML or Kibana's export)."),
    value_lists: list[Path] = typer.Option([], "--value-lists", help="Directories of value lists."),
    sink: list[str] = typer.Option([], "--sink", help="Another destination for the alerts (repeatable)."),
    state: Path | None = typer.Option(None, "--state", help="Directory for checkpoints: a restart (even after "
                                      "kill -9) resumes where the last one left off, losing and repeating nothing."),
    from_start: bool = typer.Option(False, "--from-start", help="Read the files from their start (default: only "
                                    "what is appended from now on). Ignored when --state resumes."),
    reset_state: bool = typer.Option(False, "--reset-state", help="Drop the checkpoint in --state and start over."),
    max_signals: int | None = typer.Option(None, "--max-signals", min=0, help="Alerts per rule execution "
                                           "(default: each rule's max_signals; 0: no limit)."),
    checkpoint_seconds: float = typer.Option(5.0, "--checkpoint-seconds", min=0.1, help="Seconds between "
                                             "checkpoints."),
    batch_ms: int = typer.Option(200, "--batch-ms", min=1, help="Longest wait before evaluating what was read "
                                 "(milliseconds)."),
    idle_ms: int = typer.Option(500, "--idle-ms", min=1, help="An input with nothing new for this long no longer "
                                "holds back events of the others (milliseconds)."),
    audit_event_ms: int = typer.Option(300, "--audit-event-ms", min=1, help="An audit event none of whose records "
                                       "came for this long is complete (audit logs have no EOE records; raise it "
                                       "for logs copied in pieces by a collector) (milliseconds)."),
    journal: bool = typer.Option(False, "--journal", help="Also follow the systemd journal (journalctl -f -o json; "
                                 "with --state, resumed from the cursor of the last entry read)."),
    journal_directory: str | None = typer.Option(None, "--journal-directory", help="Follow the journal files of "
                                                 "this directory (journalctl --directory) instead of the system's; "
                                                 "implies --journal."),
    reorder_ms: int = typer.Option(250, "--reorder-ms", min=0, help="How far out of time order an input's events "
                                   "may come and still be correlated in order (auditd writes an event when its "
                                   "syscall returns); adds to the delay to an alert (milliseconds)."),
    input_format: InputFormat = None,
    year: Year = None,
    tz: TimeZone = None,
    host: Host = None,
    engine: str = typer.Option("local", "--engine", help="local, or spark: Structured Streaming over a directory "
                               "where whole files arrive (one PATH, a directory; --state is Spark's checkpoint "
                               "location; README \"Spark and Parquet\")."),
    master: str | None = typer.Option(None, "--master", help="With --engine spark: local[N], spark://host:port or "
                                      "sc://host:port (default local[*])."),
) -> None:
    """Follow logs as they grow and write the alerts the rules raise, as they are raised.

    Every rule runs incrementally with the results of `hunt` over the completed files. Runs until SIGTERM or
    SIGINT (then evaluates what it can, writes a checkpoint and exits 0), or until standard input ends when it
    is the only input. A status line goes to a terminal; otherwise JSON log lines go to standard error.
    Exit codes: 0 stopped cleanly; 2 an input, the state directory or the rules cannot be used.
    """
    from ..pipeline.watch import bound_malloc_arenas

    bound_malloc_arenas()  # before the rules load and Polars' threads start: see its doc
    from ..pack import DIR as PACK
    from ..pipeline import plan
    from ..pipeline.checkpoint import CheckpointError
    from ..pipeline.watch import AlertFile, WatchSettings, run_watch
    from ..rules.errors import RuleError
    from ..rules.loader import load_rules
    from ..sources.tail import FollowError

    if out != "-" and Path(out).is_dir():
        raise fail(f"[red]error[/red]: --out {m(out)} is a directory; give a file name")
    if out != "-" and Path(out).suffix.lower() in (".gz", ".bz2", ".xz"):
        raise fail("[red]error[/red]: watch appends to --out and cuts it back at a restart: give an uncompressed file")
    paths = list(paths or [])
    journal = journal or journal_directory is not None
    if not paths and not journal:
        raise fail("[red]error[/red]: give the files to follow, '-' for standard input, or --journal")
    if paths.count("-") > 1:
        raise fail("[red]error[/red]: standard input (-) can be given once")
    if engine not in ("local", "spark") or (master is not None and engine != "spark"):
        raise fail("[red]error[/red]: --engine is local or spark; --master goes with --engine spark")
    if engine == "spark" and (journal or len(paths) != 1 or not Path(paths[0]).is_dir() or state is None):
        raise fail("[red]error[/red]: watch --engine spark takes one directory (where whole files arrive) and "
                   "--state DIR (Spark's checkpoint location)")
    try:
        planned = plan(load_rules(rules or [PACK], exceptions, value_lists))
    except RuleError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None
    for error in planned.rules.errors:
        err.print(f"[red]rule error[/red]: {m(error)}")
    for c in planned.checks:
        if c.status != "ok":
            err.print(f"[yellow]not run[/yellow] {m(c.rule.name)}: {m(c.reason)}")
    if not planned.runnable:
        raise fail("[red]error[/red]: no rule can run")
    extra = extra_sinks(sink, out, paths)
    log = _Log()
    try:
        alert_file = AlertFile(out)
    except OSError as e:
        raise fail(f"[red]error[/red]: cannot write {m(out)}: {m(e.strerror or e)}") from None
    stop = threading.Event()
    # restored when watching ends: a caller in the same process (a test, an embedding program) keeps its own
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    settings = WatchSettings(batch_seconds=batch_ms / 1000, checkpoint_seconds=checkpoint_seconds,
                             idle_seconds=idle_ms / 1000, lateness_seconds=reorder_ms / 1000,
                             audit_event_seconds=audit_event_ms / 1000,
                             status_seconds=1.0 if log.terminal else 10.0)
    log.info("watching", paths=paths, journal=journal_directory or journal, rules=len(planned.runnable), out=out,
             state=str(state) if state else None)
    errors: tuple[type[Exception], ...] = (CheckpointError, FollowError)
    try:
        if engine == "spark":
            from ..spark.stream import SparkWatchError, watch_on_spark

            errors += (SparkWatchError,)
            pipe = watch_on_spark(planned, paths[0], alert_file, master=master, state=str(state), sinks=extra,
                                  stop=stop, input_format=input_format, read_options=input_options(year, tz, host),
                                  max_signals=max_signals, on_note=lambda text: log.info(text), on_skip=log.skip)
        else:
            pipe = run_watch(planned, list(paths), alert_file, sinks=extra, state_dir=str(state) if state else None,
                             from_start=from_start, reset_state=reset_state, input_format=input_format,
                             read_options=input_options(year, tz, host), max_signals=max_signals, settings=settings,
                             stop=stop, on_status=log.status, on_note=lambda text: log.info(text),
                             on_skip=log.skip, journal=journal, journal_directory=journal_directory)
    except errors as e:
        log.end()
        raise fail(f"[red]error[/red]: {m(e)}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        alert_file.close()
        for s in extra:
            s.close()
    log.end()
    delivered = True
    if extra:
        from .sink_options import report_delivery

        delivered = report_delivery(extra)[1]
    for live in pipe.engine.rules:
        if live.status != "ok":
            log.info(f"rule not run: {live.check.rule.name}: {live.error or live.unsupported}", level="warning")
    s = pipe.stats
    log.info("stopped", events=s.events, alerts=s.alerts, late=s.late, skipped=log.skipped)
    raise typer.Exit(EXIT_ERROR if any(live.error for live in pipe.engine.rules) or not delivered else EXIT_OK)


def extra_sinks(specs: list[str], out: str, paths) -> list:
    """The `--sink SPEC` destinations (syslog, webhook, _bulk, NDJSON files: see sinks/), checked and opened
    before watching starts; exit 2 naming a bad one."""
    if not specs:
        return []
    from .sink_options import check_sinks, open_sinks

    return open_sinks(check_sinks(specs, inputs=[p for p in paths if p != "-"], taken=[None if out == "-" else out],
                                  stdout_taken=out == "-"))


class _Log:
    """A status line on a terminal; JSON lines on standard error otherwise."""

    def __init__(self) -> None:
        self.terminal = sys.stderr.isatty()
        self.skipped = 0
        self._line = False

    def _emit(self, record: dict) -> None:
        if self.terminal:
            self.end()
            text = record.pop("msg")
            extra = " ".join(f"{k}={v}" for k, v in record.items() if k not in ("ts", "level") and v is not None)
            err.print(f"{m(text)} [dim]{m(extra)}[/dim]" if extra else m(text))
        else:
            sys.stderr.buffer.write(orjson.dumps(record, default=str) + b"\n")
            sys.stderr.flush()

    def info(self, msg: str, level: str = "info", **fields) -> None:
        self._emit({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": level, "msg": msg, **fields})

    def skip(self, file: str, line: int, reason: str) -> None:
        self.skipped += 1
        if self.skipped <= _SKIPS_SAID:
            self.info(f"{file}:{line}: {reason}", level="warning")

    def status(self, st) -> None:
        if self.terminal:
            lag = "-" if st.lag is None else f"{st.lag:.1f}s"
            text = (f"\r{st.events} events ({st.rate:.0f}/s), lag {lag}, {st.alerts} alerts, state {st.state} events, "
                    f"{st.sources} files" + (f", {st.late} late" if st.late else "")
                    + (f", {self.skipped} bad lines" if self.skipped else ""))
            sys.stderr.write(text + "\033[K")
            sys.stderr.flush()
            self._line = True
        else:
            self.info("status", events=st.events, rate=round(st.rate, 1), lag=st.lag, alerts=st.alerts,
                      state=st.state, files=st.sources, late=st.late, skipped=self.skipped, checkpoint=st.checkpoint)

    def end(self) -> None:
        if self._line:
            sys.stderr.write("\n")
            self._line = False
