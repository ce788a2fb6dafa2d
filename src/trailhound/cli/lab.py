"""`trailhound lab`: the SSH attack lab (real sshd, ssh and auditd in network namespaces)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import typer

from .common import OutputFormat, err
from .safe import m

lab_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                      help="Run SSH attack scenarios for real (root; auditd, openssh-server, sshpass) and "
                           "check which rules fire.")


def _log(msg: str) -> None:
    err.print(f"[dim]lab:[/dim] {m(msg)}", markup=True)


@lab_app.command("run")
def run_cmd(
    rules: list[Path] | None = typer.Option(None, "--rules", "-r", help="Rule files or directories "
                                               "(default: the bundled pack, src/trailhound/pack)."),
    record: Path | None = typer.Option(None, "--record", help="Also write the capture as test fixtures "
                                          "here (e.g. tests/fixtures/lab)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output directory for the capture "
                                       "(default: ./lab-out-<time>)."),
    keep: bool = typer.Option(False, "--keep", help="Leave the lab running (for debugging); undo later "
                              "with `trailhound lab cleanup`."),
    scenarios: str | None = typer.Option(None, "--scenarios", "-s", help="Comma-separated scenario "
                                            "names (default: all). See `trailhound lab list`."),
    watch: bool = typer.Option(False, "--watch", help="Also run `trailhound watch` with the rules on the lab's "
                               "logs while the scenarios run, and report per scenario the delay from the command "
                               "to its alert (watch.json, watch-alerts.ndjson in the output directory)."),
) -> None:
    """Set up the lab, run the scenarios, capture audit.log and the sshd log, restore the machine,
    then run the rules over the capture and print scenario × rule. With --watch, a live `trailhound watch`
    follows the logs during the run and the delay from each command to its alert is reported.

    Exit codes: 0 done, 1 a scenario failed or teardown left something behind, 2 refused (not root,
    no kernel audit, packages missing, ...).
    """
    from ..lab import matrix as mx
    from ..lab import preflight
    from ..lab.runner import Interrupted, Lab, select, write_capture
    from ..lab.system import LabError

    try:
        chosen = select([s.strip() for s in scenarios.split(",") if s.strip()] if scenarios else None)
        preflight.check()
        # each scenario's own needs: named ones must run, the others are skipped with the reason
        for name, why in preflight.plan(chosen, named=bool(scenarios)).items():
            _log(f"scenario {name} will be skipped: {why}")
    except preflight.Refusal as e:
        err.print(f"[red]refused[/red]: {m(e)}")
        raise typer.Exit(2) from None
    out = out or Path(f"lab-out-{time.strftime('%Y%m%d-%H%M%S')}")
    rule_paths: list[str | os.PathLike] = list(rules) if rules else [mx.default_rules_dir()]
    missing = [str(p) for p in rule_paths if not Path(p).exists()]
    if watch and missing:
        err.print(f"[red]error[/red]: --watch needs the rules: no such file or directory: {m(', '.join(missing))}")
        raise typer.Exit(2)
    windows = []
    failed = False
    try:
        with Lab(chosen, log=_log, keep=keep, watch_rules=[Path(p).resolve() for p in rule_paths] if watch
                 else None) as lab:
            for s in chosen:
                _log(f"scenario {s.name}: {s.title}")
                w = lab.run_scenario(s)
                windows.append(w)
                if w.skipped:
                    _log(f"  skipped: {w.skipped}")
                elif w.exit_code != 0:
                    failed = True
                    _log(f"  exit {w.exit_code}: {w.output.strip()[-600:]}")
            cap = lab.collect(windows, stop=not keep)
        problems = lab.problems
    except preflight.Refusal as e:
        err.print(f"[red]refused[/red]: {m(e)}")
        raise typer.Exit(2) from None
    except LabError as e:
        err.print(f"[red]lab error[/red]: {m(e)}")
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, Interrupted):
        err.print("[yellow]interrupted[/yellow]; the machine was restored")
        raise typer.Exit(130) from None
    write_capture(cap, out)
    for note in cap.notes:
        _log(note)
    _log(f"capture written to {out}/ (audit.log, auth.log, per-scenario directories, scenarios.json; matrix.json and matrix.md after the hunt)")
    if record:
        write_capture(cap, record, whole=False)
        _log(f"recorded as fixtures in {record}/")
    if cap.live is not None:
        report_live(cap, out)
    if not missing:
        matrix = mx.run_matrix(rule_paths, [out / "audit.log", out / "auth.log"], windows)
        (out / "matrix.json").write_text(json.dumps(matrix.as_dict(), indent=1) + "\n")
        (out / "matrix.md").write_text(mx.markdown(matrix) + "\n" + mx.markdown_rules(matrix))
        mx.render_matrix(matrix)
        for n in matrix.notes:
            _log(n)
    else:
        _log(f"no rules at {', '.join(map(str, rule_paths))}: matrix not computed (use --rules)")
    if problems:
        err.print("[red]teardown left:[/red] " + m("; ".join(problems)))
    raise typer.Exit(1 if failed or problems else 0)


def report_live(cap, out: Path) -> None:
    """The live watch's alerts and delays: watch.json, watch-alerts.ndjson, and a table."""
    from rich.console import Console
    from rich.table import Table

    (out / "watch.json").write_text(json.dumps({"scenarios": [d.as_dict() for d in cap.live]}, indent=1) + "\n")
    (out / "watch-alerts.ndjson").write_text("".join(json.dumps(a) + "\n" for a in cap.live_alerts or []))
    t = Table(title="live: trailhound watch during the run (seconds from the command's event to its alert)")
    for c, j in (("scenario", "left"), ("alerts", "right"), ("first alert", "left"), ("command → alert", "right"),
                 ("start → alert", "right"), ("slowest", "right")):
        t.add_column(c, justify=j, overflow="fold")  # type: ignore[arg-type]  # rich's JustifyMethod literal

    def sec(v) -> str:
        return "-" if v is None else f"{v:.2f}"

    for d in cap.live:
        label = d.scenario + (" (benign)" if d.benign else "")
        first = f"{d.first_rule} ({d.severity})" if d.first_rule else "-"
        t.add_row(label, str(d.alerts), first, sec(d.command_to_alert), sec(d.start_to_alert),
                  sec(d.worst_command_to_alert))
    Console().print(t)


