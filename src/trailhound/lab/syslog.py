"""A minimal syslog writer for the lab's sshd.

sshd logs with syslog(3) to /dev/log. In the target namespace's private mount namespace /dev/log is
our datagram socket (the host's /dev and any host syslog daemon are untouched). Each message
`<PRI>Mmm dd hh:mm:ss ident[pid]: text` is written as an RFC 3339 line
`2026-01-02T03:04:05.123456+00:00 HOST ident[pid]: text`, stamped on receipt: glibc's own stamp has
neither year nor sub-second precision, and the reception time is what a syslog daemon would write.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

_MESSAGE = re.compile(r"^<(\d{1,3})>(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d )?(.*)$", re.S)


def format_line(datagram: bytes, host: str, when: datetime) -> str | None:
    text = datagram.decode("utf-8", "replace").rstrip("\n\0")
    m = _MESSAGE.match(text)
    if not m:
        return None
    body = m.group(2).replace("\n", " ")
    return f"{when.isoformat(timespec='microseconds')} {host} {body}"


class SyslogReceiver:
    def __init__(self, socket_path: Path, out_path: Path, host: str) -> None:
        self.socket_path, self.out_path, self.host = socket_path, out_path, host
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(socket_path))
        os.chmod(socket_path, 0o666)  # sshd's children log as other users too
        self.sock.settimeout(0.2)
        self.out = out_path.open("a", buffering=1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="lab-syslog", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            line = format_line(data, self.host, datetime.now(UTC))
            if line is not None:
                with self._lock:
                    self.out.write(line + "\n")

    def lines(self) -> list[str]:
        with self._lock:
            self.out.flush()
        return self.out_path.read_text(errors="replace").split("\n")

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
        self.out.close()
