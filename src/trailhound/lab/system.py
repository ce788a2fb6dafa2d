"""Host plumbing for the lab: commands, the kernel audit state, namespaces, users and processes.

Everything here changes the machine, so every change is first written to the state file
(`STATE_PATH`) and undone by `cleanup`, which also repairs what a crashed run left behind.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

STATE_PATH = Path("/run/trailhound-lab.json")
LOCK_PATH = Path("/run/trailhound-lab.lock")
PREFIX = "thlab"
NETNS = {"attacker": f"{PREFIX}-attacker", "target": f"{PREFIX}-target"}
VETH = {"attacker": f"{PREFIX}-a", "target": f"{PREFIX}-t"}
ADDR = {"attacker": "10.203.77.1", "target": "10.203.77.2"}
USERS = {"victim": "lab-victim", "admin": "lab-admin"}
GECOS = "trailhound lab"  # marks the users we create, so cleanup never deletes another account
HOSTNAME = "trailhound-lab"  # audit node= and the syslog HOST: one kernel, one host
LAB_TOOLS = ("sshd", "ssh", "sshpass", "runc", "auditd")  # what a recorded pid may still be running
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class LabError(RuntimeError):
    """A setup step failed; the message says which command and why."""


def run(cmd: list[str], *, check: bool = True, input: str | None = None, timeout: float = 60,
        env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
    except FileNotFoundError as e:
        raise LabError(f"{cmd[0]}: not installed ({e})") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout}s: {shlex.join(cmd)}") from None
    if check and p.returncode != 0:
        raise LabError(f"{shlex.join(cmd)} exited {p.returncode}: {(p.stderr or p.stdout).strip()}")
    return p


def clean_env(home: str = "/root", user: str = "root") -> dict:
    """The environment of a fresh login rather than this Python's (venv PATH and all)."""
    return {"PATH": SAFE_PATH, "HOME": home, "USER": user, "LOGNAME": user, "SHELL": "/bin/sh",
            "LANG": "C.UTF-8", "TERM": "dumb"}


# -- state file -------------------------------------------------------------------------------

