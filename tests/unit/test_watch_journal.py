"""`watch --journal`: the systemd journal followed through the real `journalctl -f -o json`, with its cursor in the
checkpoint. journald does not run on every test machine (containers, this VM), so the test starts the real
`systemd-journald` binary itself, in a private mount namespace whose /run, /var/log/journal and journald.conf are
the test's own directories: the host's journal, sockets and configuration are untouched, and the namespace (with
its mounts) ends with journald. Entries are sent to it over its native socket, as sd_journal_send does."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from trailhound.pipeline.hunt import plan, run_hunt
from trailhound.pipeline.watch import AlertFile, WatchSettings, run_watch
from trailhound.rules.loader import load_rules
from trailhound.sources.tail import FollowError

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "src/trailhound/pack"
JOURNALD = next((p for p in ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald")
                 if os.path.exists(p)), None)


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "starting systemd-journald in a private mount namespace needs root"
    for tool in ("journalctl", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if JOURNALD is None:
        return "the systemd-journald binary is not installed"
    return None


WHY = _why_not()
needs_journald = pytest.mark.skipif(WHY is not None, reason=f"no real journald to follow: {WHY}")

NAMESPACE = """set -e
D=$1
mount -t tmpfs -o mode=0755 thjournal-run /run
mkdir -p /run/systemd/journal /run/log/journal
mount --bind "$D/sock" /run/systemd/journal
mount --bind "$D/journal" /run/log/journal
if [ -d /var/log/journal ]; then mount --bind "$D/var" /var/log/journal; fi
mount --bind "$D/journald.conf" /etc/systemd/journald.conf
exec "$2"
"""
CONF = ("[Journal]\nStorage=volatile\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\n"
        "ReadKMsg=no\nRateLimitBurst=0\n")


class Journald:
    """A real systemd-journald of the test's own (see the module doc)."""

    def __init__(self, base: Path) -> None:
        self.dir = base
        for d in ("sock", "journal", "var"):
            (base / d).mkdir(parents=True)
        (base / "journald.conf").write_text(CONF)
        (base / "ns.sh").write_text(NAMESPACE)
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", str(base / "ns.sh"),
                                      str(base), str(JOURNALD)], stdout=subprocess.DEVNULL,
                                     stderr=open(base / "journald.err", "wb"))  # noqa: SIM115
        self.socket = base / "sock" / "socket"
        self.journal = base / "journal"
        deadline = time.monotonic() + 30
        while not (self.socket.exists() and any(self.journal.glob("*/system.journal"))):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"journald did not start: {(base / 'journald.err').read_text()[-500:]}")
            time.sleep(0.05)

    def send(self, message: str, ident: str = "sshd", pid: int = 4242) -> None:
        """One entry over the native protocol (what sd_journal_send writes)."""
        data = f"MESSAGE={message}\nSYSLOG_IDENTIFIER={ident}\nSYSLOG_PID={pid}\nPRIORITY=6\nSYSLOG_FACILITY=10\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(data.encode(), str(self.socket))

    def export(self) -> list[bytes]:
        """Every entry as `journalctl -o json` prints it (what `hunt` reads)."""
        out = subprocess.run(["journalctl", f"--directory={self.journal}", "-o", "json", "--no-pager"],
                             capture_output=True, check=True).stdout
        return out.splitlines()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def journald(tmp_path):
    def host() -> tuple:
        """Where journald would have written on the host."""
        return tuple((p, sorted(os.listdir(p)) if os.path.isdir(p) else None)
                     for p in ("/run/systemd/journal", "/run/log/journal", "/var/log/journal"))

    before = host()
    j = Journald(tmp_path / "journald")
    try:
        yield j
    finally:
        j.stop()
    assert host() == before  # everything journald did was in its own namespace


BRUTE = [f"Failed password for root from 10.9.9.9 port {40000 + i} ssh2" for i in range(12)]
ACCEPTED = "Accepted password for root from 10.9.9.9 port 50000 ssh2"


def _watch(planned, journald, out: Path, state: Path, stop: threading.Event, from_start: bool = False):
    result: dict = {}

    def run() -> None:
        alert_file = AlertFile(str(out))
        try:
            result["pipe"] = run_watch(planned, [], alert_file, state_dir=str(state), from_start=from_start,
                                       stop=stop, journal=True, journal_directory=str(journald.journal),
                                       settings=WatchSettings(checkpoint_seconds=0.5))
        except BaseException as e:  # noqa: BLE001 - handed to the test
            result["error"] = e
        finally:
            alert_file.close()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while not (state / "checkpoint.json").exists() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return thread, result


