"""The auditd reader on small audit logs written for these tests."""

from __future__ import annotations

from trailhound.sources.auditd import FORMAT, MAX_IN_FLIGHT, MAX_LINE, parse_record, read, sniff
from trailhound.sources.formats import ReadOptions


def _hex(text: str) -> str:
    return text.encode().hex().upper()


def run(text: str):
    skipped: list = []
    lines = text.strip("\n").split("\n")
    docs = list(read(enumerate(lines, 1), lambda n, r: skipped.append((n, r)), ReadOptions()))
    return docs, skipped


def sys_line(seq, syscall, extra="", ts="1700000000.250", success="yes", exit_="0", arch="c000003e"):
    return (f"type=SYSCALL msg=audit({ts}:{seq}): arch={arch} syscall={syscall} success={success} exit={exit_} "
            f"a0=3 a1=4 a2=0 a3=0 items=1 ppid=10 pid=20 auid=1001 uid=1001 gid=1001 euid=0 suid=0 fsuid=0 "
            f"egid=1001 sgid=1001 fsgid=1001 tty=pts1 ses=4 comm=\"tool\" exe=\"/usr/bin/tool\" {extra}")


EXEC = "\n".join([
    sys_line(7, 59, 'key="runs"'),
    'type=EXECVE msg=audit(1700000000.250:7): argc=3 a0="curl" a1=2D2D6F7574707574 a2="x y"',
    'type=CWD msg=audit(1700000000.250:7): cwd="/home/kim"',
    'type=PATH msg=audit(1700000000.250:7): item=0 name="/usr/bin/curl" inode=5 dev=08:01 mode=0100755 ouid=0 '
    'ogid=0 rdev=00:00 nametype=NORMAL',
    f"type=PROCTITLE msg=audit(1700000000.250:7): proctitle={_hex('curl')}00{_hex('--output')}",
    "type=EOE msg=audit(1700000000.250:7):",
])


def test_execve_event_is_coalesced_like_auditbeat_with_defend_action():
    (doc, line), = run(EXEC)[0]
    assert line == 1
    assert doc["@timestamp"] == "2023-11-14T22:13:20.250Z"
    ev = doc["event"]
    assert ev["action"] == ["executed", "exec"]
    assert ev["category"] == ["process"] and ev["type"] == ["start"] and ev["outcome"] == "success"
    p = doc["process"]
    assert p["args"] == ["curl", "--output", "x y"] and p["args_count"] == 3
    assert p["command_line"] == "curl --output x y"
    assert p["title"] == "curl --output"
    assert p["pid"] == 20 and p["parent"]["pid"] == 10
    assert p["executable"] == "/usr/bin/tool" and p["name"] == "tool" and p["working_directory"] == "/home/kim"
    assert doc["user"]["id"] == "1001" and doc["user"]["audit"]["id"] == "1001"
    assert doc["user"]["effective"]["id"] == "0"
    assert doc["tags"] == ["runs"]
    assert doc["host"]["architecture"] == "x86_64" and doc["host"]["os"]["type"] == "linux"
    assert doc["auditd"]["session"] == "4" and doc["auditd"]["data"]["syscall"] == "execve"
    assert doc["file"]["path"] == "/usr/bin/curl" and doc["file"]["mode"] == "0755"
    assert len(ev["original"]) == 5  # EOE is not kept


def test_kv_parser_quotes_dropped_values_nested_msg_and_node():
    rec = parse_record("node=web1 type=USER_ACCT msg=audit(1700000000.001:9): pid=5 uid=0 auid=4294967295 "
                       "ses=4294967295 msg='op=PAM:accounting acct=\"a b\" exe=\"/usr/sbin/sshd\" hostname=? "
                       "addr=(null) terminal=ssh res=success'")
    assert rec.node == "web1" and rec.rtype == "USER_ACCT" and rec.seq == 9
    d = rec.data
    assert d["acct"] == "a b" and d["auid"] == "unset" and d["ses"] == "unset" and d["result"] == "success"
    assert "hostname" not in d and "addr" not in d and "res" not in d


