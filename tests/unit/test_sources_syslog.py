"""Syslog and journald → ECS: framing, years, sshd/sudo/PAM/user-tool messages, bad input, and the
loader, query, hunt and normalize paths over such files."""

import gzip
import json
from datetime import UTC, datetime

from typer.testing import CliRunner

from trailhound.api import search
from trailhound.cli.main import app
from trailhound.sources import ReadOptions, load_events
from trailhound.sources.registry import detect
from trailhound.sources.syslog import read

from helpers import hunt_cli


def normalize(*lines, **options):
    skipped = []
    docs = list(read(enumerate(lines, 1), lambda n, r: skipped.append((n, r)), ReadOptions(**options)))
    return docs, skipped


def one(line, **options):
    options.setdefault("year", 2026)
    (doc, _), = normalize(line, **options)[0]
    return doc


def test_accepted_publickey_and_failed_password():
    doc = one("Mar  3 10:00:01 web1 sshd[812]: Accepted publickey for deploy from 10.1.2.3 port 50022 ssh2: "
              "ED25519 SHA256:abc")
    assert doc["@timestamp"] == "2026-03-03T10:00:01.000Z"
    assert doc["event"] | {} == {"kind": "event", "timezone": "+0000", "action": "ssh_login", "type": ["info"],
                                 "category": ["authentication", "session"], "outcome": "success"}
    assert doc["user"] == {"name": "deploy"} and doc["source"] == {"ip": "10.1.2.3", "address": "10.1.2.3", "port": 50022}
    assert doc["system"]["auth"]["ssh"] == {"event": "Accepted", "method": "publickey", "signature": "ED25519 SHA256:abc"}
    assert doc["host"] == {"hostname": "web1", "name": "web1", "id": "web1", "os": {"type": "linux"}}
    assert doc["process"] == {"name": "sshd", "pid": 812}
    failed = one("Mar  3 10:00:02 web1 sshd-session[813]: Failed password for invalid user admin from 2001:db8::7 port 4 ssh2")
    assert (failed["event"]["outcome"], failed["event"]["category"], failed["user"]["name"]) == (
        "failure", ["authentication"], "admin")
    assert failed["source"]["ip"] == "2001:db8::7"


def test_invalid_user_dropped_connection_and_disconnect():
    inv = one("Mar  3 10:00:03 web1 sshd[9]: Invalid user oracle from 203.0.113.9 port 1122")
    assert inv["system"]["auth"]["ssh"] == {"event": "Invalid"} and inv["event"]["outcome"] == "failure"
    assert inv["source"]["port"] == 1122
    dropped = one("Mar  3 10:00:04 web1 sshd[9]: Did not receive identification string from 203.0.113.9 port 6")
    assert dropped["source"] == {"ip": "203.0.113.9"} and "action" not in dropped["event"]
    bye = one("Mar  3 10:00:05 web1 sshd[9]: Disconnected from user deploy 10.1.2.3 port 50022")
    assert (bye["event"]["category"], bye["event"]["type"], bye["user"]["name"]) == (["session"], ["end"], "deploy")


def test_sudo_pam_and_user_tools():
    sudo = one("Mar  3 10:01:00 web1 sudo:   deploy : TTY=pts/0 ; PWD=/srv ; USER=root ; COMMAND=/usr/bin/id -u")
    assert sudo["user"] == {"name": "deploy", "effective": {"name": "root"}}
    assert sudo["system"]["auth"]["sudo"] == {"command": "/usr/bin/id -u", "pwd": "/srv", "tty": "pts/0", "user": "root"}
    assert sudo["event"]["category"] == ["process"]
    denied = one("Mar  3 10:01:01 web1 sudo: eve : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh")
    assert denied["system"]["auth"]["sudo"]["error"] == "user NOT in sudoers"
    pam = one("Mar  3 10:01:02 web1 sshd[5]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
              "tty=ssh ruser= rhost=198.51.100.4  user=root")
    assert pam["event"]["outcome"] == "failure" and pam["source"]["ip"] == "198.51.100.4"
    assert pam["user"] == {"id": "0", "effective": {"name": "root", "id": "0"}}
    opened = one("Mar  3 10:01:03 web1 sshd[5]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)")
    assert (opened["event"]["type"], opened["user"]) == (["start"], {"name": "deploy", "id": "1000"})
    user = one("Mar  3 10:02:00 web1 useradd[77]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/0")
    assert user["event"]["type"] == ["user", "creation"] and user["user"] == {"name": "backdoor", "id": "0"}
    assert user["system"]["auth"]["useradd"] == {"home": "/root", "shell": "/bin/bash"}
    group = one("Mar  3 10:02:01 web1 groupadd[78]: new group: name=ops, GID=1500")
    assert group["group"] == {"id": "1500", "name": "ops"}
    gone = one("Mar  3 10:02:02 web1 userdel[79]: delete user 'backdoor'")
    assert gone["event"]["type"] == ["user", "deletion"]


