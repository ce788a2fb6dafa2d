"""The Spark tasks' code without Spark (runs everywhere): stage 1 per file, the types joined, stage 2 per
rule, against the local engine; the cases where files type a field apart."""

from __future__ import annotations

import json

from trailhound.pipeline import plan, run_hunt
from trailhound.rules.loader import load_rules
from trailhound.spark.tasks import (
    build_alerts,
    correlate_rule,
    join_types,
    merge_parts,
    rule_specs,
    scan_files,
    split_keys,
    split_payload,
)

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


def _by_hand(planned, files, key_parts=1):
    """What the driver does, without Spark: each file its own task, then each rule (or each part of a rule
    split by join key, merged)."""
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
    out, split = {}, []
    for spec in specs:
        mine = [payload for rule, payload in reversed(cands) if rule == spec.index]  # any order
        keys = split_keys(spec, types) if key_parts > 1 else None
        if keys:
            parts: dict[int, list[bytes]] = {}
            for payload in mine:
                for k, piece in split_payload(payload, types, keys, key_parts):
                    parts.setdefault(k, []).append(piece)
            result = merge_parts([correlate_rule(spec, parts[k], offsets, types, frozenset(types), NOW, None,
                                                 ordered=True) for k in sorted(parts)] or
                                 [correlate_rule(spec, [], offsets, types, frozenset(types), NOW, None)])
            split.append(spec.check.rule.name)
        else:
            result = correlate_rule(spec, mine, offsets, types, frozenset(types), NOW, None)
        out[spec.check.rule.name] = result
        build_alerts(spec, result, docs, NOW, None)
    return out, split


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
    spark, _ = _by_hand(planned, [str(a), str(b)])
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
    with pytest.raises(SparkUnavailable, match="grpc missing.*pyspark\\[connect\\]"):
        session("sc://localhost:15002")


def test_sequences_split_by_join_key_give_the_hits_of_one_run_in_its_order(tmp_path):
    """Sequences joined on one key, run in parts by the key's hash and merged, against the local engine: the
    same hits in the same order (the order of their last events, across parts and files whose events are not
    in time order), with a key typed apart by two files (int in one, string in the other) landing in one part;
    a sequence joined on differently named fields, or with a pipe, is not split."""
    import random

    rng = random.Random(7)
    events = []
    for _ in range(600):
        host = rng.choice(["a", "b", "c", "d", "e", 7, "7"])
        events.append({"@timestamp": f"2026-01-01T00:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
                       "event": {"category": "process"}, "host": {"name": host}, "user": {"name": rng.choice("xyz")},
                       "process": {"name": rng.choice(["ssh", "scp", "sh", "curl"])}})
    files = []
    for k in range(3):
        f = tmp_path / f"part{k}.ndjson"
        chunk = events[k * 200:(k + 1) * 200]
        if k == 1:  # host.name 7 as an int in this file only: one load makes it the string "7"
            chunk = [{**e, "host": {"name": 7}} if e["host"]["name"] == "7" else e for e in chunk]
        else:
            chunk = [{**e, "host": {"name": "7"}} if e["host"]["name"] == 7 else e for e in chunk]
        f.write_text("".join(json.dumps(e) + "\n" for e in chunk))
        files.append(str(f))
    rules = tmp_path / "rules"
    rules.mkdir()
    queries = {
        "pair": 'sequence by host.name [process where process.name == "ssh"] [process where process.name == "scp"]',
        "span": 'sequence by host.name with maxspan=5m [process where process.name == "ssh"] '
                '[process where process.name == "sh"] [process where process.name == "curl"]',
        "two": 'sequence by host.name, user.name [process where true] [process where process.name == "curl"]',
        "until": 'sequence by host.name [process where process.name == "ssh"] [process where process.name == "scp"] '
                 'until [process where process.name == "curl"]',
        "apart": 'sequence [process where process.name == "ssh"] by host.name '
                 '[process where process.name == "scp"] by user.name',
        "head": 'sequence by host.name [process where process.name == "ssh"] [process where true] | head 3',
    }
    for name, q in queries.items():
        (rules / f"{name}.toml").write_text(RULE.format(name=name, query=q).replace("[rule]", "[rule]\nmax_signals = 10000"))
    planned = plan(load_rules([rules]))
    local = run_hunt(planned, files, now=NOW, keep_alerts=True)
    got, split = _by_hand(planned, files, key_parts=4)
    assert sorted(split) == ["pair", "span", "two", "until"]
    for outcome in local.rules:
        res = got[outcome.name]
        assert (res.kind, res.hits, res.alerts) == (outcome.kind, outcome.hits, outcome.alert_documents or []), \
            outcome.name
    assert all(got[n].hits > 5 for n in ("pair", "two", "until")), {n: r.hits for n, r in got.items()}
