"""The lab's per-scenario preflight, without root: a scenario whose own tools are missing (or a
busybox that is not static) is skipped with the reason, or refused when the user named it,
instead of a traceback from its setup (`shutil.copy2(None, ...)`)."""

from __future__ import annotations

import struct

import pytest

from trailhound.lab import preflight
from trailhound.lab.scenarios import BY_NAME, SCENARIOS


def elf(path, interp: bool) -> str:
    """A minimal 64-bit ELF header with one program header: PT_INTERP (dynamic) or PT_LOAD."""
    header = bytearray(64)
    header[:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<HHIQQQIHHHHHH", header, 16, 2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    ph = bytearray(56)
    struct.pack_into("<I", ph, 0, 3 if interp else 1)
    path.write_bytes(bytes(header + ph))
    return str(path)


def fake_which(present: dict[str, str]):
    return lambda tool: present.get(tool, f"/usr/bin/{tool}" if tool not in ("runc", "busybox") else None)


def test_static_or_dynamic_busybox(tmp_path):
    assert preflight.is_static(elf(tmp_path / "static", interp=False))
    assert not preflight.is_static(elf(tmp_path / "dynamic", interp=True))
    assert not preflight.is_static(str(tmp_path / "missing"))
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert not preflight.is_static(str(tmp_path / "script"))


def test_all_scenarios_skip_the_one_that_cannot_run(tmp_path):
    which = fake_which({"runc": "/usr/sbin/runc"})  # no busybox
    assert preflight.plan(SCENARIOS, named=False, which=which) == {
        "container_ssh": "missing busybox (apt-get install busybox-static)"}
    dynamic = fake_which({"runc": "/usr/sbin/runc", "busybox": elf(tmp_path / "busybox", interp=True)})
    problems = preflight.plan(SCENARIOS, named=False, which=dynamic)
    assert list(problems) == ["container_ssh"] and "dynamically linked" in problems["container_ssh"]
    static = fake_which({"runc": "/usr/sbin/runc", "busybox": elf(tmp_path / "bb", interp=False)})
    assert preflight.plan(SCENARIOS, named=False, which=static) == {}


def test_a_named_scenario_that_cannot_run_is_refused():
    which = fake_which({})
    with pytest.raises(preflight.Refusal, match=r"scenario container_ssh cannot run: missing runc, busybox"):
        preflight.plan([BY_NAME["container_ssh"], BY_NAME["ssh_password"]], named=True, which=which)
    assert preflight.plan([BY_NAME["ssh_password"]], named=True, which=which) == {}


def test_the_runner_skips_by_the_same_rule(monkeypatch):
    """Lab.run_scenario and Lab._setup ask `scenario_problem`, which reads the module's `which`."""
    monkeypatch.setattr(preflight, "which", fake_which({"runc": "/usr/sbin/runc"}))
    assert preflight.scenario_problem(BY_NAME["container_ssh"]) == "missing busybox (apt-get install busybox-static)"
    assert preflight.scenario_problem(BY_NAME["baseline"]) is None
