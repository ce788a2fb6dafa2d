"""The fast paths of alert building give exactly what the plain definitions give: the field lookup
on nested, dotted and mixed documents, the alert ids (uuid5), and whole alerts built twice."""

from __future__ import annotations

import uuid

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
