"""The recorded lab capture (tests/fixtures/lab, written by `trailhound lab run --record`): each
scenario's audit.log and auth.log, normalized by Trailhound, hold the evidence of what it did."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from evidence import FIXTURES, execs, get, normalized, ssh_logins, values

pytestmark = pytest.mark.skipif(not (FIXTURES / "scenarios.json").exists(), reason="no recorded lab capture")

META = json.loads((FIXTURES / "scenarios.json").read_text()) if (FIXTURES / "scenarios.json").exists() else {}
TARGET = META.get("target", "")
ATTACKER = META.get("attacker", "")
VICTIM = META.get("users", {}).get("victim", "")
ADMIN = META.get("users", {}).get("admin", "")
RECORDED = [s["name"] for s in META.get("scenarios", []) if not s.get("skipped")]

_cache: dict[str, list[dict]] = {}


def docs(name: str) -> list[dict]:
    if name not in _cache:
        _cache[name] = normalized(FIXTURES / name)
    return _cache[name]


def window(name: str) -> dict:
    return next(s for s in META["scenarios"] if s["name"] == name)


def need(name: str) -> list[dict]:
    if name not in RECORDED:
        pytest.skip(f"scenario {name} was not recorded")
    return docs(name)


def args_of(d: dict) -> list[str]:
    return [str(a) for a in values(d, "process.args")]


def ssh_with(events: list[dict], *args: str) -> list[dict]:
    """ssh client executions whose arguments include all of `args` (in order of appearance)."""
    out = []
    for d in execs(events, "ssh"):
        a = args_of(d)
        if all(x in a for x in args):
            out.append(d)
    return out


@pytest.mark.parametrize("name", RECORDED)
def test_every_event_lies_in_its_scenario_window(name):
    w = window(name)
    events = docs(name)
    assert events, f"{name}: no events recorded"
    for d in events:
        t = datetime.fromisoformat(str(get(d, "@timestamp")).replace("Z", "+00:00")).timestamp()
        assert w["start"] - 0.001 <= t <= w["end"], (name, get(d, "@timestamp"))


@pytest.mark.parametrize("name", RECORDED)
def test_every_scenario_logged_in_to_the_target(name):
    # every scenario reaches the target's sshd from the attacker (or, in two hops, from its loopback)
    ok = [d for d in ssh_logins(docs(name), "success") if get(d, "source.ip") in (ATTACKER, "127.0.0.1")]
    assert ok, f"{name}: no successful sshd login"
    assert window(name)["exit_code"] == 0


def test_ssh_password_lateral_movement():
    ev = need("ssh_password")
    assert ssh_logins(ev, "success", "password", VICTIM)
    assert [d for d in execs(ev, "sshpass") if "-p" in args_of(d) and "ssh" in args_of(d)]
    assert ssh_with(ev, f"{VICTIM}@{TARGET}", "id; uname -a; cat /etc/hostname")
    # auditd: sshd's USER_LOGIN for the terminal session, from the attacker's address
    logins = [d for d in ev if get(d, "event.module") == "auditd" and "logged-in" in values(d, "event.action")
              and get(d, "event.outcome") == "success"]
    assert logins and get(logins[0], "source.ip") == ATTACKER and get(logins[0], "user.name") == VICTIM
    # and the commands ran on the target as the victim
    assert [d for d in execs(ev, "id") if get(d, "user.name") == VICTIM]


def test_socks_tunnel():
    ev = need("socks_tunnel")
    assert ssh_with(ev, "-D", "1080", "-N", "-f")
    assert ssh_logins(ev, "success", "publickey", VICTIM)
    assert execs(ev, "pkill"), "the attacker ends the tunnel within the window"


def test_authorized_keys_append():
    ev = need("authorized_keys")
    assert execs(ev, "ssh-keygen")
    writes = [d for d in ev if "ssh_keys" in values(d, "tags")
              and str(get(d, "file.path")).endswith(f"/home/{VICTIM}/.ssh/authorized_keys")]
    assert writes and get(writes[0], "user.name") == VICTIM
    assert ssh_with(ev, f"{VICTIM}@{TARGET}")[0]
    appended = [d for d in ssh_with(ev) if any("authorized_keys" in a for a in args_of(d))]
    assert appended, "the ssh command line carries the append"
    assert ssh_logins(ev, "success", "password", VICTIM) and ssh_logins(ev, "success", "publickey", VICTIM)


def test_stolen_key_movement():
    ev = need("stolen_key")
    assert [d for d in execs(ev, "find") if ["-name", "id_rsa"] == args_of(d)[2:4]]
    assert [d for d in execs(ev, "cp") if args_of(d)[-1] == "/tmp/stolen_id_rsa"]
    # the audit watch saw the private key read
    assert [d for d in ev if "ssh_keys" in values(d, "tags") and str(get(d, "file.path")).endswith("/id_rsa")]
    assert ssh_with(ev, "-i", "/tmp/stolen_id_rsa")
    assert ssh_logins(ev, "success", "publickey", VICTIM)


def test_two_hop_chains():
    pc = need("proxycommand")
    assert [d for d in execs(pc, "ssh") if any(a.startswith("ProxyCommand=ssh") for a in args_of(d))]
    assert [d for d in ssh_logins(pc, "success") if get(d, "source.ip") == "127.0.0.1"], "second hop"
    pj = need("proxyjump")
    assert ssh_with(pj, "-J")
    assert ssh_with(pj, "-W"), "ssh -J runs ssh -W for the jump"
    assert [d for d in ssh_logins(pj, "success") if get(d, "source.ip") == "127.0.0.1"]


def test_forwards():
    assert ssh_with(need("local_forward"), "-L", "2222:127.0.0.1:22")
    assert [d for d in ssh_logins(docs("local_forward"), "success") if get(d, "source.ip") == "127.0.0.1"]
    assert ssh_with(need("remote_forward"), "-R", "4444:127.0.0.1:4444")


def test_scp_transfer():
    ev = need("scp_transfer")
    assert len(execs(ev, "scp")) == 2
    assert [d for d in execs(ev, "sftp-server") if get(d, "user.name") == VICTIM]


def test_brute_force_then_success():
    ev = need("brute_force")
    failed = ssh_logins(ev, "failure", "password")
    assert len([d for d in failed if get(d, "user.name") == VICTIM]) >= 5
    assert {"oracle", "postgres"} <= {get(d, "user.name") for d in failed}
    ok = ssh_logins(ev, "success", "password", VICTIM)
    assert ok and max(get(d, "@timestamp") for d in failed) < get(ok[0], "@timestamp")
    assert [d for d in ev if get(d, "event.module") == "auditd" and "authentication" in values(d, "event.category")
            and get(d, "event.outcome") == "failure"], "PAM's failed USER_AUTH records"


def test_container_ssh():
    ev = need("container_ssh")
    assert [d for d in execs(ev, "runc") if "run" in args_of(d)]
    inside = ssh_with(ev, "-i", "/root/.ssh/id_rsa")
    assert inside and get(inside[0], "process.entry_leader.entry_meta.type") == "container"


def test_baseline_is_ordinary_admin_use():
    ev = need("baseline")
    assert window("baseline")["benign"]
    clients = execs(ev, "ssh") + execs(ev, "scp")
    assert clients and all(get(d, "user.name") == ADMIN for d in clients)
    assert not [d for d in clients if "-o" in args_of(d) or "-i" in args_of(d)], "default options only"
    assert len(ssh_logins(ev, "success", "publickey", ADMIN)) >= 3
    assert not [d for d in ev if get(d, "event.outcome") == "failure" and "ssh_login" in values(d, "event.action")]


def test_no_foreign_host_noise():
    # the capture keeps only the lab's processes: every exec is one of the lab's sessions or sshd's
    # (python3 and git, which this machine runs all the time, appear only where a scenario runs them)
    for name in RECORDED:
        own = window(name)["commands"]
        markers = [t for t in ("python3", "git", "pytest") if t not in own]
        for d in [d for t in markers for d in execs(docs(name), t)]:
            pytest.fail(f"{name}: foreign process {args_of(d)}")


# -- the benign automation: each did what the tool really does, and nothing of an attacker's

def test_ansible_play_drives_ssh_as_ansible_does():
    ev = need("ansible_play")
    clients = execs(ev, "ssh")
    assert clients and all(get(d, "user.name") == ADMIN for d in clients)
    for opt in ("ControlMaster=auto", "ControlPersist=60s", "KbdInteractiveAuthentication=no",
                "PasswordAuthentication=no", f'User="{ADMIN}"', "ConnectTimeout=10", "StrictHostKeyChecking=no",
                "PreferredAuthentications=gssapi-with-mic,gssapi-keyex,hostbased,publickey"):
        assert ssh_with(ev, opt), opt
    assert [d for d in clients if any(a.startswith("ControlPath=") and "/.ansible/cp/" in a for a in args_of(d))]
    # module transfer with sftp in batch mode over the master, then python3 through /bin/sh -c '... && sleep 0'
    assert [d for d in execs(ev, "sftp") if args_of(d)[1:3] == ["-b", "-"]]
    assert [d for d in execs(ev, "sftp-server")], "sshd ran the sftp subsystem"
    assert [d for d in execs(ev, "python3") if any(a.endswith("AnsiballZ_ping.py") for a in args_of(d))]
    assert [d for d in execs(ev, "sh") if args_of(d)[1:2] == ["-c"] and args_of(d)[-1].endswith("&& sleep 0")]
    # one master connection: fewer key logins than ssh commands
    assert 1 <= len(ssh_logins(ev, "success", "publickey", ADMIN)) < len(clients)


def test_provisioning_agent_rewrites_authorized_keys_outside_a_login():
    ev = need("provisioning_agent")
    writes = [d for d in ev if "file" in values(d, "event.category") and get(d, "file.name") == "authorized_keys"
              and get(d, "process.name") == "python3"]
    assert writes, "the agent's write of authorized_keys"
    # a service: no login session (auid unset), run as root
    assert all(get(d, "user.id") == "0" and get(d, "user.audit.id") in (None, "4294967295") for d in writes)
    assert ssh_logins(ev, "success", "publickey", ADMIN), "the automation reconnected with the new key"


def test_backup_probe_git_and_tunnel_run_the_real_tools():
    ev = need("rsync_backup")
    assert [d for d in execs(ev, "rsync") if "--server" in args_of(d)], "rsync ran its server over ssh"
    assert [d for d in execs(ev, "ssh") if "BatchMode=yes" in args_of(d) and "rsync" in args_of(d)]
    ev = need("monitoring_probe")
    assert [d for d in execs(ev, "ssh") if args_of(d)[1:3] == ["-l", ADMIN] and "BatchMode=yes" in args_of(d)]
    ev = need("git_over_ssh")
    assert [d for d in execs(ev, "ssh") if any("git-upload-pack" in a for a in args_of(d))]
    assert [d for d in execs(ev, "ssh") if any("git-receive-pack" in a for a in args_of(d))]
    ev = need("db_tunnel")
    assert ssh_with(ev, "-f", "-N", "-L", "15432:127.0.0.1:5432")
    ev = need("bastion_proxyjump")
    jump = [d for d in execs(ev, "ssh") if "-W" in args_of(d)]
    assert jump and not ssh_with(ev, "-J"), "the jump comes from ~/.ssh/config, not the command line"


def test_key_rotation_installs_the_new_key_and_removes_the_old():
    ev = need("key_rotation")
    assert [d for d in execs(ev, "ssh-keygen") if any(a.startswith(f"/home/{ADMIN}/.ssh/") or a.startswith("~")
                                                     or "/.ssh/" in a for a in args_of(d))]
    assert execs(ev, "ssh-copy-id") or [d for d in execs(ev, "sh") if "ssh-copy-id" in " ".join(args_of(d))]
    assert [d for d in execs(ev, "sed") if "-i" in args_of(d)], "the old key removed on the target"
