"""The correlators' vectorized paths give what their reference paths give (issue 14, correlation speed).

* new_terms: first-seen detection by group-bys (`NewTermsRun._first_seen`) against the replay event by event
  through `NewTermsState` (`_per_event`), batch after batch through JSON checkpoints, and `replay` (a hunt's one
  batch, no state kept) against `feed`; on generated events with equal timestamps, nulls, arrays with repeated
  and null values, several fields and history windows that cut between equal times;
* threshold: the batch over a SharedFilters (`search_threshold_batch`, what hunt runs) against one search per rule;
* sequences: a sequence with a stage that no event can key left out of the batch's correlation, against the
  correlation;
* sequences: stages with the same filter and keys (`runs=N`, a stage written twice) keyed once and shared
  (`correlate._keyed_stages`), against one keyed frame per stage; with until, missing events, arrays as keys.
"""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from trailhound.engine import correlate
from trailhound.engine import search as search_module
from trailhound.engine.correlate import NewTermsRun, SequenceRun, keyed
from trailhound.engine.filter.candidates import candidates
from trailhound.engine.search import (
    NewTermsRule,
    SearchOptions,
    ThresholdRule,
    search,
    search_new_terms,
    search_new_terms_batch,
    search_sequences_batch,
    search_threshold,
    search_threshold_batch,
)
from trailhound.engine.threshold import ThresholdSpec
from trailhound.lang import ir
from trailhound.lang.errors import QueryError
from trailhound.lang.kql import parse_kql_query
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

MS = 1_000_000


def documents(seed: int, n: int) -> list[dict]:
    """Events with many equal timestamps, nulls, empty arrays, arrays with repeated and null values."""
    rng = random.Random(seed)
    docs, t = [], 1_700_000_000_000
    for i in range(n):
        t += rng.choice([0, 0, 1, 3, 20])
        doc: dict = {"@timestamp": t, "id": i,
                     "event": {"category": rng.choice(["process", "process", "network", "authentication"])},
                     "process": {"name": rng.choice(["a", "b", "c", "d"])}}
        if rng.random() < 0.85:
            doc["host"] = {"id": rng.choice(["h1", "h2", "h3", "h4"])}
        if rng.random() < 0.8:
            doc["user"] = {"id": rng.choice([1, 2, 3, 40]), "name": rng.choice(["x", "y", "z"]),
                           "alias": rng.choice(["x", "y", "z"]),
                           "score": rng.choice([0.5, 1.0, -0.0, 0.0])}
        r = rng.random()
        if r < 0.7:
            doc["related"] = {"ip": [rng.choice(["10.0.0.1", "10.0.0.2", "10.0.0.3", None])
                                     for _ in range(rng.randint(0, 3))]}
        elif r < 0.8:
            doc["related"] = {"ip": rng.choice(["10.0.0.1", "10.0.0.9"])}
        docs.append(doc)
    return docs


NEW_TERMS = [
    ("process.name : *", ["host.id"], 25),
    ("process.name : (a or b)", ["host.id", "process.name"], 7),
    ("event.category : *", ["related.ip"], 40),
    ("event.category : *", ["related.ip", "host.id"], 3),
    ("event.category : *", ["user.id", "related.ip"], 60),
    ("event.category : *", ["missing.field"], 10),
    ("event.category : *", ["user.score"], 15),  # a float: Polars and Python compare -0.0 and 0.0 differently
]


def _hits(hits) -> list[tuple]:
    return [(h.rows, h.join_keys) for h in hits]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", range(len(NEW_TERMS)))
def test_new_terms_first_seen_by_group_bys_equals_the_replay_event_by_event(seed, case, monkeypatch):
    kql, fields, history_ms = NEW_TERMS[case]
    frame = events_from_documents(documents(seed, 700)).frame
    query = parse_kql_query(kql)
    cand, schema = candidates(query, frame, SearchOptions(), fields)
    rng = random.Random(seed * 31 + case)
    bounds = [0] + sorted(rng.randint(0, cand.height) for _ in range(4)) + [cand.height]

    def chunked() -> tuple[list, list]:
        run, hits, states = NewTermsRun(query, fields, history_ms), [], []
        for lo, hi in zip(bounds, bounds[1:]):
            hits += run.feed(cand.slice(lo, hi - lo), schema)
            states.append(dict(run.state.last_seen))
            run = NewTermsRun.from_dict(query, fields, history_ms, json.loads(json.dumps(run.to_dict())))
        return hits, states

    monkeypatch.setattr(correlate, "_SMALL_NEW_TERMS", -1)  # every batch by group-bys
    fast, fast_states = chunked()
    whole = NewTermsRun(query, fields, history_ms).replay(cand, schema)
    monkeypatch.setattr(correlate, "_SMALL_NEW_TERMS", 10**9)  # every batch event by event
    slow, slow_states = chunked()
    reference = NewTermsRun(query, fields, history_ms).feed(cand, schema)
    assert _hits(fast) == _hits(slow) == _hits(whole) == _hits(reference)
    assert fast_states == slow_states
    if case < 5:
        assert len(reference) >= 3 and len(reference) < cand.height  # terms both new and seen again


