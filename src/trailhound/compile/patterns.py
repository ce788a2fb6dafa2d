"""EQL wildcard and Lucene regex patterns, translated once for every backend.

Wildcards have only `*` and `?`; a backslash is literal and nothing escapes them.
Regexes are Lucene RegExp syntax, always anchored to the whole string, in which `\\d`
means a literal `d`, `"..."` quotes literal text, `@` is any string and `#` is nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..lang.errors import EqlSemanticError


@dataclass(frozen=True)
class WildcardPlan:
    """The cheapest exact test for one wildcard pattern."""

    kind: Literal["equals", "prefix", "suffix", "contains", "exists", "regex"]
    text: str  # the literal for equals/prefix/suffix/contains, an anchored regex for regex


def plan_wildcard(pattern: str) -> WildcardPlan:
    if "*" not in pattern and "?" not in pattern:
        return WildcardPlan("equals", pattern)
    if "?" not in pattern:
        core = pattern.strip("*")
        if "*" not in core:
            if core == "":
                return WildcardPlan("exists", "")
            starts, ends = pattern.startswith("*"), pattern.endswith("*")
            if starts and ends:
                return WildcardPlan("contains", core)
            if ends:
                return WildcardPlan("prefix", core)
            if starts:
                return WildcardPlan("suffix", core)
    return WildcardPlan("regex", wildcard_to_regex(pattern))


def wildcard_to_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return "(?s)^" + "".join(out) + "$"


_META = set(".?+*|{}[]()")


def lucene_to_regex(pattern: str, case_insensitive: bool = False) -> str:
    """Translate a Lucene RegExp into an anchored Rust/Python-compatible regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise EqlSemanticError(f"regex {pattern!r} ends with a lone backslash")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
                out.append("]")
            elif ch in "[&~":
                out.append("\\" + ch)
            else:
                out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append("[")
            if i + 1 < n and pattern[i + 1] == "^":
                out.append("^")
                i += 1
        elif ch == '"':
            end = pattern.find('"', i + 1)
            if end < 0:
                raise EqlSemanticError(f"regex {pattern!r} has an unterminated quote")
            out.append(re.escape(pattern[i + 1:end]))
            i = end + 1
            continue
        elif ch == "@":
            out.append(".*")
        elif ch == "#":
            out.append("(?:[^\\s\\S])")  # the empty language
        elif ch in "~&<":
            raise EqlSemanticError(
                f"regex {pattern!r} uses Lucene's {ch!r} operator, which Trailhound does not support",
                hint="rewrite without complement (~), intersection (&) or numeric ranges (<n-m>)",
            )
        elif ch in _META or ch == "^" or ch == "$":
            # ^ and $ are literals in Lucene (matches are always anchored)
            out.append(ch if ch in _META else re.escape(ch))
        else:
            out.append(re.escape(ch))
        i += 1
    if in_class:
        raise EqlSemanticError(f"regex {pattern!r} has an unterminated character class")
    flags = "(?s" + ("i" if case_insensitive else "") + ")"
    return flags + "^(?:" + "".join(out) + ")$"
