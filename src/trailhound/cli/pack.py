"""`trailhound pack export`: a detection package per rule (TOML, Sigma, other platforms' queries and
a Markdown page), with the lab scenarios that fire it from a recorded capture."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import EXIT_OK, err, fail
from .safe import m

pack_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Trailhound's rule pack.")


def _default_capture() -> Path | None:
    """The lab capture recorded in a source checkout (tests/fixtures/lab), if this is one."""
    from .. import __file__ as package_file

    here = Path(package_file).resolve().parents[2] / "tests" / "fixtures" / "lab"
    return here if (here / "scenarios.json").is_file() else None


@pack_app.command("export")
def pack_export(
    out: Path = typer.Argument(..., help="Directory to write the packages into (one folder per rule)."),
    rules: list[Path] = typer.Option(None, "--rules", "-r", help="Rule files or directories (default: the SSH pack)."),
    capture: Path | None = typer.Option(None, "--capture", help="A lab capture (a directory with scenarios.json and "
                                        "one folder of logs per scenario; default: the recorded one of a checkout)."),
) -> None:
    """Write each rule's detection package: <rule>/<rule>.toml, <rule>.yml (Sigma), queries/ (EQL, SPL,
    Kusto, ES|QL, Lucene, where the rule converts) and README.md (description, ATT&CK, data sources
    and fields, every language's query, the lab scenarios that fire it with their telemetry, false
    positives, the investigation guide, hunting queries, a response playbook), and an index README.md.

    Exit codes: 0 written; 2 a rule that does not load, or an output that cannot be written.
    """
    from ..emit.package import package
    from ..pack import DIR
    from ..rules.discovery import read_rule_file
    from ..rules.errors import RuleError
    from ..rules.loader import load_rules

    try:
        loaded = load_rules(rules or [DIR])
    except RuleError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None
    for problem in loaded.errors:
        err.print(f"[red]error[/red]: {m(problem)}")
    if not loaded.rules:
        raise fail("[red]error[/red]: no rule to export")
    capture = capture or _default_capture()
    lab = _lab_runs(loaded.rules, capture) if capture else None
    index = ["# Detection packages", "", "| Rule | Severity | Sigma | Other platforms |", "|---|---|---|---|"]
    try:
        out.mkdir(parents=True, exist_ok=True)
        for rule in loaded.rules:
            source = Path(rule.source or rule.rule_id)
            stem = source.stem
            text = read_rule_file(source) if rule.source else ""
            pkg = package(rule, stem, text, lab.get(rule.rule_id, []) if lab is not None else None)
            for rel, content in pkg.files.items():
                path = out / stem / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content, encoding="utf-8")
            others = [t for t in ("splunk", "kusto", "esql", "lucene") if t not in pkg.refused]
            index.append(f"| [{rule.name}]({stem}/README.md) | {rule.severity} | "
                         f"{'yes' if 'sigma' not in pkg.refused else 'no'} | {', '.join(others) or '–'} |")
        (out / "README.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    except OSError as e:
        raise fail(f"[red]error[/red]: cannot write into {m(out)}: {m(e.strerror or e)}") from None
    except RuleError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None
    err.print(f"{len(loaded.rules)} rule packages written to {m(out)}"
              + (f" (lab scenarios from {m(capture)})" if lab is not None else " (no lab capture)"))
    raise typer.Exit(EXIT_OK)


def _lab_runs(rules: list, capture: Path) -> dict[str, list]:
    """rule_id → a LabRun per scenario of the capture: each scenario's logs hunted by every rule."""
    from ..alerts.build import flatten
    from ..emit.package import LabRun, telemetry_line
    from ..pipeline import plan, run_hunt
    from ..rules.loader import RuleSet

    try:
        meta = json.loads((capture / "scenarios.json").read_text(encoding="utf-8"))
        scenarios = meta["scenarios"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise fail(f"[red]error[/red]: {m(capture)}: not a lab capture ({m(e)})") from None
    planned = plan(RuleSet(rules=list(rules)))
    out: dict[str, list] = {r.rule_id: [] for r in rules}
    for s in scenarios:
        files = sorted(p for p in (capture / str(s.get("name", ""))).glob("*.log"))
        if not files:
            continue
        report = run_hunt(planned, files, max_signals=0, keep_alerts=True)
        for outcome in report.rules:
            alerts = outcome.alert_documents or []
            first: list = []
            for a in alerts:  # the first hit: its building blocks (or its one alert), not the sequence's shell
                flat = flatten(a)
                if "kibana.alert.group.index" in flat or not first:
                    first.append(flat)
                if "kibana.alert.group.index" not in flat:
                    break
            events = [a for a in first if "kibana.alert.group.index" in a] or first[:1]
            out.setdefault(outcome.rule_id, []).append(LabRun(
                str(s.get("name")), str(s.get("title", "")), tuple(s.get("techniques", [])),
                str(s.get("commands", "")), bool(s.get("benign")), outcome.hits,
                [telemetry_line(_unflatten(e)) for e in events]))
    return out


def _unflatten(flat: dict) -> dict:
    """A flattened alert's source fields as a nested document (for field lookups)."""
    doc: dict = {}
    for key, value in flat.items():
        if key == "@timestamp":  # the alert's time, not the event's
            continue
        if key.startswith("kibana."):
            continue
        node = doc
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                break
            node = nxt
        else:
            node[parts[-1]] = value
    return doc
