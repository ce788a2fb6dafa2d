"""The webhook sink against a local HTTP server the tests start on 127.0.0.1: down, 500s, 429 with
Retry-After, slow, refusing, then up; the spool keeps what could not be sent, across restarts,
and says when it is full."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trailhound.sinks import SinkError, parse_sink
from trailhound.sinks.webhook import Spool, WebhookSink


class Endpoint:
    """An HTTP server answering POSTs from a script: each request takes the next step ("ok", an
    int status, ("retry-after", seconds), ("slow", seconds)); once the script is used up, 200.
    Every request's body is kept, with the step it got."""

    def __init__(self, port: int = 0, script=()) -> None:
        self.script = list(script)
        self.requests: list[tuple[object, list]] = []
        self.headers: list[dict] = []
        self.raw: list[bytes] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                step = endpoint.script.pop(0) if endpoint.script else "ok"
                endpoint.requests.append((step, json.loads(body)))
                endpoint.headers.append(dict(self.headers))
                endpoint.raw.append(body)
                if isinstance(step, tuple) and step[0] == "slow":
                    time.sleep(step[1])
                    step = "ok"
                if isinstance(step, tuple):  # retry-after
                    self.send_response(429)
                    self.send_header("Retry-After", str(step[1]))
                elif isinstance(step, int):
                    self.send_response(step)
                else:
                    self.send_response(200)
                reply = b'{"error": "nope"}' if isinstance(step, int) else b"{}"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                try:
                    self.wfile.write(reply)
                except BrokenPipeError:  # the slow step: the client gave up waiting
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def delivered(self) -> list[str]:
        """uuids of the alerts in requests answered 200, in arrival order."""
        return [a["kibana.alert.uuid"] for step, body in self.requests
                if step == "ok" or (isinstance(step, tuple) and step[0] == "slow") for a in body]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def endpoints():
    started: list[Endpoint] = []

    def start(port: int = 0, script=()) -> Endpoint:
        e = Endpoint(port, script)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alerts(start: int, n: int) -> list[dict]:
    return [{"kibana.alert.uuid": f"a{i}", "kibana.alert.rule.name": "r", "n": i} for i in range(start, start + n)]


def sink(port: int, spool, **options) -> WebhookSink:
    query = "&".join(f"{k}={v}" for k, v in {"attempts": 3, "backoff": 0.01, "max_backoff": 0.05,
                                                 "timeout": 2, "spool": spool, **options}.items())
    s = parse_sink(f"webhook:http://127.0.0.1:{port}/alerts?{query}").open()
    assert isinstance(s, WebhookSink)
    return s


def test_batches_are_json_arrays_of_at_most_batch_alerts(endpoints, tmp_path):
    e = endpoints()
    s = sink(e.port, tmp_path / "spool", batch=2)
    s.write(alerts(0, 5))
    s.close()
    assert [len(body) for _, body in e.requests] == [2, 2, 1]
    assert e.delivered() == [f"a{i}" for i in range(5)]
    assert e.headers[0]["Content-Type"] == "application/json"
    assert s.delivery.delivered == 5 and s.delivery.complete


def test_500s_then_up(endpoints, tmp_path):
    e = endpoints(script=[500, 503])
    s = sink(e.port, tmp_path / "spool")
    s.write(alerts(0, 2))
    s.close()
    assert [step for step, _ in e.requests] == [500, 503, "ok"]
    assert e.delivered() == ["a0", "a1"] and (s.delivery.delivered, s.delivery.retries) == (2, 2)


def test_429_retry_after_is_honoured(endpoints, tmp_path):
    e = endpoints(script=[("retry-after", 1)])
    s = sink(e.port, tmp_path / "spool")
    t0 = time.monotonic()
    s.write(alerts(0, 1))
    waited = time.monotonic() - t0
    s.close()
    assert waited >= 0.95  # the server's 1 s, not the 0.01 s backoff
    assert e.delivered() == ["a0"] and s.delivery.complete


def test_a_slow_endpoint_times_out_and_is_retried(endpoints, tmp_path):
    e = endpoints(script=[("slow", 1.0)])
    s = sink(e.port, tmp_path / "spool", timeout=0.3)
    s.write(alerts(0, 1))
    s.close()
    assert s.delivery.delivered == 1 and s.delivery.retries >= 1 and s.delivery.complete
    assert len(e.requests) >= 2  # at least once: the slow request may land too; receivers dedupe on the uuid


def test_a_refusal_is_counted_and_reported_not_spooled(endpoints, tmp_path):
    e = endpoints(script=[400])
    s = sink(e.port, tmp_path / "spool")
    s.write(alerts(0, 3))
    s.write(alerts(3, 1))
    s.close()
    d = s.delivery
    assert (d.delivered, d.failed, d.spooled) == (1, 3, 0) and len(e.requests) == 2
    assert "refused 3 alerts: HTTP 400" in d.problems[0] and "nope" in d.problems[0]


def test_down_then_up_across_a_restart_loses_nothing_and_sends_the_spool_first(endpoints, tmp_path):
    port, spool = free_port(), tmp_path / "spool"
    s = sink(port, spool)  # nothing listens: connection refused
    s.write(alerts(0, 2))
    s.write(alerts(2, 1))  # the endpoint counts as down: straight to the spool
    s.close()
    assert (s.delivery.delivered, s.delivery.spooled, s.delivery.failed) == (0, 3, 0)
    assert any("unreachable" in p for p in s.delivery.problems)
    assert any("3 alerts wait in the spool" in p for p in s.delivery.problems)
    assert len(list(spool.glob("*.json"))) == 2
    e = endpoints(port)  # it comes back; a new process (a restart) uses the same spool
    s2 = sink(port, spool)
    s2.write(alerts(3, 2))
    s2.close()
    assert e.delivered() == ["a0", "a1", "a2", "a3", "a4"]  # the spool first, in order, then the new alerts
    assert s2.delivery.delivered == 5 and s2.delivery.complete and not list(spool.glob("*.json"))


