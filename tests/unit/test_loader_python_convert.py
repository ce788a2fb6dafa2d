"""The loader converts the JSON text columns of documents Python read (raw logs, small NDJSON files)
in Python where that is exact, and in DuckDB otherwise: both must give the same frame."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from trailhound.sources import ecs_json, events_from_documents, load_events

LAB = Path(__file__).resolve().parents[1] / "fixtures" / "lab"

# every column of one kind: the Python conversion applies
SIMPLE = [
    {"@timestamp": "2026-01-01T00:00:00Z", "s": "plain", "i": 0, "b": True, "tags": ["a", None, "b"],
     "one": "scalar in a list column", "u": "tab\t \"quote\" back\\slash \u00e9 \U0001f511 nul\u0000"},
    {"@timestamp": "2026-01-01T00:00:01Z", "s": "", "i": -(1 << 63), "b": False, "tags": [], "one": ["x", "y"]},
    {"@timestamp": "2026-01-01T00:00:02Z", "i": (1 << 63) - 1, "tags": None, "one": [], "nested": {"k": "v"}},
    {"@timestamp": "2026-01-01T00:00:03Z", "s": None, "tags": ["c"], "only_null": None},
]
# a column DuckDB must render: numbers and objects in a String column, floats, bools beside ints
MIXED = [
    [{"m": "text"}, {"m": 12}],
    [{"m": 1.5}, {"m": 2}],
    [{"m": {"a": 1}}, {"m": "b"}],
    [{"m": 1e16}],
    [{"m": [1, "a"]}, {"m": True}],
    [{"m": True}, {"m": 3}],
]


def python_conversions(monkeypatch) -> list[bool]:
    """Record, per conversion, whether the Python path gave the frame."""
    seen: list[bool] = []
    real = ecs_json._python_frame

    def spy(parts, final):
        frame = real(parts, final)
        seen.append(frame is not None)
        return frame

    monkeypatch.setattr(ecs_json, "_python_frame", spy)
    return seen


def with_duckdb_only(monkeypatch, load):
    with monkeypatch.context() as m:
        m.setattr(ecs_json, "_python_frame", lambda parts, final: None)
        return load()


def assert_same(a, b) -> None:
    assert a.frame.schema == b.frame.schema
    assert a.frame.equals(b.frame), (a.frame, b.frame)
    assert a.present == b.present


def test_simple_columns_convert_in_python_as_duckdb_does(monkeypatch):
    seen = python_conversions(monkeypatch)
    table = events_from_documents(SIMPLE)
    assert seen == [True]
    assert_same(table, with_duckdb_only(monkeypatch, lambda: events_from_documents(SIMPLE)))
    rows = table.frame.to_dicts()
    assert rows[0]["one"] == ["scalar in a list column"] and rows[1]["one"] == ["x", "y"]
    assert rows[0]["tags"] == ["a", None, "b"] and rows[2]["tags"] is None
    assert rows[1]["i"] == -(1 << 63) and rows[0]["u"].endswith("nul\u0000")
    assert "only_null" not in table.present  # no value: no mapping, as before


@pytest.mark.parametrize("docs", MIXED, ids=["str-and-int", "float", "object", "1e16", "array-mix", "bool-int"])
def test_columns_duckdb_renders_stay_with_duckdb(monkeypatch, docs):
    seen = python_conversions(monkeypatch)
    table = events_from_documents(docs)
    assert seen == [False]
    assert_same(table, with_duckdb_only(monkeypatch, lambda: events_from_documents(docs)))


def test_lab_capture_every_field(monkeypatch):
    """The bundled capture (auditd and sshd logs), every field loaded, both ways."""
    files = sorted(glob.glob(str(LAB / "*" / "audit.log"))) + sorted(glob.glob(str(LAB / "*" / "auth.log")))
    assert files
    seen = python_conversions(monkeypatch)
    table = load_events(files, None)
    assert_same(table, with_duckdb_only(monkeypatch, lambda: load_events(files, None)))
    # the fields a hunt of the SSH pack loads are all of one kind each: Python converts them
    seen.clear()
    fields = ["@timestamp", "event.action", "event.category", "process.args", "process.args_count",
              "process.name", "user.name", "source.ip"]
    assert_same(load_events(files, fields), with_duckdb_only(monkeypatch, lambda: load_events(files, fields)))
    assert seen == [True]


def test_documents_kept_plain_then_compressed_read_back_the_same(monkeypatch):
    """Non-ECS documents are kept as JSON text up to a budget, compressed after it: both read back."""
    files = [str(LAB / "brute_force" / "audit.log"), str(LAB / "brute_force" / "auth.log")]
    plain = load_events(files, ["process.name"])
    monkeypatch.setattr(ecs_json, "_PLAIN_DOCUMENT_BYTES", 50_000)  # the budget runs out in the first file
    mixed = load_events(files, ["process.name"])
    rows = list(range(plain.frame.height))
    assert plain.documents(rows) == mixed.documents(rows)
    blobs = [b for origin in mixed._origins for b in origin.docs]
    assert blobs[0][:1] == b"{" and blobs[-1][:1] != b"{"  # plain first, compressed once over the budget
    assert all(b[:1] == b"{" for origin in plain._origins for b in origin.docs)
