"""What a reader of an input format other than ECS JSON is (how a format is recognised: sources/registry.py).

A reader is pure logic: it gets the numbered text lines of one file and yields
`(ECS document, line number)` pairs, in file order, reporting every line it cannot use through
`skip(line, reason)`. Its state is bounded (a reader never holds a whole file), so the same
reader serves batch loads, `trailhound normalize` and, later, follow mode. The loader does the
I/O: opening, gzip, UTF-8 decoding, and building the engine's table from the documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

Skip = Callable[[int, str], None]
Lines = Iterable[tuple[int, str]]  # (1-based line number, text without the line break)


@dataclass(frozen=True)
class ReadOptions:
    year: int | None = None  # the year of syslog timestamps, which carry none
    file_time: datetime | None = None  # the file's modification time, the fallback for `year`
    timezone: str | None = None  # IANA name for zone-less timestamps; None: UTC
    host: str | None = None  # host.name / host.id for events whose log names no host (audit.log without node=)


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    sniff: Callable[[list[str]], bool]  # true when these first lines (up to 50) look like this format
    read: Callable[[Lines, Skip, ReadOptions], Iterator[tuple[dict, int]]]
    undated: Callable[[list[str]], bool] | None = None  # whether these first lines have year-less timestamps


def ascii_int(text: object, max_digits: int = 19) -> int | None:
    """The integer spelled by ASCII digits (at most `max_digits`), else None.

    `str.isdigit()` accepts "²" and other digits `int()` refuses, and `int()` accepts "٣" and
    refuses more than 4300 digits: log fields are read with this instead."""
    if not isinstance(text, str) or not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)
