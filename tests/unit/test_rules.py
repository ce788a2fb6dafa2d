"""Loading detection-rules TOML and deciding what can run, on rules the tests write."""

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.rules.check import check_rule
from trailhound.rules.errors import RuleError
from trailhound.rules.loader import load_rules, rule_from_toml

FULL = '''
[metadata]
creation_date = "2026/01/01"
maturity = "production"

[rule]
author = ["Trailhound"]
description = "SSH with a key from /tmp"
name = "SSH key from tmp"
risk_score = 73
rule_id = "00000000-0000-4000-8000-000000000001"
severity = "high"
type = "eql"
language = "eql"
index = ["logs-endpoint.events.process-*"]
custom_key = "kept"
query = \'\'\'
process where event.type == "start" and process.name == "ssh" and process.args : "/tmp/*"
\'\'\'

[[rule.threat]]
framework = "MITRE ATT&CK"
'''

BARE = '''
description = "first-seen key"
name = "KQL rule"
risk_score = 21
rule_id = "r2"
severity = "low"
type = "query"
language = "kuery"
query = "event.category:authentication and event.outcome:success"
'''


def rule(**over):
    base = dict(description="d", name="n", risk_score=47, rule_id="x", severity="medium", type="eql",
                language="eql", query='process where true')
    base.update(over)
    body = "\n".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = """{v}"""' for k, v in base.items())
    return rule_from_toml("[rule]\n" + body, "test.toml")


def test_full_file_with_metadata_threat_and_unknown_keys():
    r = rule_from_toml(FULL, "a.toml")
    assert (r.name, r.type, r.severity, r.risk_score) == ("SSH key from tmp", "eql", "high", 73)
    assert r.metadata["maturity"] == "production"
    assert r.threat[0]["framework"] == "MITRE ATT&CK"
    assert r.extra == {"custom_key": "kept"}
    assert check_rule(r).status == "ok"


def test_bare_rule_body_without_headers():
    r = rule_from_toml(BARE, "pasted")
    assert r.language == "kuery" and check_rule(r).status == "ok"


@pytest.mark.parametrize("text, key, words", [
    ("[rule]\nname = 'x'", "rule_id", "required key is missing"),
    (FULL.replace('severity = "high"', 'severity = "urgent"'), "severity", "not one of"),
    (FULL.replace("risk_score = 73", "risk_score = 120"), "risk_score", "0 to 100"),
    (FULL.replace('type = "eql"', 'type = "sigma"'), "type", "unknown rule type"),
    ("[metadata]\nx = 1", "rule", "no [rule] table"),
])
def test_bad_rules_name_the_file_and_key(text, key, words):
    with pytest.raises(RuleError) as info:
        rule_from_toml(text, "bad.toml")
    assert info.value.key == key and words in info.value.message and "bad.toml" in str(info.value)


def test_invalid_toml_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "ok.toml").write_text(FULL)
    (tmp_path / "broken.toml").write_text("[rule\nname=")
    loaded = load_rules([tmp_path])
    rules, errors = loaded.rules, loaded.errors
    assert [r.name for r in rules] == ["SSH key from tmp"]
    assert len(errors) == 1 and "invalid TOML" in errors[0].message and errors[0].source.endswith("broken.toml")


def test_statuses_say_exactly_why():
    assert check_rule(rule()).status == "ok"
    lucene = check_rule(rule(type="query", language="lucene", query="a:b"))
    assert lucene.status == "unsupported" and "Lucene" in lucene.reason
    esql = check_rule(rule(type="esql", language="esql", query="from logs-*"))
    assert esql.status == "unsupported" and "ES|QL" in esql.reason
    nt = check_rule(rule(type="new_terms", language="kuery", query="event.category:process"))
    assert nt.status == "error" and "needs value = [fields...]" in nt.reason
    th = check_rule(rule(type="threshold", language="kuery", query="event.category:process"))
    assert th.status == "error" and "whole-number value" in th.reason
    bad = check_rule(rule(query="process where process.name = 'x'"))
    assert bad.status == "error" and "line 1, column" in bad.reason and "^" in bad.reason


def test_compiles_against_ecs_types_and_warns_on_unknown_fields():
    ok = check_rule(rule(query='network where source.ip == "10.0.0.1" and process.args : "-D"'))
    assert ok.status == "ok" and ok.warnings == ()
    typo = check_rule(rule(query='process where proces.name == "ssh"'))
    assert typo.status == "ok" and typo.warnings == ("field 'proces.name' is not in ECS 9.3.0",)
    # an array (process.args) combined with another field inside one function cannot run yet
    combo = check_rule(rule(query='process where startsWith(process.args, process.name)'))
    assert combo.status == "error" and "multi-valued field 'process.args'" in combo.reason


def test_validate_command_table_and_exit_codes(tmp_path):
    (tmp_path / "a.toml").write_text(FULL)
    (tmp_path / "b.toml").write_text(BARE)
    runner = CliRunner()
    res = runner.invoke(app, ["rules", "validate", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "SSH key from tmp" in res.output and "2 rules: 2 ok, 0 unsupported, 0 errors" in res.output
    (tmp_path / "c.toml").write_text(FULL.replace('process.name == "ssh"', "process.name = 1"))
    res = runner.invoke(app, ["rules", "validate", str(tmp_path)])
    assert res.exit_code == 1 and "1 errors" in res.output
