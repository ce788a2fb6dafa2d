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


def test_an_event_count_alerts_at_each_event_ending_a_window_that_holds_the_count():
    """Each event whose window holds N raises an alert of the N newest events (EQL's run of N ending there);
    events are not used up (they were: 7 events gave 2 alerts, and the last one was never linked)."""
    events = [ev(i * S) for i in range(7)]
    assert run(spec(), events) == [(i * S, (i + 1) * S, (i + 2) * S) for i in range(5)]
    assert run(spec(cond=((">", 3.0),)), events) == [tuple(j * S for j in range(i, i + 4)) for i in range(4)]
    assert run(spec(cond=((">=", 2.5),)), events[:3]) == [(0, S, 2 * S)]  # a fraction: the least count above it
    # a gap beyond the timespan starts again: the window ending at 100 s holds only itself and what follows
    late = [ev(0), ev(S), ev(2 * S), ev(100 * S), ev(101 * S), ev(102 * S)]
    assert run(spec(), late) == [(0, S, 2 * S), (100 * S, 101 * S, 102 * S)]
    assert run(spec(cond=((">=", 3.0), (">", 3.0))), events[:5]) == [(0, S, 2 * S, 3 * S), (S, 2 * S, 3 * S, 4 * S)]


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
    # the b at 0 precedes every a: it is no part of the order, and not among the alert's events
    assert run(o, [ev(0, rule=1), ev(1, rule=0), ev(2, rule=1)]) == [(1, 2)]
    assert run(o, [ev(0, rule=0), ev(61 * S, rule=1)]) == []  # beyond the timespan


def test_temporal_ordered_steps_hold_their_latest_chain_like_an_eql_sequence():
    """Each step holds one chain per group, the latest (a later `a` replaces the chain of step 1; a `b` moves
    it on to step 2); an alert links one event per rule. Before, an alert linked every unused event of the window
    from the first `a` on: (0, 1, 2) where EQL's sequence finds (1, 2)."""
    o = spec("temporal_ordered", refs=("a", "b"), cond=((">=", 2.0),))
    assert run(o, [ev(0, rule=0), ev(1, rule=0), ev(2, rule=1)]) == [(1, 2)]
    assert run(o, [ev(0, rule=0), ev(1, rule=1), ev(2, rule=1)]) == [(0, 1)]  # the chain moved on: b at 2 alone
    three = spec("temporal_ordered", refs=("a", "b", "c"), cond=((">=", 3.0),))
    # a0 b1 a2 c3 b4 c5: (0, 1, 3) completes; a2's chain waited at step 1, b4 moves it on, c5 completes it
    events = [ev(0, rule=0), ev(1, rule=1), ev(2, rule=0), ev(3, rule=2), ev(4, rule=1), ev(5, rule=2)]
    assert run(three, events) == [(0, 1, 3), (2, 4, 5)]
    for cuts in [(1,), (2, 3), (1, 2, 3, 4, 5)]:  # a chain waiting at each step goes through a checkpoint
        assert run(three, events, cuts) == [(0, 1, 3), (2, 4, 5)]
    # the first event of a chain leaves the window: the chain is dropped (a at 0, b at 30 s, c at 61 s)
    assert run(three, [ev(0, rule=0), ev(30 * S, rule=1), ev(61 * S, rule=2)]) == []
    # a checkpoint of the earlier engine (unused events of a window, not chains) resumes: b then a becomes a chain
    old = {"version": SigmaCorrelationRun(three).to_dict()["version"], "kind": "sigma_correlation", "watermark": 1,
           "seen": 2, "ungrouped": 0, "groups": [[[], [[0, 0, 1, None], [1, 1, 0, None]]]], "deadlines": []}
    resumed = SigmaCorrelationRun.from_dict(three, old)
    assert [h.rows for h in resumed.feed([ev(2, rule=1), ev(3, rule=2)])] == [(1, 2, 3)]
    two_of_three = spec("temporal_ordered", refs=("a", "b", "c"), cond=((">=", 2.0),))
    assert run(two_of_three, [ev(0, rule=0), ev(1, rule=1), ev(2, rule=2)]) == [(0, 1)]


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


def nested(start, end, rows, rule=0, key=()) -> BaseEvent:
    """An alert of another correlation, as an event: at its last event, beginning at its first."""
    return BaseEvent(end, max(rows), rule, key, None, start, tuple(rows))


