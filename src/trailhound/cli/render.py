"""Tables for the terminal that scale: rows are written as they come (no whole-table layout),
cells are cleaned of control characters and clipped, and a caller caps the rows it passes.

On a terminal the columns fit its width (long cells fold onto more lines); into a pipe or a
file nothing is wrapped: one line per row, as wide as it needs.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import IO

from .safe import clean

MAX_CELL = 200
"""A cell shows at most this many characters; NDJSON output has the whole value."""

_GAP = "  "
_LAYOUT_ROWS = 200  # column widths come from the first rows, so the table can stream


def cell(value) -> str:
    """A field value as one cleaned, clipped line: lists joined with ", ", missing as ""."""
    if value is None:
        return ""
    if isinstance(value, list):
        parts, size = [], 0
        for v in value:
            parts.append(cell(v))
            size += len(parts[-1]) + 2
            if size > MAX_CELL:
                break
        return clean(", ".join(parts), one_line=True, limit=MAX_CELL)
    if isinstance(value, bool):
        return "true" if value else "false"
    return clean(value, one_line=True, limit=MAX_CELL)


def is_terminal(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class TableWriter:
    """Writes rows under a header as they come. Widths come from the first rows (or the header);
    later, longer cells widen their row rather than being cut."""

    def __init__(self, columns: Sequence[str], stream: IO | None = None, *, terminal: bool | None = None,
                 title: str | None = None) -> None:
        self.columns = [clean(c, one_line=True) for c in columns]
        self.stream = stream or sys.stdout
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.title = title
        self.pending: list[list[str]] = []
        self.widths: list[int] | None = None
        self.count = 0

    def add(self, row: Iterable[str]) -> None:
        """A row of cells (already `cell()`-formatted strings)."""
        self.count += 1
        self.pending.append([c if isinstance(c, str) else cell(c) for c in row])
        if self.widths is None and len(self.pending) >= _LAYOUT_ROWS:
            self._layout()
        if self.widths is not None:
            self._flush()

    def close(self) -> None:
        if self.count == 0:
            return  # no rows, no table: the summary line on stderr says "0 ..."
        if self.widths is None:
            self._layout()
        self._flush()
        self.stream.flush()

    def _layout(self) -> None:
        widths = [max([len(h)] + [len(r[i]) for r in self.pending if i < len(r)]) for i, h in enumerate(self.columns)]
        if self.terminal:
            width = shutil.get_terminal_size((100, 24)).columns if self.stream in (sys.stdout, sys.stderr) else 100
            width = int(os.environ.get("COLUMNS", width)) if os.environ.get("COLUMNS", "").isdigit() else width
            room = width - len(_GAP) * (len(widths) - 1)
            # shrink the widest column until the table fits (not below 8 or its header)
            while sum(widths) > room:
                i = max(range(len(widths)), key=widths.__getitem__)
                floor = max(8, min(len(self.columns[i]), 16))
                if widths[i] <= floor:
                    break
                widths[i] = max(floor, widths[i] - max(1, sum(widths) - room))
        self.widths = widths
        if self.title:
            self.stream.write(clean(self.title, one_line=True) + "\n")
        self._write_line(self.columns)
        self._write_line(["-" * w for w in widths])

    def _flush(self) -> None:
        for row in self.pending:
            self._write_line(row)
        self.pending.clear()

    def _write_line(self, cells: Sequence[str]) -> None:
        widths = self.widths or []
        cells = list(cells) + [""] * (len(widths) - len(cells))
        if not self.terminal:
            self.stream.write(_GAP.join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() + "\n")
            return
        # fold cells longer than their column onto continuation lines
        parts = [[c[i:i + w] for i in range(0, len(c), w)] or [""] if w else [c] for c, w in zip(cells, widths)]
        for k in range(max(len(p) for p in parts)):
            line = _GAP.join((p[k] if k < len(p) else "").ljust(w) for p, w in zip(parts, widths))
            self.stream.write(line.rstrip() + "\n")


def write_table(columns: Sequence[str], rows: Iterable[Sequence[str]], stream: IO | None = None,
                title: str | None = None) -> int:
    """All `rows` under `columns`; returns how many."""
    t = TableWriter(columns, stream, title=title)
    for r in rows:
        t.add(r)
    t.close()
    return t.count
