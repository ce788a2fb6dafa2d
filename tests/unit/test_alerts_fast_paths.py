"""The fast paths of alert building give exactly what the plain definitions give: the field lookup
on nested, dotted and mixed documents, the alert ids (uuid5), and whole alerts built twice."""

from __future__ import annotations

import uuid

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from trailhound.alerts import build
from trailhound.rules.model import Rule


def reference_field_value(doc: dict, path: str):
    """The lookup as first written (recursive, partition by partition): the definition to agree with."""
    if path in doc:
        return doc[path]
    if "." not in path:
        return None
    head, _, rest = path.partition(".")
    while rest:
        node = doc.get(head)
        if isinstance(node, dict):
            found = reference_field_value(node, rest)
            if found is not None:
                return found
        nxt, _, rest = rest.partition(".")
        head = f"{head}.{nxt}"
    return None


PARTS = st.sampled_from(["a", "b", "c", "a.b", "b.c", "a.b.c", "", "x"])
KEYS = st.lists(PARTS, min_size=1, max_size=3).map(".".join)
LEAVES = st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["v", "w"]), st.lists(st.integers(0, 2), max_size=2))
DOCS = st.recursive(st.dictionaries(KEYS, LEAVES, max_size=4),
                    lambda inner: st.dictionaries(KEYS, st.one_of(LEAVES, inner), max_size=4), max_leaves=12)
PATHS = st.one_of(KEYS, st.sampled_from(["a.", ".a", "a..b", ".", "..", "a.b.", "a.b.c.d", "a.b.c.x"]))


@settings(max_examples=3000, deadline=None)
@given(DOCS, PATHS)
def test_field_value_agrees_with_its_definition(doc, path):
    assert build.field_value(doc, path) == reference_field_value(doc, path)


def test_field_value_on_mixed_documents():
    doc = {"process": {"name": None, "parent.name": "bash"}, "process.name": "ssh", "a": {"b": {"c": None}},
           "a.b": {"c": 2}}
    assert build.field_value(doc, "process.name") == "ssh"  # the dotted key first
    assert build.field_value(doc, "process.parent.name") == "bash"
    assert build.field_value(doc, "a.b.c") == 2  # None under the nested spelling: the next dot is tried
    assert build.field_value(doc, "a.") is None and build.field_value(doc, "") is None


@given(st.text(max_size=60))
def test_alert_ids_are_uuid5(name):
    assert build._uuid5(name) == str(uuid.uuid5(build._NAMESPACE, name))


def test_alert_reason_reads_nested_and_dotted_fields_alike():
    rule = Rule(rule_id="r1", name="R", type="query", severity="low", risk_score=21, description="d")
    nested = {"@timestamp": "2025-01-01T00:00:00Z", "event": {"category": ["network"], "id": "e1"},
              "process": {"name": "ssh", "parent": {"name": "bash"}}, "source": {"ip": "10.0.0.1", "port": 22},
              "destination": {"address": "h"}, "user": {"name": ["u1", "u2"]}, "host": {"name": "h1"}}
    dotted = {"@timestamp": "2025-01-01T00:00:00Z", "event.category": ["network"], "event.id": "e1",
              "process.name": "ssh", "process.parent.name": "bash", "source.ip": "10.0.0.1", "source.port": 22,
              "destination.address": "h", "user.name": ["u1", "u2"], "host.name": "h1"}
    want = "network event, with process ssh, parent process bash, source 10.0.0.1:22, destination h, by u1 on h1 " \
           "created low alert R."
    for doc in (nested, dotted):
        alert = build.alerts_for_event(rule, doc, now="2026-01-01T00:00:00.000Z")[0]
        assert alert["kibana.alert.reason"] == want
        assert alert["kibana.alert.reason"] == build.reason(rule, build.flatten(doc))
        assert alert["kibana.alert.uuid"] == str(uuid.uuid5(build._NAMESPACE, "r1|e1"))
        assert alert["kibana.alert.ancestors"] == [{"id": "e1", "type": "event", "depth": 0, "index": ""}]


# --- alerts as NDJSON lines (`alerts_for_hits(form="lines")`): the same bytes as the documents serialized

FIELD_KEYS = st.sampled_from(["event", "event.kind", "event.id", "event.category", "host", "host.name",
                              "user.name", "process", "kibana.alert.rule.name", "kibana.alert.uuid", "ecs.version",
                              "kibana.alert.building_block_type", "kibana.alert.new_terms", "x", "message"])
