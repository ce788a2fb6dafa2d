"""The Spark tasks' code without Spark (runs everywhere): stage 1 per file, the types joined, stage 2 per
rule, against the local engine; the cases where files type a field apart."""

from __future__ import annotations

import json

from trailhound.pipeline import plan, run_hunt
from trailhound.rules.loader import load_rules
from trailhound.spark.tasks import build_alerts, correlate_rule, join_types, rule_specs, scan_files

NOW = "2026-12-01T00:00:00.000Z"
RULE = """[rule]
name = "{name}"
rule_id = "{name}"
description = "d"
risk_score = 21
severity = "low"
type = "eql"
language = "eql"
query = '{query}'
"""


def _by_hand(planned, files):
    """What the driver does, without Spark: each file its own task, then each rule."""
    specs = rule_specs(planned.checks, planned.rules.exceptions)
    scans, cands, docs, offsets, offset = [], [], {}, {}, 0
    for n, path in enumerate(files):
        got, parts, found = scan_files([(n, path)], specs)
        scans += got
        cands += parts
        offsets[n] = offset
        docs.update({offset + row: json.loads(doc) for _, row, doc in found})
        offset += got[0].events
    types = join_types(scans)
    out = {}
    for spec in specs:
        mine = [payload for rule, payload in reversed(cands) if rule == spec.index]  # any order
        out[spec.check.rule.name] = result = correlate_rule(spec, mine, offsets, types, frozenset(types), NOW, None)
        build_alerts(spec, result, docs, NOW, None)
    return out


def test_a_field_typed_apart_by_two_files_is_typed_as_one_load_types_it(tmp_path):
    ev = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "host": {"name": "h"}}
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    # x: an int in a, a string in b (one load: a string column, "5"); y: a scalar in a, an array in b
    a.write_text(json.dumps({**ev, "x": 5, "y": "one", "process": {"name": "ssh"}}) + "\n"
                 + json.dumps({**ev, "x": 5, "y": "one", "process": {"name": "ssh"}}) + "\n")
    b.write_text(json.dumps({**ev, "@timestamp": "2026-01-01T00:00:01Z", "x": "five", "y": ["two", "three"],
                             "process": {"name": "scp"}}) + "\n")
    rules = tmp_path / "rules"
    rules.mkdir()
    queries = {"str": 'process where x == "5"', "int": "process where x == 5", "list": 'process where y == "one"',
               "seq": 'sequence by host.name [process where x == "5"] [process where y == "three"]'}
    for name, q in queries.items():
        (rules / f"{name}.toml").write_text(RULE.format(name=name, query=q))
    # a threshold's terms carry the value as the column holds it: "5" (a string), not 5, though every event
    # it counts has the int: the file that makes the column a string has no candidate
    (rules / "threshold.toml").write_text(RULE.format(name="threshold", query="process.name : ssh")
                                          .replace('"eql"', '"threshold"').replace('language = "threshold"',
                                                                                  'language = "kuery"')
                                          + '[rule.threshold]\nfield = ["x"]\nvalue = 2\n')
    planned = plan(load_rules([rules]))
    local = run_hunt(planned, [a, b], now=NOW, keep_alerts=True)
    spark = _by_hand(planned, [str(a), str(b)])
    for outcome in local.rules:
        got = spark[outcome.name]
        assert (got.kind, got.hits, got.alerts) == (outcome.kind, outcome.hits, outcome.alert_documents or []), \
            outcome.name
    assert {r.name: r.hits for r in local.rules} == {"str": 2, "int": 2, "list": 2, "seq": 1, "threshold": 1}
    (terms,) = [a["kibana.alert.threshold_result"]["terms"] for a in spark["threshold"].alerts]
    assert terms == [{"field": "x", "value": "5"}]


def test_spark_connect_without_its_client_is_a_clear_error(monkeypatch):
    import importlib.util

    import pytest

    from trailhound.spark.driver import SparkUnavailable, session

    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else real(name, *a))
    with pytest.raises(SparkUnavailable, match="pyspark\\[connect\\]"):
        session("sc://localhost:15002")