def test_hex_decoding_rules():
    rec = parse_record(f"type=CWD msg=audit(1.000:1): cwd={_hex('/tmp/a b')}")
    assert rec.data["cwd"] == "/tmp/a b"
    # lower-case or quoted hex is left alone
    assert parse_record('type=CWD msg=audit(1.000:1): cwd="2F746D70"').data["cwd"] == "2F746D70"
    assert parse_record("type=CWD msg=audit(1.000:1): cwd=2f746d70").data["cwd"] == "2f746d70"
    cmd = parse_record(f"type=USER_CMD msg=audit(1.000:2): pid=1 uid=0 msg='cwd=\"/\" cmd={_hex('id -u')} res=success'")
    assert cmd.data["cmd"] == "id -u"
    path = parse_record(f"type=PATH msg=audit(1.000:3): item=0 name={_hex('/tmp/x y')} nametype=CREATE")
    assert path.data["name"] == "/tmp/x y"


def test_split_execve_arguments_are_reassembled_across_records():
    long_arg = "A" * 30 + "-tail"
    h = _hex(long_arg)
    text = "\n".join([
        sys_line(11, 59),
        f'type=EXECVE msg=audit(1700000000.250:11): argc=3 a0="sh" a1_len={len(long_arg)} a1[0]={h[:20]}',
        f'type=EXECVE msg=audit(1700000000.250:11): a1[1]={h[20:]} a2="-c"',
        "type=EOE msg=audit(1700000000.250:11):",
    ])
    (doc, _), = run(text)[0]
    assert doc["process"]["args"] == ["sh", long_arg, "-c"]


def test_enriched_names_and_uppercase_keys():
    line = sys_line(12, 87, 'key="delete"') + "\x1dARCH=x86_64 SYSCALL=unlink AUID=\"kim\" UID=\"kim\" EUID=\"root\""
    path = ('type=PATH msg=audit(1700000000.250:12): item=0 name="notes.txt" inode=9 dev=08:01 mode=0100644 ouid=1001 '
            'ogid=1001 rdev=00:00 nametype=DELETE\x1dOUID="kim" OGID="staff"')
    cwd = 'type=CWD msg=audit(1700000000.250:12): cwd="/home/kim"'
    (doc, _), = run("\n".join([line, cwd, path, "type=EOE msg=audit(1700000000.250:12):"]))[0]
    assert doc["user"]["name"] == "kim" and doc["user"]["audit"]["name"] == "kim"
    assert doc["user"]["effective"]["name"] == "root"
    assert doc["event"]["action"] == ["deleted", "deletion"] and doc["event"]["type"] == ["deletion"]
    f = doc["file"]
    assert f["path"] == "/home/kim/notes.txt" and f["name"] == "notes.txt" and f["extension"] == "txt"
    assert f["directory"] == "/home/kim" and f["owner"] == "kim" and f["group"] == "staff"
    assert doc["auditd"]["paths"][0]["name"] == "notes.txt"  # raw name kept


def test_open_that_creates_a_file_and_failed_syscall_errno():
    text = "\n".join([
        sys_line(13, 257, exit_="3"),
        'type=PATH msg=audit(1700000000.250:13): item=0 name="/etc/" nametype=PARENT',
        'type=PATH msg=audit(1700000000.250:13): item=1 name="/etc/cron.d/job" mode=0100644 nametype=CREATE',
        "type=EOE msg=audit(1700000000.250:13):",
        sys_line(14, 257, success="no", exit_="-13"),
        'type=PATH msg=audit(1700000000.250:14): item=0 name="/etc/shadow" nametype=NORMAL',
        "type=EOE msg=audit(1700000000.250:14):",
    ])
    (created, _), (denied, _) = run(text)[0]
    assert created["event"]["type"] == ["info", "creation"] and "creation" in created["event"]["action"]
    assert created["file"]["path"] == "/etc/cron.d/job"
    assert denied["event"]["action"] == "opened-file" and denied["event"]["outcome"] == "failure"
    assert denied["auditd"]["data"]["exit"] == "EACCES"


