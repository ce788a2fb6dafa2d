"""The lab's refusals and its capture filter, without touching the machine."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from trailhound.cli.lab import lab_app
from trailhound.lab import capture, preflight


def test_refuses_when_not_root(monkeypatch):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 1000)
    with pytest.raises(preflight.Refusal, match="must run as root"):
        preflight.check()
    result = CliRunner().invoke(lab_app, ["run"])
    assert result.exit_code == 2
    assert "must run as root" in result.output


def test_missing_tools_name_their_packages(monkeypatch):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    gone = {"sshd", "auditd", "auditctl"}
    real = preflight.which
    monkeypatch.setattr(preflight, "which", lambda t: None if t in gone else real(t) or f"/usr/bin/{t}")
    with pytest.raises(preflight.Refusal) as e:
        preflight.check()
    assert "missing sshd, auditd, auditctl" in str(e.value)
    assert "apt-get install auditd openssh-server" in str(e.value)


def test_optional_scenario_tools_are_required_when_chosen(monkeypatch):
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    real = preflight.which
    monkeypatch.setattr(preflight, "which", lambda t: None if t == "runc" else real(t) or f"/usr/bin/{t}")
    with pytest.raises(preflight.Refusal, match="apt-get install runc"):
        preflight.check(("runc",))


def test_unknown_scenario_is_refused():
    result = CliRunner().invoke(lab_app, ["run", "--scenarios", "ssh_password,nope"])
    assert result.exit_code == 2
    assert "unknown scenarios ['nope']" in result.output


def _line(serial, rtype, body, t="1795444538.074"):
    return f"node=lab type={rtype} msg=audit({t}:{serial}): {body}"


def test_capture_keeps_lab_sessions_and_sshd_descendants():
    lines = [
        _line(1, "SYSCALL", "syscall=59 ppid=1 pid=50 auid=4294967295 ses=4294967295 comm=\"python3\""),  # host
        _line(2, "SYSCALL", "syscall=59 ppid=10 pid=11 auid=4294967295 ses=4294967295 comm=\"sshd\""),  # sshd child
        _line(3, "USER_AUTH", "pid=11 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication res=failed'"),
        _line(4, "SYSCALL", "syscall=59 ppid=11 pid=12 auid=1001 ses=7 comm=\"bash\""),  # the session
        _line(5, "SYSCALL", "syscall=59 ppid=99 pid=13 auid=0 ses=9 comm=\"ssh\""),  # a scenario's session
        _line(6, "SYSCALL", "syscall=59 ppid=1 pid=14 auid=0 ses=3 comm=\"cron\""),  # an older session
        _line(7, "CONFIG_CHANGE", "auid=0 ses=9 op=add_rule key=\"exec\" res=1"),
    ]
    kept = capture.lab_events(capture.audit_events(lines), ses_floor=7, sshd_pids={10})
    assert [e.serial for e in kept] == [2, 3, 4, 5]


def test_capture_keeps_an_agents_children_but_not_its_launcher():
    # the provisioning agent runs as a service (no login session): its launcher (plumbing) is left out,
    # what it starts is kept through the pid/ppid chain
    lines = [
        _line(1, "SYSCALL", "syscall=59 ppid=1 pid=20 auid=4294967295 ses=4294967295 comm=\"sh\""),  # launcher
        _line(2, "SYSCALL", "syscall=59 ppid=20 pid=21 auid=4294967295 ses=4294967295 comm=\"sh\""),
        _line(3, "SYSCALL", "syscall=257 ppid=21 pid=22 auid=4294967295 ses=4294967295 comm=\"python3\""),
        _line(4, "SYSCALL", "syscall=59 ppid=1 pid=30 auid=4294967295 ses=4294967295 comm=\"cron\""),  # host
    ]
    kept = capture.lab_events(capture.audit_events(lines), ses_floor=7, sshd_pids={20}, exclude={20})
    assert [e.serial for e in kept] == [2, 3]


def test_benign_scenarios_skip_without_their_tools_and_name_the_package():
    from trailhound.lab.scenarios import BY_NAME, LIVE_BENIGN

    def which(tool):
        return None if tool in ("rsync", "check_by_ssh", "git") else f"/usr/bin/{tool}"

    assert preflight.scenario_problem(BY_NAME["rsync_backup"], which) == "missing rsync (apt-get install rsync)"
    assert "apt-get install monitoring-plugins-standard" in preflight.scenario_problem(BY_NAME["monitoring_probe"],
                                                                                       which)
    skipped = preflight.plan([BY_NAME[n] for n in ("rsync_backup", "git_over_ssh", *LIVE_BENIGN)], named=False,
                             which=which)
    assert sorted(skipped) == ["git_over_ssh", "rsync_backup"]  # the live subset needs nothing more
    with pytest.raises(preflight.Refusal, match="scenario monitoring_probe cannot run"):
        preflight.plan([BY_NAME["monitoring_probe"]], named=True, which=which)


def test_enriched_records_keep_their_separator(tmp_path):
    p = tmp_path / "audit.log"
    p.write_bytes(b"type=USER_LOGIN msg=audit(1.000:1): pid=1 res=success\x1dUID=\"root\"\ntype=EOE msg=audit(1.000:1): \n")
    assert capture.read_lines(p) == ['type=USER_LOGIN msg=audit(1.000:1): pid=1 res=success\x1dUID="root"',
                                     "type=EOE msg=audit(1.000:1): "]


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="the lab's lock lives in /run (root)")
def test_a_second_run_is_refused_and_touches_nothing():
    from trailhound.lab.runner import Lab
    from trailhound.lab.system import STATE_PATH

    holder = Lab([], log=lambda m: None)
    try:
        holder._lock()
    except preflight.Refusal:
        pytest.skip("a lab run is in progress")
    try:
        state_before = STATE_PATH.exists()
        with pytest.raises(preflight.Refusal, match="another lab run holds the lock"):
            with Lab([], log=lambda m: None):
                pass
        assert STATE_PATH.exists() == state_before
    finally:
        holder._unlock()
