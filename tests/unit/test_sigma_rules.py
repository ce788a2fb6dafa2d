"""Sigma YAML beside TOML: discovery, loading (pySigma's errors as load errors), metadata → Rule and
alert fields, `trailhound test` with `<rule>.test.toml`, and `rules validate` over SigmaHQ's Linux rules."""

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.rules.check import check_rule
from trailhound.rules.loader import load_rules
from trailhound.rules.sigma import threat_of

from helpers import rule as toml_rule

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sigma"
REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared")) / "corpora" / "sigma" / "rules-linux"

BASE = """title: {title}
id: {id}
logsource: {{product: linux, category: process_creation}}
detection:
    sel:
        Image|endswith: /nc
    condition: sel
level: {level}
"""


def test_sigma_and_toml_rules_load_from_one_directory(tmp_path):
    shutil.copy(FIXTURES / "proc_curl_pipe.yml", tmp_path / "a.yml")
    (tmp_path / "b.yaml").write_text(BASE.format(title="Netcat", id="0b0b0b0b-0000-4000-8000-000000000002",
                                                 level="low")
                                     + "---\n" + BASE.format(title="Netcat 2", id="0b0b0b0b-0000-4000-8000-000000000003",
                                                             level="critical"))
    (tmp_path / "c.toml").write_text(toml_rule())
    loaded = load_rules([tmp_path])
    assert loaded.errors == []
    assert [r.name for r in loaded.rules] == ["Curl Output Piped To A Shell", "Netcat", "Netcat 2", "SSH"]
    assert [(r.severity, r.risk_score) for r in loaded.rules[1:3]] == [("low", 21), ("critical", 99)]
    assert all(check_rule(r).status == "ok" for r in loaded.rules)


def test_metadata_becomes_the_rules():
    [rule] = load_rules([FIXTURES / "proc_curl_pipe.yml"]).rules
    assert rule.rule_id == "6a1c2b3d-0000-4000-8000-000000000001"
    assert (rule.severity, rule.risk_score, rule.language) == ("high", 73, "sigma")
    assert rule.author == ("Trailhound tests",)
    assert rule.references == ("https://example.org/curl-pipe",)
    assert rule.false_positives == ("Installers that pipe a script to a shell",)
    assert rule.extra["sigma"]["status"] == "test"
    [execution, c2] = rule.threat
    assert execution["tactic"]["id"] == "TA0002" and c2["tactic"]["id"] == "TA0011"
    assert [t["id"] for t in execution["technique"]] == ["T1059", "T1105"]
    assert execution["technique"][0]["subtechnique"][0]["id"] == "T1059.004"


def test_threat_without_tactic_keeps_techniques_in_tags_only():
    assert threat_of(("attack.t1059",)) == ()
    assert threat_of(("attack.defense_evasion", "cve.2021-1234"))[0]["tactic"]["name"] == "Defense Evasion"


@pytest.mark.parametrize("text,reason", [
    ("title: x\nlogsource: {product: linux}\ndetection: {sel: {a|nosuch: 1}, condition: sel}\n", "nosuch"),
    ("title: [unclosed\n", "invalid YAML (line"),
    ("just: a mapping\n", "no `detection` or `correlation`"),
    ("- a list\n", "mapping, not list"),
])
def test_a_bad_sigma_file_is_one_load_error_with_the_reason(tmp_path, text, reason):
    (tmp_path / "bad.yml").write_text(text)
    (tmp_path / "good.yml").write_text(BASE.format(title="ok", id="0b0b0b0b-0000-4000-8000-000000000004",
                                                   level="medium"))
    loaded = load_rules([tmp_path / "bad.yml", tmp_path / "good.yml"])
    assert [r.name for r in loaded.rules] == ["ok"]
    [error] = loaded.errors
    assert error.source and error.source.endswith("bad.yml")
    assert reason in error.message
    if "title" in text or "detection" in text:  # Sigma-looking (or unreadable) YAML found in a directory: an error too
        assert len(load_rules([tmp_path]).errors) == 1


