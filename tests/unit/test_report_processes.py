"""The process tree around an event: the start of a pid that was current at the event's time,
ancestors to the entry leader, siblings and children of that start only (pids are reused)."""

from trailhound.report.processes import MAX_RELATIVES, ProcessIndex


def start(pid, ppid, second, name, leader=None, host="h1"):
    return {"@timestamp": f"2026-11-01T10:00:{second:02d}.000Z", "host.name": host, "event.category": ["process"],
            "event.type": ["start"], "process.pid": pid, "process.parent.pid": ppid, "process.name": name,
            "process.args": [name, "-x"], "user.name": "u", "process.entry_leader.pid": leader}


def alert(pid, second, host="h1"):
    return {"process.pid": pid, "host.name": host, "kibana.alert.original_time": f"2026-11-01T10:00:{second:02d}.000Z"}


def test_tree_follows_the_start_current_at_the_event():
    index = ProcessIndex()
    for doc in [start(100, 1, 0, "sshd"), start(200, 100, 1, "bash", leader=200), start(300, 200, 2, "ssh", 200),
                start(301, 200, 3, "cat", 200), start(400, 300, 4, "ssh-child", 200),
                start(300, 200, 20, "reused", 200),  # pid 300 again, later: a new process
                start(500, 300, 21, "child-of-reused", 200),
                start(300, 1, 5, "other-host", host="h2"),
                {"@timestamp": "2026-11-01T10:00:06.000Z", "host.name": "h1", "event.category": ["file"],
                 "event.type": ["change"], "process.pid": 999}]:  # not a start: ignored
        index.add(doc)
    ctx = index.context(alert(300, 10))
    assert [(p["name"], p["relation"]) for p in ctx["nodes"]] == [("bash", "leader"), ("ssh", "self"),
                                                                  ("ssh-child", "child")]
    assert [s["name"] for s in ctx["siblings"]] == ["cat", "reused"]  # the reused pid is another process
    assert ctx["end"] == "leader" and ctx["nodes"][1]["command_line"] == "ssh -x"
    later = index.context(alert(300, 30))
    assert [(p["name"], p["relation"]) for p in later["nodes"]] == [("bash", "leader"), ("reused", "self"),
                                                                   ("child-of-reused", "child")]
    assert index.context(alert(300, 9, host="h2"))["nodes"][0]["name"] == "other-host"
    assert index.context(alert(300, 9, host="h2"))["end"] == "init"
    assert index.context(alert(999, 10)) is None and index.context({"host.name": "h1"}) is None
    assert index.context(alert(300, 10)) is ctx  # one context per process start, shared by its alerts


def test_unknown_parent_ends_the_walk_and_relatives_are_bounded():
    index = ProcessIndex()
    index.add(start(10, 7, 0, "orphan"))
    for i in range(MAX_RELATIVES + 5):
        index.add(start(1000 + i, 10, 1, f"c{i}"))
    ctx = index.context(alert(10, 2))
    assert ctx["end"] == "parent not seen starting"
    assert len([p for p in ctx["nodes"] if p["relation"] == "child"]) == MAX_RELATIVES and ctx["more_children"] == 5
    me = index.context(alert(1000, 2))
    assert len(me["siblings"]) == MAX_RELATIVES and me["more_siblings"] == 4
