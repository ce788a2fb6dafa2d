"""The incremental correlators' contract (engine/correlate.py): hits as soon as they are sure and in
result order, bounded state over a long stream, checkpoints that refuse what they were not made for,
batches that must come in event order. (That any chunking gives one batch's hits: tests/fuzz.)"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from trailhound.engine import checkpoint
from trailhound.engine.correlate import NewTermsRun, SampleRun, SequenceRun, ThresholdRun
from trailhound.engine.search import SearchOptions, candidates
from trailhound.engine.sequence import SequenceState
from trailhound.engine.threshold import ThresholdSpec
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

SEC = 1_000_000_000


def frame(events):
    """(ms, category, h) triples as documents, in time order; `i` is the row."""
    return events_from_documents([{"@timestamp": ms, "event": {"category": c}, "h": h, "i": i}
                                  for i, (ms, c, h) in enumerate(events)]).frame


def roundtrip(run, restore):
    return restore(json.loads(json.dumps(run.to_dict())))


def test_a_trailing_missing_event_holds_its_sequence_and_every_later_one_until_maxspan_passes():
    q = parse("sequence by h with maxspan=2s [a where true] [b where true] ![c where true]")
    cand, schema = candidates(q, frame([(0, "a", "x"), (1000, "b", "x"), (1500, "a", "y"), (1600, "b", "y"),
                                        (1800, "c", "x"), (2100, "a", "w"), (5000, "a", "z")]), SearchOptions())
    run = SequenceRun(q)
    assert run.feed(cand.slice(0, 4), schema) == []  # x and y complete, but a `c` may still come
    run = roundtrip(run, lambda d: SequenceRun.from_dict(q, d))
    assert run.feed(cand.slice(4, 1), schema) == []  # x's c, within maxspan of its start
    assert run.feed(cand.slice(5, 1), schema) == []  # past x's maxspan: x is discarded; y waits until 3.5 s
    assert len(run.queue) == 1
    hits = run.feed(cand.slice(6, 1), schema)
    assert [(h.rows, h.join_keys) for h in hits] == [((2, 3, None), ("y",))]
    assert run.finish(schema) == [] and not run.queue


def test_without_trailing_missing_events_sequences_come_at_once():
    q = parse("sequence by h with maxspan=2s ![c where true] [a where true] [b where true]")
    cand, schema = candidates(q, frame([(0, "a", "x"), (500, "b", "x")]), SearchOptions())
    run = SequenceRun(q)
    assert [h.rows for h in run.feed(cand, schema)] == [(None, 0, 1)]


def test_state_stays_bounded_over_a_long_stream():
    """A new key every event, for 20,000 events in 100 batches: what is held stays within maxspan
    (sequences, missing-event times), the history window (new_terms) or the lookback (threshold)."""
    events = [(i * 100, "abc"[i % 3], f"k{i}") for i in range(20_000)]
    f = frame(events)
    seq = parse("sequence by h with maxspan=1s [a where true] ![b where true] [c where true]")
    cand, schema = candidates(seq, f, SearchOptions())
    run = SequenceRun(seq)
    q = parse("any where true")
    terms_cand, terms_schema = candidates(q, f, SearchOptions(), ["h"])
    terms = NewTermsRun(q, ["h"], 2000)
    spec = ThresholdSpec(("h",), 2, (), 5 * SEC, 6 * SEC)
    threshold = ThresholdRun(q, spec)
    for lo in range(0, 20_000, 200):
        run.feed(cand.slice(lo, 200), schema)
        terms.feed(terms_cand.slice(lo, 200), terms_schema)
        threshold.feed(terms_cand.slice(lo, 200), terms_schema)
        assert len(run.state.pending) <= 10 + 200  # keys started within maxspan (1 s: 10 events) or this batch
        assert sum(len(v) for v in run.absent[1].values()) <= 30 + 200
        assert len(terms.state.last_seen) <= 21
        assert len(threshold.state.events) <= 60 + 200
        assert len(json.dumps(run.to_dict())) < 200_000


def test_checkpoints_refuse_another_query_version_or_kind():
    q = parse("sequence by h with maxspan=2s [a where true] [b where true]")
    saved = json.loads(json.dumps(SequenceRun(q).to_dict()))
    other = parse("sequence by h with maxspan=2s [a where true] [b where true] [c where true]")
    with pytest.raises(ValueError, match="stages is 2, the query has 3"):
        SequenceRun.from_dict(other, saved)
    with pytest.raises(ValueError, match="version 99"):
        SequenceRun.from_dict(q, {**saved, "version": 99})
    sample = parse("sample by h [a where true] [b where true]")
    with pytest.raises(ValueError, match="holds the state of a 'sequence' correlator"):
        SampleRun.from_dict(sample, 1, saved)
    with pytest.raises(ValueError, match="expected a JSON object"):
        SequenceRun.from_dict(q, [])
    spec = ThresholdSpec(("h",), 2)
    saved = json.loads(json.dumps(ThresholdRun(parse("any where true"), spec).to_dict()))
    with pytest.raises(ValueError, match="another threshold specification"):
        ThresholdRun.from_dict(parse("any where true"), ThresholdSpec(("h",), 3), saved)
    saved = NewTermsRun(parse("any where true"), ["h"], 1000).to_dict()
    with pytest.raises(ValueError, match="another history window"):
        NewTermsRun.from_dict(parse("any where true"), ["h"], 2000, saved)


def test_batches_out_of_event_order_are_refused():
    q = parse("sequence by h [a where true] [b where true]")
    cand, schema = candidates(q, frame([(0, "a", "x"), (1000, "b", "x")]), SearchOptions())
    run = SequenceRun(q)
    run.feed(cand.slice(1, 1), schema)
    with pytest.raises(ValueError, match="batches must come in event order"):
        run.feed(cand.slice(0, 1), schema)
    terms = NewTermsRun(parse("any where true"), ["h"], 1000)
    c, s = candidates(parse("any where true"), frame([(0, "a", "x"), (1000, "b", "x")]), SearchOptions(), ["h"])
    terms.feed(c.slice(1, 1), s)
    with pytest.raises(ValueError, match="event order"):
        terms.feed(c.slice(0, 1), s)


def test_key_values_round_trip_and_odd_types_are_refused():
    values = (None, True, 3, 2.5, "x", (1, "y"), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
              date(2026, 1, 2), Decimal("1.10"))
    assert checkpoint.value_in(json.loads(json.dumps(checkpoint.value_out(values)))) == values
    with pytest.raises(TypeError, match="type set cannot be checkpointed"):
        checkpoint.value_out({1})
    with pytest.raises(ValueError, match="bad tagged value"):
        checkpoint.value_in({"$": "datetime", "v": "not a date"})


def test_sequence_state_round_trips():
    state = SequenceState(stages=3, maxspan_ns=10)
    state.feed(0, 0, ("k", 1), [0], row=7)
    state.feed(1, 2, ("k", 1), [1], row=9)
    state.feed(2, 3, (None, 2), [0], row=11)
    back = SequenceState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert back == state
    back.feed(3, 5, ("k", 1), [2], row=12)
    (done,) = back.take_completed()
    assert (done.events, done.rows, done.times, done.key) == ((0, 1, 3), (7, 9, 12), (0, 2, 5), ("k", 1))
