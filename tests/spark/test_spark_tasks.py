"""The Spark tasks' code without Spark (runs everywhere): stage 1 per file, the types joined, stage 2 per
rule, against the local engine; the cases where files type a field apart."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from trailhound.pipeline import plan, run_hunt
from trailhound.rules.loader import load_rules
from trailhound.spark.tasks import (
    Split,
    build_alerts,
    correlate_rule,
    join_types,
    merge_parts,
    route_payload,
    rule_specs,
    scan_files,
    split_of,
    split_payload,
    threshold_bounds,
)

NOW = "2026-12-01T00:00:00.000Z"
LAB = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "lab"
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
    split by `split_of`, merged)."""
    specs = rule_specs(planned.checks, planned.rules.exceptions)
    scans, cands, docs, offsets, offset = [], [], {}, {}, 0
    for n, path in enumerate(files):
        got, parts, found = scan_files([(n, path)], specs)
        scans += got
        cands += parts
        offsets[n] = offset
        docs.update({offset + row: orjson.loads(doc) for _, row, doc in found})  # as the driver reads them
        offset += got[0].events
    types = join_types(scans)
    out: dict = {}
    split: dict[str, int] = {}  # rule → how many parts had candidates
    for spec in specs:
        mine = [payload for rule, payload in reversed(cands) if rule == spec.index]  # any order
        how = split_of(spec, types) if key_parts > 1 else None
        if isinstance(how, Split):
            parts: dict[int, list[bytes]] = {}
            bounds = None
            for payload in mine:
                pieces = split_payload(payload, types, list(how.keys), key_parts) if how.by == "key" \
                    else route_payload(spec, how, payload, types, key_parts)
                for k, piece in pieces:
                    parts.setdefault(k, []).append(piece)
                if how.kind == "threshold" and (got := threshold_bounds(spec, how, payload, types)) is not None:
                    bounds = got if bounds is None else (min(bounds[0], got[0]), max(bounds[1], got[1]))
            result = merge_parts([correlate_rule(spec, parts[k], offsets, types, frozenset(types), NOW, None,
                                                 ordered=True, split=how, part=k, key_parts=key_parts, bounds=bounds)
                                  for k in sorted(parts)] or
                                 [correlate_rule(spec, [], offsets, types, frozenset(types), NOW, None)], how)
            split[spec.check.rule.name] = len(parts)
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
                       "event": {"category": "process"}, "host": {"name": host}, "user": {"name": rng.choice("xyz")}, "group": {"name": rng.choice("xyz")},
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
        "mixed": 'sequence by host.name [process where process.name == "ssh"] by user.name '
                 '[process where process.name == "scp"] by group.name',
    }
    for name, q in queries.items():
        (rules / f"{name}.toml").write_text(RULE.format(name=name, query=q).replace("[rule]", "[rule]\nmax_signals = 10000"))
    planned = plan(load_rules([rules]))
    local = run_hunt(planned, files, now=NOW, keep_alerts=True)
    got, split = _by_hand(planned, files, key_parts=4)
    assert sorted(split) == ["mixed", "pair", "span", "two", "until"]
    for outcome in local.rules:
        res = got[outcome.name]
        assert (res.kind, res.hits, res.alerts) == (outcome.kind, outcome.hits, outcome.alert_documents or []), \
            outcome.name
    assert all(got[n].hits > 5 for n in ("pair", "two", "until", "mixed")), {n: r.hits for n, r in got.items()}


