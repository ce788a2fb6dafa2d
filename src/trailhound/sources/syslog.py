"""Syslog files (RFC 3164, RFC 3339 "high precision", RFC 5424), journald's JSON export and
Azure Monitor's Syslog records (JSON lines with `SyslogMessage`), framed into ECS events; the
message itself is interpreted by `sysmon` (Sysmon for Linux XML) or `auth` (sshd, sudo, PAM...).

* RFC 3164 timestamps carry no year: it comes from `ReadOptions.year`, else from the file's
  modification time (a date after it belongs to the year before: logs do not come from the
  future), else the current year. Zone-less times are in `ReadOptions.timezone` (default UTC).
* `host.hostname` and `host.name` are the syslog host. Rules group by `host.id`, which Elastic
  Agent fills with the shipping machine's id; here it is the syslog host too, so each host
  keeps its own id. `host.os.type` is "linux": these readers are for Linux hosts' logs.
* Every framed line gives an event, as Filebeat's system/auth does, with `message` kept;
  lines that are not syslog at all are reported, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from . import auth, sysmon
from .formats import Format, Lines, ReadOptions, Skip, ascii_int

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}
_PRI = r"(?:<(?P<pri>\d{1,3})>)?"
_RFC3164 = re.compile(_PRI + r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?"
                      r"(?: (?P<host>\S+)| ) (?P<rest>.*)$", re.S)  # an empty host leaves two spaces
_RFC3339 = re.compile(_PRI + r"(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
                      r"(?P<host>\S+) (?P<rest>.*)$", re.S)
_RFC5424 = re.compile(r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
                      r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?$", re.S)
_TAG = re.compile(r"(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$", re.S)


def sniff(head: list[str]) -> bool:
    if head and head[0].lstrip().startswith("{"):
        try:
            first = orjson.loads(head[0])
        except orjson.JSONDecodeError:
            return False
        return isinstance(first, dict) and (("MESSAGE" in first and "__REALTIME_TIMESTAMP" in first)
                                            or "SyslogMessage" in first)
    framed = sum(bool(_RFC5424.match(x) or _RFC3339.match(x) or _RFC3164.match(x)) for x in head)
    return framed > 0 and framed >= len(head) / 2


def read(lines: Lines, skip: Skip, options: ReadOptions) -> Iterator[tuple[dict, int]]:
    clock = _Clock(options)
    for n, line in lines:
        if not line.strip():
            continue
        doc: dict | str | None
        try:
            if line.lstrip().startswith("{"):
                doc = _journal(line, n, skip)
            else:
                doc = _framed(line, clock)
                if isinstance(doc, str):
                    skip(n, doc)
                    continue
        except Exception as e:  # noqa: BLE001 - a hostile line is reported, the file goes on
            skip(n, f"cannot read this line ({type(e).__name__}: {e})")
            continue
        if doc is not None:
            yield doc, n


def _framed(line: str, clock: _Clock) -> dict | str:
    """The event of a framed line, or why there is none."""
    if m := _RFC5424.match(line):
        prog = None if m["app"] == "-" else m["app"]
        if (when := clock.iso(m["ts"])) is None:
            return f"bad RFC 5424 timestamp {m['ts']!r}"
        return _event(when, m["host"], prog, ascii_int(m["procid"]), m["msg"] or "", clock.offset, m["pri"])
    m = _RFC3339.match(line)
    when = None
    if m:
        if (when := clock.iso(m["ts"])) is None:
            return f"bad RFC 3339 timestamp {m['ts']!r}"
    else:
        m = _RFC3164.match(line)
        if m is None or m["mon"] not in _MONTHS:
            return "not a syslog line (RFC 3164, RFC 3339 or RFC 5424)"
        when = clock.legacy(_MONTHS[m["mon"]], int(m["day"]), m["time"], m["frac"])
        if when is None:
            return f"bad timestamp {m['mon']} {m['day']} {m['time']}"
    tag = _TAG.match(m["rest"])
    if tag is None:
        return _event(when, m["host"], None, None, m["rest"], clock.offset, m["pri"])
    return _event(when, m["host"], tag["prog"], ascii_int(tag["pid"]), tag["msg"], clock.offset, m["pri"])


def _text(value) -> str | None:
    """A JSON value as text: journald and Azure fields are strings, unless someone forged them."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _journal(line: str, n: int, skip: Skip) -> dict | None:
    """One entry of `journalctl -o json`."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        skip(n, f"invalid JSON: {e}")
        return None
    if isinstance(entry, dict) and "SyslogMessage" in entry:
        return _azure(entry, n, skip)
    if not isinstance(entry, dict) or "__REALTIME_TIMESTAMP" not in entry:
        skip(n, "not a journald entry (no __REALTIME_TIMESTAMP)")
        return None
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journald exports non-UTF-8 messages as byte arrays
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    stamp = entry["__REALTIME_TIMESTAMP"]
    micros = ascii_int(stamp if isinstance(stamp, str) else str(stamp) if type(stamp) is int else None)
    try:
        if micros is None:
            raise ValueError("not a number")
        when = _iso(datetime.fromtimestamp(micros / 1_000_000, UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        skip(n, f"bad __REALTIME_TIMESTAMP {str(_text(stamp))[:40]!r} (microseconds since 1970 expected)")
        return None
    prog = _text(entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM"))
    pid = entry.get("SYSLOG_PID") or entry.get("_PID")
    doc = _event(when, _text(entry.get("_HOSTNAME")) or "", prog, ascii_int(_text(pid)), _text(message) or "",
                 "+0000", None)
    if entry.get("_SYSTEMD_UNIT"):
        doc.setdefault("systemd", {})["unit"] = _text(entry["_SYSTEMD_UNIT"])
    return doc


def _azure(record: dict, n: int, skip: Skip) -> dict | None:
    """One row of Azure Monitor's Syslog table (as exported to JSON)."""
    when = record.get("EventTime") or record.get("TimeGenerated")
    try:
        iso = _iso(datetime.fromisoformat(str(when).replace("Z", "+00:00")))
    except (ValueError, OverflowError, OSError):
        skip(n, f"bad EventTime {str(_text(when))[:40]!r}")
        return None
    pid = record.get("ProcessID")
    return _event(iso, _text(record.get("HostName") or record.get("Computer")) or "", _text(record.get("ProcessName")),
                  ascii_int(_text(pid)), _text(record.get("SyslogMessage", "")) or "", "+0000", None)