@pytest.mark.parametrize("parts", [1, 3])
def test_a_stand_in_state_is_fed_event_by_event_however_large_the_batch(parts, monkeypatch):
    """Spark's split new_terms rules give the run a state that sees only its part's combinations
    (spark/tasks._PartTerms, no NewTermsState): a batch above the group-by size still goes through it. The group-bys
    read the engine's own state: at 1M events every split rule failed on Spark (AttributeError) before this."""
    from trailhound.spark.tasks import _PartTerms, part_of

    monkeypatch.setattr(correlate, "_SMALL_NEW_TERMS", -1)  # every batch large
    kql, fields, history_ms = NEW_TERMS[2]
    frame = events_from_documents(documents(5, 700)).frame
    query = parse_kql_query(kql)
    cand, schema = candidates(query, frame, SearchOptions(), fields)
    reference = NewTermsRun(query, fields, history_ms).feed(cand, schema)
    found = []
    for part in range(parts):
        run = NewTermsRun(query, fields, history_ms)
        run.state = _PartTerms(run.state.history_ns, part, parts)  # type: ignore[assignment]  # as spark/tasks does
        found += [(h.rows, h.join_keys) for h in run.feed(cand, schema)]
    # the parts' new combinations, event by event, are the reference's (one field: a combination is one value)
    want: dict = {}
    for h in reference:
        want.setdefault(h.rows, set()).update(h.join_keys)
    got: dict = {}
    for rows, keys in found:
        assert all(part_of((k,), parts) == part_of((keys[0],), parts) for k in keys)  # one part's combinations
        got.setdefault(rows, set()).update(keys)
    assert got == want and len(want) >= 3


@pytest.mark.parametrize("small", [-1, 10**9])
def test_new_terms_hits_of_an_event_with_several_new_combinations_in_order(small, monkeypatch):
    monkeypatch.setattr(correlate, "_SMALL_NEW_TERMS", small)
    docs = [{"@timestamp": 1000, "id": 0, "event": {"category": "process"}, "related": {"ip": ["b", "a", "b", None]},
             "host": {"id": "h"}},
            {"@timestamp": 1000, "id": 1, "event": {"category": "process"}, "related": {"ip": ["a", "c"]},
             "host": {"id": "h"}},
            {"@timestamp": 1005, "id": 2, "event": {"category": "process"}, "related": {"ip": ["c", "b"]},
             "host": {"id": "h"}}]
    frame = events_from_documents(docs).frame
    q = parse_kql_query("event.category : process")
    got = search_new_terms(q, frame, ["host.id", "related.ip"], 4)
    # event 2: "c" seen 5 ms before (more than 4 ms: new again), "b" too; in the event's own order of values
    assert _hits(got.hits) == [((0,), ("h", "b", "h", "a")), ((1,), ("h", "c")), ((2,), ("h", "c", "h", "b"))]
    batch = search_new_terms_batch([NewTermsRule(q, ("host.id", "related.ip"), 4)], frame)[0]
    assert not isinstance(batch, Exception) and _hits(batch.hits) == _hits(got.hits)


def test_a_replayed_new_terms_run_takes_no_more_batches():
    frame = events_from_documents(documents(4, 50)).frame
    q = parse_kql_query("process.name : *")
    cand, schema = candidates(q, frame, SearchOptions(), ["host.id"])
    run = NewTermsRun(q, ["host.id"], 10)
    run.replay(cand, schema)
    with pytest.raises(ValueError, match="no more"):
        run.feed(cand, schema)


SEQUENCES = [
    'sequence by host.id [process where process.name == "a"] with runs=3',
    'sequence by host.id with maxspan=500ms [process where process.name == "a"] with runs=2 '
    '[process where process.name == "b"] [process where process.name == "a"] [process where process.name == "a"]',
    'sequence by user.id [process where process.name in ("a", "b")] with runs=2 '
    'until [process where process.name == "c"]',
    'sequence by host.id with maxspan=30ms [process where process.name == "a"] with runs=2 '
    '![process where process.name == "d"] [process where true]',
    'sequence by related.ip [any where true] with runs=2 [network where true]',
    # one filter, other keys: not shared
    'sequence [process where true] by user.name [process where true] by user.alias [process where true] by user.name',
]


