"""The installed `trailhound` command (cli.main.run): exit codes and complete output through a
pipe, although it leaves without the interpreter's teardown."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import rule, write_case


def trailhound(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from trailhound.cli.main import run; sys.argv[0] = 'trailhound'; run()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_exit_codes_and_flushed_output(tmp_path):
    events = [{"@timestamp": f"2026-01-01T00:00:0{i}Z", "event": {"category": "process", "id": f"e{i}"},
               "process": {"name": name}} for i, name in enumerate(["ssh", "bash", "ssh"])]
    data, rules = write_case(tmp_path, events, {"r.toml": rule(name="ssh client")})
    out = tmp_path / "alerts.ndjson"

    alerts = trailhound("hunt", "--rules", str(rules), str(data), "--out", str(out))
    assert alerts.returncode == 1, alerts.stderr  # alerts raised
    assert "ssh client" in alerts.stdout and "2 alerts from 1 rules" in alerts.stderr
    assert [json.loads(line)["event"]["id"] for line in out.read_text().splitlines()] == ["e0", "e2"]

    assert trailhound("hunt", "--rules", str(rules), str(data), "--exit-zero").returncode == 0
    missing = trailhound("hunt", "--rules", str(rules), str(tmp_path / "nope.ndjson"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert trailhound("no-such-command").returncode == 2  # usage errors, as click reports them


def test_streamed_output_is_complete_through_a_pipe(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("".join(f"Nov 23 10:00:{i % 60:02d} web sshd[{100 + i}]: Accepted publickey for alice from "
                           f"10.0.0.{i % 250} port {4000 + i} ssh2\n" for i in range(3000)))
    res = trailhound("normalize", str(log), "--year", "2026")
    assert res.returncode == 0, res.stderr
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(docs) == 3000 and docs[-1]["source"]["port"] == 6999