@lab_app.command("matrix")
def matrix_cmd(
    capture: Path = typer.Argument(..., help="A capture written by `lab run -o DIR` or "
                                   "`--record DIR` (scenarios.json and a directory per scenario)."),
    rules: list[Path] | None = typer.Option(None, "--rules", "-r", help="Rule files or directories "
                                               "(default: the bundled pack)."),
    exceptions: list[Path] | None = typer.Option(None, "--exceptions", "-e", help="Exception lists to apply "
                                                    "(detection-rules TOML or Kibana NDJSON), e.g. your filled-in "
                                                    "copy of the pack's local_exceptions.toml."),
    format: str = typer.Option("table", "--format", "-f", help="table, markdown or json."),
) -> None:
    """Run the rules over a recorded capture, without root: per scenario the rules that fired, per
    rule its true positives (attack windows) and false positives (benign windows).

    Exit codes: 0 every attack detected at medium or higher and no high or critical alert in a
    benign window; 1 otherwise; 2 the capture or a rule cannot be read.
    """
    from ..lab import matrix as mx

    if format not in ("table", "markdown", "json"):
        err.print(f"[red]error[/red]: --format must be table, markdown or json, not {m(format)}")
        raise typer.Exit(2)
    try:
        windows, files = mx.recorded(capture)
    except ValueError as e:
        err.print(f"[red]error[/red]: {m(e)}")
        raise typer.Exit(2) from None
    rule_paths: list[str | os.PathLike] = list(rules) if rules else [mx.default_rules_dir()]
    missing = [str(p) for p in [*rule_paths, *(exceptions or [])] if not Path(p).exists()]
    if missing:
        err.print(f"[red]error[/red]: no such file or directory: {m(', '.join(missing))}")
        raise typer.Exit(2)
    matrix = mx.run_matrix(rule_paths, files, windows, exceptions or [])
    errors = [n for n in matrix.notes if n.startswith("rule error")]
    if format == "json":
        print(json.dumps(matrix.as_dict(), indent=1))
    elif format == "markdown":
        print(mx.markdown(matrix) + "\n" + mx.markdown_rules(matrix), end="")
    else:
        mx.render_matrix(matrix)
    for n in matrix.notes:
        _log(n)
    if errors:
        raise typer.Exit(2)
    s = matrix.summary()
    if format != "table":
        _log(mx.summary_line(matrix))
    raise typer.Exit(0 if not s["missed"] and not s["benign_high_critical"] else 1)


@lab_app.command("list")
def list_cmd(
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table, or ndjson: one JSON "
                                        "object per scenario (name, techniques, title, atomic, benign)."),
) -> None:
    """The scenarios, with their ATT&CK techniques."""
    from ..lab.scenarios import SCENARIOS

    for s in SCENARIOS:
        if format is OutputFormat.ndjson:
            print(json.dumps({"name": s.name, "techniques": list(s.techniques), "title": s.title,
                              "atomic": s.atomic, "benign": s.benign}))
            continue
        tag = " [benign]" if s.benign else (" [atomic]" if s.atomic else "")
        print(f"{s.name:18} {','.join(s.techniques) or '-':28} {s.title}{tag}")


@lab_app.command("cleanup")
def cleanup_cmd() -> None:
    """Undo what a crashed or --keep run left (audit rules and auditd, namespaces, users, processes)."""
    from ..lab import preflight
    from ..lab.runner import cleanup_leftovers
    from ..lab.system import LabError

    try:
        cleanup_leftovers(_log)
    except (preflight.Refusal, LabError) as e:
        err.print(f"[red]cleanup failed[/red]: {m(e)}")
        raise typer.Exit(1) from None
    _log("nothing left to undo")


if __name__ == "__main__":
    lab_app()
