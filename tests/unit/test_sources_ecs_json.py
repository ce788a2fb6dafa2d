"""Loader of ECS NDJSON / JSON-array files: trailhound.sources.ecs_json."""

from __future__ import annotations

import gzip
import json
import logging

import polars as pl
import pytest

from trailhound.sources import (
    EventTable,
    SourceError,
    ecs_json,
    events_from_documents,
    load_events,
)

LOGGER = "trailhound.sources.ecs_json"


def use_reader(name: str, monkeypatch) -> None:
    """Read every file with DuckDB, or every file with orjson line by line."""
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0 if name == "duckdb" else 1 << 62)


@pytest.fixture(params=["duckdb", "python"])
def reader(request, monkeypatch, caplog):
    """Run with each reader; with DuckDB, fail if a file was handed to the line reader."""
    use_reader(request.param, monkeypatch)
    caplog.set_level(logging.INFO, logger=LOGGER)
    yield request.param
    if request.param == "duckdb":
        assert "reading line by line" not in caplog.text


@pytest.fixture(params=["duckdb", "python"])
def any_reader(request, monkeypatch):
    """Run with each reader; DuckDB hands files with bad input to the line reader."""
    use_reader(request.param, monkeypatch)
    return request.param


def write(path, lines, *, compress=False):
    """Write NDJSON: dicts are dumped, str/bytes written as they are, one per line."""
    data = b"".join((line if isinstance(line, bytes) else
                     (line if isinstance(line, str) else json.dumps(line)).encode()) + b"\n"
                    for line in lines)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def col(table: EventTable, name: str) -> list:
    return table.frame[name].to_list()


# ----------------------------------------------------------------------------------------------
# Field spellings and column types


def test_nested_dotted_and_mixed_keys_coalesce(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [
        {"process": {"name": "ssh", "parent": {"pid": 1}}},
        {"process.name": "scp", "process.parent.pid": 2},
        {"process": {"parent.pid": 3, "name": "bash"}},
        {"process.parent": {"pid": 4}},
        {"host": "h"},
        {"process": {"name": None}, "process.name": "zsh"},  # the first non-null spelling wins
    ])
    t = load_events([f], ["process.name", "process.parent.pid"])
    assert col(t, "process.name") == ["ssh", "scp", "bash", None, None, "zsh"]
    assert col(t, "process.parent.pid") == [1, 2, 3, 4, None, None]
    assert t.frame.schema["process.parent.pid"] == pl.Int64


def test_keys_are_case_sensitive(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [{"process": {"Name": "upper", "name": "lower"}},
                                      {"process": {"Name": "only-upper"}}])
    t = load_events([f], ["process.name"])
    assert col(t, "process.name") == ["lower", None]


def test_scalar_and_array_values_make_a_list_column(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [
        {"event": {"category": "process"}},
        {"event": {"category": ["process", "network"]}},
        {"event": {"category": []}},
        {"event": {"category": ["file", None]}},
        {"event": {"category": None}},
        {},
    ])
    t = load_events([f], ["event.category"])
    assert t.frame.schema["event.category"] == pl.List(pl.String)
    assert col(t, "event.category") == [["process"], ["process", "network"], [], ["file", None],
                                        None, None]


def test_int_and_string_values_make_a_string_column(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [{"user": {"id": 1234}}, {"user": {"id": "S-1-5-18"}},
                                      {"user": {"id": -7}}])
    t = load_events([f], ["user.id"])
    assert t.frame.schema["user.id"] == pl.String
    assert col(t, "user.id") == ["1234", "S-1-5-18", "-7"]


def test_numbers_bools_and_objects_among_strings_render_as_json(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [
        {"v": "text"}, {"v": 1.5}, {"v": 1e16}, {"v": 100.0}, {"v": True}, {"v": False},
        {"v": {"k": [1, "x"], "s": "a\"b"}},
    ])
    t = load_events([f], ["v"])
    assert col(t, "v") == ["text", "1.5", "1e+16", "100.0", "true", "false",
                           '{"k":[1,"x"],"s":"a\\"b"}']


def test_int_and_float_values_make_a_float_column(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [{"n": 1}, {"n": 2.5}, {"n": None}, {}])
    t = load_events([f], ["n"])
    assert t.frame.schema["n"] == pl.Float64
    assert col(t, "n") == [1.0, 2.5, None, None]


