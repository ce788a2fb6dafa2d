"""A rule that fails at run time (search, correlation) is reported with its reason on its RuleRun
and the hunt goes on: every other rule keeps exactly the hits it has without the bad one."""

import pytest

from trailhound.engine import hunt as hunt_module
from trailhound.engine.hunt import hunt
from trailhound.rules.check import check_rule
from trailhound.rules.errors import UnsupportedError
from trailhound.rules.loader import load_rules

from helpers import ev, hunt_cli, rule, write_case

DOCS = [
    ev(1, 1000, process={"name": "ssh"}, host={"name": "h1"}, source={"ip": "10.0.0.1"}, user={"name": "root"}),
    ev(2, 2000, "authentication", host={"name": "h1"}, source={"ip": "10.0.0.1"}, user={"name": "root"}),
    ev(3, 3000, process={"name": "sshd"}, host={"name": "h2"}, source={"ip": "10.0.0.2"}),
    ev(4, 4000, "authentication", host={"name": "h2"}, source={"ip": "10.0.0.3"}),
]

GOOD = {
    "ev1.toml": rule("Event 1", "ev1"),
    "ev2.toml": rule("Event 2", "ev2").replace('process.name == \\"ssh\\"', 'process.name : \\"ssh*\\"'),
    "ev3.toml": rule("Event 3", "ev3").replace('process.name == \\"ssh\\"', 'cidrMatch(source.ip, \\"10.0.0.0/8\\")'),
    "seq.toml": rule("Sequence", "seq").replace(
        'process where process.name == \\"ssh\\"',
        'sequence by host.name [process where true] [authentication where true]'),
    "kql.toml": rule("KQL", "kql").replace('language = "eql"', 'language = "kuery"').replace(
        'query = "process where process.name == \\"ssh\\""', 'query = "source.ip:10.0.0.1"').replace(
        'type = "eql"', 'type = "query"'),
    "nt.toml": rule("New terms", "nt").replace('type = "eql"', 'type = "new_terms"').replace(
        'language = "eql"', 'language = "kuery"').replace(
        'query = "process where process.name == \\"ssh\\""', 'query = "event.category:authentication"') + '''
[rule.new_terms]
field = "new_terms_fields"
value = ["source.ip"]
[[rule.new_terms.history_window_start]]
field = "history_window_start"
value = "now-5d"
''',
    "th.toml": rule("Threshold", "th").replace('type = "eql"', 'type = "threshold"').replace(
        'language = "eql"', 'language = "kuery"').replace(
        'query = "process where process.name == \\"ssh\\""', 'query = "event.category:authentication"') + '''
[rule.threshold]
field = ["host.name"]
value = 1
''',
}
WANT = {"ev1": [(0,)], "ev2": [(0,), (2,)], "ev3": [(0,), (2,)], "seq": [(0, 1), (2, 3)],
        "kql": [(0,), (1,)], "nt": [(1,), (3,)], "th": [(1,), (3,)]}


def _hits(result):
    return {r.check.rule.rule_id: sorted(h.rows for h in r.hits) for r in result.runs}


def _run(tmp_path, extra: dict[str, str]):
    data, rules_dir = write_case(tmp_path, DOCS, {**GOOD, **extra})
    loaded = load_rules([rules_dir])
    assert loaded.errors == []
    checks = [check_rule(r) for r in loaded.rules]
    return checks, hunt(checks, [data])


def test_the_fixture_rules_all_hit(tmp_path):
    checks, result = _run(tmp_path, {})
    assert all(c.status == "ok" for c in checks)
    assert _hits(result) == WANT and all(r.status == "ok" for r in result.runs)


@pytest.mark.parametrize("query", ['process.name regex \\"(\\"', 'cidrMatch(source.ip, \\"10.0.0.0/99\\")'])
def test_queries_that_passed_validate_and_crashed_hunt(tmp_path, query):
    bad = rule("Bad", "bad").replace('process.name == \\"ssh\\"', query)
    checks, result = _run(tmp_path, {"bad.toml": bad})
    bad_check = next(c for c in checks if c.rule.rule_id == "bad")
    runs = {r.check.rule.rule_id: r for r in result.runs}
    if bad_check.status == "ok":  # found at run time: the rule says why
        assert runs["bad"].status == "error" and runs["bad"].error and runs["bad"].hits == []
        assert "Traceback" not in runs["bad"].error
    else:  # or already by check_rule (lang/compile refusing it)
        assert bad_check.status == "error" and bad_check.reason
    assert {k: v for k, v in _hits(result).items() if k != "bad"} == WANT


def _failing(real, culprit: str, error: Exception):
    """A batch function that raises when a query naming `culprit` is among its queries, as a
    hostile regex does inside Polars."""
    calls = []

    def batch(queries, frame, options, shared=None):
        calls.append(len(queries))
        if any(culprit in repr(q) for q in queries):
            raise error
        return real(queries, frame, options, shared=shared)

    return batch, calls


