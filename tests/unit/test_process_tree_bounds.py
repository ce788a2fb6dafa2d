"""The process tree and its login map stay bounded whatever the log holds (issue 15, "Memory": a new
`node=` or audit session on every line grew them without end), count what they evict, keep what is
in use, checkpoint through JSON, and give the same relatives as before on ordinary data."""

from __future__ import annotations

import copy
import glob
import json
import sys
from functools import lru_cache
from pathlib import Path

import orjson

from trailhound.enrich import ProcessTree
from trailhound.sources.formats import ReadOptions
from trailhound.sources.inputs import Source
from trailhound.sources.normalize import documents, format_of


def exec_(pid, ppid, name, host="h1", session=None):
    doc = {"event": {"category": ["process"], "type": ["start"]}, "host": {"name": host},
           "process": {"pid": pid, "name": name, "executable": f"/usr/bin/{name}", "args": [name],
                       **({"parent": {"pid": ppid}} if ppid is not None else {})}}
    if session is not None:
        doc["auditd"] = {"session": session}
    return doc


def syscall(pid, host):
    return {"event": {"category": ["file"], "type": ["change"]}, "host": {"name": host}, "process": {"pid": pid}}


def login(host, session, ip):
    return {"event": {"category": ["authentication"], "type": ["start"]}, "host": {"name": host},
            "auditd": {"session": session}, "source": {"ip": ip}}


def test_a_new_host_on_every_line_stays_bounded():
    tree = ProcessTree(max_processes=50, max_total=300, max_hosts=40)
    for i in range(20_000):
        tree.apply(exec_(1000 + i % 7, 1, "bash", host=f"node-{i}"))
        tree.apply(syscall(1000 + i % 7, f"other-{i}"))  # events of unknown hosts make no table
        assert len(tree.hosts) <= 40 and tree.size() <= 300
    assert len(tree.hosts) == 40 and tree.size() == 40
    assert tree.evicted_processes == 20_000 - 40 and tree.evicted == tree.evicted_processes


def test_many_processes_over_many_hosts_respect_the_overall_bound():
    tree = ProcessTree(max_processes=1000, max_total=500, max_hosts=1000)
    for i in range(10_000):
        tree.apply(exec_(i, 1, "sh", host=f"h{i % 20}"))
        assert tree.size() <= 500
    assert sum(len(t) for t in tree.hosts.values()) == tree.size() == 500
    assert tree.evicted_processes == 10_000 - 500


def test_a_new_session_on_every_line_stays_bounded():
    tree = ProcessTree(max_logins=100)
    for i in range(5_000):
        tree.apply(login(f"h{i % 3}", str(i), "203.0.113.9"))
        assert len(tree.logins) <= 100
    assert tree.evicted_logins == 4_900 and tree.evicted == 4_900


def test_ancestors_in_use_survive_eviction():
    """LRU, not first-in-first-out: the sshd listener, started first, stays while each of its
    sessions' walks passes it, though far more processes than the bound start after it."""
    tree = ProcessTree(max_processes=8)
    tree.apply(exec_(100, 1, "sshd"))
    for s in range(50):
        base = 1000 + 10 * s
        tree.apply(exec_(base, 100, "sshd"))
        tree.apply(exec_(base + 1, base, "bash"))
        cmd = exec_(base + 2, base + 1, "ssh")
        tree.apply(cmd)
        assert cmd["process"]["entry_leader"]["entry_meta"]["type"] == "sshd"
        assert cmd["process"]["entry_leader"]["pid"] == base + 1
    assert 100 in tree.hosts["h1"] and tree.evicted_processes > 0


def test_state_round_trips_through_json():
    tree = ProcessTree(max_processes=5, max_logins=3)
    docs = [login("h1", "7", "198.51.100.1"), exec_(100, 1, "sshd"), exec_(200, 100, "sshd", session="7")]
    docs += [exec_(300 + i, 200, "bash", session="7") for i in range(6)] + [login("h1", str(i), "x") for i in range(4)]
    for d in docs:
        tree.apply(d)
    back = ProcessTree.from_dict(json.loads(json.dumps(tree.to_dict())))
    assert back.to_dict() == tree.to_dict() and back.size() == tree.size() and back.evicted == tree.evicted
    a, b = exec_(400, 305, "ssh", session="7"), exec_(400, 305, "ssh", session="7")
    tree.apply(a)
    back.apply(b)
    assert a == b and back.to_dict() == tree.to_dict()


