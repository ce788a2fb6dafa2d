"""Following growing logs: bytes appended to a file become ECS documents, exactly as `load_events` would read
the completed file.

* `LineCutter` cuts appended bytes into complete lines; a partial last line waits for its newline.
* `StreamDecoder` turns numbered lines into `(document, line)` pairs with the format's own reader
  (`formats.Format.read`, the one `load_events` runs). A reader is a generator that pulls lines, and an
  auditd event may need records that have not been written yet, so each reader runs in a thread of its
  own that waits for the next line: pushing lines returns the documents the reader could finish with
  them, and `close()` (the end of input) the rest, so the documents are those of one read of the whole
  file. ECS NDJSON lines are parsed here, with the loader's reasons for bad lines.
* `Follower` polls a set of paths and globs like `tail -F` (see its doc).

A decoder knows the first line it still holds (`pending_from()`: the first record of an auditd event not
yet complete), so a checkpoint can name the line to read again from, and which documents after it were
already used (`skip_lines`), so that a restart neither loses nor repeats an event.
"""

from __future__ import annotations

import glob
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from .ecs_readers import describe
from .ecs_values import MAX_DEPTH, too_deep
from .formats import Format, ReadOptions, detect, registry
from .normalize import MAX_LINE_BYTES

Skip = Callable[[int, str], None]

#: what a record line of an audit log starts with: optional node=, type=, msg=audit(SEC.MSEC:SERIAL)
_AUDIT_KEY = re.compile(r"^(?:node=(\S+) )?type=(\S+) msg=audit\((\d+\.\d+):(\d+)\)")
_RECENT_DONE = 4096


class LineCutter:
    """Appended bytes → complete lines (without their newline), numbered, with each line's end offset."""

    def __init__(self, offset: int = 0, line: int = 0) -> None:
        self.offset = offset  # of the first byte not yet cut into a line
        self.line = line  # number of the last line given out
        self.partial = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes, int]]:
        """(line number, line bytes, offset after its newline) of each line these bytes complete."""
        if not data:
            return []
        buf = self.partial + data
        out = []
        start = 0
        base = self.offset
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self.line += 1
            out.append((self.line, buf[start:nl], base + nl + 1))
            start = nl + 1
        self.partial = buf[start:]
        self.offset = base + start
        return out

    def flush(self) -> list[tuple[int, bytes, int]]:
        """The last line without a newline (the end of input)."""
        if not self.partial:
            return []
        self.line += 1
        rest, self.partial = self.partial, b""
        self.offset += len(rest)
        return [(self.line, rest, self.offset)]


def decode_line(raw: bytes, n: int, skip: Skip) -> str | None:
    """A line's text as `normalize.text_lines` gives it: invalid UTF-8 replaced (and said), an over-long line
    skipped (None)."""
    if len(raw) + 1 > MAX_LINE_BYTES:
        skip(n, f"line of {len(raw) + 1} bytes, over the {MAX_LINE_BYTES}-byte limit")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        text = raw.decode("utf-8", "replace")
        skip(n, f"invalid UTF-8 at byte {e.start}: kept with U+FFFD in its place")
    return text.rstrip("\r\n")


class _Feed:
    """The lines a reader thread pulls: waits for pushed lines, ends at close."""

    def __init__(self, decoder: StreamDecoder) -> None:
        self.decoder = decoder

    def __iter__(self) -> Iterator[tuple[int, str]]:
        d = self.decoder
        while True:
            with d._cond:
                while not d._queue and not d._closed:
                    d._idle = True
                    d._cond.notify_all()
                    d._cond.wait()
                d._idle = False
                if not d._queue:
                    return
                item = d._queue.pop(0)
            d._note_line(*item)
            yield item


