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

import functools
import glob
import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import orjson

from .ecs_readers import describe
from .ecs_values import MAX_DEPTH, too_deep
from .formats import Format, ReadOptions
from .normalize import MAX_LINE_BYTES, with_host
from .registry import detect, registry

Skip = Callable[[int, str], None]

#: what a record line of an audit log starts with: optional node=, type=, msg=audit(SEC.MSEC:SERIAL)
_AUDIT_KEY = re.compile(r"^(?:node=(\S+) )?type=(\S+) msg=audit\((\d+\.\d+):(\d+)\)")
_RECENT_DONE = 4096


class LineCutter:
    """Appended bytes → complete lines (without their newline), numbered, with the offset of each line's start."""

    def __init__(self, offset: int = 0, line: int = 0) -> None:
        self.offset = offset  # of the first byte not yet cut into a line
        self.line = line  # number of the last line given out
        self.partial = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes, int]]:
        """(line number, line bytes, offset of its start) of each line these bytes complete."""
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
            out.append((self.line, buf[start:nl], base + start))
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
        start, self.offset = self.offset, self.offset + len(rest)
        return [(self.line, rest, start)]


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
                n, text, start = d._queue.pop(0)
            d._note_line(n, text, start)
            yield n, text


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
        self._queue: list[tuple[int, str, int]] = []
        self._out: list[tuple[dict, int]] = []
        self._closed = False
        self._idle = False
        self._done = False
        self._error: BaseException | None = None
        #: audit event key → (its first line, that line's offset): events begun and not finished
        self._open: OrderedDict[tuple[str | None, str], tuple[int, int]] = OrderedDict()
        self._first_of: dict[int, tuple[str | None, str]] = {}
        self._recent: OrderedDict[tuple[str | None, str], None] = OrderedDict()
        #: open audit event key → {its msg=audit time text: when its last kernel record was pushed}: `close_stale`
        self._touched: dict[tuple[str | None, str], dict[str, float]] = {}
        self._push_time = 0.0
        self._thread: threading.Thread | None = None
        self.emitted: list[int] = []  # lines of the documents given out that a checkpoint may need to name
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
                self._emitted(with_host(doc, fallback), line)
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
            self._touched.pop(key, None)
        self.skip(n, reason)

    def _note_line(self, n: int, text: str, start: int) -> None:
        if self.fmt is None or self.fmt.name != "auditd":
            return
        m = _AUDIT_KEY.match(text)
        if m is None or m.group(2) == "EOE":
            return
        key = (m.group(1), m.group(4))
        if key in self._recent:
            return
        if m.group(2) in _kernel_event_types():  # a user-space record is an event of its own at once
            self._touched.setdefault(key, {})[m.group(3)] = self._push_time
        if key in self._open:
            return
        self._open[key] = (n, start)
        self._first_of[n] = key

    def _emitted(self, doc: dict, line: int) -> None:
        key = self._first_of.pop(line, None)
        if key is not None:
            self._open.pop(key, None)
            self._touched.pop(key, None)
            self._recent[key] = None
            if len(self._recent) > _RECENT_DONE:
                self._recent.popitem(last=False)
        with self._cond:
            self._out.append((doc, line))

    # -- the caller --

    def push(self, lines: list[tuple[int, bytes, int]], now: float = 0.0) -> list[tuple[dict, int]]:
        """Give the reader these lines (number, bytes, offset of their start), read at `now` (the follower's
        clock); the documents it finished with them, in order."""
        texts = []
        for n, raw, start in lines:
            self.lines = max(self.lines, n)
            text = decode_line(raw, n, self.skip)
            if text is not None:
                texts.append((n, text, start))
        if self.fmt is None:
            return self._keep([d for d in (self._ndjson(n, t) for n, t, _ in texts) if d is not None])
        self._push_time = now
        return self._give(texts)

    def close_stale(self, now: float, after: float) -> list[tuple[dict, int]]:
        """Close the audit events whose last record came `after` seconds or more before `now`; the documents that
        makes ready. An audit log has no EOE records, so an event is otherwise complete only once 50 later
        events have begun (the reader's in-flight bound) or the file goes quiet; but the kernel hands an event's
        records to auditd together at the syscall's exit and auditd writes them at once, so a record that has
        waited this long for a companion has all of them. Each such event gets the EOE the log left out (a line
        the reader sees, not one of the file's); a record of it that still came later would be reported as a bad
        line, never dropped silently."""
        if self.fmt is None or self.fmt.name != "auditd":
            return []
        with self._cond:
            stale = [(key, stamp) for key, stamps in self._touched.items() for stamp, at in stamps.items()
                     if now - at >= after]
            for key, stamp in stale:  # one EOE each
                del self._touched[key][stamp]
                if not self._touched[key]:
                    del self._touched[key]
        if not stale:
            return []
        eoe = []
        for (node, serial), stamp in stale:
            head = f"node={node} " if node is not None else ""
            eoe.append((self.lines, f"{head}type=EOE msg=audit({stamp}:{serial}): ", -1))
        return self._give(eoe)

    def _give(self, texts: list[tuple[int, str, int]]) -> list[tuple[dict, int]]:
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

    def stop(self) -> None:
        """End the reader's thread without taking what it holds (a checkpoint names where to read it again)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def cut(self) -> list[tuple[dict, int]]:
        """Close the events the reader holds as at the end of input, and go on with a fresh reader (for an
        audit log without EOE records that has gone quiet: its last events would otherwise wait for the next
        ones). A record of a closed event that comes later is reported as a bad line."""
        docs = self.close()
        self._closed = self._done = False
        self._idle = False
        self._open.clear()
        self._first_of.clear()
        self._touched.clear()
        self._thread = threading.Thread(target=self._run, name=f"reader {self.name}", daemon=True)
        self._thread.start()
        return docs

    def pending_from(self) -> tuple[int, int] | None:
        """(line, offset) of the first line of an event the reader has begun and not finished (None: it holds none)."""
        with self._cond:
            return min(self._open.values()) if self._open else None

    def resume_point(self, next_line: int, next_offset: int) -> tuple[int, int, list[int]]:
        """Where a restart reads again from, (line, offset), and the documents after it already given out (by
        line), to be left out then. `next_line`/`next_offset`: the first line not yet pushed."""
        line, offset = self.pending_from() or (next_line, next_offset)
        self.emitted = [n for n in self.emitted if n >= line]
        return line, offset, list(self.emitted)

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
        if self.fmt is not None and self.fmt.name == "auditd":
            self.emitted.extend(line for _, line in docs)
            if len(self.emitted) > 4 * _RECENT_DONE:  # only those after the oldest open event are needed
                first = self.pending_from()
                self.emitted = [n for n in self.emitted if first is not None and n >= first[0]]
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


@functools.cache
def _kernel_event_types() -> frozenset[str]:
    """The record types the kernel writes as parts of an event (numbers 1300-2099; the others stand alone)."""
    from .auditd.tables import KERNEL_RECORD_TYPES

    return frozenset(name for name, n in KERNEL_RECORD_TYPES.items() if 1300 <= n < 2100)


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


# ---- following files ---------------------------------------------------------------------

FINGERPRINT_BYTES = 1024
"""A file is known by (device, inode) and a hash of its first bytes: an inode reused by a new file, or a file
truncated and written again between two polls, has other first bytes."""
READ_BYTES = 1 << 20  # at most this much of one file per poll, so that one busy file does not starve the others
ROTATED_GRACE = 2.0  # seconds a renamed-away file is still read (a writer may finish its last lines there)


class Intake(Protocol):
    """Where followed inputs go (`pipeline.watch.StreamPipeline`)."""

    def add_source(self, name: str, enrich: bool) -> int: ...

    def set_enrich(self, source: int, enrich: bool) -> None: ...

    def set_idle(self, source: int, idle: bool) -> None: ...

    def add(self, source: int, doc: dict, line: int) -> None: ...

    def close_source(self, source: int) -> None: ...


def _has_line(head: bytes) -> bool:
    return any(x.strip() for x in head.split(b"\n")[:-1])


class FollowError(Exception):
    """An input that cannot be followed; the message names it and says why."""


def fingerprint(fd: int, size: int) -> tuple[str, int]:
    n = min(size, FINGERPRINT_BYTES)
    return hashlib.sha1(os.pread(fd, n, 0)).hexdigest(), n


@dataclass
class Followed:
    """One file (one identity) being read."""

    path: str
    source: int  # the pipeline's number for it
    fd: int
    dev: int
    ino: int
    fp: str
    fp_len: int
    cutter: LineCutter
    decoder: StreamDecoder | None = None
    last_data: float = 0.0
    rotated_at: float | None = None  # when its path came to name another file (it is read a little longer)
    stdin: bool = False
    held: list = field(default_factory=list)  # standard input's first lines, until they tell the format

    @property
    def offset(self) -> int:
        return self.cutter.offset + len(self.cutter.partial)

    def to_dict(self) -> dict:
        done: list[int] = []
        fmt: str | None = None
        if self.decoder is None:  # nothing read yet: the format is not known
            line, offset = self.cutter.line + 1, self.cutter.offset
        else:
            line, offset, done = self.decoder.resume_point(self.cutter.line + 1, self.cutter.offset)
            fmt = self.decoder.fmt.name if self.decoder.fmt else "ecs"
        return {"path": self.path, "source": self.source, "dev": self.dev, "ino": self.ino, "fp": self.fp,
                "fp_len": self.fp_len, "line": line, "offset": offset, "done": done, "format": fmt,
                "rotated": self.rotated_at is not None}


class Follower:
    """`tail -F` over paths and globs, by polling.

    Polling (every `interval` seconds) rather than inotify: it works the same on every file system (NFS, overlay,
    bind mounts in containers), sees a rename, a truncation and a new file the same way, and at a few stats per
    file per poll it costs nothing next to evaluating the rules.

    * A file is known by its identity (device, inode, fingerprint of its first bytes), not its name: renamed (a
      rotation), it is read to its end (for `ROTATED_GRACE` seconds after its path names another file), then the
      new file at the path is read from its start.
    * Truncated (copytruncate, `> file`) or replaced by a file with other first bytes: read again from the start,
      as a new input.
    * A quoted glob picks up files that appear later (read from their start); a plain path that does not exist
      yet is waited for.
    * At start, existing files are read from their end, or from their start with `from_start`.
    * An audit event still open when its file has been quiet for `close_events_after` seconds is closed as at
      the end of the file (audit logs without EOE records would otherwise hold their last events back), and in
      a busy file an event that got no record for `event_seconds` is closed on its own
      (`StreamDecoder.close_stale`), rather than waiting for 50 later events.
    Each identity is one input of the `intake` (the live pipeline)."""

    def __init__(self, patterns: list[str], intake: Intake, *, skip: Callable[[str, int, str], None],
                 input_format: str | None = None, options: ReadOptions | None = None, from_start: bool = False,
                 idle_after: float = 0.5, close_events_after: float = 1.0, event_seconds: float | None = 0.3,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.patterns = patterns
        self.intake, self._skip = intake, skip
        self.input_format = input_format
        self.options = options or ReadOptions()
        self.from_start = from_start
        self.idle_after = idle_after
        self.close_events_after = close_events_after  # an audit event left open this long in a quiet file is closed
        self.event_seconds = event_seconds  # an audit event with no new record for this long is complete (None: never)
        self.clock = clock or time.monotonic
        self.files: list[Followed] = []
        self.notes: list[str] = []  # what a user should hear (rotations, truncations, losses)
        self.started = False
        self.behind = False  # the last poll left bytes unread
        self.stdin_done = False
        self._stdin: Followed | None = None
        self._stdin_queue: list[bytes | None] = []
        self._stdin_lock = threading.Lock()
        self._missing: set[str] = set()

    # ---- the poll ----

    def poll(self) -> int:
        """Read what was appended (bounded per file); the bytes read."""
        self.discover()
        now = self.clock()
        total = 0
        self.behind = False
        for f in list(self.files):
            total += self._poll_file(f, now)
        return total

    def discover(self) -> None:
        """Open the files the patterns name now and that are not followed yet (at their start, or at their end
        for those found at the very start without `from_start`)."""
        first = not self.started
        self.started = True
        known = {(f.dev, f.ino): f for f in self.files if not f.stdin}
        for path in expand(self.patterns):
            if path == "-":
                if self._stdin is None and not self.stdin_done:
                    self._open_stdin()
                continue
            if any(f.path == path and f.rotated_at is None for f in self.files):
                continue
            try:
                st = os.stat(path)
            except OSError as e:
                if path not in self._missing:
                    self._missing.add(path)
                    self.notes.append(f"{path}: {e.strerror}; waiting for it")
                continue
            self._missing.discard(path)
            if (st.st_dev, st.st_ino) in known:  # a followed file under a new name (a rotation's other half)
                known[(st.st_dev, st.st_ino)].path = path
                continue
            self._open(path, from_start=self.from_start or not first)

    def _poll_file(self, f: Followed, now: float) -> int:
        if f.stdin:
            return self._poll_stdin(f, now)
        if f.rotated_at is None:
            try:
                st = os.stat(f.path)
                same = (st.st_dev, st.st_ino) == (f.dev, f.ino)
            except OSError:
                same = False
            if not same:
                f.rotated_at = now
                self.notes.append(f"{f.path}: renamed or deleted; reading the rest of the old file, then the new one")
        size = os.fstat(f.fd).st_size
        if size < f.offset or (f.fp_len and fingerprint(f.fd, f.fp_len)[0] != f.fp):
            self.notes.append(f"{f.path}: truncated; reading it again from the start")
            self._end(f)
            if f.rotated_at is None:
                self._open(f.path, from_start=True)
            return 0
        if f.fp_len < FINGERPRINT_BYTES and size > f.fp_len:
            f.fp, f.fp_len = fingerprint(f.fd, size)
        data = os.pread(f.fd, min(READ_BYTES, size - f.offset), f.offset) if size > f.offset else b""
        if size - f.offset > READ_BYTES:
            self.behind = True  # more is waiting than one poll reads
        if data:
            self._feed(f, data, now)
        if self.event_seconds is not None and f.decoder is not None and size - f.offset <= 0:
            for doc, line in f.decoder.close_stale(now, self.event_seconds):
                self.intake.add(f.source, doc, line)
        if data:
            return len(data)
        if f.rotated_at is not None and now - f.rotated_at >= ROTATED_GRACE:
            self._end(f)
        else:
            quiet = now - f.last_data
            if (quiet >= self.close_events_after and f.decoder is not None and f.decoder.fmt is not None
                    and f.decoder.pending_from() is not None):
                for doc, line in f.decoder.cut():
                    self.intake.add(f.source, doc, line)
            self.intake.set_idle(f.source, quiet >= self.idle_after)
        return len(data)

    def _feed(self, f: Followed, data: bytes, now: float) -> None:
        f.last_data = now
        self.intake.set_idle(f.source, False)
        if f.decoder is None and not f.stdin and self.input_format is None and not _has_line(os.pread(f.fd, 65536, 0)):
            return  # the format is told by the first lines: wait for one (nothing is consumed)
        lines = f.cutter.feed(data)
        if f.decoder is None:
            f.held.extend(lines)
            if not self._start_decoder(f):
                return
            lines, f.held = f.held, []
        assert f.decoder is not None
        for doc, line in f.decoder.push(lines, now):
            self.intake.add(f.source, doc, line)

    def _start_decoder(self, f: Followed) -> bool:
        """The reader for a file, from its first lines (standard input: from the first lines that came)."""
        if self.input_format is not None:
            fmt = format_for([], self.input_format)
        else:
            if f.stdin:
                head = [raw.decode("utf-8", "replace") for _, raw, _ in f.held[:50]]
            else:
                head = [x.decode("utf-8", "replace") for x in os.pread(f.fd, 64 * 1024, 0).split(b"\n")[:-1][:50]]
            if not any(h.strip() for h in head):
                return False
            fmt = format_for(head, None)
        opts = self.options if f.stdin else read_options(f.path, self.options)
        f.decoder = StreamDecoder(f.path, fmt, opts, functools.partial(self._skip, f.path))
        self.intake.set_enrich(f.source, fmt is not None)
        return True

    def _end(self, f: Followed) -> None:
        if f.decoder is not None:
            for doc, line in f.decoder.push(f.cutter.flush()) + f.decoder.close():
                self.intake.add(f.source, doc, line)
        elif f.held or f.cutter.partial:
            f.held.extend(f.cutter.flush())
            if self._start_decoder(f):
                assert f.decoder is not None
                for doc, line in f.decoder.push(f.held) + f.decoder.close():
                    self.intake.add(f.source, doc, line)
        if not f.stdin:
            os.close(f.fd)
        self.intake.close_source(f.source)
        self.files.remove(f)

    def close(self) -> None:
        """Stop following (the readers' threads end; what they hold stays unread: a checkpoint names it)."""
        for f in self.files:
            if f.decoder is not None:
                f.decoder.stop()
            if not f.stdin:
                os.close(f.fd)
        self.files = []

    # ---- opening ----

    def _open(self, path: str, from_start: bool, resume: dict | None = None) -> Followed | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError as e:
            raise FollowError(f"{path}: cannot be read: {e.strerror}") from None
        st = os.fstat(fd)
        import stat as stat_mod

        if not stat_mod.S_ISREG(st.st_mode):
            os.close(fd)
            raise FollowError(f"{path}: not a regular file (follow a FIFO or a pipe through standard input, -)")
        fp, fp_len = fingerprint(fd, st.st_size)
        if resume is not None:
            cutter = LineCutter(resume["offset"], resume["line"] - 1)
            source = resume["source"]
        else:
            start = 0 if from_start else _line_start_at_end(fd, st.st_size)
            cutter = LineCutter(start, 0)
            source = self.intake.add_source(path, False)
        f = Followed(path, source, fd, st.st_dev, st.st_ino, fp, fp_len, cutter, last_data=self.clock())
        if resume is not None and resume["format"] is not None:
            fmt = format_for([], resume["format"])
            f.decoder = StreamDecoder(path, fmt, read_options(path, self.options), functools.partial(self._skip, path),
                                      skip_lines=set(resume["done"]))
        self.files.append(f)
        return f

    def _open_stdin(self) -> None:
        source = self.intake.add_source("-", False)
        f = Followed("-", source, 0, 0, 0, "", 0, LineCutter(), last_data=self.clock(), stdin=True)
        self._stdin = f
        self.files.append(f)

        def pump() -> None:
            import sys

            stream = sys.stdin.buffer
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                with self._stdin_lock:
                    self._stdin_queue.append(chunk or None)
                if not chunk:
                    return

        threading.Thread(target=pump, name="stdin", daemon=True).start()

    def _poll_stdin(self, f: Followed, now: float) -> int:
        with self._stdin_lock:
            chunks, self._stdin_queue = self._stdin_queue, []
        n = 0
        for chunk in chunks:
            if chunk is None:
                self._end(f)
                self._stdin, self.stdin_done = None, True
                return n
            n += len(chunk)
            self._feed(f, chunk, now)
        if not chunks:
            self.intake.set_idle(f.source, now - f.last_data >= self.idle_after)
        return n

    # ---- checkpoints ----

    def to_dict(self) -> list[dict]:
        """Where each file is (stdin is not resumable: a restart cannot read it again)."""
        return [f.to_dict() for f in self.files if not f.stdin]

    def resume(self, saved: list[dict]) -> list[int]:
        """Reopen the files of a checkpoint where it left them; the sources that cannot be resumed (the pipeline
        should close them). A file renamed while nobody watched is looked for beside the patterns' files."""
        lost = []
        self.started = True
        for entry in saved:
            found = self._find(entry)
            if found is None:
                self.notes.append(f"{entry['path']}: gone (renamed away or deleted while watch was stopped); what "
                                  f"was written to it after offset {entry['offset']} was not read")
                lost.append(entry["source"])
                continue
            path, fd = found
            os.close(fd)
            st = os.stat(path)
            if st.st_size < entry["offset"]:
                self.notes.append(f"{path}: truncated while watch was stopped; reading it from the start")
                lost.append(entry["source"])
                self._open(path, from_start=True)
                continue
            f = self._open(path, from_start=False, resume=entry)
            assert f is not None
            if entry["rotated"] or path != entry["path"]:
                f.rotated_at = self.clock()
        return lost

    def _find(self, entry: dict) -> tuple[str, int] | None:
        candidates = [entry["path"]] + [p for p in _neighbours(entry["path"], self.patterns) if p != entry["path"]]
        for path in candidates:
            try:
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (entry["dev"], entry["ino"]) and fingerprint(fd, entry["fp_len"]) == (
                    entry["fp"], entry["fp_len"]):
                return path, fd
            os.close(fd)
        return None


def _neighbours(path: str, patterns: list[str]) -> list[str]:
    """Where a rotated file may now be: the files beside it whose names begin with its name, and the patterns'."""
    out = sorted(glob.glob(glob.escape(path) + "*"))
    return out + [p for p in expand(patterns) if p != "-"]


def _line_start_at_end(fd: int, size: int) -> int:
    """Where following from the end begins: after the last newline (a partial last line is read when completed)."""
    pos = size
    while pos > 0:
        step = min(65536, pos)
        block = os.pread(fd, step, pos - step)
        nl = block.rfind(b"\n")
        if nl >= 0:
            return pos - step + nl + 1
        pos -= step
    return 0
