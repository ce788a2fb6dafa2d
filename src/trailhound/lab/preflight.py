"""Checks before the lab changes anything; each failure is a refusal with its reason (exit code 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# tool → the Debian package that provides it
PACKAGES = {
    "sshd": "openssh-server", "ssh": "openssh-client", "ssh-keygen": "openssh-client", "scp": "openssh-client",
    "sshpass": "sshpass", "auditd": "auditd", "auditctl": "auditd", "ip": "iproute2",
    "setpriv": "util-linux", "useradd": "passwd", "runc": "runc", "busybox": "busybox-static",
}
REQUIRED = ("sshd", "ssh", "ssh-keygen", "scp", "sshpass", "auditd", "auditctl", "ip", "setpriv", "useradd")
SBIN = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"


class Refusal(Exception):
    """The lab cannot run here; the message says why and what to do."""


def which(tool: str) -> str | None:
    return shutil.which(tool, path=SBIN)


def missing_tools(tools) -> list[str]:
    return [t for t in tools if which(t) is None]


def install_hint(tools) -> str:
    pkgs = sorted({PACKAGES.get(t, t) for t in tools})
    return f"apt-get install {' '.join(pkgs)}"


def check(optional_tools=()) -> None:
    """Raise `Refusal` unless the lab can run: root, kernel audit, no other audit daemon, the tools,
    network namespaces. `optional_tools` (those the chosen scenarios need) are required too."""
    if os.geteuid() != 0:
        raise Refusal("the lab must run as root: it creates network namespaces, users and audit rules")
    missing = missing_tools(REQUIRED + tuple(optional_tools))
    if missing:
        raise Refusal(f"missing {', '.join(missing)}; install with: {install_hint(missing)}")
    p = subprocess.run([which("auditctl"), "-s"], capture_output=True, text=True)
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
    p = subprocess.run([which("ip"), "netns", "list"], capture_output=True, text=True)
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
