"""The `trailhound` command: the app, its global options, and `run`, the console entry point
that turns any unexpected exception into one line (exit 2) instead of a traceback."""

from __future__ import annotations

import logging
import os
import sys
import traceback

import typer

from . import common
from .common import EXIT_ERROR, err
from .convert import convert
from .hunt import hunt
from .lab import lab_app
from .normalize import normalize
from .pack import pack_app
from .query import query
from .report import report
from .rules import rules_app
from .safe import clean, m
from .testcmd import test_rules
from .watch import watch

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False)

_debug = os.environ.get("TRAILHOUND_DEBUG", "") not in ("", "0")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"trailhound {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the Python traceback of an internal error."),
) -> None:
    """Run Elastic Security detections (EQL, KQL rules) anywhere, with Elasticsearch's semantics.

    Exit codes: 0 done, nothing found; 1 alerts raised (hunt), a test failed (test), a rule error
    found (rules validate); 2 an error: a rule, input or output that could not be used.
    """
    global _debug
    _debug = _debug or debug


app.command()(query)
app.command()(hunt)
app.command()(normalize)
app.command()(report)
app.command("test")(test_rules)
app.command()(convert)
app.command()(watch)
app.add_typer(rules_app, name="rules")
app.add_typer(lab_app, name="lab")
app.add_typer(pack_app, name="pack")


def run() -> None:
    """The `trailhound` console command: `app`, then an exit that skips the interpreter's
    teardown once the output is flushed. After a hunt over 1M events, freeing the heap object by
    object took 0.3-0.5 s that the OS does at once (mypy exits the same way).

    An exception that reaches here is a bug, not the user's fault: one line with its cause and
    where to report it, exit 2; `--debug` (or TRAILHOUND_DEBUG=1) adds the traceback."""
    global _debug
    _debug = _debug or "--debug" in sys.argv[1:2]
    common.freeze_after_start = True
    try:
        app()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:
        err.print("interrupted")
        code = 130
    except BrokenPipeError:  # `trailhound ... | head`: the reader has what it wanted
        _quiet_stdout()
        code = 0
    except BaseException as e:  # noqa: BLE001 - the last line of defence
        code = EXIT_ERROR
        if _debug:
            traceback.print_exc()
        cause = clean(f"{type(e).__name__}: {e}", one_line=True, limit=500)
        err.print(f"[red]internal error[/red]: {m(cause)}")
        if not _debug:
            err.print("This is a bug in Trailhound: please report it with the command line "
                      "(run again with --debug for the traceback).")
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to deliver
            pass
    os._exit(code)


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    run()
