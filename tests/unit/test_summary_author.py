"""`hunt --summary`: each rule that ran carries its author (`author`, a list), for Sigma and TOML rules alike;
the other keys stay as they were."""

import json

from typer.testing import CliRunner

from trailhound.cli.main import app

SIGMA = """title: Failed login (author test)
id: 6a1c2b3d-0000-4000-8000-000000000050
author: Jane Doe, John Roe
logsource: {product: linux, service: auth}
detection:
  sel: {event.outcome: failure}
  condition: sel
level: low
"""
TOML = """[metadata]
creation_date = "2026/12/01"
maturity = "production"
updated_date = "2026/12/01"

[rule]
author = ["Alice", "Bob"]
description = "A failed login."
from = "now-9m"
index = ["logs-*"]
language = "eql"
license = "Elastic License v2"
name = "Failed login (TOML author test)"
risk_score = 21
rule_id = "6a1c2b3d-0000-4000-8000-000000000051"
severity = "low"
type = "eql"
query = 'authentication where event.outcome == "failure"'
"""
KEYS = {"rule_id", "name", "severity", "file", "status", "kind", "hits", "alerts", "hosts", "users", "first", "last",
        "notes", "error", "excepted", "seconds"}


def test_the_summary_names_each_rules_author(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "failed.yml").write_text(SIGMA)
    (rules / "failed.toml").write_text(TOML)
    events = tmp_path / "e.ndjson"
    events.write_text(json.dumps({"@timestamp": "2026-12-01T10:00:00Z", "user": {"name": "bob"},
                                  "event": {"category": ["authentication"], "outcome": "failure"}}) + "\n")
    summary = tmp_path / "s.json"
    res = CliRunner().invoke(app, ["hunt", "--rules", str(rules), "--summary", str(summary), str(events)])
    assert res.exit_code == 1, res.output
    by_name = {r["name"]: r for r in json.loads(summary.read_text())["rules"]}
    assert by_name["Failed login (author test)"]["author"] == ["Jane Doe, John Roe"]  # Sigma's author is one string
    assert by_name["Failed login (TOML author test)"]["author"] == ["Alice", "Bob"]
    assert all(set(r) == KEYS | {"author"} for r in by_name.values())
