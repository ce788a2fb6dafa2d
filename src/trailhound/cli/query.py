"""`trailhound query`: the events, sequences or samples an EQL or KQL query matches."""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path

import orjson
import typer

from .common import (
    EXIT_ERROR,
    AllowBadInput,
    Host,
    InputFormat,
    OutputFormat,
    TimeZone,
    Year,
    bad_inputs,
    err,
    fail,
    input_options,
    inputs_summary,
    print_report,
    report_bad_inputs,
    starting,
)
from .render import TableWriter, cell
from .safe import m

DEFAULT_ROWS = 50
"""Table rows shown without --size: the table is for reading; NDJSON is for everything."""

COLUMNS = ("@timestamp", "host.name", "event.category", "event.action", "user.name", "process.pid",
           "process.command_line", "file.path", "source.ip", "destination.ip")

_CHUNK = 2000  # documents fetched per batch for NDJSON output


class Language(str, Enum):
    eql = "eql"
    kuery = "kuery"


def _get(doc: dict | None, path: str):
    from ..alerts.build import field_value

    return None if doc is None else field_value(doc, path)


def query(
    eql: str = typer.Argument(..., help="The query (EQL, or KQL with --language kuery)."),
    files: list[Path] = typer.Argument(..., help="Event files: ECS NDJSON or JSON arrays, auditd or syslog logs (.gz too)."),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="Output format."),
    size: int | None = typer.Option(None, "--size", "-n", min=0, help="Return at most N results."),
    tail: bool = typer.Option(False, "--tail", help="With --size: the last N results instead of the first N."),
    fields: str | None = typer.Option(None, "--fields", help="Table columns, comma-separated field names "
                                         "(default: common ECS fields that the results fill)."),
    tiebreaker: str | None = typer.Option(None, "--tiebreaker", help="Field that orders events with equal timestamps."),
    timestamp_field: str = typer.Option("@timestamp", "--timestamp-field", help="The event time field."),
    language: Language = typer.Option(Language.eql, "--language", "-l", help="Query language."),
    input_format: InputFormat = None,
    year: Year = None,
    tz: TimeZone = None,
    host: Host = None,
    allow_bad_input: AllowBadInput = False,
) -> None:
    """Print the events, sequences or samples that an EQL (or KQL) query matches.

    The table shows the first 50 results (all of --size N), each cell up to 200 characters;
    --format ndjson prints every result in full, one JSON object per line: an event query prints
    each event document; a sequence or sample prints
    {"sequence": [documents, null for a missing event], "join_keys": [...]}.

    Exit codes: 0 done (with or without matches), 2 query or input error.
    """
    with starting():
        from ..api import search
        from ..lang.errors import QueryError
        from ..sources import SourceError

    if tail and size is None:
        raise typer.BadParameter("--tail needs --size N (the last N results)", param_hint="--tail")
    columns = [f.strip() for f in fields.split(",") if f.strip()] if fields is not None else None
    if columns is not None and not columns:
        raise typer.BadParameter("give at least one field name", param_hint="--fields")
    started = time.perf_counter()
    try:
        result = search(eql, files, size=size, tail=tail, tiebreaker=tiebreaker, timestamp_field=timestamp_field,
                        language=language.value, input_format=input_format, read_options=input_options(year, tz, host))
    except QueryError as e:
        raise fail(f"[red]error in query[/red]\n{m(e.render())}") from None
    except SourceError as e:
        raise fail(f"[red]error reading input[/red]: {m(e)}") from None
    elapsed = time.perf_counter() - started

    if format is OutputFormat.ndjson:
        _write_ndjson(result)
        shown = len(result.hits)
    else:
        shown = _print_table(result, columns, size if size is not None else DEFAULT_ROWS)

    report = result.table.report
    for w in result.warnings:
        err.print(f"[yellow]warning[/yellow]: {m(w)}")
    print_report(report)
    if shown < len(result.hits):
        err.print(f"[dim]{len(result.hits) - shown} more rows not shown; use --size N or --format ndjson[/dim]")
    kind = result.kind if len(result.hits) != 1 else result.kind[:-1]
    err.print(f"{len(result.hits)} {kind} from {inputs_summary(report)} in {elapsed:.2f}s")
    if report_bad_inputs(bad_inputs(report), allow_bad_input):
        raise typer.Exit(EXIT_ERROR)


def _write_ndjson(result) -> None:
    out = sys.stdout.buffer
    hits = result.hits
    table = result.table
    for start in range(0, len(hits), _CHUNK):
        chunk = hits[start:start + _CHUNK]
        rows = sorted({r for h in chunk for r in h.rows if r is not None})
        docs = dict(zip(rows, table.documents(rows)))
        for hit in chunk:
            if result.kind == "events":
                out.write(orjson.dumps(docs[hit.rows[0]]) + b"\n")
            else:
                seq = [None if r is None else docs[r] for r in hit.rows]
                out.write(orjson.dumps({"sequence": seq, "join_keys": list(hit.join_keys or ())}) + b"\n")
    out.flush()


def _print_table(result, columns: list[str] | None, limit: int) -> int:
    """The first `limit` results as a table; returns how many were shown."""
    hits = result.hits[:limit]
    rows = sorted({r for h in hits for r in h.rows if r is not None})
    docs = dict(zip(rows, result.table.documents(rows)))
    if columns is None:  # the common columns that some shown result fills, so the table stays readable
        columns = [c for c in COLUMNS if any(_get(d, c) is not None for d in docs.values())] or ["@timestamp"]
    events = result.kind == "events"
    table = TableWriter(columns if events else ["#", "join keys", *columns])
    for i, hit in enumerate(hits, 1):
        for j, r in enumerate(hit.rows):
            doc = None if r is None else docs[r]
            cells = ["(missing event)"] + [""] * (len(columns) - 1) if doc is None else \
                [cell(_get(doc, c)) for c in columns]
            if not events:
                cells = ([str(i), cell(list(hit.join_keys or ()))] if j == 0 else ["", ""]) + cells
            table.add(cells)
    table.close()
    return len(hits)


