"""Text that is safe to print on a terminal.

Logs and rules are written by others, attackers included: a user name such as
`\\x1b]0;pwned\\x07` or a rule name with a right-to-left override would otherwise drive the
terminal (retitle it, hide text, reorder what the reader sees). Everything the CLI prints for a
person goes through `clean`, which shows each control character as a visible escape (`\\x1b`,
`\\u202e`) instead. NDJSON output does not: JSON escapes control characters already.
"""

from __future__ import annotations

import re

from rich.markup import escape as _escape_markup

# C0 controls, DEL, C1 controls, and the bidirectional formatting characters (Trojan Source)
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CELL = re.compile(f"[\t\n{_UNSAFE}]")  # one line: tabs and newlines shown too
_TEXT = re.compile(f"[{_UNSAFE}]")  # a message: its own newlines and tabs kept

MAX_TEXT = 4000
"""Messages longer than this (an error quoting a huge line) are clipped."""


def _visible(m: re.Match) -> str:
    c = ord(m.group())
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(c) or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")


def clean(text: object, *, one_line: bool = False, limit: int | None = MAX_TEXT) -> str:
    """`text` with every control character shown as an escape; `one_line` escapes tabs and
    newlines too. Clipped to `limit` characters first, so a 50 MB field costs no more than a short one."""
    s = text if isinstance(text, str) else str(text)
    if limit is not None:
        s = clip(s, limit)
    return (_CELL if one_line else _TEXT).sub(_visible, s)


def clip(s: str, limit: int) -> str:
    """`s`, cut to `limit` characters with an ellipsis that says the rest was left out."""
    return s if len(s) <= limit else s[: max(limit - 1, 0)] + "…"


def m(text: object) -> str:
    """For interpolation into a Rich markup string: cleaned, and its brackets escaped."""
    return _escape_markup(clean(text))
