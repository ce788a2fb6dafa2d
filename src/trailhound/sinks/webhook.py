"""Alerts as JSON POSTs to an HTTP endpoint, with retries and an on-disk spool, so that an
endpoint that is down loses nothing.

- Body: a JSON array of alert documents (Kibana's schema), at most `batch` alerts per request
  (default 100), `Content-Type: application/json`. A rule's alerts may take several requests; a
  request never mixes two rules. Delivery is at least once: a request whose answer is lost is sent
  again, so a receiver deduplicates on `kibana.alert.uuid` (deterministic: a replay gives the same).
- A 2xx answer is delivered. Connection errors, time-outs, 408, 429 and 5xx are retried with
  exponential backoff and jitter (`delivery.Retry`; a Retry-After header sets the wait). Any other
  answer (400, 401, 404, 413, a redirect...) is a refusal: sending the same body again would get
  the same answer, so those alerts are counted as failed and the answer is reported.
- Authentication: `token_env=VAR` sends `Authorization: Bearer $VAR`; `secret_env=VAR` signs each
  body, `X-Trailhound-Signature: sha256=<hex HMAC-SHA256 of the body with $VAR as key>`, so a
  receiver can check that the alerts come from this Trailhound, unaltered.
- When the retries run out the request goes to the spool, a directory of request bodies (one file
  each, written atomically: temporary file, fsync, rename), and the endpoint counts as down for
  `max_backoff` seconds: batches in that time go straight to the spool. Every later attempt sends
  the spool first, oldest first, so the endpoint sees alerts in the order they were raised, and
  `close` tries once more. What is still spooled at close stays for the next run with the same
  spool (the default spool is per URL, under $XDG_STATE_HOME/trailhound/spool), and is counted
  and reported as not delivered yet.
- The spool is bounded (`spool_max`, default 64 MiB). When a request does not fit, its alerts are
  counted as failed and the report says the spool is full and which alerts it dropped: nothing is
  dropped silently. One process at a time holds a spool (a lock file).
"""

from __future__ import annotations

import fcntl
import http.client
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from .delivery import Delivery, HttpClient, Retry, retry_after, retryable, transport_error
from .ndjson import SinkError

_ENTRY = re.compile(r"^(\d{16})-(\d+)\.json$")


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "trailhound"