def test_open_of_an_existing_file_for_writing_is_a_change():
    def opened(seq, flags):
        return "\n".join([
            sys_line(seq, 257, exit_="3").replace("a2=0", f"a2={flags}"),
            f'type=PATH msg=audit(1700000000.250:{seq}): item=0 name="/root/.ssh/authorized_keys" nametype=NORMAL',
            f"type=EOE msg=audit(1700000000.250:{seq}):"])
    docs = run("\n".join([opened(20, "401"), opened(21, "8000"), opened(22, "241")]))[0]
    assert [d["event"]["type"] for d, _ in docs] == [["info", "change"], ["info"], ["info", "change"]]


def test_empty_execve_arguments_are_kept_and_renames_report_the_destination():
    text = "\n".join([
        sys_line(30, 59),
        'type=EXECVE msg=audit(1700000000.250:30): argc=5 a0="ssh-keygen" a1="-N" a2="" a3="-f" a4="/dev/shm/k"',
        "type=EOE msg=audit(1700000000.250:30):",
        sys_line(31, 82),
        'type=CWD msg=audit(1700000000.250:31): cwd="/home/kim"',
        'type=PATH msg=audit(1700000000.250:31): item=0 name="/tmp/" nametype=PARENT',
        'type=PATH msg=audit(1700000000.250:31): item=1 name=".ssh/" nametype=PARENT',
        'type=PATH msg=audit(1700000000.250:31): item=2 name="/tmp/k.pub" nametype=DELETE',
        'type=PATH msg=audit(1700000000.250:31): item=3 name=".ssh/authorized_keys" nametype=CREATE',
        "type=EOE msg=audit(1700000000.250:31):",
    ])
    (keygen, _), (moved, _) = run(text)[0]
    assert keygen["process"]["args"] == ["ssh-keygen", "-N", "", "-f", "/dev/shm/k"]
    assert moved["file"]["path"] == "/home/kim/.ssh/authorized_keys" and moved["file"]["name"] == "authorized_keys"
    assert moved["file"]["Ext"]["original"]["path"] == "/tmp/k.pub"
    assert "rename" in moved["event"]["action"]


def test_a_login_record_and_its_syscall_make_two_events_and_dirfd_paths_stay_relative():
    text = "\n".join([
        'type=LOGIN msg=audit(1700000000.250:40): pid=5 uid=0 old-auid=4294967295 auid=0 tty=(none) '
        'old-ses=4294967295 ses=9 res=1',
        sys_line(40, 1),
        f"type=PROCTITLE msg=audit(1700000000.250:40): proctitle={_hex('sh')}",
        "type=EOE msg=audit(1700000000.250:40):",
        sys_line(41, 257, exit_="8").replace("a0=3", "a0=7"),
        'type=CWD msg=audit(1700000000.250:41): cwd="/root"',
        'type=PATH msg=audit(1700000000.250:41): item=0 name=".ssh" nametype=NORMAL',
        "type=EOE msg=audit(1700000000.250:41):",
    ])
    docs, skipped = run(text)
    assert skipped == []
    assert [d["auditd"]["message_type"] for d, _ in docs] == ["login", "syscall", "syscall"]
    assert docs[2][0]["file"]["path"] == ".ssh"  # opened relative to descriptor 7, not to /root


def test_network_connect_and_accept():
    v4 = "0200" + "0016" + "0A000001" + "0" * 16  # 10.0.0.1:22
    v6 = "0A00" + "01BB" + "00000000" + "20010DB8000000000000000000000001" + "00000000"
    text = "\n".join([
        sys_line(15, 42),
        f"type=SOCKADDR msg=audit(1700000000.250:15): saddr={v4}",
        "type=EOE msg=audit(1700000000.250:15):",
        sys_line(16, 43),
        f"type=SOCKADDR msg=audit(1700000000.250:16): saddr={v6}",
        "type=EOE msg=audit(1700000000.250:16):",
    ])
    (conn, _), (acc, _) = run(text)[0]
    assert conn["destination"] == {"ip": "10.0.0.1", "port": "22"} and conn["network"]["direction"] == "egress"
    assert conn["event"]["action"] == ["connected-to", "connection_attempted"]
    assert conn["event"]["category"] == ["network"] and conn["event"]["type"] == ["connection", "start"]
    assert acc["source"] == {"ip": "2001:db8::1", "port": "443"} and acc["network"]["direction"] == "ingress"


