"""Alerts as NDJSON, one Kibana alert document per line: to a file (gzip-compressed when its
name ends in `.gz`) or, for `-`, to standard output."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path
from typing import IO, Iterable

import orjson


class SinkError(Exception):
    """A destination that cannot be written; the message names it and says why."""


def check_output_path(path: str | os.PathLike) -> None:
    """Raise `SinkError` unless `path` (or `-`) can be created or overwritten as a file."""
    text = os.fspath(path)
    if text == "-":
        return
    p = Path(text)
    if p.is_dir():
        raise SinkError(f"{text}: is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"{text}: the folder {parent} does not exist")
    if p.exists() and not os.access(p, os.W_OK):
        raise SinkError(f"{text}: not writable")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise SinkError(f"{text}: cannot create a file in {parent}")


def open_output(path: str | os.PathLike) -> IO[bytes]:
    """A binary stream for `path`: stdout for `-`, gzip for `*.gz`, else a plain file."""
    text = os.fspath(path)
    if text == "-":
        return _Unclosed(sys.stdout.buffer)
    check_output_path(text)
    try:
        if text.endswith(".gz"):
            return gzip.open(text, "wb", compresslevel=6)
        return open(text, "wb")
    except OSError as e:
        raise SinkError(f"{text}: {e.strerror}") from None


class _Unclosed:
    """Standard output as a sink's stream: flushed on close, never closed."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        return self._stream.write(data)

    def close(self) -> None:
        self._stream.flush()


class NdjsonSink:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._out = open_output(path)
        self.written = 0

    def write(self, alerts: Iterable[dict]) -> None:
        out = self._out
        for alert in alerts:
            out.write(orjson.dumps(alert, default=str) + b"\n")
            self.written += 1

    def close(self) -> None:
        self._out.close()
