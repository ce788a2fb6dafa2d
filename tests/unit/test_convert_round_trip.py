"""Round trips measured on data: pack rule → Sigma → EQL (through pySigma's parser and our Sigma → IR
path) finds exactly the events the original rule finds, over the lab's recorded capture and over
each rule's own unit-test cases. The pack's rules and the published SSH detection's two sequences
(pack_published, as valid EQL) alike."""

from __future__ import annotations

import dataclasses
import glob
import re
from pathlib import Path

import pytest

from trailhound.emit import ConversionRefused
from trailhound.emit.eql import print_query
from trailhound.emit.sigma import check_sigma, rule_to_sigma
from trailhound.emit.sigma_in import SigmaQuery, sigma_queries
from trailhound.engine.search import SearchOptions, needed_fields, search
from trailhound.pack import DIR as PACK
from trailhound.pack_published import DIR as PUBLISHED
from trailhound.rules import testing
from trailhound.rules.check import check_rule, parse_rule_query
from trailhound.rules.loader import load_rules
from trailhound.sources import load_events

REPO = Path(__file__).resolve().parents[2]
LAB = sorted(glob.glob(str(REPO / "tests" / "fixtures" / "lab" / "*" / "*.log")))
#: the pack's rules, and the published detection's two sequences
SOURCES = [PACK, PUBLISHED]


#: why a pack rule may be refused: new_terms, or a value computed from fields (the tuned pack's concat())
REFUSED = re.compile(r"^new_terms rules have no Sigma equivalent|compares with a value computed from the event's "
                     r"fields; Sigma compares fields with constant values only")


def converted_pack():
    """(rule, its query back from Sigma) for every pack (and published) rule that converts; the refused, with
    reasons."""
    pairs, refused = [], {}
    for rule in load_rules(SOURCES).rules:
        try:
            export = rule_to_sigma(rule)
        except ConversionRefused as e:
            refused[rule.name] = e.reason
            continue
        assert check_sigma(export.yaml()) == [], rule.name  # pySigma's parser and validators
        (back,) = sigma_queries(export.yaml())
        assert isinstance(back, SigmaQuery), (rule.name, back)
        pairs.append((rule, back.query))
    return pairs, refused


def test_pack_rules_through_sigma_find_the_same_events_in_the_lab_capture():
    assert LAB, "the lab capture fixtures are missing"
    pairs, refused = converted_pack()
    assert refused and all(REFUSED.search(reason) for reason in refused.values()), refused
    assert len([r for r, _ in pairs if r.source and r.source.startswith(str(PUBLISHED))]) == 2  # both convert
    options = SearchOptions(size=None)
    fields = sorted({f for r, q in pairs for x in (parse_rule_query(r), q) for f in needed_fields(x, options)})
    frame = load_events(LAB, fields).frame
    firing = 0
    for rule, back in pairs:
        original = [h.rows for h in search(parse_rule_query(rule), frame, options).hits]
        again = [h.rows for h in search(back, frame, options).hits]
        assert again == original, (rule.name, print_query(back))
        firing += bool(original)
    print(f"EQL -> Sigma -> EQL: {len(pairs)} converted ({firing} firing), {len(refused)} refused")
    assert firing >= 10  # 12 of 20 at the time of writing on the capture: the comparison is not between empty results


def test_pack_rules_through_sigma_pass_their_own_unit_tests():
    pairs, _ = converted_pack()
    files, errors = testing.load_test_files(SOURCES)
    assert not errors
    ran = 0
    for rule, back in pairs:
        converted = dataclasses.replace(rule, type="eql", language="eql", query=print_query(back))
        check = check_rule(converted)
        assert check.status == "ok", (rule.name, check.reason)
        for tf in files:
            if not testing.tests_rule(tf, rule):
                continue
            for case in tf.cases:
                result = testing.run_case(check, case)
                assert result.hits == case.hits, (rule.name, case.name, result.problems)
                ran += 1
    print(f"unit-test cases through Sigma: {ran}")
    assert ran >= 40


