"""The per-frame cache of shared filter work (search.shared_filters) is keyed by every frame option
the cached work depends on: two rules over one frame that differ only in `tiebreaker_field` must
each get their own event order (issue 16: they shared the first rule's order)."""

from __future__ import annotations

import pytest

from trailhound.engine.search import SearchOptions, search, search_events_batch, search_sequences_batch, shared_filters
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

TS = "2026-05-01T10:00:00.000Z"  # every event at one time: only the tiebreaker orders them


def _frame():
    docs = [
        {"@timestamp": TS, "event": {"category": "process"}, "process": {"name": "x"}, "a": 2, "b": 1},
        {"@timestamp": TS, "event": {"category": "process"}, "process": {"name": "y"}, "a": 1, "b": 2},
        {"@timestamp": TS, "event": {"category": "process"}, "process": {"name": "z"}, "a": 3, "b": 0},
    ]
    return events_from_documents(docs).frame


SEQUENCE = parse('sequence [process where process.name == "y"] [process where process.name == "x"]')
EVENTS = parse('process where true')


@pytest.mark.parametrize("first, second", [("a", "b"), ("b", "a")])
def test_two_tiebreakers_on_one_frame_each_get_their_own_order(first, second):
    frame = _frame()
    got = {}
    for tb in (first, second):  # the same frame object: the cache is consulted for both
        options = SearchOptions(tiebreaker_field=tb)
        got[tb] = (search_sequences_batch([SEQUENCE], frame, options)[0].hits,
                   search_events_batch([EVENTS], frame, options)[0].hits)
    # by a: y (a=1) before x (a=2): one sequence; by b: x (b=1) before y (b=2): none
    assert [h.rows for h in got["a"][0]] == [(1, 0)]
    assert got["b"][0] == []
    assert [h.rows for h in got["a"][1]] == [(1,), (0,), (2,)]
    assert [h.rows for h in got["b"][1]] == [(2,), (0,), (1,)]
    for tb in (first, second):  # and the plain per-query search (no cache) agrees
        options = SearchOptions(tiebreaker_field=tb)
        assert search(SEQUENCE, frame, options).hits == got[tb][0]
        assert search(EVENTS, frame, options).hits == got[tb][1]


def test_search_only_options_share_the_frame_work():
    frame = _frame()
    one = shared_filters(frame, SearchOptions(tiebreaker_field="a", size=1))
    assert shared_filters(frame, SearchOptions(tiebreaker_field="a", size=5, result_position="tail")) is one
    assert shared_filters(frame, SearchOptions(tiebreaker_field="b")) is not one
    assert shared_filters(frame, SearchOptions(tiebreaker_field="a", timestamp_field="event.created")) is not one
