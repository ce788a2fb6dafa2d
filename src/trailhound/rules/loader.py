"""Read detection-rules TOML files (whole files, or a bare pasted `[rule]` body), and the
exception lists that sit among them or are given apart."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import cache
from .discovery import is_test_file, read_rule_file, rule_files
from .errors import RuleError, reason_of
from .exceptions import ExceptionList, is_exceptions_document, lists_from_toml, load_exception_file
from .model import Rule
from .sigma import is_sigma_file, rules_from_yaml


def rule_from_toml(text: str, source: str | None = None) -> Rule:
    return rule_from_document(_parse_toml(text), source)


def _parse_toml(text: str) -> dict | TomlError:
    """The TOML document; parsed documents are cached (tomllib is pure Python: 355 rules cost
    about 0.3 s to parse)."""
    key = ("toml", text)
    doc = cache.get(key)
    if doc is None:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            doc = TomlError(str(e))
        except RecursionError:
            doc = TomlError("values nested too deeply")
        cache.put(key, doc)
    return doc


@cache.serializable
@dataclass(frozen=True)
class TomlError:
    message: str


def rule_from_document(doc: dict | TomlError, source: str | None = None) -> Rule:
    if isinstance(doc, TomlError):
        raise RuleError(source, None, f"invalid TOML: {doc.message}")
    if "rule" in doc:
        if not isinstance(doc["rule"], dict):
            raise RuleError(source, None, "[rule] must be a table")
        return Rule.from_table(doc["rule"], doc.get("metadata"), source)
    if "query" in doc or "type" in doc:
        return Rule.from_table(doc, None, source)  # rule keys pasted without the [rule] header
    raise RuleError(source, "rule", "no [rule] table (and no rule keys at the top level)")


#: what a hostile file can make a parser or a checker raise; other exceptions are defects and propagate
_DATA_ERRORS = (ArithmeticError, AttributeError, LookupError, MemoryError, OSError, RecursionError, TypeError,
                ValueError)

@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    exceptions: list[ExceptionList] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)  # one per file that did not load


def load_rules(paths: Iterable[str | os.PathLike], exception_paths: Iterable[str | os.PathLike] = (),
               value_list_dirs: Iterable[str | os.PathLike] = ()) -> RuleSet:
    """Every rule and exception list that loads, and an error for every file that does not.

    A TOML file among the rules that holds `[[exceptions]]` is an exceptions file; files in
    `exception_paths` may also be Kibana's exception-list export (NDJSON)."""
    out = RuleSet()
    dirs = [Path(d) for d in value_list_dirs]
    paths = list(paths)
    named = {Path(p) for p in paths}
    for path in rule_files(paths):
        if is_test_file(path):
            continue  # rule unit tests (`testing`), not rules
        try:
            if is_sigma_file(path):
                out.rules.extend(rules_from_yaml(read_rule_file(path), str(path), explicit=path in named))
                continue
            doc = _parse_toml(read_rule_file(path))
            if not isinstance(doc, TomlError) and is_exceptions_document(doc):
                out.exceptions.extend(lists_from_toml(doc, str(path), dirs))
            else:
                out.rules.append(rule_from_document(doc, str(path)))
        except RuleError as e:
            out.errors.append(e)
        except _DATA_ERRORS as e:  # one bad file is one load error; the others still load
            out.errors.append(RuleError(str(path), None, f"cannot load: {reason_of(e)}"))
    for p in exception_paths:
        files = sorted(x for x in Path(p).rglob("*") if x.suffix in (".toml", ".ndjson", ".json")) \
            if Path(p).is_dir() else [Path(p)]
        for path in files:
            try:
                out.exceptions.extend(load_exception_file(path, dirs))
            except RuleError as e:
                out.errors.append(e)
            except _DATA_ERRORS as e:  # as above
                out.errors.append(RuleError(str(path), None, f"cannot load: {reason_of(e)}"))
    return out
