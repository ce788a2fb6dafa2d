"""Alert suppression (per execution, per duration, missing-field strategies), max_signals, and the
severity / risk score / rule name mappings."""

import pytest

from trailhound.alerts.build import alerts_for_hits
from trailhound.engine.search import Hit
from trailhound.rules.errors import RuleError
from trailhound.rules.loader import rule_from_toml

from helpers import hunt_cli, write_case

BASE = '''
[rule]
name = "SSH"
rule_id = "r-ssh"
description = "d"
risk_score = 21
severity = "low"
type = "eql"
language = "eql"
interval = "5m"
query = "process where process.name == \\"ssh\\""
'''


def rule(extra=""):
    return rule_from_toml(BASE + extra)


def proc(i, minute, host="h1", **more):
    doc = {"@timestamp": f"2026-01-01T00:{minute:02d}:{i % 60:02d}Z", "event": {"category": ["process"], "id": f"e{i}"},
           "process": {"name": "ssh"}}
    if host is not None:
        doc["host"] = {"name": host}
    doc.update(more)
    return doc


def run(r, docs, **kw):
    hits = [Hit((i,)) for i in range(len(docs))]
    return alerts_for_hits(r, "events", hits, dict(enumerate(docs)), now="2026-02-01T00:00:00.000Z", **kw)


PER_EXECUTION = '''
[rule.alert_suppression]
group_by = ["host.name"]
missing_fields_strategy = "{strategy}"
'''


def test_per_execution_groups_within_each_interval():
    # minutes 0-4 are one 5m execution, 5-9 the next
    docs = [proc(1, 0), proc(2, 1), proc(3, 2, host="h2"), proc(4, 4), proc(5, 6)]
    batch = run(rule(PER_EXECUTION.format(strategy="suppress")), docs)
    assert [a["event"]["id"] for a in batch.alerts] == ["e1", "e3", "e5"]
    first = batch.alerts[0]
    assert first["kibana.alert.suppression.docs_count"] == 2
    assert first["kibana.alert.suppression.terms"] == [{"field": "host.name", "value": ["h1"]}]
    assert (first["kibana.alert.suppression.start"], first["kibana.alert.suppression.end"]) == (
        "2026-01-01T00:00:01Z", "2026-01-01T00:04:04Z")
    assert batch.alerts[2]["kibana.alert.suppression.docs_count"] == 0
    assert first["kibana.alert.instance.id"] != batch.alerts[1]["kibana.alert.instance.id"]
    assert batch.suppressed == 2


def test_missing_fields_suppress_together_or_not_at_all():
    docs = [proc(1, 0, host=None), proc(2, 1, host=None), proc(3, 2)]
    together = run(rule(PER_EXECUTION.format(strategy="suppress")), docs)
    assert [a["event"]["id"] for a in together.alerts] == ["e1", "e3"]
    assert together.alerts[0]["kibana.alert.suppression.terms"] == [{"field": "host.name", "value": None}]
    apart = run(rule(PER_EXECUTION.format(strategy="doNotSuppress")), docs)
    assert [a["event"]["id"] for a in apart.alerts] == ["e1", "e2", "e3"]


def test_duration_window_starts_at_the_first_alert():
    r = rule('''
[rule.alert_suppression]
group_by = ["host.name"]
[rule.alert_suppression.duration]
unit = "m"
value = 10
''')
    docs = [proc(1, 0), proc(2, 4), proc(3, 9), proc(4, 11), proc(5, 12)]  # executions do not matter here
    batch = run(r, docs)
    assert [a["event"]["id"] for a in batch.alerts] == ["e1", "e4"]
    assert [a["kibana.alert.suppression.docs_count"] for a in batch.alerts] == [2, 1]


def test_max_signals_caps_each_execution():
    docs = [proc(i, 0) for i in range(1, 6)] + [proc(6, 5)]
    batch = run(rule("max_signals = 2"), docs)
    assert [a["event"]["id"] for a in batch.alerts] == ["e1", "e2", "e6"]
    assert batch.over_max_signals == 3
    assert len(run(rule("max_signals = 2"), docs, max_signals=0).alerts) == 6


def test_suppression_of_sequences_uses_the_shell_and_drops_building_blocks():
    r = rule_from_toml(BASE.replace('query = "process where process.name == \\"ssh\\""',
                                    'query = "sequence by host.name [process where true] [process where true]"')
                       + PER_EXECUTION.format(strategy="suppress"))
    docs = [proc(1, 0), proc(2, 0), proc(3, 1), proc(4, 1)]
    batch = alerts_for_hits(r, "sequences", [Hit((0, 1)), Hit((2, 3))], dict(enumerate(docs)))
    assert len(batch.alerts) == 3 and batch.suppressed == 1  # 2 building blocks + 1 shell
    assert batch.alerts[-1]["kibana.alert.suppression.docs_count"] == 1