def test_ints_beyond_int64_make_a_float_column(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", ['{"n": 1}', '{"n": 18446744073709551615}'])
    t = load_events([f], ["n"])
    assert t.frame.schema["n"] == pl.Float64
    assert col(t, "n") == [1.0, 18446744073709551615.0]


def test_bool_column_and_int_list_column(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [{"b": True, "ports": [22, 443]}, {"b": False, "ports": 80}])
    t = load_events([f], ["b", "ports"])
    assert t.frame.schema["b"] == pl.Boolean
    assert t.frame.schema["ports"] == pl.List(pl.Int64)
    assert col(t, "ports") == [[22, 443], [80]]


def test_object_among_scalars_becomes_compact_json_text(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", ['{"x": "plain"}', '{"x": {"a": 1,  "b": [true, null]}}'])
    t = load_events([f], ["x"])
    assert col(t, "x") == ["plain", '{"a":1,"b":[true,null]}']


def test_arrays_of_objects_and_nested_arrays_follow_elasticsearch(tmp_path, any_reader):
    f = write(tmp_path / "e.ndjson", [
        {"dns": {"answers": [{"name": "a.example"}, {"name": "b.example"}, {"ttl": 5}]}},
        {"dns": {"answers": {"name": "c.example"}}},
        {"tags": ["x", ["y", ["z"]]]},
    ])
    for fields in (["dns.answers.name", "tags"], None):
        t = load_events([f], fields)
        assert col(t, "dns.answers.name") == [["a.example", "b.example"], ["c.example"], None]
        if fields is None:
            assert col(t, "dns.answers.ttl") == [[5], None, None]
        assert col(t, "tags") == [None, None, ["x", "y", "z"]]


def test_timestamps_are_left_as_in_the_data(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [{"@timestamp": "2024-05-01T00:00:00.000Z"},
                                      {"@timestamp": "2024-05-01T00:00:01Z"}])
    t = load_events([f], ["@timestamp"])
    assert col(t, "@timestamp") == ["2024-05-01T00:00:00.000Z", "2024-05-01T00:00:01Z"]


# ----------------------------------------------------------------------------------------------
# Presence


def test_null_absent_and_present(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [
        {"a": "x", "only_null": None, "only_empty": [], "null_list": [None]},
        {"a": None},
        {},
    ])
    t = load_events([f], ["a", "only_null", "only_empty", "null_list", "nowhere"])
    assert col(t, "a") == ["x", None, None]
    # Like Elasticsearch's dynamic mapping: no non-null value, no field.
    assert t.present == frozenset({"a"})
    assert [c for c in t.frame.columns if not c.startswith("__")] == ["a"]


def test_fields_none_loads_every_leaf(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", [
        {"@timestamp": "t1", "process": {"name": "ssh", "args": ["ssh", "-i"]}, "n": None},
        {"@timestamp": "t2", "process.pid": 5, "host": {"os": {"type": "linux"}}},
    ])
    t = load_events([f])
    assert t.present == {"@timestamp", "process.name", "process.args", "process.pid", "host.os.type"}
    assert t.frame.columns == ["@timestamp", "host.os.type", "process.args", "process.name",
                               "process.pid", "__row", "__file"]
    assert col(t, "process.pid") == [None, 5]


def test_fields_none_with_a_field_both_object_and_scalar(tmp_path, any_reader):
    f = write(tmp_path / "e.ndjson", [{"o": {"z": 1}}, {"o": "flat"}])
    t = load_events([f])
    assert col(t, "o") == ['{"z":1}', "flat"]
    assert col(t, "o.z") == [1, None]


# ----------------------------------------------------------------------------------------------
# Input formats


def test_gzip_by_extension_and_by_magic_bytes(tmp_path, reader):
    docs = [{"event": {"action": f"a{i}"}} for i in range(3)]
    a = write(tmp_path / "a.ndjson.gz", docs, compress=True)
    b = write(tmp_path / "b.log", docs, compress=True)  # gzip content, misleading name
    t = load_events([a, b], ["event.action"])
    assert col(t, "event.action") == ["a0", "a1", "a2"] * 2
    assert t.documents([4]) == [docs[1]]


def test_json_array_file(tmp_path, reader):
    docs = [{"id": 1, "tags": "t"}, {"id": 2, "tags": ["u", "v"]}]
    f = tmp_path / "data.json"
    f.write_text("  \n" + json.dumps(docs, indent=2))
    t = load_events([f], ["id", "tags"])
    assert col(t, "id") == [1, 2]
    assert col(t, "tags") == [["t"], ["u", "v"]]
    assert t.documents([1, 0]) == [docs[1], docs[0]]
    assert t.locations([1]) == [(str(f), 2)]


def test_json_array_file_with_bad_elements(tmp_path, any_reader):
    f = tmp_path / "data.json"
    f.write_text('[{"id": 1}, 7, {"id": 3}, {"id": ]')
    t = load_events([f], ["id"])
    assert col(t, "id") == [1, 3]
    assert [(s.line, s.reason.split(" (")[0]) for s in t.report.skipped] == [
        (2, "array element is not a JSON object"), (4, "invalid JSON at line 1 column 34: "
                                                       "Expecting value; the rest of the file is lost")]
    assert t.locations([1]) == [(str(f), 3)]


def test_blank_lines_are_skipped_silently(tmp_path, reader):
    f = write(tmp_path / "e.ndjson", ["", {"n": 1}, "   ", "\t\r", {"n": 2}, ""])
    t = load_events([f], ["n"])
    assert col(t, "n") == [1, 2]
    assert t.report.skipped_count == 0
    assert t.locations([0, 1]) == [(str(f), 2), (str(f), 5)]


def test_crlf_line_endings(tmp_path, reader):
    f = tmp_path / "e.ndjson"
    f.write_bytes(b'{"n": 1}\r\n\r\n{"n": 2}\r\n')
    t = load_events([f], ["n"])
    assert col(t, "n") == [1, 2]
    assert t.documents([0, 1]) == [{"n": 1}, {"n": 2}]
    assert t.locations([1]) == [(str(f), 3)]


def test_a_leading_byte_order_mark(tmp_path, reader):
    f = tmp_path / "e.ndjson"
    f.write_bytes(b'\xef\xbb\xbf{"n": 1}\n{"n": 2}\n')
    t = load_events([f], ["n"])
    assert col(t, "n") == [1, 2]
    assert t.documents([0, 1]) == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize("compress", [False, True])
def test_vectorized_line_index_equals_reading_line_by_line(tmp_path, monkeypatch, compress):
    """Line starts found across chunk boundaries, blank and indented lines, no final newline."""
    import random

    from trailhound.sources import ecs_readers as readers

    rng = random.Random(7)
    pieces = [b"", b" ", b"\t\r", b"  {\"a\": 1}", b"{\"b\": 22}", b"\x0b", b"{}", b"\r"]
    for trial in range(40):
        text = b"\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.5:
            text += b"\n"
        f = tmp_path / f"t{trial}.ndjson"
        f.write_bytes(gzip.compress(text) if compress else text)
        src = readers.Source.open(str(f))
        monkeypatch.setattr(readers, "_INDEX_CHUNK", rng.randint(1, 9))
        offsets, lines = readers.line_index(src)
        slow_offsets, slow_lines = readers._line_index_slow(src)
        assert list(offsets) == list(slow_offsets) and list(lines) == list(slow_lines), text


# ----------------------------------------------------------------------------------------------
# Bad input


def test_bad_lines_are_reported_and_good_lines_load(tmp_path, any_reader):
    f = write(tmp_path / "e.ndjson", [
        {"n": 1},
        '{"n": 2',                # invalid JSON
        "",
        "[1, 2]",                 # not an object
        '"text"',
        b'{"n": "\xff\xfe"}',     # invalid UTF-8
        '{"n": 3} {"n": 4}',      # two documents on one line
        {"n": 5},
    ])
    t = load_events([f], ["n"])
    assert col(t, "n") == [1, 5]
    assert t.report.events == 2
    assert t.report.skipped_count == 5
    assert [(s.file, s.line) for s in t.report.skipped] == [(str(f), n) for n in (2, 4, 5, 6, 7)]
    reasons = [s.reason for s in t.report.skipped]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1] == "not a JSON object (found an array)"
    assert reasons[2] == "not a JSON object (found a string)"
    assert reasons[3] == "invalid UTF-8 at byte 8"
    assert reasons[4].startswith("invalid JSON")
    assert t.locations([0, 1]) == [(str(f), 1), (str(f), 8)]


