"""Alerts as NDJSON to a file that rotates by size, as a service's log does: `alerts.ndjson` is
the file being written, `alerts.ndjson.1` the previous one, up to `alerts.ndjson.<keep>`; older
ones are deleted.

A document is never split: the file rotates before a line that would take it past `max_bytes`,
so a reader sees whole lines in every file (a single document larger than `max_bytes` gets a file
of its own). The file is appended to, not rewritten, so a restarted service keeps what it wrote;
a last line left without its newline by a crash gets one before the first new document, so the
new documents stay whole. Each batch is flushed to the operating system when written.

A restart does not write an alert twice: at open the sink reads the `kibana.alert.uuid`s of the
last `RECENT_BYTES` of the file (and of the previous one, in case it rotated just before), and
drops an alert it finds there (counted as a duplicate). Alert ids are deterministic, so a `watch`
resuming from its checkpoint, or a hunt run again over the same files, appends only what is new.
With `max_bytes=None` the file is only appended to, never rotated.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import orjson

from .delivery import Delivery


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


RECENT_BYTES = 16 << 20


def recent_ids(path: Path, limit: int = RECENT_BYTES) -> set[str]:
    """The alert ids in the last `limit` bytes of `path` (whole lines only; none when it is absent)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            data = f.read(limit)
    except OSError:
        return set()
    lines = data.split(b"\n")
    if size > limit:
        lines = lines[1:]  # the first is a part of a line
    ids = set()
    for line in lines:
        if b"kibana.alert.uuid" not in line:
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn line: nothing of it was delivered
        uid = doc.get("kibana.alert.uuid") if isinstance(doc, dict) else None
        if isinstance(uid, str):
            ids.add(uid)
    return ids


class RotatingNdjsonSink:
    def __init__(self, path: str | os.PathLike, max_bytes: int | None, keep: int, name: str | None = None) -> None:
        if (max_bytes is not None and max_bytes <= 0) or keep < 0:
            raise ValueError("max_bytes must be > 0 and keep >= 0")
        self.path = Path(path)
        self.max_bytes = max_bytes if max_bytes is not None else 1 << 62
        self.keep = keep
        self.name = name or f"file:{self.path}"
        self.delivery = Delivery()
        self.rotations = 0
        self._held = recent_ids(self.path) | (recent_ids(rotated(self.path, 1)) if max_bytes is not None else set())
        self._out: BinaryIO | None = self._open()

    def _open(self) -> BinaryIO:
        out = self.path.open("ab")
        size = out.tell()
        if size:
            with self.path.open("rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    out.write(b"\n")
                    size += 1
        self._size = size
        return out

    def _rotate(self) -> None:
        if self._out is not None:
            self._out.close()
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            rotated(self.path, self.keep).unlink(missing_ok=True)
            for n in range(self.keep - 1, 0, -1):
                if rotated(self.path, n).exists():
                    os.replace(rotated(self.path, n), rotated(self.path, n + 1))
            os.replace(self.path, rotated(self.path, 1))
        self.rotations += 1
        self._out = self._open()

    def write(self, alerts: Iterable[dict]) -> None:
        if self._held:
            batch = list(alerts)
            alerts = [a for a in batch if a.get("kibana.alert.uuid") not in self._held]
            self.delivery.duplicates += len(batch) - len(alerts)
        lines = [orjson.dumps(a, default=str) + b"\n" for a in alerts]
        i = 0
        try:
            if self._out is None:
                self._out = self._open()
            while i < len(lines):
                if self._size and self._size + len(lines[i]) > self.max_bytes:
                    self._rotate()
                j, size = i, self._size
                while j < len(lines) and (size == 0 or size + len(lines[j]) <= self.max_bytes):
                    size += len(lines[j])
                    j += 1
                self._out.write(b"".join(lines[i:j]))
                self._out.flush()  # counted as delivered once the OS has it
                self._size = size
                self.delivery.delivered += j - i
                i = j
        except OSError as e:
            self.delivery.failed += len(lines) - i
            self.delivery.problem(f"cannot write {self.path}: {e.strerror or e}")
            self._drop()

    def _drop(self) -> None:
        """Forget the stream after an error; the next batch re-opens the file (ending a torn line first)."""
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._out is not None:
            try:
                self._out.close()
            except OSError as e:
                self.delivery.problem(f"cannot write {self.path}: {e.strerror or e}")
            self._out = None
