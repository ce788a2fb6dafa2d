"""`trailhound hunt --sink SPEC`: specs checked before the work (exit 2 with the reason), alerts
sent to every sink, delivery figures on stderr and in --summary, and exit 2 when a sink did not
deliver every alert."""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app

from helpers import rule, write_case

EVENTS = [{"@timestamp": f"2026-01-01T00:00:0{i}Z", "event": {"category": "process"}, "process": {"name": "ssh"},
           "host": {"name": "h1"}, "user": {"name": "u1"}} for i in range(3)]


def hunt(tmp_path, *args: str):
    data, rules = write_case(tmp_path, EVENTS, {"r.toml": rule()})
    return CliRunner().invoke(app, ["hunt", "--rules", str(rules), str(data), *args])


def test_bad_specs_exit_2_before_the_work(tmp_path):
    for spec, why in (("kafka:x", "unknown sink"), (f"ndjson:{tmp_path}/no/dir/a.ndjson", "does not exist"),
                      (f"syslog:unix://{tmp_path}/nothing", "no socket"),
                      ("webhook:http://u:p@127.0.0.1/x", "credentials")):
        res = hunt(tmp_path, "--sink", spec)
        assert res.exit_code == 2, res.output
        assert f"--sink '{spec}':" in res.output and why in res.output and "alerts from" not in res.output


def test_a_sink_cannot_write_what_another_output_writes(tmp_path):
    out = tmp_path / "alerts.ndjson"
    res = hunt(tmp_path, "--out", str(out), "--sink", f"ndjson:{out}")
    assert res.exit_code == 2 and "another output writes this file" in res.output
    res = hunt(tmp_path, "--format", "ndjson", "--sink", "stdout")
    assert res.exit_code == 2 and "standard output already" in res.output
    res = hunt(tmp_path, "--sink", "syslog:udp://127.0.0.1:9", "--sink", "syslog:udp://127.0.0.1:9")
    assert res.exit_code == 2 and "given twice" in res.output


def test_alerts_go_to_every_sink_and_the_figures_are_reported(tmp_path):
    rotating = tmp_path / "rot" / "alerts.ndjson"
    rotating.parent.mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(5)
        summary = tmp_path / "summary.json"
        res = hunt(tmp_path, "--sink", f"file:{rotating}?max_bytes=1k&keep=9",
                   "--sink", f"syslog:udp://127.0.0.1:{udp.getsockname()[1]}", "--summary", str(summary))
        got = [udp.recv(65535) for _ in range(3)]
    assert res.exit_code == 1, res.output  # alerts raised, all delivered
    files = sorted(rotating.parent.iterdir())
    uuids = {json.loads(line)["kibana.alert.uuid"] for f in files for line in f.read_text().splitlines()}
    assert len(uuids) == 3 and len(files) >= 2  # rotated at 1 KiB
    assert all(b"[trailhound@32473 uuid=" in g for g in got)
    assert "3 alerts delivered" in res.output
    sinks = json.loads(summary.read_text())["sinks"]
    assert [(s["sink"].split(":")[0], s["delivered"], s["failed"]) for s in sinks] == [("file", 3, 0), ("syslog", 3, 0)]


def test_an_undelivered_alert_exits_2_and_says_why(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spool = tmp_path / "spool"
    summary = tmp_path / "summary.json"
    res = hunt(tmp_path, "--exit-zero", "--summary", str(summary),
               "--sink", f"webhook:http://127.0.0.1:{port}/x?attempts=2&backoff=0.01&spool={spool}")
    assert res.exit_code == 2, res.output  # --exit-zero never hides it
    assert "3 spooled" in res.output and "unreachable" in res.output and "wait in the spool" in res.output
    assert json.loads(summary.read_text())["sinks"][0]["spooled"] == 3

    received: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.extend(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:  # the endpoint is back: the next run sends the spool, then its own alerts (the same ids again)
        res = hunt(tmp_path, "--sink", f"webhook:http://127.0.0.1:{port}/x?spool={spool}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert res.exit_code == 1, res.output
    assert len(received) == 6 and len({a["kibana.alert.uuid"] for a in received}) == 3
    assert "6 alerts delivered" in res.output


def test_the_help_names_the_sinks():
    res = CliRunner().invoke(app, ["hunt", "--help"], env={"COLUMNS": "200"})
    assert "--sink" in res.output and "syslog:udp://" in res.output and "elasticsearch:" in res.output


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to fill a disk")
def test_a_full_disk_under_out_is_counted_and_exits_2(tmp_path):
    summary = tmp_path / "summary.json"
    res = hunt(tmp_path, "--out", "/dev/full", "--summary", str(summary))
    assert res.exit_code == 2, res.output
    assert "3 not delivered" in res.output and "No space left on device" in res.output
    assert json.loads(summary.read_text())["sinks"] == [
        {"sink": "/dev/full", "delivered": 0, "duplicates": 0, "spooled": 0, "failed": 3, "retries": 0,
         "problems": ["cannot write /dev/full: No space left on device"], "problem_count": 1}]
