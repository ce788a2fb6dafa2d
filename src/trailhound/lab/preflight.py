"""Checks before the lab changes anything; each failure is a refusal with its reason (exit code 2)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

# tool → the Debian package that provides it
PACKAGES = {
    "sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client", "scp": "openssh-client",
    "sshpass": "sshpass", "auditd": "auditd", "auditctl": "auditd", "ip": "iproute2",
    "setpriv": "util-linux", "useradd": "passwd", "runc": "runc", "busybox": "busybox-static",
    "rsync": "rsync", "check_by_ssh": "monitoring-plugins-standard", "git": "git",
}
REQUIRED = ("sshd", "ssh", "ssh-keygen", "scp", "sshpass", "auditd", "auditctl", "ip", "setpriv", "useradd")
# plus where Debian puts the monitoring plugins (check_by_ssh)
SBIN = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin:/usr/lib/nagios/plugins"


class Refusal(Exception):
    """The lab cannot run here; the message says why and what to do."""


def which(tool: str) -> str | None:
    return shutil.which(tool, path=SBIN)


def missing_tools(tools) -> list[str]:
    return [t for t in tools if which(t) is None]


def install_hint(tools) -> str:
    pkgs = sorted({PACKAGES.get(t, t) for t in tools})
    return f"apt-get install {' '.join(pkgs)}"


def is_static(path: str) -> bool:
    """Whether the ELF executable at `path` runs without a dynamic loader (no PT_INTERP header):
    the container scenario copies busybox alone into an empty root file system."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF":
                return False
            wide, endian = head[4] == 2, "<" if head[5] == 1 else ">"
            if wide:
                phoff, = struct.unpack_from(endian + "Q", head, 32)
                phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
            else:
                phoff, = struct.unpack_from(endian + "I", head, 28)
                phentsize, phnum = struct.unpack_from(endian + "HH", head, 42)
            fh.seek(phoff)
            table = fh.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from(endian + "I", table, i * phentsize)[0] != 3  # PT_INTERP
               for i in range(min(phnum, len(table) // max(phentsize, 1))))


def scenario_problem(scenario, which: Callable[[str], str | None] | None = None,
                     static: Callable[[str], bool] = is_static) -> str | None:
    """Why `scenario` cannot run here (its own tools: `Scenario.needs`), or None."""
    which = which or globals()["which"]  # looked up per call: tests replace the module's `which`
    missing = [t for t in scenario.needs if which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} ({install_hint(missing)})"
    if "busybox" in scenario.needs and (busybox := which("busybox")) is not None and not static(busybox):
        return (f"{busybox} is dynamically linked; the container needs a static busybox "
                f"({install_hint(['busybox'])})")
    return None


def plan(scenarios: Iterable, named: bool, which: Callable[[str], str | None] | None = None,
         static: Callable[[str], bool] = is_static) -> dict[str, str]:
    """The scenarios that cannot run here, with the reason: skipped when the user chose none
    (all scenarios), a `Refusal` when the user named them."""
    problems = {s.name: p for s in scenarios if (p := scenario_problem(s, which, static))}
    if problems and named:
        raise Refusal("; ".join(f"scenario {name} cannot run: {why}" for name, why in problems.items()))
    return problems


def check(optional_tools=()) -> None:
    """Raise `Refusal` unless the lab can run: root, kernel audit, no other audit daemon, the tools,
    network namespaces. `optional_tools` (those the chosen scenarios need) are required too."""
    if os.geteuid() != 0:
        raise Refusal("the lab must run as root: it creates network namespaces, users and audit rules")
    missing = missing_tools(REQUIRED + tuple(optional_tools))
    if missing:
        raise Refusal(f"missing {', '.join(missing)}; install with: {install_hint(missing)}")
    auditctl = which("auditctl")
    assert auditctl is not None  # REQUIRED: missing_tools found it
    p = subprocess.run([auditctl, "-s"], capture_output=True, text=True)
    if p.returncode != 0:
        raise Refusal(f"no kernel audit: `auditctl -s` failed: {(p.stderr or p.stdout).strip()}")
    status = {ln.split()[0]: ln.split()[1] for ln in p.stdout.splitlines() if len(ln.split()) >= 2}
    if status.get("enabled") == "2":
        raise Refusal("kernel audit is locked (enabled 2): its rules cannot be changed until reboot")
    if status.get("pid", "0") != "0":
        raise Refusal(f"an audit daemon is already running (pid {status['pid']}); the lab runs its own "
                      "auditd with a private log, so stop it first (and restart it afterwards)")
    if not Path("/proc/self/ns/net").exists():
        raise Refusal("network namespaces are not available (no /proc/self/ns/net)")
    ip = which("ip")
    assert ip is not None  # REQUIRED: missing_tools found it
    p = subprocess.run([ip, "netns", "list"], capture_output=True, text=True)
    if p.returncode != 0:
        raise Refusal(f"network namespaces are not available: `ip netns list` failed: {p.stderr.strip()}")
    p = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if p.returncode != 0:
        raise Refusal(f"network namespaces are not available: `unshare --net` failed: {p.stderr.strip()}")
    try:
        loginuid = Path("/proc/self/loginuid").read_text().strip()
    except OSError:
        raise Refusal("the kernel has no login uids (/proc/self/loginuid): it lacks CONFIG_AUDITSYSCALL") from None
    if status.get("loginuid_immutable", "0") != "0" and loginuid != "4294967295":
        raise Refusal("login uids are immutable (auditctl --loginuid-immutable): the lab cannot give its "
                      "scenarios their own audit sessions")
