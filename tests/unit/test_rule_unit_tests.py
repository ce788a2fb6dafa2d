"""`trailhound test`: rule unit-test files, their cases, and the pack's own tests."""

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.pack import DIR as PACK
from trailhound.rules.errors import RuleError
from trailhound.rules.loader import load_rules
from trailhound.rules.testing import load_test_files, parse_test_file

RULE = '''
[rule]
name = "SSH with an identity file"
rule_id = "t-1"
description = "d"
risk_score = 47
severity = "medium"
type = "eql"
language = "eql"
query = "process where event.type == \\"start\\" and process.name == \\"ssh\\" and process.args : \\"-i\\""
'''

CASES = '''
[[case]]
name = "fires on ssh -i"
hits = 1
fields = { process.name = "ssh" }
[[case.event]]
"@timestamp" = "2026-01-01T00:00:00Z"
event = { category = ["process"], type = ["start"] }
process = { name = "ssh", args = ["ssh", "-i", "/tmp/k", "h"] }

[[case]]
name = "quiet without -i"
hits = 0
ndjson = """
{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": ["process"], "type": ["start"]}, "process": {"name": "ssh", "args": ["ssh", "h"]}}
"""
'''


def write(tmp_path, rule=RULE, cases=CASES):
    (tmp_path / "r.toml").write_text(rule)
    (tmp_path / "r.test.toml").write_text(cases)
    return tmp_path


def test_passing_cases_exit_zero_and_test_files_are_not_rules(tmp_path):
    write(tmp_path)
    assert [r.rule_id for r in load_rules([tmp_path]).rules] == ["t-1"]
    res = CliRunner().invoke(app, ["test", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "PASS SSH with an identity file :: fires on ssh -i (1 hits)" in res.output
    assert "2 passed, 0 failed, 0 errors" in res.output


def test_a_failing_case_shows_what_fired_and_exits_one(tmp_path):
    write(tmp_path, cases=CASES.replace("hits = 0", "hits = 1").replace('process.name = "ssh"', 'process.name = "scp"'))
    res = CliRunner().invoke(app, ["test", str(tmp_path)])
    assert res.exit_code == 1
    assert "FAIL SSH with an identity file :: fires on ssh -i" in res.output
    assert "process.name: expected 'scp'" in res.output and "fired:" in res.output and "process.name=ssh" in res.output
    assert "expected 1 hits, got 0" in res.output


def test_untested_rules_and_bad_test_files_are_reported(tmp_path):
    write(tmp_path, cases=CASES.split("[[case]]\nname = \"quiet")[0])
    res = CliRunner().invoke(app, ["test", str(tmp_path)])
    assert res.exit_code == 0 and "untested SSH with an identity file: needs a negative case" in res.output
    (tmp_path / "r.test.toml").write_text('[[case]]\nname = "x"\nhits = 1\n')
    res = CliRunner().invoke(app, ["test", str(tmp_path)])
    assert res.exit_code == 2 and "give exactly one of [[case.event]], ndjson or log" in res.output
    with pytest.raises(RuleError, match="name the file"):
        parse_test_file({"case": [{"name": "x", "hits": 0, "ndjson": ""}]}, "tests.toml")


def test_the_pack_passes_its_own_tests_and_every_rule_has_both_kinds_of_case():
    files, errors = load_test_files([PACK])
    assert errors == []
    rules = load_rules([PACK]).rules
    assert len(rules) >= 2 and len(files) == len(rules)
    res = CliRunner().invoke(app, ["test"])
    assert res.exit_code == 0, res.output
    assert "untested" not in res.output and "FAIL" not in res.output


def test_naming_several_rules_of_a_folder_reads_its_tests_once(monkeypatch):
    """select() read every test file of the folder again for each rule file named in it."""
    from trailhound.rules import testing

    names = sorted(p for p in PACK.glob("*.toml") if not p.name.endswith(".test.toml"))[:4]
    one_by_one = [testing.select([p]) for p in names]
    calls = []
    real = testing.load_test_files
    monkeypatch.setattr(testing, "load_test_files", lambda paths: calls.append(list(paths)) or real(paths))
    together = testing.select(names)
    assert len(calls) == 1
    assert [r.rule_id for r in together.rules] == [r.rule_id for s in one_by_one for r in s.rules]
    assert [f.path for f in together.files] == [f.path for s in one_by_one for f in s.files] and together.files