VALUES = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["a", "h1", "2025-01-01T00:00:0%dZ", "ü\"\\"]),
                   st.lists(st.sampled_from(["a", "b"]), max_size=2))
EVENT_DOCS = st.dictionaries(FIELD_KEYS, st.one_of(VALUES, st.dictionaries(st.sampled_from(["id", "kind", "name", "y"]),
                                                                         VALUES, max_size=3)), max_size=8).flatmap(
    lambda d: st.sampled_from([{"@timestamp": "2025-01-01T00:00:01Z", **d}, {**d, "@timestamp": "2025-01-01T00:00:02Z"}]))
RULES = st.builds(
    lambda bb, override, mapping, kind, risk: Rule(
        rule_id="r1", name="R", type=kind, severity="low", risk_score=21, description="d \u00e9", building_block_type=bb,
        rule_name_override=override, max_signals=3, tags=("t",), threat=({"tactic": {"id": "TA1"}},),
        severity_mapping=({"field": "x", "value": "a", "severity": "high", "operator": "equals"},) if mapping else (),
        risk_score_mapping=({"field": "x", "value": "", "operator": "equals"},) if risk else (),
        new_terms={"field": "new_terms_fields", "value": ["x"]} if kind == "new_terms" else None),
    st.sampled_from([None, "default"]), st.sampled_from([None, "message", "x"]), st.booleans(),
    st.sampled_from(["query", "new_terms", "eql"]), st.booleans())


def _report_facts(alerts):
    from trailhound.pipeline.report import RuleOutcome

    o = RuleOutcome("r", "R", "low", None, "ran")
    for a in alerts:
        o.add_alert(a)
    return o.hosts, o.users, o.first, o.last


@settings(max_examples=200, deadline=None)
@given(RULES, st.lists(EVENT_DOCS, min_size=1, max_size=6), st.sampled_from(["events", "sequences"]),
       st.sampled_from([None, 0, 2]))
def test_alert_lines_are_the_documents_serialized(rule, docs, kind, max_signals):
    from trailhound.engine.correlate import Hit

    docs = dict(enumerate(docs))
    if kind == "events":
        hits = [Hit((r,), ("k", r) if rule.type == "new_terms" else None) for r in docs]
    else:
        hits = [Hit(tuple(docs)[:2]), Hit((None, *tuple(docs)[-2:]))]
    now = "2026-01-01T00:00:00.000Z"
    whole = build.alerts_for_hits(rule, kind, hits, docs, now=now, max_signals=max_signals)
    lines = build.alerts_for_hits(rule, kind, hits, docs, now=now, max_signals=max_signals, form="lines")
    facts = build.alerts_for_hits(rule, kind, hits, docs, now=now, max_signals=max_signals, form="facts")
    want = [orjson.dumps(a, default=str) + b"\n" for a in whole.alerts]
    assert lines.lines == want and not lines.alerts and not facts.lines and not facts.alerts
    assert (lines.over_max_signals, facts.over_max_signals) == (whole.over_max_signals,) * 2
    assert _report_facts(lines.facts) == _report_facts(facts.facts) == _report_facts(whole.alerts)


def test_alert_lines_with_suppression_keep_later_folds():
    """A fold updates an alert already made: its line is written after the fold, as the document is."""
    from trailhound.engine.correlate import Hit

    rule = Rule(rule_id="r1", name="R", type="query", severity="low", risk_score=21, description="d",
                alert_suppression={"group_by": ["host.name"], "missing_fields_strategy": "suppress"})
    docs = {i: {"@timestamp": f"2025-01-01T00:00:0{i}Z", "host": {"name": "h"}, "event": {"id": str(i)}}
            for i in range(3)}
    hits = [Hit((i,)) for i in docs]
    whole = build.alerts_for_hits(rule, "events", hits, docs, now="n")
    lines = build.alerts_for_hits(rule, "events", hits, docs, now="n", form="lines")
    assert whole.alerts[0]["kibana.alert.suppression.docs_count"] == 2 and whole.suppressed == 2
    assert lines.lines == [orjson.dumps(a, default=str) + b"\n" for a in whole.alerts]


def test_alerts_for_hits_refuses_an_unknown_form():
    import pytest

    with pytest.raises(ValueError, match="form"):
        build.alerts_for_hits(Rule(rule_id="r", name="R", type="query", severity="low", risk_score=21,
                                   description=""), "events", [], {}, form="bytes")
