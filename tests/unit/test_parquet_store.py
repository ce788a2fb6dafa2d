"""The columnar store: `normalize --to parquet DIR` and Parquet read by hunt and query, with the
same results as the NDJSON of the same events."""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.sources import SourceError, events_from_documents, load_events
from trailhound.sources import parquet_writer as store

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "fixtures" / "lab"
NOW = "2026-12-01T00:00:00.000Z"


def _lab_logs() -> list[str]:
    return sorted(str(p) for p in LAB.glob("*/*.log"))


def _normalize(tmp_path: Path, files: list[str], *extra: str) -> tuple[Path, Path]:
    ndjson, out = tmp_path / "events.ndjson", tmp_path / "store"
    runner = CliRunner()
    r = runner.invoke(app, ["normalize", *files, "-o", str(ndjson)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["normalize", *files, "--to", "parquet", "-o", str(out), *extra])
    assert r.exit_code == 0, r.output
    return ndjson, out


def _alerts(paths) -> list[dict]:
    from trailhound.pack import DIR as PACK
    from trailhound.pipeline import plan, run_hunt
    from trailhound.rules.loader import load_rules

    report = run_hunt(plan(load_rules([PACK])), paths, now=NOW, keep_alerts=True)
    assert not report.errors
    return [a for r in report.rules for a in r.alert_documents or ()]


@pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
def test_lab_capture_with_the_pack_gives_the_same_alerts_over_parquet(tmp_path):
    ndjson, out = _normalize(tmp_path, _lab_logs())
    files = sorted(out.glob("*.parquet"))
    assert len(files) == 1
    meta = pq.ParquetFile(files[0])
    assert meta.schema_arrow.metadata[b"trailhound.schema"] == b"2"
    names = meta.schema_arrow.names
    assert {"__source", "__file", "__line", "process.name", "event.type", "@timestamp"} <= set(names)
    # fields of few distinct values keep their codes
    assert {"__codes.event.type", "__values.event.type", "__counts.event.type", "__codes.process.name"} <= set(names)
    assert str(meta.schema_arrow.field("event.type").type).startswith("large_list")
    want = _alerts([ndjson])
    assert len(want) > 20
    assert _alerts([out]) == want  # the directory
    assert _alerts(files) == want  # its files
    assert _alerts(_lab_logs()) == want  # and the raw logs themselves


def test_types_and_shapes_round_trip_across_files(tmp_path):
    """Several Parquet files whose columns differ in type unify as one NDJSON load does."""
    docs = [
        {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "n": 1, "mixed": 5,
         "process": {"name": "ssh", "args": ["ssh", "-i", "k"]}, "flag": True},
        {"@timestamp": "2026-01-01T00:00:01Z", "event.category": "file", "n": 2.5, "mixed": "five",
         "process.name": "scp", "threat": [{"tactic": {"name": "a"}}, {"tactic": {"name": "b"}}]},
        {"@timestamp": "2026-01-01T00:00:02Z", "event": {"category": ["process", "network"]}, "n": None,
         "process": {"name": "bash", "args": "one"}, "big": 123456789012345678901234567890},
        {"@timestamp": "2026-01-01T00:00:03Z", "event": {"category": "process"}, "empty": [], "flag": False},
    ]
    writer = store.ParquetWriter(tmp_path, rows_per_file=1)  # one file per event: every column typed apart
    for k, d in enumerate(docs, 1):
        writer.add(d, "in.ndjson", k)
    writer.close()
    assert len(writer.files) == 4
    want = events_from_documents(docs)
    got = load_events([tmp_path])
    assert got.present == want.present
    assert got.frame.select(sorted(want.present)).equals(want.frame.select(sorted(want.present)))
    # as NDJSON gives them: an int beyond 64 bits reads as a double there too
    assert got.documents(range(4)) == [orjson.loads(json.dumps(d)) for d in docs]
    # a field that is an object (the parent of others) is read from the documents, as from NDJSON
    assert load_events([tmp_path], ["process"]).frame["process"].to_list() == \
        events_from_documents(docs, ["process"]).frame["process"].to_list()
    assert got.report.inputs[0].format == "parquet"


def test_es_eql_qa_data_same_results_over_parquet(tmp_path):
    es_eql = pytest.importorskip("es_eql")
    if not es_eql.available():
        pytest.skip(f"ES EQL suite not found at {es_eql.SUITE}")
    from trailhound.engine.search import SearchOptions, search
    from trailhound.lang.parser import parse

    compared = 0
    for cls in es_eql.CLASSES:
        table, types, aliases = es_eql.dataset(cls.name)
        docs = table.documents(range(table.frame.height))
        directory = tmp_path / cls.name
        directory.mkdir()
        writer = store.ParquetWriter(directory, rows_per_file=997)  # several files: types unify across them
        for k, d in enumerate(docs, 1):
            writer.add(d, cls.name, k)
        writer.close()
        got = load_events([directory])
        assert got.frame.equals(table.frame.drop("__file").with_columns(got.frame["__file"].alias("__file"))
                                .select(got.frame.columns)), cls.name
        options = SearchOptions(tiebreaker_field=cls.tiebreaker, es_types=types, aliases=aliases, size=1000)
        for c, spec in es_eql.all_cases():
            if c.name != cls.name:
                continue
            q = parse(spec.query)
            want, have = search(q, table.frame, options), search(q, got.frame, options)
            assert [(h.rows, h.join_keys) for h in have.hits] == [(h.rows, h.join_keys) for h in want.hits], spec.name
            rows = [r for h in want.hits for r in h.rows if r is not None][:50]
            assert got.documents(rows) == table.documents(rows)
            compared += 1
    assert compared == len(es_eql.all_cases()) > 400


def test_normalize_parquet_back_to_ndjson_gives_the_same_events(tmp_path):
    files = _lab_logs()[:4] if LAB.is_dir() else []
    if not files:
        pytest.skip("no recorded lab capture")
    ndjson, out = _normalize(tmp_path, files)
    back = tmp_path / "back.ndjson"
    r = CliRunner().invoke(app, ["normalize", str(out / "part-00000.parquet"), "-o", str(back)])
    assert r.exit_code == 0, r.output
    assert back.read_bytes() == ndjson.read_bytes()
    # and `query` over the store prints the same documents
    q = 'any where true'
    a = CliRunner().invoke(app, ["query", q, str(ndjson), "--format", "ndjson", "--size", "1000"])
    b = CliRunner().invoke(app, ["query", q, str(out), "--format", "ndjson", "--size", "1000"])
    assert a.exit_code == b.exit_code == 0
    assert a.stdout == b.stdout and a.stdout.count("\n") > 10


def test_ecs_input_keeps_its_line_numbers_and_bad_lines_are_reported(tmp_path):
    src = tmp_path / "in.ndjson"
    src.write_text('{"event": {"category": "process"}, "process": {"name": "a"}}\n'
                   "not json\n"
                   '{"event": {"category": "process"}, "process": {"name": "b"}}\n')
    out = tmp_path / "store"
    r = CliRunner().invoke(app, ["normalize", str(src), "--to", "parquet", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert f"{src}:2: invalid JSON" in r.output.replace("\n", "")
    table = pq.read_table(out / "part-00000.parquet")
    assert table.column("__line").to_pylist() == [1, 3]
    assert table.column("__file").to_pylist() == [str(src)] * 2
    assert table.column("process.name").to_pylist() == ["a", "b"]


def test_output_directory_is_checked(tmp_path):
    runner = CliRunner()
    src = tmp_path / "in.ndjson"
    src.write_text('{"a": 1}\n')
    r = runner.invoke(app, ["normalize", str(src), "--to", "parquet"])
    assert r.exit_code == 2 and "--out DIR" in r.output
    (tmp_path / "file").write_text("x")
    r = runner.invoke(app, ["normalize", str(src), "--to", "parquet", "-o", str(tmp_path / "file")])
    assert r.exit_code == 2 and "needs a directory" in r.output
    out = tmp_path / "store"
    assert runner.invoke(app, ["normalize", str(src), "--to", "parquet", "-o", str(out)]).exit_code == 0
    r = runner.invoke(app, ["normalize", str(src), "--to", "parquet", "-o", str(out)])
    assert r.exit_code == 2 and "already holds Parquet files" in r.output


def test_foreign_or_damaged_parquet_is_an_input_error(tmp_path):
    import pyarrow as pa

    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"process.name": ["ssh"]}), foreign)
    with pytest.raises(SourceError, match="without the __source column"):
        load_events([foreign])
    damaged = tmp_path / "damaged.parquet"
    good = tmp_path / "good"
    good.mkdir()
    writer = store.ParquetWriter(good)
    writer.add({"process": {"name": "ssh"}}, "x", 1)
    writer.close()
    data = (good / "part-00000.parquet").read_bytes()
    damaged.write_bytes(data[: len(data) // 2] + b"PAR1")
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        load_events([damaged])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="without \\*.parquet files"):
        load_events([empty])
    r = CliRunner().invoke(app, ["query", "any where true", str(foreign)])
    assert r.exit_code == 2 and "__source" in r.output and "Traceback" not in r.output


def test_parquet_is_detected_by_content_not_by_name(tmp_path):
    out = tmp_path / "store"
    writer = store.ParquetWriter(out if out.mkdir() is None else out)
    writer.add({"event": {"category": "process"}, "process": {"name": "ssh"}}, "x", 1)
    writer.close()
    renamed = tmp_path / "events.ndjson"
    os.replace(out / "part-00000.parquet", renamed)
    table = load_events([renamed], ["process.name"], format="auditd")
    assert table.frame["process.name"].to_list() == ["ssh"]
    assert json.loads(json.dumps(table.documents([0])[0]))["process"]["name"] == "ssh"


def test_damaged_pages_under_a_sound_footer_are_an_input_error(tmp_path):
    """The footer reads, the column pages do not: the input's error with its name, not a traceback."""
    good = tmp_path / "good"
    good.mkdir()
    writer = store.ParquetWriter(good)
    for i in range(200):
        writer.add({"process": {"name": f"proc-{i}"}, "@timestamp": "2024-01-01T00:00:00Z"}, "x", i + 1)
    writer.close()
    data = bytearray((good / "part-00000.parquet").read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    for k in range(4, len(data) - footer - 8):  # every page byte, the footer kept
        data[k] = 0xFF
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(bytes(data))
    with pytest.raises(SourceError, match="not a readable Parquet file") as e:
        load_events([damaged], ["process.name"])
    assert "damaged.parquet" in str(e.value)
