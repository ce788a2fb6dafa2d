"""What an input is: a file, a stream or a spool of one, opened once and read as bytes.

`Source.open` takes what a shell can give (a path, `-`, a FIFO, process substitution,
/dev/stdin), spools what cannot be read twice, recognizes compression by content (gzip read as a
stream; bzip2, xz and zstd decompressed into a bounded spool) and wide Unicode by its BOM, and
refuses devices that never end. `SkipLog` counts the bad lines of every reader; `SourceError` is
an input that cannot be read at all.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import os
import stat
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_JSON_LINE_BYTES = 16 << 20
"""Longer JSON lines are reported and skipped (DuckDB's own limit for one JSON object)."""

_GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
# Compressed content is recognised by its magic bytes, whatever the file is called. gzip is read as
# it is (DuckDB and Python stream it); the others are decompressed into a spool first.
_SPOOLED_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
# UTF-32 first: its little-endian BOM starts with UTF-16's
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
              (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_SPOOL_CHUNK = 1 << 20
#: a JSON array file is parsed whole: at most this much of it, decompressed (NDJSON has no such bound)
MAX_ARRAY_BYTES = 512 << 20
_TOO_BIG_ARRAY = (f"a JSON array over {MAX_ARRAY_BYTES >> 20} MiB (decompressed) is not read whole; "
                  "write it as NDJSON, one document per line")
#: decompressed bzip2/xz/zstd input is spooled to disk: at most this many times the compressed size
#: (logs compress 10-50x) or 1 GiB, whichever is more, so that a small bomb cannot fill the disk
MAX_INFLATION = 200
# Sample used to guess column types for the DuckDB reader: the head of the file plus, for
# uncompressed files, chunks spread over it (cheap with seek).
_SAMPLE_HEAD_BYTES = 256 * 1024
_SAMPLE_CHUNKS = 8
_SAMPLE_CHUNK_BYTES = 64 * 1024


class SourceError(ValueError):
    """An input file is missing or cannot be read at all."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class Source:
    """An input as sniffed from its first bytes.

    `path` is what the readers open: the input itself when it is a regular file, plain or gzip,
    in UTF-8; otherwise a spool of it (an unlinked temporary file, open while this object lives,
    reached through /proc/self/fd): standard input ("-"), FIFOs and process substitution (which
    can be read once only), bzip2/xz/zstd (decompressed) and UTF-16/32 text (made UTF-8).
    `name` is the input as given, for reports.
    """

    path: str
    size: int
    gzip: bool
    array: bool  # the content is one JSON array of objects
    bom: bool
    name: str = ""
    mtime: float | None = None  # the input's modification time (None for a stream)
    notes: list[str] = field(default_factory=list)  # how the input was read, when not as it is
    damage: str | None = None  # why the spool ends early (a corrupt compressed stream)
    spool: object = field(default=None, repr=False)  # the spool's file object, kept open

    def __post_init__(self) -> None:
        self.name = self.name or self.path

    @classmethod
    def open(cls, path: str) -> Source:
        """Open an input, spooling what cannot be read twice or as it is; raises SourceError."""
        name, spool, mtime = path, None, None
        notes: list[str] = []
        try:
            if path == "-":
                name, st = "<stdin>", os.fstat(0)
            else:
                st = os.stat(path)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                raise SourceError(path, "is a directory, not a file")
            if stat.S_ISREG(mode) and path != "-":
                mtime = st.st_mtime
            elif (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISREG(mode)
                  or (stat.S_ISCHR(mode) and _is_terminal_or_null(path, st))):
                # a pipe, a terminal or a redirected file: read it once, into the spool
                with (os.fdopen(os.dup(0), "rb") if path == "-" else open(path, "rb")) as stream:
                    spool = _spool(stream)
            else:
                kind = "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(
                    mode) else "not a regular file"
                raise SourceError(path, f"is {kind}, not a file or a pipe")
            reading = _fd_path(spool) if spool is not None else path
            with open(reading, "rb") as fh:
                raw = fh.read(64 * 1024)
        except FileNotFoundError:
            raise SourceError(path, "no such file") from None
        except IsADirectoryError:
            raise SourceError(path, "is a directory, not a file") from None
        except PermissionError:
            raise SourceError(path, "permission denied") from None
        except OSError as e:
            raise SourceError(path, f"cannot read: {e.strerror or e}") from None
        return cls._sniffed(reading, raw, path, name, mtime, notes, spool)

    @classmethod
    def from_bytes(cls, data: bytes, name: str, mtime: float | None = None) -> Source:
        """An input whose bytes were read elsewhere (a Spark task given a file of any filesystem Spark reads),
        spooled and then recognized as `open` recognizes a file (compression and BOMs by content); `name` (its
        URI) names it in reports and errors, `mtime` is its modification time (the year of syslog timestamps)."""
        spool = tempfile.TemporaryFile(prefix="trailhound-")
        try:
            spool.write(data)
            spool.flush()
        except OSError as e:
            spool.close()
            raise SourceError(name, f"cannot spool its {len(data)} bytes: {e.strerror or e}") from None
        return cls._sniffed(_fd_path(spool), data[:64 * 1024], name, name, mtime, [], spool)

    @classmethod
    def _sniffed(cls, reading: str, raw: bytes, path: str, name: str, mtime: float | None, notes: list[str],
                 spool) -> Source:
        """The Source of the bytes at `reading` (`raw`: their first 64 KiB); `path` names it in errors."""
        damage = None
        compression = next((kind for magic, kind in _SPOOLED_MAGIC.items() if raw.startswith(magic)), None)
        if compression == "bzip2" and not (raw[3:4].isdigit() and raw[4:10] in (b"1AY&SY", b"\x17rE8P\x90")):
            compression = None  # text that happens to start with "BZh"
        if compression is not None:
            try:
                with open(reading, "rb") as fh:
                    spool, damage = _spool_decompressed(fh, compression, path)
            except OSError as e:
                raise SourceError(path, f"cannot read: {e.strerror or e}") from None
            reading = _fd_path(spool)
            with open(reading, "rb") as fh:
                raw = fh.read(64 * 1024)
        compressed = raw.startswith(_GZIP_MAGIC)
        head = raw
        if compressed:
            try:  # a partial decompression is enough to see how the content starts
                head = zlib.decompressobj(wbits=31).decompress(raw, 4096)
            except zlib.error as e:
                raise SourceError(path, f"not a readable gzip file ({e})") from None
        wide = next((codec for bom, codec in _WIDE_BOMS if head.startswith(bom)), None)
        if wide is not None:  # UTF-16/32 with a BOM: the readers take UTF-8
            opener = gzip.open if compressed else open
            with opener(reading, "rb") as fh:
                spool = _spool(codecs.getreader(wide)(fh, "replace"), encode=True)
            notes.append(f"{name}: decoded from {wide.upper()} (its byte order mark says so)")
            reading, compressed = _fd_path(spool), False
            with open(reading, "rb") as fh:
                head = fh.read(64 * 1024)
        bom = head.startswith(UTF8_BOM)
        first = (head[3:] if bom else head).lstrip()
        size = os.stat(reading).st_size
        return cls(reading, size, compressed, first.startswith(b"["), bom, name, mtime, notes, damage, spool)

    def open_binary(self):
        return gzip.open(self.path, "rb") if self.gzip else open(self.path, "rb")

    def read_all(self) -> tuple[bytes, str | None]:
        """The whole (decompressed) content and, if the gzip stream is damaged, why. A JSON array is
        held whole, so its size is bounded (MAX_ARRAY_BYTES): a gzip bomb is refused, not inflated."""
        with open(self.path, "rb") as fh:
            raw = fh.read(MAX_ARRAY_BYTES + 1)
        if len(raw) > MAX_ARRAY_BYTES:
            raise SourceError(self.name, _TOO_BIG_ARRAY)
        if not self.gzip:
            return raw, None
        out, error, size = [], None, 0
        while raw:  # member by member: a gzip file may be a concatenation
            d = zlib.decompressobj(wbits=31)
            try:
                part = d.decompress(raw, MAX_ARRAY_BYTES + 1 - size)
            except zlib.error as e:
                error = f"corrupt gzip data ({e})"
                break
            size += len(part)
            if size > MAX_ARRAY_BYTES:
                raise SourceError(self.name, _TOO_BIG_ARRAY)
            out.append(part)
            if not d.eof:
                error = "gzip data is truncated"
                break
            raw = d.unused_data
        return b"".join(out), error

    def sample_lines(self) -> Iterator[bytes]:
        """Whole lines from the head of the file and, if uncompressed, from across it."""
        with self.open_binary() as fh:
            try:
                head = fh.read(_SAMPLE_HEAD_BYTES)
            except (EOFError, OSError, zlib.error):
                return  # the real read reports the damage
            yield from head.split(b"\n")[:-1]
            if self.gzip or self.size < 4 * _SAMPLE_HEAD_BYTES:
                return
            step = self.size // (_SAMPLE_CHUNKS + 1)
            for k in range(1, _SAMPLE_CHUNKS + 1):
                fh.seek(k * step)
                yield from fh.read(_SAMPLE_CHUNK_BYTES).split(b"\n")[1:-1]


def _fd_path(spool) -> str:
    return f"/proc/self/fd/{spool.fileno()}"


def _is_terminal_or_null(path: str, st: os.stat_result) -> bool:
    """A character device that ends: a terminal (until ^D) or /dev/null; not /dev/zero or /dev/urandom."""
    try:
        null = os.stat(os.devnull)
        if st.st_rdev == null.st_rdev:
            return True
        return os.isatty(0) if path == "-" else _isatty_path(path)
    except OSError:
        return False


def _isatty_path(path: str) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _spool(stream, encode: bool = False):
    """Copy a stream (bytes, or text when `encode`) into an unlinked temporary file."""
    spool = tempfile.TemporaryFile(prefix="trailhound-")
    while chunk := stream.read(_SPOOL_CHUNK):
        spool.write(chunk.encode("utf-8", "replace") if encode else chunk)
    spool.flush()
    return spool


def _spool_decompressed(fh, compression: str, path: str):
    """(spool of the decompressed content, why it ends early or None). bzip2 and xz go through
    their decompressor objects chunk by chunk, so a truncated or damaged file keeps every byte
    decompressed before the damage (a file object's read(n) drops the part of n it had)."""
    spool = tempfile.TemporaryFile(prefix="trailhound-")
    try:
        size = os.fstat(fh.fileno()).st_size
    except OSError:
        size = 0
    limit = max(1 << 30, MAX_INFLATION * size)
    written, damage = 0, None
    try:
        for chunk in _decompressed_chunks(fh, compression, path):
            written += len(chunk)
            if written > limit:
                damage = (f"{compression} data inflates past {limit >> 20} MiB ({MAX_INFLATION}x the file); "
                          "the rest of the file is unread")
                break
            spool.write(chunk)
    except SourceError:
        raise
    except Exception as e:  # noqa: BLE001 - EOFError, OSError, LZMAError, zstandard.ZstdError...
        damage = f"{compression} data is damaged or truncated ({e}); the rest of the file is unread"
    spool.flush()
    return spool, damage


def _decompressed_chunks(fh, compression: str, path: str) -> Iterator[bytes]:
    """The decompressed bytes, stream after stream (bzip2 and xz files may be concatenations);
    raises EOFError at a truncated end, after yielding all that came before it."""
    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise SourceError(path, "zstd input needs the zstandard package (pip install zstandard)") from None
        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True)
        while chunk := reader.read(64 << 10):
            yield chunk
        return

    def fresh():
        return bz2.BZ2Decompressor() if compression == "bzip2" else lzma.LZMADecompressor()

    d, started = fresh(), False
    while raw := fh.read(64 << 10):
        while raw:
            if not started:  # between streams: xz stream padding (zero bytes) may come first
                raw = raw.lstrip(b"\0")
                if not raw:
                    break
            started = True
            out = d.decompress(raw, 16 << 20)
            if out:
                yield out
            while not d.eof and not d.needs_input:  # output still pending for input already given
                out = d.decompress(b"", 16 << 20)
                if out:
                    yield out
            if d.eof:
                raw = d.unused_data  # another stream, or padding
                d, started = fresh(), False
            else:
                raw = b""
    if started:
        raise EOFError("compressed stream ended before its end marker")


def bounded_lines(fh, limit: int) -> Iterator[bytes | int]:
    """The lines of a binary stream, each with its line break; a line longer than `limit` bytes
    comes as its length instead, read through in chunks, so no line costs more memory than that."""
    readline = fh.readline
    while line := readline(limit + 1):
        if len(line) <= limit or (len(line) == limit + 1 and line.endswith(b"\n")):
            yield line
            continue
        n = len(line)
        while not line.endswith(b"\n") and (line := readline(_SPOOL_CHUNK)):
            n += len(line)
        yield n


class SkipLog:
    """Bad lines as (file, line, reason): the first `keep` in full, all of them counted."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.kept: list[tuple[str, int, str]] = []
        self.count = 0

    def add(self, file: str, line: int, reason: str) -> None:
        self.count += 1
        if len(self.kept) < self.keep:
            self.kept.append((file, line, reason))
