"""What every network sink shares: delivery figures (what was delivered, held, lost, and why), the
retry policy (exponential backoff with jitter, Retry-After honoured) and a small HTTP client.

Sinks never raise on a failed delivery: a hunt or a watch must not stop because a collector is
down. They count what they could not deliver instead (`Delivery`), and the command reports those
figures and exits 2 when an alert was not delivered (cli/common.py's "the run cannot be trusted").
The HTTP client is the standard library's `http.client`: one keep-alive connection per sink,
re-opened after an error, so no third-party client is needed for a POST.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import SplitResult

if TYPE_CHECKING:  # http.client (with ssl, socket) is imported by the network sinks only: not by every hunt
    import http.client

_PROBLEMS_KEPT = 5  # distinct problems kept per sink: the first ones say why; the count says how often


@dataclass
class Delivery:
    """A sink's figures. `delivered`: alerts the destination accepted; `duplicates`: alerts it
    already held (Elasticsearch 409: a replay); `spooled`: alerts held on disk at close, to be sent
    by the next run; `failed`: alerts not delivered and not held (lost to this destination)."""

    delivered: int = 0
    duplicates: int = 0
    spooled: int = 0
    failed: int = 0
    retries: int = 0
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if text not in self.problems and len(self.problems) < _PROBLEMS_KEPT:
            self.problems.append(text)

    @property
    def complete(self) -> bool:
        """Every alert given reached the destination (or was already there)."""
        return not self.failed and not self.spooled

    def as_dict(self) -> dict:
        return {"delivered": self.delivered, "duplicates": self.duplicates, "spooled": self.spooled,
                "failed": self.failed, "retries": self.retries, "problems": list(self.problems),
                "problem_count": self.problem_count}


@dataclass
class Retry:
    """How often and how long to retry. `attempts` counts the first try. The n-th wait is drawn from
    [d/2, d] with d = min(max_backoff, backoff * 2**n) ("equal jitter": many senders restarting at
    once do not retry in step). A Retry-After from the server replaces the drawn wait, up to
    `max_retry_after`."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 10.0

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        d = min(self.max_backoff, self.backoff * (2 ** attempt))
        return d / 2 + random.uniform(0, d / 2)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retryable(status: int) -> bool:
    """Statuses worth retrying: the server is busy or broken now, not the request (408, 429, 5xx)."""
    return status in (408, 429) or 500 <= status <= 599


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def excerpt(self, limit: int = 200) -> str:
        text = self.body[:limit].decode("utf-8", "replace").replace("\n", " ").strip()
        return text + ("..." if len(self.body) > limit else "")


class HttpClient:
    """POSTs to one URL over one keep-alive connection, re-opened after any error."""

    def __init__(self, url: SplitResult, headers: dict[str, str], timeout: float, ca: str | None = None,
                 secret: bytes | None = None) -> None:
        self.url = url
        self.secret = secret  # signs each body: X-Trailhound-Signature: sha256=HMAC-SHA256(secret, body) in hex
        self.ca = ca  # a CA bundle to trust for https (Elasticsearch's own CA); default: the system's
        self.headers = headers
        self.timeout = timeout
        self.target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        import http.client

        if self._conn is None:
            host, port = self.url.hostname or "", self.url.port
            if self.url.scheme == "https":
                import ssl

                context = ssl.create_default_context(cafile=self.ca)
                self._conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
            else:
                self._conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return self._conn

    def post(self, body: bytes, content_type: str = "application/json") -> Response:
        """The server's answer; raises OSError or http.client.HTTPException when there is none
        (refused, reset, timed out), after closing the connection. A kept-alive connection the
        server closed while idle is re-opened at once (not a failure: it happens to every client
        that waits between requests longer than the server keeps connections)."""
        import http.client

        reused = self._conn is not None
        try:
            return self._post(body, content_type)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            return self._post(body, content_type)

    def _post(self, body: bytes, content_type: str) -> Response:
        import http.client

        conn = self._connection()
        headers = {**self.headers, "Content-Type": content_type, "Content-Length": str(len(body))}
        if self.secret is not None:
            import hashlib
            import hmac

            headers["X-Trailhound-Signature"] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        try:
            conn.request("POST", self.target, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        headers = {k.lower(): v for k, v in r.getheaders()}
        if r.will_close:
            self.close()
        return Response(r.status, headers, data)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def transport_error(e: BaseException) -> str:
    """A connection error in a few words (refused, timed out, reset...)."""
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return type(e).__name__ + (f": {e}" if str(e) else "")
