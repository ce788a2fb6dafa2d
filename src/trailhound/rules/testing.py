"""Rule unit tests: cases that live beside a rule and say what it must (and must not) fire on.

A test file is TOML named `<rule file stem>.test.toml` next to the rule (or naming the rule with
`rule_id = "..."` at the top), holding `[[case]]` tables:

    [[case]]
    name = "ssh -D opens a SOCKS proxy"
    hits = 1                              # how many hits the rule must have (0: a negative case)
    fields = { process.name = "ssh" }     # optional: values one of the first hit's alerts must carry
    [[case.event]]                        # ECS events, one table each (dotted keys nest)...
    "@timestamp" = "2026-01-01T00:00:00Z"
    event.category = "process"
    process.name = "ssh"

Instead of `[[case.event]]`, a case may give `ndjson = '''...'''` (ECS documents, one per line)
or `log = '''...'''` (raw auditd or syslog lines, read as `trailhound hunt` reads files; `format`
and `year` as the CLI's `--input-format` and `--year`).
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .discovery import RULE_SUFFIXES, is_test_file, read_rule_file, rule_files
from .discovery import TEST_SUFFIX as SUFFIX
from .errors import RuleError

if TYPE_CHECKING:
    from .loader import RuleSet

T = TypeVar("T")


@dataclass(frozen=True)
class Case:
    name: str
    hits: int
    data: str  # file content: NDJSON or a raw log
    format: str | None = None
    year: int | None = None
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CaseFile:
    path: str
    rule_ref: str  # a rule_id, or the path of the rule file beside it
    cases: tuple[Case, ...]


def parse_test_file(doc: dict, path: str) -> CaseFile:
    cases = doc.get("case")
    if not isinstance(cases, list) or not cases:
        raise RuleError(path, None, "a test file needs [[case]] tables")
    if doc.get("rule_id"):
        ref = str(doc["rule_id"])
    elif path.endswith(SUFFIX):
        ref = rule_beside(Path(path))
    else:
        raise RuleError(path, None, f"name the file <rule>{SUFFIX} or give rule_id = \"...\"")
    return CaseFile(path, ref, tuple(_case(c, path, i) for i, c in enumerate(cases)))


def rule_beside(test_path: Path) -> str:
    """The rule file a `<stem>.test.toml` tests: `<stem>.toml`, else the Sigma `<stem>.yml` / `.yaml`
    that exists (`<stem>.toml` when none does, for the message)."""
    stem = test_path.name[: -len(SUFFIX)]
    for suffix in RULE_SUFFIXES:
        candidate = test_path.with_name(stem + suffix)
        if candidate.is_file():
            return str(candidate)
    return str(test_path.with_name(stem + ".toml"))


def _case(c: Any, path: str, i: int) -> Case:
    where = f"case[{i}]"
    if not isinstance(c, dict):
        raise RuleError(path, None, f"{where} must be a table")
    name = str(c.get("name", where))
    hits = c.get("hits")
    if not isinstance(hits, int) or hits < 0:
        raise RuleError(path, None, f"{where} ({name}): needs hits = N (N ≥ 0)")
    given = [k for k in ("event", "ndjson", "log") if k in c]
    if len(given) != 1:
        raise RuleError(path, None, f"{where} ({name}): give exactly one of [[case.event]], ndjson or log")
    if "event" in c:
        if not isinstance(c["event"], list) or not all(isinstance(e, dict) for e in c["event"]):
            raise RuleError(path, None, f"{where} ({name}): [[case.event]] must be tables")
        data = "".join(json.dumps(e, default=str) + "\n" for e in c["event"])
        fmt: str | None = "ecs"
    else:
        data = str(c[given[0]])
        fmt = c.get("format", "ecs" if given[0] == "ndjson" else None)
    fields = c.get("fields", {})
    if not isinstance(fields, dict):
        raise RuleError(path, None, f"{where} ({name}): fields must be a table")
    return Case(name, hits, data, fmt, c.get("year"), fields)


def load_test_files(paths: Iterable[str | os.PathLike]) -> tuple[list[CaseFile], list[RuleError]]:
    out, errors = [], []
    for path in rule_files(paths):
        if not is_test_file(path):
            continue
        try:
            out.append(parse_test_file(tomllib.loads(read_rule_file(path)), str(path)))
        except tomllib.TOMLDecodeError as e:
            errors.append(RuleError(str(path), None, f"invalid TOML: {e}"))
        except RuleError as e:
            errors.append(e)
    return out, errors


@dataclass
class Selection:
    """What `trailhound test PATH...` runs: the rules asked for and their test files."""

    rules: list = field(default_factory=list)  # Rule objects: every rule of a directory, a rule file, a test's rule
    files: list[CaseFile] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)


def tests_rule(tf: CaseFile, rule) -> bool:
    """Whether test file `tf` is about `rule` (by rule_id, or as the rule file beside it)."""
    if tf.rule_ref == rule.rule_id:
        return True
    return bool(rule.source) and Path(tf.rule_ref).resolve() == Path(rule.source).resolve()


def select(paths: Iterable[str | os.PathLike]) -> Selection:
    """Rules and test files for each path: a directory gives all of both under it; a rule file
    `x.toml` gives itself and the test files beside it that test it (`x.test.toml`, or one naming
    its rule_id); a test file gives itself and its rule (the rule file beside it, or the rule with
    its rule_id in its directory). Raises `RuleError` for a path that does not exist."""
    from .loader import load_rules

    out = Selection()
    # a folder's test files (and its rules) are read once, however many of its files are named
    folder_tests: dict[Path, tuple[list[CaseFile], list[RuleError]]] = {}
    folder_rules: dict[Path, RuleSet] = {}

    def tests_in(folder: Path) -> tuple[list[CaseFile], list[RuleError]]:
        if folder not in folder_tests:
            folder_tests[folder] = load_test_files(sorted(folder.glob("*" + SUFFIX)))
        return folder_tests[folder]

    def rules_in(folder: Path) -> RuleSet:
        if folder not in folder_rules:
            folder_rules[folder] = load_rules([folder])
        return folder_rules[folder]

    for p in map(Path, paths):
        if not p.exists():
            raise RuleError(str(p), None, "no such file or directory")
        if p.is_dir():
            loaded = load_rules([p])
            files, errors = load_test_files([p])
            out.rules += loaded.rules
            out.files += files
            out.errors += loaded.errors + errors
        elif is_test_file(p):
            files, errors = load_test_files([p])
            out.files += files
            out.errors += errors
            for tf in files:
                beside = Path(tf.rule_ref)
                by_path = tf.rule_ref.endswith(RULE_SUFFIXES) and beside.is_file()
                loaded = load_rules([beside]) if by_path else rules_in(p.parent)
                if by_path:
                    out.errors += loaded.errors
                out.rules += [r for r in loaded.rules if tests_rule(tf, r)]
        else:
            loaded = load_rules([p])
            out.rules += loaded.rules
            out.errors += loaded.errors
            beside = p.with_name(p.stem + SUFFIX)
            files, errors = tests_in(p.parent)
            out.errors += [e for e in errors if e.source and Path(e.source) == beside]
            out.files += [tf for tf in files if any(tests_rule(tf, r) for r in loaded.rules)]
    out.rules = _first_each(out.rules, lambda r: (r.source, r.rule_id))
    out.files = _first_each(out.files, lambda f: f.path)
    return out


def _first_each(items: list[T], key: Callable[[T], Hashable]) -> list[T]:
    """`items` in order, without those whose key an earlier item has."""
    seen: set[Hashable] = set()
    out = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


@dataclass
class CaseResult:
    case: Case
    passed: bool
    hits: int
    alerts: list[dict]
    problems: list[str]


def run_case(check, case: Case) -> CaseResult:
    """Run one rule (a `RuleCheck` that is ok) over the case's events, through the hunt pipeline."""
    from ..alerts.build import flatten
    from ..pipeline import Plan, run_hunt
    from ..sources import ReadOptions
    from .loader import RuleSet

    with tempfile.TemporaryDirectory(prefix="trailhound-test-") as tmp:
        data = Path(tmp) / ("events.ndjson" if case.format == "ecs" else "events.log")
        data.write_text(case.data, encoding="utf-8")
        checks = [check] + _correlated(check)
        report = run_hunt(Plan(RuleSet(rules=[c.rule for c in checks]), checks), [data], input_format=case.format,
                          read_options=ReadOptions(year=case.year, host="lab"), max_signals=0, keep_alerts=True)
    outcome = next(o for o in report.rules if o.rule_id == check.rule.rule_id and o.file == check.rule.source)
    problems = []
    if outcome.status != "ran":
        problems.append(f"the rule failed: {outcome.reason}")
    problems.extend(f"input line {s.line}: {s.reason}" for s in report.load.skipped)
    alerts = outcome.alert_documents or []
    if outcome.hits != case.hits:
        problems.append(f"expected {case.hits} hits, got {outcome.hits}")
    if case.fields and alerts:
        first = [flatten(a) for a in _first_hit(alerts)]
        for key, want in flatten(case.fields).items():
            if not any(a.get(key) == want for a in first):
                seen = sorted({repr(a.get(key)) for a in first})
                problems.append(f"{key}: expected {want!r}, the first hit's alerts have {', '.join(seen)}")
    return CaseResult(case, not problems, outcome.hits, alerts, problems)


def _correlated(check) -> list:
    """For a Sigma correlation: the checks of the Sigma rules beside it (its file's directory), which it
    reads; they run with it, and only its own outcome is the case's."""
    if check.rule.type != "sigma_correlation" or not check.rule.source:
        return []
    from .check import check_rule
    from .loader import load_rules

    others = load_rules([Path(check.rule.source).parent]).rules
    return [check_rule(r) for r in others
            if r.language == "sigma" and r.type != "sigma_correlation" and r.rule_id != check.rule.rule_id]


def _first_hit(alerts: list[dict]) -> list[dict]:
    """The alerts of the first hit: an event's alert, or a sequence's building blocks and shell."""
    for i, a in enumerate(alerts):
        if "kibana.alert.group.index" not in a:
            return alerts[: i + 1]
    return alerts