def test_other_framings_rfc3339_rfc5424_journald():
    iso = one("2026-03-03T10:00:01.123456+02:00 web1 sshd[1]: Accepted password for a from 10.0.0.1 port 1 ssh2")
    assert iso["@timestamp"] == "2026-03-03T08:00:01.123Z"
    rfc5424 = one('<38>1 2026-03-03T10:00:01Z web1 sshd 44 - [meta x="1"] Invalid user b from 10.0.0.2')
    assert (rfc5424["process"], rfc5424["user"]["name"]) == ({"name": "sshd", "pid": 44}, "b")
    assert rfc5424["log"]["syslog"]["facility"]["code"] == 4 and rfc5424["log"]["syslog"]["severity"]["code"] == 6
    entry = {"__REALTIME_TIMESTAMP": "1772532001000000", "_HOSTNAME": "web2", "SYSLOG_IDENTIFIER": "sshd",
             "_PID": "91", "MESSAGE": list(b"Accepted publickey for c from 10.0.0.3 port 9 ssh2"),
             "_SYSTEMD_UNIT": "ssh.service"}
    journal = one(json.dumps(entry))
    assert journal["@timestamp"] == "2026-03-03T10:00:01.000Z" and journal["user"]["name"] == "c"
    assert journal["host"]["name"] == "web2" and journal["systemd"]["unit"] == "ssh.service"
    assert detect([json.dumps(entry)]).name == "syslog"
    assert detect(['{"@timestamp": "x", "event": {}}']) is None  # ECS JSON


def test_year_from_option_file_time_and_rollover():
    line = "Dec 31 23:59:59 h sshd[1]: x"
    assert one(line, year=2020)["@timestamp"].startswith("2020-12-31")
    jan = datetime(2026, 1, 2, tzinfo=UTC)
    # a December line in a file last written in January is from the year before
    assert one(line, year=None, file_time=jan)["@timestamp"].startswith("2025-12-31")
    assert one("Jan  1 00:00:01 h sshd[1]: x", year=None, file_time=jan)["@timestamp"].startswith("2026-01-01")
    assert one("Jan  1 00:00:01 h sshd[1]: x", timezone="Europe/Paris")["@timestamp"] == "2025-12-31T23:00:01.000Z"


def test_bad_lines_are_reported_not_dropped_silently():
    docs, skipped = normalize("Mar  3 10:00:01 h sshd[1]: fine", "garbage without a date", "",
                              '{"MESSAGE": "no time"}', "Feb 30 10:00:00 h x: impossible date", year=2026)
    assert len(docs) == 1
    assert [n for n, _ in skipped] == [2, 4, 5]
    assert "not a syslog line" in skipped[0][1] and "__REALTIME_TIMESTAMP" in skipped[1][1]


AUTH = [
    "Mar  3 10:00:01 web1 sshd[1]: Failed password for root from 203.0.113.5 port 1001 ssh2",
    "Mar  3 10:00:02 web1 sshd[1]: Failed password for root from 203.0.113.5 port 1002 ssh2",
    "Mar  3 10:00:03 web1 sshd[1]: Failed password for root from 203.0.113.5 port 1003 ssh2",
    "Mar  3 10:00:04 web1 sshd[1]: Accepted password for root from 203.0.113.5 port 1004 ssh2",
]


