"""The process tree around an alert's event: its ancestors up to the entry leader, its siblings
and its children, from the process starts of the event files as our enrichment
(`enrich.process_tree`) completed them (parents and leaders of auditd and Sysmon events).

A pid is reused over time, so a process is one *start*: the start of a pid on a host that is the
latest at or before the moment asked about, as `ProcessTree` reads its table. Nothing is guessed:
a parent never seen starting ends the walk, and the tree says so.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_RELATIVES = 25  # siblings or children shown; more are counted
MAX_DEPTH = 32

FIELDS = ("@timestamp", "host.id", "host.name", "event.category", "event.type", "process.pid", "process.parent.pid",
          "process.name", "process.executable", "process.command_line", "process.args", "process.entity_id",
          "process.working_directory", "user.name", "process.entry_leader.pid",
          "process.entry_leader.entry_meta.type", "process.entry_leader.entry_meta.source.ip")


def _ms(text: Any) -> int:
    from .model import _ms as ms

    return ms(text) or 0


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else [] if v is None else [v]


@dataclass
class Start:
    """One process start: a pid's image from its exec on."""

    pid: int
    ppid: int | None
    time: int  # epoch ms
    at: str
    name: str
    executable: str
    command_line: str
    user: str
    leader_pid: int | None
    leader_type: str | None
    leader_ip: str | None

    def node(self, relation: str, depth: int = 0, leader: bool = False) -> dict:
        return {"pid": self.pid, "ppid": self.ppid, "name": self.name, "executable": self.executable,
                "command_line": self.command_line, "user": self.user, "start": self.at, "relation": relation,
                "depth": depth, "leader": leader}


@dataclass
class ProcessIndex:
    """Process starts per host (`host.id`, else `host.name`, as the process tree keys hosts)."""

    starts: dict[str, dict[int, list[Start]]] = field(default_factory=dict)  # host → pid → starts by time
    children: dict[str, dict[int, list[Start]]] = field(default_factory=dict)  # host → ppid → starts by time
    _contexts: dict[tuple, dict] = field(default_factory=dict)

    def add(self, doc: Mapping) -> None:
        """Learn one event (flat dotted fields); only process starts are kept."""
        pid = doc.get("process.pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            return
        if "process" not in _as_list(doc.get("event.category")) or "start" not in _as_list(doc.get("event.type")):
            return
        host = str(doc.get("host.id") or doc.get("host.name") or "")
        ppid = doc.get("process.parent.pid")
        args = doc.get("process.args")
        cmd = doc.get("process.command_line") or (" ".join(map(str, args)) if isinstance(args, list) else "")
        leader = doc.get("process.entry_leader.pid")
        start = Start(pid, ppid if isinstance(ppid, int) else None, _ms(doc.get("@timestamp")),
                      str(doc.get("@timestamp") or ""), str(doc.get("process.name") or ""),
                      str(doc.get("process.executable") or ""), str(cmd or ""), str(doc.get("user.name") or ""),
                      leader if isinstance(leader, int) else None,
                      _str_or_none(doc.get("process.entry_leader.entry_meta.type")),
                      _str_or_none(doc.get("process.entry_leader.entry_meta.source.ip")))
        _insert(self.starts.setdefault(host, {}).setdefault(pid, []), start)
        if start.ppid is not None:
            _insert(self.children.setdefault(host, {}).setdefault(start.ppid, []), start)

    def find(self, host: str, pid: int, time: int) -> Start | None:
        """The start of `pid` on `host` that is the latest at or before `time`."""
        starts = self.starts.get(host, {}).get(pid)
        if not starts:
            return None
        i = bisect.bisect_right(starts, time, key=_time) - 1
        return starts[i] if i >= 0 else None

    def _end(self, host: str, s: Start) -> int | None:
        """When the pid of `s` started again (so `s` was over by then), None if it did not."""
        later = [x.time for x in self.starts.get(host, {}).get(s.pid, []) if x.time > s.time]
        return min(later) if later else None

    def _children(self, host: str, s: Start) -> list[Start]:
        end = self._end(host, s)
        return [c for c in self.children.get(host, {}).get(s.pid, [])
                if c.time >= s.time and (end is None or c.time < end) and c is not s]

    def context(self, flat: Mapping) -> dict | None:
        """The tree around an alert's event (flat alert fields), None when its process is unknown."""
        pid = _first(flat.get("process.pid"))
        if not isinstance(pid, int) or isinstance(pid, bool):
            return None
        host = str(_first(flat.get("host.id")) or _first(flat.get("host.name")) or "")
        time = _ms(flat.get("kibana.alert.original_time") or flat.get("@timestamp"))
        me = self.find(host, pid, time)
        if me is None:
            return None
        key = (host, pid, me.time)
        if key in self._contexts:
            return self._contexts[key]
        leader_pid = me.leader_pid
        ancestors: list[Start] = []
        node, end = me, "unknown"
        for _ in range(MAX_DEPTH):
            if node.pid == leader_pid:
                end = "leader"
                break
            if node.ppid is None:
                end = "no parent pid"
                break
            parent = self.find(host, node.ppid, node.time)
            if parent is None:
                end = "init" if node.ppid == 1 else "parent not seen starting"
                break
            ancestors.append(parent)
            node = parent
        else:
            end = "depth limit"
        parent = ancestors[0] if ancestors else None
        siblings = [s for s in self._children(host, parent) if s is not me] if parent else []
        children = self._children(host, me)
        nodes = [a.node("leader" if a.pid == leader_pid else "ancestor", -(i + 1))
                 for i, a in reversed(list(enumerate(ancestors)))]
        nodes.append(me.node("self", 0, leader=me.pid == leader_pid))
        nodes += [c.node("child", 1) for c in children[:MAX_RELATIVES]]
        ctx = {"host": host, "nodes": nodes,
               "siblings": [s.node("sibling", 0) for s in siblings[:MAX_RELATIVES]],
               "more_siblings": max(0, len(siblings) - MAX_RELATIVES),
               "more_children": max(0, len(children) - MAX_RELATIVES),
               "end": end, "leader_type": me.leader_type, "leader_ip": me.leader_ip}
        self._contexts[key] = ctx
        return ctx


def _first(v: Any) -> Any:
    return v[0] if isinstance(v, list) and v else v


def _str_or_none(v: Any) -> str | None:
    v = _first(v)
    return None if v is None else str(v)


def _time(s: Start) -> int:
    return s.time


def _insert(starts: list[Start], start: Start) -> None:
    bisect.insort_right(starts, start, key=_time)


def index_events(paths, input_format: str | None = None, read_options=None) -> tuple[ProcessIndex, Any]:
    """The process starts of event files, read as `hunt` reads them (formats detected, raw logs
    normalized and completed by the process tree). Returns the index and the sources' LoadReport."""
    from ..sources import load_events

    table = load_events(paths, list(FIELDS), format=input_format, options=read_options)
    index = ProcessIndex()
    frame = table.frame
    columns = [c for c in FIELDS if c in frame.columns]
    for row in frame.select(columns).iter_rows(named=True):
        index.add(row)
    return index, table.report