@dataclass
class State:
    """What this run changed, kept on disk so that an interrupted run can be undone later."""
    owner_pid: int = 0
    workdir: str = ""
    audit_status: dict = field(default_factory=dict)
    audit_rules: list = field(default_factory=list)
    added_rules: list = field(default_factory=list)  # auditctl argument lists, as added
    auditd_pid: int = 0
    auditd_pidfile_existed: bool = True
    netns: list = field(default_factory=list)
    netns_dir_existed: bool = True  # /run/netns, which the first `ip netns add` of a boot creates
    users: list = field(default_factory=list)
    pids: list = field(default_factory=list)  # processes we started (sshd, tunnels)
    containers: list = field(default_factory=list)

    def save(self) -> None:
        tmp = STATE_PATH.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1))
        tmp.replace(STATE_PATH)

    @classmethod
    def load(cls) -> State | None:
        try:
            return cls(**json.loads(STATE_PATH.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            return cls()


# -- kernel audit -----------------------------------------------------------------------------

def audit_status() -> dict:
    """`auditctl -s` as a dict of ints (enabled, failure, pid, rate_limit, backlog_limit, ...)."""
    out = run(["auditctl", "-s"]).stdout
    status = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
            status[parts[0]] = int(parts[1])
    return status


def audit_rules() -> list[str]:
    lines = [ln.strip() for ln in run(["auditctl", "-l"]).stdout.splitlines()]
    return [ln for ln in lines if ln and ln != "No rules"]


def restore_audit(state: State, log) -> None:
    """Remove our rules, stop our auditd, and put back the status values we found."""
    for args in reversed(state.added_rules):
        undo = list(args)
        if undo[0] == "-a":
            undo[0] = "-d"
        elif undo[0] == "-w":
            undo[0] = "-W"
        run(["auditctl", *undo], check=False)
    if state.audit_status and audit_rules() != state.audit_rules:
        log(f"audit rules differ from the saved ones after removing ours; reloading the {len(state.audit_rules)} saved")
        run(["auditctl", "-D"], check=False)
        for line in state.audit_rules:
            run(["auditctl", *shlex.split(line)], check=False)
    if state.auditd_pid:
        stop_pid(state.auditd_pid, "auditd", log)
        if not state.auditd_pidfile_existed:
            Path("/run/auditd.pid").unlink(missing_ok=True)
    st = state.audit_status
    if st:
        for opt, key in (("-b", "backlog_limit"), ("-r", "rate_limit"), ("-f", "failure"),
                         ("--backlog_wait_time", "backlog_wait_time"), ("-e", "enabled")):
            if key in st:
                run(["auditctl", opt, str(st[key])], check=False)


# -- processes --------------------------------------------------------------------------------

def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def stop_pid(pid: int, expect: str, log, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, one process we started, after checking it is still ours (by name)."""
    argv = cmdline(pid)
    if not argv or not any(expect in a for a in argv[:3]):
        return  # gone, or the pid now belongs to something else
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not alive(pid):
                return
        time.sleep(0.05)
    log(f"{expect} (pid {pid}) ignored SIGTERM; killing it")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def pids_of_uid(uid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if d.stat().st_uid == uid:
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text` (our work directory: only ours can)."""
    me = os.getpid()
    return [int(d.name) for d in Path("/proc").iterdir()
            if d.name.isdigit() and int(d.name) != me and any(text in a for a in cmdline(int(d.name)))]


# -- users ------------------------------------------------------------------------------------

def lab_user(name: str) -> pwd.struct_passwd | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry


def remove_user(name: str, log) -> None:
    entry = lab_user(name)
    if entry is None:
        return
    if entry.pw_gecos.split(",")[0] != GECOS:
        log(f"user {name} exists but is not the lab's ({entry.pw_gecos!r}); left alone")
        return
    for pid in pids_of_uid(entry.pw_uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.1)
    run(["userdel", "-r", "-f", name], check=False)


# -- namespaces -------------------------------------------------------------------------------

def netns_list() -> list[str]:
    return [ln.split()[0] for ln in run(["ip", "netns", "list"]).stdout.splitlines() if ln.strip()]


def remove_netns(name: str) -> None:
    if name in netns_list():
        # processes still inside keep the namespace alive but not the name; ours were stopped before
        run(["ip", "netns", "delete", name], check=False)


# -- the whole undo ---------------------------------------------------------------------------

def cleanup(state: State, log) -> list[str]:
    """Undo everything `state` records, in reverse order of setup; idempotent. Returns problems left."""
    for c in state.containers:  # [--root DIR, id]: runc's state lives in the work dir, not /run/runc
        if len(c) == 3 and Path(c[1]).is_dir():
            run(["runc", c[0], c[1], "delete", "--force", c[2]], check=False)
    for pid in reversed(state.pids):
        _stop_any(pid, state.workdir, log)
    if state.workdir:
        for pid in pids_mentioning(state.workdir):
            _stop_any(pid, state.workdir, log)
    for name in state.netns:  # whatever still runs in the lab's hosts (a tunnel left by a crashed run)
        if name in netns_list():
            for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
                stop_pid(int(pid), "", log)
    for name in state.users:
        remove_user(name, log)
    for name in state.netns:
        remove_netns(name)
    if state.netns and not state.netns_dir_existed:
        # `ip netns add` made it a bind mount of itself; undo both, only if no namespace is left in it
        if Path("/run/netns").is_dir() and not any(Path("/run/netns").iterdir()):
            run(["umount", "/run/netns"], check=False)
            try:
                Path("/run/netns").rmdir()
            except OSError:
                pass
    if state.audit_status or state.added_rules or state.auditd_pid:
        try:
            restore_audit(state, log)
        except LabError as e:
            log(f"restoring audit: {e}")
    if state.workdir and Path(state.workdir).is_dir() and Path(state.workdir).name.startswith("trailhound-lab-"):
        _umount_under(state.workdir)
        shutil.rmtree(state.workdir, ignore_errors=True)
    return verify(state)


def _stop_any(pid: int, workdir: str, log) -> None:
    """Stop a process we recorded, if it still runs the command we started (mentions our workdir
    or is one of the lab's own tools)."""
    argv = cmdline(pid)
    if not argv:
        return
    if (workdir and any(workdir in a for a in argv)) or os.path.basename(argv[0]) in LAB_TOOLS:
        stop_pid(pid, os.path.basename(argv[0]) or argv[0], log)


def _umount_under(path: str) -> None:
    try:
        mounts = [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return
    for m in sorted((m for m in mounts if m.startswith(path)), key=len, reverse=True):
        run(["umount", "-l", m], check=False)


def verify(state: State) -> list[str]:
    """What is still different from before the run (empty when fully restored)."""
    problems = []
    if state.audit_status:
        try:
            if audit_rules() != state.audit_rules:
                problems.append("audit rules differ from the saved ones")
            now = audit_status()
            for key in ("enabled", "backlog_limit", "rate_limit", "failure"):
                if key in state.audit_status and now.get(key) != state.audit_status[key]:
                    problems.append(f"audit {key} is {now.get(key)}, was {state.audit_status[key]}")
            if state.auditd_pid and now.get("pid") == state.auditd_pid:
                problems.append(f"the lab's auditd (pid {state.auditd_pid}) is still the audit daemon")
        except LabError as e:
            problems.append(str(e))
    left = set(state.netns) & set(netns_list())
    if left:
        problems.append(f"network namespaces left: {sorted(left)}")
    for name in state.users:
        entry = lab_user(name)
        if entry is not None and entry.pw_gecos.split(",")[0] == GECOS:
            problems.append(f"user {name} still exists")
    if state.workdir and Path(state.workdir).exists():
        problems.append(f"work directory {state.workdir} still exists")
    return problems