@dataclass
class StreamDecoder:
    """One input's documents from its lines as they come (see the module doc). `fmt` None: ECS NDJSON."""

    name: str  # as the input is named in documents and skips
    fmt: Format | None
    options: ReadOptions
    skip: Skip
    skip_lines: set[int] = field(default_factory=set)  # documents (by line) already used before a restart

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[int, str]] = []
        self._out: list[tuple[dict, int]] = []
        self._closed = False
        self._idle = False
        self._done = False
        self._error: BaseException | None = None
        self._open: OrderedDict[tuple[str | None, str], int] = OrderedDict()  # audit event key → its first line
        self._first_of: dict[int, tuple[str | None, str]] = {}
        self._recent: OrderedDict[tuple[str | None, str], None] = OrderedDict()
        self._thread: threading.Thread | None = None
        self.events = 0
        self.lines = 0
        if self.fmt is not None:
            self._thread = threading.Thread(target=self._run, name=f"reader {self.name}", daemon=True)
            self._thread.start()

    # -- the reader thread --

    def _run(self) -> None:
        fmt = self.fmt
        assert fmt is not None
        fallback = self.options.host or os.path.basename(self.name)
        try:
            for doc, line in fmt.read(_Feed(self), self._skip, self.options):
                host = doc.get("host")
                if not isinstance(host, dict):
                    host = doc["host"] = {}
                if not host.get("name"):
                    host["name"] = fallback
                    host.setdefault("id", fallback)
                self._emitted(doc, line)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._idle = True
                self._cond.notify_all()

    def _skip(self, n: int, reason: str) -> None:
        key = self._first_of.pop(n, None)
        if key is not None:
            self._open.pop(key, None)
        self.skip(n, reason)

    def _note_line(self, n: int, text: str) -> None:
        if self.fmt is None or self.fmt.name != "auditd":
            return
        m = _AUDIT_KEY.match(text)
        if m is None or m.group(2) == "EOE":
            return
        key = (m.group(1), m.group(4))
        if key in self._open or key in self._recent:
            return
        self._open[key] = n
        self._first_of[n] = key

    def _emitted(self, doc: dict, line: int) -> None:
        key = self._first_of.pop(line, None)
        if key is not None:
            self._open.pop(key, None)
            self._recent[key] = None
            if len(self._recent) > _RECENT_DONE:
                self._recent.popitem(last=False)
        with self._cond:
            self._out.append((doc, line))

    # -- the caller --

    def push(self, lines: list[tuple[int, bytes]]) -> list[tuple[dict, int]]:
        """Give the reader these numbered lines; the documents it finished with them, in order."""
        texts = []
        for n, raw in lines:
            self.lines = max(self.lines, n)
            text = decode_line(raw, n, self.skip)
            if text is not None:
                texts.append((n, text))
        if self.fmt is None:
            return self._keep([d for d in (self._ndjson(n, t) for n, t in texts) if d is not None])
        with self._cond:
            self._queue.extend(texts)
            self._idle = False
            self._cond.notify_all()
            while not (self._idle and not self._queue) and not self._done:
                self._cond.wait()
        return self._take()

    def close(self) -> list[tuple[dict, int]]:
        """The end of input: the documents the reader still held."""
        if self.fmt is None:
            return []
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        assert self._thread is not None
        self._thread.join()
        return self._take()

    def pending_from(self) -> int | None:
        """The first line of an event the reader has begun and not finished (None: it holds none)."""
        with self._cond:
            return next(iter(self._open.values()), None) if self._open else None

    def _take(self) -> list[tuple[dict, int]]:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        with self._cond:
            out, self._out = self._out, []
        return self._keep(out)

    def _keep(self, docs: list[tuple[dict, int]]) -> list[tuple[dict, int]]:
        if self.skip_lines:
            kept = []
            for doc, line in docs:
                if line in self.skip_lines:
                    self.skip_lines.discard(line)
                else:
                    kept.append((doc, line))
            docs = kept
        self.events += len(docs)
        return docs

    def _ndjson(self, n: int, text: str) -> tuple[dict, int] | None:
        if not text.strip():
            return None
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            self.skip(n, f"invalid JSON: {e.msg} (at character {e.pos + 1})")
            return None
        if not isinstance(doc, dict):
            self.skip(n, f"not a JSON object (found {describe(doc)})")
            return None
        if text.count("{") + text.count("[") + text.count(".") > MAX_DEPTH and (why := too_deep(doc)) is not None:
            self.skip(n, why)
            return None
        return doc, n


def format_for(head: list[str], name: str | None) -> Format | None:
    """The reader for a followed input, from its first lines (or its named format); None for ECS NDJSON."""
    if name is not None:
        return None if name == "ecs" else registry()[name]
    return detect(head)


def read_options(path: str, options: ReadOptions) -> ReadOptions:
    """`options` with the file's modification time (the year of syslog stamps), as `normalize.file_options`."""
    if options.file_time is not None or options.year is not None:
        return options
    try:
        when = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
    except OSError:
        when = datetime.now(UTC)
    from dataclasses import replace

    return replace(options, file_time=when)


def expand(patterns: list[str]) -> list[str]:
    """The files the patterns name now: a glob's matches (sorted), a plain path as it is (even if absent)."""
    out: list[str] = []
    for p in patterns:
        if p != "-" and glob.has_magic(p):
            out.extend(sorted(m for m in glob.glob(p) if os.path.isfile(m)))
        else:
            out.append(p)
    return list(dict.fromkeys(out))
