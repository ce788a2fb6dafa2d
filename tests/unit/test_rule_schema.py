"""Every [rule] field is checked against its schema when the rule loads: a wrong value is one load
error naming the file, the key and the reason, and the other rules of the folder still load and run.
Each case below is an input that once crashed `validate` or `hunt`, or was silently accepted."""

import os
from pathlib import Path

import pytest

from trailhound.engine.hunt import hunt
from trailhound.rules.check import check_rule
from trailhound.rules.errors import RuleError, UnsupportedError
from trailhound.rules.loader import load_rules, rule_from_toml

from helpers import ev, rule, write_case

THRESHOLD = '''
[rule]
name = "T"
rule_id = "t"
description = "d"
risk_score = 21
severity = "low"
type = "threshold"
language = "kuery"
query = "process.name:ssh"
{extra}
[rule.threshold]
field = ["host.name"]
value = 1
'''

NEW_TERMS = '''
[rule]
name = "N"
rule_id = "n"
description = "d"
risk_score = 21
severity = "low"
type = "new_terms"
language = "kuery"
query = "process.name:ssh"
{extra}
'''

NEW_TERMS_TABLE = '''
[rule.new_terms]
field = "new_terms_fields"
value = ["host.name"]
[[rule.new_terms.history_window_start]]
field = "history_window_start"
value = "{history}"
'''

# (rule text, key the error names, words of the reason)
BAD = [
    (rule(extra="threat = 5"), "threat", "must be a list"),
    (rule(extra="interval = 5"), "interval", "must be a string"),
    (THRESHOLD.format(extra="").replace("[rule.threshold]\nfield = [\"host.name\"]\nvalue = 1", 'threshold = "x"'),
     "threshold", "must be a table"),
    (NEW_TERMS.format(extra='new_terms = "x"'), "new_terms", "must be a table"),
    (THRESHOLD.format(extra="from = 5"), "from", "must be a string"),
    (rule(extra='event_category_override = ["a"]'), "event_category_override", "must be a string"),
    (rule(extra='interval = "0s"'), "interval", "longer than 0"),
    (rule(extra="timestamp_override = 5"), "timestamp_override", "must be a string"),
    (rule(extra="rule_name_override = 5"), "rule_name_override", "must be a string"),
    (rule(extra='timestamp_override = "\\u0000"'), "timestamp_override", "control characters"),
    (rule(extra='author = "me"'), "author", "list of strings"),
    (rule(extra="max_signals = true"), "max_signals", "whole number"),
    (rule(extra="max_signals = 0"), "max_signals", "whole number from 1"),
    (rule(extra="max_signals = 99999999999999999999999"), "max_signals", "whole number"),
    (rule(extra='from = "garbage"'), "from", "not date math"),
    (rule(extra='from = "now-99999999999999999999y"'), "from", "too far"),
    (rule(extra='from = "now+5m"'), "from", "reach back"),
    (rule(extra='interval = "5"'), "interval", "not an interval"),
    (rule(extra='interval = "²m"'), "interval", "not an interval"),
    (rule(extra='tiebreaker_field = ""'), "tiebreaker_field", "must name a field"),
    (rule(extra='building_block_type = "yes"'), "building_block_type", "not one of default"),
    (rule(extra='language = "sql"').replace('language = "eql"\n', ""), "language", "not one of"),
    (rule().replace('rule_id = "r-ssh"', "rule_id = 5"), "rule_id", "must be a string"),
    (rule().replace('name = "SSH"', 'name = ""'), "name", "must not be empty"),
    (rule().replace('rule_id = "r-ssh"', 'rule_id = "r\\u001b]0;pwned\\u0007"'), "rule_id", "control characters"),
    (rule().replace("risk_score = 21", "risk_score = true"), "risk_score", "0 to 100"),
    (rule(extra='severity_mapping = [{field = "user.name", value = "root", severity = "urgent"}]'),
     "severity_mapping[0].severity", "not one of"),
    (rule(extra='severity_mapping = [{field = "user.name", value = 1, severity = "high"}]'),
     "severity_mapping[0].value", "must be a string"),
    (rule(extra='risk_score_mapping = [{field = 5}]'), "risk_score_mapping[0].field", "must be a string"),
    (rule(extra='exceptions_list = [{list_id = "l", namespace_type = "global"}]'),
     "exceptions_list[0].namespace_type", "not one of"),
    (rule(extra='exceptions_list = [{list_id = "l", extra = 99999999999999999999999}]'),
     "exceptions_list[0].extra", "must be a string"),
    (rule(extra='threat = [{framework = "MITRE ATT&CK", tactic = "TA0001"}]'), "threat[0].tactic", "must be a table"),
    (rule(extra='threat = [{framework = "MITRE ATT&CK", techniques = []}]'), "threat[0]", "unknown key 'techniques'"),
    (THRESHOLD.format(extra="").replace("value = 1", "value = 0"), "threshold.value", "whole number from 1"),
    (THRESHOLD.format(extra="").replace("value = 1", "value = 1\nfields = [\"a\"]"), "threshold",
     "unknown key 'fields'"),
    (THRESHOLD.format(extra="").replace("value = 1", "value = 1\ncardinality = [{field = \"a\"}]"),
     "threshold.cardinality[0]", "needs value"),
    (NEW_TERMS.format(extra=NEW_TERMS_TABLE.format(history="now-5d").replace('["host.name"]', '"host.name"')),
     "new_terms.value", "must be a list"),
    (NEW_TERMS.format(extra=NEW_TERMS_TABLE.format(history="yesterday")),
     "new_terms.history_window_start[0].value", "not date math"),
    (rule(extra='[rule.alert_suppression]\ngroup_by = ["a", "b", "c", "d"]'), "alert_suppression.group_by",
     "1 to 3 fields"),
    (rule(extra='[rule.alert_suppression]\ngroup_by = ["a"]\nduration = {unit = "h", value = 99999999}'),
     "alert_suppression.duration", "at most 100 years"),
    (THRESHOLD.format(extra='[rule.alert_suppression]\ngroup_by = ["a"]'), "alert_suppression", "only duration"),
    (rule(extra="enabled = 1"), "enabled", "true or false"),
]


