"""What the commands share: the stderr console, input options, output paths checked before the
work starts, and the exit-code rules (README "Exit codes")."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console

from .safe import m

err = Console(stderr=True, highlight=False, soft_wrap=True)

freeze_after_start = False  # set by `main.run`: the process is this one command


@contextmanager
def starting() -> Iterator[None]:
    """A command's own imports (Polars, NumPy, the engine: a third of a small hunt) with the cyclic
    garbage collector paused: imports make long-lived module objects, not garbage, and every
    collection meanwhile walks all of them again (~0.05 s). In the `trailhound` process they are
    then frozen out of later passes too (not where the app runs inside a longer-lived process,
    such as the tests', whose objects the freeze would keep)."""
    from .._gc import no_gc

    with no_gc():
        yield
    if freeze_after_start:
        gc.freeze()


EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
"""0: done, nothing found; 1: alerts raised, tests failed, rule errors found by validate;
2: the run could not be trusted (a rule or input that did not load, nothing to run, a bad path)."""


class OutputFormat(str, Enum):
    table = "table"
    ndjson = "ndjson"


INPUT_FORMATS = ("ecs", "auditd", "syslog")
INPUT_FORMAT_HELP = "Input format for every file: ecs, auditd or syslog (default: detected per file)."
YEAR_HELP = "Year of syslog timestamps, which carry none (default: from each file's modification time)."
TZ_HELP = "Time zone of zone-less syslog timestamps (IANA name; default UTC)."
HOST_HELP = "host.name for events whose log names none (audit.log without node=; default: the file's name)."
ALLOW_BAD_HELP = ("Accept an input that gives no events and whose lines are mostly bad (default: exit 2, "
                  "as it is probably the wrong file or format).")


def _input_format(value: str | None) -> str | None:
    if value is None:
        return None
    from ..sources.registry import registry

    known = ["ecs", *registry()]
    if value not in known:
        raise typer.BadParameter(f"unknown format {value!r}; choose one of {', '.join(known)}")
    return value


# the options every command that reads event files takes (query, hunt, normalize)
InputFormat = Annotated[str | None, typer.Option("--input-format", "-i", metavar="[" + "|".join(INPUT_FORMATS) + "]",
                                                 callback=_input_format, help=INPUT_FORMAT_HELP)]
Year = Annotated[int | None, typer.Option("--year", help=YEAR_HELP)]
TimeZone = Annotated[str | None, typer.Option("--timezone", help=TZ_HELP)]
Host = Annotated[str | None, typer.Option("--host", help=HOST_HELP)]
AllowBadInput = Annotated[bool, typer.Option("--allow-bad-input", help=ALLOW_BAD_HELP)]
# the rule commands that run Sigma rules (hunt, test, rules validate)
SigmaPlaceholders = Annotated[Path | None, typer.Option(
    "--sigma-placeholders", metavar="FILE", help="Values of Sigma `|expand` placeholders: a YAML or TOML map of "
    "placeholder name → value or list of values (README \"Sigma\"). A rule expanding a placeholder not given is "
    "not run, with the placeholder named.")]
SigmaPlaceholder = Annotated[list[str] | None, typer.Option(
    "--sigma-placeholder", metavar="NAME=VALUE", help="A value of a Sigma `|expand` placeholder (repeat for more "
    "values; the values of a name given here replace those of --sigma-placeholders for it).")]


def sigma_placeholders(path: Path | None, pairs: list[str] | None = None) -> dict[str, tuple[str, ...]]:
    """The values of --sigma-placeholders and --sigma-placeholder (none without them); a bad file or pair
    exits 2 with its reason."""
    values: dict[str, tuple[str, ...]] = {}
    if path is not None:
        from ..rules.errors import RuleError
        from ..rules.sigma import read_placeholders

        try:
            values = read_placeholders(path)
        except RuleError as e:
            raise fail(f"[red]error[/red]: --sigma-placeholders: {m(e)}") from None
    given: dict[str, tuple[str, ...]] = {}
    for pair in pairs or ():
        name, eq, value = pair.partition("=")
        name = name.strip().strip("%")
        if not eq or not name:
            raise fail(f"[red]error[/red]: --sigma-placeholder {m(repr(pair))}: write NAME=VALUE")
        given[name] = (*given.get(name, ()), value)
    return {**values, **given}


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print `message` (Rich markup; interpolated values already through `m`) and return the exit to raise."""
    err.print(message)
    return typer.Exit(code)


def input_options(year: int | None, tz: str | None, host: str | None = None):
    from ..sources import ReadOptions

    if tz is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise fail(f"[red]error[/red]: unknown time zone {m(repr(tz))} (use an IANA name such as Europe/Paris)") from None
    return ReadOptions(year=year, timezone=tz, host=host)


# -- output paths ---------------------------------------------------------------------------------

def is_stdout(path: Path | None) -> bool:
    from ..sinks import is_stdout as stdout

    return stdout(path)


def check_output(path: Path | None, what: str = "--out", inputs=()) -> None:
    """Refuse (exit 2) an output path that cannot be written, before any work is done
    (`sinks.output_problem`). `-` is standard output."""
    from ..sinks import output_problem

    if path is not None and (problem := output_problem(path, inputs)):
        raise fail(f"[red]error[/red]: cannot write {what} {m(str(path))}: {m(problem)}")


def open_output(path: Path | None) -> IO[bytes]:
    """`sinks.open_output`, an error left (a full disk, a race) reported as one line, exit 2."""
    from ..sinks import SinkError
    from ..sinks import open_output as opened

    try:
        return opened(path)
    except SinkError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None


# -- inputs ---------------------------------------------------------------------------------------

@dataclass
class BadInput:
    file: str
    lines: int | None  # None: not known (the report gives no per-input figures)
    skipped: int


def bad_inputs(report) -> list[BadInput]:
    """Inputs that gave no events while more than half of their lines were bad: probably the
    wrong file or format, which must not pass for "nothing found". Uses `report.inputs` (one
    InputStats per file); where a reader gives none, the run as a whole when it read no event."""
    inputs = getattr(report, "inputs", None) or []
    if inputs:
        return [BadInput(i.file, i.lines, i.skipped) for i in inputs
                if i.events == 0 and i.skipped > 0 and 2 * i.skipped > i.lines]
    if report.events == 0 and report.skipped_count > 0:
        return [BadInput(", ".join(report.files), None, report.skipped_count)]
    return []


def report_bad_inputs(bad: list[BadInput], allow: bool) -> bool:
    """Say which inputs were mostly bad; True when that must fail the run (exit 2)."""
    for b in bad:
        share = f"{b.skipped} of {b.lines} lines" if b.lines is not None else f"all {b.skipped} lines read"
        label = "[yellow]warning[/yellow]" if allow else "[red]error[/red]"
        err.print(f"{label}: {m(b.file)}: no events; {share} are bad (wrong file or --input-format?)"
                  + ("" if allow else "; --allow-bad-input accepts it"))
    return bool(bad) and not allow


def print_report(report, limit: int = 20) -> None:
    """The load report's notes and first bad lines, on stderr."""
    for note in report.notes:
        err.print(f"[dim]{m(note)}[/dim]")
    for s in report.skipped[:limit]:
        err.print(f"[yellow]skipped[/yellow] {m(s.file)}:{s.line}: {m(s.reason)}")
    if report.skipped_count > limit:
        err.print(f"[yellow]... {report.skipped_count - limit} more bad lines[/yellow]")


def inputs_summary(report) -> str:
    n = len(report.files)
    bad = f", {report.skipped_count} bad lines" if report.skipped_count else ""
    return f"{n} input{'s' if n != 1 else ''}, {report.events} events read{bad}"