@pytest.mark.parametrize("cuts", [(), (1,)])
def test_a_correlation_alert_lies_in_a_window_only_with_all_its_events(cuts):
    s = spec(cond=((">=", 2.0),), span=10 * S)
    inside = [nested(0, 4 * S, (0, 4)), nested(6 * S, 10 * S, (6, 10))]
    assert run(s, inside, cuts) == [(0, 4, 6, 10)]  # its first event at exactly the timespan: inside
    late = [nested(0, 4 * S, (0, 4)), nested(6 * S, 10 * S + 1, (6, 11))]
    assert run(s, late, cuts) == []  # 1 ms more: the first alert began before the window
    closing = spec(cond=(("==", 2.0),), span=10 * S)
    assert run(closing, inside, cuts) == [(0, 4, 6, 10)]
    assert run(closing, late, cuts) == []


@pytest.mark.parametrize("cuts", [(), (1,)])
def test_a_closing_window_opens_at_the_earliest_beginning(cuts):
    """B ends after A but began before it: the window judged first is B's ([0, 10] s), which holds both."""
    s = spec(cond=(("==", 2.0),), span=10 * S)
    events = [nested(5 * S, 6 * S, (5, 6)), nested(0, 8 * S, (0, 8))]
    assert run(s, events, cuts) == [(5, 6, 0, 8)]


def test_a_correlation_alert_is_ordered_by_its_last_event():
    s = spec("temporal_ordered", refs=("runs", "success"), span=60 * S, cond=((">=", 2.0),))
    # the success comes before the repeated failures were complete: not in order
    assert run(s, [ev(5 * S, row=5, rule=1), nested(0, 9 * S, (0, 9))]) == []
    assert run(s, [nested(0, 9 * S, (0, 9)), ev(10 * S, row=10, rule=1)]) == [(0, 9, 10)]


def test_a_temporal_ordered_alert_leaves_out_what_came_before_its_first_rule():
    s = spec("temporal_ordered", refs=("a", "b"), span=60 * S, cond=((">=", 2.0),))
    events = [ev(S, rule=1), ev(2 * S, rule=0), ev(3 * S, rule=1)]
    assert run(s, events) == [(2 * S, 3 * S)]  # the b at 1 s precedes every a: no part of the order
    assert run(s, [ev(S, rule=0), ev(2 * S, rule=1), ev(3 * S, rule=0)]) == [(S, 2 * S)]


SUCCESS = """title: Successful login
name: success_login
id: 6a1c2b3d-0000-4000-8000-000000000022
logsource: {product: linux, service: auth}
detection:
  sel: {event.outcome: success}
  condition: sel
level: low
"""
OUTER = """title: Login after failures
id: 6a1c2b3d-0000-4000-8000-000000000023
correlation:
  type: temporal_ordered
  rules: [many_failed, success_login]
  group-by: [ip]
  aliases:
    ip: {many_failed: source.ip, success_login: source.ip}
  timespan: 1m
  generate: GENERATE
level: critical
"""


def _login_events(tmp_path):
    """Failures from 10.0.0.1 at 0, 10, 20 s (and one from .2), then successes from .1 at 40 s and from .2 at 41 s,
    and from .1 again at 70 s (when the failures began more than 1m earlier)."""
    lines = []
    for i, (t, ip, outcome) in enumerate([(0, "10.0.0.1", "failure"), (10, "10.0.0.1", "failure"),
                                          (15, "10.0.0.2", "failure"), (20, "10.0.0.1", "failure"),
                                          (40, "10.0.0.1", "success"), (41, "10.0.0.2", "success"),
                                          (70, "10.0.0.1", "success")]):
        lines.append(json.dumps({"@timestamp": 1_700_000_000_000 + t * 1000, "source": {"ip": ip},
                                 "event": {"category": ["authentication"], "outcome": outcome},
                                 "user": {"name": f"u{i}"}}))
    path = tmp_path / "logins.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path


def _chain(tmp_path, generate="false", outer=OUTER):
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "base.yml").write_text(BASE + "---\n" + SUCCESS)
    (rules / "corr.yml").write_text(CORRELATION.replace("GENERATE", "false") + "name: many_failed\n")
    (rules / "outer.yml").write_text(outer.replace("GENERATE", generate))
    loaded = load_rules([rules])
    assert loaded.errors == []
    report = run_hunt(plan(loaded), [_login_events(tmp_path)], keep_alerts=True)
    return {o.name: o for o in report.rules}


@pytest.mark.parametrize("generate", ["false", "true"])
def test_a_correlation_of_a_correlation_in_a_hunt(tmp_path, generate):
    by_name = _chain(tmp_path, generate)
    outer = by_name["Login after failures"]
    assert outer.status == "ran", outer.reason
    assert outer.hits == 1 and outer.alerts == 5  # the three failures, the success at 40 s, and the shell
    shell = [a for a in outer.alert_documents if "kibana.alert.building_block_type" not in a]
    assert shell[0]["kibana.alert.sigma.correlation"]["group_by"] == {"ip": "10.0.0.1"}
    blocks = sorted(a["user"]["name"] for a in outer.alert_documents if "kibana.alert.building_block_type" in a)
    assert blocks == ["u0", "u1", "u3", "u4"]
    # what the outer names (the inner correlation, the success rule) alerts only when it says generate: true;
    # the inner's base rule never (the inner's own generate is false)
    assert by_name["Many failed logins from one source"].hits == (1 if generate == "true" else 0)
    assert by_name["Successful login"].alerts == (3 if generate == "true" else 0)
    assert by_name["Failed login"].alerts == 0