def _write(tmp_path, events, files=3):
    """The events in `files` NDJSON files (each file's events shuffled: not in time order)."""
    import random

    rng = random.Random(3)
    out, per = [], -(-len(events) // files)
    for k in range(files):
        chunk = events[k * per:(k + 1) * per]
        rng.shuffle(chunk)
        f = tmp_path / f"part{k}.ndjson"
        f.write_text("".join(json.dumps(e) + "\n" for e in chunk))
        out.append(str(f))
    return out


def _rule(name, body, kind="eql", language="eql", extra=""):
    return (f'[rule]\nname = "{name}"\nrule_id = "{name}"\ndescription = "d"\nrisk_score = 21\nseverity = "low"\n'
            f'type = "{kind}"\nlanguage = "{language}"\nmax_signals = 100000\nquery = \'{body}\'\n{extra}')


def _same_as_local(planned, files, key_parts=4):
    local = run_hunt(planned, files, now=NOW, keep_alerts=True)
    got, split = _by_hand(planned, files, key_parts=key_parts)
    for outcome in local.rules:
        res = got[outcome.name]
        assert (res.error, res.unsupported) == (None, None), (outcome.name, res.error, res.unsupported)
        assert (res.kind, res.hits) == (outcome.kind, outcome.hits), outcome.name
        assert res.alerts == (outcome.alert_documents or []), outcome.name
    return local, got, split


def _generated(n=1500, seed=11):
    """Events with many keys, arrays (of repeated values too), nulls and missing fields, many ties in time."""
    import random

    rng = random.Random(seed)
    users = [f"u{k}" for k in range(40)]
    events = []
    for _ in range(n):
        ev = {"@timestamp": f"2026-01-01T{rng.randrange(3):02d}:{rng.randrange(0, 60, 5):02d}:"
                            f"{rng.choice([0, 0, 0, 30]):02d}Z",
              "event": {"category": rng.choice(["process", "authentication"]),
                        "outcome": rng.choice(["success", "failure"])},
              "host": {"name": rng.choice([f"h{k}" for k in range(25)])},
              "process": {"name": rng.choice(["ssh", "scp", "sh", "curl"])}, "group": {"name": rng.choice(users)}}
        r = rng.random()
        if r < 0.25:
            ev["user"] = {"name": [rng.choice(users) for _ in range(rng.randrange(0, 4))]}  # [], repeats
        elif r < 0.9:
            ev["user"] = {"name": rng.choice(users)}
        elif r < 0.95:
            ev["user"] = {"name": None}
        if rng.random() < 0.8:
            ev["source"] = {"ip": rng.choice([f"10.0.0.{k}" for k in range(30)] + [None])}
        if rng.random() < 0.3:
            ev["source"] = {"ip": [f"10.0.1.{rng.randrange(6)}" for _ in range(rng.randrange(1, 3))]}
        events.append(ev)
    return events


def test_new_terms_threshold_and_samples_split_by_terms_give_the_hits_of_one_run(tmp_path):
    """new_terms split by each term combination, threshold by each group, samples by the join key: split,
    correlated per part and merged, they equal one run of the local engine (hits, alert ids, documents and
    order) on generated events with many keys, array values (an event in several parts), nulls and ties in
    time; the rules that cannot be split stay whole."""
    files = _write(tmp_path, _generated())
    rules = tmp_path / "rules"
    rules.mkdir()
    history = "[[rule.new_terms.history_window_start]]\nfield = \"history_window_start\"\nvalue = \"{}\"\n"
    for name, fields, window in [("nt-user", ["user.name"], "now-20m"), ("nt-pair", ["host.name", "user.name"], "now-1h"),
                                 ("nt-ip", ["source.ip", "user.name"], "now-30m"), ("nt-long", ["user.name"], "now-30d")]:
        (rules / f"{name}.toml").write_text(_rule(name, "event.category:process", "new_terms", "kuery",
                                                  f"[rule.new_terms]\nfield = \"new_terms_fields\"\nvalue = "
                                                  f"{json.dumps(fields)}\n" + history.format(window)))
    for name, fields, value, extra in [
            ("th-host", ["host.name"], 3, ""), ("th-user", ["user.name"], 2, 'from = "now-30m"\n'),
            ("th-ip-host", ["source.ip", "host.name"], 2, 'from = "now-12m"\ninterval = "7m"\n'),
            ("th-card", ["host.name"], 2, ""), ("th-none", [], 40, "")]:
        card = '[[rule.threshold.cardinality]]\nfield = "user.name"\nvalue = 2\n' if name == "th-card" else ""
        (rules / f"{name}.toml").write_text(
            _rule(name, "event.category:authentication", "threshold", "kuery", extra)
            + f"[rule.threshold]\nfield = {json.dumps(fields)}\nvalue = {value}\n" + card)
    samples = {"s-host": 'sample by host.name [process where process.name == "ssh"] [process where process.name == "sh"]',
               "s-two": "sample by host.name, source.ip [process where true] [authentication where true]",
               "s-user": 'sample by user.name [process where true] [process where process.name == "scp"]',
               "s-apart": 'sample [process where true] by host.name [authentication where true] by source.ip',
               "s-mixed": 'sample by host.name [process where true] by user.name '
                          '[authentication where true] by group.name'}
    for name, q in samples.items():
        (rules / f"{name}.toml").write_text(_rule(name, q))
    local, got, split = _same_as_local(plan(load_rules([rules])), files)
    # th-none: no threshold field (one group); s-user, s-two: array keys; s-apart: keys of other fields
    assert sorted(split) == ["nt-ip", "nt-long", "nt-pair", "nt-user", "s-host", "s-mixed", "th-card", "th-host",
                             "th-ip-host", "th-user"]
    assert all(n == 4 for n in split.values()), split
    hits = {r.name: r.hits for r in local.rules}
    assert all(hits[n] > 20 for n in split), hits
    # events whose new terms came from several parts: their alerts carry every part's terms
    multi = [a for a in got["nt-ip"].alerts if len(a["kibana.alert.new_terms"]) > 2]
    assert len(multi) > 10
    print("compared:", {n: (hits[n], len(got[n].alerts)) for n in sorted(hits)}, "multi-part new terms:", len(multi))


def _apart(names, parts=4):
    """Two of `names` whose threshold groups (one value each) fall in different parts."""
    from trailhound.spark.tasks import part_of

    first = names[0]
    return first, next(n for n in names[1:] if part_of((n,), parts) != part_of((first,), parts))


def test_threshold_part_runs_the_first_execution_of_the_whole_data(tmp_path):
    """Regression: a part whose first event falls exactly on an execution time (here three events tied at
    00:05:00) is counted by that execution in one run, because an earlier event of another group started the
    schedule before it; a part starting its own schedule would first run at 00:10 and count five events."""
    a, b = _apart([f"h{k}" for k in range(20)])
    ev = {"event": {"category": "authentication"}}
    events = [{**ev, "@timestamp": "2026-01-01T00:01:00Z", "host": {"name": a}}]
    events += [{**ev, "@timestamp": "2026-01-01T00:05:00Z", "host": {"name": b}, "n": k} for k in range(3)]
    events += [{**ev, "@timestamp": "2026-01-01T00:06:00Z", "host": {"name": b}, "n": k} for k in range(2)]
    f = tmp_path / "e.ndjson"
    f.write_text("".join(json.dumps(e) + "\n" for e in events))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "th.toml").write_text(_rule("th", "event.category:authentication", "threshold", "kuery")
                                   + '[rule.threshold]\nfield = ["host.name"]\nvalue = 3\n')
    _, got, split = _same_as_local(plan(load_rules([rules])), [str(f)])
    assert split == {"th": 2}
    (alert,) = got["th"].alerts
    assert alert["kibana.alert.threshold_result"]["count"] == 3


