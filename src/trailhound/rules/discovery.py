"""Which files are rules, rule unit tests or exception lists: the one place that walks rule paths,
so that the loader and the rule unit tests both depend on it and not on each other."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .errors import RuleError

#: a rule unit test file: `<rule file stem>.test.toml` beside its rule
TEST_SUFFIX = ".test.toml"


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


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIX)