@lru_cache(maxsize=1)
def _read_lab() -> tuple[dict, ...]:
    docs = []
    lab = Path(__file__).resolve().parents[1] / "fixtures" / "lab"  # not the working directory: tests may chdir
    for path in sorted(glob.glob(f"{lab}/*/audit.log")) + sorted(glob.glob(f"{lab}/*/auth.log")):
        src = Source.open(path)
        for doc, _ in documents(src, format_of(src, None), ReadOptions(year=2026), lambda *a: None):
            docs.append(doc)
    return tuple(docs)


def _lab_documents() -> list[dict]:
    return copy.deepcopy(list(_read_lab()))


def test_ordinary_data_is_enriched_as_without_bounds():
    docs = _lab_documents()
    assert len(docs) > 500
    bounded, unbounded = ProcessTree(), ProcessTree(*(sys.maxsize,) * 4)
    a, b = copy.deepcopy(docs), copy.deepcopy(docs)
    for x, y in zip(a, b):
        bounded.apply(x)
        unbounded.apply(y)
    assert bounded.evicted == 0
    assert [orjson.dumps(d) for d in a] == [orjson.dumps(d) for d in b]
    enriched = sum(1 for d in a if isinstance(d.get("process"), dict) and "entry_leader" in d["process"])
    assert enriched > 100  # the tree did its work on this data
    # and a tree bounded below the data's size forgets, but never makes a relative up
    tight = ProcessTree(max_processes=20, max_total=20)
    c = copy.deepcopy(docs)
    for x in c:
        tight.apply(x)
    assert tight.evicted > 0
    for x, y in zip(c, a):
        px, py = x.get("process"), y.get("process")
        if isinstance(px, dict) and "parent" in px and "name" in px["parent"]:
            assert px["parent"] == py["parent"]


def test_any_chunking_with_checkpoints_enriches_as_one_pass():
    """The tree fed in batches, saved to JSON and restored between them, enriches the lab capture as
    one pass does (what `watch` relies on across restarts)."""
    import random

    docs = _lab_documents()
    want = copy.deepcopy(docs)
    tree = ProcessTree()
    for d in want:
        tree.apply(d)
    rng = random.Random(15)
    for _ in range(3):
        cuts = set(rng.sample(range(len(docs)), 25))
        got, tree = copy.deepcopy(docs), ProcessTree()
        for i, d in enumerate(got):
            if i in cuts:
                tree = ProcessTree.from_dict(json.loads(json.dumps(tree.to_dict())))
            tree.apply(d)
        assert [orjson.dumps(d) for d in got] == [orjson.dumps(d) for d in want]


def test_evictions_are_reported_in_the_load_report(tmp_path, monkeypatch):
    """The bound was counted but said nowhere: a flood of new hosts silently changed leaders."""
    import functools

    import trailhound.sources.ecs_json as loader
    from trailhound.sources import load_events

    log = tmp_path / "audit.log"
    log.write_text("".join(
        f'node=h{i} type=SYSCALL msg=audit(1767225600.{i % 1000:03d}:{i}): arch=c000003e syscall=59 success=yes exit=0 '
        f'ppid=1 pid={100 + i} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 '
        f'comm="sh" exe="/bin/sh" key=(null)\nnode=h{i} type=EOE msg=audit(1767225600.{i % 1000:03d}:{i}): \n'
        for i in range(50)))
    quiet = load_events([log], ["process.name"])
    assert quiet.report.events == 50 and not any(n.startswith("process tree: ") for n in quiet.report.notes)
    monkeypatch.setattr(loader, "ProcessTree", functools.partial(ProcessTree, max_hosts=10))
    table = load_events([log], ["process.name"])
    assert table.report.events == 50
    assert any(n.startswith("process tree: 40 processes") and "dropped by its bounds" in n for n in table.report.notes)