def test_the_spool_is_sent_at_close_even_without_new_alerts(endpoints, tmp_path):
    port, spool = free_port(), tmp_path / "spool"
    s = sink(port, spool, attempts=1)
    s.write(alerts(0, 1))
    s.close()
    e = endpoints(port, script=[500])  # back, but failing once
    s2 = sink(port, spool)
    s2.close()
    assert e.delivered() == ["a0"] and s2.delivery.complete


def test_a_full_spool_says_so_and_counts_what_it_dropped(tmp_path):
    port, spool = free_port(), tmp_path / "spool"
    s = sink(port, spool, attempts=1, spool_max=150)
    s.write(alerts(0, 1))  # ~70 bytes: kept
    s.write(alerts(1, 3))  # does not fit: dropped, loudly
    s.close()
    d = s.delivery
    assert (d.spooled, d.failed) == (1, 3) and not d.complete
    assert any("is full" in p and "spool_max" in p for p in d.problems)


def test_spool_off_counts_failures(tmp_path):
    s = sink(free_port(), "off", attempts=2)
    s.write(alerts(0, 2))
    s.close()
    assert (s.delivery.failed, s.delivery.spooled) == (2, 0)


def test_one_process_at_a_time_holds_a_spool(tmp_path):
    first = Spool(tmp_path / "spool", 1 << 20)
    with pytest.raises(SinkError, match="in use by another"):
        Spool(tmp_path / "spool", 1 << 20)
    first.close()
    Spool(tmp_path / "spool", 1 << 20).close()


def test_a_write_cut_short_by_a_crash_is_not_sent(endpoints, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / ".tmp-0000000000000001").write_bytes(b'[{"kibana.alert.uuid": "half')
    (spool / "0000000000000002-1.json").write_bytes(b'[{"kibana.alert.uuid": "whole"}]')
    e = endpoints()
    s = sink(e.port, spool)
    s.close()
    assert e.delivered() == ["whole"] and list(spool.iterdir()) == [spool / ".lock"]


def test_token_and_signature_from_the_environment(endpoints, tmp_path, monkeypatch):
    import hashlib
    import hmac

    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    assert "HOOK_TOKEN (token_env) is not set" in parse_sink("webhook:http://127.0.0.1/x?token_env=HOOK_TOKEN").problem()
    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    monkeypatch.setenv("HOOK_KEY", "k3y")
    e = endpoints()
    s = sink(e.port, tmp_path / "spool", token_env="HOOK_TOKEN", secret_env="HOOK_KEY")
    s.write(alerts(0, 1))
    s.close()
    assert e.headers[0]["Authorization"] == "Bearer s3cret"
    expected = hmac.new(b"k3y", e.raw[0], hashlib.sha256).hexdigest()
    assert e.headers[0]["X-Trailhound-Signature"] == f"sha256={expected}"


def test_retry_spool_sends_when_the_endpoint_is_due(endpoints, tmp_path):
    port = free_port()
    s = sink(port, tmp_path / "spool", attempts=1, max_backoff=0.2)
    s.write(alerts(0, 1))
    e = endpoints(port)
    assert s.retry_spool() is False and e.requests == []  # counted down for max_backoff: not tried yet
    time.sleep(0.25)
    assert s.retry_spool() is True and e.delivered() == ["a0"]
    s.close()
    assert s.delivery.complete


def test_a_keep_alive_connection_closed_while_idle_is_reopened_without_a_retry(tmp_path):
    got: list = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keeps the connection open between requests...
        timeout = 0.2  # ...and closes it after 0.2 s idle, as servers do

        def do_POST(self):  # noqa: N802 - http.server's name
            got.extend(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        s = sink(server.server_address[1], tmp_path / "spool", backoff=5)
        s.write(alerts(0, 1))
        time.sleep(0.6)  # the server has closed the idle connection
        t0 = time.monotonic()
        s.write(alerts(1, 1))
        assert time.monotonic() - t0 < 2  # no backoff wait (5 s)
        s.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert [a["n"] for a in got] == [0, 1] and s.delivery.retries == 0


def test_retry_after_and_the_jittered_backoff():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from trailhound.sinks.delivery import Retry, retry_after

    assert retry_after("7") == 7.0 and retry_after(None) is None and retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after(later) <= 30
    r = Retry(backoff=1, max_backoff=8, max_retry_after=60)
    for attempt, d in enumerate([1, 2, 4, 8, 8]):
        waits = [r.wait(attempt) for _ in range(200)]
        assert all(d / 2 <= w <= d for w in waits) and len(set(waits)) > 1  # jittered, within [d/2, d]
    assert r.wait(0, retry_after=600) == 60  # a server's Retry-After, capped


def test_the_spool_keeps_its_size_and_order_across_a_reopen(tmp_path):
    spool = Spool(tmp_path / "spool", 100)
    assert spool.put(b"x" * 40, 1) and spool.put(b"y" * 40, 2) and not spool.put(b"z" * 40, 3)
    spool.remove(spool.entries()[0])
    assert spool.size() == 40 and spool.put(b"z" * 40, 3)
    spool.close()
    again = Spool(tmp_path / "spool", 100)
    assert again.size() == 80 and again.alerts() == 5 and not again.put(b"w" * 40, 1)
    assert [e.read_bytes()[:1] for e in again.entries()] == [b"y", b"z"]
    assert again.put(b"w" * 20, 1) and again.entries()[-1].name.startswith("0000000000000004-")
    again.close()
