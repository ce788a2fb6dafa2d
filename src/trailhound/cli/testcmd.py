"""`trailhound test`: rule unit tests (`<rule>.test.toml` beside each rule)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import typer

from .common import (
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_OK,
    OutputFormat,
    SigmaPlaceholder,
    SigmaPlaceholders,
    err,
    fail,
    sigma_placeholders,
)
from .safe import clean, m


def test_rules(
    paths: list[Path] = typer.Argument(None, help="Rule files (their <rule>.test.toml beside them is run), test "
                                       "files (with their rule) or directories (default: Trailhound's SSH pack)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show what fired for passing cases too."),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table (PASS/FAIL lines), or "
                                        "ndjson: one JSON object per case, error or untested rule (rule, rule_id, "
                                        "file, case, status, expected_hits, hits, problems, fired)."),
    placeholders: SigmaPlaceholders = None,
    placeholder: SigmaPlaceholder = None,
) -> None:
    """Run rule unit tests: each case's events through its rule, against the hits it expects.

    Exit codes: 0 all cases pass; 1 a case fails; 2 a rule or test file cannot be loaded or run,
    or no test case was found.
    """
    from ..pack import DIR as PACK
    from ..rules.check import check_rule
    from ..rules.errors import RuleError
    from ..rules.sigma import with_placeholders
    from ..rules.testing import run_case, select, tests_rule

    paths = paths or [PACK]
    values = sigma_placeholders(placeholders, placeholder)
    try:
        chosen = select(paths)
    except RuleError as e:
        raise fail(f"[red]error[/red]: {m(e)}") from None
    chosen.rules[:] = with_placeholders(chosen.rules, values)
    ndjson = format is OutputFormat.ndjson
    out = sys.stdout

    def emit(row: dict) -> None:
        base: dict[str, Any] = {"rule": None, "rule_id": None, "file": None, "case": None, "status": None, "expected_hits": None,
                "hits": None, "problems": [], "fired": []}
        out.write(orjson.dumps({**base, **row}).decode() + "\n")

    errors = [str(e) for e in chosen.errors]
    tested: dict[str, list[int]] = {}
    failed = passed = 0
    for tf in chosen.files:
        rule = next((r for r in chosen.rules if tests_rule(tf, r)), None)
        if rule is None:
            errors.append(f"{tf.path}: no loaded rule {tf.rule_ref!r}")
            continue
        check = check_rule(rule)
        if check.status != "ok":
            errors.append(f"{tf.path}: rule {rule.name!r} cannot run ({check.status}): "
                          f"{(check.reason or '').splitlines()[0] if check.reason else ''}")
            continue
        for case in tf.cases:
            result = run_case(check, case)
            tested.setdefault(rule.rule_id, []).append(case.hits)
            passed += result.passed
            failed += not result.passed
            # a rule that fails on the case's events could not be tested: an error, not a verdict
            errors += [f"{tf.path}: {case.name}: {p}" for p in result.problems if p.startswith("the rule failed")]
            fired = [_alert_line(a) for a in result.alerts]
            if ndjson:
                emit({"rule": rule.name, "rule_id": rule.rule_id, "file": tf.path, "case": case.name,
                      "status": "pass" if result.passed else "fail", "expected_hits": case.hits,
                      "hits": result.hits, "problems": result.problems, "fired": fired})
                continue
            mark = "PASS" if result.passed else "FAIL"
            out.write(f"{mark} {clean(rule.name, one_line=True)} :: {clean(case.name, one_line=True)} "
                      f"({result.hits} hits)\n")
            for p in result.problems:
                out.write(f"     {clean(p, one_line=True)}\n")
            if not result.passed or verbose:
                for a, line in zip(result.alerts, fired):
                    block = "kibana.alert.group.index" in a
                    out.write(f"     {'  step' if block else 'fired'}: {clean(line, one_line=True)}\n")
    for r in chosen.rules:
        kinds = tested.get(r.rule_id, [])
        if not any(kinds) or 0 not in kinds:
            missing = " and ".join(k for k, ok in (("a positive", any(kinds)), ("a negative", 0 in kinds)) if not ok)
            if ndjson:
                emit({"rule": r.name, "rule_id": r.rule_id, "file": r.source, "status": "untested",
                      "problems": [f"needs {missing} case"]})
            else:
                err.print(f"[yellow]untested[/yellow] {m(r.name)}: needs {missing} case")
    for error in errors:
        if ndjson:
            emit({"status": "error", "problems": [error]})
        else:
            err.print(f"[red]error[/red] {m(error)}")
    out.flush()
    cases = passed + failed
    err.print(f"{passed} passed, {failed} failed, {len(errors)} errors; {len(chosen.rules)} rules, {cases} cases")
    if cases == 0 and not errors:
        raise fail(f"[red]error[/red]: no test cases found for {m(', '.join(map(str, paths)))}; a rule x.toml is "
                   f"tested by the {m('[[case]]')} tables of x.test.toml beside it")
    raise typer.Exit(EXIT_ERROR if errors or cases == 0 else EXIT_FOUND if failed else EXIT_OK)


def _alert_line(alert: dict) -> str:
    from ..alerts.build import flatten

    flat = flatten(alert)
    parts = [str(flat.get("kibana.alert.original_time") or "")]
    for key in ("host.name", "user.name", "process.name", "process.command_line", "file.path", "source.ip"):
        value = flat.get(key)
        if value not in (None, "", []):
            parts.append(f"{key}={value}")
    return " ".join(parts)