@pytest.mark.parametrize("kind, name", [("events", "search_events_batch"), ("sequences", "search_sequences_batch")])
def test_a_failing_batch_is_split_down_to_the_culprit(tmp_path, monkeypatch, kind, name):
    culprit = "culprit_field"
    query = f'process where {culprit} == \\"x\\"' if kind == "events" else \
        f'sequence by host.name [process where {culprit} == \\"x\\"] [authentication where true]'
    extra = {f"bad{i}.toml": rule(f"Bad {i}", f"bad{i}").replace('process where process.name == \\"ssh\\"', query)
             for i in range(2)}
    extra.update({f"more{i}.toml": rule(f"More {i}", f"more{i}") for i in range(6)})
    batch, calls = _failing(getattr(hunt_module, name), culprit, RuntimeError("regex error: unclosed group"))
    monkeypatch.setattr(hunt_module, name, batch)
    checks, result = _run(tmp_path, extra)
    runs = {r.check.rule.rule_id: r for r in result.runs}
    assert [runs[f"bad{i}"].error for i in range(2)] == ["RuntimeError: regex error: unclosed group"] * 2
    hits = _hits(result)
    assert {k: v for k, v in hits.items() if not k.startswith(("bad", "more"))} == WANT
    assert all(hits[f"more{i}"] == WANT["ev1"] for i in range(6))
    assert calls[0] > 2 and len(calls) < 4 * calls[0]  # one batch, then halves, not one run per rule


def test_new_terms_and_threshold_failures_stay_with_their_rule(tmp_path, monkeypatch):
    real_nt = hunt_module.search_new_terms_batch

    def new_terms(rules, frame, options, shared=None):
        if any("source.ip" in r.fields for r in rules):
            raise ValueError("boom in new_terms")
        return real_nt(rules, frame, options, shared=shared)

    def threshold(rules, frame, options, shared=None):
        raise UnsupportedError("threshold over this data needs a feature we lack")

    monkeypatch.setattr(hunt_module, "search_new_terms_batch", new_terms)
    monkeypatch.setattr(hunt_module, "search_threshold_batch", threshold)
    _, result = _run(tmp_path, {})
    runs = {r.check.rule.rule_id: r for r in result.runs}
    assert (runs["nt"].status, runs["nt"].error) == ("error", "ValueError: boom in new_terms")
    assert (runs["th"].status, runs["th"].unsupported, runs["th"].error) == (
        "unsupported", "threshold over this data needs a feature we lack", None)
    assert {k: v for k, v in _hits(result).items() if k not in ("nt", "th")} == {
        k: v for k, v in WANT.items() if k not in ("nt", "th")}


def test_the_cli_writes_the_other_rules_alerts(tmp_path):
    bad = rule("Bad", "bad").replace('process.name == \\"ssh\\"', 'process.name regex \\"(\\"')
    data, rules_dir = write_case(tmp_path, DOCS, {"ev1.toml": GOOD["ev1.toml"], "bad.toml": bad})
    res, alerts = hunt_cli(data, rules_dir)
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    assert [a["kibana.alert.rule.rule_id"] for a in alerts] == ["ev1"]


def test_every_batch_kind_shares_one_pass_over_each_field(tmp_path, monkeypatch):
    """The event, sequence and new_terms batches' filters are registered before any is evaluated: each field's
    atoms are evaluated once, all batches' together, and every rule's hits are as before."""
    from trailhound.engine.filter.shared import SharedFilters

    passes: list[str] = []
    evaluate = SharedFilters._evaluate_field

    def counted(self, path, atoms):
        passes.append(path)
        return evaluate(self, path, atoms)

    monkeypatch.setattr(SharedFilters, "_evaluate_field", counted)
    _, result = _run(tmp_path, {"seq2.toml": rule("Sequence 2", "seq2").replace(
        'process where process.name == \\"ssh\\"',
        'sequence by host.name [process where process.name : \\"ssh*\\"] [authentication where true]')})
    assert _hits(result) == {**WANT, "seq2": [(0, 1), (2, 3)]}
    assert "process.name" in passes and len(passes) == len(set(passes)), passes


def test_a_failure_while_registering_filters_leaves_the_batches_to_run_afresh(tmp_path, monkeypatch):
    from trailhound.engine.filter.shared import SharedFilters

    add = SharedFilters.add
    calls = []

    def failing_once(self, f):
        calls.append(f)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return add(self, f)

    monkeypatch.setattr(SharedFilters, "add", failing_once)
    _, result = _run(tmp_path, {})
    assert len(calls) > 1 and _hits(result) == WANT and all(r.status == "ok" for r in result.runs)