def test_malformed_suppression_is_a_rule_error():
    for extra, message in [('[rule.alert_suppression]\ngroup_by = []', "1 to 3 fields"),
                           ('[rule.alert_suppression]\ngroup_by = ["a"]\nmissing_fields_strategy = "x"', "'x'"),
                           ('[rule.alert_suppression]\ngroup_by = ["a"]\nduration = {unit = "d", value = 1}', "unit")]:
        with pytest.raises(RuleError, match=message):  # refused when the rule loads
            rule(extra)


def test_severity_and_risk_score_mappings_and_rule_name_override():
    r = rule('''rule_name_override = "rule.name"
severity_mapping = [
  {field = "user.name", operator = "equals", value = "root", severity = "critical"},
  {field = "process.args", operator = "equals", value = "-R", severity = "medium"},
]
risk_score_mapping = [{field = "event.risk_score", operator = "equals", value = ""}]
''')
    docs = [proc(1, 0, user={"name": "root"}, rule={"name": "SSH as root"}),
            proc(2, 0, process={"name": "ssh", "args": ["ssh", "-R", "80:x:80"]}),
            proc(3, 0, user={"name": "root"}, process={"name": "ssh", "args": ["-R"]}),
            proc(4, 0, event={"category": ["process"], "id": "e4", "risk_score": 88}),
            proc(5, 0, event={"category": ["process"], "id": "e5", "risk_score": 900})]
    alerts = run(r, docs).alerts
    assert [a["kibana.alert.severity"] for a in alerts] == ["critical", "medium", "critical", "low", "low"]
    assert [a["kibana.alert.risk_score"] for a in alerts] == [21.0, 21.0, 21.0, 88.0, 21.0]
    assert alerts[0]["kibana.alert.rule.name"] == "SSH as root" and alerts[1]["kibana.alert.rule.name"] == "SSH"
    assert alerts[0]["kibana.alert.reason"].endswith("created critical alert SSH.")
    assert alerts[0]["kibana.alert.rule.severity"] == "low"


def test_hunt_reports_suppressed_and_capped_hits(tmp_path):
    docs = [proc(i, 0) for i in range(1, 5)]
    data, rdir = write_case(tmp_path, docs, {"r.toml": BASE + PER_EXECUTION.format(strategy="suppress")})
    res, alerts = hunt_cli(data, rdir)
    assert res.exit_code == 1 and len(alerts) == 1
    assert "3 suppressed into earlier alerts" in res.output
    (rdir / "r.toml").write_text(BASE + "max_signals = 3")
    res, alerts = hunt_cli(data, rdir)
    assert len(alerts) == 3 and "1 hits over max_signals (3 per execution)" in res.output
    res, alerts = hunt_cli(data, rdir, "--max-signals", "0")
    assert len(alerts) == 4


def test_threshold_suppression_folds_later_threshold_alerts_of_a_group():
    r = rule_from_toml(BASE.replace('type = "eql"', 'type = "threshold"').replace('language = "eql"', 'language = "kuery"')
                       .replace('query = "process where process.name == \\"ssh\\""', 'query = "process.name:ssh"') + '''
[rule.threshold]
field = ["host.name"]
value = 2
[rule.alert_suppression.duration]
unit = "h"
value = 1
''')
    docs = [proc(i, m) for i, m in enumerate([0, 1, 10, 11], 1)]
    hits = [Hit((0, 1), ("h1",)), Hit((2, 3), ("h1",))]
    batch = alerts_for_hits(r, "threshold", hits, dict(enumerate(docs)))
    assert len(batch.alerts) == 1 and batch.suppressed == 1
    assert batch.alerts[0]["kibana.alert.suppression.terms"] == [{"field": "host.name", "value": ["h1"]}]
    for bad, message in [('group_by = ["user.name"]\n[rule.alert_suppression.duration]\nunit = "h"\nvalue = 1',
                          "only duration"), ('missing_fields_strategy = "suppress"', "needs a duration")]:
        with pytest.raises(RuleError, match=message):  # refused when the rule loads
            rule_from_toml(BASE.replace('type = "eql"', 'type = "threshold"').replace(
                'language = "eql"', 'language = "kuery"').replace(
                'query = "process where process.name == \\"ssh\\""', 'query = "process.name:ssh"')
                + '\n[rule.threshold]\nfield = ["host.name"]\nvalue = 2\n[rule.alert_suppression]\n' + bad + "\n")
