"""`lab run --watch`: a real `trailhound watch` process follows the lab's logs while the scenarios run, and the
delay from each command to its alert is measured.

`LiveWatch` starts `python -m trailhound watch AUDIT_LOG AUTH_LOG --out ALERTS --state DIR` (as a user runs it:
from the end of the files, its own process, its default batch, idle and reorder settings) once the lab's auditd
and sshd are up, waits until it has found both files (its first checkpoint), and reads the alerts file as it
grows, noting when each alert line became readable. `delays` then attributes each alert to the scenario whose
window holds its source event (as `matrix.run_matrix` does: a sequence by its last event) and measures:

* command → alert: the moment the alert was readable in the file less the time of the event it fired on (the
  kernel's time of the execve or syscall, or the moment the lab's syslog received sshd's line): the delay a
  responder sees from the command to the alert;
* scenario start → alert: from the launch of the scenario's shell, which adds the command's own run time (an ssh
  login's handshake) to the above.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .matrix import alert_time, group_times

READY_SECONDS = 120.0  # loading the rules on a busy machine
POLL_SECONDS = 0.02  # how often the alerts file is read: the measured delays are late by at most this


@dataclass
class SeenAlert:
    doc: dict
    seen: float  # when its line was readable in the alerts file (epoch seconds)


@dataclass
class ScenarioDelay:
    """What `watch` raised for one scenario, and how fast."""

    scenario: str
    benign: bool
    alerts: int = 0
    rules: list[str] = field(default_factory=list)  # in the order their first alert came
    severities: dict[str, str] = field(default_factory=dict)  # rule → its alerts' severity
    first_rule: str | None = None
    severity: str | None = None  # of the first alert
    command_to_alert: float | None = None  # seconds, for the first alert
    start_to_alert: float | None = None
    worst_command_to_alert: float | None = None  # the slowest of the scenario's alerts
    delays: list[tuple[str, float]] = field(default_factory=list)  # (rule, command → alert) per alert

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


class WatchError(RuntimeError):
    """The watch process could not be started or died; the message has its last log lines."""


class LiveWatch:
    """A `trailhound watch` process over the lab's logs (see the module doc)."""

    def __init__(self, workdir: Path, inputs: Sequence[Path], rules: Sequence[str | os.PathLike],
                 log=print) -> None:
        self.dir = workdir / "watch"
        self.inputs = [Path(p) for p in inputs]
        self.rules = [str(r) for r in rules]
        self.log = log
        self.alerts_path = self.dir / "alerts.ndjson"
        self.log_path = self.dir / "watch.log"
        self.proc: subprocess.Popen | None = None
        self.seen: list[SeenAlert] = []
        self.exit_code: int | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._partial = b""
        self._offset = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        """Start watch and return once it follows every input (raises WatchError when it cannot)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.alerts_path.touch()
        cmd = [sys.executable, "-m", "trailhound", "watch", *map(str, self.inputs), "--out", str(self.alerts_path),
               "--state", str(self.dir / "state")]
        for r in self.rules:
            cmd += ["--rules", r]
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        checkpoint = self.dir / "state" / "checkpoint.json"
        deadline = time.monotonic() + READY_SECONDS
        while not checkpoint.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise WatchError(f"trailhound watch did not start: {self.tail_log()}")
            time.sleep(0.05)
        self._reader = threading.Thread(target=self._read_loop, name="lab-watch-alerts", daemon=True)
        self._reader.start()
        self.log(f"watch (pid {self.proc.pid}) follows {', '.join(p.name for p in self.inputs)}")

    def tail_log(self, n: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-n:])
        except OSError:
            return "(no log)"

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            self._read()
            self._stop.wait(POLL_SECONDS)

    def _read(self) -> None:
        try:
            with open(self.alerts_path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return
        if not data:
            return
        now = time.time()
        self._offset += len(data)
        buf = self._partial + data
        *lines, self._partial = buf.split(b"\n")
        for line in lines:
            if line.strip():
                try:
                    self.seen.append(SeenAlert(orjson.loads(line), now))
                except orjson.JSONDecodeError:
                    self.log(f"watch wrote a line that is not JSON: {line[:80]!r}")

    def stop(self, settle: float = 0.0) -> None:
        """Give watch `settle` seconds to read the last lines, then SIGTERM (it evaluates what it holds, writes
        a checkpoint and exits 0); SIGKILL when it does not end."""
        if self.proc is None:
            return
        if settle and self.proc.poll() is None:
            time.sleep(settle)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.log(f"watch (pid {self.proc.pid}) did not stop on SIGTERM; killing it")
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.exit_code = self.proc.wait()
        self.proc = None
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None
        self._read()  # what the last evaluation wrote

    def delays(self, windows) -> list[ScenarioDelay]:
        """Per scenario that ran (`windows`: name, start, end, benign, skipped), its alerts and their delays."""
        return scenario_delays(self.seen, windows)


def scenario_delays(seen: Sequence[SeenAlert], windows) -> list[ScenarioDelay]:
    """Attribute each alert to the window holding its (last) source event, and measure its delays."""
    ran = [w for w in windows if not w.skipped]
    group_time = group_times(s.doc for s in seen)  # a sequence's alert takes its last building block's time
    out = {w.name: ScenarioDelay(w.name, bool(w.benign)) for w in ran}
    written: set[str] = set()
    for s in sorted(seen, key=lambda s: s.seen):
        a = s.doc
        if a.get("kibana.alert.building_block_type"):
            continue
        uid = str(a.get("kibana.alert.uuid"))
        if uid in written:
            continue  # a suppression update of an alert already written
        written.add(uid)
        t = alert_time(a, group_time)
        w = next((w for w in ran if t is not None and w.start - 0.001 <= t <= w.end), None)
        if w is None or t is None:
            continue
        d = out[w.name]
        rule = str(a.get("kibana.alert.rule.name"))
        delay = round(s.seen - t, 3)
        d.alerts += 1
        d.delays.append((rule, delay))
        if rule not in d.rules:
            d.rules.append(rule)
            d.severities[rule] = str(a.get("kibana.alert.severity"))
        if d.first_rule is None:
            d.first_rule, d.severity = rule, a.get("kibana.alert.severity")
            d.command_to_alert, d.start_to_alert = delay, round(s.seen - w.start, 3)
        d.worst_command_to_alert = max(d.worst_command_to_alert or delay, delay)
    return list(out.values())
