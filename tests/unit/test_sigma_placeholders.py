"""`--sigma-placeholders FILE`: the values of Sigma `|expand` placeholders for hunt, test and rules validate
(YAML or TOML); a placeholder not given leaves the rule unsupported with the placeholder named; a bad file is
an error naming the file and the reason."""

import json

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.rules.errors import RuleError
from trailhound.rules.sigma import read_placeholders

RULE = """title: Login by an admin account
id: 6a1c2b3d-0000-4000-8000-000000000040
logsource: {product: linux, service: auth}
detection:
  sel:
    event.outcome: success
    user.name|expand: '%admins%'
  condition: sel
level: medium
"""
TEST = """rule_id = "6a1c2b3d-0000-4000-8000-000000000040"

[[case]]
name = "an admin logs in"
hits = 1
ndjson = '''
{"@timestamp": "2026-12-01T10:00:00Z", "event": {"category": ["authentication"], "outcome": "success"}, "user": {"name": "ops1"}}
'''

[[case]]
name = "someone else logs in"
hits = 0
ndjson = '''
{"@timestamp": "2026-12-01T10:00:00Z", "event": {"category": ["authentication"], "outcome": "success"}, "user": {"name": "bob"}}
'''
"""


@pytest.fixture
def rules(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "admin_login.yml").write_text(RULE)
    (folder / "admin_login.test.toml").write_text(TEST)
    return folder


def _events(tmp_path):
    path = tmp_path / "e.ndjson"
    path.write_text("".join(json.dumps({"@timestamp": f"2026-12-01T10:00:0{i}Z", "user": {"name": name},
                                        "event": {"category": ["authentication"], "outcome": "success"}}) + "\n"
                            for i, name in enumerate(["ops1", "bob", "OPS2", "root"])))
    return path


def test_yaml_and_toml_files_read_the_same(tmp_path):
    (tmp_path / "p.yml").write_text("admins: [ops1, ops2]\nport: 22\n")
    (tmp_path / "p.toml").write_text('admins = ["ops1", "ops2"]\nport = 22\n')
    (tmp_path / "vars.yml").write_text("vars:\n  admins: [ops1, ops2]\n  port: 22\n")  # a pySigma pipeline's shape
    want = {"admins": ("ops1", "ops2"), "port": ("22",)}
    assert read_placeholders(tmp_path / "p.yml") == read_placeholders(tmp_path / "p.toml") == want
    assert read_placeholders(tmp_path / "vars.yml") == want


@pytest.mark.parametrize("text, reason", [
    ("admins: [ops1\n", "invalid YAML (line 2"),
    ("- ops1\n", "a map of placeholder name"),
    ("admins: []\n", "empty list"),
    ("admins: [{a: 1}]\n", "strings or numbers, not dict"),
])
def test_a_bad_placeholder_file_names_the_file_and_the_reason(tmp_path, text, reason):
    path = tmp_path / "p.yml"
    path.write_text(text)
    with pytest.raises(RuleError, match="p.yml") as e:
        read_placeholders(path)
    assert reason in str(e.value)


def test_validate_without_and_with_the_values(tmp_path, rules):
    runner = CliRunner()
    res = runner.invoke(app, ["rules", "validate", "--format", "ndjson", str(rules)])
    [row] = [json.loads(line) for line in res.stdout.splitlines()]
    assert row["status"] == "unsupported" and "%admins%" in row["detail"] and "--sigma-placeholders" in row["detail"]
    (tmp_path / "p.yml").write_text("admins: [ops1, ops2]\n")
    res = runner.invoke(app, ["rules", "validate", "--format", "ndjson", "--sigma-placeholders",
                              str(tmp_path / "p.yml"), str(rules)])
    [row] = [json.loads(line) for line in res.stdout.splitlines()]
    assert row["status"] == "ok", row
    (tmp_path / "other.yml").write_text("users: [ops1]\n")  # values, but not for this placeholder
    res = runner.invoke(app, ["rules", "validate", "--format", "ndjson", "--sigma-placeholders",
                              str(tmp_path / "other.yml"), str(rules)])
    [row] = [json.loads(line) for line in res.stdout.splitlines()]
    assert row["status"] == "unsupported" and "%admins%" in row["detail"]


def test_hunt_expands_the_placeholder(tmp_path, rules):
    (tmp_path / "p.toml").write_text('admins = ["ops1", "ops2"]\n')
    summary = tmp_path / "s.json"
    res = CliRunner().invoke(app, ["hunt", "--rules", str(rules), "--sigma-placeholders", str(tmp_path / "p.toml"),
                                   "--summary", str(summary), str(_events(tmp_path))])
    assert res.exit_code == 1, res.output  # alerts raised
    [rule] = json.loads(summary.read_text())["rules"]
    assert rule["alerts"] == 2  # ops1 and OPS2 (Sigma matches case-insensitively), not bob or root
    res = CliRunner().invoke(app, ["hunt", "--rules", str(rules), str(_events(tmp_path))])
    assert res.exit_code == 2 and "%admins% has no values" in res.output  # not run (nothing to run): named


def test_hunt_with_a_bad_placeholder_file_exits_2(tmp_path, rules):
    (tmp_path / "p.toml").write_text("admins = [\n")
    res = CliRunner().invoke(app, ["hunt", "--rules", str(rules), "--sigma-placeholders", str(tmp_path / "p.toml"),
                                   str(_events(tmp_path))])
    assert res.exit_code == 2 and "p.toml" in res.output and "invalid TOML" in res.output


def test_trailhound_test_with_the_values(tmp_path, rules):
    (tmp_path / "p.yml").write_text("admins: ops1\n")
    res = CliRunner().invoke(app, ["test", "--sigma-placeholders", str(tmp_path / "p.yml"), str(rules)])
    assert res.exit_code == 0, res.output
    assert "2 passed, 0 failed, 0 errors" in res.output
    res = CliRunner().invoke(app, ["test", str(rules)])
    assert res.exit_code == 2 and "%admins%" in res.output


def test_values_on_the_command_line(tmp_path, rules):
    runner = CliRunner()

    def status(*options: str) -> dict:
        res = runner.invoke(app, ["rules", "validate", "--format", "ndjson", *options, str(rules)])
        [row] = [json.loads(line) for line in res.stdout.splitlines()]
        return row

    assert status("--sigma-placeholder", "admins=ops1", "--sigma-placeholder", "admins=ops2")["status"] == "ok"
    res = runner.invoke(app, ["rules", "validate", "--sigma-placeholder", "admins", str(rules)])
    assert res.exit_code == 2 and "write NAME=VALUE" in res.output
    # the command line's values of a name replace the file's: ops1 only, so the hunt finds one login, not two
    (tmp_path / "p.yml").write_text("admins: [ops1, ops2]\n")
    summary = tmp_path / "s.json"
    res = runner.invoke(app, ["hunt", "--rules", str(rules), "--sigma-placeholders", str(tmp_path / "p.yml"),
                              "--sigma-placeholder", "%admins%=ops1", "--summary", str(summary),
                              str(_events(tmp_path))])
    assert res.exit_code == 1, res.output
    assert json.loads(summary.read_text())["rules"][0]["alerts"] == 1
