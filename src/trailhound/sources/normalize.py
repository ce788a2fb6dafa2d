"""Reading a non-ECS file through its format's reader: format detection, decoding, and the
documents it yields. Used by the loader (`load_events`) and by `trailhound normalize`."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from .formats import Format, ReadOptions, Skip
from .inputs import Source, SourceError, bounded_lines
from .registry import detect, registry

MAX_LINE_BYTES = 1 << 20
"""Longer lines are reported and skipped: no log format here has records that long."""

_HEAD_LINES = 50
_HEAD_LINE_BYTES = 1 << 20  # of a longer line, its start tells the format


def format_of(src: Source, name: str | None) -> Format | None:
    """The reader for `src`: the named one, or the detected one; None for ECS JSON. Parquet is
    recognized by its content whatever the name (`parquet.FORMAT`: read by columns, not lines)."""
    from . import parquet

    if parquet.is_parquet(src):
        return parquet.FORMAT
    if name is not None:
        if name == "ecs":
            return None
        formats = registry()
        if name not in formats:
            raise SourceError(src.name, f"unknown format {name!r} (known: ecs, {', '.join(formats)})")
        return formats[name]
    if src.array:
        return None
    return detect(head_lines(src))


def head_lines(src: Source) -> list[str]:
    head: list[str] = []
    with src.open_binary() as fh:
        try:
            while len(head) < _HEAD_LINES and (raw := fh.readline(_HEAD_LINE_BYTES)):
                head.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                while not raw.endswith(b"\n") and (raw := fh.readline(_HEAD_LINE_BYTES)):
                    pass  # the rest of a long line: its start is enough to tell the format
        except (EOFError, OSError, zlib.error):
            pass  # the real read reports the damage
    return head


def file_options(src: Source, options: ReadOptions) -> ReadOptions:
    """`options` with the file's modification time, for the year of syslog timestamps."""
    if options.file_time is not None or options.year is not None:
        return options
    when = datetime.fromtimestamp(src.mtime, UTC) if src.mtime is not None else datetime.now(UTC)
    return replace(options, file_time=when)


def year_note(src: Source, fmt: Format, options: ReadOptions) -> str | None:
    """Where the year of this file's timestamps comes from, when they may have none."""
    if fmt.undated is None or options.year is not None or not fmt.undated(head_lines(src)):
        return None
    when = file_options(src, options).file_time
    assert when is not None  # file_options sets it when no year is given
    origin = "the file's modification time" if src.mtime is not None else "the current date (the input is a stream)"
    return (f"{src.name}: syslog timestamps carry no year; using {when.year} from {origin} "
            "(a later date goes to the year before); set it with --year")


def text_lines(src: Source, skip: Skip, counted: list[int] | None = None) -> Iterator[tuple[int, str]]:
    """Numbered lines of text; invalid UTF-8 is replaced (and said), over-long lines skipped.
    The number of lines read goes to `counted[0]`."""
    n = 0
    with src.open_binary() as fh:
        try:
            for raw in bounded_lines(fh, MAX_LINE_BYTES):
                n += 1
                if isinstance(raw, int):
                    skip(n, f"line of {raw} bytes, over the {MAX_LINE_BYTES}-byte limit")
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    text = raw.decode("utf-8", "replace")
                    skip(n, f"invalid UTF-8 at byte {e.start}: kept with U+FFFD in its place")
                yield n, text.rstrip("\r\n")
        except (EOFError, OSError, zlib.error) as e:
            skip(n + 1, f"gzip data is damaged or truncated ({e}); the rest of the file is unread")
        finally:
            if counted is not None:
                counted[0] = n


def documents(src: Source, fmt: Format, options: ReadOptions, skip: Skip,
              counted: list[int] | None = None) -> Iterator[tuple[dict, int]]:
    """The file's ECS events. Events whose log names no host (an audit.log without `node=`) get
    `host.name`/`host.id` from `options.host`, else the file's name: rules that correlate by
    host need one, and two files must not pass for one host."""
    fallback = options.host or os.path.basename(src.name)
    for doc, line in fmt.read(text_lines(src, skip, counted), skip, file_options(src, options)):
        yield with_host(doc, fallback), line


def with_host(doc: dict, fallback: str) -> dict:
    """`doc` with `host.name` (and `host.id` if absent) set to `fallback` where its log named no host."""
    host = doc.get("host")
    if not isinstance(host, dict):
        host = doc["host"] = {}
    if not host.get("name"):
        host["name"] = fallback
        host.setdefault("id", fallback)
    return doc
