"""The state directory of `trailhound watch`: one checkpoint file, replaced atomically, and a lock.

A checkpoint is written to a temporary file in the directory, flushed to disk (fsync), renamed over the previous
one and the directory synced: after a crash (kill -9, a power cut) the directory holds either the old checkpoint
or the new one, never a mix. A lock file (flock) keeps a second `watch` off the same directory.

A checkpoint that cannot be read (not JSON, cut short, of another version) or that belongs to another rule set is
refused with the reason; `reset` removes it when the user asks to start over (`--reset-state`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import orjson

VERSION = 1
CHECKPOINT = "checkpoint.json"
LOCK = "lock"


class CheckpointError(Exception):
    """A state directory that cannot be used; the message says why and what to do."""


def open_state(directory: str | os.PathLike) -> IO[bytes]:
    """Create the directory (owner only) if needed and take its lock; the lock's file, to keep open while watching."""
    import fcntl

    d = Path(directory)
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"state directory {d}: cannot be created: {e.strerror}") from None
    if not d.is_dir():
        raise CheckpointError(f"state directory {d}: not a directory")
    try:
        lock = open(d / LOCK, "ab")  # noqa: SIM115 - held for the whole watch
    except OSError as e:
        raise CheckpointError(f"state directory {d}: not writable: {e.strerror}") from None
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise CheckpointError(f"state directory {d}: another trailhound watch is using it") from None
    return lock


def save(directory: str | os.PathLike, data: dict[str, Any]) -> int:
    """Write the checkpoint atomically (write, fsync, rename, fsync the directory); its size in bytes."""
    d = Path(directory)
    tmp = d / f".{CHECKPOINT}.{os.getpid()}.tmp"
    blob = orjson.dumps({"version": VERSION, **data})
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, d / CHECKPOINT)
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return len(blob)


def load(directory: str | os.PathLike, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint of `directory` (None when there is none yet). CheckpointError when it is damaged, of another
    version, or of a rule set other than the one whose fingerprint is given."""
    path = Path(directory) / CHECKPOINT
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read: {e.strerror}") from None
    hint = "; start over with --reset-state (alerts already written stay, the inputs are read from where --from-start says)"
    try:
        data = orjson.loads(blob)
    except orjson.JSONDecodeError as e:
        raise CheckpointError(f"{path}: damaged checkpoint (not JSON: {e.msg} at byte {e.pos}){hint}") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        raise CheckpointError(f"{path}: not a Trailhound checkpoint{hint}")
    if data["version"] != VERSION:
        raise CheckpointError(f"{path}: a checkpoint of version {data['version']} (this Trailhound writes "
                              f"{VERSION}){hint}")
    if data.get("fingerprint") != fingerprint:
        raise CheckpointError(f"{path}: the state of another rule set (the rules, their exceptions or "
                              f"parameters changed since it was written){hint}")
    for key in ("pipeline", "follower", "out"):
        if key not in data:
            raise CheckpointError(f"{path}: damaged checkpoint (no {key!r}){hint}")
    return data


def reset(directory: str | os.PathLike) -> bool:
    """Remove the checkpoint (the lock stays); whether there was one."""
    try:
        (Path(directory) / CHECKPOINT).unlink()
    except FileNotFoundError:
        return False
    return True