def _keyed_each(cand, stages, schema, dtypes, cols):
    return [keyed(cand.filter(pl.col(f"__s{i}")), s, schema, dtypes, cols) for i, s in enumerate(stages)]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("text", SEQUENCES)
def test_stages_keyed_once_equal_one_keyed_frame_per_stage(seed, text, monkeypatch):
    frame = events_from_documents(documents(seed, 900)).frame
    query = parse(text)
    assert isinstance(query, ir.SequenceQuery)
    cand, schema = candidates(query, frame)
    monkeypatch.setattr(correlate, "_SMALL_STREAM", -1)  # every batch the Polars way

    def chunked() -> list:
        run, hits = SequenceRun(query), []
        for lo in range(0, cand.height, 250):
            hits += run.feed(cand.slice(lo, 250), schema)
            run = SequenceRun.from_dict(query, json.loads(json.dumps(run.to_dict())))
        return hits + run.finish(schema)

    shared = search(query, frame).hits
    shared_chunked = chunked()
    monkeypatch.setattr(correlate, "_keyed_stages", _keyed_each)
    each = search(query, frame).hits
    assert _hits(shared) == _hits(each) == _hits(shared_chunked) == _hits(chunked())
    assert each  # every query finds sequences here


THRESHOLDS = [
    ("process.name : (a or b)", ThresholdSpec(("host.id",), 4, (), 20 * MS, 30 * MS)),
    ("event.category : *", ThresholdSpec(("related.ip", "host.id"), 3, (), 10 * MS, 25 * MS)),
    ("event.category : *", ThresholdSpec((), 30, (("user.name", 2),), 50 * MS, 60 * MS)),
    ("process.name : c", ThresholdSpec(("user.id",), 2, (("related.ip", 2),), 15 * MS, 15 * MS)),
    ("process.name : zzz", ThresholdSpec(("host.id",), 1, (), 10 * MS, 10 * MS)),
]


@pytest.mark.parametrize("seed", [1, 2])
def test_threshold_batch_over_shared_filters_equals_single_searches(seed):
    frame = events_from_documents(documents(seed, 800)).frame
    rules = [ThresholdRule(parse_kql_query(kql), spec) for kql, spec in THRESHOLDS]
    got = search_threshold_batch(rules, frame)
    found = 0
    for rule, result in zip(rules, got):
        want = search_threshold(rule.query, frame, rule.spec)
        assert not isinstance(result, Exception)
        assert (_hits(result.hits), result.warnings, result.candidates) == (
            _hits(want.hits), want.warnings, want.candidates)
        found += len(want.hits)
    assert found >= 5


def test_a_threshold_rule_that_does_not_compile_fails_alone_in_its_batch():
    frame = events_from_documents(documents(5, 100)).frame
    bad = parse("process where length(user.id) > 1")  # user.id holds integers here: known from the data only
    assert isinstance(bad, ir.EventQuery)
    good = ThresholdRule(parse_kql_query("process.name : a"), ThresholdSpec(("host.id",), 1))
    got = search_threshold_batch([ThresholdRule(bad, ThresholdSpec(("host.id",), 1)), good], frame)
    assert isinstance(got[0], QueryError) and "length must be string" in str(got[0])
    assert not isinstance(got[1], Exception) and got[1].hits


@pytest.mark.parametrize("text", [
    'sequence by host.id, absent.field [process where process.name == "a"] [process where process.name == "b"]',
    'sequence [process where process.name == "a"] by host.id [process where process.name == "b"] by absent.field',
    'sequence by host.id [process where process.name == "a"] by ?absent.field [process where true] by ?absent.field',
    'sequence with maxspan=1s [process where process.name == "a"] by host.id '
    '![process where true] by absent.field [process where process.name == "b"] by host.id',
])
def test_a_sequence_keyed_on_a_field_no_event_has_in_a_batch_equals_its_correlation(text, monkeypatch):
    """The batch leaves out a sequence with a stage that no event can key (a required key no event has): no
    sequence completes, and no row reaches correlation (as for a stage that no event matches); an optional key or
    a missing-event stage's key does not end it."""
    frame = events_from_documents(documents(3, 600)).frame
    query = parse(text)
    assert isinstance(query, ir.SequenceQuery)
    got = search_sequences_batch([query], frame)[0]
    single = search(query, frame)
    monkeypatch.setattr(search_module, "_keyless_stage", lambda q, schema: False)
    want = search_sequences_batch([query], frame)[0]
    assert not isinstance(got, Exception) and not isinstance(want, Exception)
    assert (_hits(got.hits), got.warnings) == (_hits(want.hits), want.warnings)
    assert _hits(got.hits) == _hits(single.hits)
    assert want.candidates > 100
    assert bool(want.hits) == ("?" in text or "!" in text)
    assert got.candidates == (want.candidates if want.hits else 0)
