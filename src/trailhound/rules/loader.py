"""Read detection-rules TOML files (whole files, or a bare pasted `[rule]` body)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

from .errors import RuleError
from .model import Rule


def rule_from_toml(text: str, source: str | None = None) -> Rule:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(source, None, f"invalid TOML: {e}") from None
    if "rule" in doc:
        if not isinstance(doc["rule"], dict):
            raise RuleError(source, None, "[rule] must be a table")
        return Rule.from_table(doc["rule"], doc.get("metadata"), source)
    if "query" in doc or "type" in doc:
        return Rule.from_table(doc, None, source)  # rule keys pasted without the [rule] header
    raise RuleError(source, "rule", "no [rule] table (and no rule keys at the top level)")


def rule_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """TOML files under `paths` (directories are searched recursively), sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.rglob("*.toml")))
        elif p.exists():
            out.append(p)
        else:
            raise RuleError(str(p), None, "no such file or directory")
    return out


def load_rules(paths: Iterable[str | os.PathLike]) -> tuple[list[Rule], list[RuleError]]:
    """Every rule that loads, and an error for every file that does not."""
    rules: list[Rule] = []
    errors: list[RuleError] = []
    for path in rule_files(paths):
        try:
            rules.append(rule_from_toml(path.read_text(encoding="utf-8"), str(path)))
        except RuleError as e:
            errors.append(e)
        except (OSError, UnicodeDecodeError) as e:
            errors.append(RuleError(str(path), None, f"cannot read: {e}"))
    return rules, errors
