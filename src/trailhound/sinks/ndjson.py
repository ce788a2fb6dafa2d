"""Alerts as NDJSON, one Kibana alert document per line: to a file (compressed by its suffix:
.gz, .bz2, .xz) or, for `-`, to standard output."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

#: openers by suffix; typed loosely because their overloads (text or binary by mode) match no single Callable
_COMPRESSORS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


_CHUNK = 1 << 20  # bytes of lines joined per write


class SinkError(Exception):
    """A destination that cannot be written; the message says why."""


def is_stdout(path: str | os.PathLike | None) -> bool:
    return path is not None and os.fspath(path) == "-"


def output_problem(path: str | os.PathLike, inputs: Sequence[str | os.PathLike] = ()) -> str | None:
    """Why `path` cannot be written as an output file, or None: a directory, a missing or
    read-only parent, a read-only file, one of the `inputs` (opening it would truncate what is
    being read). `-` (standard output) is always fine."""
    if is_stdout(path):
        return None
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.exists() and any(_same_file(p, i) for i in inputs):
        return "it is one of the inputs"
    if p.is_dir():
        return "is a directory; give a file name"
    if not parent.exists():
        return f"its directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if p.exists() and not os.access(p, os.W_OK):
        return "the file is not writable"
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"the directory {parent} is not writable"
    return None


def _same_file(a: Path, b: str | os.PathLike) -> bool:
    try:
        return not is_stdout(b) and os.path.samefile(a, b)
    except OSError:
        return False


def open_output(path: str | os.PathLike | None) -> IO[bytes]:
    """A binary stream for `path`: standard output for `-` or None, compressed by the name's
    suffix, else a plain file. Raises `SinkError` when it cannot be opened."""
    if path is None or is_stdout(path):
        return _Unclosed(sys.stdout.buffer)  # type: ignore[return-value]
    p = Path(path)
    opener = _COMPRESSORS.get(p.suffix.lower())
    try:
        return opener(p, "wb") if opener else p.open("wb")
    except OSError as e:
        raise SinkError(f"cannot write {p}: {e.strerror or e}") from None


class _Unclosed:
    """Standard output as a sink's stream: `close` flushes it and leaves it open."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.write = stream.write
        self.flush = stream.flush

    def close(self) -> None:
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NdjsonSink:
    """Alerts as NDJSON lines to `path` (see `open_output`).

    A write error (a full disk) does not stop the hunt: the alerts not written are counted in
    `delivery` with the reason, and the command exits 2. A plain file is flushed after each batch,
    so the count is exact; a compressed one may lose what its compressor still held, and is then
    counted as lost whole (a compressed stream cut short is unreadable past the cut). A closed pipe
    (`| head`) is not an error here: it stops the command as before."""

    def __init__(self, path: str | os.PathLike | None, name: str | None = None) -> None:
        from .delivery import Delivery

        self.path = path
        self.name = name
        self.delivery = Delivery()
        self._out = open_output(path)
        self._compressed = not (path is None or is_stdout(path)) and Path(path).suffix.lower() in _COMPRESSORS
        self._broken = False

    def _error(self, e: OSError) -> None:
        self._broken = True
        where = "standard output" if self.path is None or is_stdout(self.path) else str(self.path)
        self.delivery.problem(f"cannot write {where}: {e.strerror or e}")

    def write(self, alerts: Iterable[dict]) -> None:
        self.write_lines([orjson.dumps(alert, default=str) + b"\n" for alert in alerts])

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Alerts already serialized, one NDJSON line each (`alerts.build.alert_json`): written in chunks of
        about a megabyte (a write per line costs more than the copy)."""
        batch = lines
        if self._broken:
            self.delivery.failed += len(batch)
            return
        out = self._out
        written = 0  # lines handed to a compressor: its output is judged at close
        try:
            start = size = 0
            for end, line in enumerate(batch, 1):
                size += len(line)
                if size >= _CHUNK or end == len(batch):
                    out.write(b"".join(batch[start:end]) if end - start > 1 else line)
                    written, start, size = end, end, 0
            if not self._compressed:
                out.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            self._error(e)
            kept = written if self._compressed else 0  # a plain file's torn batch: counted as not written
            self.delivery.failed += len(batch) - kept
            self.delivery.delivered += kept
            return
        self.delivery.delivered += len(batch)

    def close(self) -> None:
        try:
            self._out.close()
        except BrokenPipeError:
            raise
        except OSError as e:
            if not self._broken:  # else said already: the same error, met again by the final flush
                self._error(e)
            if self._compressed:
                self.delivery.failed += self.delivery.delivered
                self.delivery.delivered = 0