def test_other_yaml_in_a_directory_is_not_a_rule_but_named_it_is_an_error(tmp_path):
    (tmp_path / "config.yaml").write_text("mapping:\n  a: b\n")
    (tmp_path / "rule.yml").write_text(BASE.format(title="ok", id="0b0b0b0b-0000-4000-8000-000000000005",
                                                   level="low"))
    loaded = load_rules([tmp_path])
    assert [r.name for r in loaded.rules] == ["ok"] and loaded.errors == []
    [error] = load_rules([tmp_path / "config.yaml"]).errors
    assert "not a Sigma rule" in error.message


def test_a_bad_condition_is_the_rules_error_at_check(tmp_path):
    (tmp_path / "r.yml").write_text("title: x\nlogsource: {product: linux}\n"
                                    "detection: {sel: {a: 1}, condition: sel and}\n")
    [rule] = load_rules([tmp_path]).rules  # pySigma parses conditions when they are used
    check = check_rule(rule)
    assert check.status == "error" and "condition" in check.reason


def test_alerts_keep_the_author_and_sigma_metadata(tmp_path):
    events = tmp_path / "e.ndjson"
    events.write_text(json.dumps({"@timestamp": "2026-12-01T10:00:00Z",
                                  "event": {"category": ["process"], "type": ["start"]},
                                  "process": {"executable": "/usr/bin/curl", "command_line": "curl http://x | sh"}})
                      + "\n")
    out = tmp_path / "alerts.ndjson"
    res = CliRunner().invoke(app, ["hunt", str(events), "--rules", str(FIXTURES / "proc_curl_pipe.yml"),
                                   "--out", str(out)])
    assert res.exit_code == 1, res.output
    [alert] = [json.loads(line) for line in out.read_text().splitlines()]
    assert alert["kibana.alert.rule.author"] == ["Trailhound tests"]
    assert alert["kibana.alert.rule.severity"] == "high" and alert["kibana.alert.rule.risk_score"] == 73
    assert alert["kibana.alert.rule.parameters"]["sigma"]["level"] == "high"
    assert alert["kibana.alert.rule.threat"][0]["tactic"]["id"] == "TA0002"


def test_sigma_and_toml_rules_run_in_one_hunt(tmp_path):
    shutil.copy(FIXTURES / "proc_curl_pipe.yml", tmp_path / "a.yml")
    (tmp_path / "b.toml").write_text(toml_rule())
    events = tmp_path / "e.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in [
        {"@timestamp": 1, "event": {"category": ["process"], "type": ["start"]},
         "process": {"name": "ssh", "executable": "/usr/bin/ssh"}},
        {"@timestamp": 2, "event": {"category": ["process"], "type": ["start"]},
         "process": {"executable": "/usr/bin/wget", "command_line": "wget -O- https://x | sh"}}]))
    summary = tmp_path / "s.json"
    res = CliRunner().invoke(app, ["hunt", str(events), "--rules", str(tmp_path), "--summary", str(summary)])
    assert res.exit_code == 1, res.output
    rules = {r["name"]: r for r in json.loads(summary.read_text())["rules"]}
    assert rules["SSH"]["hits"] == 1 and rules["Curl Output Piped To A Shell"]["hits"] == 1


