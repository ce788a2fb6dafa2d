"""The process tree: the parent, session and entry-leader fields Elastic Defend reports, rebuilt
from exec history for sources that lack them (auditd, Sysmon for Linux).

Each host has a table of its processes by pid, filled from process-start events in event
order: a pid's latest image wins (exec replaces the image; a pid reused after an exit is a new
process). For every event of a known process:

* `process.parent.*` (name, executable, args, command line, pid, entity id, working directory,
  user) come from the parent pid's latest image, when the event does not carry them. Sure when
  the parent's exec was seen; absent otherwise (never guessed).
* `process.entry_leader.*` is the process that entered the system, found by walking up the
  ancestry to the first process whose parent is a boundary:
    sshd / sshd-session → "sshd"; a container runtime (runc, crun, containerd-shim*, conmon,
    docker-init) → "container"; login / getty → "terminal"; kubelet, teleport, ssm → theirs;
    pid 1 → "init". `entry_meta.source.ip` is the client of the audit login session.
  Inferred: "unknown" type when the walk reaches a process whose parent was never seen.
* `process.session_leader.*` is the entry leader too: audit and Sysmon do not report setsid, so
  nested sessions (tmux, screen) are not told apart. `process.group_leader` is not set.

State is explicit, bounded and serializable (`to_dict`/`from_dict`), so a stream can run forever
and checkpoint it. Every table is a least-recently-used map: a process is used when it starts, when
an event of its own arrives and when a descendant's walk passes it; a host when one of its events
arrives; a login when a leader reads it. Bounds: `max_processes` per host, `max_total` processes
over all hosts, `max_hosts` hosts and `max_logins` logins; what falls out is counted in `evicted`
(a line with a new `node=` or audit session each is a new host or login, so hostile or odd logs
would otherwise grow the tree without end). Evicting only forgets: a later event then gets no
relative rather than a wrong one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

BOUNDARIES = {
    "sshd": "sshd", "sshd-session": "sshd",
    "runc": "container", "crun": "container", "conmon": "container", "docker-init": "container",
    "containerd-shim": "container",  # also containerd-shim-runc-v2, whose comm is cut to 15 characters
    "login": "terminal", "agetty": "terminal", "getty": "terminal", "mingetty": "terminal",
    "kubelet": "kubelet", "teleport": "teleport", "ssm-agent-worker": "ssm", "ssm-session-worker": "ssm",
}
_COPIED = ("pid", "name", "executable", "args", "args_count", "command_line", "entity_id", "working_directory")
_MAX_WALK = 64  # ancestry depth limit (and a guard against pid cycles from reuse)


@dataclass
class Proc:
    info: dict[str, Any]  # the ECS process fields copied to relatives
    ppid: int | None
    session: str | None  # audit login session (`auditd.session`)
    user: dict | None = None


@dataclass
class ProcessTree:
    max_processes: int = 100_000  # per host
    max_total: int = 500_000  # over all hosts
    max_hosts: int = 10_000
    max_logins: int = 100_000
    hosts: OrderedDict[str, OrderedDict[int, Proc]] = field(default_factory=OrderedDict)
    logins: OrderedDict[tuple[str, str], str] = field(default_factory=OrderedDict)  # (host, session) → client ip
    evicted_processes: int = 0  # processes dropped by a bound (a dropped host's included)
    evicted_logins: int = 0
    _total: int = field(default=0, init=False, repr=False)  # processes held, over all hosts

    @property
    def evicted(self) -> int:
        """Entries (processes and logins) the bounds have dropped so far."""
        return self.evicted_processes + self.evicted_logins

    def eviction_note(self) -> str | None:
        """What the bounds dropped, for the load report; None when nothing was."""
        if not self.evicted:
            return None
        return (f"process tree: {self.evicted_processes} processes and {self.evicted_logins} logins dropped by its "
                f"bounds ({self.max_processes} processes per host, {self.max_total} in all, {self.max_hosts} hosts, "
                f"{self.max_logins} logins); later events of those may lack parent, leader and login fields")

    def size(self) -> int:
        """Entries held: processes and logins."""
        return self._total + len(self.logins)

    def apply(self, doc: dict) -> None:
        """Learn from `doc`, then fill its missing relatives (in place). Call in event order."""
        process = doc.get("process")
        host = _host(doc)
        self._learn_login(doc, host)
        if not isinstance(process, dict) or not isinstance(process.get("pid"), int):
            return
        table = self.hosts.get(host)
        if table is not None:
            self.hosts.move_to_end(host)
        if _is_start(doc):
            if table is None:
                table = self.hosts[host] = OrderedDict()
            parent = process["parent"] if isinstance(process.get("parent"), dict) else {}
            ppid = parent.get("pid") if isinstance(parent.get("pid"), int) else None
            info = {k: process[k] for k in _COPIED if k in process}
            if table.pop(process["pid"], None) is not None:
                self._total -= 1
            table[process["pid"]] = Proc(info, ppid, _session(doc), doc.get("user") if isinstance(doc.get("user"), dict)
                                         else None)
            self._total += 1
            self._bound(host, table)
        if table is None:
            return
        me = table.get(process["pid"])
        if me is None:
            return
        table.move_to_end(process["pid"])
        self._fill_parent(process, table, me)
        self._fill_leaders(process, table, me, host)

    def _bound(self, host: str, table: OrderedDict[int, Proc]) -> None:
        """Drop the least recently used processes (and hosts) past the bounds; never `host` itself,
        whose process just started."""
        while len(table) > self.max_processes:
            table.popitem(last=False)
            self._total -= 1
            self.evicted_processes += 1
        while len(self.hosts) > self.max_hosts:
            _, dropped = self.hosts.popitem(last=False)
            self._total -= len(dropped)
            self.evicted_processes += len(dropped)
        while self._total > self.max_total:
            oldest_host = next(iter(self.hosts))
            oldest = self.hosts[oldest_host]
            oldest.popitem(last=False)
            self._total -= 1
            self.evicted_processes += 1
            if not oldest:
                del self.hosts[oldest_host]

    def _fill_parent(self, process: dict, table: OrderedDict[int, Proc], me: Proc) -> None:
        if me.ppid is None:
            return
        parent = table.get(me.ppid)
        if parent is None:
            return
        table.move_to_end(me.ppid)
        out = process.setdefault("parent", {})
        for key, value in parent.info.items():
            out.setdefault(key, value)
        if parent.user and "id" in parent.user:
            out.setdefault("user", {"id": parent.user["id"], **({"name": parent.user["name"]}
                                                                  if "name" in parent.user else {})})

    def _fill_leaders(self, process: dict, table: OrderedDict[int, Proc], me: Proc, host: str) -> None:
        if "entry_leader" in process:
            return
        pid, node, kind = process["pid"], me, None
        for _ in range(_MAX_WALK):
            if node.ppid is None:
                break
            if node.ppid == 1:
                kind = "init"
                break
            parent = table.get(node.ppid)
            if parent is None:
                kind = "unknown"
                break
            table.move_to_end(node.ppid)
            boundary = _boundary(parent.info)
            if boundary and _boundary(node.info) != boundary:
                kind = boundary
                break
            pid, node = node.ppid, parent
        if kind is None:
            return
        leader = dict(node.info)
        meta: dict[str, Any] = {"type": kind}
        ip = self.logins.get((host, node.session)) if node.session else None
        if ip is not None and node.session:
            self.logins.move_to_end((host, node.session))
        if ip and kind == "sshd":
            meta["source"] = {"ip": ip}
        leader["entry_meta"] = meta
        if node.user and "id" in node.user:
            leader["user"] = {k: node.user[k] for k in ("id", "name") if k in node.user}
        process["entry_leader"] = leader
        process.setdefault("session_leader", {k: v for k, v in leader.items() if k != "entry_meta"})
        if pid == process["pid"]:
            process["entry_leader"]["same_as_process"] = True

    def _learn_login(self, doc: dict, host: str) -> None:
        session = _session(doc)
        source = doc.get("source")
        if session and isinstance(source, dict) and isinstance(source.get("ip"), str):
            categories = (doc.get("event") or {}).get("category") or []
            if "authentication" in categories or "session" in categories:
                self.logins[(host, session)] = source["ip"]
                self.logins.move_to_end((host, session))
                while len(self.logins) > self.max_logins:
                    self.logins.popitem(last=False)
                    self.evicted_logins += 1

    # ---- checkpoints ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The whole state as plain JSON values (tables in LRU order, oldest first)."""
        return {
            "bounds": [self.max_processes, self.max_total, self.max_hosts, self.max_logins],
            "hosts": [[host, [[pid, p.info, p.ppid, p.session, p.user] for pid, p in table.items()]]
                      for host, table in self.hosts.items()],
            "logins": [[host, session, ip] for (host, session), ip in self.logins.items()],
            "evicted": [self.evicted_processes, self.evicted_logins],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessTree:
        max_processes, max_total, max_hosts, max_logins = data["bounds"]
        tree = cls(max_processes, max_total, max_hosts, max_logins)
        for host, procs in data["hosts"]:
            table = tree.hosts[host] = OrderedDict()
            for pid, info, ppid, session, user in procs:
                table[pid] = Proc(info, ppid, session, user)
            tree._total += len(table)
        for host, session, ip in data["logins"]:
            tree.logins[(host, session)] = ip
        tree.evicted_processes, tree.evicted_logins = data["evicted"]
        return tree


def _boundary(info: dict) -> str | None:
    for name in (info.get("name"), str(info.get("executable") or "").rsplit("/", 1)[-1]):
        if name:
            if name.startswith("containerd-shim"):
                return "container"
            if name in BOUNDARIES:
                return BOUNDARIES[name]
    return None


def _host(doc: dict) -> str:
    host = doc.get("host")
    if isinstance(host, dict):
        return str(host.get("id") or host.get("name") or host.get("hostname") or "")
    return ""


def _session(doc: dict) -> str | None:
    auditd = doc.get("auditd")
    value = auditd.get("session") if isinstance(auditd, dict) else None
    return None if value in (None, "unset") else str(value)


def _is_start(doc: dict) -> bool:
    event = doc.get("event") or {}
    types = event.get("type") or []
    categories = event.get("category") or []
    types = [types] if isinstance(types, str) else types
    categories = [categories] if isinstance(categories, str) else categories
    return "process" in categories and "start" in types