def test_truncated_last_line(tmp_path, any_reader):
    f = tmp_path / "e.ndjson"
    f.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3, "pro')
    t = load_events([f], ["n"])
    assert col(t, "n") == [1, 2]
    (skipped,) = t.report.skipped
    assert skipped.line == 3
    assert skipped.reason.startswith("truncated last line (no newline at end of file)")


def test_last_line_without_newline_is_fine(tmp_path, reader):
    f = tmp_path / "e.ndjson"
    f.write_bytes(b'{"n": 1}\n{"n": 2}')
    assert col(load_events([f], ["n"]), "n") == [1, 2]


def test_truncated_gzip_stream_keeps_what_came_before(tmp_path, any_reader):
    data = gzip.compress(b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * (i % 50))
                                  for i in range(20000)))
    f = tmp_path / "e.ndjson.gz"
    f.write_bytes(data[: len(data) // 2])
    t = load_events([f], ["n"])
    n = col(t, "n")
    assert 0 < len(n) < 20000 and n == list(range(len(n)))
    assert t.report.skipped_count >= 1
    assert "gzip data is truncated or corrupt" in t.report.skipped[-1].reason


def test_skipped_lines_are_bounded_but_all_counted(tmp_path, any_reader, monkeypatch):
    monkeypatch.setattr(ecs_json, "MAX_SKIPPED_KEPT", 3)
    f = write(tmp_path / "e.ndjson", ["oops"] * 10 + [{"n": 1}])
    t = load_events([f], ["n"])
    assert t.report.skipped_count == 10
    assert [s.line for s in t.report.skipped] == [1, 2, 3]
    assert col(t, "n") == [1]


def test_missing_file_raises_source_error_naming_it(tmp_path):
    good = write(tmp_path / "good.ndjson", [{"n": 1}])
    missing = tmp_path / "missing.ndjson"
    with pytest.raises(SourceError, match="missing.ndjson: no such file") as info:
        load_events([good, missing], ["n"])
    assert info.value.path == str(missing)
    assert isinstance(info.value, ValueError)


def test_directory_raises_source_error(tmp_path):
    with pytest.raises(SourceError, match="is a directory"):
        load_events([tmp_path])


def test_invalid_field_names_are_rejected():
    for name in ("", "a..b", ".a", "__row"):
        with pytest.raises(ValueError):
            events_from_documents([{}], [name])


# ----------------------------------------------------------------------------------------------
# Several files, rows and documents


def test_row_order_files_and_documents_across_files(tmp_path, reader):
    a_docs = [{"event": {"id": f"a{i}"}, "v": i} for i in range(4)]
    b_docs = [{"event.id": f"b{i}", "v": [i]} for i in range(3)]
    a = write(tmp_path / "a.ndjson", a_docs[:2] + [""] + a_docs[2:])
    b = write(tmp_path / "b.ndjson.gz", b_docs, compress=True)
    empty = write(tmp_path / "empty.ndjson", [])
    t = load_events([a, empty, b], ["event.id", "v"])
    assert t.report.files == [str(a), str(empty), str(b)]
    assert col(t, "__row") == list(range(7))
    assert t.frame.schema["__row"] == pl.Int64 and t.frame.schema["__file"] == pl.Int32
    assert col(t, "__file") == [0, 0, 0, 0, 2, 2, 2]
    assert col(t, "event.id") == ["a0", "a1", "a2", "a3", "b0", "b1", "b2"]
    assert col(t, "v") == [[0], [1], [2], [3], [0], [1], [2]]
    rows = [6, 0, 3, 4, 0]
    assert t.documents(rows) == [b_docs[2], a_docs[0], a_docs[3], b_docs[0], a_docs[0]]
    assert t.locations([3, 5]) == [(str(a), 5), (str(b), 2)]
    with pytest.raises(IndexError):
        t.documents([7])


def test_documents_of_a_file_with_bad_lines(tmp_path, any_reader):
    docs = [{"n": i, "s": "é\u2028"} for i in range(5)]
    f = write(tmp_path / "e.ndjson", [docs[0], "{bad", docs[1], "", docs[2], docs[3], docs[4]])
    t = load_events([f], ["n"])
    assert t.documents([4, 1, 2]) == [docs[4], docs[1], docs[2]]


def test_events_from_documents(tmp_path):
    docs = [{"process": {"name": "ssh"}}, "not a doc", {"process.name": ["a", "b"]}]
    t = events_from_documents(iter(docs), ["process.name"], source="batch-1")
    assert col(t, "process.name") == [["ssh"], ["a", "b"]]
    assert t.report.files == ["batch-1"]
    assert [(s.file, s.line, s.reason) for s in t.report.skipped] == [
        ("batch-1", 2, "not a JSON object (found a string)")]
    assert t.documents([1])[0] is docs[2]
    assert t.locations([1]) == [("batch-1", 3)]


def test_empty_inputs():
    t = load_events([], ["a"])
    assert t.frame.height == 0 and t.frame.columns == ["__row", "__file"]
    assert t.present == frozenset()
    assert events_from_documents([]).frame.height == 0


# ----------------------------------------------------------------------------------------------
# The DuckDB reader: guessed types corrected, fallbacks


def test_conflicting_values_late_in_a_large_file_load_correctly(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0)
    n = 50_000
    lines = [{"process": {"pid": i, "args": "ssh", "title": "t"}, "score": i, "ok": True, "big": i,
              "ports": [i, 22]} for i in range(n - 1)]
    lines.append({"process": {"pid": "n/a", "args": ["ssh", "-i"], "title": ["x", 1]},
                  "score": 0.5, "ok": "yes", "big": 2 ** 64 - 1, "ports": ["http"]})
    f = write(tmp_path / "big.ndjson", lines)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        t = load_events([f], ["process.pid", "process.args", "process.title", "score", "ok", "big",
                              "ports"])
    assert t.frame.schema["big"] == pl.Float64
    assert col(t, "big")[-2:] == [n - 2.0, 2.0 ** 64]
    assert col(t, "ports")[-2:] == [[str(n - 2), "22"], ["http"]]
    assert "do not fit the sampled types" in caplog.text  # corrected in the fast path
    assert "reading line by line" not in caplog.text
    s = t.frame.schema
    assert (s["process.pid"], s["process.args"], s["process.title"], s["score"], s["ok"]) == (
        pl.String, pl.List(pl.String), pl.List(pl.String), pl.Float64, pl.String)
    last = t.frame.row(n - 1, named=True)
    assert (last["process.pid"], last["process.args"], last["process.title"], last["score"],
            last["ok"]) == ("n/a", ["ssh", "-i"], ["x", "1"], 0.5, "yes")
    first = t.frame.row(12_345, named=True)
    assert (first["process.pid"], first["process.args"], first["process.title"], first["score"],
            first["ok"]) == ("12345", ["ssh"], ["t"], 12345.0, "true")


def test_nested_arrays_late_in_a_file_are_flattened(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0)
    lines = [{"tags": ["a", "b"], "other": "x"} for _ in range(12_000)]  # beyond the sampled head
    lines.append({"tags": ["c", ["d"]], "other": [[1], 2]})
    f = write(tmp_path / "e.ndjson", lines)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        t = load_events([f], ["tags", "other"])
    assert "nested arrays; reading line by line" in caplog.text
    assert col(t, "tags")[-2:] == [["a", "b"], ["c", "d"]]
    assert col(t, "other")[-2:] == [["x"], ["1", "2"]]


def test_string_lists_read_as_lists_with_late_scalars_and_odd_elements(tmp_path, monkeypatch, caplog):
    # lists of strings are declared VARCHAR[]; a scalar past the sample makes DuckDB refuse that,
    # and the fields are read again as JSON text, not line by line
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0)
    lines = [{"args": ["ssh", "-i"], "n": 1} for _ in range(12_000)]
    lines += [{"args": [1, True, None, {"k": "v"}]}, {"args": "scalar"}, {"args": []}, {"n": 2}]
    f = write(tmp_path / "e.ndjson", lines)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        t = load_events([f], ["args", "n"])
    assert "reading list fields as JSON" in caplog.text and "line by line" not in caplog.text
    assert col(t, "args")[-5:] == [["ssh", "-i"], ["1", "true", None, '{"k":"v"}'], ["scalar"], [], None]
    clean = write(tmp_path / "c.ndjson", lines[:12_000] + [{"args": ["x", 2]}])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        t = load_events([clean], ["args"])
    assert "reading" not in caplog.text  # the typed read took it all
    assert col(t, "args")[-1] == ["x", "2"]


def test_dotted_keys_anywhere_in_a_file_are_read_and_their_absence_is_detected(tmp_path, monkeypatch):
    from trailhound.sources.ecs_readers import has_dotted_keys
    from trailhound.sources.inputs import Source

    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0)
    lines = [{"process": {"name": "ssh", "args": ["a.b"]}, "message": "k.v: 1"} for _ in range(12_000)]
    nested = write(tmp_path / "n.ndjson", lines)
    late = write(tmp_path / "d.ndjson", lines + [{"process.name": "scp", "process": {"parent.name": "sh"}}])
    import duckdb

    with duckdb.connect() as con:
        assert not has_dotted_keys(con, Source.open(str(nested))) and has_dotted_keys(con, Source.open(str(late)))
        ctrl = tmp_path / "ctrl.ndjson"  # a \x01 byte: DuckDB cannot split it, Python scans
        ctrl.write_text('{"a": "x\u0001"}\n{"b": "\x01", "c.d": 1}\n')
        assert has_dotted_keys(con, Source.open(str(ctrl)))
    t = load_events([nested, late], ["process.name", "process.parent.name"])
    assert col(t, "process.name")[-1] == "scp" and col(t, "process.parent.name")[-1] == "sh"
    assert col(t, "process.name")[:2] == ["ssh", "ssh"] and t.frame.height == 24_001


