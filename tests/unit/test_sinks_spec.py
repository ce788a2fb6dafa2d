"""`--sink SPEC`: parsing, the checks made before the work, and the rotating NDJSON file."""

from __future__ import annotations

import json
import os
import socket

import pytest

from trailhound.sinks import SinkSpecError, parse_sink
from trailhound.sinks.rotating import RotatingNdjsonSink
from trailhound.sinks.spec import parse_size


def test_specs_parse_into_kind_target_and_options():
    s = parse_sink("file:/var/log/trailhound/alerts.ndjson?max_bytes=100M&keep=5")
    assert (s.kind, s.target, s.options) == ("ndjson", "/var/log/trailhound/alerts.ndjson",
                                              {"max_bytes": 100 << 20, "keep": 5})
    assert parse_sink("ndjson:-").target == "-" and parse_sink("stdout").target == "-"
    assert parse_sink("ndjson:odd?name.ndjson").target == "odd?name.ndjson"  # not options: part of the name
    u = parse_sink("syslog:udp://127.0.0.1:5514?facility=auth")
    assert (u.transport, u.target, u.options) == ("udp", "127.0.0.1:5514", {"facility": "auth"})
    assert parse_sink("syslog:unix:///dev/log").target == "/dev/log"
    t = parse_sink("syslog:tcp://[::1]:6514?framing=lf&max_size=4k")
    assert t.options == {"framing": "lf", "max_size": 4096}
    w = parse_sink("webhook:http://127.0.0.1:8080/alerts?token=abc&batch=10&spool=off")
    assert w.target == "http://127.0.0.1:8080/alerts?token=abc"  # the endpoint's own query stays in its URL
    assert w.options == {"batch": 10, "spool": "off"}
    e = parse_sink("elasticsearch:https://es.local:9200?index=alerts-x&refresh=wait_for")
    assert (e.target, e.options) == ("https://es.local:9200", {"index": "alerts-x", "refresh": "wait_for"})


@pytest.mark.parametrize("spec, reason", [
    ("kafka:localhost:9092", "unknown sink"),
    ("nothing", "unknown sink"),
    ("ndjson:", "missing"),
    ("ndjson:a.ndjson?keep=3", "keep= needs max_bytes="),
    ("ndjson:a.ndjson.gz?max_bytes=1M", "not compressed"),
    ("ndjson:-?max_bytes=1M", "cannot rotate"),
    ("file:a.ndjson?max_bytes=lots", "not a size"),
    ("syslog:127.0.0.1:514", "syslog needs unix://"),
    ("syslog:udp://127.0.0.1:99999", "port"),
    ("syslog:udp://:514", "a host is needed"),
    ("syslog:unix://dev/log", "absolute"),
    ("syslog:udp://127.0.0.1:514?facility=nope", "unknown facility"),
    ("syslog:tcp://127.0.0.1:514?framing=nul", "framing"),
    ("syslog:udp://127.0.0.1?max_size=100", "max_size"),
    ("syslog:udp://127.0.0.1?colour=red", "unknown option 'colour'"),
    ("webhook:ftp://example.org/x", "http:// or https://"),
    ("webhook:http://user:secret@127.0.0.1/x", "credentials"),
    ("webhook:http://127.0.0.1/x?batch=0", "at least 1"),
    ("webhook:http://127.0.0.1/x#frag", "fragment"),
    ("elasticsearch:http://127.0.0.1:9200?index=Alerts", "index name"),
    ("elasticsearch:http://127.0.0.1:9200?indx=a", "unknown option 'indx'"),
    ("elasticsearch:http://elastic:changeme@127.0.0.1:9200", "TRAILHOUND_ES_API_KEY"),
    ("elasticsearch:http://127.0.0.1:9200?attempts=2&attempts=3", "twice"),
    ("elasticsearch:http://127.0.0.1:9200?api_key_env=1BAD", "environment variable name"),
])
def test_bad_specs_say_why(spec, reason):
    with pytest.raises(SinkSpecError, match=reason.replace("?", r"\?")):
        parse_sink(spec)


def test_a_home_directory_is_expanded(monkeypatch):
    monkeypatch.setenv("HOME", "/home/analyst")
    assert parse_sink("ndjson:~/alerts.ndjson").target == "/home/analyst/alerts.ndjson"
    assert parse_sink("webhook:http://127.0.0.1/x?spool=~/spool").options["spool"] == "/home/analyst/spool"


def test_sizes():
    assert [parse_size(v) for v in ("4096", "4k", "100M", "1GiB", "2mb")] == [4096, 4096, 100 << 20, 1 << 30, 2 << 20]
    with pytest.raises(SinkSpecError):
        parse_size("0")


