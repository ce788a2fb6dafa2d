"""`trailhound rules validate`: each rule parsed and compiled, with the verdict."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import typer

from .common import EXIT_FOUND, EXIT_OK, OutputFormat, err, fail
from .render import TableWriter, cell
from .safe import m

rules_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Work with detection-rules TOML files.")


@rules_app.command("validate")
def rules_validate(
    paths: list[Path] = typer.Argument(..., help="Rule files or directories (searched for *.toml and Sigma *.yml, *.yaml)."),
    show_warnings: bool = typer.Option(False, "--warnings", help="List each field warning."),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table, or ndjson: one JSON "
                                        "object per rule (rule, rule_id, file, type, status, detail, warnings)."),
) -> None:
    """Parse and check every rule: ok, unsupported (with the reason) or error (with the position).

    Exit codes: 0 no rule has an error (unsupported rules are reported, not failures); 1 some rule
    has an error (what validate is for finding, as a failing test); 2 nothing to validate (no
    rule file found) or a path that does not exist.
    """
    from ..rules.check import check_rule
    from ..rules.errors import RuleError
    from ..rules.loader import load_rules

    try:
        loaded = load_rules(paths)
    except RuleError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None
    checks = [check_rule(r) for r in loaded.rules]
    rows: list[dict[str, Any]] = []
    for c in checks:
        lang = f"{c.rule.type}/{c.rule.language}" if c.rule.language else c.rule.type
        rows.append({"rule": c.rule.name, "rule_id": c.rule.rule_id, "file": c.rule.source, "type": lang,
                     "status": c.status, "detail": c.reason, "warnings": list(c.warnings)})
    for error in loaded.errors:
        rows.append({"rule": None, "rule_id": None, "file": error.source, "type": None, "status": "error",
                     "detail": f"{'[rule] ' + error.key + ': ' if error.key else ''}{error.message}",
                     "warnings": []})
    if format is OutputFormat.ndjson:
        out = sys.stdout.buffer
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
        out.flush()
    else:
        table = TableWriter(("rule", "type", "status", "detail"))
        for row in rows:
            detail = row["detail"] or ""
            if row["warnings"]:
                detail = "; ".join(filter(None, [detail] + (row["warnings"] if show_warnings else
                                                            [f"{len(row['warnings'])} field warning(s): not in ECS"])))
            table.add([cell(row["rule"] or row["file"] or ""), cell(row["type"] or ""), row["status"], cell(detail)])
        table.close()
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "unsupported", "error")}
    lists = f"; {len(loaded.exceptions)} exception lists" if loaded.exceptions else ""
    err.print(f"{len(rows)} rules: {counts['ok']} ok, {counts['unsupported']} unsupported, "
              f"{counts['error']} errors{lists}")
    if not rows:
        raise fail(f"[red]error[/red]: no rule found in {m(', '.join(map(str, paths)))} "
                   "(rules are detection-rules *.toml and Sigma *.yml files)")
    raise typer.Exit(EXIT_FOUND if counts["error"] else EXIT_OK)


