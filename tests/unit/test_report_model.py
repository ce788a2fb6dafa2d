"""The report's data: built from the alerts of a real hunt (the lab's authorized_keys capture),
stored compactly and read back whole; counts, techniques, sequences, rules' metadata."""

from collections import Counter
from pathlib import Path

import pytest

from trailhound.pack import DIR as PACK
from trailhound.pipeline import plan, run_hunt
from trailhound.report import build_report
from trailhound.report.model import SEVERITIES, attribution, flat_alert, join_keys, techniques
from trailhound.report.processes import index_events
from trailhound.rules.loader import load_rules

LAB = Path(__file__).parents[1] / "fixtures" / "lab"


@pytest.fixture(scope="module")
def hunted():
    files = [LAB / "authorized_keys" / "audit.log", LAB / "authorized_keys" / "auth.log",
             LAB / "brute_force" / "auth.log"]
    rules = load_rules([PACK])
    report = run_hunt(plan(rules), files, keep_alerts=True)
    alerts = [a for r in report.rules for a in (r.alert_documents or [])]
    return files, rules, report, alerts


def decode(data, n: int) -> dict:
    doc = data.docs[n]
    keys = [data.keys[k] for k in data.shapes[doc[0]]]
    return {k: [data.values[x] for x in ref] if isinstance(ref, list) else data.values[ref]
            for k, ref in zip(keys, doc[1:])}


def test_documents_read_back_whole(hunted):
    _, rules, report, alerts = hunted
    data = build_report(alerts, summary=report.to_dict(1), rules=rules.rules)
    assert data.count == len(alerts) == report.alerts
    for n, alert in enumerate(alerts):
        flat = flat_alert(alert)
        kept = {k: v for k, v in flat.items()
                if not k.startswith(("kibana.alert.rule.", "kibana.alert.original_event."))
                and k not in ("@timestamp", "kibana.alert.ancestors")}
        assert decode(data, n) == kept
    # values are shared: far fewer distinct values than fields
    assert len(data.values) < sum(len(d) - 1 for d in data.docs) / 2


def test_counts_and_columns(hunted):
    _, rules, report, alerts = hunted
    data = build_report(alerts, rules=rules.rules)
    assert data.by("severity") == Counter(a["kibana.alert.severity"] for a in alerts)
    assert data.by("rule") == Counter(a["kibana.alert.rule.name"] for a in alerts)
    assert data.by("user") == Counter(flat_alert(a)["user.name"] for a in alerts if flat_alert(a).get("user.name"))
    assert all(SEVERITIES[s] == a["kibana.alert.severity"] for s, a in zip(data.columns["sv"], alerts))
    # building blocks point at their shell, which is marked -2
    for n, a in enumerate(alerts):
        group, index = a.get("kibana.alert.group.id"), a.get("kibana.alert.group.index")
        if group and index is None:
            assert data.columns["gp"][n] == -2
        elif group:
            shell = data.columns["gp"][n]
            assert alerts[shell]["kibana.alert.group.id"] == group and "kibana.alert.group.index" not in alerts[shell]
            assert data.columns["gi"][n] == index
        else:
            assert data.columns["gp"][n] == -1
    t1021 = sum(1 for a in alerts if "T1021.004" in str(a["kibana.alert.rule.threat"]))
    assert sum(n for t, n in data.by_technique().items() if t[2] == "T1021.004") == t1021 > 0


def test_rules_carry_author_license_and_join_keys(hunted):
    _, rules, _, alerts = hunted
    data = build_report(alerts, rules=rules.rules)
    seq = next(r for r in data.rules if r["name"] == "SSH Authorized Key Added Then SSH Client Started")
    assert seq["author"] == ["Trailhound"] and seq["license"] == "Apache-2.0"
    assert seq["file"] == "trailhound pack: ssh_authorized_keys_then_ssh.toml"
    assert seq["sequence"] == {"stages": [["host.name"], ["host.name"]], "missing": [False, False],
                               "maxspan_ms": 3_600_000, "kind": "sequence"}
    guided = [i for i, r in enumerate(data.rules) if r["note"]]
    assert guided and all("<h2>" in data.notes[i] for i in guided)  # every guide rendered
    # without the rules, what the alerts carry is still shown; author and license are unknown
    bare = build_report(alerts)
    seq = next(r for r in bare.rules if r["name"] == "SSH Authorized Key Added Then SSH Client Started")
    assert seq["author"] == [] and seq["license"] is None and seq["query"].startswith("sequence by host.name")


def test_process_trees_from_the_event_files(hunted):
    files, rules, _, alerts = hunted
    index, _ = index_events(files)
    data = build_report(alerts, rules=rules.rules, processes=index)
    n = next(i for i, a in enumerate(alerts) if "ssh -i /tmp/.k" in str(flat_alert(a).get("process.command_line"))
             and "kibana.alert.group.index" in a)
    ctx = data.processes[data.columns["pc"][n]]
    me = next(p for p in ctx["nodes"] if p["relation"] == "self")
    assert me["pid"] == flat_alert(alerts[n])["process.pid"]
    parent = ctx["nodes"][ctx["nodes"].index(me) - 1]
    assert parent["pid"] == flat_alert(alerts[n])["process.parent.pid"] and parent["name"] == "sh"
    assert ctx["end"] == "leader" and parent["relation"] == "leader"  # the attacker's shell enters the lab
    # siblings: the other children of that shell (ssh-keygen, cat, sshpass...)
    assert {"ssh-keygen", "sshpass"} <= {s["name"] for s in ctx["siblings"]}


def test_techniques_and_attribution():
    threat = [{"framework": "MITRE ATT&CK", "tactic": {"id": "TA0008", "name": "Lateral Movement"},
               "technique": [{"id": "T1021", "name": "Remote Services",
                              "subtechnique": [{"id": "T1021.004", "name": "SSH"}]}]},
              {"tactic": {"id": "TA0008", "name": "Lateral Movement"}, "technique": [{"id": "T1021", "name": "Remote Services"}]},
              "junk", {"tactic": None, "technique": "x"}]
    assert techniques(threat) == [("TA0008", "Lateral Movement", "T1021", "Remote Services"),
                                  ("TA0008", "Lateral Movement", "T1021.004", "SSH")]
    assert attribution([], "DRL-1.1") is None
    text = attribution(["Florian Roth"], "DRL-1.1")
    assert "Florian Roth" in text and "Detection Rule License requires" in text
    assert join_keys("kuery", "a:b") is None and join_keys("eql", "process where true") is None
    assert join_keys("eql", "sequence by host.id [process where true] by user.name [file where true] by user.name") \
        ["stages"] == [["host.id", "user.name"], ["host.id", "user.name"]]
