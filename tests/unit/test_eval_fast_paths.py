"""The evaluation step's fast paths for small frames (watch's micro-batches) give what the general paths give:
sequences streamed in Python (engine/correlate.py), atom truths remembered across frames (engine/filter/shared.py),
cidrMatch over a few addresses (compile/polars.py), candidates from the shared filter work
(engine/filter/candidates.py) and documents loaded with only the fields they carry (sources/ecs_json.py)."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from trailhound.compile import polars as compile_polars
from trailhound.engine import correlate
from trailhound.engine.filter.candidates import candidates, shared_candidates
from trailhound.engine.filter.shared import CompiledAtoms, SharedFilters
from trailhound.engine.search import SearchOptions, search, search_events_batch
from trailhound.lang import ir
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

SEQUENCES = [
    'sequence by host.id [process where process.name == "a"] [process where process.name == "b"]',
    'sequence by host.id, user.id with maxspan=50ms [process where process.name == "a"] '
    '[network where true] [process where process.name in ("b", "c")]',
    'sequence by host.id [process where process.name == "a"] with runs=2 [process where process.name == "b"]',
    'sequence by host.id [process where process.name == "a"] [process where process.name == "b"] '
    'until [process where process.name == "c"]',
    'sequence [process where process.name == "a"] [process where process.name == "b"]',
    'sequence by ?user.name [process where process.name == "a"] [process where process.name == "b"]',
    # keys of another type at one stage: cast, so the Polars way decides
    'sequence [process where process.name == "a"] by host.id [process where process.name == "b"] by user.id',
]


def documents(seed: int, n: int = 400) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        doc = {"@timestamp": 1_700_000_000_000 + i * rng.choice([1, 5, 30]),
               "event": {"category": rng.choice(["process", "process", "network"])},
               "host": {"id": rng.choice(["h1", "h2", "h3"])},
               "process": {"name": rng.choice(["a", "b", "c", "d"])}}
        if rng.random() < 0.8:
            doc["user"] = {"id": rng.choice([1, 2, 3]), "name": rng.choice(["x", "y"])}
        docs.append(doc)
    return docs


@pytest.mark.parametrize("text", SEQUENCES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sequence_stream_in_python_equals_polars(text, seed, monkeypatch):
    frame = events_from_documents(documents(seed)).frame
    query = parse(text)
    fast = search(query, frame, SearchOptions())
    monkeypatch.setattr(correlate, "_SMALL_STREAM", -1)  # every batch the Polars way
    slow = search(query, frame, SearchOptions())
    assert [(h.rows, h.join_keys) for h in fast.hits] == [(h.rows, h.join_keys) for h in slow.hits]
    if SEQUENCES.index(text) in (0, 2, 4, 5):
        assert fast.hits  # these do find sequences


@pytest.mark.parametrize("seed", [1, 2])
def test_sequence_fed_in_batches_equals_one_batch(seed):
    """The Python stream and the no-op skip, batch after batch, against one feed of everything."""
    frame = events_from_documents(documents(seed)).frame
    for text in SEQUENCES[:4]:
        query = parse(text)
        assert isinstance(query, ir.SequenceQuery)
        cand, schema = candidates(query, frame)
        whole = correlate.SequenceRun(query)
        expected = whole.feed(cand, schema) + whole.finish(schema)
        run, got = correlate.SequenceRun(query), []
        for start in range(0, cand.height, 7):
            got += run.feed(cand.slice(start, 7), schema)
        got += run.finish(schema)
        assert [(h.rows, h.join_keys) for h in got] == [(h.rows, h.join_keys) for h in expected]


QUERIES = [
    'process where process.name in ("a", "b") and host.id != "h2"',
    'process where process.name : ("A*", "*c") and user.id >= 2',
    'network where cidrMatch(destination.ip, "10.0.0.0/8", "192.168.0.0/16", "::1/128")',
    'any where destination.ip == "10.1.2.3" or process.args : "-x"',
]


def ip_documents(seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    docs = documents(seed, n)
    for doc in docs:
        doc["destination"] = {"ip": rng.choice(["10.1.2.3", "192.168.7.7", "8.8.8.8", "::1", "fe80::1",
                                                 "01.2.3.4", "not an ip", "300.1.1.1"])}
        doc["process"]["args"] = rng.sample(["-x", "-y", "z"], rng.randint(0, 2))
    return docs


def test_remembered_truths_across_frames_equal_fresh_work():
    compiled = CompiledAtoms()
    options = SearchOptions()
    for seed in range(5):  # later frames repeat most values, and bring some new ones
        frame = events_from_documents(ip_documents(seed, 150 + 40 * seed)).frame
        queries = [parse(q) for q in QUERIES]
        remembered = search_events_batch(queries, frame, options, shared=SharedFilters(frame, options, compiled))
        fresh = search_events_batch(queries, frame, options)
        assert [[h.rows for h in r.hits] for r in remembered] == [[h.rows for h in r.hits] for r in fresh]
    assert compiled._by_schema  # the truths were kept


def test_cidr_match_few_addresses_equals_vectorized(monkeypatch):
    ips = pl.Series(["10.1.2.3", "192.168.7.7", "8.8.8.8", "::1", "fe80::1", "01.2.3.4", "not an ip",
                     "300.1.1.1", None, "10.0.0.0", "١٠.1.2.3"])
    cidrs = ["10.0.0.0/8", "192.168.0.0/16", "::1/128", "fe80::/10"]
    few = compile_polars._cidr_match(ips, cidrs)
    monkeypatch.setattr(compile_polars, "_FEW_ADDRESSES", -1)
    assert few.to_list() == compile_polars._cidr_match(ips, cidrs).to_list()


@pytest.mark.parametrize("text", [SEQUENCES[1], SEQUENCES[3], 'sample by host.id [process where process.name == "a"] '
                                  '[network where true]', 'process where process.name == "b"'])
def test_shared_candidates_equal_candidates(text):
    frame = events_from_documents(documents(4)).frame
    query = parse(text)
    options = SearchOptions()
    shared = SharedFilters(frame, options)
    filters = ir.query_filters(query)
    for f in filters:
        shared.add(f)
    found = [shared.rows(f) for f in filters]
    fields = ["user.id"] if isinstance(query, ir.EventQuery) else []
    got, _ = shared_candidates(query, shared, found, fields)
    want, _ = candidates(query, frame, options, fields)
    assert got.select(want.columns).equals(want)
    # the same from rows put in order beforehand, with more fields and rows than this query's
    every = np.arange(frame.height)
    from trailhound.engine.filter.candidates import ordered_rows, places
    base = ordered_rows(shared, every, {"host.id", "user.id", "user.name"})
    got2, _ = shared_candidates(query, shared, found, fields, (base, places(base, frame.height)))
    assert got2.select(want.columns).equals(want)


def test_documents_load_only_the_fields_they_carry():
    docs = [{"@timestamp": 1, "process": {"name": "a", "parent": {}}, "user.name": "x",
             "threat": [{"technique": {"id": "T1"}}, {"technique": {"id": "T2"}}], "tags": []},
            {"@timestamp": 2, "process": {"name": "b", "args": ["-x", None]}, "host": {"id": None}}]
    fields = ["@timestamp", "process.name", "process.parent", "user.name", "threat.technique.id", "tags",
              "process.args", "host.id", "no.such.field", "process.pid"]
    narrowed = events_from_documents(docs, fields)
    everything = events_from_documents(docs)
    assert set(narrowed.frame.columns) - {"__row", "__file"} == set(narrowed.present)
    for name in narrowed.present:
        if name in everything.frame.columns:
            assert narrowed.frame[name].to_list() == everything.frame[name].to_list()
    assert {"process.name", "user.name", "threat.technique.id", "process.args"} <= narrowed.present
    assert "no.such.field" not in narrowed.present and "host.id" not in narrowed.present


TWO_STEPS = [
    'process where process.name == "ssh" and process.args : "-i"',
    'process where process.args : ("-I", "*key*") and user.name : "x*" and host.id != "h2"',
    'process where process.args : "-i"',
    'any where process.name : "SS*" and not process.args : "-I"',
]


@pytest.mark.parametrize("text", TWO_STEPS)
def test_event_query_in_two_steps_equals_one_pass(text, monkeypatch):
    from trailhound.engine import search as search_module

    rng = random.Random(7)
    docs = documents(7, 300)
    for doc in docs:
        doc["process"]["name"] = rng.choice(["ssh", "SSH", "sshd", None])
        choice = rng.random()
        if choice < 0.7:
            doc["process"]["args"] = rng.sample(["-i", "-I", "KEY.pem", "host", None], rng.randint(0, 3))
        elif choice < 0.85:
            doc["process"]["args"] = None
    frame = events_from_documents(docs).frame
    query = parse(text)
    two = search(query, frame)
    monkeypatch.setattr(search_module, "_events_in_two_steps", lambda *a: None)
    one = search(query, frame)
    assert [h.rows for h in two.hits] == [h.rows for h in one.hits]
    assert two.warnings == one.warnings
    if "not" not in text:
        assert two.hits