def test_a_chain_is_bounded_by_its_first_source_event(tmp_path):
    """With a 30 s outer timespan, the failures (0-20 s) and the success (40 s) are not within one window."""
    by_name = _chain(tmp_path, outer=OUTER.replace("timespan: 1m", "timespan: 30s"))
    assert by_name["Login after failures"].hits == 0
    by_name = _chain(tmp_path, outer=OUTER.replace("timespan: 1m", "timespan: 40s"))  # exactly the edge
    assert by_name["Login after failures"].hits == 1


def test_a_correlation_of_a_correlation_groups_only_by_its_group_by_fields(tmp_path):
    outer = OUTER.replace("ip: {many_failed: source.ip, success_login: source.ip}",
                          "ip: {many_failed: user.name, success_login: source.ip}")
    by_name = _chain(tmp_path, outer=outer)
    outer_run = by_name["Login after failures"]
    assert outer_run.status == "failed" and "carry only their group-by fields (source.ip)" in outer_run.reason


def test_correlations_naming_each_other_fail_with_the_cycle(tmp_path):
    (tmp_path / "a.yml").write_text("title: ca\nname: ca\ncorrelation: {type: event_count, rules: [cb], "
                                    "timespan: 1h, condition: {gte: 2}}\n")
    (tmp_path / "b.yml").write_text("title: cb\nname: cb\ncorrelation: {type: event_count, rules: [ca], "
                                    "timespan: 1h, condition: {gte: 2}}\n")
    report = run_hunt(plan(load_rules([tmp_path])), [_events(tmp_path)])
    assert [o.status for o in report.rules] == ["failed", "failed"]
    assert all("cycle" in o.reason and "'ca'" in o.reason and "'cb'" in o.reason for o in report.rules)


def test_trailhound_test_runs_a_correlation_with_the_rules_beside_it():
    from pathlib import Path

    from typer.testing import CliRunner

    from trailhound.cli.main import app

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "sigma" / "correlation"
    res = CliRunner().invoke(app, ["test", str(folder)])
    assert res.exit_code == 0, res.output
    assert "4 passed, 0 failed, 0 errors" in res.output


def test_trailhound_test_runs_a_correlation_of_a_correlation_with_the_rules_beside_it():
    from pathlib import Path

    from typer.testing import CliRunner

    from trailhound.cli.main import app

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "sigma" / "chain"
    res = CliRunner().invoke(app, ["test", str(folder)])
    assert res.exit_code == 0, res.output
    assert "5 passed, 0 failed, 0 errors" in res.output


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


def test_group_by_and_value_fields_use_the_base_rules_taxonomy(tmp_path):
    """Regression: a correlation's group-by, aliases and value field are Sigma names of its rules' logsource
    (`pam_rhost` of an auth rule is `source.ip`, `User` is `user.name`), as pySigma's field mappings read them;
    they were looked up as ECS names, so every event was left out for a missing group-by value."""
    assert "service: auth" in BASE
    (tmp_path / "base.yml").write_text(BASE)
    corr = CORRELATION.replace("GENERATE", "false").replace("[source.ip]", "[pam_rhost]")
    (tmp_path / "corr.yml").write_text(corr)
    distinct = (CORRELATION.replace("GENERATE", "false").replace("event_count", "value_count")
                .replace("{gte: 3}", "{gte: 3, field: User}").replace("[source.ip]", "[pam_rhost]")
                .replace("Many failed logins from one source", "Many users tried from one source")
                .replace("-000000000021", "-000000000022"))
    (tmp_path / "distinct.yml").write_text(distinct)
    report = run_hunt(plan(load_rules([tmp_path])), [_events(tmp_path)], keep_alerts=True)
    by_name = {o.name: o for o in report.rules}
    for name in ("Many failed logins from one source", "Many users tried from one source"):
        outcome = by_name[name]
        assert outcome.hits == 1, (name, outcome.notes)
        shell = [a for a in outcome.alert_documents if "kibana.alert.building_block_type" not in a]
        assert shell[0]["kibana.alert.sigma.correlation"]["group_by"] == {"pam_rhost": "10.0.0.1"}
        assert sorted(a["user"]["name"] for a in outcome.alert_documents if "user" in a) == ["u0", "u1", "u3"]
