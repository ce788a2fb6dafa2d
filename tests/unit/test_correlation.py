"""Sequences, missing events and samples on small fixtures."""

from trailhound.engine.sequence import SequenceState

from helpers import ev, run

SEC = 1000


def test_sequence_by_key_with_inclusive_maxspan():
    docs = [
        ev(1, 0, "process", host="a"), ev(2, 0, "process", host="b"),
        ev(3, 5 * SEC, "file", host="a"),          # exactly maxspan after 1: allowed
        ev(4, 5 * SEC + 1, "file", host="b"),      # 1 ms over for host b: dropped
    ]
    q = "sequence by host with maxspan=5s [process where true] [file where true]"
    assert run(q, docs) == [([1, 3], ["a"])]


def test_newest_pending_sequence_replaces_older():
    docs = [ev(1, 1, "process", h="x"), ev(2, 2, "process", h="x"), ev(3, 3, "file", h="x"), ev(4, 4, "file", h="x")]
    assert run("sequence by h [process where true] [file where true]", docs) == [([2, 3], ["x"])]


def test_until_cuts_pending_sequences_of_its_key_only():
    docs = [ev(1, 1, "process", h="x"), ev(2, 1, "process", h="y"), ev(3, 2, "end", h="x"),
            ev(4, 3, "file", h="x"), ev(5, 3, "file", h="y")]
    q = "sequence by h [process where true] [file where true] until [end where true]"
    assert run(q, docs) == [([2, 5], ["y"])]


def test_runs_is_a_macro_for_repeated_stages():
    docs = [ev(i, i, "auth", u="root", outcome="failure") for i in range(1, 5)] + [ev(9, 9, "auth", u="root", outcome="success")]
    q = 'sequence by u [auth where outcome == "failure"] with runs=3 [auth where outcome == "success"]'
    assert run(q, docs) == [([2, 3, 4, 9], ["root"])]


def test_array_join_keys_fan_out_and_optional_keys():
    docs = [ev(1, 1, "a", k=["p", "q", "p"]), ev(2, 2, "b", k="q"), ev(3, 3, "b", k=["p", None])]
    assert run("sequence by k [a where true] [b where true]", docs) == [([1, 2], ["q"]), ([1, 3], ["p"])]
    docs = [ev(1, 1, "a"), ev(2, 2, "b")]
    assert run("sequence by k [a where true] [b where true]", docs) == []
    assert run("sequence by ?k [a where true] [b where true]", docs) == [([1, 2], [None])]


def test_keys_match_by_position_across_fields():
    docs = [ev(1, 1, "process", pid=42), ev(2, 2, "network", ppid=42), ev(3, 3, "network", ppid=7)]
    q = "sequence [process where true] by pid [network where true] by ppid"
    assert run(q, docs) == [([1, 2], [42])]


def test_missing_event_in_the_middle_discards_the_sequence():
    docs = [ev(1, 1, "a", h="x"), ev(2, 2, "gap", h="x"), ev(3, 3, "b", h="x"),
            ev(4, 10, "a", h="y"), ev(5, 11, "b", h="y")]
    q = "sequence by h with maxspan=1m [a where true] ![gap where true] [b where true]"
    assert run(q, docs) == [([4, None, 5], ["y"])]


def test_trailing_missing_event_within_maxspan_discards():
    docs = [ev(1, 0, "a", h="x"), ev(2, 1, "b", h="x"), ev(3, 2, "c", h="x"),
            ev(4, 0, "a", h="y"), ev(5, 1, "b", h="y"), ev(6, 2 * 60 * SEC, "c", h="y")]
    q = "sequence by h with maxspan=1m [a where true] [b where true] ![c where true]"
    assert run(q, docs) == [([4, 5, None], ["y"])]


def test_samples_by_key_in_key_order_with_distinct_events():
    docs = [{"id": 1, "host": "b", "kind": "x"}, {"id": 2, "host": "a", "kind": "x"},
            {"id": 3, "host": "a", "kind": "y"}, {"id": 4, "host": "b", "kind": "x"}]
    q = 'sample by host [any where kind == "x"] [any where kind != "nothing"]'
    assert run(q, docs) == [([2, 3], ["a"]), ([1, 4], ["b"])]


def test_sequence_state_is_bounded_by_maxspan():
    state = SequenceState(stages=2, maxspan_ns=10)
    for i in range(100):
        state.feed(i, i, (f"k{i}",), [0])
    state.expire(100)
    assert len(state.pending) == 10  # only keys started within the last maxspan survive
    state.feed(100, 100, ("k95",), [1])
    assert [c.events for c in state.take_completed()] == [(95, 100)]
