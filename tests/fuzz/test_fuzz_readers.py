"""Every reader over mutated log lines: a clean skip or an event, never an exception escaping
`load_events`, never a document that cannot be printed, never over a time budget.

Seeds are small fixtures of each format (auditd, syslog/auth, journald JSON, Sysmon for Linux,
ECS NDJSON and JSON arrays); mutations swap digits for Unicode digits, truncate, insert random
bytes and control characters, blow numbers up to thousands of digits and nest JSON deeply.
"""

from __future__ import annotations

import bz2
import gzip
import os
import tempfile
import time

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from trailhound.sources import ReadOptions, SourceError, load_events

AUDITD = [
    'type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55d1 a2=55d2 '
    'a3=8 items=2 ppid=100 pid=200 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 '
    'comm="ssh" exe="/usr/bin/ssh" subj=unconfined key="exec"',
    'type=EXECVE msg=audit(1700000000.123:42): argc=3 a0="ssh" a1="-i" a2="key"',
    'type=CWD msg=audit(1700000000.123:42): cwd="/root"',
    'type=PATH msg=audit(1700000000.123:42): item=0 name="/usr/bin/ssh" inode=12 dev=08:01 mode=0100755 ouid=0 '
    'ogid=0 rdev=00:00 nametype=NORMAL',
    'type=PROCTITLE msg=audit(1700000000.123:42): proctitle=737368002D69006B6579',
    'type=SOCKADDR msg=audit(1700000000.123:42): saddr=020000160A0000070000000000000000',
    'type=EOE msg=audit(1700000000.123:42):',
    'type=SECCOMP msg=audit(1700000001.000:43): auid=0 uid=0 ses=1 pid=7 comm="x" exe="/x" sig=31 arch=c000003e '
    'syscall=59 compat=0 ip=0x1 code=0x0',
    "type=USER_LOGIN msg=audit(1700000002.000:44): pid=9 uid=0 auid=1000 ses=4 msg='op=login acct=\"root\" "
    "exe=\"/usr/sbin/sshd\" hostname=? addr=10.0.0.7 terminal=ssh res=success'",
    'node=web1 type=SYSCALL msg=audit(1700000003.000:45): arch=c000003e syscall=2 success=no exit=-13 a0=1 a1=241 '
    'items=1 ppid=1 pid=300 auid=0 uid=0 comm="cat" exe="/bin/cat"',
]
SYSLOG = [
    "Mar  3 10:00:01 web1 sshd[812]: Accepted publickey for deploy from 10.1.2.3 port 50022 ssh2: ED25519 SHA256:x",
    "Mar  3 10:00:02 web1 sshd[813]: Failed password for invalid user admin from 2001:db8::7 port 4 ssh2",
    "Mar  3 10:00:03 web1 sudo:   deploy : TTY=pts/0 ; PWD=/home ; USER=root ; COMMAND=/usr/bin/id",
    "<38>1 2026-03-03T10:00:04.123+01:00 web1 sshd 814 - - Invalid user bob from 10.0.0.9 port 2222",
    "2026-03-03T10:00:05.000000+00:00 web1 sshd[815]: Disconnected from user root 10.0.0.1 port 22",
    "Mar  3 10:00:06 web1 sshd[816]: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)",
]
JOURNALD = [
    '{"__REALTIME_TIMESTAMP":"1700000000123456","MESSAGE":"Accepted password for root from 10.0.0.2 port 22 ssh2",'
    '"SYSLOG_IDENTIFIER":"sshd","_PID":"812","_HOSTNAME":"web1","_SYSTEMD_UNIT":"ssh.service"}',
    '{"__REALTIME_TIMESTAMP":"1700000001000000","MESSAGE":[104,105],"_COMM":"su","SYSLOG_PID":"9"}',
    '{"SyslogMessage":"Accepted publickey for a from 10.0.0.3 port 1 ssh2","EventTime":"2026-03-03T10:00:00Z",'
    '"HostName":"vm1","ProcessName":"sshd","ProcessID":77}',
]
SYSMON = [
    'Mar  3 10:00:07 web1 sysmon: <Event><System><Provider Name="Linux-Sysmon" Guid="{ff}"/><EventID>1</EventID>'
    '<Version>5</Version><Level>4</Level><Execution ProcessID="100" ThreadID="100"/><Computer>web1</Computer>'
    '</System><EventData><Data Name="UtcTime">2026-03-03 10:00:07.000</Data><Data Name="ProcessId">4242</Data>'
    '<Data Name="Image">/usr/bin/ssh</Data><Data Name="CommandLine">ssh -i key host</Data>'
    '<Data Name="ParentProcessId">1</Data><Data Name="User">root</Data></EventData></Event>',
    'Mar  3 10:00:08 web1 sysmon: <Event><System><EventID>3</EventID><Computer>web1</Computer></System><EventData>'
    '<Data Name="Initiated">true</Data><Data Name="SourceIp">10.0.0.1</Data><Data Name="SourcePort">4444</Data>'
    '<Data Name="DestinationIp">10.0.0.2</Data><Data Name="DestinationPort">22</Data></EventData></Event>',
]
ECS = [
    '{"@timestamp":"2026-03-03T10:00:00Z","event":{"category":["process"],"type":["start"]},'
    '"process":{"name":"ssh","pid":42,"args":["ssh","-i","k"],"parent":{"pid":1}},"host":{"name":"h"}}',
    '{"@timestamp":"2026-03-03T10:00:01Z","process.name":"scp","process":{"parent.name":"sh"},"user.id":"0"}',
    '{"@timestamp":"2026-03-03T10:00:02Z","event.category":"network","destination":{"ip":"10.0.0.2","port":22},'
    '"tags":[1,"a",null,{"k":[1,[2,3]]}],"n":1.5e300}',
]
SEEDS = {"auditd": AUDITD, "syslog": SYSLOG + SYSMON, "journald": JOURNALD, "ecs": ECS}
UNICODE_DIGITS = "²³¹٣۴९০๓０𝟘①⑽"
FIELDS = [None, ["process.pid", "process.name", "source.port", "event.code", "@timestamp", "user.id",
                 "auditd.data.syscall", "winlog.version", "n", "tags"]]
