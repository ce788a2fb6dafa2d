"""What the installed `trailhound` command prints: terminal-safe text, tables that scale, the
hunt summary, NDJSON for every listing command."""

from __future__ import annotations

import json
import time

from helpers import rule, write_case
from test_cli_exit_codes import trailhound

ESC = "\x1b]0;pwned\x07"  # retitles an xterm; \x1b[2J would clear it
RLO = "\u202e"  # right-to-left override (Trojan Source)
UNSAFE = ("\x1b", "\x07", "\x9b", RLO)


def assert_terminal_safe(text: str) -> None:
    assert not any(c in text for c in UNSAFE), repr(text)


def test_escape_sequences_in_logs_and_rule_names_are_shown_not_played(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(f"2026-03-03T10:00:01+00:00 web1 sshd[1]: Invalid user {ESC}evil{RLO} from 10.0.0.1 port 1\n"
                   "2026-03-03T10:00:02+00:00 web1 sshd[1]: Accepted password for bob from 10.0.0.1 port 1 ssh2\n"
                   f"garbage line {ESC}\x9b31m\n")
    res = trailhound("query", "any where true", str(log), "--fields", "user.name,message")
    assert res.returncode == 0, res.stderr
    assert_terminal_safe(res.stdout + res.stderr)  # were printed raw
    assert "Invalid user \\x1b]0;pwned\\x07evil\\u202e from" in res.stdout
    # NDJSON keeps the value: JSON escapes control characters itself
    nd = trailhound("query", "any where true", str(log), "--format", "ndjson")
    assert json.loads(nd.stdout.splitlines()[0])["user"]["name"] == f"{ESC}evil{RLO}"

    name = f"ssh {ESC}rule{RLO}\x9b2J"
    data, rules = write_case(tmp_path / "r", [{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"},
                                               "process": {"name": "ssh"}, "user": {"name": f"u{ESC}"}}],
                             {"r.toml": rule(name=name.replace("\x1b", "\\u001b").replace("\x07", "\\u0007")
                                             .replace(RLO, "\\u202e").replace("\x9b", "\\u009b")),
                              "bad.toml": rule(name="bad\\u001b[31m", rule_id="b").replace("==", "=== (")})
    for cmd in (["hunt", "--rules", str(rules), str(data)], ["rules", "validate", str(rules)],
                ["test", str(rules / "r.toml")]):
        res = trailhound(*cmd)
        assert_terminal_safe(res.stdout + res.stderr)
        assert "\\x1b]0;pwned\\x07rule\\u202e\\x9b2J" in res.stdout + res.stderr, (cmd, res.stdout, res.stderr)


def test_a_large_result_is_capped_and_fast_and_a_huge_field_is_clipped(tmp_path):
    big = tmp_path / "big.ndjson"
    with big.open("w") as f:
        for i in range(300_000):
            f.write(f'{{"@timestamp":{1767225600000 + i},"event":{{"category":"process"}},"host":{{"name":"h{i % 7}"}},'
                    f'"process":{{"name":"ssh","pid":{i}}}}}\n')
    started = time.monotonic()
    res = trailhound("query", "process where true", str(big))
    assert time.monotonic() - started < 60  # was nothing printed after 10 minutes
    assert res.returncode == 0
    assert len(res.stdout.splitlines()) == 2 + 50  # header, rule, 50 rows
    assert "299950 more rows not shown; use --size N or --format ndjson" in res.stderr
    assert "300000 events from 1 input, 300000 events read" in res.stderr
    sized = trailhound("query", "process where true", str(big), "--size", "120", "--fields", "process.pid,host.name")
    lines = sized.stdout.splitlines()
    assert len(lines) == 2 + 120 and lines[0].split() == ["process.pid", "host.name"] and lines[2].split() == ["0", "h0"]
    assert "more rows not shown" not in sized.stderr

    huge = tmp_path / "huge.ndjson"
    huge.write_text(json.dumps({"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"},
                                "process": {"name": "ssh", "command_line": "A" * 15_000_000}}) + "\n")
    started = time.monotonic()
    res = trailhound("query", "process where true", str(huge))
    assert time.monotonic() - started < 60 and res.returncode == 0  # a 50 MB one hung over 5 minutes
    row = res.stdout.splitlines()[2]
    assert "A" * 199 + "…" in row and "A" * 201 not in row
    # a line over the 16 MiB bound for one JSON line is a reported bad line, not a hang
    huge.write_text(json.dumps({"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"},
                                "process": {"command_line": "A" * 50_000_000}}) + "\n")
    res = trailhound("query", "process where true", str(huge))
    assert res.returncode == 2 and ":1: line of 50000" in res.stderr and "--allow-bad-input" in res.stderr


def test_tables_are_not_wrapped_into_a_pipe(tmp_path):
    long = "/very/long/path/" + "x" * 150
    data, _ = write_case(tmp_path, [{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "file"},
                                     "host": {"name": "web"}, "file": {"path": long}}], {})
    res = trailhound("query", "file where true", str(data))
    rows = res.stdout.splitlines()
    assert len(rows) == 3 and rows[2].endswith(long) and len(rows[2]) > 160  # one line, not folded at 80


