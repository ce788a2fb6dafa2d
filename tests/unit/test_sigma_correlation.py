"""Sigma v2 correlations: each type, window edges (inclusive timespan), bursts, closing windows for
falling conditions, out-of-order input, group-by (and missing values), checkpoints at any cut, and in a
hunt: base rules without alerts of their own unless `generate: true`."""

import json
import shutil

import pytest
import yaml

from trailhound.engine.sigma_correlation import BaseEvent, SigmaCorrelationRun
from trailhound.lang.sigma.correlation import CorrelationSpec, correlation_spec
from trailhound.lang.sigma.errors import SigmaRuleError, SigmaUnsupported
from trailhound.pipeline import plan, run_hunt
from trailhound.rules.check import check_rule
from trailhound.rules.loader import load_rules

S = 1000  # ms


def spec(kind="event_count", refs=("a",), span=60 * S, cond=((">=", 3.0),), **kw) -> CorrelationSpec:
    return CorrelationSpec(kind, tuple(refs), span, kw.pop("group_by", ()), tuple(cond), **kw)


def ev(t, row=None, rule=0, key=(), value=None) -> BaseEvent:
    return BaseEvent(t, t if row is None else row, rule, key, value)


def run(s: CorrelationSpec, events, cuts=()) -> list[tuple]:
    """Rows of each hit, feeding the events in batches cut at `cuts`, through a checkpoint at each cut."""
    state = SigmaCorrelationRun(s)
    out = []
    start = 0
    for cut in [*cuts, len(events)]:
        out += state.feed(events[start:cut])
        state = SigmaCorrelationRun.from_dict(s, json.loads(json.dumps(state.to_dict())))
        start = cut
    out += state.finish()
    return [h.rows for h in out]


def test_event_count_window_edges_are_inclusive():
    s = spec(span=10 * S)
    assert run(s, [ev(0), ev(5 * S), ev(10 * S)]) == [(0, 5 * S, 10 * S)]  # exactly the timespan apart
    assert run(s, [ev(0), ev(5 * S), ev(10 * S + 1)]) == []  # 1 ms more: the first has left the window


def test_a_burst_gives_one_alert_per_condition_met_and_events_are_used_once():
    events = [ev(i * S) for i in range(7)]
    assert run(spec(), events) == [(0, S, 2 * S), (3 * S, 4 * S, 5 * S)]


def test_groups_are_separate_and_keyed():
    events = [ev(0, key=("a",)), ev(1, key=("b",)), ev(2, key=("a",)), ev(3, key=("a",)), ev(4, key=("b",))]
    state = SigmaCorrelationRun(spec(group_by=("source.ip",)))
    hits = state.feed(events) + state.finish()
    assert [(h.rows, h.join_keys) for h in hits] == [((0, 2, 3), ("a",))]


def test_out_of_order_input_is_refused():
    state = SigmaCorrelationRun(spec())
    state.feed([ev(10)])
    with pytest.raises(ValueError, match="out of order"):
        state.feed([ev(5)])


@pytest.mark.parametrize("cuts", [(), (1,), (2, 3), (1, 2, 3, 4, 5)])
def test_any_cut_and_checkpoint_gives_the_same_hits(cuts):
    events = [ev(0), ev(1), ev(30 * S), ev(100 * S), ev(101 * S), ev(102 * S), ev(103 * S)]
    assert run(spec(), events, cuts) == run(spec(), events)
    closing = spec(cond=(("<", 2.0),), span=10 * S)
    assert run(closing, events, cuts) == run(closing, events)


def test_value_count_counts_distinct_values():
    s = spec("value_count", field="user.name")
    events = [ev(0, value="a"), ev(1, value="a"), ev(2, value="b"), ev(3, value=None), ev(4, value="c")]
    assert run(s, events) == [(0, 1, 2, 3, 4)]
    assert run(s, events[:4]) == []