def test_a_date_join_key_is_not_split(tmp_path):
    """Regression: a sequence joined on a date field compares instants, so two texts of one instant
    (`...00Z`, `...00.000Z`) are one key; split by the hash of the text they fell in two parts and the
    sequence was lost. Such a key is correlated whole."""
    ev = {"event": {"category": "process"}, "host": {"name": "h"}}
    events = [{**ev, "@timestamp": "2026-01-01T00:00:01Z", "process": {"name": "ssh", "start": "2026-01-01T00:00:00Z"}},
              {**ev, "@timestamp": "2026-01-01T00:00:02Z",
               "process": {"name": "scp", "start": "2026-01-01T00:00:00.000Z"}}]
    f = tmp_path / "e.ndjson"
    f.write_text("".join(json.dumps(e) + "\n" for e in events))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "seq.toml").write_text(_rule("seq", 'sequence by process.start [process where process.name == "ssh"] '
                                                 '[process where process.name == "scp"]'))
    planned = plan(load_rules([rules]))
    local, got, split = _same_as_local(planned, [str(f)])
    assert split == {} and [r.hits for r in local.rules] == [1]
    spec = rule_specs(planned.checks)[0]
    assert "is a date" in split_of(spec, {"process.start": ("str", False), "process.name": ("str", False)})


def test_a_date_tiebreaker_orders_as_the_local_hunt_orders_it(tmp_path):
    """Regression: stage 2 correlated a rule with the engine's single search, which read a date tiebreaker as
    an instant, while the local hunt ran its batch searches, which ordered by the tiebreaker's text: two
    sequences ending at one time came out in the other order. Both now order by the instant (as Elasticsearch
    sorts a date field), whole and split."""
    ev = {"event": {"category": "process"}, "@timestamp": "2026-01-01T00:00:00Z"}
    first, second = _apart([f"h{k}" for k in range(20)])
    events = []
    # first's last event is the earlier instant (00:00:00Z) but the later text
    for host, created in ((first, "2026-01-01T01:00:00+01:00"), (second, "2026-01-01T00:00:30Z")):
        events.append({**ev, "host": {"name": host}, "process": {"name": "ssh"},
                       "event": {**ev["event"], "created": "2025-12-31T00:00:00Z"}})
        events.append({**ev, "host": {"name": host}, "process": {"name": "scp"},
                       "event": {**ev["event"], "created": created}})
    f = tmp_path / "e.ndjson"
    f.write_text("".join(json.dumps(e) + "\n" for e in reversed(events)))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "seq.toml").write_text(_rule("seq", 'sequence by host.name [process where process.name == "ssh"] '
                                                 '[process where process.name == "scp"]',
                                          extra='tiebreaker_field = "event.created"\n'))
    planned = plan(load_rules([rules]))
    for parts in (1, 4):
        local, got, split = _same_as_local(planned, [str(f)], key_parts=parts)
        assert split == ({"seq": 2} if parts > 1 else {})
        shells = [a["host"]["name"] for a in got["seq"].alerts if a.get("kibana.alert.building_block_type") is None]
        assert shells == [first, second]  # first's last event is the earlier instant, the later text
