"""Kibana-schema alerts from rules and matched documents, and the hunt command."""


from typer.testing import CliRunner

from trailhound.alerts.build import alerts_for_event, alerts_for_sequence, event_id
from trailhound.cli.main import app
from trailhound.rules.loader import rule_from_toml

from helpers import hunt_cli, write_case

FILE = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": ["file"], "type": ["change"], "id": "e1"},
        "host": {"name": "h1"}, "user": {"name": "deploy"}, "file": {"name": "authorized_keys"}, "tags": ["a", "b"]}
PROC = {"@timestamp": "2026-01-01T00:00:05Z", "event": {"category": ["process"], "type": ["start"], "id": "e2"},
        "host": {"name": "h1"}, "user": {"name": "deploy"}, "process": {"name": "ssh"}, "tags": ["b", "c"]}


SEQ_RULE = '''
[rule]
name = "Key then SSH"
description = "d"
risk_score = 73
rule_id = "r-1"
severity = "high"
type = "eql"
language = "eql"
tags = ["OS: Linux"]
query = "sequence by host.name with maxspan=1m [file where file.name == \\"authorized_keys\\"] [process where process.name == \\"ssh\\"]"
'''

RULE = rule_from_toml(SEQ_RULE)


def test_event_alert_fields():
    [a] = alerts_for_event(RULE, PROC, now="2026-02-02T00:00:00.000Z")
    assert a["event"]["kind"] == "signal" and a["@timestamp"] == "2026-02-02T00:00:00.000Z"
    assert a["kibana.alert.original_time"] == "2026-01-01T00:00:05Z"
    assert a["kibana.alert.original_event.category"] == ["process"]
    assert a["kibana.alert.rule.rule_id"] == "r-1" and a["kibana.alert.rule.tags"] == ["OS: Linux"]
    assert (a["kibana.alert.severity"], a["kibana.alert.risk_score"]) == ("high", 73.0)
    assert a["kibana.alert.workflow_status"] == "open" and a["kibana.alert.depth"] == 1
    assert a["kibana.alert.ancestors"] == [{"id": "e2", "type": "event", "depth": 0, "index": ""}]
    assert a["kibana.alert.reason"] == "process event, with process ssh, by deploy on h1 created high alert Key then SSH."
    assert a["process"] == {"name": "ssh"}


def test_alert_ids_are_deterministic_across_runs():
    first = alerts_for_event(RULE, PROC)[0]["kibana.alert.uuid"]
    assert alerts_for_event(RULE, PROC)[0]["kibana.alert.uuid"] == first
    assert alerts_for_event(RULE, FILE)[0]["kibana.alert.uuid"] != first
    no_id = {"message": "x"}
    assert event_id(no_id) == event_id(dict(no_id))


def test_sequence_building_blocks_and_shell_intersection():
    alerts = alerts_for_sequence(RULE, [FILE, None, PROC])  # the None is a missing-event step
    blocks, shell = alerts[:-1], alerts[-1]
    assert len(blocks) == 2
    assert [b["kibana.alert.group.index"] for b in blocks] == [0, 1]
    assert all(b["kibana.alert.building_block_type"] == "default" for b in blocks)
    assert {b["kibana.alert.group.id"] for b in blocks} == {shell["kibana.alert.uuid"]}
    assert "kibana.alert.building_block_type" not in shell
    # the shell keeps what all events agree on; arrays are intersected
    assert shell["host"] == {"name": "h1"} and shell["user"] == {"name": "deploy"} and shell["tags"] == ["b"]
    assert "process" not in shell and "file" not in shell
    assert [a["id"] for a in shell["kibana.alert.ancestors"]] == ["e1", "e2"]


ESQL_RULE = '''
[rule]
name = "ES|QL rule"
description = "d"
risk_score = 21
rule_id = "r-2"
severity = "low"
type = "esql"
language = "esql"
query = "from logs-*"
'''


def test_hunt_writes_alerts_and_uses_exit_codes(tmp_path):
    data, rdir = write_case(tmp_path, [FILE, PROC], {"seq.toml": SEQ_RULE, "esql.toml": ESQL_RULE})
    runner = CliRunner()
    res, alerts = hunt_cli(data, rdir)
    assert res.exit_code == 1, res.output
    assert len(alerts) == 3 and alerts[-1]["kibana.alert.group.id"] == alerts[-1]["kibana.alert.uuid"]
    assert "not run ES|QL rule: ES|QL rules need an ES|QL engine" in res.output
    assert "1 unsupported" in res.output
    assert runner.invoke(app, ["hunt", "--rules", str(rdir), str(data), "--exit-zero"]).exit_code == 0
    quiet, _ = write_case(tmp_path / "q", [PROC], {})
    assert runner.invoke(app, ["hunt", "--rules", str(rdir), str(quiet)]).exit_code == 0
    (rdir / "broken.toml").write_text("[rule]\nname = 'x'\n")
    res = runner.invoke(app, ["hunt", "--rules", str(rdir), str(data)])
    assert res.exit_code == 2 and "rule_id: required key is missing" in res.output


KQL_RULE = '''
[rule]
name = "SSH client"
description = "d"
risk_score = 21
rule_id = "r-3"
severity = "low"
type = "query"
language = "kuery"
query = "process.name:ssh"
'''
EQL_EVENT_RULE = '''
[rule]
name = "Key file written"
description = "d"
risk_score = 47
rule_id = "r-4"
severity = "medium"
type = "eql"
language = "eql"
query = "file where file.name == \\"authorized_keys\\""
'''


def test_hunt_batches_event_rules_and_matches_single_searches(tmp_path):
    from trailhound.engine.hunt import hunt
    from trailhound.engine.search import SearchOptions, search
    from trailhound.rules.check import check_rule, ecs
    from trailhound.sources import events_from_documents

    data, rdir = write_case(tmp_path, [FILE, PROC], {"k.toml": KQL_RULE, "e.toml": EQL_EVENT_RULE, "s.toml": SEQ_RULE})
    from trailhound.rules.loader import load_rules

    checks = [check_rule(r) for r in load_rules([rdir]).rules]
    result = hunt(checks, [data])
    got = {r.check.rule.name: [h.rows for h in r.hits] for r in result.runs}
    frame = events_from_documents([FILE, PROC]).frame
    for c in checks:
        single = search(c.query, frame, SearchOptions(es_types=ecs().es_types()))
        assert got[c.rule.name] == [h.rows for h in single.hits], c.rule.name
    assert got == {"SSH client": [(1,)], "Key file written": [(0,)], "Key then SSH": [(0, 1)]}


def test_alert_times_keep_nanoseconds_and_zones():
    from trailhound.alerts.build import _time
    from trailhound.compile.dates import parse_date_ns

    for value in ("2026-01-01T00:00:05Z", "2026-01-01T00:00:05.123456Z", "2026-01-01T00:00:05.123456789Z",
                  "2026-01-01T02:00:05+02:00", "2026-01-01T00:00:05", 1767225605000, "1767225605000"):
        assert _time({"event": {"ingested": value}}, "event.ingested")[0] == parse_date_ns(value, nanos=True)
    assert _time({"@timestamp": "2026-01-01T00:00:05.1Z"}, "event.ingested") == (1767225605100000000,
                                                                                "2026-01-01T00:00:05.1Z")
