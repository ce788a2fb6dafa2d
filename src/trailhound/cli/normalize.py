"""`trailhound normalize`: log files to ECS NDJSON, streamed."""

from __future__ import annotations

import os
import time
from enum import Enum
from functools import partial
from pathlib import Path

import orjson
import typer

from .common import (
    EXIT_ERROR,
    AllowBadInput,
    BadInput,
    Host,
    InputFormat,
    TimeZone,
    Year,
    bad_inputs,
    check_output,
    err,
    fail,
    input_options,
    is_stdout,
    open_output,
    report_bad_inputs,
)
from .safe import m


class NormalizedFormat(str, Enum):
    ndjson = "ndjson"  # what hunt, query and Elasticsearch's bulk loaders read
    parquet = "parquet"  # the columnar store (sources/parquet.py): a directory of Parquet files


def _parquet_dir(out: Path | None) -> Path:
    """The directory `--to parquet` writes into: created if missing, refused when it already holds Parquet
    files (a data set is one run's events: mixing two would double them)."""
    if out is None or str(out) == "-":
        raise fail("[red]error[/red]: --to parquet writes a directory of Parquet files: give it with --out DIR")
    if out.exists() and not out.is_dir():
        raise fail(f"[red]error[/red]: cannot write --out {m(str(out))}: --to parquet needs a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise fail(f"[red]error[/red]: cannot create --out {m(str(out))}: {m(e.strerror or e)}") from None
    if any(p.suffix == ".parquet" for p in out.iterdir()):
        raise fail(f"[red]error[/red]: --out {m(str(out))} already holds Parquet files; give an empty directory")
    if not os.access(out, os.W_OK):
        raise fail(f"[red]error[/red]: cannot write --out {m(str(out))}: permission denied")
    return out


def normalize(
    files: list[Path] = typer.Argument(..., help="auditd or syslog logs (.gz too); ECS JSON passes through."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of standard output "
                                       "('-': standard output; a .gz name is gzip-compressed)."),
    to: NormalizedFormat = typer.Option(NormalizedFormat.ndjson, "--to", help="Output format: ndjson, or parquet "
                                        "(a directory of Parquet files, given with --out DIR, that hunt and query "
                                        "read directly)."),
    input_format: InputFormat = None,
    year: Year = None,
    tz: TimeZone = None,
    host: Host = None,
    allow_bad_input: AllowBadInput = False,
) -> None:
    """Write the ECS events of log files as NDJSON, one event per line, as the rules see them
    (with the process tree's parent and leader fields), or as Parquet (--to parquet --out DIR).

    Streams: memory is bounded, whatever the input's size (Parquet: one file of 250,000 events at a time). Lines that cannot be read are reported as
    file:line: reason, and counted. Exit codes: 0 done; 2 a file cannot be read, a file gives no
    events and only bad lines (see --allow-bad-input), or the output cannot be written.
    """
    from ..enrich import ProcessTree
    from ..sources import SourceError, load_events, parquet, parquet_writer
    from ..sources.inputs import SkipLog, Source
    from ..sources.normalize import documents, format_of, year_note

    parquet_out = _parquet_dir(out) if to is NormalizedFormat.parquet else None
    if parquet_out is None:
        check_output(out, inputs=files)
    options = input_options(year, tz, host)
    for path in files:
        if str(path) != "-" and not path.exists():
            raise fail(f"[red]error reading input[/red]: {m(path)}: no such file")
    started = time.perf_counter()
    tree = ProcessTree()  # parents and leaders, as the loader adds them
    skips = SkipLog(20)
    produced = 0
    bad: list[BadInput] = []
    writer = parquet_writer.ParquetWriter(parquet_out) if parquet_out is not None else None
    sink = open_output(out) if writer is None else None

    def emit(doc: dict, file: str, line: int) -> None:
        if writer is not None:
            writer.add(doc, file, line)
        else:
            assert sink is not None
            sink.write(orjson.dumps(doc) + b"\n")

    try:
        for path in files:
            before_events, before_skips = produced, skips.count
            try:
                src = Source.open(str(path))
                fmt = format_of(src, input_format)
            except SourceError as e:
                raise fail(f"[red]error reading input[/red]: {m(e)}") from None
            if fmt is parquet.FORMAT:  # the columnar store: its documents as written
                try:
                    for doc, row in parquet.documents(src):
                        emit(doc, str(path), row)
                        produced += 1
                except SourceError as e:
                    raise fail(f"[red]error reading input[/red]: {m(e)}") from None
                continue
            if fmt is None:  # ECS already: each JSON object as it is
                table = load_events([src], [])  # the opened source: stdin cannot be read twice
                for start in range(0, table.frame.height, 5000):
                    chunk = range(start, min(start + 5000, table.frame.height))
                    lines = table.locations(chunk) if writer is not None else None
                    for k, doc in enumerate(table.documents(chunk)):
                        emit(doc, str(path), lines[k][1] if lines is not None else 0)
                produced += table.frame.height
                for s in table.report.skipped:
                    skips.add(s.file, s.line, s.reason)
                skips.count += table.report.skipped_count - len(table.report.skipped)
                bad.extend(bad_inputs(table.report))
                continue
            if note := year_note(src, fmt, options):
                err.print(f"[dim]{m(note)}[/dim]")
            for doc, line in documents(src, fmt, options, partial(skips.add, str(path))):
                tree.apply(doc)
                emit(doc, str(path), line)
                produced += 1
            if produced == before_events and skips.count > before_skips:
                bad.append(BadInput(str(path), None, skips.count - before_skips))
        if writer is not None:
            writer.close()
    finally:
        if sink is not None:
            sink.close()
    for file, line, reason in skips.kept:
        err.print(f"[yellow]skipped[/yellow] {m(file)}:{line}: {m(reason)}")
    if skips.count > len(skips.kept):
        err.print(f"[yellow]... {skips.count - len(skips.kept)} more bad lines[/yellow]")
    if note := tree.eviction_note():
        err.print(f"[yellow]warning[/yellow]: {m(note)}")
    failed = report_bad_inputs(bad, allow_bad_input)
    n = len(files)
    err.print(f"{produced} events from {n} input{'s' if n != 1 else ''}; {skips.count} lines skipped or repaired; "
              f"{time.perf_counter() - started:.2f}s" + (f"; written to {m(out)}" if out and not is_stdout(out) else ""))
    if failed:
        raise typer.Exit(EXIT_ERROR)