def test_login_auth_and_credential_records():
    text = "\n".join([
        "type=USER_LOGIN msg=audit(1700000001.000:20): pid=30 uid=0 auid=4294967295 ses=4294967295 "
        "msg='op=login acct=\"eve\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.9 terminal=ssh res=failed'",
        "type=USER_AUTH msg=audit(1700000001.100:21): pid=31 uid=0 auid=1001 ses=4 "
        "msg='op=PAM:authentication grantors=pam_unix acct=\"root\" exe=\"/usr/bin/sudo\" hostname=? addr=? "
        "terminal=/dev/pts/1 res=success'",
        "type=USER_START msg=audit(1700000001.200:22): pid=32 uid=0 auid=1001 ses=5 "
        "msg='op=PAM:session_open acct=\"kim\" exe=\"/usr/sbin/sshd\" hostname=198.51.100.2 addr=198.51.100.2 "
        "terminal=ssh res=success'",
        "type=CRED_ACQ msg=audit(1700000001.300:23): pid=32 uid=0 auid=1001 ses=5 "
        "msg='op=PAM:setcred acct=\"kim\" exe=\"/usr/sbin/sshd\" hostname=? addr=? terminal=ssh res=success'",
        "type=USER_END msg=audit(1700000001.400:24): pid=32 uid=0 auid=1001 ses=5 "
        "msg='op=PAM:session_close acct=\"kim\" exe=\"/usr/sbin/sshd\" hostname=? addr=? terminal=ssh res=success'",
        f"type=USER_CMD msg=audit(1700000001.500:25): pid=33 uid=1001 auid=1001 ses=4 "
        f"msg='cwd=\"/home/kim\" cmd={_hex('cat /etc/shadow')} exe=\"/usr/bin/sudo\" terminal=pts/1 res=success'",
    ])
    docs, skipped = run(text)
    assert not skipped
    login, auth, start, cred, end, cmd = (d for d, _ in docs)
    assert login["event"]["action"] == "logged-in" and login["event"]["outcome"] == "failure"
    assert login["event"]["category"] == ["authentication"] and login["source"]["ip"] == "203.0.113.9"
    assert login["user"]["effective"]["name"] == "eve" and "id" not in login["user"]
    assert auth["event"]["action"] == "authenticated" and auth["user"]["id"] == "1001"
    assert auth["user"]["effective"]["name"] == "root"
    assert start["event"]["category"] == ["session"] and start["event"]["type"] == ["start"]
    assert start["source"]["ip"] == "198.51.100.2"
    assert cred["event"]["action"] == "acquired-credentials"
    assert end["event"]["action"] == "ended-session" and end["event"]["type"] == ["end"]
    assert cmd["event"]["action"] == "ran-command" and cmd["auditd"]["data"]["cmd"] == "cat /etc/shadow"
    assert cmd["process"]["working_directory"] == "/home/kim"


def test_categories_of_other_syscalls_and_records():
    text = "\n".join([
        sys_line(30, 62), "type=EOE msg=audit(1700000000.250:30):",  # kill
        sys_line(31, 105), "type=EOE msg=audit(1700000000.250:31):",  # setuid
        sys_line(32, 313), "type=EOE msg=audit(1700000000.250:32):",  # finit_module
        sys_line(33, 221, arch="c00000b7"), "type=EOE msg=audit(1700000000.250:33):",  # aarch64 execve
        "type=ADD_USER msg=audit(1700000002.000:34): pid=40 uid=0 auid=1001 ses=4 msg='op=add-user id=1005 "
        "exe=\"/usr/sbin/useradd\" hostname=? addr=? terminal=pts/1 res=success'",
    ])
    docs = [d for d, _ in run(text)[0]]
    assert docs[0]["event"]["action"] == "killed-pid" and docs[0]["event"]["type"] == ["end"]
    assert docs[1]["event"]["action"] == ["changed-identity-of", "uid_change"]
    assert docs[2]["event"]["category"] == ["driver"]
    assert docs[3]["auditd"]["data"]["syscall"] == "execve" and docs[3]["host"]["architecture"] == "aarch64"
    assert docs[4]["event"]["category"] == ["iam"] and docs[4]["user"]["target"]["id"] == "1005"


