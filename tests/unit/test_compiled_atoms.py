"""Compiled filters kept across frames alike (engine/filter/shared.py `CompiledAtoms`, used by watch's
micro-batches): the second frame compiles nothing and gets the rows a fresh evaluation gets; a frame whose
columns have other dtypes is compiled for itself."""

from __future__ import annotations

import random

from trailhound.compile import semantics
from trailhound.engine.filter.shared import CompiledAtoms, SharedFilters
from trailhound.engine.search import SearchOptions, search_events_batch
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

QUERIES = [
    'process where process.name in ("ssh", "scp") and not process.args : "-v"',
    'process where process.name : "SSH*" or startsWith(process.executable, "/tmp")',
    'file where file.path : "/etc/*" and process.pid > 100',
    'network where destination.port == 22 and process.name != "sshd"',
    'process where process.parent.name == "bash" and process.args_count >= 2 and user.name like~ "ROO*"',
    'any where no.such.field == 1 or true',
]
FIELDS = ["@timestamp", "event.category", "process.name", "process.args", "process.executable", "file.path",
          "process.pid", "destination.port", "process.parent.name", "process.args_count", "user.name"]


def frame(seed: int, n: int = 300):
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        docs.append({
            "@timestamp": 1_700_000_000_000 + i * 10,
            "event": {"category": rng.choice(["process", "file", "network"])},
            "process": {"name": rng.choice(["ssh", "scp", "SSHD", "bash", "curl"]), "pid": rng.randint(1, 300),
                        "args": rng.sample(["-v", "-i", "host", "-p"], rng.randint(0, 3)),
                        "executable": rng.choice(["/tmp/x", "/usr/bin/ssh", "/bin/bash"]),
                        "parent": {"name": rng.choice(["bash", "sshd"])}, "args_count": rng.randint(0, 4)},
            "file": {"path": rng.choice(["/etc/passwd", "/home/a", "/etc/ssh/sshd_config"])},
            "destination": {"port": rng.choice([22, 80, 443])},
            "user": {"name": rng.choice(["root", "alice", "Root"])},
        })
    return events_from_documents(docs, FIELDS).frame


def rows(results):
    return [[h.rows for h in r.hits] for r in results]


def test_frames_alike_reuse_the_compiled_filters_with_the_same_results(monkeypatch):
    options = SearchOptions()
    queries = [parse(q) for q in QUERIES]
    compiled = CompiledAtoms()
    first = frame(1)
    got1 = search_events_batch(queries, first, options, SharedFilters(first, options, compiled))
    assert rows(got1) == rows(search_events_batch(queries, first, options))
    assert any(rows(got1))

    calls = []
    real = semantics.ConditionCompiler.predicate
    monkeypatch.setattr(semantics.ConditionCompiler, "predicate",
                        lambda self, e: calls.append(e) or real(self, e))
    second = frame(2)
    assert second.schema == first.schema
    got2 = search_events_batch(queries, second, options, SharedFilters(second, options, compiled))
    assert calls == [], "a frame alike compiled its filters again"
    monkeypatch.undo()
    want2 = search_events_batch(queries, second, options)
    assert rows(got2) == rows(want2) and rows(got2) != rows(got1)


def test_a_frame_with_other_dtypes_is_compiled_for_itself():
    options = SearchOptions()
    queries = [parse(QUERIES[2])]
    compiled = CompiledAtoms()
    a = frame(3)
    search_events_batch(queries, a, options, SharedFilters(a, options, compiled))
    b = a.with_columns(a["process.pid"].cast(str))  # a keyword now: "> 100" compares as strings
    got = search_events_batch(queries, b, options, SharedFilters(b, options, compiled))
    want = search_events_batch(queries, b, options)
    assert rows(got) == rows(want)
    assert len(compiled._by_schema) == 2


def test_the_cache_is_bounded():
    compiled = CompiledAtoms(limit=2)
    base = frame(4, 20)
    for i in range(4):
        f = base.with_columns(base["process.pid"].cast(str)) if i % 2 else base
        SharedFilters(f.rename({"user.name": f"user.name{i}"}), SearchOptions(), compiled)
    assert len(compiled._by_schema) == 2


