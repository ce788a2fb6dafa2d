"""Set up the two-host lab, run scenarios in it, capture their logs, and put the machine back.

Hosts are network namespaces on one veth pair (attacker 10.203.77.1, target 10.203.77.2).
* target: the real sshd (openssh-server) in its own mount namespace: private /run (its privsep
  directory, motd), private /dev whose /dev/log is the lab's syslog socket, and wtmp/btmp/lastlog
  bound to scratch files so logins leave no trace in the host's logs.
* attacker: each scenario's shell runs in its own mount namespace where /root, /home and /tmp are
  lab directories (the attacker's keys, known_hosts, the victim's workstation home with id_rsa), and
  with its own login uid, hence its own audit session.
* auditd (Debian's) runs with a private configuration and log; `AUDIT_RULES` are added next to the
  rules found, and removed after.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import capture, preflight
from .scenarios import BY_NAME, SCENARIOS, Scenario, render
from .syslog import SyslogReceiver
from .system import (
    ADDR,
    GECOS,
    HOSTNAME,
    LOCK_PATH,
    NETNS,
    USERS,
    VETH,
    LabError,
    State,
    alive,
    audit_rules,
    audit_status,
    clean_env,
    cleanup,
    lab_user,
    netns_list,
    run,
)

if TYPE_CHECKING:
    from .live import LiveWatch

SETTLE = 1.5  # seconds after a scenario's shell exits for sshd to log the session's end
WATCH_SETTLE = 2.0  # seconds the live watch is given after the last scenario before it is stopped


def _created_user(name: str) -> pwd.struct_passwd:
    """The passwd entry of a user the lab created (useradd succeeded, so it exists)."""
    entry = lab_user(name)
    if entry is None:
        raise LabError(f"user {name} is missing although the lab created it")
    return entry


def _tool(name: str) -> str:
    """The path of a tool the preflight found."""
    path = preflight.which(name)
    if path is None:
        raise LabError(f"{name} is missing; install with: {preflight.install_hint([name])}")
    return path


def audit_rule_set(workdir: Path) -> list[list[str]]:
    """The audit rules the lab adds (auditctl arguments)."""
    victim_ws = workdir / "attacker/home" / USERS["victim"] / ".ssh"
    return [
        ["-a", "always,exit", "-F", "arch=b64", "-S", "execve,execveat", "-k", "exec"],
        ["-a", "always,exit", "-F", "arch=b32", "-S", "execve,execveat", "-k", "exec"],
        ["-a", "always,exit", "-F", "arch=b64", "-S", "connect", "-k", "net"],
        ["-a", "always,exit", "-F", "arch=b64", "-S", "accept,accept4", "-k", "net"],
        ["-a", "always,exit", "-F", "arch=b64", "-S", "setsid", "-k", "session"],
        ["-w", "/etc/ssh", "-p", "wa", "-k", "ssh_config"],
        ["-w", f"/home/{USERS['victim']}/.ssh", "-p", "wa", "-k", "ssh_keys"],
        ["-w", f"/home/{USERS['admin']}/.ssh", "-p", "wa", "-k", "ssh_keys"],
        # the victim's workstation keys on the attacker host: reads too (key theft)
        ["-w", str(victim_ws), "-p", "rwa", "-k", "ssh_keys"],
    ]


AUDITD_CONF = """\
local_events = yes
write_logs = yes
log_file = {log}
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 20
max_log_file = 0
max_log_file_action = IGNORE
num_logs = 0
priority_boost = 4
name_format = USER
name = {host}
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
plugin_dir = {plugins}
end_of_event_timeout = 2
"""

SSHD_CONF = """\
ListenAddress {target}
ListenAddress 127.0.0.1
HostKey {dir}/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers {users}
AllowTcpForwarding yes
PrintMotd no
MaxStartups 50
SyslogFacility AUTH
LogLevel INFO
Subsystem sftp /usr/lib/openssh/sftp-server
"""

# Run in the target namespace (ip netns exec gives a private, slave mount namespace).
SSHD_LAUNCH = """\
set -e
export LIBMOUNT_UTAB={d}/utab  # mount(8) would otherwise create /run/mount/utab on the host
mount -t tmpfs -o mode=0755 thlab-run /run
mkdir -m 0755 /run/sshd
mount --bind /dev {d}/olddev
mount -t tmpfs -o mode=0755 thlab-dev /dev
for n in null zero full random urandom tty; do touch /dev/$n; mount --bind {d}/olddev/$n /dev/$n; done
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 thlab-pts /dev/pts
ln -s pts/ptmx /dev/ptmx
ln -s /proc/self/fd /dev/fd
touch /dev/log
mount --bind {sock} /dev/log
umount -l {d}/olddev
for f in wtmp btmp lastlog; do
  if [ -e /var/log/$f ]; then : > {d}/$f; mount --bind {d}/$f /var/log/$f; fi