def test_hunt_prints_its_alerts_and_a_summary_with_hosts_users_and_time(tmp_path):
    events = [{"@timestamp": f"2026-01-01T00:00:0{i}Z", "event": {"category": "process", "id": f"e{i}"},
               "host": {"name": host}, "user": {"name": user}, "process": {"name": "ssh"}}
              for i, (host, user) in enumerate([("web", "alice"), ("db", "bob"), ("web", "carol")])]
    data, rules = write_case(tmp_path, events, {"r.toml": rule(name="ssh client")})
    summary = tmp_path / "summary.json"
    res = trailhound("hunt", "--rules", str(rules), str(data), "--format", "ndjson", "--summary", str(summary),
                     "--exit-zero")
    assert res.returncode == 0, res.stderr
    assert [json.loads(x)["event"]["id"] for x in res.stdout.splitlines()] == ["e0", "e1", "e2"]
    assert "alerts by rule" in res.stderr and "db, web" in res.stderr and "alice, bob, carol" in res.stderr
    assert "alerts on 2 host(s) (db, web), 3 user(s) (alice, bob, carol), from 2026-01-01T00:00:00" in res.stderr
    assert "hits: what the rule matched" in res.stderr
    doc = json.loads(summary.read_text())
    assert doc["alerts"] == 3 and doc["rules_run"] == 1 and doc["hosts"] == ["db", "web"]
    assert doc["rules"][0]["name"] == "ssh client" and doc["rules"][0]["hits"] == 3
    assert doc["inputs"]["events"] == 3 and doc["exit_code"] == 0
    table = trailhound("hunt", "--rules", str(rules), str(data))
    assert table.returncode == 1 and table.stdout.splitlines()[0] == "alerts by rule"
    assert "ssh client" in table.stdout and not any(x.startswith("{") for x in table.stdout.splitlines())


def test_validate_and_test_print_ndjson_rows_with_stable_keys(tmp_path):
    data, rules = write_case(tmp_path, [], {"r.toml": rule(name="ssh client"), "x.toml": "[rule\n"})
    (rules / "r.test.toml").write_text(
        '[[case]]\nname = "fires"\nhits = 1\nndjson = \'\'\'\n'
        '{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "process": {"name": "ssh"}}\n'
        "'''\n[[case]]\nname = \"quiet\"\nhits = 0\nndjson = '''\n"
        '{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "process": {"name": "scp"}}\n'
        "'''\n")
    val = trailhound("rules", "validate", str(rules), "--format", "ndjson")
    rows = [json.loads(x) for x in val.stdout.splitlines()]
    assert val.returncode == 1 and {r["status"] for r in rows} == {"ok", "error"}
    assert all(list(r) == ["rule", "rule_id", "file", "type", "status", "detail", "warnings"] for r in rows)
    res = trailhound("test", str(rules / "r.toml"), "--format", "ndjson")
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert res.returncode == 0, res.stderr
    assert [(r["case"], r["status"], r["hits"]) for r in rows] == [("fires", "pass", 1), ("quiet", "pass", 0)]
    assert all(list(r) == ["rule", "rule_id", "file", "case", "status", "expected_hits", "hits", "problems", "fired"]
               for r in rows)


def test_on_a_terminal_the_table_fits_its_width(tmp_path):
    import os
    import pty
    import subprocess

    from test_cli_exit_codes import SCRIPT

    long = "/very/long/path/" + "x" * 150
    data, _ = write_case(tmp_path, [{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "file"},
                                     "host": {"name": "web"}, "file": {"path": long}}], {})
    master, slave = pty.openpty()
    try:
        subprocess.run([str(SCRIPT), "query", "file where true", str(data)], stdout=slave, stderr=subprocess.DEVNULL,
                       timeout=120, env={**os.environ, "COLUMNS": "80"})
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    lines = out.decode().splitlines()
    assert lines and all(len(x) <= 80 for x in lines), lines
    assert "".join(x.split()[-1] for x in lines[2:]).endswith("x" * 150)  # folded, nothing lost


def test_ecs_on_standard_input_is_read_once_by_every_command(tmp_path):
    """`-` is standard input for normalize, query and hunt alike (normalize re-read it and printed nothing)."""
    doc = '{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process", "id": "e0"}, "process": {"name": "ssh"}}\n'
    norm = trailhound("normalize", "-", stdin=doc)
    assert norm.returncode == 0 and json.loads(norm.stdout)["event"]["id"] == "e0"
    q = trailhound("query", 'process where process.name == "ssh"', "-", "--format", "ndjson", stdin=doc)
    assert q.returncode == 0 and json.loads(q.stdout)["event"]["id"] == "e0"


def test_lab_list_prints_ndjson_rows_too():
    res = trailhound("lab", "list", "--format", "ndjson")
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert res.returncode == 0 and rows and all(set(r) == {"name", "techniques", "title", "atomic", "benign"} for r in rows)
    assert any(r["name"] == "container_ssh" for r in rows)
