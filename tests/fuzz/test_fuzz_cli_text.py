"""Terminal-safe text (cli/safe.py, cli/render.py): whatever a log or a rule holds, what the CLI
prints for a person carries no control character, stays bounded, and loses no safe text."""

from __future__ import annotations

import io
import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from trailhound.cli.render import MAX_CELL, TableWriter, cell
from trailhound.cli.safe import clean

BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def unsafe(ch: str, one_line: bool) -> bool:
    c = ord(ch)
    if ch in "\t\n":
        return one_line
    return c < 0x20 or 0x7F <= c <= 0x9F or c in BIDI


hostile = st.text(alphabet=st.one_of(st.characters(), st.sampled_from("\x1b\x07\x9b\r\n\t\u202e\u2066\x7f[]")),
                  max_size=300)


@given(hostile, st.booleans())
def test_clean_leaves_no_control_character(text, one_line):
    out = clean(text, one_line=one_line, limit=None)
    assert not any(unsafe(ch, one_line) for ch in out)
    # every safe character survives, in order: only the unsafe ones became escapes
    kept = "".join(ch for ch in text if not unsafe(ch, one_line))
    assert re.sub(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[tnr])", "", out) == re.sub(
        r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[tnr])", "", kept)


@given(st.lists(st.lists(st.one_of(hostile, st.none(), st.integers(), st.lists(hostile, max_size=5)),
                         min_size=3, max_size=3), max_size=20), st.booleans())
def test_tables_are_safe_and_cells_bounded(rows, terminal):
    buf = io.StringIO()
    t = TableWriter(["a\x1b", "b", "c\u202e"], buf, terminal=terminal)
    for r in rows:
        cells = [cell(v) for v in r]
        assert all(len(c) <= MAX_CELL for c in cells)
        t.add(cells)
    t.close()
    text = buf.getvalue()
    assert not any(unsafe(ch, False) for ch in text)
    assert all(unicodedata.category(ch) != "Cc" or ch == "\n" for ch in text)
