"""Which files are rules, rule unit tests or exception lists: the one place that walks rule paths,
so that the loader and the rule unit tests both depend on it and not on each other."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .errors import RuleError

#: a rule unit test file: `<rule file stem>.test.toml` beside its rule
TEST_SUFFIX = ".test.toml"
#: rule files: detection-rules TOML, Sigma YAML
RULE_SUFFIXES = (".toml", ".yml", ".yaml")


def rule_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Rule files (TOML, Sigma YAML) under `paths` (directories are searched recursively), sorted."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(x for suffix in RULE_SUFFIXES for x in p.rglob("*" + suffix)))
        elif p.exists():
            out.append(p)
        else:
            raise RuleError(str(p), None, "no such file or directory")
    return out


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIX)


#: a rule file larger than this is not a rule (the largest of Elastic's is about 60 KiB)
MAX_RULE_FILE = 16 * 1024 * 1024


def read_rule_file(path: Path) -> str:
    """A rule file's text, refusing what is not a regular file (a FIFO would block, /dev/zero
    never ends) or is too large to be a rule."""
    try:
        info = path.stat()
    except OSError as e:
        raise RuleError(str(path), None, f"cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(info.st_mode):
        raise RuleError(str(path), None, "not a regular file")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_RULE_FILE + 1)
    except OSError as e:
        raise RuleError(str(path), None, f"cannot read: {e.strerror or e}") from None
    if len(data) > MAX_RULE_FILE:
        raise RuleError(str(path), None, f"larger than {MAX_RULE_FILE // 2**20} MiB: not a rule file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RuleError(str(path), None, f"not UTF-8 text (byte {e.start})") from None
