"""Alerts as RFC 5424 syslog messages, one per alert, to a local Unix socket (`/dev/log` style,
datagram or stream), UDP or TCP.

The message:

    <PRI>1 TIMESTAMP HOSTNAME trailhound PROCID alert [trailhound@32473 uuid=".." rule=".." ...] BOM reason

- PRI: the facility (default local0, not auth: a Trailhound reading auth.log must not read its own
  alerts back) * 8 + a severity from the alert's: critical → crit (2), high → err (3), medium →
  warning (4), low → notice (5).
- TIMESTAMP: the alert's creation time (`@timestamp`); HOSTNAME: this machine (the sender); the
  host the alert is about is the `host` SD-param.
- STRUCTURED-DATA: the alert's key fields as SD-params of one element, `trailhound@32473` (32473 is
  the enterprise number RFC 5612 reserves for examples: no number is registered for Trailhound):
  uuid, rule, rule_id, severity, risk_score, original_time, host, user, process, source_ip
  (those the alert has). Values are escaped as RFC 5424 says (`"`, `\\` and `]`).
- MSG: `kibana.alert.reason` in UTF-8 (with the BOM RFC 5424 asks for). It is cut, never the
  structured data, to keep a message within `max_size` bytes (default 2048 over UDP, RFC 5426's
  advice; 8192 otherwise, rsyslog's default limit).

Over TCP and Unix stream sockets each message is framed by octet counting (RFC 6587, 3.4.1: the
message length, a space, the message) or, with `framing=lf`, ended by a newline (line breaks in
MSG then become spaces). A datagram socket that refuses a message (no listener, a full queue) or
a stream that breaks is retried (re-connecting) with backoff; what cannot be sent is counted.
"""

from __future__ import annotations

import functools
import os
import select
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from .delivery import Delivery, Retry, transport_error

FACILITIES = {name: i for i, name in enumerate(
    ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
     "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
     "local7"))}
SEVERITIES = {"critical": 2, "high": 3, "medium": 4, "low": 5}
SD_ID = "trailhound@32473"
BOM = b"\xef\xbb\xbf"

# SD-param name → the alert field it carries (the first present of the alternatives)
SD_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("uuid", ("kibana.alert.uuid",)),
    ("rule", ("kibana.alert.rule.name",)),
    ("rule_id", ("kibana.alert.rule.rule_id",)),
    ("severity", ("kibana.alert.severity",)),
    ("risk_score", ("kibana.alert.risk_score",)),
    ("original_time", ("kibana.alert.original_time",)),
    ("host", ("host.name",)),
    ("user", ("user.name",)),
    ("process", ("process.executable", "process.name")),
    ("source_ip", ("source.ip",)),
)


def _lookup(doc: dict, key: str):
    """`key` in a document whose fields may be dotted (`host.name`), nested (`host: {name}`) or both."""
    if key in doc:
        return doc[key]
    dot = key.find(".")
    while dot != -1:
        inner = doc.get(key[:dot])
        if isinstance(inner, dict):
            found = _lookup(inner, key[dot + 1:])
            if found is not None:
                return found
        dot = key.find(".", dot + 1)
    return None


def _field(alert: dict, key: str):
    v = _lookup(alert, key)
    if isinstance(v, list):
        v = ",".join(str(x) for x in v) if v else None
    return v


def sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


