"""Sigma correlations and the EQL they convert to find the same alerts with the same events (README, "Sigma"):
an event_count and `[..] with runs=N` (an alert links the N newest events of a window holding N; EQL's run of N
ends at each event), a temporal_ordered and `sequence` (each step holds its latest chain, as EQL's sequences do),
and a chain of the two. The Sigma rules run natively and their EQL conversion (`convert --to eql`) run side by
side in one hunt, over generated logins (ties, gaps at the timespan's edge, several groups, events without the
group-by field)."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from trailhound.emit.eql import print_query
from trailhound.emit.sigma_in import SigmaQuery, sigma_queries
from trailhound.engine.hunt import hunt
from trailhound.rules.check import check_rule
from trailhound.rules.loader import load_rules

BASE = """title: Failed login
name: failed_login
id: 6a1c2b3d-0000-4000-8000-000000000120
logsource: {product: linux, service: auth}
detection:
  sel: {event.outcome: failure}
  condition: sel
---
title: Failed logins from one source
id: 6a1c2b3d-0000-4000-8000-000000000121
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [pam_rhost]
  timespan: 10s
  condition: {COND}
"""
STEPS = """title: Successful login
name: ok_login
id: 6a1c2b3d-0000-4000-8000-000000000122
logsource: {product: linux, service: auth}
detection:
  sel: {event.outcome: success}
  condition: sel
---
title: Login of unknown outcome
name: unknown_login
id: 6a1c2b3d-0000-4000-8000-000000000123
logsource: {product: linux, service: auth}
detection:
  sel: {event.outcome: unknown}
  condition: sel
"""
ORDERED = """---
title: Failures then success
id: 6a1c2b3d-0000-4000-8000-000000000124
correlation:
  type: temporal_ordered
  rules: RULES
  group-by: [pam_rhost]
  timespan: 10s
"""


def _events(seed: int, n: int = 800) -> list[str]:
    rnd = random.Random(seed)
    t, lines = 0, []
    for i in range(n):
        t += rnd.choice([0, 0, 1, 1, 1, 2, 2, 3, 10, 11, 40])  # ties, the 10 s edge and past it, long gaps
        doc = {"@timestamp": 1_700_000_000_000 + t * 1000, "user": {"name": f"u{i}"},
               "event": {"category": ["authentication"], "outcome": rnd.choice(["failure"] * 6 + ["success", "unknown"])}}
        ip = rnd.choice(["10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3", None])
        if ip:
            doc["source"] = {"ip": ip}
        lines.append(json.dumps(doc))
    return lines


def _sigma_and_its_eql(tmp_path, text: str, name: str = "Failed logins from one source", warnings: int = 0):
    folder = tmp_path / "sigma"
    folder.mkdir(exist_ok=True)
    (folder / "c.yml").write_text(text)
    loaded = load_rules([folder]).rules
    [sigma_rule] = [r for r in loaded if r.name == name]
    [back] = [q for q in sigma_queries(text) if isinstance(q, SigmaQuery) and q.title == name]
    assert len(back.warnings) == warnings, back.warnings
    eql = dataclasses.replace(sigma_rule, type="eql", language="eql", query=print_query(back.query), source=None,
                              rule_id="eql-of-" + sigma_rule.rule_id)
    return sigma_rule, eql, [r for r in loaded if r is not sigma_rule]  # the base rules: the hunt runs them too


@pytest.mark.parametrize("cond,least", [("{gte: 3}", 3), ("{gt: 3}", 4), ("{gte: 5}", 5)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_event_count_alerts_are_eqls_runs(tmp_path, cond, least, seed):
    sigma_rule, eql, base = _sigma_and_its_eql(tmp_path, BASE.replace("{COND}", cond))
    assert f"with runs={least}" in eql.query and "maxspan=10s" in eql.query
    path = tmp_path / "e.ndjson"
    path.write_text("\n".join(_events(seed)) + "\n")
    checks = [check_rule(r) for r in (sigma_rule, eql, *base)]
    assert all(c.status == "ok" for c in checks), [c.reason for c in checks]
    sigma_run, eql_run = _runs(checks, path)
    assert eql_run.hits, "the generated bursts must fire"
    assert [(h.rows, h.join_keys) for h in sigma_run.hits] == [(h.rows, h.join_keys) for h in eql_run.hits]
    assert all(len(h.rows) == least for h in sigma_run.hits)


def _runs(checks, path):
    by_id = {id(run.check.rule): run for run in hunt(checks, [path]).runs}
    return by_id[id(checks[0].rule)], by_id[id(checks[1].rule)]


def test_a_burst_in_a_hunt_links_every_event_of_it(tmp_path):
    """The lab's brute force in small: 8 failures from one source within the timespan, `gte: 5` → 4 alerts (the
    runs ending at the 5th..8th failure), which together link all 8 (with events used up: 1 alert, 5 events)."""
    sigma_rule, eql, base = _sigma_and_its_eql(tmp_path, BASE.replace("{COND}", "{gte: 5}"))
    lines = [json.dumps({"@timestamp": 1_700_000_000_000 + i * 1000, "source": {"ip": "10.0.0.9"},
                         "user": {"name": f"u{i}"}, "event": {"category": ["authentication"], "outcome": "failure"}})
             for i in range(8)]
    path = tmp_path / "burst.ndjson"
    path.write_text("\n".join(lines) + "\n")
    sigma_run, eql_run = _runs([check_rule(r) for r in (sigma_rule, eql, *base)], path)
    assert [h.rows for h in sigma_run.hits] == [tuple(range(i, i + 5)) for i in range(4)]
    assert [h.rows for h in eql_run.hits] == [h.rows for h in sigma_run.hits]


@pytest.mark.parametrize("rules,shape", [
    ("[failed_login, ok_login]", "[any where"),
    ("[failed_login, ok_login, unknown_login]", "[any where"),
    ("[three_failed, ok_login]", "with runs=3"),  # an event_count chained in as a step
])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_temporal_ordered_alerts_are_eqls_sequences(tmp_path, rules, shape, seed):
    text = (BASE.replace("{COND}", "{gte: 3}").replace("title: Failed logins from one source",
                                                       "title: Three failures\nname: three_failed")
            + "---\n" + STEPS + ORDERED.replace("RULES", rules))
    sigma_rule, eql, base = _sigma_and_its_eql(tmp_path, text, "Failures then success")
    assert eql.query.startswith("sequence by source.ip with maxspan=10s") and shape in eql.query, eql.query
    path = tmp_path / "e.ndjson"
    path.write_text("\n".join(_events(seed)) + "\n")
    checks = [check_rule(r) for r in (sigma_rule, eql, *base)]
    assert all(c.status == "ok" for c in checks), [c.reason for c in checks]
    sigma_run, eql_run = _runs(checks, path)
    assert eql_run.hits, "the generated logins must fire"
    assert [(h.rows, h.join_keys) for h in sigma_run.hits] == [(h.rows, h.join_keys) for h in eql_run.hits]