def test_guess_from_one_file_widened_by_another(tmp_path, monkeypatch):
    # a.ndjson is read by DuckDB with types guessed from itself; b.ndjson, small, line by line.
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 1000)
    a = write(tmp_path / "a.ndjson", [{"x": 1.5, "y": 1, "z": True}, {"x": 1, "y": 2 ** 62},
                                      {"x": 2 ** 63, "pad": "p" * 1000}])
    b = write(tmp_path / "b.ndjson", [{"x": "s", "y": [2], "z": "no"}])
    t = load_events([a, b], ["x", "y", "z"])
    assert col(t, "x") == ["1.5", "1", "9223372036854775808", "s"]  # as the JSON text has them
    assert col(t, "y") == [[1], [2 ** 62], None, [2]]
    assert col(t, "z") == ["true", None, None, "no"]


def test_a_bad_line_in_a_large_file_falls_back_with_exact_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0)
    lines = [{"n": i} for i in range(3000)]
    lines[2500] = '{"n": 2500,'
    f = write(tmp_path / "e.ndjson", lines)
    t = load_events([f], ["n"])
    assert t.report.events == 2999
    assert [(s.line, s.reason[:12]) for s in t.report.skipped] == [(2501, "invalid JSON")]
    assert t.documents([2500]) == [{"n": 2501}]


