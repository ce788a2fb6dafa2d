"""Raw audit records for Sigma's `service: auditd` rules: one event per record with its own fields (hex
decoded), read only when such a rule runs; the coalesced ECS events of the same log stay as they are."""

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.pipeline import plan, run_hunt
from trailhound.rules.loader import load_rules
from trailhound.sources.auditd import raw
from trailhound.sources.auditd.raw import record_document

from helpers import rule as toml_rule

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sigma"
LOG = FIXTURES / "auditd_records.log"


def test_each_record_is_an_event_with_its_own_fields_decoded():
    lines = LOG.read_text().splitlines()
    syscall = record_document(lines[0], 1)
    assert syscall is not None
    assert (syscall["type"], syscall["SYSCALL"], syscall["exe"], syscall["comm"], syscall["key"], syscall["euid"]) == \
        ("SYSCALL", "execve", "/usr/bin/bash", "bash", "susp_activity", "33")
    assert syscall["a0"] == "55d0"  # SYSCALL arguments are the log's hex numbers, not text
    assert syscall["event"]["original"] == lines[0] and syscall["@timestamp"] == "2023-11-14T22:13:20.123Z"
    execve = record_document(lines[1])
    assert execve is not None and [execve[f"a{i}"] for i in range(3)] == ["bash", "-c", "echo hello | base64 -d"]
    path = record_document(lines[2])
    assert path is not None and path["name"] == "/tmp/my dir" and path["nametype"] == "NORMAL"
    title = record_document(lines[3])
    assert title is not None and title["proctitle"] == "bash -c echo hello"  # NULs between arguments: spaces
    assert record_document("not an audit record") is None


def test_several_keys_are_a_list_and_enriched_names_are_kept():
    keys = "6B6579310179656B32"  # key1 \x01 yek2, as auditd writes several keys
    doc = record_document(f"type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=2 key={keys}\x1dSYSCALL=open UID=\"root\"")
    assert doc is not None and doc["key"] == ["key1", "yek2"] and doc["SYSCALL"] == "open" and doc["UID"] == "root"


def _hunt(rule_paths, log=LOG):
    return run_hunt(plan(load_rules(rule_paths)), [log], keep_alerts=True)


def test_auditd_rules_match_raw_records_and_alerts_carry_them(tmp_path):
    shutil.copy(FIXTURES / "auditd_base64_decode.yml", tmp_path / "r.yml")
    report = _hunt([tmp_path])
    [outcome] = report.rules
    assert outcome.hits == 1
    [alert] = outcome.alert_documents
    assert alert["type"] == "EXECVE" and alert["a2"] == "echo hello | base64 -d"
    assert alert["kibana.alert.rule.author"] == ["Trailhound tests"]


def test_a_hunt_without_auditd_sigma_rules_never_reads_records(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("raw records read for a hunt that needs none")

    monkeypatch.setattr(raw, "raw_documents", refuse)
    (tmp_path / "ecs.toml").write_text(toml_rule(extra="").replace('process.name == \\"ssh\\"',
                                                                    'process.name == \\"bash\\"'))
    shutil.copy(FIXTURES / "proc_curl_pipe.yml", tmp_path / "p.yml")
    report = _hunt([tmp_path])
    assert {o.name: o.hits for o in report.rules} == {"SSH": 1, "Curl Output Piped To A Shell": 0}


def test_ecs_rules_see_the_coalesced_events_beside_auditd_rules(tmp_path):
    (tmp_path / "ecs.toml").write_text(toml_rule().replace('process.name == \\"ssh\\"', 'process.name == \\"bash\\"'))
    shutil.copy(FIXTURES / "auditd_base64_decode.yml", tmp_path / "r.yml")
    report = _hunt([tmp_path])
    hits = {o.name: o for o in report.rules}
    assert hits["SSH"].hits == 1  # one coalesced execve event, not one per record
    [alert] = hits["SSH"].alert_documents
    assert "type" not in alert and alert["process"]["name"] == "bash"
    assert hits["Base64 Decoding In A Shell Command (raw EXECVE record)"].hits == 1


def test_keywords_of_auditd_rules_search_the_raw_line(tmp_path):
    (tmp_path / "k.yml").write_text(
        "title: kw\nlogsource: {product: linux, service: auditd}\n"
        "detection: {keywords: ['syscall=319'], condition: keywords}\n")
    report = _hunt([tmp_path])
    [outcome] = report.rules
    assert outcome.hits == 1


def test_cli_hunt_writes_raw_record_alerts(tmp_path):
    out = tmp_path / "a.ndjson"
    res = CliRunner().invoke(app, ["hunt", str(LOG), "--rules", str(FIXTURES / "auditd_base64_decode.yml"),
                                   "--out", str(out)])
    assert res.exit_code == 1, res.output
    [alert] = [json.loads(x) for x in out.read_text().splitlines()]
    assert alert["event"]["original"].startswith("type=EXECVE")
