"""The Elasticsearch `_bulk` sink against a local HTTP server that speaks enough of `_bulk`:
create actions into an index with conflicts (409) on existing ids, whole-request 429s and
per-item failures, and authentication headers."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trailhound.sinks import parse_sink
from trailhound.sinks.bulk import DEFAULT_INDEX, BulkSink


class FakeElasticsearch:
    """Stores created documents by (index, _id). `whole`: statuses for the next whole requests
    (429 with Retry-After: 1, or 5xx); `item_status`: _id → statuses its next creates get (429, 400...)."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict] = {}
        self.requests: list[list[tuple[dict, dict]]] = []
        self.paths: list[str] = []
        self.headers: list[dict] = []
        self.whole: list[int] = []
        self.item_status: dict[str, list[int]] = {}
        es = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                es.paths.append(self.path)
                es.headers.append(dict(self.headers))
                lines = raw.decode().splitlines()
                pairs = [(json.loads(a), json.loads(d)) for a, d in zip(lines[::2], lines[1::2])]
                es.requests.append(pairs)
                if es.whole:
                    status = es.whole.pop(0)
                    self._reply(status, {"error": {"type": "es_rejected_execution_exception"}, "status": status},
                                {"Retry-After": "1"} if status == 429 else {})
                    return
                items = []
                for action, doc in pairs:
                    meta = action["create"]
                    key = (meta["_index"], meta["_id"])
                    planned = es.item_status.get(meta["_id"])
                    if planned:
                        status = planned.pop(0)
                        error = {"type": "mapper_parsing_exception" if status == 400 else "rejected",
                                 "reason": f"failed to parse field [n] for {meta['_id']}"}
                        items.append({"create": {"_id": meta["_id"], "status": status, "error": error}})
                    elif key in es.docs:
                        items.append({"create": {"_id": meta["_id"], "status": 409,
                                                 "error": {"type": "version_conflict_engine_exception"}}})
                    else:
                        es.docs[key] = doc
                        items.append({"create": {"_id": meta["_id"], "status": 201, "result": "created"}})
                self._reply(200, {"took": 1, "errors": any(i["create"]["status"] >= 300 for i in items),
                                  "items": items})

            def _reply(self, status: int, body: dict, headers=None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def es(monkeypatch):
    for var in ("TRAILHOUND_ES_API_KEY", "TRAILHOUND_ES_USERNAME", "TRAILHOUND_ES_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    server = FakeElasticsearch()
    yield server
    server.stop()


def alerts(start: int, n: int, **extra) -> list[dict]:
    return [{"@timestamp": "2026-12-06T03:00:00Z", "kibana.alert.uuid": f"id-{i}", "kibana.alert.rule.name": "r",
             "n": i, **extra} for i in range(start, start + n)]


def sink(port: int, **options) -> BulkSink:
    query = "&".join(f"{k}={v}" for k, v in {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5, **options}.items())
    s = parse_sink(f"elasticsearch:http://127.0.0.1:{port}?{query}").open()
    assert isinstance(s, BulkSink)
    return s


def test_create_actions_with_the_alert_uuid_as_id(es):
    s = sink(es.port)
    s.write(alerts(0, 3, _id="event-id", _index="logs-x"))  # an input's metadata fields stay out of the source
    s.close()
    assert es.paths == ["/_bulk"]
    assert [a for a, _ in es.requests[0]] == [{"create": {"_index": DEFAULT_INDEX, "_id": f"id-{i}"}} for i in range(3)]
    stored = es.docs[(DEFAULT_INDEX, "id-1")]
    assert stored["kibana.alert.uuid"] == "id-1" and "_id" not in stored and "_index" not in stored
    assert es.headers[0]["Content-Type"] == "application/x-ndjson" and "Authorization" not in es.headers[0]
    assert (s.delivery.delivered, s.delivery.failed) == (3, 0)


def test_a_replay_is_idempotent(es):
    first = sink(es.port, index="alerts-test")
    first.write(alerts(0, 3))
    first.close()
    again = sink(es.port, index="alerts-test")
    again.write(alerts(0, 4))
    again.close()
    d = again.delivery
    assert (d.delivered, d.duplicates, d.failed) == (1, 3, 0) and d.complete
    assert len(es.docs) == 4 and all(index == "alerts-test" for index, _ in es.docs)


def test_a_whole_request_429_is_retried_after_retry_after(es):
    es.whole = [429, 503]
    s = sink(es.port, max_retry_after=0.2)  # the server's Retry-After: 1, capped for the test
    s.write(alerts(0, 2))
    s.close()
    assert len(es.requests) == 3 and s.delivery.delivered == 2 and s.delivery.retries == 2


def test_only_the_failed_items_are_sent_again(es):
    es.item_status = {"id-1": [429, 429], "id-3": [400]}
    s = sink(es.port)
    s.write(alerts(0, 5))
    s.close()
    sent = [[a["create"]["_id"] for a, _ in r] for r in es.requests]
    assert sent == [["id-0", "id-1", "id-2", "id-3", "id-4"], ["id-1"], ["id-1"]]
    d = s.delivery
    assert (d.delivered, d.failed, d.retries) == (4, 1, 2) and not d.complete
    assert "mapper_parsing_exception: failed to parse field [n] for id-3" in d.problems[0]


def test_items_still_refused_after_the_last_attempt_are_failed(es):
    es.item_status = {"id-0": [429, 429, 429]}
    s = sink(es.port, attempts=3)
    s.write(alerts(0, 2))
    s.close()
    assert (s.delivery.delivered, s.delivery.failed) == (1, 1)
    assert "1 items refused for now" in s.delivery.problems[0]


def test_requests_are_bounded_by_count_and_bytes(es):
    s = sink(es.port, batch=3)
    s.write(alerts(0, 7))
    s.close()
    assert [len(r) for r in es.requests] == [3, 3, 1]
    small = sink(es.port, max_bytes=400, index="other")
    small.write(alerts(0, 4, pad="x" * 150))
    small.close()
    assert all(len(r) <= 2 for r in es.requests[3:]) and small.delivery.delivered == 4


def test_an_unreachable_cluster_is_counted_and_the_next_batches_try_once(es):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = sink(port, attempts=3)
    dead.write(alerts(0, 2))
    assert dead.delivery.retries == 2
    dead.write(alerts(2, 2))
    dead.close()
    d = dead.delivery
    assert (d.failed, d.retries) == (4, 2) and "unreachable" in d.problems[0]


def test_api_key_and_basic_auth_come_from_the_environment(es, monkeypatch):
    monkeypatch.setenv("TRAILHOUND_ES_API_KEY", "a2V5OnNlY3JldA==")
    s = sink(es.port)
    s.write(alerts(0, 1))
    s.close()
    monkeypatch.delenv("TRAILHOUND_ES_API_KEY")
    monkeypatch.setenv("ES_USER", "elastic")
    monkeypatch.setenv("ES_PASS", "pw")
    b = sink(es.port, username_env="ES_USER", password_env="ES_PASS")
    b.write(alerts(1, 1))
    b.close()
    assert es.headers[0]["Authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert es.headers[1]["Authorization"] == "Basic " + base64.b64encode(b"elastic:pw").decode()


def test_a_path_prefix_and_refresh(es):
    s = parse_sink(f"elasticsearch:http://127.0.0.1:{es.port}/es/?refresh=wait_for").open()
    s.write(alerts(0, 1))
    s.close()
    assert es.paths == ["/es/_bulk?refresh=wait_for"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a test certificate")
def test_https_with_the_clusters_own_ca(es, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    es.server.socket = context.wrap_socket(es.server.socket, server_side=True)
    url = f"elasticsearch:https://127.0.0.1:{es.port}?attempts=1&timeout=5"
    untrusted = parse_sink(url).open()
    untrusted.write(alerts(0, 1))
    untrusted.close()
    assert untrusted.delivery.failed == 1 and "certificate verify failed" in untrusted.delivery.problems[0]
    spec = parse_sink(f"{url}&ca={cert}")
    assert spec.problem() is None
    trusted = spec.open()
    trusted.write(alerts(0, 1))
    trusted.close()
    assert trusted.delivery.delivered == 1 and list(es.docs) == [(DEFAULT_INDEX, "id-0")]
    assert "not a readable file" in parse_sink(f"{url}&ca={tmp_path / 'nothing.pem'}").problem()
    (tmp_path / "cert.txt").write_text("not a certificate")
    assert "not a PEM" in parse_sink(f"{url}&ca={tmp_path / 'cert.txt'}").problem()


def test_the_fields_kibana_needs_to_show_an_alert_are_added_where_absent(es):
    s = sink(es.port, index=".alerts-security.alerts-soc")
    s.write([{**alerts(0, 1)[0], "kibana.alert.rule.type": "eql", "kibana.alert.rule.rule_id": "r-1"},
             {**alerts(1, 1)[0], "kibana.alert.rule.type": "threshold", "kibana.space_ids": ["other"],
              "kibana.alert.rule.consumer": "mine"}])
    s.close()
    eql = es.docs[(".alerts-security.alerts-soc", "id-0")]
    assert eql["kibana.space_ids"] == ["soc"] and eql["kibana.alert.rule.rule_type_id"] == "siem.eqlRule"
    assert eql["kibana.alert.rule.category"] == "Event Correlation Rule"
    assert eql["kibana.alert.rule.producer"] == eql["kibana.alert.rule.consumer"] == "siem"
    assert re.fullmatch(r"[0-9a-f-]{36}", eql["kibana.alert.rule.uuid"])
    threshold = es.docs[(".alerts-security.alerts-soc", "id-1")]
    assert threshold["kibana.space_ids"] == ["other"] and threshold["kibana.alert.rule.consumer"] == "mine"
    assert threshold["kibana.alert.rule.rule_type_id"] == "siem.thresholdRule" and "kibana.alert.rule.uuid" not in threshold
    other = sink(es.port, index="my-alerts", space="blue")
    other.write(alerts(2, 1))
    other.close()
    assert es.docs[("my-alerts", "id-2")]["kibana.space_ids"] == ["blue"]