def test_problems_are_found_before_the_work(tmp_path, monkeypatch):
    assert "does not exist" in parse_sink(f"ndjson:{tmp_path}/no/such/dir/a.ndjson").problem()
    assert parse_sink(f"ndjson:{tmp_path}/a.ndjson").problem() is None
    data = tmp_path / "events.ndjson"
    data.write_text("{}\n")
    assert "one of the inputs" in parse_sink(f"ndjson:{data}").problem([data])
    assert "no socket" in parse_sink(f"syslog:unix://{tmp_path}/log").problem()
    assert "not a socket" in parse_sink(f"syslog:unix://{data}").problem()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(tmp_path / "log"))
        assert parse_sink(f"syslog:unix://{tmp_path}/log").problem() is None
    assert "cannot resolve the host 'no-such-host.invalid'" in parse_sink("syslog:udp://no-such-host.invalid").problem()
    assert "cannot resolve" in parse_sink("webhook:http://no-such-host.invalid/x").problem()
    assert parse_sink("elasticsearch:http://localhost:9200").problem() is None
    assert "not a directory" in parse_sink(f"webhook:http://127.0.0.1:1/x?spool={data}").problem()
    monkeypatch.delenv("MY_KEY", raising=False)
    assert "MY_KEY is not set" in parse_sink("elasticsearch:http://127.0.0.1:9200?api_key_env=MY_KEY").problem()
    monkeypatch.setenv("MY_KEY", "k")
    assert parse_sink("elasticsearch:http://127.0.0.1:9200?api_key_env=MY_KEY").problem() is None
    monkeypatch.setenv("TRAILHOUND_ES_USERNAME", "elastic")
    monkeypatch.delenv("TRAILHOUND_ES_PASSWORD", raising=False)
    assert "needs both" in parse_sink("elasticsearch:http://127.0.0.1:9200").problem()


def _alert(i: int, pad: int = 0) -> dict:
    return {"kibana.alert.uuid": f"u{i}", "n": i, "pad": "x" * pad}


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rotation_by_size_never_splits_a_document(tmp_path):
    path = tmp_path / "alerts.ndjson"
    sink = parse_sink(f"file:{path}?max_bytes=300&keep=2").open()
    for batch in range(6):
        sink.write([_alert(batch * 4 + k, pad=40) for k in range(4)])
    sink.close()
    files = [path, tmp_path / "alerts.ndjson.1", tmp_path / "alerts.ndjson.2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files)  # .3 and older: deleted
    for f in files:
        assert f.stat().st_size <= 300
        assert f.read_bytes().endswith(b"\n")
        _lines(f)  # every line a whole document
    kept = [d["n"] for f in reversed(files) for d in _lines(f)]
    assert kept == list(range(24 - len(kept), 24))  # the newest, in order, none missing in between
    assert sink.delivery.delivered == 24 and sink.delivery.complete and sink.rotations >= 5


def test_a_document_larger_than_max_bytes_gets_a_file_of_its_own(tmp_path):
    path = tmp_path / "a.ndjson"
    sink = RotatingNdjsonSink(path, 100, 3)
    sink.write([_alert(1), _alert(2, pad=500), _alert(3)])
    sink.close()
    assert [d["n"] for d in _lines(tmp_path / "a.ndjson.2")] == [1]
    assert [d["n"] for d in _lines(tmp_path / "a.ndjson.1")] == [2]
    assert [d["n"] for d in _lines(path)] == [3]


def test_a_restart_appends_and_ends_a_torn_line(tmp_path):
    path = tmp_path / "a.ndjson"
    path.write_bytes(b'{"n": 0}\n{"n": 1, "torn')  # a crash in mid-line
    sink = RotatingNdjsonSink(path, 1 << 20, 1)
    sink.write([_alert(2)])
    sink.close()
    lines = path.read_text().splitlines()
    assert lines[0] == '{"n": 0}' and lines[1] == '{"n": 1, "torn' and json.loads(lines[2])["n"] == 2


def test_keep_zero_keeps_only_the_current_file(tmp_path):
    path = tmp_path / "a.ndjson"
    sink = RotatingNdjsonSink(path, 60, 0)
    sink.write([_alert(i, pad=20) for i in range(5)])
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == ["a.ndjson"]
    assert [d["n"] for d in _lines(path)] == [4]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to fill a disk")
def test_a_write_error_is_counted_not_raised(tmp_path):
    path = tmp_path / "a.ndjson"
    sink = RotatingNdjsonSink(path, 1 << 20, 1)
    sink.write([_alert(1)])
    sink._out.close()
    sink._out = open("/dev/full", "ab")  # a full disk under the sink: writes fail with ENOSPC
    sink.write([_alert(2), _alert(3)])
    assert sink.delivery.failed == 2 and "No space left" in sink.delivery.problems[0]
    sink.write([_alert(4)])  # the next batch re-opens the file
    sink.close()
    assert [d["n"] for d in _lines(path)] == [1, 4]
    assert sink.delivery.delivered == 2 and not sink.delivery.complete


def test_a_restart_does_not_write_an_alert_the_file_holds(tmp_path):
    path = tmp_path / "a.ndjson"
    first = parse_sink(f"file:{path}?max_bytes=200&keep=3").open()
    first.write([_alert(i) for i in range(6)])  # rotates: the newest ids are in a.ndjson and a.ndjson.1
    first.close()
    again = parse_sink(f"file:{path}?max_bytes=200&keep=3").open()  # a watch resuming from an older checkpoint
    again.write([_alert(i) for i in range(3, 9)])
    again.close()
    files = [tmp_path / f"a.ndjson.{n}" for n in (3, 2, 1) if (tmp_path / f"a.ndjson.{n}").exists()] + [path]
    ids = [d["n"] for f in files for d in _lines(f)]
    assert ids == list(range(9)) and again.delivery.duplicates == 3 and again.delivery.delivered == 3


def test_append_true_appends_without_rotating(tmp_path):
    path = tmp_path / "a.ndjson"
    for start in (0, 2):
        s = parse_sink(f"ndjson:{path}?append=true").open()
        s.write([_alert(i, pad=300) for i in range(start, start + 3)])
        s.close()
    assert [d["n"] for d in _lines(path)] == [0, 1, 2, 3, 4] and s.delivery.duplicates == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.ndjson"]
    with pytest.raises(SinkSpecError, match="true or false"):
        parse_sink(f"ndjson:{path}?append=yes")