@functools.lru_cache(maxsize=64)  # a run's alerts share their creation time
def _rfc3339(value: str) -> str | None:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    t = t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
    return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _timestamp(value) -> str:
    """RFC 5424 TIMESTAMP (RFC 3339, UTC, at most 6 fractional digits) from the alert's @timestamp;
    now when it has none that reads as a time."""
    stamp = _rfc3339(value) if isinstance(value, str) and value else None
    return stamp or datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _header_token(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most `limit` characters, or `-`."""
    token = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return token or "-"


def format_message(alert: dict, facility: int = FACILITIES["local0"], hostname: str | None = None,
                   procid: str | None = None, max_size: int = 8192) -> bytes:
    """One alert as an RFC 5424 message (without transport framing)."""
    severity = SEVERITIES.get(str(alert.get("kibana.alert.severity", "")).lower(), 5)
    params = []
    for name, keys in SD_FIELDS:
        for key in keys:
            v = _field(alert, key)
            if v is not None and v != "":
                params.append(f'{name}="{sd_escape(str(v))}"')
                break
    sd = f"[{SD_ID}{''.join(' ' + p for p in params)}]"
    header = (f"<{facility * 8 + severity}>1 {_timestamp(alert.get('@timestamp'))} "
              f"{_header_token(hostname or socket.gethostname(), 255)} trailhound "
              f"{_header_token(procid or str(os.getpid()), 128)} alert {sd} ").encode()
    reason = str(alert.get("kibana.alert.reason") or alert.get("kibana.alert.rule.name") or "")
    msg = reason.encode("utf-8")
    room = max_size - len(header) - len(BOM)
    if len(msg) > room:
        msg = msg[:max(room, 0)].decode("utf-8", "ignore").encode("utf-8")  # cut on a character boundary
    return header + BOM + msg


def _peer_closed(s: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([s], [], [], 0)
        return bool(readable) and s.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class SyslogSink:
    """`transport`: "unix" (address: a path; datagram, or stream when the socket is one), "udp" or
    "tcp" (address: (host, port))."""

    def __init__(self, transport: str, address, *, facility: str = "local0", framing: str = "octet",
                 max_size: int | None = None, retry: Retry | None = None, name: str | None = None,
                 hostname: str | None = None) -> None:
        if transport not in ("unix", "udp", "tcp"):
            raise ValueError(f"unknown syslog transport {transport!r}")
        if framing not in ("octet", "lf"):
            raise ValueError(f"unknown framing {framing!r}")
        self.transport = transport
        self.address = address
        self.facility = FACILITIES[facility]
        self.framing = framing
        self.max_size = max_size or (2048 if transport == "udp" else 8192)
        self.retry = retry or Retry(attempts=3, backoff=0.2, max_backoff=2.0, timeout=5.0)
        self.name = name or f"syslog:{transport}"
        self.hostname = hostname or socket.gethostname()
        self.delivery = Delivery()
        self._sock: socket.socket | None = None
        self._stream = transport == "tcp"
        self._down = False  # the last batch could not be sent: the next gets one attempt, not `attempts`

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        if self.transport == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                s.connect(self.address)
            except OSError as e:
                s.close()
                if e.errno != 91:  # EPROTOTYPE: the socket is a stream socket
                    raise
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.address)
                except OSError:
                    s.close()
                    raise
                self._stream = True
            else:
                self._stream = False
        elif self.transport == "udp":
            host, port = self.address
            family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][0]
            s = socket.socket(family, socket.SOCK_DGRAM)
            try:
                s.connect((host, port))
            except OSError:
                s.close()
                raise
        else:
            s = socket.create_connection(self.address, timeout=self.retry.timeout)
        s.settimeout(self.retry.timeout)
        self._sock = s
        return s

    def _frame(self, message: bytes) -> bytes:
        if not self._stream:
            return message
        if self.framing == "lf":
            return message.replace(b"\r\n", b" ").replace(b"\n", b" ") + b"\n"
        return str(len(message)).encode() + b" " + message

    def _send(self, message: bytes) -> None:
        s = self._connect()
        data = self._frame(message)
        if self._stream:
            s.sendall(data)
        else:
            s.send(data)

    def write(self, alerts: Iterable[dict]) -> None:
        messages = [format_message(a, self.facility, self.hostname, max_size=self.max_size) for a in alerts]
        if self._sock is not None and self._stream and _peer_closed(self._sock):
            self._close_socket()  # the receiver restarted since the last batch: sending on would lose it unseen
        attempts = 1 if self._down else self.retry.attempts  # a receiver that was down: one try per batch
        for i, message in enumerate(messages):
            for attempt in range(attempts):
                try:
                    self._send(message)
                    self.delivery.delivered += 1
                    self._down = False
                    break
                except OSError as e:
                    self._close_socket()
                    if attempt + 1 == attempts:
                        self.delivery.problem(f"cannot send to {self.name}: {transport_error(e)}")
                        self.delivery.failed += len(messages) - i
                        self._down = True
                        return  # the rest of this batch would fail alike; the next batch tries again
                    self.delivery.retries += 1
                    time.sleep(self.retry.wait(attempt))

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._close_socket()
