"""The README's commands that run on bundled data, run as a new user would type them (the
`trailhound` part of each `.venv/bin/trailhound ...`), through the installed command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("trailhound")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [c.strip().rstrip(".") for c in re.findall(r"\.venv/bin/trailhound [^`\n]*", text)]


def run(command: str) -> subprocess.CompletedProcess:
    exe = str(SCRIPT) if SCRIPT.exists() else f"{sys.executable} -m trailhound"
    line = command.replace(".venv/bin/trailhound", exe, 1)
    return subprocess.run(["bash", "-c", line], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TRAILHOUND_CACHE_DIR": "off"})


def test_the_readme_names_its_bundled_examples():
    subcommands = [c.split()[1] for c in readme_commands()]
    assert subcommands == ["hunt", "query"], readme_commands()


def test_the_setup_hunt_over_the_lab_capture():
    (cmd,) = [c for c in readme_commands() if c.split()[1] == "hunt"]
    res = run(cmd)
    assert res.returncode == 0, res.stderr  # --exit-zero: alerts do not fail it
    assert "0 unsupported, 0 errors" in res.stderr and "bad lines" not in res.stderr
    assert "SSH Client Driven by sshpass" in res.stdout and "Suspicious SSH Client Use" in res.stdout
    # the figures the README gives for it are the truth
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"It reports (\d+) alerts from (\d+) rules over ([\d,]+) events", text)
    assert stated, "the README states what the first command reports"
    alerts, rules, events = stated.group(1), stated.group(2), stated.group(3).replace(",", "")
    assert re.search(rf"^{alerts} alerts from {rules} rules; 23 rules run, .* {events} events read", res.stderr,
                     re.M), res.stderr
    assert "eleven SSH attacks and nine benign" in text
    lab = sorted(p.parent.name for p in (ROOT / "tests/fixtures/lab").glob("*/audit.log"))
    assert len(lab) == 20, lab


def test_the_query_example():
    (cmd,) = [c for c in readme_commands() if c.split()[1] == "query"]
    res = run(cmd)
    assert res.returncode == 0, res.stderr
    assert "skipped" not in res.stderr  # the example's line 23 was truncated
    assert "2 sequences from 1 input, 23 events read in" in res.stderr
    rows = res.stdout.splitlines()[2:]
    assert [r.split()[:2] for r in rows if r[:1].isdigit()] == [["1", "db-01"], ["2", "bastion"]]
    assert any("ssh -D 1080 -N -f deploy@10.0.3.7" in r for r in rows)