def test_trailhound_test_runs_the_test_file_beside_a_sigma_rule(tmp_path):
    for name in ("proc_curl_pipe.yml", "proc_curl_pipe.test.toml"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    res = CliRunner().invoke(app, ["test", str(tmp_path / "proc_curl_pipe.yml")])
    assert res.exit_code == 0, res.output
    assert "3 passed, 0 failed" in res.output
    res = CliRunner().invoke(app, ["test", str(tmp_path / "proc_curl_pipe.test.toml")])
    assert "3 passed, 0 failed" in res.output
    # a case whose expectation is wrong fails: the Sigma rule really runs
    text = (tmp_path / "proc_curl_pipe.test.toml").read_text().replace("hits = 1", "hits = 2", 1)
    (tmp_path / "proc_curl_pipe.test.toml").write_text(text)
    res = CliRunner().invoke(app, ["test", str(tmp_path)])
    assert res.exit_code == 1 and "2 passed, 1 failed" in res.output


@pytest.mark.skipif(not (CORPUS / "rules" / "linux").is_dir(), reason="SigmaHQ corpus (../shared) not present")
def test_validate_sigmahq_linux_rules():
    res = CliRunner().invoke(app, ["rules", "validate", str(CORPUS / "rules" / "linux"), "--format", "ndjson"])
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 210
    ok = sum(r["status"] == "ok" for r in rows)
    assert ok / len(rows) >= 0.98
    assert all(r.get("reason") for r in rows if r["status"] != "ok")


@pytest.mark.skipif(not (CORPUS / "rules" / "linux").is_dir(), reason="SigmaHQ corpus (../shared) not present")
def test_sigmahq_linux_rules_run_without_error_over_ecs_and_audit_events(tmp_path):
    from trailhound.pipeline import plan, run_hunt

    events = tmp_path / "e.ndjson"
    events.write_text("".join(json.dumps(e) + "\n" for e in [
        {"@timestamp": 1, "event": {"category": ["process"], "type": ["start"]},
         "process": {"executable": "/usr/bin/curl", "command_line": "curl -O http://10.0.0.1/x", "name": "curl",
                     "parent": {"executable": "/bin/bash", "command_line": "bash"}}, "user": {"name": "root"}},
        {"@timestamp": 2, "event": {"category": ["file"], "type": ["creation"]},
         "file": {"path": "/etc/cron.d/evil"}, "process": {"executable": "/bin/cp"}},
        {"@timestamp": 3, "event": {"category": ["network"], "type": ["start"]},
         "destination": {"ip": "10.1.1.1", "port": 4444, "domain": "x.ngrok.io"}, "process": {"executable": "/bin/nc"}},
        {"@timestamp": 4, "message": "Accepted publickey for root from 10.0.0.9", "process": {"name": "sshd"}},
    ]))
    report = run_hunt(plan(load_rules([CORPUS / "rules" / "linux"])),
                      [events, FIXTURES / "auditd_records.log"])
    assert len(report.rules) == 210
    assert [(o.name, o.reason) for o in report.rules if o.status != "ran"] == []
    fired = {o.name for o in report.rules if o.hits}
    assert "Curl Usage on Linux" in fired and "Webshell Remote Command Execution" in fired


@pytest.mark.skipif(not (CORPUS / "rules" / "linux").is_dir(), reason="SigmaHQ corpus (../shared) not present")
def test_sigmahq_linux_rules_run_over_the_lab_capture():
    from trailhound.pipeline import plan, run_hunt

    lab = Path(__file__).resolve().parents[1] / "fixtures" / "lab"
    logs = sorted(lab.glob("*/audit.log")) + sorted(lab.glob("*/auth.log"))
    report = run_hunt(plan(load_rules([CORPUS / "rules" / "linux"])), logs)
    assert [(o.name, o.reason) for o in report.rules if o.status != "ran"] == []
    hits = {o.name: o.hits for o in report.rules}
    # the lab's sessions ran `uname` and the like: the process_creation rule sees the coalesced ECS events, the
    # auditd rule the raw records
    assert hits["System Information Discovery"] > 0 and hits["System Information Discovery - Auditd"] > 0


def test_a_rule_with_time_parts_hunts_in_utc(tmp_path):
    """`@timestamp|hour` reads the hour of the event's instant in UTC: a login at 23:10+05:00 is at
    18:10 UTC (not night), one at 05:00+01:00 at 04:00 UTC (night)."""
    out = tmp_path / "alerts.ndjson"
    res = CliRunner().invoke(app, ["hunt", str(FIXTURES / "time_parts" / "events.ndjson"), "--rules",
                                   str(FIXTURES / "time_parts" / "night_logins.yml"), "--out", str(out)])
    assert res.exit_code == 1, res.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(a["user"]["name"] for a in alerts) == ["u2", "u3"]
    [check] = [check_rule(r) for r in load_rules([FIXTURES / "time_parts" / "night_logins.yml"]).rules]
    assert check.status == "ok", check.reason
