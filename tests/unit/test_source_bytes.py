"""`Source.from_bytes`: a file whose bytes were read elsewhere (a Spark task's file of any filesystem) is
recognized and loaded as the same file opened by path, named by its URI in reports and errors."""

from __future__ import annotations

import bz2
import gzip
import json
import os

import pytest

from trailhound.sources import SourceError, load_events
from trailhound.sources.inputs import Source

EVENTS = [{"@timestamp": f"2026-01-01T00:00:0{i}Z", "event": {"category": "process"}, "process": {"name": n}}
          for i, n in enumerate(["ssh", "scp", "sshd"])]
NDJSON = ("\n".join(json.dumps(e) for e in EVENTS) + "\n{broken\n").encode()
URI = "s3a://logs/2026/12/events.ndjson"


@pytest.mark.parametrize("pack", [lambda b: b, gzip.compress, bz2.compress,
                                  lambda b: b"\xff\xfe" + b.decode().encode("utf-16-le")],
                         ids=["plain", "gzip", "bzip2", "utf-16"])
def test_bytes_load_as_the_same_file_by_path(tmp_path, pack):
    data = pack(NDJSON)
    path = tmp_path / "events.ndjson"
    path.write_bytes(data)
    by_path = load_events([str(path)])
    by_bytes = load_events([Source.from_bytes(data, URI, mtime=1_700_000_000.0)])
    assert by_bytes.frame.equals(by_path.frame)
    assert by_bytes.documents(list(range(3))) == by_path.documents(list(range(3)))
    assert [(s.file, s.line, s.reason) for s in by_bytes.report.skipped] == \
        [(URI, s.line, s.reason) for s in by_path.report.skipped]
    assert [(i.file, i.lines, i.events) for i in by_bytes.report.inputs] == [(URI, 4, 3)]


def test_the_name_and_time_are_the_callers(tmp_path):
    src = Source.from_bytes(b"{}\n", URI, mtime=1_700_000_000.0)
    assert (src.name, src.mtime, src.gzip) == (URI, 1_700_000_000.0, False)
    assert os.path.exists(src.path)  # the spool, open while the Source lives
    with pytest.raises(SourceError) as e:
        Source.from_bytes(b"\x1f\x8b\x08\x00not deflate data at all" * 3, URI)
    assert e.value.path == URI and "not a readable gzip file" in e.value.reason
    # the same reason as the same bytes opened by path
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00not deflate data at all" * 3)
    with pytest.raises(SourceError) as local:
        Source.open(str(bad))
    assert local.value.reason == e.value.reason


def test_what_is_a_uri(tmp_path, monkeypatch):
    from trailhound.spark.driver import is_uri

    assert is_uri("s3a://bucket/key") and is_uri("file:/tmp/x") and is_uri("file:///tmp/x")
    assert is_uri("viewfs://cluster/data/") and is_uri("hdfs://nn:8020/logs/*.gz")
    assert not is_uri("/var/log/audit/audit.log") and not is_uri("logs/a.log") and not is_uri("-")
    assert not is_uri("C:relative")  # no slash after the scheme: a path
    odd = tmp_path / "a:"
    (odd / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert not is_uri("a:/b")  # a local path that looks like one and exists stays a path
