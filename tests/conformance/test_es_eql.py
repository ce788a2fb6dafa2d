"""Elasticsearch's EQL QA suite, one test per spec query; skipped where ../shared is absent."""

import pytest

import es_eql

pytestmark = pytest.mark.skipif(not es_eql.available(), reason=f"ES EQL suite not found at {es_eql.SUITE}")

#: Cases whose expectation depends on an Elasticsearch quirk we do not reproduce, with why.
KNOWN = {
    ("EqlDateNanosSpecTestCase", "test_queries.toml", "sequencesOnDifferentEventTypes7"):
        "on the date_nanos index the candidate sequences span 50.9 ms, inside maxspan=500ms, yet ES "
        "returns none, as if it compared the nanosecond delta with the span's millisecond value; the "
        "same query on the millisecond index (spans of 5.1 s) agrees with us",
}

CASES = es_eql.all_cases()


@pytest.mark.parametrize(
    "cls, spec", CASES, ids=[f"{c.name}:{s.file}:{s.name}" for c, s in CASES]
)
def test_spec(cls, spec):
    reason = KNOWN.get((cls.name, spec.file, spec.name))
    if reason:
        pytest.xfail(reason)
    out = es_eql.run_spec(cls, spec)
    assert out.error is None, out.error
    assert out.passed, f"got ids {out.got} keys {out.got_keys}; want {spec.expected} keys {spec.join_keys}"


def test_every_goal_file_is_played():
    files = {s.file for _, s in CASES}
    assert set(es_eql.GOAL_FILES) <= files


@pytest.mark.parametrize("cls", es_eql.CLASSES, ids=[c.name for c in es_eql.CLASSES])
def test_batched_searches_equal_single_searches(cls):
    """hunt's shared passes (all event queries, all sequences, all samples at once) change no result."""
    from trailhound.engine.search import (
        SearchOptions,
        search,
        search_events_batch,
        search_samples_batch,
        search_sequences_batch,
    )
    from trailhound.lang import ir
    from trailhound.lang.parser import parse

    table, types, aliases = es_eql.dataset(cls.name)
    options = SearchOptions(tiebreaker_field=cls.tiebreaker, es_types=types, aliases=aliases)
    queries = [parse(s.query) for c, s in CASES if c.name == cls.name]
    compared = 0
    for kind, batch in ((ir.EventQuery, search_events_batch), (ir.SequenceQuery, search_sequences_batch),
                        (ir.SampleQuery, search_samples_batch)):
        group = [q for q in queries if isinstance(q, kind)]
        compared += len(group)
        for q, got in zip(group, batch(group, table.frame, options)):
            want = search(q, table.frame, options)
            assert [(h.rows, h.join_keys) for h in got.hits] == [(h.rows, h.join_keys) for h in want.hits], q
    assert compared > 0
