"""Cut the lab's own events out of the audit log and the sshd log, and split them by scenario.

The audit rules are host-wide, so the raw log also holds whatever else the machine ran meanwhile.
An audit event is the lab's when
* its session id (`ses=`) is one the lab opened: every scenario sets its login uid, which gives it a
  fresh session, and so does every sshd login (pam_loginuid); session ids only grow, so
  `ses >= floor` (the first id the lab saw) is the lab's; or
* it comes from the lab's sshd or a descendant (pre-auth sshd has the caller's session), traced
  through pid/ppid of the events in serial order.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

_HEADER = re.compile(r"^(?:node=\S+ )?type=(\S+) msg=audit\((\d+)\.(\d+):(\d+)\)")
_PID = re.compile(r"(?<![\w-])pid=(\d+)")
_PPID = re.compile(r"(?<![\w-])ppid=(\d+)")
_SES = re.compile(r"(?<![\w-])ses=(\d+)")
UNSET = 4294967295


@dataclass
class AuditEvent:
    serial: int
    time: float
    lines: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)

    def _field(self, rx: re.Pattern) -> int | None:
        for line in self.lines:
            m = rx.search(line.split("\x1d", 1)[0])
            if m:
                return int(m.group(1))
        return None

    @property
    def pid(self) -> int | None:
        return self._field(_PID)

    @property
    def ppid(self) -> int | None:
        return self._field(_PPID)

    @property
    def ses(self) -> int | None:
        return self._field(_SES)


def read_lines(path) -> list[str]:
    """Lines split on newlines only: ENRICHED audit records hold \x1d, which str.splitlines splits on."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        return [ln for ln in f.read().split("\n") if ln]


def audit_events(lines: list[str]) -> list[AuditEvent]:
    """Group raw audit.log lines into events by serial, in first-seen order."""
    events: dict[int, AuditEvent] = {}
    for line in lines:
        m = _HEADER.match(line)
        if not m:
            continue
        rtype, sec, msec, serial = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        ev = events.get(serial)
        if ev is None:
            ev = events[serial] = AuditEvent(serial, sec + msec / 1000)
        ev.lines.append(line)
        ev.types.append(rtype)
    return list(events.values())


def lab_events(events: list[AuditEvent], ses_floor: int, sshd_pids: set[int],
               exclude: AbstractSet[int] = frozenset()) -> list[AuditEvent]:
    """The lab's events; `exclude`: pids of the lab's own launchers (plumbing, not scenario)."""
    tracked = set(sshd_pids)
    kept = []
    for ev in sorted(events, key=lambda e: e.serial):
        if ev.types and all(t in ("DAEMON_START", "DAEMON_END", "CONFIG_CHANGE") for t in ev.types):
            continue  # the lab's auditd and auditctl, not the scenarios
        pid, ppid, ses = ev.pid, ev.ppid, ev.ses
        if pid in exclude:
            continue
        ours = (ses is not None and ses != UNSET and ses >= ses_floor) or pid in tracked or ppid in tracked
        if ours:
            if pid is not None and (pid in tracked or ppid in tracked):
                tracked.add(pid)
            kept.append(ev)
    return kept


def syslog_time(line: str) -> float | None:
    try:
        return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
    except ValueError:
        return None


def in_window(t: float | None, start: float, end: float) -> bool:
    # audit stamps are in milliseconds: widen by one so a window's first event is not lost
    return t is not None and start - 0.001 <= t <= end


def audit_lines_between(events: list[AuditEvent], start: float, end: float) -> list[str]:
    return [line for ev in events if in_window(ev.time, start, end) for line in ev.lines]


def syslog_lines_between(lines: list[str], start: float, end: float) -> list[str]:
    return [ln for ln in lines if in_window(syslog_time(ln), start, end)]
