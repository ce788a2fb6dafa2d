"""Shared filter work (engine.filter.SharedFilters) belongs to one frame and one set of frame options:
two rules over one frame that differ only in `tiebreaker_field` must each get their own event order
(issue 16: a per-frame cache keyed without the tiebreaker gave them the first rule's order)."""

from __future__ import annotations

import pytest

from trailhound.engine.filter import FrameOptions, SharedFilters
from trailhound.engine.search import SearchOptions, search, search_events_batch, search_sequences_batch
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
    for tb in (first, second):  # the same frame object, each tiebreaker with its own shared work
        options = SearchOptions(tiebreaker_field=tb)
        shared = SharedFilters(frame, options)
        got[tb] = (search_sequences_batch([SEQUENCE], frame, options, shared)[0].hits,
                   search_events_batch([EVENTS], frame, options, shared)[0].hits)
    # by a: y (a=1) before x (a=2): one sequence; by b: x (b=1) before y (b=2): none
    assert [h.rows for h in got["a"][0]] == [(1, 0)]
    assert got["b"][0] == []
    assert [h.rows for h in got["a"][1]] == [(1,), (0,), (2,)]
    assert [h.rows for h in got["b"][1]] == [(2,), (0,), (1,)]
    for tb in (first, second):  # and the plain per-query search (no shared work) agrees
        options = SearchOptions(tiebreaker_field=tb)
        assert search(SEQUENCE, frame, options).hits == got[tb][0]
        assert search(EVENTS, frame, options).hits == got[tb][1]


def test_search_only_options_share_the_frame_work():
    frame = _frame()
    shared = SharedFilters(frame, SearchOptions(tiebreaker_field="a", size=1))
    assert SearchOptions(tiebreaker_field="a", size=5, result_position="tail").key() == shared.key
    assert FrameOptions(tiebreaker_field="a").key() == shared.key
    # search-only options differ: the work is shared
    tail = SearchOptions(tiebreaker_field="a", size=1, result_position="tail")
    assert [h.rows for h in search_events_batch([EVENTS], frame, tail, shared)[0].hits] == [(2,)]


@pytest.mark.parametrize("options", [SearchOptions(tiebreaker_field="b"),
                                     SearchOptions(tiebreaker_field="a", timestamp_field="event.created"),
                                     SearchOptions(tiebreaker_field="a", es_types={"a": "keyword"})])
def test_work_of_other_frame_options_is_refused(options):
    frame = _frame()
    shared = SharedFilters(frame, SearchOptions(tiebreaker_field="a"))
    assert options.key() != shared.key
    with pytest.raises(ValueError, match="other frame options"):
        search_events_batch([EVENTS], frame, options, shared)
    with pytest.raises(ValueError, match="another frame"):  # same options, another frame
        search_sequences_batch([SEQUENCE], _frame(), SearchOptions(tiebreaker_field="a"), shared)


def test_a_hunt_keeps_one_shared_work_per_frame_options_and_drops_it_after_a_failure():
    from trailhound.engine.hunt import _Frame

    frame = _Frame(_frame())
    by_a = frame.shared(SearchOptions(tiebreaker_field="a"))
    assert by_a.frame is frame.current
    assert frame.shared(SearchOptions(tiebreaker_field="a", size=3)) is by_a
    assert frame.shared(SearchOptions(tiebreaker_field="b")) is not by_a
    frame.spoil()  # a batch raised: whatever it left half done is not reused
    assert frame.shared(SearchOptions(tiebreaker_field="a")) is not by_a