def test_temporal_needs_every_rule_and_ordered_needs_their_order():
    t = spec("temporal", refs=("a", "b"), cond=((">=", 2.0),))
    assert run(t, [ev(0, rule=1), ev(1, rule=0)]) == [(0, 1)]
    o = spec("temporal_ordered", refs=("a", "b"), cond=((">=", 2.0),))
    assert run(o, [ev(0, rule=1), ev(1, rule=0)]) == []
    assert run(o, [ev(0, rule=1), ev(1, rule=0), ev(2, rule=1)]) == [(0, 1, 2)]
    assert run(o, [ev(0, rule=0), ev(61 * S, rule=1)]) == []  # beyond the timespan


def test_temporal_with_not_is_judged_when_the_window_closes():
    s = spec("temporal", refs=("a", "b", "c"), cond=(), span=10 * S,
             expression=["and", [["ref", 0], ["ref", 1], ["not", ["ref", 2]]]])
    # c comes within the window: no alert, although a and b were there first
    assert run(s, [ev(0, rule=0), ev(1, rule=1), ev(5 * S, rule=2)]) == []
    # c comes after the window closed: the window of a and b alerts
    assert run(s, [ev(0, rule=0), ev(1, rule=1), ev(11 * S, rule=2)]) == [(0, 1)]


def test_falling_conditions_wait_for_the_window_to_close():
    s = spec(cond=(("<", 3.0),), span=10 * S)
    events = [ev(0), ev(1 * S), ev(2 * S), ev(20 * S)]
    # window [0, 10s] holds 3 (not < 3); its first event leaves: [1s, 11s] holds 2 → alert; then [20s, 30s] → 1
    assert run(s, events) == [(1 * S, 2 * S), (20 * S,)]


@pytest.mark.parametrize("kind,cond,extra,want", [
    ("value_sum", ((">=", 10.0),), {}, [(0, 1, 2)]),
    ("value_avg", ((">", 4.0),), {}, [(0, 1, 2, 3)]),
    ("value_median", (("==", 5.0),), {}, [(0, 1, 2, 3)]),
    ("value_median", (("==", 4.0),), {}, []),
    ("value_percentile", ((">=", 6.79), ("<", 6.81)), {"percentile": 95.0}, [(0, 1, 2, 3)]),  # 5 + 0.9 × 2
    # the windows from 0 (6.8) and from 1 (6.9) fail; the one from 2 holds only 7 (and "x")
    ("value_percentile", ((">=", 7.0),), {"percentile": 95.0}, [(2, 3)]),
])
def test_metric_types(kind, cond, extra, want):
    s = spec(kind, cond=cond, field="bytes", **extra)
    events = [ev(0, value=1), ev(1, value="5"), ev(2, value=7), ev(3, value="x")]  # "x" is not a number
    assert run(s, events) == want


def test_spec_from_yaml_defaults_and_errors():
    doc = yaml.safe_load("title: c\ncorrelation: {type: temporal_ordered, rules: [a, b], timespan: 5m}\n")
    s = correlation_spec(doc)
    assert (s.kind, s.timespan_ms, s.condition) == ("temporal_ordered", 300_000, ((">=", 2.0),))
    with pytest.raises(SigmaRuleError, match="field"):
        correlation_spec(yaml.safe_load("title: c\ncorrelation: {type: value_sum, rules: [a], timespan: 5m, "
                                        "condition: {gte: 3}}\n"))
    with pytest.raises(SigmaUnsupported):
        correlation_spec(yaml.safe_load("title: c\ncorrelation: {type: temporal_ordered, rules: [a, b], "
                                        "timespan: 5m, condition: a and not b}\n"))


BASE = """title: Failed login
name: failed_login
id: 6a1c2b3d-0000-4000-8000-000000000020
logsource: {product: linux, service: auth}
detection:
  sel: {event.outcome: failure}
  condition: sel
level: low
"""
CORRELATION = """title: Many failed logins from one source
id: 6a1c2b3d-0000-4000-8000-000000000021
author: Trailhound tests
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [source.ip]
  timespan: 1m
  condition: {gte: 3}
  generate: GENERATE
level: high
"""


