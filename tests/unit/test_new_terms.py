"""new_terms rules: first-seen term combinations within the history window."""


import pytest

from trailhound.engine.new_terms import NewTermsState
from trailhound.engine.search import NewTermsRule, search_new_terms, search_new_terms_batch
from trailhound.lang.kql import parse_kql_query
from trailhound.rules.model import date_math_ms
from trailhound.sources import events_from_documents

from helpers import ev, hunt_cli, write_case

DAY = 86_400_000


def login(i, day, ip, user="root", outcome="success"):
    return ev(i, day * DAY, "authentication", source={"ip": ip}, user={"name": user},
              event={"category": ["authentication"], "outcome": outcome})


def run(docs, fields, history_ms, kql="event.outcome:success"):
    table = events_from_documents(docs)
    result = search_new_terms(parse_kql_query(kql), table.frame, fields, history_ms)
    return [(docs[h.rows[0]]["id"], list(h.join_keys)) for h in result.hits]


def test_first_seen_and_seen_again_after_the_history_window():
    docs = [login(1, 0, "10.0.0.1"), login(2, 1, "10.0.0.1"), login(3, 2, "10.0.0.2"),
            login(4, 9, "10.0.0.1"), login(5, 10, "10.0.0.3", outcome="failure")]
    # 10.0.0.1 last seen on day 1, again on day 9: more than 5 days later, so new again
    assert run(docs, ["source.ip"], 5 * DAY) == [(1, ["10.0.0.1"]), (3, ["10.0.0.2"]), (4, ["10.0.0.1"])]
    assert run(docs, ["source.ip"], 10 * DAY) == [(1, ["10.0.0.1"]), (3, ["10.0.0.2"])]


def test_combinations_and_array_values():
    docs = [login(1, 0, "10.0.0.1", "root"), login(2, 1, "10.0.0.1", "alice"), login(3, 2, "10.0.0.1", "root"),
            ev(4, 3 * DAY, "authentication", event={"outcome": "success"}, related={"ip": ["10.0.0.1", "10.0.0.9"]})]
    assert run(docs, ["source.ip", "user.name"], 30 * DAY) == [(1, ["10.0.0.1", "root"]), (2, ["10.0.0.1", "alice"])]
    assert run(docs, ["related.ip"], 30 * DAY) == [(4, ["10.0.0.1", "10.0.0.9"])]


def test_batched_new_terms_equal_single_searches():
    """hunt's shared pass (filters evaluated together, then each rule's replay) changes no result."""
    docs = [login(1, 0, "10.0.0.1", "root"), login(2, 1, "10.0.0.1", "alice"), login(3, 2, "10.0.0.2", "root"),
            login(4, 9, "10.0.0.1", "Root"), login(5, 10, "10.0.0.3", outcome="failure"),
            ev(6, 11 * DAY, "authentication", event={"outcome": "success", "category": ["authentication"]},
               related={"ip": ["10.0.0.1", "10.0.0.9"]}), login(7, 12, None, "bob")]
    table = events_from_documents(docs)
    cases = [("event.outcome:success", ("source.ip",), 5 * DAY),
             ("event.outcome:success", ("source.ip", "user.name"), 30 * DAY),
             ("user.name:root and not source.ip:10.0.0.2", ("user.name",), DAY),
             ("event.category:authentication", ("related.ip",), 30 * DAY),
             ("not event.outcome:failure", ("source.ip",), 2 * DAY),
             ("event.outcome:(success or failure) and user.name:r*", ("user.name",), 3 * DAY)]
    rules = [NewTermsRule(parse_kql_query(kql), fields, ms) for kql, fields, ms in cases]
    got = search_new_terms_batch(rules, table.frame)
    for rule, result in zip(rules, got):
        want = search_new_terms(rule.query, table.frame, list(rule.fields), rule.history_ms)
        assert [(h.rows, h.join_keys) for h in result.hits] == [(h.rows, h.join_keys) for h in want.hits]
        assert result.warnings == want.warnings


def test_state_is_bounded():
    state = NewTermsState(history_ns=10)
    for t in range(100):
        state.feed(t, [(t,)])
    state.expire(100)
    assert sorted(state.last_seen) == [(t,) for t in range(90, 100)]


@pytest.mark.parametrize("text, ms", [("now-5d", 5 * DAY), ("now-14d", 14 * DAY), ("now-30m", 1_800_000)])
def test_history_window_date_math(text, ms):
    assert date_math_ms(text) == ms


def test_hunt_runs_new_terms_rules(tmp_path):
    data, rules = write_case(tmp_path, [login(1, 0, "10.0.0.1"), login(2, 1, "10.0.0.1")], {"nt.toml": '''
[rule]
name = "SSH login from unusual IP"
description = "d"
risk_score = 21
rule_id = "nt-1"
severity = "low"
type = "new_terms"
language = "kuery"
query = "event.category:authentication and event.outcome:success"

[rule.new_terms]
field = "new_terms_fields"
value = ["source.ip"]

[[rule.new_terms.history_window_start]]
field = "history_window_start"
value = "now-5d"
'''})
    res, [alert] = hunt_cli(data, rules)
    assert res.exit_code == 1, res.output
    assert alert["kibana.alert.new_terms"] == ["10.0.0.1"] and alert["kibana.alert.rule.type"] == "new_terms"
