"""A disk cache of rule files and queries already parsed and compiled, so that running a large
rule set again (CI, a hunt after a hunt) skips the parsers: 355 Linux rules take about 2 s to
parse and compile, and well under 0.1 s to load from here.

Entries are keyed by the TOML text, or by the query text, its language and event-category
field, under a fingerprint of the code that produced them (the grammars, the parsers, the IR,
the compilers and the ECS types), so a change to any of them starts a fresh cache. The
directory is `$TRAILHOUND_CACHE_DIR`, else `$XDG_CACHE_HOME/trailhound`, else
`~/.cache/trailhound`; set `TRAILHOUND_CACHE_DIR=off` to disable it. A cache that cannot be
read or written is ignored.

The cache is not trusted (README, "Security model"): a shared or inherited cache directory
(`sudo -E`, a shared XDG_CACHE_HOME, a CI cache restored from elsewhere) may hold files that
someone else wrote. So:
* entries are JSON, decoded into plain values and the IR's own dataclasses only, never
  into arbitrary objects: a planted entry cannot run code;
* the directory must belong to the current user and be writable by no one else, and so must
  each entry; otherwise the cache is not used, with a warning;
* each entry carries an HMAC-SHA256 under a per-user key kept outside every cache directory
  (`$XDG_STATE_HOME/trailhound/cache-key`, mode 0600): an entry that someone else wrote or
  altered (to swap a rule's query for one that never matches), or a whole cache restored from
  elsewhere, fails the check and is rebuilt.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import logging
import math
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any

import orjson

_PACKAGE = Path(__file__).resolve().parents[1]
_SOURCES = ("lang", "compile")
_FORMAT = "trailhound-cache-1"
_log = logging.getLogger("trailhound.cache")


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    h = hashlib.sha256(_FORMAT.encode())
    files = [p for d in _SOURCES for p in sorted((_PACKAGE / d).iterdir()) if p.suffix in (".py", ".lark")]
    files += [_PACKAGE / "rules" / "check.py", _PACKAGE / "rules" / "ecs_types.json", Path(__file__)]
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def directory() -> Path | None:
    configured = os.environ.get("TRAILHOUND_CACHE_DIR")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trailhound"


# ---- values ↔ JSON ---------------------------------------------------------------------------

_SERIALIZABLE: dict[str, type] = {}


def serializable(cls: type) -> type:
    """Allow the dataclass `cls` in cache entries (the IR's dataclasses are allowed already)."""
    _SERIALIZABLE[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


@functools.lru_cache(maxsize=1)
def _allowed() -> dict[str, type]:
    from ..lang import ir

    allowed = {f"{c.__module__}.{c.__qualname__}": c for c in vars(ir).values()
               if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == ir.__name__}
    return {**allowed, **_SERIALIZABLE}


def _encode(v: Any) -> Any:
    """Plain JSON where it is plain; tagged one-key objects ({"$t": ...}) for the rest."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if -(2 ** 63) <= v < 2 ** 63 else {"$int": str(v)}
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$float": repr(v)}
    if isinstance(v, (list, tuple)):
        items = [_encode(x) for x in v]
        return items if isinstance(v, list) else {"$tuple": items}
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {"$dict": {k: _encode(x) for k, x in v.items()}}
        raise TypeError("a cached dict needs string keys")
    if isinstance(v, dt.datetime):
        return {"$datetime": v.isoformat()}
    if isinstance(v, dt.date):
        return {"$date": v.isoformat()}
    if isinstance(v, dt.time):
        return {"$time": v.isoformat()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        name = f"{type(v).__module__}.{type(v).__qualname__}"
        if name not in _allowed():
            raise TypeError(f"{name} is not allowed in the cache")
        return {"$dc": name, "f": {f.name: _encode(getattr(v, f.name)) for f in dataclasses.fields(v)}}
    raise TypeError(f"cannot cache a {type(v).__name__}")


def _decode(v: Any) -> Any:
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (tag, body), = v.items()
        if tag == "$dict":
            return {k: _decode(x) for k, x in body.items()}
        if tag == "$tuple":
            return tuple(_decode(x) for x in body)
        if tag == "$int":
            return int(body)
        if tag == "$float":
            return float(body)
        if tag == "$datetime":
            return dt.datetime.fromisoformat(body)
        if tag == "$date":
            return dt.date.fromisoformat(body)
        if tag == "$time":
            return dt.time.fromisoformat(body)
    if set(v) == {"$dc", "f"}:
        cls = _allowed().get(v["$dc"])
        if cls is None:
            raise ValueError(f"{v['$dc']!r} is not allowed in the cache")
        return cls(**{k: _decode(x) for k, x in v["f"].items()})
    raise ValueError("not a cache value")


def dumps(value: Any) -> bytes:
    return orjson.dumps(_encode(value))


def loads(data: bytes) -> Any:
    return _decode(orjson.loads(data))


# ---- the directory, its key, its entries -----------------------------------------------------

_warned: set[str] = set()


def _distrust(path: Path, why: str) -> None:
    if str(path) not in _warned:
        _warned.add(str(path))
        _log.warning("trailhound: not using the rule cache %s: %s (rules are parsed afresh)", path, why)


def _owned_and_private(st: os.stat_result) -> str | None:
    """Why this file or directory cannot be trusted, or None."""
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return f"it belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "others can write to it"
    return None


def key_file() -> Path:
    """Where the per-user HMAC key lives: outside every cache directory, so that a cache restored
    or copied from elsewhere (a CI cache, a shared XDG_CACHE_HOME) cannot bring its own key."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "trailhound" / "cache-key"


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted where a file should be must not block the open


def _private_dir(path: Path) -> bool:
    """Make `path` (0700) if missing; True when it is a directory of this user's that no one else can write."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        _distrust(path, "it is not a directory")
        return False
    if why := _owned_and_private(st):
        _distrust(path, why)
        return False
    return True


def _read_private(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file of this user's that no one else can write; None otherwise (missing,
    a link, a FIFO or device, someone else's, larger than `limit`)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or _owned_and_private(st) or st.st_size > limit:
            return None  # a directory, FIFO or device where a file should be; someone else's; too large
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=4)
def _key(path: Path) -> bytes | None:
    """The per-user HMAC key (made on first use), or None when it cannot be trusted."""
    if not _private_dir(path.parent):
        return None
    try:
        st = path.lstat()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        except OSError:
            return None
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(key))
        return key
    except OSError:
        return None
    if st.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        _distrust(path, "others can read the cache key")
        return None
    data = _read_private(path, 100)
    try:
        key = base64.b64decode(data or b"", validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        _distrust(path, "the cache key is not a file of this user's, or is damaged")
        return None
    return key


def _path(key: tuple) -> tuple[Path, bytes] | None:
    root = directory()
    if root is None or not _private_dir(root):
        return None
    secret = _key(key_file())
    if secret is None:
        return None
    digest = hashlib.sha256(repr(key).encode()).hexdigest()
    return root / fingerprint() / digest[:2] / digest, secret


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).hexdigest().encode()


def get(key: tuple) -> Any | None:
    """The value cached under `key`, or None (missing, unreadable, not ours, altered)."""
    found = _path(key)
    if found is None:
        return None
    path, secret = found
    data = _read_private(path, 64 << 20)
    if data is None:
        return None
    mac, _, body = data.partition(b"\n")
    if not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    try:
        stored_key, value = loads(body)
    except (ValueError, TypeError, RecursionError):
        return None
    return value if stored_key == key else None


def put(key: tuple, value: Any) -> None:
    found = _path(key)
    if found is None:
        return
    path, secret = found
    try:
        body = dumps([key, value])
    except (TypeError, ValueError, RecursionError):
        return  # not a value the cache can hold: it is simply not cached
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as fh:  # created 0600
            fh.write(_mac(secret, body) + b"\n" + body)
        os.replace(fh.name, path)  # atomic: a concurrent reader sees the old entry or the new one
    except OSError:
        pass
