"""examples/trailhound-watch.service is a unit systemd accepts, and runs `trailhound watch` with a state directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "examples/trailhound-watch.service"


def test_unit_runs_watch_with_state_and_hardening():
    text = UNIT.read_text()
    assert "trailhound watch" in text and "--state" in text and "KillSignal=SIGTERM" in text
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "PrivateNetwork=yes",
                   "SystemCallFilter=@system-service", "CapabilityBoundingSet=CAP_DAC_READ_SEARCH"):
        assert option in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path):
    trailhound = Path(sys.executable).with_name("trailhound")
    if not trailhound.exists():
        pytest.skip("the trailhound script is not installed beside this interpreter")
    unit = tmp_path / "trailhound-watch.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/trailhound", str(trailhound)))
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "Unknown" not in run.stderr and "ignoring" not in run.stderr.lower(), run.stderr
