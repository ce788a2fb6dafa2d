"""Independent agreement: every SigmaHQ Linux rule (ECS logsources) that pySigma's Elasticsearch backend
converts to EQL must select, on an event set generated from the rules' own values, the same events as our
translation of the rule. The backend's EQL runs on our EQL engine (conformance-tested against
Elasticsearch), restricted by our logsource condition, with our field mapping given to the backend as a
pySigma processing pipeline. Differences must be listed in KNOWN with the reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from trailhound.engine.search import SearchOptions, search_events_batch
from trailhound.lang import ir
from trailhound.lang.parser import parse
from trailhound.rules.check import sigma_query
from trailhound.sources import events_from_documents

pytest.importorskip("sigma.backends.elasticsearch", reason="pySigma's Elasticsearch backend (the convert extra)")

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared")) / "corpora" / "sigma" / "rules-linux"
LINUX = CORPUS / "rules" / "linux"
MAPPING = REPO / "src" / "trailhound" / "lang" / "sigma" / "linux.yml"

#: rule file name → why the backend's query and ours differ (a backend bug, or a documented difference)
KNOWN: dict[str, str] = {}

CATEGORY_EVENT = {"process_creation": {"category": ["process"], "type": ["start"]},
                  "file_event": {"category": ["file"], "type": ["creation"]},
                  "network_connection": {"category": ["network"], "type": ["start"]}}


def _pipeline():
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation

    mapping = yaml.safe_load(MAPPING.read_text())
    items = [ProcessingItem(FieldMappingTransformation(mapping["fields"][e["fields"]]),
                            rule_conditions=[LogsourceCondition(**e["match"])])
             for e in mapping["logsources"] if e.get("fields") and "category" in e["match"]]
    return ProcessingPipeline(items=items)


def _text(value) -> str | None:
    from sigma.types import SigmaString, SpecialChars

    if not isinstance(value, SigmaString):
        return None
    return "".join("" if p == SpecialChars.WILDCARD_MULTI else "a" if p == SpecialChars.WILDCARD_SINGLE
                   else p for p in value.s if isinstance(p, (str, SpecialChars)))


def _events(rules) -> list[dict]:
    from sigma.conditions import ConditionAND

    """Events built from every rule's values: one per value, one per detection (its items together),
    one per rule (all its detections together), and each of those upper-cased."""
    mapping = yaml.safe_load(MAPPING.read_text())
    out: list[dict] = []
    for rule in rules:
        category = rule.logsource.category
        entry = next(e for e in mapping["logsources"] if e["match"].get("category") == category)
        table = mapping["fields"][entry["fields"]]
        whole: dict[str, str] = {}
        for detection in rule.detection.detections.values():
            firsts: dict[str, str] = {}
            lasts: dict[str, str] = {}
            for item in getattr(detection, "detection_items", []):
                if getattr(item, "field", None) is None:
                    continue
                path = table.get(item.field, item.field)
                texts = [t for v in item.value if (t := _text(v)) is not None]
                if not texts:
                    continue
                out.extend({path: t} for t in texts)
                if item.value_linking is ConditionAND:  # |all: every value in one text
                    texts = [" ".join(texts)]
                firsts[path] = (firsts.get(path, "") + texts[0]) if path in firsts else texts[0]
                lasts[path] = texts[-1]
            for together in (firsts, lasts):
                if together:
                    out.append(dict(together))
            for k, v in firsts.items():
                whole.setdefault(k, v)
        if whole:
            out.append(whole)
    docs = []
    for i, flat in enumerate(out):
        for upper in (False, True):
            for event in CATEGORY_EVENT.values():
                doc: dict = {"@timestamp": i * 10 + upper, "event": dict(event)}
                for k, v in flat.items():
                    node = doc
                    *parents, leaf = k.split(".")
                    for p in parents:
                        node = node.setdefault(p, {})
                    node[leaf] = v.upper() if upper else v
                docs.append(doc)
    return docs


@pytest.mark.skipif(not LINUX.is_dir(), reason="SigmaHQ corpus (../shared) not present")
def test_our_translation_agrees_with_the_elasticsearch_backend():
    from sigma.backends.elasticsearch import EqlBackend
    from sigma.collection import SigmaCollection

    rules = [r for r in SigmaCollection.load_ruleset([LINUX], collect_errors=True)
             if not r.errors and r.logsource.category in CATEGORY_EVENT]
    assert len(rules) >= 130
    backend = EqlBackend(_pipeline())
    ours, theirs, names = [], [], []
    unconverted = []
    for rule in rules:
        name = Path(str(rule.source.path)).name if rule.source else rule.title
        ours_q = sigma_query(yaml.safe_dump(rule.to_dict()))
        assert isinstance(ours_q, ir.EventQuery)
        try:
            [eql] = backend.convert_rule(rule)
            converted = parse(eql)
        except Exception as e:  # noqa: BLE001 - a rule the backend cannot convert (or we cannot parse) is listed
            unconverted.append((name, str(e)[:100]))
            continue
        assert isinstance(converted, ir.EventQuery)
        where = ours_q.filter.condition.terms[0]  # our logsource condition, ANDed first
        ours.append(ours_q)
        theirs.append(ir.restrict(converted, where))
        names.append(name)
    table = events_from_documents(_events(rules))
    ours_hits = search_events_batch(ours, table.frame, SearchOptions())
    theirs_hits = search_events_batch(theirs, table.frame, SearchOptions())
    differ = {}
    positive = 0
    for name, a, b in zip(names, ours_hits, theirs_hits):
        assert not isinstance(a, Exception) and not isinstance(b, Exception), name
        rows_a, rows_b = {h.rows[0] for h in a.hits}, {h.rows[0] for h in b.hits}
        positive += bool(rows_a)
        if rows_a != rows_b:
            differ[name] = (len(rows_a), len(rows_b))
    assert len(names) >= 0.9 * len(rules), unconverted
    print(f"{len(names)} converted, {positive} match some event; unconverted: {unconverted}; differ: {differ}")
    assert positive >= 0.7 * len(names)  # the event set exercises the rules: most match something
    assert {k: v for k, v in differ.items() if k not in KNOWN} == {}