@pytest.mark.parametrize("text, key, words", BAD, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(BAD)])
def test_a_wrong_value_is_a_load_error_naming_file_and_key(text, key, words):
    with pytest.raises(RuleError) as info:
        rule_from_toml(text, "bad.toml")
    e = info.value
    assert (e.source, e.key) == ("bad.toml", key), str(e)
    assert words in e.message
    assert str(e).startswith(f"bad.toml: [rule] {key}: ")


@pytest.mark.parametrize("text, key, words", BAD[:15], ids=[k for _, k, _ in BAD[:15]])
def test_one_bad_file_among_good_ones_is_one_error_and_the_others_run(tmp_path, text, key, words):
    docs = [ev(1, 1000, process={"name": "ssh"}, host={"name": "h"})]
    data, rules_dir = write_case(tmp_path, docs, {"good.toml": rule(name="Good", rule_id="good"),
                                                  "other.toml": rule(name="Other", rule_id="other"),
                                                  "zbad.toml": text})
    loaded = load_rules([rules_dir])
    assert [str(e) for e in loaded.errors] == [f"{rules_dir / 'zbad.toml'}: [rule] {key}: {loaded.errors[0].message}"]
    assert sorted(r.rule_id for r in loaded.rules) == ["good", "other"]
    result = hunt([check_rule(r) for r in loaded.rules], [data])
    runs = [(r.check.rule.rule_id, len(r.hits), r.error) for r in result.runs]
    assert runs == [("good", 1, None), ("other", 1, None)]


def test_valid_values_still_load():
    r = rule_from_toml(rule(extra='''author = ["me"]
max_signals = 5
from = "now-1d/d"
interval = "1h"
timestamp_override = "event.ingested"
tiebreaker_field = "event.sequence"
rule_name_override = "rule.name"
building_block_type = "default"
exceptions_list = [{id = "l", list_id = "l", namespace_type = "agnostic", type = "endpoint"}]
[rule.alert_suppression]
group_by = ["host.name"]
duration = {unit = "m", value = 5}
'''))
    assert r.author == ("me",) and r.max_signals == 5 and r.lookback == "now-1d/d"
    assert check_rule(r).status == "ok"  # `from` is only read by threshold rules


def test_date_math_we_do_not_compute_is_unsupported_not_an_error():
    th = check_rule(rule_from_toml(THRESHOLD.format(extra='from = "now-1d/d"')))
    assert th.status == "unsupported" and "now-1d/d" in th.reason
    nt = check_rule(rule_from_toml(NEW_TERMS.format(extra=NEW_TERMS_TABLE.format(history="now-5d/d"))))
    assert nt.status == "unsupported" and "now-5d/d" in nt.reason
    ok = check_rule(rule_from_toml(NEW_TERMS.format(extra=NEW_TERMS_TABLE.format(history="now-5d"))))
    assert ok.status == "ok"


def test_unsupported_error_is_reported_as_unsupported(monkeypatch):
    class LanguageWeLack(UnsupportedError):
        pass

    def parse(rule):
        raise LanguageWeLack("this query needs a feature Trailhound lacks")

    new_terms_lucene = check_rule(rule_from_toml(NEW_TERMS.format(extra=NEW_TERMS_TABLE.format(history="now-5d"))
                                                 .replace('"kuery"', '"lucene"')))
    assert new_terms_lucene.status == "unsupported" and "lucene" in new_terms_lucene.reason
    monkeypatch.setattr("trailhound.rules.check.parse_rule_query", parse)
    c = check_rule(rule_from_toml(rule(name="U", rule_id="u")))
    assert (c.status, c.reason) == ("unsupported", "this query needs a feature Trailhound lacks")


def test_check_rule_never_raises(monkeypatch):
    def parse(rule):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("trailhound.rules.check.parse_rule_query", parse)
    c = check_rule(rule_from_toml(rule(name="R", rule_id="r-rec")))
    assert c.status == "error" and "RecursionError" in c.reason


def test_metadata_must_be_a_table():
    with pytest.raises(RuleError, match=r"\[metadata\] must be a table"):
        rule_from_toml('metadata = 5\n' + rule(), "m.toml")


def test_files_that_are_not_rules_are_load_errors(tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "good.toml").write_text(rule(rule_id="good"))
    (rules_dir / "zero.toml").symlink_to("/dev/zero")  # never ends: refused before reading
    (rules_dir / "deep.toml").write_text("[rule]\nauthor = " + "[" * 5000 + "]" * 5000 + "\n")
    (rules_dir / "latin1.toml").write_bytes(rule(rule_id="l1").replace("SSH", "SS\xc9").encode("latin-1"))
    loaded = load_rules([rules_dir])
    assert [r.rule_id for r in loaded.rules] == ["good"]
    reasons = {Path(e.source).name: e.message for e in loaded.errors}
    assert reasons == {"zero.toml": "not a regular file", "deep.toml": "invalid TOML: values nested too deeply",
                       "latin1.toml": reasons.get("latin1.toml")} and "not UTF-8" in reasons["latin1.toml"]


REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared")) / "corpora" / "detection-rules"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/corpora/detection-rules")
def test_elastic_rules_all_pass_the_schema():
    loaded = load_rules([CORPUS])
    assert loaded.errors == [] and len(loaded.rules) >= 700
