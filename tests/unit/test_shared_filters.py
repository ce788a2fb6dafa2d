"""The shared multi-rule evaluation (engine/filter/) and its fast paths give what the plain
per-query Polars evaluation gives, on data large enough to take every path: fields with more
than 65,536 distinct values (two radix passes), candidate sets above the slice limit, many
fields evaluated in parallel, exact-match lookups, element-wise array atoms, and timestamps
both in the ISO layout (Arrow's parser) and not (the general parser; see also test_dates.py)."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from trailhound.engine.filter.encoding import (
    _SCANS_BEFORE_INDEX,
    _SLICE_LIMIT,
    FieldValues,
    encode,
    stable_argsort,
)
from trailhound.engine.filter.shared import SharedFilters
from trailhound.engine.search import (
    SearchOptions,
    search,
    search_events_batch,
    search_samples_batch,
    search_sequences_batch,
)
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents
from trailhound.sources.dictionary import _codes

from helpers import batch_and_singles


def _docs(n: int, odd_timestamps: bool) -> list[dict]:
    rng = random.Random(5)
    names = ["ssh", "bash", "curl", "sshd", "python3", "SSH", "scp", None]
    docs = []
    for i in range(n):
        ms = 1_741_651_200_000 + i * 37 + rng.randint(0, 30)
        ts = f"2025-03-11T{ms // 3_600_000 % 24:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}Z"
        if odd_timestamps and i % 997 == 0:
            ts = str(ms)  # epoch milliseconds in a string: the general parser's job
        name = rng.choice(names)
        doc = {
            "@timestamp": ts,
            "event": {"category": rng.choice(["process", "file", "network"]), "type": ["start"]},
            "host": {"name": f"h{rng.randint(0, 9)}"},
            "user": {"name": rng.choice(["root", "alice", "bob"])},
            "file": {"path": f"/tmp/{i}/{rng.choice(['id_rsa', 'authorized_keys', 'x'])}"},  # 70k+ distinct
            "process": {"args": [name or "sh", rng.choice(["-i", "-L", "-R", "-D", "-o", "x", "/tmp/key"]),
                                 rng.choice(["host", "-N", "ProxyCommand=nc", "-f"])],
                        "pid": rng.randint(1, 5000)},
        }
        if name is not None:
            doc["process"]["name"] = name
        docs.append(doc)
    return docs


QUERIES = [
    'process where process.name == "ssh"',
    'process where process.name : "ssh"',
    'process where process.name in~ ("ssh", "scp") and process.args : ("-R", "-L")',
    'any where process.args in ("-D", "-N") and not user.name == "root"',
    'file where file.path : ("/tmp/1*/id_rsa", "*/authorized_keys") and process.name != null',
    'file where endsWith(file.path, "id_rsa") or startsWith~(file.path, "/TMP/2")',
    'network where process.args : "ProxyCommand=*" and length(process.name) > 2',
    'any where process.name == "curl" and process.pid > 4000',
    'process where not process.name in ("bash", "sshd")',
    'file where file.path == "/tmp/7/x"',
]
SEQUENCES = [
    'sequence by host.name with maxspan=2s [process where process.name == "ssh"] '
    '[file where file.path : "*/authorized_keys"]',
    'sequence by user.name [process where process.args : "-L"] [network where process.name == "scp"] '
    'until [process where process.name == "bash"]',
    # a missing-event stage no event matches must not stop the sequence; a positive one does
    'sequence by host.name with maxspan=1s [process where process.name == "ssh"] ![file where file.path == "/none"] '
    '[any where process.name == "curl"]',
    'sequence by host.name [process where process.name == "ssh"] [file where file.path == "/none"]',
]
SAMPLES = [
    'sample by host.name [process where process.name == "ssh"] [file where file.path : "*/authorized_keys"]',
    'sample by user.name, process.pid [process where process.args : "-R"] [any where process.name == "curl"]',
]


@pytest.fixture(scope="module", params=[False, True], ids=["iso", "odd-timestamps"])
def frame(request):
    return events_from_documents(_docs(72_000, request.param)).frame


def test_batched_event_queries_equal_single_searches(frame):
    shared, got, singles = batch_and_singles(QUERIES, frame)
    nonempty = 0
    for q, g, want in zip(QUERIES, got, singles):
        assert [h.rows for h in g.hits] == [h.rows for h in want.hits], q
        nonempty += bool(want.hits)
    assert nonempty >= 8
    fv = shared.field("file.path")
    assert fv.values.height > 1 << 16  # the two-pass radix order was used


@pytest.mark.parametrize("texts, batch", [(SEQUENCES, search_sequences_batch), (SAMPLES, search_samples_batch)],
                         ids=["sequences", "samples"])
def test_batched_correlations_equal_single_searches(frame, texts, batch):
    options = SearchOptions()
    queries = [parse(q) for q in texts]
    got = batch(queries, frame, options)
    for q, g in zip(queries, got):
        want = search(q, frame, options)
        assert [(h.rows, h.join_keys) for h in g.hits] == [(h.rows, h.join_keys) for h in want.hits], q
    assert any(g.hits for g in got)
    if batch is search_sequences_batch:
        assert got[2].hits and any(None in h.rows for h in got[2].hits) and not got[3].hits


@pytest.mark.parametrize("n_values", [1, 300, 1 << 16, (1 << 16) + 1, 1 << 20])
def test_radix_argsort_equals_numpy_stable_argsort(n_values):
    codes = np.random.default_rng(n_values).integers(0, n_values, 50_000).astype(np.uint32)
    assert np.array_equal(stable_argsort(codes, n_values), np.argsort(codes, kind="stable"))


@pytest.mark.parametrize("n_values", [3, 400, 70_000])
def test_rows_with_gives_the_same_rows_by_scan_and_by_index(n_values):
    """A field's first lookups scan its codes, later ones read its inverted index: both give every row holding one
    of the codes, in row order, for sets of any size (none, one, many, more than the slice limit)."""
    rng = np.random.default_rng(n_values)
    codes = rng.integers(0, n_values, 20_000).astype(np.uint32)
    fv = FieldValues(pl.Series("f", range(n_values)).to_frame(), codes)
    asks = [rng.choice(n_values, size=k, replace=False) for k in (1, 2, min(n_values, _SLICE_LIMIT + 5), 0, 1, 3)]
    asks += [asks[0], asks[1], asks[2]]
    for ask in asks:
        want = np.flatnonzero(np.isin(codes, ask))
        got = fv.rows_with(np.asarray(ask, dtype=np.int64))
        assert np.array_equal(got, want) and got.dtype == np.int64
    # the index was built once the scans were spent, and then answered
    assert fv._scans == _SCANS_BEFORE_INDEX and fv._order is not None


def test_codes_read_from_arrow_buffers_keep_offsets_chunks_and_nulls():
    """Arrow indices become uint32 codes with nulls as the fill code, whatever the array's offset (a slice starts
    mid-bitmap) and chunks."""
    import pyarrow as pa

    values = [3, None, 0, 7, None, 1, 2, None, 5, 4, 6, None, 0]
    whole = pa.array(values, pa.int32())
    for indices, want in ((whole, values), (whole.slice(3, 9), values[3:12]),
                          (pa.chunked_array([whole.slice(1, 4), whole.slice(9)]), values[1:5] + values[9:]),
                          (pa.array([1, 2], pa.int32()), [1, 2]), (pa.array([], pa.int32()), [])):
        codes = _codes(indices, 99)
        assert codes.dtype == np.uint32 and codes.tolist() == [99 if v is None else v for v in want]
        codes[:] = 0  # writable, and not a view of the Arrow buffers
    assert whole.to_pylist() == values


@pytest.mark.parametrize("dtype", [pl.String, pl.Int64, pl.UInt16, pl.Float64, pl.List(pl.String), pl.List(pl.Int64),
                                   pl.List(pl.Float64)])
def test_encode_gives_each_distinct_value_one_code(dtype):
    """Every row's value is its code's value, equal values share a code, null is one value (last for strings and
    integers, which Arrow encodes), whatever the column's chunks."""
    rng = random.Random(7)
    pool = {pl.String: ["", "a", "A", "é", "a b", "x" * 40], pl.Int64: [0, -1, 2**40, 7], pl.UInt16: [0, 1, 65535],
            pl.Float64: [0.0, 1.5, -2.0], pl.List(pl.String): [[], ["a"], ["a", "b"], ["b", "a"], ["a", None], ["ab"]],
            pl.List(pl.Int64): [[], [1], [1, 2], [2, 1], [None], [None, 1], [12]],
            pl.List(pl.Float64): [[], [1.5], [1.5, None]]}[dtype]
    chunks = [pl.Series("f", [rng.choice(pool + [None]) for _ in range(rng.randint(0, 50))], dtype=dtype)
              for _ in range(4)]
    series = pl.concat(chunks, rechunk=False)
    values, codes = encode(series)
    assert codes.dtype == np.uint32 and len(codes) == series.len()
    assert values.dtype == series.dtype
    assert values.gather(codes).to_list() == series.to_list()
    assert len(values) == len({repr(v) for v in series.to_list()})  # distinct: no value twice
    if dtype in (pl.String, pl.Int64, pl.UInt16) and series.null_count():
        assert values[-1] is None


def test_a_searched_frame_is_freed_with_its_shared_work():
    """No module keeps per-frame work: once the caller drops the frame and its SharedFilters, both go."""
    import gc
    import weakref

    frame = events_from_documents(_docs(50, False)).frame
    shared = SharedFilters(frame, SearchOptions())
    assert search_events_batch([parse(QUERIES[0])], frame, SearchOptions(), shared)[0].hits
    search_events_batch([parse(QUERIES[0])], frame)  # work of its own, dropped when the call returns
    refs = weakref.ref(frame), weakref.ref(shared)
    del frame, shared
    gc.collect()
    assert [r() for r in refs] == [None, None]