def _wait_for(predicate, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _hunt(planned, lines: list[bytes], tmp_path: Path) -> list[dict]:
    export = tmp_path / "journal.json"
    export.write_bytes(b"".join(x + b"\n" for x in lines))
    return [a for r in run_hunt(planned, [export], keep_alerts=True).rules for a in (r.alert_documents or [])]


@needs_journald
def test_watch_follows_the_journal_and_resumes_from_its_cursor(journald, tmp_path):
    planned = plan(load_rules([PACK]))
    out, state = tmp_path / "alerts.ndjson", tmp_path / "state"
    stop = threading.Event()
    thread, result = _watch(planned, journald, out, state, stop, from_start=True)
    for message in BRUTE[:6]:
        journald.send(message)
    assert _wait_for(lambda: out.exists() and out.stat().st_size > 0), "watch raised the first alerts"
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=60)
    assert "error" not in result, result
    first = out.read_bytes().splitlines()
    saved = orjson.loads((state / "checkpoint.json").read_bytes())["journal"]
    assert saved["cursor"] and saved["line"] >= 6

    # entries written while watch is stopped are read after the cursor: none lost, none read twice
    for message in [*BRUTE[6:], ACCEPTED]:
        journald.send(message)
    stop2 = threading.Event()
    thread, result = _watch(planned, journald, out, state, stop2)
    assert _wait_for(lambda: any(b"Repeated Failures" in x for x in out.read_bytes().splitlines()))
    time.sleep(1.5)
    stop2.set()
    thread.join(timeout=60)
    assert "error" not in result, result
    # each entry of the journal read once over the two runs (the counts carry over in the checkpoint)
    assert result["pipe"].stats.events == len(journald.export())

    written = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(written) > len(first)
    want = _hunt(planned, journald.export(), tmp_path)
    # the same alerts as hunt over the journal's export (creation times aside), each written once
    assert sorted(a["kibana.alert.uuid"] for a in written) == sorted(a["kibana.alert.uuid"] for a in want)

    def key(a: dict) -> bytes:
        return orjson.dumps({k: v for k, v in a.items() if v != a["@timestamp"]}, option=orjson.OPT_SORT_KEYS)

    assert sorted(map(key, written)) == sorted(map(key, want))


@needs_journald
def test_watch_journal_follows_the_system_journal(journald, tmp_path):
    # `--journal` without a directory: journalctl's own system journal, seen from journald's mount namespace
    out = tmp_path / "alerts.ndjson"
    cmd = ["nsenter", f"--mount=/proc/{journald.proc.pid}/ns/mnt", sys.executable, "-m", "trailhound", "watch",
           "--journal", "--out", str(out), "--state", str(tmp_path / "state")]
    log = open(tmp_path / "watch.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, cwd=REPO)
    try:
        assert _wait_for(lambda: (tmp_path / "state/checkpoint.json").exists() or proc.poll() is not None, 120)
        assert proc.poll() is None, (tmp_path / "watch.log").read_text()
        journald.send(ACCEPTED)
        assert _wait_for(lambda: out.exists() and b"First-Seen Source Address" in out.read_bytes()), \
            (tmp_path / "watch.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "watch.log").read_text()


@needs_journald
def test_an_unreadable_journal_is_a_clear_error(journald, tmp_path):
    # journalctl run without the right to read the journal files (0640 root): it refuses, and watch says so
    wrapper = tmp_path / "journalctl"
    wrapper.write_text(f"#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups "
                       f"{shutil.which('journalctl')} \"$@\"\n")
    wrapper.chmod(0o755)
    from trailhound.sources.journal import Journal

    class Intake:
        def add_source(self, name, enrich):
            return 0

        def set_enrich(self, source, enrich):
            pass

    reader = Journal(Intake(), skip=lambda *a: None, directory=str(journald.journal),  # type: ignore[arg-type]
                     journalctl=str(wrapper))
    with pytest.raises(FollowError, match=r"journalctl exited 1: .*(insufficient permissions|Permission denied).* "
                                          r"\(run watch as root, or as a member of the systemd-journal"):
        reader.start()
    reader.close()


def test_no_journalctl_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without journalctl
    planned = plan(load_rules([PACK]))
    stop = threading.Event()
    stop.set()
    with pytest.raises(FollowError, match="--journal: journalctl not found on PATH"):
        run_watch(planned, [], None, stop=stop, journal=True)


@pytest.mark.skipif(shutil.which("journalctl") is None, reason="journalctl is not installed")
def test_a_directory_without_journal_files_is_a_clear_error(tmp_path):
    planned = plan(load_rules([PACK]))
    stop = threading.Event()
    stop.set()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FollowError, match=r"--journal: journalctl exited 1: "):
        run_watch(planned, [], None, stop=stop, journal=True, journal_directory=str(tmp_path / "empty"))


def test_watch_cli_needs_an_input():
    from typer.testing import CliRunner

    from trailhound.cli.main import app

    result = CliRunner().invoke(app, ["watch", "--out", "-"])
    assert result.exit_code == 2 and "give the files to follow, '-' for standard input, or --journal" in result.output