class Spool:
    """Request bodies waiting for their endpoint: files `<sequence>-<alerts>.json` in `directory`,
    at most `max_bytes` in all, taken oldest first."""

    def __init__(self, directory: str | os.PathLike, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise SinkError(f"cannot use the spool {self.dir}: {e.strerror or e}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock)
            raise SinkError(f"the spool {self.dir} is in use by another Trailhound process; "
                            "give this one its own (spool=DIR)") from None
        for leftover in self.dir.glob(".tmp-*"):  # a write cut short by a crash: never renamed, never counted
            leftover.unlink(missing_ok=True)
        entries = self.entries()
        self._size = sum(p.stat().st_size for p in entries)  # kept up to date by put and remove: no scan per put
        last = _ENTRY.match(entries[-1].name) if entries else None
        self._seq = int(last.group(1)) if last else 0

    def entries(self) -> list[Path]:
        return sorted(p for p in self.dir.iterdir() if _ENTRY.match(p.name))

    @staticmethod
    def count(entry: Path) -> int:
        m = _ENTRY.match(entry.name)
        return int(m.group(2)) if m else 0

    def size(self) -> int:
        return self._size

    def alerts(self) -> int:
        return sum(self.count(p) for p in self.entries())

    def put(self, body: bytes, count: int) -> bool:
        """Keep `body` (holding `count` alerts); False when it does not fit. Raises OSError."""
        if self._size + len(body) > self.max_bytes:
            return False
        seq = self._seq + 1
        tmp = self.dir / f".tmp-{seq:016d}"
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / f"{seq:016d}-{count}.json")
        self._seq, self._size = seq, self._size + len(body)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def remove(self, entry: Path) -> None:
        try:
            size = entry.stat().st_size
            entry.unlink()
        except FileNotFoundError:
            return
        self._size = max(0, self._size - size)

    def close(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)  # releases the lock
            self._lock = -1


def default_spool(url: str) -> Path:
    import hashlib

    return state_dir() / "spool" / f"webhook-{hashlib.sha256(url.encode()).hexdigest()[:16]}"


class WebhookSink:
    def __init__(self, url: str, *, spool: str | os.PathLike | None = None, spool_max: int = 64 << 20,
                 batch: int = 100, retry: Retry | None = None, headers: dict[str, str] | None = None,
                 ca: str | None = None, secret: bytes | None = None, name: str | None = None) -> None:
        self.url = url
        self.name = name or f"webhook:{url}"
        self.batch = max(1, batch)
        self.retry = retry or Retry()
        self.delivery = Delivery()
        self.client = HttpClient(urlsplit(url), {"User-Agent": "trailhound", **(headers or {})}, self.retry.timeout,
                                 ca, secret)
        self.spool = Spool(spool, spool_max) if spool is not None else None
        self._next_try = 0.0  # time.monotonic(): before it the endpoint counts as down

    def write(self, alerts: Iterable[dict]) -> None:
        docs = list(alerts)
        bodies = [(orjson.dumps(docs[i:i + self.batch], default=str), len(docs[i:i + self.batch]))
                  for i in range(0, len(docs), self.batch)]
        if time.monotonic() >= self._next_try and self._drain():
            while bodies and self._deliver(*bodies[0]) != "down":
                bodies.pop(0)
        for body, n in bodies:
            self._hold(body, n)

    def retry_spool(self) -> bool:
        """Send the spool now if the endpoint is due another try (a long-running `watch` calls this when
        idle, so the spool does not wait for the next alert); True when the spool is empty."""
        if self.spool is None or not self.spool.entries():
            return True
        return time.monotonic() >= self._next_try and self._drain()

    def _deliver(self, body: bytes, n: int) -> str:
        """Send one request: "ok", "refused" (counted as failed) or "down" (retries exhausted)."""
        why = ""
        for attempt in range(self.retry.attempts):
            try:
                r = self.client.post(body)
            except (OSError, http.client.HTTPException) as e:  # refused, reset, TLS, timed out: retried
                why, wait = transport_error(e), self.retry.wait(attempt)
            else:
                if 200 <= r.status < 300:
                    self.delivery.delivered += n
                    return "ok"
                if not retryable(r.status):
                    self.delivery.failed += n
                    self.delivery.problem(f"{self.name} refused {n} alerts: HTTP {r.status} {r.excerpt()}".rstrip())
                    return "refused"
                why = f"HTTP {r.status}"
                wait = self.retry.wait(attempt, retry_after(r.headers.get("retry-after")))
            if attempt + 1 < self.retry.attempts:
                self.delivery.retries += 1
                time.sleep(wait)
        self.delivery.problem(f"{self.name} unreachable after {self.retry.attempts} attempts: {why}")
        self._next_try = time.monotonic() + self.retry.max_backoff
        return "down"

    def _drain(self) -> bool:
        """Send the spool, oldest first; True when it is empty (or there is none)."""
        if self.spool is None:
            return True
        for entry in self.spool.entries():
            try:
                body = entry.read_bytes()
            except OSError as e:
                self.delivery.problem(f"cannot read the spool entry {entry}: {e.strerror or e}")
                return False
            if self._deliver(body, Spool.count(entry)) == "down":
                return False
            self.spool.remove(entry)  # delivered or refused (counted): either way it leaves the spool
        return True

    def _hold(self, body: bytes, n: int) -> None:
        if self.spool is None:
            self.delivery.failed += n
            return
        try:
            kept = self.spool.put(body, n)
        except OSError as e:
            self.delivery.failed += n
            self.delivery.problem(f"cannot write the spool {self.spool.dir}: {e.strerror or e}; {n} alerts lost")
            return
        if not kept:
            self.delivery.failed += n
            self.delivery.problem(f"the spool {self.spool.dir} is full ({self.spool.max_bytes} bytes, spool_max): "
                                  f"alerts dropped")

    def close(self) -> None:
        if self.spool is not None:
            if self.spool.entries():
                self._drain()
            self.delivery.spooled = self.spool.alerts()
            if self.delivery.spooled:
                self.delivery.problem(f"{self.delivery.spooled} alerts wait in the spool {self.spool.dir}; "
                                      "the next run with this spool sends them first")
            self.spool.close()
        self.client.close()