def _events(tmp_path):
    lines = []
    for i, (t, ip) in enumerate([(0, "10.0.0.1"), (10, "10.0.0.1"), (15, "10.0.0.2"), (20, "10.0.0.1"),
                                 (30, None), (200, "10.0.0.1")]):
        doc = {"@timestamp": 1_700_000_000_000 + t * 1000,
               "event": {"category": ["authentication"], "outcome": "failure"}, "user": {"name": f"u{i}"}}
        if ip:
            doc["source"] = {"ip": ip}
        lines.append(json.dumps(doc))
    path = tmp_path / "e.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("generate", [False, True])
def test_hunt_correlation_and_generate(tmp_path, generate):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "base.yml").write_text(BASE)
    (rules / "corr.yml").write_text(CORRELATION.replace("GENERATE", str(generate).lower()))
    loaded = load_rules([rules])
    assert loaded.errors == [] and all(check_rule(r).status == "ok" for r in loaded.rules)
    report = run_hunt(plan(loaded), [_events(tmp_path)], keep_alerts=True)
    by_name = {o.name: o for o in report.rules}
    corr = by_name["Many failed logins from one source"]
    assert corr.hits == 1 and corr.alerts == 4  # three building blocks and the shell
    shell = [a for a in corr.alert_documents if "kibana.alert.building_block_type" not in a]
    assert len(shell) == 1 and shell[0]["source"]["ip"] == "10.0.0.1"
    assert shell[0]["kibana.alert.sigma.correlation"] == {"type": "event_count", "timespan": "1m",
                                                          "group_by": {"source.ip": "10.0.0.1"}, "events": 3}
    assert shell[0]["kibana.alert.rule.author"] == ["Trailhound tests"]
    assert any("no timestamp or no group-by value" in n for n in corr.notes)  # the event without source.ip
    base = by_name["Failed login"]
    assert base.alerts == (6 if generate else 0)


def test_a_correlation_naming_an_unknown_rule_fails_with_the_reason(tmp_path):
    shutil.rmtree(tmp_path / "rules", ignore_errors=True)
    (tmp_path / "corr.yml").write_text(CORRELATION.replace("GENERATE", "false"))
    report = run_hunt(plan(load_rules([tmp_path / "corr.yml"])), [_events(tmp_path)])
    [outcome] = report.rules
    assert outcome.status == "failed" and "failed_login" in outcome.reason


def test_a_correlation_of_a_correlation_is_unsupported_with_the_reason(tmp_path):
    (tmp_path / "base.yml").write_text(BASE)
    (tmp_path / "corr.yml").write_text(CORRELATION.replace("GENERATE", "false") + "name: many_failed\n")
    (tmp_path / "outer.yml").write_text("title: outer\ncorrelation: {type: event_count, rules: [many_failed], "
                                        "timespan: 1h, condition: {gte: 2}}\n")
    report = run_hunt(plan(load_rules([tmp_path])), [_events(tmp_path)])
    outer = next(o for o in report.rules if o.name == "outer")
    assert outer.status == "unsupported" and "correlations of correlations" in outer.reason


def test_trailhound_test_runs_a_correlation_with_the_rules_beside_it():
    from pathlib import Path

    from typer.testing import CliRunner

    from trailhound.cli.main import app

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "sigma" / "correlation"
    res = CliRunner().invoke(app, ["test", str(folder)])
    assert res.exit_code == 0, res.output
    assert "4 passed, 0 failed, 0 errors" in res.output


def test_events_out_of_order_in_the_input_correlate_as_in_order(tmp_path):
    (tmp_path / "base.yml").write_text(BASE)
    (tmp_path / "corr.yml").write_text(CORRELATION.replace("GENERATE", "false"))
    ordered = _events(tmp_path)
    lines = ordered.read_text().splitlines()
    shuffled = tmp_path / "shuffled.ndjson"
    shuffled.write_text("\n".join(reversed(lines)) + "\n")
    results = []
    for path in (ordered, shuffled):
        report = run_hunt(plan(load_rules([tmp_path / "base.yml", tmp_path / "corr.yml"])), [path], keep_alerts=True)
        corr = next(o for o in report.rules if o.name == "Many failed logins from one source")
        results.append(sorted(a["user"]["name"] for a in corr.alert_documents if "user" in a))
    assert results[0] == results[1] == ["u0", "u1", "u3"]
