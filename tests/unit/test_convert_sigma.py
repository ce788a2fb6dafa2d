"""EQL / KQL / TOML → Sigma: logsource inference, field names, detections, correlations, refusals,
metadata; every output read back by pySigma's parser and validators."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from trailhound.emit import ConversionRefused
from trailhound.emit.sigma import Meta, check_sigma, query_to_sigma, rule_to_sigma, sigma_id
from trailhound.lang.kql import parse_kql_query
from trailhound.lang.parser import parse
from trailhound.pack import DIR as PACK
from trailhound.rules.loader import load_rules, rule_from_toml

META = Meta("r-1", "Test rule", "What it finds.", ("Ann",), ("https://example.org",), ("attack.t1021.004",),
            ("admins",), "high", lookback="now-9m")


def sigma(text: str, **kw):
    export = query_to_sigma(parse(text), META, **kw)
    problems = check_sigma(export.yaml())
    assert problems == [], problems
    return export


def test_process_query_becomes_process_creation_with_taxonomy_names_and_cased_values():
    export = sigma('process where event.type == "start" and process.executable == "/usr/bin/ssh" and '
                   'process.command_line : "* -D *" and process.args like "-o*" and not user.name in ("root", "x")')
    (doc,) = export.documents
    assert doc["logsource"] == {"product": "linux", "category": "process_creation"}
    det = doc["detection"]
    # the logsource's own conditions (event.category, event.type) are left to it
    assert det["selection_1"] == {"Image|cased": "/usr/bin/ssh", "CommandLine|contains": " -D ",
                                  "process.args|cased|startswith": "-o"}
    assert det["filter_1"] == {"User|cased": ["root", "x"]}
    assert det["condition"] == "selection_1 and not filter_1"
    assert doc["id"] == sigma_id("r-1") and doc["level"] == "high" and doc["author"] == "Ann"
    assert doc["tags"] == ["attack.t1021.004"] and doc["falsepositives"] == ["admins"]


def test_logsource_is_only_chosen_when_the_query_implies_its_condition():
    # event.type "start" is not said: process_creation would narrow the rule, so only product: linux
    doc = sigma('process where process.name == "ssh"').documents[0]
    assert doc["logsource"] == {"product": "linux"}
    assert doc["detection"]["selection_1"] == {"event.category|cased": "process", "process.name|cased": "ssh"}
    # a narrower membership implies the logsource's wider one, and is kept
    doc = sigma('file where event.type == "creation" and file.path : "*/.ssh/*"').documents[0]
    assert doc["logsource"] == {"product": "linux", "category": "file_event"}
    assert doc["detection"]["selection_1"] == {"event.type|cased": "creation", "TargetFilename|contains": "/.ssh/"}


def test_values_are_escaped_and_regexes_anchored():
    det = sigma('process where process.name == "a*b?c\\\\d" and process.args regex "-[dp]*t" and '
                'process.args regex~ "x.*"').documents[0]["detection"]
    sel = det["selection_1"]
    assert sel["process.name|cased"] == "a\\*b\\?c\\\\d"
    assert sel["process.args|re|s"] == "^(?:\\-[dp]*t)$"
    assert sel["process.args|re|s|i"] == "^(?:x.*)$"


def test_or_of_one_field_is_one_list_and_mixed_shapes_are_alternatives():
    det = sigma('process where process.name == "a" or process.name == "b" or process.args : ("x*", "*y")'
                ).documents[0]["detection"]
    assert det["selection_2"] == [{"process.name|cased": ["a", "b"]}, {"process.args|startswith": "x"},
                                  {"process.args|endswith": "y"}]
    assert det["condition"] == "selection_1 and selection_2"
    det = sigma('process where process.name == "a" or process.name == "b"').documents[0]["detection"]
    assert det["selection_1"] == {"event.category|cased": "process", "process.name|cased": ["a", "b"]}


def test_numbers_nulls_cidr_and_comparisons():
    det = sigma('network where destination.port >= 1024 and 22 == source.port and ?x == null and '
                'cidrMatch(destination.ip, "10.0.0.0/8", "192.168.0.0/16")').documents[0]["detection"]
    assert det["selection_1"] == {"event.category|cased": "network", "destination.port|gte": 1024, "source.port": 22, "x": None,
                                  "destination.ip|cidr": ["10.0.0.0/8", "192.168.0.0/16"]}


@pytest.mark.parametrize("text,reason", [
    ("process where length(process.name) > 3", "the function length() in `length(process.name) > 3`"),
    ("process where a + 1 == 2", "arithmetic in `a + 1 == 2` has no Sigma equivalent"),
    ("any where true", "matches every event"),
    ("sequence [process where true] [file where true] until [network where true]", "`until`"),
    ("sequence with maxspan=1m [process where true] ![file where true]", "missing-event"),
    ("process where true | head 1", "`| head`"),
    ("sequence with maxspan=1500ms [process where a == 1] [file where b == 2]", "1500ms"),
])
def test_refusals_name_the_construct(text, reason):
    with pytest.raises(ConversionRefused) as e:
        query_to_sigma(parse(text), META)
    assert reason in e.value.reason


def test_sequence_becomes_base_rules_and_temporal_ordered_with_aliases():
    export = sigma('sequence by host.name with maxspan=5m '
                   '[process where event.type == "start" and process.name == "sshd"] by process.pid '
                   '[file where event.type == "creation" and file.name == "x"] by process.pid '
                   '[network where destination.port == 22] by source.port')
    b1, b2, b3, corr = export.documents
    assert [b["name"] for b in (b1, b2, b3)] == ["test_rule_step1", "test_rule_step2", "test_rule_step3"]
    assert "correlation" not in b1 and "description" not in b1  # base rules: detections only
    c = corr["correlation"]
    assert c["type"] == "temporal_ordered" and c["rules"] == ["test_rule_step1", "test_rule_step2", "test_rule_step3"]
    assert c["timespan"] == "5m"
    # process.pid is ProcessId in both the process and the file tables; source.port is SourcePort in network
    assert c["group-by"] == ["host.name", "process.pid"]
    assert c["aliases"] == {"process.pid": {"test_rule_step1": "ProcessId", "test_rule_step2": "ProcessId",
                                            "test_rule_step3": "source.port"}}
    assert corr["id"] == sigma_id("r-1") and len({d["id"] for d in export.documents}) == 4
    assert export.warnings == []


def test_runs_chain_an_event_count_and_missing_maxspan_takes_the_lookback():
    export = sigma("sequence by user.name [authentication where event.outcome == \"failure\"] with runs=3 "
                   "[authentication where event.outcome == \"success\"]")
    names = [d.get("name") for d in export.documents]
    assert names == ["test_rule_step1", "test_rule_step1_runs", "test_rule_step2", None]
    count = export.documents[1]["correlation"]
    assert count == {"type": "event_count", "rules": ["test_rule_step1"], "group-by": ["User"], "timespan": "9m",
                     "condition": {"gte": 3}}
    assert export.documents[3]["correlation"]["rules"] == ["test_rule_step1_runs", "test_rule_step2"]
    assert export.warnings and "lookback (9m" in export.warnings[0]


def test_a_step_matching_any_event_keeps_its_join_key():
    export = sigma("sequence by host.name with maxspan=1m [process where process.name == \"ssh\"] [any where true]")
    det = export.documents[1]["detection"]
    assert det["filter_1"] == {"host.name": None} and det["condition"] == "not filter_1"


THRESHOLD = """
[rule]
rule_id = "t-1"
name = "Many sudo failures"
type = "threshold"
language = "kuery"
query = "event.category:authentication and process.name:sudo and event.outcome:failure"
severity = "low"
risk_score = 21
description = "x"
from = "now-10m"
[rule.threshold]
field = ["host.name", "user.name"]
value = 5
"""


def test_threshold_rules_become_event_count_and_value_count():
    rule = rule_from_toml(THRESHOLD)
    export = rule_to_sigma(rule)
    assert check_sigma(export.yaml()) == []
    base, corr = export.documents
    assert base["logsource"] == {"product": "linux", "service": "auth"}
    assert corr["correlation"] == {"type": "event_count", "rules": ["many_sudo_failures_events"],
                                   "group-by": ["host.name", "User"], "timespan": "10m", "condition": {"gte": 5}}
    card = rule_from_toml(THRESHOLD.replace("value = 5", 'value = 1\ncardinality = [{field = "source.ip", value = 3}]'))
    export = rule_to_sigma(card)
    assert check_sigma(export.yaml()) == []
    assert export.documents[1]["correlation"]["type"] == "value_count"
    assert export.documents[1]["correlation"]["condition"] == {"field": "pam_rhost", "gte": 3}
    both = rule_from_toml(THRESHOLD.replace("value = 5", 'value = 9\ncardinality = [{field = "source.ip", value = 3}]'))
    with pytest.raises(ConversionRefused, match="one condition"):
        rule_to_sigma(both)


def test_kql_queries_convert():
    export = query_to_sigma(parse_kql_query('event.category:process and event.type:start and process.name:(ssh or scp)'),
                            META)
    assert check_sigma(export.yaml()) == []
    assert export.documents[0]["logsource"] == {"product": "linux", "category": "process_creation"}


def test_every_pack_rule_converts_or_is_refused_with_a_reason_and_passes_pysigma():
    rules = load_rules([PACK]).rules
    converted = refused = 0
    for r in rules:
        try:
            export = rule_to_sigma(r)
        except ConversionRefused as e:
            if r.type == "new_terms":
                assert "new_terms" in e.reason
            else:  # the tuned pack's stringContains/startsWith with concat() of fields
                assert "concat(" in e.reason and "constant values only" in e.reason, (r.source, e.reason)
            refused += 1
            continue
        problems = check_sigma(export.yaml())
        assert problems == [], (r.source, problems)
        top = yaml.safe_load_all(export.yaml())
        *_, last = list(top)
        assert last["title"] == r.name and last["id"] == sigma_id(r.rule_id)
        assert last["description"].strip() == r.description.strip()
        converted += 1
    assert converted == 18 and refused == 5


def test_check_sigma_reports_what_pysigma_refuses():
    bad = textwrap.dedent("""\
        title: x
        logsource: {product: linux}
        detection:
          sel: {a: 1}
          condition: sel and missing
        """)
    assert check_sigma(bad)


def test_cidr_networks_with_host_bits_become_networks():
    # Elasticsearch reads 10.6.48.157/8 as 10.0.0.0/8; pySigma refuses host bits
    det = sigma('network where cidrMatch(destination.ip, "10.6.48.157/8")').documents[0]["detection"]
    assert det["selection_1"]["destination.ip|cidr"] == "10.0.0.0/8"


@pytest.mark.parametrize("query", ['network where cidrMatch(destination.ip, "10.6.48.157/8") == true',
                                   'network where true == cidrMatch(destination.ip, "10.6.48.157/8")'])
def test_a_predicate_compared_with_true_is_the_predicate(query):
    """Regression: `cidrMatch(..) == true` (4 queries of ES's QA suite) was refused; it holds exactly when the bare
    predicate does."""
    det = sigma(query).documents[0]["detection"]
    assert det["selection_1"]["destination.ip|cidr"] == "10.0.0.0/8"
    with pytest.raises(ConversionRefused, match="has no Sigma equivalent"):
        query_to_sigma(parse('network where cidrMatch(destination.ip, "10.0.0.0/8") == false'), META)
