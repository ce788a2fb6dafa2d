"""`trailhound test PATH`: a rule file, a test file or a directory, through the installed command."""

from __future__ import annotations

from helpers import rule
from test_cli_exit_codes import trailhound

CASES = '''
[[case]]
name = "fires"
hits = 1
ndjson = """
{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "process": {"name": "ssh"}}
"""

[[case]]
name = "quiet"
hits = 0
ndjson = """
{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "process": {"name": "scp"}}
"""
'''


def setup(tmp_path):
    (tmp_path / "ssh.toml").write_text(rule(name="ssh client", rule_id="r-ssh"))
    (tmp_path / "ssh.test.toml").write_text(CASES)
    (tmp_path / "other.toml").write_text(rule(name="other rule", rule_id="r-other"))
    (tmp_path / "other.test.toml").write_text('rule_id = "r-other"\n' + CASES.replace("hits = 1", "hits = 2"))
    return tmp_path


def test_a_rule_file_runs_the_tests_beside_it(tmp_path):
    setup(tmp_path)
    res = trailhound("test", str(tmp_path / "ssh.toml"))
    assert res.returncode == 0, res.stdout + res.stderr  # was "0 cases", exit 0
    assert "PASS ssh client :: fires (1 hits)" in res.stdout and "PASS ssh client :: quiet" in res.stdout
    assert "2 passed, 0 failed, 0 errors; 1 rules, 2 cases" in res.stderr
    assert "other rule" not in res.stdout + res.stderr  # only what was asked for


def test_a_test_file_finds_its_rule_beside_it_or_by_rule_id(tmp_path):
    setup(tmp_path)
    res = trailhound("test", str(tmp_path / "ssh.test.toml"))
    assert res.returncode == 0, res.stdout + res.stderr  # was "no loaded rule"
    assert "2 passed, 0 failed, 0 errors; 1 rules, 2 cases" in res.stderr
    other = trailhound("test", str(tmp_path / "other.test.toml"))  # names its rule by rule_id
    assert other.returncode == 1 and "FAIL other rule :: fires" in other.stdout
    assert "expected 2 hits, got 1" in other.stdout and "ssh client" not in other.stdout


def test_a_directory_runs_everything_under_it(tmp_path):
    setup(tmp_path)
    res = trailhound("test", str(tmp_path))
    assert res.returncode == 1 and "3 passed, 1 failed, 0 errors; 2 rules, 4 cases" in res.stderr


def test_no_cases_found_is_an_error(tmp_path):
    (tmp_path / "lonely.toml").write_text(rule(name="lonely"))
    res = trailhound("test", str(tmp_path / "lonely.toml"))
    assert res.returncode == 2 and "no test cases found" in res.stderr and "lonely.test.toml" not in res.stdout
    assert "untested lonely: needs a positive and a negative case" in res.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert trailhound("test", str(empty)).returncode == 2
    missing = trailhound("test", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_the_no_cases_message_keeps_its_brackets(tmp_path):
    (tmp_path / "r.toml").write_text(rule())
    res = trailhound("test", str(tmp_path))
    assert res.returncode == 2 and "tested by the [[case]] tables" in res.stderr