TRICKY = [
    {"@timestamp": "2024-05-01T00:00:00Z", "process": {"name": "ssh", "pid": 10,
     "args": ["ssh", "-i", "k"]}, "event": {"category": "process", "type": ["start"]},
     "mixed": 1, "f": 1, "o": {"k": 1}, "b": True, "s": "[kworker/0:1]", "u": "é \u2028 \\ \""},
    {"@timestamp": "2024-05-01T00:00:01Z", "process.name": "scp", "process.pid": 2 ** 62,
     "process": {"args": "single"}, "event.category": ["process", "network"],
     "mixed": "text", "f": 2.5, "o": "scalar", "b": False, "s": "[1]"},
    {"process": {"parent.pid": 1}, "mixed": 1e16, "f": 1e-7, "o": {"k": [1.0, None]},
     "b": None, "s": ["a", None], "event": {"type": []}},
    {"mixed": False, "f": None, "event": {"type": None, "category": [None]}},
    {"mixed": {"deep": {"x": 123456789012345678}}, "s": 5, "b": True},
]


def test_both_readers_produce_identical_frames(tmp_path, monkeypatch, caplog):
    tricky = write(tmp_path / "tricky.ndjson", TRICKY)
    # For fields=None a field may not be both an object and a scalar on the DuckDB side.
    plain = write(tmp_path / "plain.ndjson", [{k: v for k, v in doc.items() if k not in ("o", "mixed")}
                                              for doc in TRICKY])
    fields = ["@timestamp", "process.name", "process.pid", "process.args", "process.parent.pid",
              "event.category", "event.type", "mixed", "f", "o", "b", "s", "u", "absent"]
    caplog.set_level(logging.INFO, logger=LOGGER)
    frames = {}
    for name in ("duckdb", "python"):
        use_reader(name, monkeypatch)
        frames[name] = load_events([tricky], fields).frame
        frames[name + "-all"] = load_events([plain]).frame
    assert "reading line by line" not in caplog.text
    assert frames["duckdb"].equals(frames["python"])
    assert frames["duckdb-all"].equals(frames["python-all"])
    assert frames["duckdb"].equals(events_from_documents(TRICKY, fields).frame)
    got = frames["duckdb"].row(2, named=True)
    assert (got["mixed"], got["f"], got["o"]) == ("1e+16", 1e-7, '{"k":[1.0,null]}')
    assert frames["duckdb"]["s"].to_list() == [["[kworker/0:1]"], ["[1]"], ["a", None], None, ["5"]]
    assert frames["duckdb"]["process.pid"].to_list() == [10, 2 ** 62, None, None, None]
    assert "absent" not in frames["duckdb"].columns