def test_loader_query_and_files_with_damage(tmp_path):
    log = tmp_path / "auth.log.gz"
    raw = "\n".join(AUTH).encode() + b"\nMar  3 10:00:05 web1 sshd[1]: bad byte \xff here\n" + b"x" * (1 << 21)
    log.write_bytes(gzip.compress(raw))
    table = load_events([log], None, options=ReadOptions(year=2026))
    assert table.frame.height == 5
    assert [(s.line, s.reason.split(":")[0]) for s in table.report.skipped] == [
        (5, "invalid UTF-8 at byte 39"), (6, "line of 2097152 bytes, over the 1048576-byte limit")]
    assert table.documents([4])[0]["message"] == "bad byte \ufffd here"
    result = search('sequence by source.ip with maxspan=1m [authentication where event.outcome == "failure"] '
                    'with runs=3 [authentication where event.outcome == "success"]', [log],
                    read_options=ReadOptions(year=2026))
    assert len(result.hits) == 1 and result.hits[0].join_keys == ("203.0.113.5",)


BRUTE = '''
[rule]
name = "SSH brute force then success"
rule_id = "r-bf"
description = "d"
risk_score = 73
severity = "high"
type = "eql"
language = "eql"
query = """
sequence by host.id, source.ip, user.name with maxspan=15s
  [authentication where host.os.type == "linux" and event.action in ("ssh_login", "user_login") and
   event.outcome == "failure"] with runs=3
  [authentication where host.os.type == "linux" and event.action in ("ssh_login", "user_login") and
   event.outcome == "success"]
"""
'''


def test_hunt_and_normalize_cli_on_an_auth_log(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("\n".join(AUTH) + "\n")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bf.toml").write_text(BRUTE)
    res, alerts = hunt_cli(log, rules, "--year", "2026")
    assert res.exit_code == 1, res.output
    assert len(alerts) == 5 and alerts[-1]["kibana.alert.rule.rule_id"] == "r-bf"
    res = CliRunner().invoke(app, ["normalize", str(log), "--year", "2026"])
    assert res.exit_code == 0
    docs = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [d["event"]["outcome"] for d in docs] == ["failure"] * 3 + ["success"]
    res = CliRunner().invoke(app, ["normalize", str(log), "-i", "nope"])
    assert res.exit_code == 2 and "unknown format 'nope'" in res.output


def test_the_year_note_only_for_year_less_timestamps(tmp_path):
    legacy, iso = tmp_path / "legacy.log", tmp_path / "iso.log"
    legacy.write_text(AUTH[0] + "\n")
    iso.write_text("2026-03-03T10:00:01+00:00 web1 sshd[1]: Accepted password for a from 10.0.0.1 port 1 ssh2\n")
    notes = load_events([legacy, iso], None).report.notes
    assert len(notes) == 1 and "legacy.log" in notes[0] and "--year" in notes[0]
    assert load_events([legacy], None, options=ReadOptions(year=2026)).report.notes == []


def test_event_timezone_is_the_lines_own_offset_else_the_zones_on_that_date():
    """--timezone stamped the zone's offset of *now* on every line, even on lines with their own offset."""
    paris = {"timezone": "Europe/Paris"}
    own = one("2026-07-01T10:00:00+00:00 web1 sshd[1]: Connection closed by 10.1.2.3 port 22", **paris)
    assert own["@timestamp"] == "2026-07-01T10:00:00.000Z" and own["event"]["timezone"] == "+0000"
    summer = one("Jul  1 12:00:00 web1 sshd[1]: Connection closed by 10.1.2.3 port 22", **paris)
    winter = one("Jan  1 12:00:00 web1 sshd[1]: Connection closed by 10.1.2.3 port 22", **paris)
    assert summer["@timestamp"] == "2026-07-01T10:00:00.000Z" and summer["event"]["timezone"] == "+0200"
    assert winter["@timestamp"] == "2026-01-01T11:00:00.000Z" and winter["event"]["timezone"] == "+0100"
