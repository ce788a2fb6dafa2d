"""threshold rules on Kibana's schedule: per-group counts, cardinality and signal history."""



from trailhound.engine.search import search_threshold
from trailhound.engine.threshold import ThresholdSpec
from trailhound.lang.kql import parse_kql_query
from trailhound.sources import events_from_documents

from helpers import ev, hunt_cli, write_case

MIN = 60_000


def fail(i, minute, ip, user="root"):
    return ev(i, minute * MIN, "authentication", source={"ip": ip}, user={"name": user},
              event={"category": ["authentication"], "outcome": "failure"})


def run(docs, spec):
    table = events_from_documents(docs)
    result = search_threshold(parse_kql_query("event.outcome:failure"), table.frame, spec)
    return [([docs[r]["id"] for r in h.rows], list(h.join_keys)) for h in result.hits]


SPEC = ThresholdSpec(("source.ip",), 3, (), 5 * MIN * 1_000_000, 6 * MIN * 1_000_000)


def test_groups_reaching_the_count_within_the_lookback_alert_once():
    docs = [fail(1, 0, "a"), fail(2, 1, "a"), fail(3, 2, "a"), fail(4, 2, "b"), fail(5, 3, "b"),
            fail(6, 4, "a"), fail(7, 30, "b"), fail(8, 40, "b")]
    # a: 4 failures by the 5-minute execution; its later executions see them as already signalled
    # b: 2 close together, then 2 far apart: never 3 within a lookback
    assert run(docs, SPEC) == [([1, 2, 3, 6], ["a"])]


def test_signal_history_counts_only_new_events():
    docs = [fail(i, i * 0.1, "a") for i in range(1, 4)] + [fail(i, 5.5 + i * 0.1, "a") for i in range(4, 7)]
    assert run(docs, SPEC) == [([1, 2, 3], ["a"]), ([4, 5, 6], ["a"])]


def test_cardinality_condition():
    docs = [fail(1, 0, "a", "root"), fail(2, 1, "a", "root"), fail(3, 2, "a", "root"),
            fail(4, 10, "b", "u1"), fail(5, 11, "b", "u2"), fail(6, 12, "b", "u3")]
    spec = ThresholdSpec(("source.ip",), 3, (("user.name", 3),), SPEC.interval_ns, SPEC.lookback_ns)
    assert run(docs, spec) == [([4, 5, 6], ["b"])]


BRUTE_FORCE_RULE = '''
[rule]
name = "SSH brute force"
description = "d"
risk_score = 47
rule_id = "th-1"
severity = "medium"
type = "threshold"
language = "{language}"
query = "{query}"

[rule.threshold]
field = ["source.ip"]
value = 5
'''


def five_failures(tmp_path, language, query):
    events = [fail(i, i * 0.2, "203.0.113.7") for i in range(1, 6)]
    return write_case(tmp_path, events, {"th.toml": BRUTE_FORCE_RULE.format(language=language, query=query)})


def test_hunt_threshold_alert(tmp_path):
    data, rules = five_failures(tmp_path, "kuery", "event.category:authentication and event.outcome:failure")
    res, [alert] = hunt_cli(data, rules)
    assert res.exit_code == 1, res.output
    result = alert["kibana.alert.threshold_result"]
    assert result["count"] == 5 and result["terms"] == [{"field": "source.ip", "value": "203.0.113.7"}]
    assert alert["source"] == {"ip": "203.0.113.7"} and len(alert["kibana.alert.ancestors"]) == 5


def test_hunt_threshold_rule_with_a_sequence_query_says_why(tmp_path):
    # was: AttributeError: 'SequenceQuery' object has no attribute 'filter'
    data, rules = five_failures(tmp_path, "eql", "sequence [authentication where true] [authentication where true]")
    res, alerts = hunt_cli(data, rules)
    assert alerts == [] and "AttributeError" not in res.output, res.output
    assert "rule failed SSH brute force: a threshold rule counts single events, not a sequence" in res.output
