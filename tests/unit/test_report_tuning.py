"""Tuning: rules ranked by noise with their dominant values, and exception lists that, loaded
back into a hunt, except exactly what they were written from."""

import tomllib
from pathlib import Path

from trailhound.pack import DIR as PACK
from trailhound.pipeline import plan, run_hunt
from trailhound.report import build_report
from trailhound.report.tuning import alert_entries, exception_files, exception_toml, toml_string
from trailhound.rules.exceptions import lists_from_toml
from trailhound.rules.loader import load_rules

LAB = Path(__file__).parents[1] / "fixtures" / "lab"
FILES = [LAB / "ssh_password" / "audit.log", LAB / "brute_force" / "audit.log", LAB / "brute_force" / "auth.log"]


def alerts_by_rule(exceptions=()):
    report = run_hunt(plan(load_rules([PACK], exceptions)), FILES, keep_alerts=True)
    return report, {r.name: r.alert_documents or [] for r in report.rules if r.alerts}


def test_rules_ranked_by_noise_with_dominant_values():
    report, per_rule = alerts_by_rule()
    alerts = [a for r in report.rules for a in (r.alert_documents or [])]
    data = build_report(alerts)
    ranked = [(data.rules[t["rule"]]["name"], t["hits"]) for t in data.tuning]
    hits = {r.name: r.hits for r in report.rules if r.alerts}
    assert ranked == sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))  # a sequence counts once
    sshpass = next(t for t in data.tuning if data.rules[t["rule"]]["name"] == "SSH Client Driven by sshpass")
    dominant = {d["field"]: (d["value"], d["share"]) for d in sshpass["dominant"]}
    assert dominant["process.parent.executable"] == ("/usr/bin/sshpass", 1.0)
    assert dominant["user.name"] == ("root", 1.0)
    assert "process.command_line" not in dominant  # shown, never proposed: it varies by design
    assert any(f["field"] == "process.command_line" for f in sshpass["fields"])


def test_exception_files_load_and_silence_their_rule(tmp_path):
    report, per_rule = alerts_by_rule()
    alerts = [a for r in report.rules for a in (r.alert_documents or [])]
    data = build_report(alerts)
    files = exception_files(data.tuning, data.rules)
    assert "ssh-client-driven-by-sshpass.exceptions.toml" in files
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        lists = lists_from_toml(tomllib.loads(text), str(tmp_path / name))
        assert len(lists) == 1 and len(lists[0].rule_ids) == 1
    _, after = alerts_by_rule([tmp_path])
    # each rule whose alerts all share the dominant values is silenced; no other rule changes
    silenced = [data.rules[t["rule"]]["name"] for t in data.tuning
                if t["toml"] and all(d["share"] == 1.0 for d in t["dominant"][:3])]
    assert "SSH Client Driven by sshpass" in silenced
    for name in silenced:
        assert name not in after, name
    assert set(after) <= set(per_rule)


def test_one_alert_entry_excepts_that_alert(tmp_path):
    report, per_rule = alerts_by_rule()
    alert = per_rule["SSH Client Driven by sshpass"][0]
    from trailhound.report.model import flat_alert

    entries = alert_entries(flat_alert(alert))
    assert [e["field"] for e in entries] == ["process.executable", "process.parent.executable", "user.name",
                                             "host.name", "file.path"]
    path = tmp_path / "one.toml"
    path.write_text(exception_toml(alert["kibana.alert.rule.rule_id"], "x", [entries]))
    _, after = alerts_by_rule([path])
    assert alert["kibana.alert.uuid"] not in {a["kibana.alert.uuid"] for docs in after.values() for a in docs}


def test_toml_strings_round_trip():
    for text in ['a"b\\c', "line\nbreak\ttab\x00\x1f\x7f", "\u2028 ünïcödé 😀", "</script>", "\u202egnp.exe\x85"]:
        assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text
    assert toml_string("\u202ex\u2066") == '"\\u202Ex\\u2066"'  # shown as escapes, read back as the characters