def test_sigma_loader_round_trip(tmp_path):
    """rule → Sigma file → our rule loader (native Sigma, issue #10) → hunt: the same source events over the lab
    capture as the original rule, in one hunt (so rows are comparable). A single step `with runs=N` became an
    event_count, whose alerts are EQL's runs: the same alerts with the same events (SSH Brute Force: 4 alerts,
    the 8 failures; when an event_count used its events up, it gave 1 alert of the first 5). A step with runs
    in a longer sequence became a correlation of correlations: the same alerts too (its latest run, then the
    next step, as EQL's sequence)."""
    from trailhound.engine.hunt import hunt
    from trailhound.lang import ir

    pairs, _ = converted_pack()
    for rule, _back in pairs:
        (tmp_path / (Path(rule.source or rule.rule_id).stem + ".yml")).write_text(rule_to_sigma(rule).yaml())
    loaded = load_rules([tmp_path])
    assert not loaded.errors, loaded.errors
    originals = [r for r, _ in pairs]
    checks = [check_rule(r) for r in [*originals, *loaded.rules]]
    assert all(c.status == "ok" for c in checks), [(c.rule.name, c.reason) for c in checks if c.status != "ok"]
    runs = hunt(checks, LAB).runs
    by_rule = {id(run.check.rule): run for run in runs}
    sigma_runs = {run.check.rule.name: run for run in runs
                  if run.check.rule.source and run.check.rule.source.startswith(str(tmp_path))}

    def events(run) -> set[int]:
        return {row for h in run.hits for row in h.rows if row is not None}

    same = firing = chained = published = runs = 0
    for rule in originals:
        original, again = by_rule[id(rule)], sigma_runs[rule.name]
        assert original.status == "ok", (rule.name, original.error)
        query = parse_rule_query(rule)
        repeated = isinstance(query, ir.SequenceQuery) and any(s.runs > 1 for s in query.stages)
        assert again.status == "ok", (rule.name, again.error or again.unsupported)
        if isinstance(query, ir.SequenceQuery):  # correlations: the same alerts, each with the same events
            def alerts(run) -> list[tuple]:  # group-by values are compared as text (README, "Sigma")
                return [(h.rows, tuple(map(str, h.join_keys or ()))) for h in run.hits]

            assert alerts(again) == alerts(original), rule.name
            chained += repeated and len(query.stages) > 1
            runs += repeated and len(query.stages) == 1
        assert events(again) == events(original), rule.name
        same += 1
        firing += bool(original.hits)
        published += bool(original.hits) and rule.source is not None and rule.source.startswith(str(PUBLISHED))
    print(f"native Sigma round trip: {same} the same ({firing} firing), {chained} chained the same, "
          f"{published} published firing, {runs} runs as event_count")
    assert published == 2  # the published sequences fire on the capture (4 and 7 sequences) and match
    assert chained == 1  # SSH Successful Login After Repeated Failures
    assert runs == 1  # SSH Brute Force From a Single Source: 4 alerts, as EQL's sequences
    assert same == len(originals) and firing >= 11, (same, firing)  # all 20, 12 firing


#: why an event query of the QA suite has no Sigma form, by kind (README "Converting rules" lists the counts)
QA_REFUSALS = (("functions", re.compile(r"^the function (\w+)\(\) in ")),
               ("arithmetic", re.compile(r"^arithmetic in ")),
               ("pipes", re.compile(r"^the pipe ")),
               ("ordering of text or dates", re.compile(r"^the test `.*(<|>)")),
               ("never matches", re.compile(r"^the condition is always false")))


def test_es_qa_suite_event_queries_through_sigma_find_the_same_events():
    """The event queries of Elasticsearch's EQL QA suite that Sigma can express, EQL → Sigma → EQL over the
    suite's own data: the same events. The others are refused with a reason, counted by kind (distinct queries:
    some appear in several of the suite's files)."""
    es_eql = pytest.importorskip("es_eql")
    if not es_eql.available():
        pytest.skip("needs ../shared/conformance/es-eql (set TRAILHOUND_SHARED)")
    from collections import Counter

    from trailhound.emit.sigma import Meta, query_to_sigma
    from trailhound.lang import ir
    from trailhound.lang.errors import QueryError
    from trailhound.lang.parser import parse

    cls = es_eql.CLASSES[0]
    table, types, aliases = es_eql.dataset(cls.name)
    options = SearchOptions(tiebreaker_field=cls.tiebreaker, es_types=types, aliases=aliases, size=None)
    same: set[str] = set()
    refused: dict[str, str] = {}
    for file in cls.specs:
        for spec in es_eql.load_specs(file):
            try:
                q = parse(spec.query)
            except QueryError:
                continue
            if not isinstance(q, ir.EventQuery):
                continue
            try:
                text = query_to_sigma(q, Meta("qa", "qa")).yaml()
                (back,) = sigma_queries(text)
                if isinstance(back, ConversionRefused):
                    raise back
            except ConversionRefused as e:
                refused[spec.query] = e.reason
                continue
            if spec.query not in same:
                assert check_sigma(text) == [], spec.query  # pySigma's parser and validators
            original = [h.rows for h in search(q, table.frame, options).hits]
            again = [h.rows for h in search(back.query, table.frame, options).hits]
            assert again == original, (spec.query, print_query(back.query))
            same.add(spec.query)
    kinds: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for query, reason in refused.items():
        kind = next((k for k, rx in QA_REFUSALS if rx.search(reason)), None)
        assert kind is not None, (query, reason)  # a new kind of refusal: list it (and in the README)
        kinds[kind] += 1
        function = QA_REFUSALS[0][1].search(reason)
        if function is not None:
            functions[function.group(1)] += 1
    print(f"ES QA event queries through Sigma: {len(same)} distinct the same, {len(refused)} refused: "
          f"{dict(kinds.most_common())}; functions: {dict(functions.most_common())}")
    assert len(same) >= 58, (len(same), refused)  # 60 of 150 distinct event queries at the time of writing
    assert kinds["functions"] and kinds["arithmetic"] and kinds["pipes"]
