"""Array columns of a Parquet store read with their elements' dictionary codes (sources/parquet.py `_read_lists`,
`EventTable.element_codes`): the frame is what Polars reads, and the engine's encoding from those codes equals its
encoding by hashing, across files, row groups with their own dictionaries, nulls, and columns without dictionaries."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.engine.filter.encoding import encode
from trailhound.sources import events_from_documents, load_events
from trailhound.sources import parquet as store

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "fixtures" / "lab"
NOW = "2026-12-01T00:00:00.000Z"
FIELDS = ["@timestamp", "process.name", "process.args", "event.category", "host.ip"]


def _docs(n: int, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    words = ["ssh", "-i", "key", "-o", "StrictHostKeyChecking=no", "", "é", "bash", "-c", "x" * 30, None]
    docs = []
    for k in range(n):
        doc: dict = {"@timestamp": f"2026-01-01T00:00:{k % 60:02d}Z", "process": {"name": rng.choice(["ssh", "sh"])}}
        shape = rng.random()
        if shape < 0.6:
            doc["process"]["args"] = [rng.choice(words) for _ in range(rng.randint(0, 4))]
        elif shape < 0.7:
            doc["process"]["args"] = None
        if rng.random() < 0.8:
            doc["event"] = {"category": rng.sample(["process", "network", "file"], rng.randint(1, 2))}
        if rng.random() < 0.5:
            doc["host"] = {"ip": [f"10.0.0.{rng.randint(1, 30)}"]}
        docs.append(doc)
    return docs


def _write(directory: Path, docs: list[dict], rows_per_file: int, **options) -> list[str]:
    """`docs` as a store of files of `rows_per_file` events in row groups of 5, written with pyarrow's `options`."""
    directory.mkdir()
    files = []
    for start in range(0, len(docs), rows_per_file):
        part = docs[start:start + rows_per_file]
        table = store.events_table(part, [("in.ndjson", start + k + 1) for k in range(len(part))])
        path = str(directory / f"part-{len(files):05d}.parquet")
        pq.write_table(table, path, row_group_size=5, compression="zstd", **options)
        files.append(path)
    return files


def _same_encoding(column: pl.Series, codes: np.ndarray) -> None:
    """encode() from the given element codes: a value per distinct array, each row's array its code's value, and the
    same partition of the rows as encode() by hashing."""
    values, rows = encode(column, codes)
    want_values, want_rows = encode(column)
    assert values.len() == want_values.len() == len({repr(v) for v in column.to_list()})
    assert values.gather(rows).equals(column, check_names=False, null_equal=True)
    assert len(set(zip(rows.tolist(), want_rows.tolist()))) == want_values.len()


def test_array_elements_come_with_their_codes_across_files_and_row_groups(tmp_path):
    docs = _docs(60)
    files = _write(tmp_path / "store", docs, rows_per_file=23)
    assert len(files) == 3 and pq.ParquetFile(files[0]).num_row_groups == 5
    got = load_events([tmp_path / "store"], FIELDS)
    want = events_from_documents(docs, FIELDS)
    assert got.frame.select(FIELDS).equals(want.frame.select(FIELDS))
    assert got.frame["process.args"].dtype == pl.List(pl.String)
    assert sorted(got.element_codes) == ["event.category", "host.ip", "process.args"]
    for name, codes in got.element_codes.items():
        column = got.frame[name]
        assert codes.dtype == np.uint32 and len(codes) == column.list.len().fill_null(0).sum()
        _same_encoding(column, codes)
    # equal elements share a code across files and row groups; a null element has its own
    codes = got.element_codes["process.args"]
    flat = [e for a in got.frame["process.args"].to_list() if a for e in a]
    assert None in flat and len(set(flat)) > 5
    by_code: dict = {}
    for c, e in zip(codes.tolist(), flat):
        assert by_code.setdefault(c, e) == e
    assert len(by_code) == len(set(flat))


def test_columns_without_dictionaries_are_hashed_by_the_engine(tmp_path):
    """A column written without a dictionary (in any file) gets no element codes: the engine hashes it. One whose
    writer fell back to plain pages after its dictionary page still gets exact codes (pyarrow reads them)."""
    docs = _docs(40, seed=9)
    _write(tmp_path / "plain", docs, rows_per_file=40, use_dictionary=False)
    plain = load_events([tmp_path / "plain"], FIELDS)
    assert plain.element_codes == {}
    files = _write(tmp_path / "mixed", docs[:20], rows_per_file=20)
    files += _write(tmp_path / "mixed2", docs[20:], rows_per_file=20, use_dictionary=["process.name"])
    mixed = load_events(files, FIELDS)
    assert mixed.element_codes == {}
    assert mixed.frame.select(FIELDS).equals(plain.frame.select(FIELDS))
    _write(tmp_path / "fallback", docs, rows_per_file=40, dictionary_pagesize_limit=8)
    fallback = load_events([tmp_path / "fallback"], FIELDS)
    assert "process.args" in fallback.element_codes
    assert fallback.frame.select(FIELDS).equals(plain.frame.select(FIELDS))
    for name, codes in fallback.element_codes.items():
        _same_encoding(fallback.frame[name], codes)


def test_a_file_without_the_field_or_of_another_type_joins_or_leaves_the_codes(tmp_path):
    with_args = [{"@timestamp": "2026-01-01T00:00:00Z", "process": {"args": ["a", "b"]}}] * 3
    without = [{"@timestamp": "2026-01-01T00:00:01Z", "process": {"name": "x"}}] * 2
    scalar = [{"@timestamp": "2026-01-01T00:00:02Z", "process": {"args": "a b"}}] * 2
    joined = _write(tmp_path / "a", with_args, 3) + _write(tmp_path / "b", without, 2) + _write(tmp_path / "c", with_args, 3)
    got = load_events(joined, FIELDS)
    assert got.element_codes["process.args"].tolist() == [0, 1] * 6
    _same_encoding(got.frame["process.args"], got.element_codes["process.args"])
    cast = load_events(joined + _write(tmp_path / "d", scalar, 2), FIELDS)
    assert "process.args" not in cast.element_codes  # that file's strings become arrays in the loader
    assert cast.frame["process.args"].to_list()[-2:] == [["a b"], ["a b"]]


def _alerts(paths) -> list[dict]:
    from trailhound.pack import DIR as PACK
    from trailhound.pipeline import plan, run_hunt
    from trailhound.rules.loader import load_rules

    report = run_hunt(plan(load_rules([PACK])), paths, now=NOW, keep_alerts=True)
    assert not report.errors
    return [a for r in report.rules for a in r.alert_documents or ()]


@pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
def test_a_hunt_over_a_store_of_many_files_and_row_groups_equals_the_hunt_over_its_ndjson(tmp_path):
    ndjson = tmp_path / "events.ndjson"
    r = CliRunner().invoke(app, ["normalize", *sorted(str(p) for p in LAB.glob("*/*.log")), "-o", str(ndjson)])
    assert r.exit_code == 0, r.output
    docs = [orjson.loads(line) for line in ndjson.read_bytes().splitlines()]
    _write(tmp_path / "store", docs, rows_per_file=max(1, len(docs) // 4))
    assert load_events([tmp_path / "store"], ["event.type", "process.args"]).element_codes.keys() == \
        {"event.type", "process.args"}
    want = _alerts([ndjson])
    assert len(want) > 20
    assert _alerts([tmp_path / "store"]) == want
