"""Constant atoms of the shared filters (predicates that read no field the frame has, such as a rule naming a field
this data lacks): their values are computed together, in one Polars call, when the filters are first evaluated, and
give the rows a single search gives, on one frame and on a stream of frames alike."""

from __future__ import annotations

from trailhound.engine.filter.shared import CompiledAtoms, SharedFilters
from trailhound.engine.search import SearchOptions, search, search_events_batch
from trailhound.lang import ir
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

from helpers import batch_and_singles

QUERIES = [
    'process where process.name == "bash" and not absent.field == "x"',  # null == "x": unknown, not true
    'process where process.name == "bash" or absent.field == null',
    'process where absent.field : "*x*" or process.name == "curl"',
    'process where process.name == "bash" and not absent.other in ("a", "b")',
    'process where length(absent.text) > 2 or process.name == "sh"',
    'process where absent.one == "a" and absent.two == "b"',  # nothing the frame has: a constant filter
    'process where true and process.name != null',
]


def _frame(seed: int):
    names = ["bash", "curl", "sh", None]
    docs = [{"@timestamp": f"2025-03-11T10:00:{i % 60:02d}.{i:03d}Z", "event": {"category": "process"},
             "process": {"name": names[(i * 7 + seed) % 4]}} for i in range(200)]
    return events_from_documents(docs).frame


def _rows(results) -> list:
    return [sorted(h.rows for h in r.hits) for r in results]


def test_constant_atoms_give_the_rows_of_single_searches():
    frame = _frame(0)
    shared, got, singles = batch_and_singles(QUERIES, frame)
    assert _rows(got) == _rows(singles)
    assert any(r.hits for r in got) and not all(r.hits for r in got)
    constants = [a for a in shared._atoms.values() if a.field is None]
    assert len(constants) >= 6 and all(a.true is not None for a in constants)


def test_constants_of_a_frame_that_ran_no_filter_are_evaluated_on_the_next():
    """A stream's frame may register filters and never run them (a failed batch starts afresh): the next frame
    alike must evaluate the constants it adopts rather than take them as false."""
    options = SearchOptions()
    compiled = CompiledAtoms()
    queries = [parse(q) for q in QUERIES]
    idle = SharedFilters(_frame(1), options, compiled)
    for q in queries:
        for f in ir.query_filters(q):
            idle.add(f)
    for seed in (2, 3):
        frame = _frame(seed)
        got = search_events_batch(queries, frame, options, SharedFilters(frame, options, compiled))
        assert _rows(got) == _rows([search(q, frame, options) for q in queries])