def _event(when: str, host: str, prog: str | None, pid: int | None, message: str, offset: str,
           pri: str | None) -> dict:
    doc: dict = {"@timestamp": when, "event": {"kind": "event", "timezone": offset}, "message": message}
    if host:
        doc["host"] = {"hostname": host, "name": host, "id": host, "os": {"type": "linux"}}
        doc["related"] = {"hosts": [host]}
    if prog:
        doc["process"] = {"name": prog, **({"pid": pid} if pid is not None else {})}
    if pri is not None and int(pri) < 192:
        doc["log"] = {"syslog": {"priority": int(pri), "facility": {"code": int(pri) // 8},
                                 "severity": {"code": int(pri) % 8}}}
    if prog != "sysmon" or not sysmon.interpret(doc, message):
        auth.interpret(doc, prog or "", message)
    return doc


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Clock:
    """Turns syslog timestamps into UTC ISO text, with the year rule for RFC 3164."""

    def __init__(self, options: ReadOptions) -> None:
        self.zone = ZoneInfo(options.timezone) if options.timezone else UTC
        self.year = options.year
        self.ref = options.file_time
        self.offset = "+0000"  # event.timezone of the last time read (`iso`, `legacy`)

    def iso(self, text: str) -> str | None:
        """UTC ISO text of an RFC 3339 timestamp; None when it is no valid time."""
        try:
            dt = datetime.fromisoformat(text.replace(" ", "T", 1).replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=self.zone)
            when = _iso(dt)
            self.offset = dt.strftime("%z") or "+0000"  # the line's own offset, else the zone's on that date
            return when
        except (ValueError, OverflowError, OSError):
            return None

    def legacy(self, month: int, day: int, clock: str, frac: str | None) -> str | None:
        h, m, s = map(int, clock.split(":"))
        micro = int((frac or "0")[:6].ljust(6, "0"))
        year = self.year
        if year is None:
            ref = self.ref.astimezone(self.zone) if self.ref else datetime.now(self.zone)
            year = ref.year
            try:
                if datetime(year, month, day, tzinfo=self.zone) > ref + timedelta(days=1):
                    year -= 1
            except ValueError:
                pass
        try:
            dt = datetime(year, month, day, h, m, s, micro, tzinfo=self.zone)
            when = _iso(dt)
        except (ValueError, OverflowError, OSError):
            return None
        self.offset = dt.strftime("%z") or "+0000"  # the zone's offset on that date (DST)
        return when


FORMAT = Format("syslog", "syslog files (RFC 3164/3339/5424: auth.log, secure, Sysmon for Linux), journalctl -o json",
                sniff, read, undated=lambda head: any(_RFC3164.match(x) and not _RFC3339.match(x) for x in head))