done
unset LIBMOUNT_UTAB
# a child, not exec: the kernel caches a task's audit PROCTITLE at its first audited syscall, so an
# exec'd sshd would carry this launcher's (Python's) command line in every record
/usr/sbin/sshd -D -f {d}/sshd_config
"""

# Run in the attacker network namespace and a private mount namespace: the attacker host's own /root, /home and /tmp, then a login uid
# (a fresh audit session) for the scenario's shell. The mounts happen before, outside the session.
ATTACKER_LAUNCH = """\
set -e
export LIBMOUNT_UTAB={a}/utab
mount --bind {a}/root /root
mount --bind {a}/home /home
mount --bind {a}/tmp /tmp
unset LIBMOUNT_UTAB
cd {home}
echo {uid} > /proc/self/loginuid
{become}sh -c "$0"  # a child (fresh task, own PROCTITLE), see SSHD_LAUNCH
"""


@dataclass
class Window:
    name: str
    title: str
    techniques: list[str]
    actor: str
    benign: bool
    commands: str
    start: float = 0.0
    end: float = 0.0
    exit_code: int | None = None
    output: str = ""
    skipped: str | None = None


@dataclass
class Capture:
    windows: list[Window]
    audit_lines: list[str]  # the lab's events, whole run
    auth_lines: list[str]
    run_start: float
    run_end: float
    notes: list[str] = field(default_factory=list)
    live: list | None = None  # with `watch_rules`: per scenario, what the live watch raised (`live.ScenarioDelay`)
    live_alerts: list[dict] | None = None  # the alerts the live watch wrote, in the order written

    def scenario_audit(self, w: Window) -> list[str]:
        return capture.audit_lines_between(capture.audit_events(self.audit_lines), w.start, w.end)

    def scenario_auth(self, w: Window) -> list[str]:
        return capture.syslog_lines_between(self.auth_lines, w.start, w.end)


class Interrupted(Exception):
    pass


def _raise_interrupt(signum, frame):
    raise Interrupted(f"signal {signal.Signals(signum).name}")


class Lab:
    """The lab as a context manager. With `watch_rules`, a real `trailhound watch` process (`live.LiveWatch`)
    follows the lab's audit.log and auth.log with those rules from the end of setup until `collect`."""

    def __init__(self, scenarios: list[Scenario], log=print, keep: bool = False,
                 watch_rules: list | None = None) -> None:
        self.scenarios = scenarios
        self.log = log
        self.keep = keep
        self.watch_rules = watch_rules
        self.watch: LiveWatch | None = None  # while it runs
        self.state = State(owner_pid=os.getpid())
        self.password = "Lab-" + secrets.token_urlsafe(9)
        self.sshd: subprocess.Popen | None = None  # its launcher shell
        self.sshd_pid = 0  # the listening sshd (from its PidFile)
        self.launchers: set[int] = set()  # scenario launcher shells: plumbing, left out of the capture
        self.agents: set[int] = set()  # agent launchers (plumbing too), whose children are the lab's
        self.syslog: SyslogReceiver | None = None
        self.auditd: subprocess.Popen | None = None
        self.ses_floor = capture.UNSET
        self.lock_fd: int | None = None
        self.w = Path()
        self.problems: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self._old_handlers = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
        try:
            self._lock()  # refused when another run holds it: then nothing here is ours to undo
        except BaseException:
            self._restore_handlers()
            raise
        try:
            recover(self.log)
            self._setup()
        except BaseException:
            self._teardown()
            self._restore_handlers()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.keep:
            self.log(f"--keep: left running; undo with `trailhound lab cleanup` (state in {self.state_path})")
            self._unlock()
        else:
            self._teardown()
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for s, h in self._old_handlers.items():
            signal.signal(s, h)

    @property
    def state_path(self) -> str:
        from .system import STATE_PATH
        return str(STATE_PATH)

    def _lock(self) -> None:
        self.lock_fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.lock_fd)
            self.lock_fd = None
            raise preflight.Refusal("another lab run holds the lock (/run/trailhound-lab.lock)") from None

    def _unlock(self) -> None:
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
            LOCK_PATH.unlink(missing_ok=True)

    def _teardown(self) -> None:
        # a second signal must not cut the restore short
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            self._stop_services()
            left = cleanup(self.state, self.log)
            if not left:
                from .system import STATE_PATH
                STATE_PATH.unlink(missing_ok=True)
            for p in left:
                self.log(f"teardown: {p}")
            self.problems += left
        finally:
            self._unlock()
            for s, h in previous.items():
                signal.signal(s, h)

    def _stop_watch(self, settle: float = 0.0) -> None:
        if self.watch is not None:
            self.watch.stop(settle)
            if self.watch.exit_code not in (0, None):
                self.problems.append(f"watch exited {self.watch.exit_code}: {self.watch.tail_log()}")

    def _stop_services(self) -> None:
        from .system import stop_pid
        self._stop_watch()
        if self.sshd_pid:
            stop_pid(self.sshd_pid, "sshd", self.log)
            self.sshd_pid = 0
        if self.sshd is not None:
            try:
                self.sshd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                stop_pid(self.sshd.pid, "sh", self.log)
            self.sshd = None
        for ns in self.state.netns:  # whatever a scenario left running in our hosts (tunnels...)
            if ns in netns_list():
                for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
                    stop_pid(int(pid), "", self.log)
        if self.syslog is not None:
            self.syslog.close()
            self.syslog = None
        if self.auditd is not None:
            stop_pid(self.auditd.pid, "auditd", self.log)
            self.auditd = None

    # -- setup --------------------------------------------------------------------------------

    def _setup(self) -> None:
        # not under /tmp: the attacker host gets its own /tmp, which would hide the work dir
        self.w = Path(tempfile.mkdtemp(prefix="trailhound-lab-", dir="/var/tmp"))
        os.chmod(self.w, 0o755)
        self.state.workdir = str(self.w)
        self.state.save()
        for user in USERS.values():
            if lab_user(user) is not None:
                raise LabError(f"user {user} already exists and is not a leftover of the lab")
        for ns in NETNS.values():
            if ns in netns_list():
                raise LabError(f"network namespace {ns} already exists")
        self._setup_users()
        self._setup_netns()
        self._setup_keys()
        self._setup_audit()  # after the users and keys: the watched directories must exist
        self._start_sshd()
        if any(s.name == "container_ssh" and not preflight.scenario_problem(s) for s in self.scenarios):
            self._setup_container()
        assert self.auditd is not None  # _setup_audit started it
        if self.watch_rules is not None:
            self._start_watch()
        self.log(f"lab ready: sshd {ADDR['target']} (pid {self.sshd_pid}), auditd pid {self.auditd.pid}, "
                 f"work dir {self.w}")

    def _setup_audit(self) -> None:
        st = self.state
        st.audit_status = audit_status()
        st.audit_rules = audit_rules()
        st.auditd_pidfile_existed = Path("/run/auditd.pid").exists()
        st.save()
        conf = self.w / "auditd"
        (conf / "plugins.d").mkdir(parents=True)
        (self.w / "audit").mkdir()
        (conf / "auditd.conf").write_text(AUDITD_CONF.format(
            log=self.w / "audit/audit.log", host=HOSTNAME, plugins=conf / "plugins.d"))
        os.chmod(conf / "auditd.conf", 0o640)
        self.auditd = subprocess.Popen([_tool("auditd"), "-n", "-c", str(conf)],
                                       stdout=subprocess.DEVNULL, stderr=open(self.w / "auditd.stderr", "w"))
        st.auditd_pid = self.auditd.pid
        st.save()
        deadline = time.monotonic() + 10
        while audit_status().get("pid") != self.auditd.pid:
            if self.auditd.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"auditd did not start: {(self.w / 'auditd.stderr').read_text().strip()[-500:]}")
            time.sleep(0.1)
        run(["auditctl", "-b", "8192"])
        run(["auditctl", "-e", "1"])
        for args in audit_rule_set(self.w):
            st.added_rules.append(args)
            st.save()
            try:
                run(["auditctl", *args])
            except LabError:
                st.added_rules.pop()
                st.save()
                if "arch=b32" in args:
                    continue  # a kernel without 32-bit syscalls
                raise
        # session ids only grow: the id a new login uid gets now is the lab's first
        out = run(["sh", "-c", "echo 0 > /proc/self/loginuid && cat /proc/self/sessionid"]).stdout.strip()
        self.ses_floor = int(out) + 1  # the probe's own session is not a scenario's

    def _setup_users(self) -> None:
        for role, user in USERS.items():
            self.state.users.append(user)
            self.state.save()
            run(["useradd", "-m", "-c", GECOS, "-s", "/bin/bash", "-U", user])
            pw = self.password if role == "victim" else secrets.token_urlsafe(16)
            run(["chpasswd"], input=f"{user}:{pw}\n")
            ssh = Path(f"/home/{user}/.ssh")
            ssh.mkdir(mode=0o700, exist_ok=True)
            e = _created_user(user)
            os.chown(ssh, e.pw_uid, e.pw_gid)

    def _setup_netns(self) -> None:
        a, t = NETNS["attacker"], NETNS["target"]
        self.state.netns_dir_existed = Path("/run/netns").exists()
        for ns in (a, t):
            self.state.netns.append(ns)
            self.state.save()
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "link", "add", VETH["attacker"], "netns", a, "type", "veth", "peer", "name", VETH["target"],
             "netns", t])
        for role, ns in NETNS.items():
            run(["ip", "-n", ns, "addr", "add", f"{ADDR[role]}/24", "dev", VETH[role]])
            run(["ip", "-n", ns, "link", "set", VETH[role], "up"])

    def _keygen(self, path: Path, kind: str, comment: str) -> None:
        run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)])

    def _setup_keys(self) -> None:
        a = self.w / "attacker"
        for d in ("root/.ssh", "tmp"):
            (a / d).mkdir(parents=True, exist_ok=True)
        os.chmod(a / "tmp", 0o1777)
        os.chmod(a / "root/.ssh", 0o700)
        for role, user in USERS.items():
            e = _created_user(user)
            ws = a / "home" / user / ".ssh"  # the user's home on the attacker host (their workstation)
            ws.mkdir(parents=True, exist_ok=True)
            key = ws / ("id_rsa" if role == "victim" else "id_ed25519")
            self._keygen(key, "rsa" if role == "victim" else "ed25519", f"{user}@workstation")
            auth = Path(f"/home/{user}/.ssh/authorized_keys")
            auth.write_text(key.with_suffix(".pub").read_text())
            for p in (auth,):
                os.chown(p, e.pw_uid, e.pw_gid)
                os.chmod(p, 0o600)
            for p in [ws.parent, ws, *ws.iterdir()]:
                os.chown(p, e.pw_uid, e.pw_gid)
        sshd = self.w / "target"
        sshd.mkdir()
        (sshd / "olddev").mkdir()
        self._keygen(sshd / "ssh_host_ed25519_key", "ed25519", "")
        (sshd / "sshd_config").write_text(SSHD_CONF.format(
            target=ADDR["target"], dir=sshd, users=" ".join(USERS.values())))
        # the admin knows the target and the internal host behind it (default options, no host key prompt)
        hostkey = " ".join((sshd / "ssh_host_ed25519_key.pub").read_text().split()[:2])
        known = a / "home" / USERS["admin"] / ".ssh/known_hosts"
        known.write_text(f"{ADDR['target']} {hostkey}\n127.0.0.1 {hostkey}\n")
        e = _created_user(USERS["admin"])
        os.chown(known, e.pw_uid, e.pw_gid)
        self._setup_automation()

    def _setup_automation(self) -> None:
        """What the benign scenarios need: the admin's automation key (authorized) and a deploy key
        (that the provisioning agent installs), an ssh_config naming the bastion, and on the target
        a directory to back up and a bare git repository."""
        admin = USERS["admin"]
        e = _created_user(admin)
        ws = self.w / "attacker/home" / admin / ".ssh"
        self._keygen(ws / "automation_ed25519", "ed25519", "automation@ci")
        self._keygen(ws / "deploy_ed25519", "ed25519", "deploy@provisioner")
        (ws / "config").write_text(f"Host db-internal\n    HostName 127.0.0.1\n    User {admin}\n"
                                   f"    ProxyJump {admin}@{ADDR['target']}\n")
        for p in ws.iterdir():
            os.chown(p, e.pw_uid, e.pw_gid)
        os.chmod(ws / "config", 0o600)
        auth = Path(e.pw_dir) / ".ssh/authorized_keys"
        with open(auth, "a") as f:
            f.write((ws / "automation_ed25519.pub").read_text())
        data = Path(e.pw_dir) / "data"
        data.mkdir(exist_ok=True)
        (data / "orders.csv").write_text("id,total\n1,42\n")
        (data / "notes.txt").write_text("nightly backup source\n")
        (Path(e.pw_dir) / "repos").mkdir(exist_ok=True)
        if preflight.which("git"):
            run(["git", "init", "-q", "--bare", f"{e.pw_dir}/repos/app.git"])
        for d in (data, Path(e.pw_dir) / "repos"):
            for path in [d, *d.rglob("*")]:
                os.chown(path, e.pw_uid, e.pw_gid)

    def _start_sshd(self) -> None:
        d = self.w / "target"
        sock = self.w / "syslog.sock"
        self.syslog = SyslogReceiver(sock, self.w / "auth.log", HOSTNAME)
        script = SSHD_LAUNCH.format(d=d, sock=sock)
        self.sshd = subprocess.Popen(["ip", "netns", "exec", NETNS["target"], "sh", "-c", script],
                                     stdout=subprocess.DEVNULL, stderr=open(d / "sshd.stderr", "w"),
                                     env=clean_env(), start_new_session=True)
        self.state.pids.append(self.sshd.pid)
        self.state.save()
        deadline = time.monotonic() + 10
        while not any("Server listening on " + ADDR["target"] in ln for ln in self.syslog.lines()):
            if self.sshd.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"sshd did not start: {(d / 'sshd.stderr').read_text().strip()[-800:]}")
            time.sleep(0.1)
        self.sshd_pid = int((d / "sshd.pid").read_text().split()[0])
        self.state.pids.append(self.sshd_pid)
        self.state.save()

    def _start_watch(self) -> None:
        from .live import LiveWatch, WatchError

        self.watch = LiveWatch(self.w, [self.w / "audit/audit.log", self.w / "auth.log"], self.watch_rules or [],
                               log=self.log)
        try:
            self.watch.start()
        except WatchError as e:
            raise LabError(str(e)) from None
        finally:
            if self.watch.pid:  # its command line names the work dir: a crashed run's cleanup stops it too
                self.state.pids.append(self.watch.pid)
                self.state.save()

    def _setup_container(self) -> None:
        bundle = self.w / "container"
        rootfs = bundle / "rootfs"
        for d in ("bin", "usr/bin", "etc", "root/.ssh", "tmp", "proc", "dev", "sys"):
            (rootfs / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(_tool("busybox"), rootfs / "bin/busybox")
        os.symlink("busybox", rootfs / "bin/sh")
        shutil.copy2("/usr/bin/ssh", rootfs / "usr/bin/ssh")
        # the ssh binary's libraries, at the same paths
        for line in run(["ldd", "/usr/bin/ssh"]).stdout.splitlines():
            parts = line.split()
            lib = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if lib.startswith("/"):
                dest = rootfs / lib.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(os.path.realpath(lib), dest)
        (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (rootfs / "etc/group").write_text("root:x:0:\n")
        key = rootfs / "root/.ssh/id_rsa"
        shutil.copy2(self.w / "attacker/home" / USERS["victim"] / ".ssh/id_rsa", key)
        os.chown(key, 0, 0)
        os.chmod(key, 0o600)
        run(["runc", "spec", "--bundle", str(bundle)])
        spec = json.loads((bundle / "config.json").read_text())
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["/usr/bin/ssh", "-i", "/root/.ssh/id_rsa", "-o", "StrictHostKeyChecking=no",
                                   f"{USERS['victim']}@{ADDR['target']}", "id; hostname"]
        spec["root"] = {"path": "rootfs", "readonly": False}
        spec["hostname"] = "ssh-client-ctr"
        spec["linux"]["namespaces"] = [
            {"type": n["type"], "path": f"/run/netns/{NETNS['attacker']}"} if n["type"] == "network" else n
            for n in spec["linux"]["namespaces"]]
        (bundle / "config.json").write_text(json.dumps(spec, indent=1))
        self.state.containers.append(["--root", str(self.w / "runc"), "thlab-ssh"])
        self.state.save()

    # -- scenarios ----------------------------------------------------------------------------

    def values(self) -> dict[str, str]:
        deploy = self.w / "attacker/home" / USERS["admin"] / ".ssh/deploy_ed25519.pub"
        return {"TARGET": ADDR["target"], "VICTIM": USERS["victim"], "ADMIN": USERS["admin"],
                "PASSWORD": self.password,
                "BUNDLE": f"{self.w / 'container'}",
                "DEPLOY_PUB": deploy.read_text().strip() if deploy.exists() else "",
                "CHECK_BY_SSH": preflight.which("check_by_ssh") or "check_by_ssh"}

    def run_scenario(self, s: Scenario) -> Window:
        commands = render(s.script, self.values())
        if s.name == "container_ssh":
            commands = commands.replace("runc run", f"runc --root {self.w / 'runc'} run")
        win = Window(s.name, s.title, list(s.techniques), s.actor, s.benign, commands)
        problem = preflight.scenario_problem(s)
        if problem:  # preflight.plan said so before the run; its setup was left out
            win.skipped = problem
            return win
        if s.actor == "admin":
            e = _created_user(USERS["admin"])
            home, uid, user = e.pw_dir, e.pw_uid, e.pw_name
            become = f"setpriv --reuid={uid} --regid={e.pw_gid} --init-groups "
        else:
            home, uid, user, become = "/root", 0, "root", ""
        launch = ATTACKER_LAUNCH.format(a=self.w / "attacker", home=home, uid=uid, become=become)
        win.start = time.time()
        if s.agent and not self._run_agent(render(s.agent, self.values()), win):
            win.end = time.time()
            return win  # the scenario failed (its exit code and output say why); the run goes on
        # nsenter + unshare rather than `ip netns exec`, whose fresh /sys would hide the cgroup
        # mounts runc needs; the mount namespace is a slave copy of the host's
        p = subprocess.Popen(["nsenter", f"--net=/run/netns/{NETNS['attacker']}", "unshare", "--mount",
                              "--propagation", "slave", "sh", "-c", launch, commands],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=clean_env(home, user), start_new_session=True)
        self.state.pids.append(p.pid)
        self.launchers.add(p.pid)
        try:
            out, _ = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            win.output = "timed out after 120s\n"
        win.exit_code = p.returncode
        win.output += out.decode(errors="replace")[-4000:]
        time.sleep(SETTLE)
        win.end = time.time()
        return win

    def _run_agent(self, script: str, win: Window) -> bool:
        """A scenario's agent: on the target, as root with no login uid (a service, not a session),
        its own process group. Its launcher is plumbing (left out); its children are tracked.
        False (with the window's exit code and output set) when it failed."""
        launch = "echo 4294967295 > /proc/self/loginuid 2>/dev/null; cd /; sh -c \"$0\""
        p = subprocess.Popen(["ip", "netns", "exec", NETNS["target"], "sh", "-c", launch, script],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=clean_env(), start_new_session=True)
        self.state.pids.append(p.pid)
        self.agents.add(p.pid)
        try:
            out, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
        win.output += f"agent exit {p.returncode}: " + out.decode(errors="replace")[-2000:] + "\n"
        if p.returncode != 0:
            win.exit_code = p.returncode
            return False
        return True

    # -- capture ------------------------------------------------------------------------------

    def collect(self, windows: list[Window], stop: bool = True) -> Capture:
        """Stop sshd and auditd (so both logs are complete; not with `stop=False`, for --keep) and
        cut out the lab's events."""
        sshd_pid = self.sshd_pid
        ran = [w for w in windows if w.skipped is None]
        run_start = min((w.start for w in ran), default=time.time())
        run_end = max((w.end for w in ran), default=run_start)
        live = live_alerts = None
        if self.watch is not None:
            self._stop_watch(settle=WATCH_SETTLE)
            live = self.watch.delays(windows)
            live_alerts = [s.doc for s in self.watch.seen]
            self.watch = None
        if stop:
            self._stop_services()
        raw = capture.read_lines(self.w / "audit/audit.log")
        tracked = ({sshd_pid} if sshd_pid else set()) | self.agents
        events = capture.lab_events(capture.audit_events(raw), self.ses_floor, tracked,
                                    exclude=self.launchers | self.agents)
        audit_lines = capture.audit_lines_between(events, run_start, run_end)
        auth = capture.syslog_lines_between(
            capture.read_lines(self.w / "auth.log"), run_start, run_end)
        notes = [f"audit: {len(raw)} raw lines, {sum(len(e.lines) for e in events)} of the lab, "
                 f"{len(audit_lines)} inside the scenario windows"]
        lost = audit_status().get("lost")
        if lost:
            notes.append(f"kernel audit 'lost' counter: {lost}")
        return Capture(windows, audit_lines, auth, run_start, run_end, notes, live, live_alerts)


def recover(log) -> None:
    """Undo what a crashed or --keep run left (from the state file), before anything else."""
    state = State.load()
    if state is None:
        return
    if state.owner_pid and state.owner_pid != os.getpid() and alive(state.owner_pid) and \
            "trailhound" in " ".join(_cmd(state.owner_pid)):
        raise preflight.Refusal(f"a lab run (pid {state.owner_pid}) is still in progress")
    log(f"cleaning up a previous lab run (work dir {state.workdir or '?'})")
    problems = cleanup(state, log)
    if problems:
        raise LabError("could not undo the previous run: " + "; ".join(problems))
    from .system import STATE_PATH
    STATE_PATH.unlink(missing_ok=True)


def cleanup_leftovers(log) -> None:
    """`trailhound lab cleanup`: under the lab's lock, undo what a crashed or --keep run left."""
    holder = Lab([], log=log)
    holder._lock()
    try:
        recover(log)
    finally:
        holder._unlock()


def _cmd(pid: int) -> list[str]:
    from .system import cmdline
    return cmdline(pid)


def select(names: list[str] | None) -> list[Scenario]:
    if not names:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise preflight.Refusal(f"unknown scenarios {unknown}; known: {', '.join(BY_NAME)}")
    return [s for s in SCENARIOS if s.name in names]


def write_capture(cap: Capture, out: Path, whole: bool = True) -> None:
    """Per scenario (<name>/audit.log, auth.log), scenarios.json, and with `whole` the whole run
    (audit.log, auth.log; the fixtures leave it out: it is the union of the scenarios' plus setup)."""
    out.mkdir(parents=True, exist_ok=True)
    if whole:
        (out / "audit.log").write_text("".join(ln + "\n" for ln in cap.audit_lines))
        (out / "auth.log").write_text("".join(ln + "\n" for ln in cap.auth_lines))
    for w in cap.windows:
        if w.skipped:
            continue
        d = out / w.name
        d.mkdir(exist_ok=True)
        (d / "audit.log").write_text("".join(ln + "\n" for ln in cap.scenario_audit(w)))
        (d / "auth.log").write_text("".join(ln + "\n" for ln in cap.scenario_auth(w)))
    meta = {
        "host": HOSTNAME, "attacker": ADDR["attacker"], "target": ADDR["target"], "users": USERS,
        "run": {"start": cap.run_start, "end": cap.run_end},
        "scenarios": [{k: v for k, v in asdict(w).items() if k != "output" or v} for w in cap.windows],
    }
    (out / "scenarios.json").write_text(json.dumps(meta, indent=1) + "\n")