TMP = tempfile.mkdtemp(prefix="trailhound-fuzz-")
BUDGET_S = 10.0


def _examples(share: int) -> settings:
    """A share of the profile's example count, so the file stays within ~20 s in the ci profile."""
    return settings(max_examples=max(5, settings.default.max_examples // share))


@st.composite
def mutated(draw, seeds: list[str]) -> str:
    line = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["digit", "truncate", "bytes", "huge", "control", "nest", "swap"]))
        if kind == "digit" and any(c.isdigit() for c in line):
            spots = [i for i, c in enumerate(line) if c.isdigit()]
            i = draw(st.sampled_from(spots))
            line = line[:i] + draw(st.sampled_from(UNICODE_DIGITS)) + line[i + 1:]
        elif kind == "truncate" and line:
            line = line[:draw(st.integers(0, len(line)))]
        elif kind == "bytes":
            i = draw(st.integers(0, len(line)))
            junk = draw(st.binary(max_size=12)).decode("latin-1")
            line = line[:i] + junk + line[i:]
        elif kind == "huge" and any(c.isdigit() for c in line):
            i = draw(st.sampled_from([i for i, c in enumerate(line) if c.isdigit()]))
            line = line[:i] + "9" * draw(st.sampled_from([19, 20, 25, 400, 5000])) + line[i + 1:]
        elif kind == "control":
            i = draw(st.integers(0, len(line)))
            line = line[:i] + draw(st.sampled_from(["\x00", "\x1b]0;x\x07", "\r", "\x01", "\ufeff", "\ud800"])) + line[i:]
        elif kind == "nest" and line.startswith("{"):
            depth = draw(st.sampled_from([5, 99, 101, 300, 3000]))
            line = '{"w":' * depth + line + "}" * depth
        elif kind == "swap":
            line = draw(st.sampled_from(sum(SEEDS.values(), [])))
    return line


def check(lines: list[str], *, format: str | None, fields, wrap: str) -> None:
    text = "\n".join(lines) + "\n"
    raw = text.encode("utf-8", "surrogatepass")
    if wrap == "array" and format in (None, "ecs"):
        raw = b"[" + b",".join(line.encode("utf-8", "surrogatepass") for line in lines) + b"]"
    elif wrap == "gzip":
        raw = gzip.compress(raw)
    elif wrap == "bz2":
        raw = bz2.compress(raw)
    elif wrap == "utf16":
        raw = text.encode("utf-16", "surrogatepass")
    path = os.path.join(TMP, "input")
    with open(path, "wb") as out:
        out.write(raw)
    start = time.perf_counter()
    try:
        table = load_events([path], fields, format=format, options=ReadOptions(year=2026))
    except SourceError:
        return  # a clean refusal of the whole input (a broken compressed stream's header...)
    report = table.report
    assert sum(i.skipped for i in report.inputs) == report.skipped_count
    assert report.inputs[0].events == report.events == table.frame.height
    for doc in table.documents(range(table.frame.height)):
        orjson.dumps(doc)  # what `query --format ndjson` prints: never fails later
    table.locations(range(table.frame.height))
    assert time.perf_counter() - start < BUDGET_S


WRAPS = st.sampled_from(["plain", "plain", "gzip", "bz2", "utf16", "array"])


@_examples(3)
@given(st.lists(mutated(AUDITD), min_size=1, max_size=12), st.sampled_from(FIELDS), WRAPS,
       st.sampled_from([None, "auditd"]))
def test_auditd_reader_never_crashes(lines, fields, wrap, format):
    check(lines, format=format, fields=fields, wrap=wrap)


@_examples(3)
@given(st.lists(mutated(SYSLOG + SYSMON), min_size=1, max_size=8), st.sampled_from(FIELDS), WRAPS,
       st.sampled_from([None, "syslog"]))
def test_syslog_auth_and_sysmon_readers_never_crash(lines, fields, wrap, format):
    check(lines, format=format, fields=fields, wrap=wrap)


@_examples(4)
@given(st.lists(mutated(JOURNALD), min_size=1, max_size=6), st.sampled_from(FIELDS), WRAPS)
def test_journald_reader_never_crashes(lines, fields, wrap):
    check(lines, format="syslog", fields=fields, wrap=wrap)


@_examples(3)
@given(st.lists(mutated(ECS), min_size=1, max_size=6), st.sampled_from(FIELDS), WRAPS,
       st.sampled_from([None, "ecs"]))
def test_ecs_json_reader_never_crashes(lines, fields, wrap, format):
    check(lines, format=format, fields=fields, wrap=wrap)


@_examples(6)
@given(st.binary(max_size=400), st.sampled_from([None, "auditd", "syslog", "ecs"]))
def test_random_bytes_never_crash_any_reader(raw, format):
    path = os.path.join(TMP, "bytes")
    with open(path, "wb") as out:
        out.write(raw)
    try:
        table = load_events([path], None, format=format, options=ReadOptions(year=2026))
    except SourceError:
        return
    assert table.report.inputs[0].events == table.frame.height
