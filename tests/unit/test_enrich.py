"""The process tree: parents, entry and session leaders rebuilt from exec events."""

from trailhound.enrich import ProcessTree


def exec_(pid, ppid, name, host="h1", session=None, args=None, user=None, **process):
    doc = {"event": {"category": ["process"], "type": ["start"]}, "host": {"name": host},
           "process": {"pid": pid, "name": name, "executable": f"/usr/bin/{name}", "args": args or [name],
                       **({"parent": {"pid": ppid}} if ppid is not None else {}), **process}}
    if session is not None:
        doc["auditd"] = {"session": session}
    if user is not None:
        doc["user"] = user
    return doc


def run(*docs, **kw):
    tree = ProcessTree(**kw)
    for d in docs:
        tree.apply(d)
    return docs


def test_parent_fields_come_from_the_parents_latest_image():
    _, _, child = run(exec_(10, 1, "bash", args=["bash", "-l"], user={"id": "1000", "name": "alice"}),
                      exec_(10, 1, "zsh"),  # exec replaced bash in pid 10
                      exec_(11, 10, "curl"))
    parent = child["process"]["parent"]
    assert (parent["name"], parent["executable"], parent["args"], parent["pid"]) == ("zsh", "/usr/bin/zsh", ["zsh"], 10)
    assert "user" not in parent  # the zsh exec carried no user: nothing is guessed


def test_sshd_entry_leader_with_login_source_ip():
    login = {"event": {"category": ["authentication"], "type": ["start"]}, "host": {"name": "h1"},
             "auditd": {"session": "7"}, "source": {"ip": "203.0.113.9"}}
    docs = run(exec_(100, 1, "sshd"), login, exec_(200, 100, "sshd", session="7"),
               exec_(201, 200, "bash", session="7", user={"id": "0", "name": "root"}),
               exec_(202, 201, "ssh", session="7", args=["ssh", "-R", "9000:localhost:22", "x"]))
    bash, ssh = docs[3]["process"], docs[4]["process"]
    assert bash["entry_leader"]["same_as_process"] is True
    leader = ssh["entry_leader"]
    assert (leader["pid"], leader["name"], leader["entry_meta"]) == (201, "bash", {"type": "sshd",
                                                                                  "source": {"ip": "203.0.113.9"}})
    assert leader["user"] == {"id": "0", "name": "root"} and "same_as_process" not in leader
    assert ssh["session_leader"]["pid"] == 201
    assert docs[0]["process"]["entry_leader"]["entry_meta"]["type"] == "init"  # the sshd listener, child of pid 1


def test_container_runtimes_terminals_and_unknown_ancestry():
    docs = run(exec_(50, 1, "exe", executable="/usr/bin/containerd-shim-runc-v2"),  # known by its executable
               exec_(60, 50, "sh"), exec_(61, 60, "ssh"),
               exec_(70, 1, "runc"), exec_(71, 70, "runc"), exec_(72, 71, "busybox"),
               exec_(80, 1, "login"), exec_(81, 80, "bash"),
               exec_(91, 90, "python3"))
    assert docs[2]["process"]["entry_leader"]["entry_meta"]["type"] == "container"
    assert docs[2]["process"]["entry_leader"]["pid"] == 60
    assert docs[5]["process"]["entry_leader"]["entry_meta"]["type"] == "container"
    assert docs[5]["process"]["entry_leader"]["pid"] == 72  # past both runc processes
    assert docs[7]["process"]["entry_leader"]["entry_meta"]["type"] == "terminal"
    assert docs[8]["process"]["entry_leader"]["entry_meta"]["type"] == "unknown"


def test_hosts_are_apart_and_state_is_bounded():
    a, b = run(exec_(10, 1, "bash", host="a"), exec_(11, 10, "id", host="b"))
    assert "name" not in b["process"]["parent"]
    tree = ProcessTree(max_processes=2)
    for d in (exec_(1000, 1, "a"), exec_(1001, 1, "b"), exec_(1002, 1, "c")):
        tree.apply(d)
    assert list(tree.hosts["h1"]) == [1001, 1002]
    late = exec_(1003, 1000, "d")
    tree.apply(late)
    assert "name" not in late["process"]["parent"]  # 1000 was dropped: nothing is made up


def test_non_start_events_of_a_known_process_get_relatives():
    file_event = {"event": {"category": ["file"], "type": ["creation"]}, "host": {"name": "h1"},
                  "process": {"pid": 11}, "file": {"path": "/root/.ssh/authorized_keys"}}
    docs = run(exec_(10, 1, "bash"), exec_(11, 10, "cp"), file_event)
    assert docs[2]["process"]["parent"]["name"] == "bash"
    assert docs[2]["process"]["entry_leader"]["pid"] == 10