def test_out_of_order_and_interleaved_records_group_by_serial_in_first_line_order():
    text = "\n".join([
        'type=CWD msg=audit(1700000000.250:41): cwd="/"',
        sys_line(40, 2),
        sys_line(41, 2),
        'type=PATH msg=audit(1700000000.250:40): item=0 name="/a" nametype=NORMAL',
        "type=EOE msg=audit(1700000000.250:41):",
        "type=EOE msg=audit(1700000000.250:40):",
    ])
    docs, skipped = run(text)
    assert not skipped
    assert [(d["auditd"]["sequence"], n) for d, n in docs] == [(41, 1), (40, 2)]
    assert docs[0][0]["process"]["working_directory"] == "/" and docs[1][0]["file"]["path"] == "/a"


def test_events_left_open_at_end_of_file():
    text = "\n".join([
        sys_line(50, 2),  # no EOE: emitted, it has a SYSCALL
        'type=PATH msg=audit(1700000000.250:51): item=0 name="/b"',  # a lone fragment: reported
        "type=ANOM_ABEND msg=audit(1700000000.250:52): auid=1001 uid=1001 gid=1001 ses=4 pid=7 comm=\"x\" sig=11",
    ])
    docs, skipped = run(text)
    assert [d["auditd"]["sequence"] for d, _ in docs] == [50, 52]
    assert [n for n, _ in skipped] == [2] and "never closed" in skipped[0][1]


def test_bad_input_is_reported_line_by_line():
    text = "\n".join([
        "garbage here",
        "type=SYSCALL msg=audit(notatime:1): arch=c000003e",
        "",
        "type=EOE msg=audit(1700000000.250:99):",
        'type=CWD msg=audit(1700000000.250:60): cwd="/"',
        'type=PATH msg=audit(1700000000.250:60): item=0 name="/x"',
        "type=EOE msg=audit(1700000000.250:60):",
        "x" * (MAX_LINE + 1),
    ])
    docs, skipped = run(text)
    assert docs == []
    reasons = dict(skipped)
    assert set(reasons) == {1, 2, 4, 5, 6, 8}
    assert "not an audit record" in reasons[1] and "EOE" in reasons[4]
    assert "no SYSCALL" in reasons[5] and "longer" in reasons[8]


def test_late_record_after_emission_and_in_flight_bound():
    lines = [sys_line(70, 2), "type=EOE msg=audit(1700000000.250:70):",
             'type=CWD msg=audit(1700000000.250:70): cwd="/late"', "type=EOE msg=audit(1700000000.250:70):"]
    docs, skipped = run("\n".join(lines))
    assert len(docs) == 1 and [n for n, _ in skipped] == [3]
    # an event without EOE is closed once more than MAX_IN_FLIGHT events wait behind it
    many = [sys_line(100, 2)] + [
        line for seq in range(101, 102 + MAX_IN_FLIGHT)
        for line in (sys_line(seq, 2), f"type=EOE msg=audit(1700000000.250:{seq}):")]
    skipped = []
    it = read(enumerate(many, 1), lambda n, r: skipped.append(n), ReadOptions())
    first, line = next(it)
    assert first["auditd"]["sequence"] == 100 and line == 1


def test_sniff_and_format():
    assert sniff(EXEC.split("\n"))
    assert sniff(["node=a type=EOE msg=audit(1.000:1):"])
    assert not sniff(["Jan  1 00:00:00 host sshd[1]: Accepted password", "{\"a\": 1}"])
    assert FORMAT.name == "auditd"
    docs = list(FORMAT.read(enumerate(EXEC.split("\n"), 1), lambda n, r: None, ReadOptions()))
    assert len(docs) == 1
