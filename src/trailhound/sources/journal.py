"""Following the systemd journal (`watch --journal`): `journalctl -f -o json` as one input of the live pipeline.

journald's files are a binary format that only systemd's library reads safely while journald writes them, so the
journal is read through the real `journalctl`, as a user would pipe it, and each entry is normalized by the reader
`hunt` uses for `journalctl -o json` files (`sources.syslog`: sshd's and sudo's messages become Elastic's
system/auth events). What this adds is the position: every entry carries its `__CURSOR`, and the checkpoint
records the cursor of the last entry handed to the pipeline, so a restart runs `journalctl -f --after-cursor C`
and neither loses nor repeats an entry (journalctl's own `--cursor-file` would record what journalctl printed,
not what was evaluated).

* Without a checkpoint it starts at the end of the journal (`-n 0`: only new entries), or at its start with
  `from_start` (`--no-tail`).
* `directory` follows the journal files of a directory (`journalctl --directory`: a container's or a collected
  host's journal) instead of the system journal.
* Errors are said plainly (`tail.FollowError`): no journalctl on PATH, or journalctl refusing (no permission to
  read the journal, a directory without journal files), with journalctl's own words.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

import orjson

from .formats import ReadOptions
from .normalize import MAX_LINE_BYTES
from .tail import FollowError, Intake, decode_line

START_SECONDS = 0.5  # journalctl refusing the journal (permissions, no files) exits at once: waited for this long
NAME = "journal"  # the input's name in skips and notes


class Journal:
    """`journalctl -f -o json` feeding `intake` (see the module doc)."""

    def __init__(self, intake: Intake, *, skip: Callable[[str, int, str], None], options: ReadOptions | None = None,
                 from_start: bool = False, directory: str | None = None, idle_after: float = 0.5,
                 journalctl: str = "journalctl", clock: Callable[[], float] | None = None) -> None:
        self.intake = intake
        self._skip = skip
        self.options = options or ReadOptions()
        self.from_start = from_start
        self.directory = directory
        self.idle_after = idle_after
        self.journalctl = journalctl
        self.clock = clock or time.monotonic
        self.name = f"{NAME}:{directory}" if directory else NAME
        self.source: int | None = None
        self.cursor: str | None = None  # of the last entry handed to the intake
        self.line = 0  # entries read (each one's number in skips and row ids)
        self.notes: list[str] = []
        self.proc: subprocess.Popen | None = None
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._stderr = b""
        self._last_data = 0.0
        self._partial = b""

    # ---- starting ----

    def command(self) -> list[str]:
        """The journalctl command line for where the journal is to be read from."""
        path = shutil.which(self.journalctl)
        if path is None:
            raise FollowError(f"--journal: {self.journalctl} not found on PATH; install systemd's journalctl, or "
                              "follow an export instead: journalctl -f -o json | trailhound watch - ...")
        cmd = [path, "--follow", "--output=json", "--no-pager", "--quiet"]
        if self.directory:
            if not os.path.isdir(self.directory):
                raise FollowError(f"--journal-directory {self.directory}: not a directory")
            cmd.append(f"--directory={self.directory}")
        if self.cursor is not None:
            cmd.append(f"--after-cursor={self.cursor}")
        elif self.from_start:
            cmd.append("--no-tail")
        else:
            cmd.append("--lines=0")
        return cmd

    def start(self, saved: dict | None = None) -> None:
        """Run journalctl from the checkpoint's cursor (`saved`, from `to_dict`), else as the module doc says.
        Raises FollowError when journalctl is missing or refuses at once."""
        if saved is not None:
            self.source, self.cursor, self.line = saved["source"], saved["cursor"], saved["line"]
        cmd = self.command()
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL)
        except OSError as e:
            raise FollowError(f"--journal: cannot run {cmd[0]}: {e.strerror}") from None
        threading.Thread(target=self._pump, name="journalctl", daemon=True).start()
        threading.Thread(target=self._pump_err, name="journalctl-stderr", daemon=True).start()
        if self.source is None:
            self.source = self.intake.add_source(self.name, True)
        self.intake.set_enrich(self.source, True)  # as `load_events` treats a journal export: the process tree
        self._last_data = self.clock()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.02)
        if self.proc.poll() is not None and not self._lines:
            self._ended.wait(1.0)
            raise FollowError(self._refusal())

    def _refusal(self) -> str:
        assert self.proc is not None
        said = " ".join(self._stderr.decode("utf-8", "replace").split())[:500] or "no message"
        hint = ""
        if "permission" in said.lower():
            hint = " (run watch as root, or as a member of the systemd-journal or adm group)"
        return f"--journal: journalctl exited {self.proc.returncode}: {said}{hint}"

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # closed by close()
                break
            if not chunk:
                break
            with self._lock:
                self._lines.append(chunk)
        self._ended.set()

    def _pump_err(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            if len(self._stderr) < 4096:
                self._stderr += line

    # ---- reading ----

    def poll(self) -> int:
        """Hand what journalctl printed to the intake; the bytes read. FollowError when journalctl ended."""
        from .syslog import read

        with self._lock:
            chunks, self._lines = self._lines, []
        now = self.clock()
        assert self.source is not None
        if not chunks:
            if self._ended.is_set() and self.proc is not None and self.proc.wait() is not None:
                raise FollowError(self._refusal())
            self.intake.set_idle(self.source, now - self._last_data >= self.idle_after)
            return 0
        data = self._partial + b"".join(chunks)
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) + 1 > MAX_LINE_BYTES:  # an endless line: said, and cut
            self.line += 1
            self._skip(self.name, self.line, f"line of over {MAX_LINE_BYTES} bytes, over the limit")
            self._partial = b""
        self._last_data = now
        self.intake.set_idle(self.source, False)
        fallback = self.options.host or "journal"
        for raw in lines:
            if not raw.strip():
                continue
            self.line += 1
            n = self.line
            text = decode_line(raw, n, lambda k, why: self._skip(self.name, k, why))
            if text is None:
                continue
            for doc, _ in read([(n, text)], lambda k, why: self._skip(self.name, k, why), self.options):
                host = doc.get("host")
                if isinstance(host, dict) and not host.get("name"):
                    host["name"] = fallback
                    host.setdefault("id", fallback)
                self.intake.add(self.source, doc, n)
            cursor = _cursor(text)
            if cursor is not None:
                self.cursor = cursor
        return len(data)

    # ---- checkpoints ----

    def to_dict(self) -> dict:
        """Where to go on from: the cursor of the last entry handed over (a partial line is read again)."""
        return {"source": self.source, "cursor": self.cursor, "line": self.line, "directory": self.directory}

    def close(self) -> None:
        """Stop journalctl."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self.proc = None


def _cursor(text: str) -> str | None:
    try:
        entry = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    value = entry.get("__CURSOR") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None
