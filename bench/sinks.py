"""Alerts per second through each sink, to receivers on this machine: the rotating NDJSON file,
syslog over a Unix datagram socket, UDP and TCP, the webhook and Elasticsearch `_bulk` against
local HTTP servers. What `watch` can hand its sinks before they become the bottleneck.

    python bench/sinks.py [--alerts 20000] [--repeat 3]

Alerts are shaped like the SSH pack's (about 2.3 KB of JSON each); batches of 500 (one rule's).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from trailhound.sinks import parse_sink


def alert(i: int) -> dict:
    return {
        "@timestamp": "2026-12-06T03:00:00.000Z", "kibana.alert.uuid": f"{i:08x}-0000-5000-8000-000000000000",
        "kibana.alert.rule.name": "Suspicious SSH Client Use", "kibana.alert.rule.rule_id": "th-ssh-0001",
        "kibana.alert.rule.type": "eql", "kibana.alert.severity": "medium", "kibana.alert.risk_score": 47.0,
        "kibana.alert.reason": f"process event with process ssh, parent process bash, by deploy on db-{i % 50:02d} "
                               "created medium alert Suspicious SSH Client Use.",
        "kibana.alert.original_time": "2026-12-06T02:59:59.000Z", "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open", "kibana.alert.depth": 1,
        "kibana.alert.ancestors": [{"id": f"ev-{i}", "type": "event", "depth": 0, "index": ""}],
        "kibana.alert.rule.description": "An SSH client started with options that tunnel or forward. " * 4,
        "kibana.alert.rule.parameters": {"language": "eql", "query": 'process where process.name == "ssh" and '
                                         'process.args : ("-D", "-R", "-L", "-w")', "index": ["logs-*"]},
        "kibana.alert.rule.tags": ["Domain: Endpoint", "OS: Linux", "Use Case: Threat Detection"],
        "host": {"name": f"db-{i % 50:02d}", "os": {"type": "linux"}}, "user": {"name": "deploy", "id": "1001"},
        "process": {"name": "ssh", "executable": "/usr/bin/ssh", "pid": 4000 + i, "args": ["ssh", "-D", "1080", "-N"],
                    "command_line": "ssh -D 1080 -N -f deploy@10.0.3.7",
                    "parent": {"name": "bash", "pid": 3999, "executable": "/bin/bash"}},
        "event": {"kind": "signal", "category": ["process"], "type": ["start"], "action": "executed"},
        "source": {"ip": "10.0.3.7"}, "ecs": {"version": "8.11.0"},
    }


def _serve(handler) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self):  # noqa: N802
        _Hook.received += len(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class _Bulk(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802
        lines = self.rfile.read(int(self.headers["Content-Length"])).splitlines()
        items = [{"create": {"_id": json.loads(a)["create"]["_id"], "status": 201}} for a in lines[::2]]
        body = json.dumps({"took": 1, "errors": False, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _drain(sock: socket.socket, stop: threading.Event, stream: bool) -> threading.Thread:
    def run():
        conns = []
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                if stream:
                    conn, _ = sock.accept()
                    conn.settimeout(0.1)
                    conns.append(conn)
                else:
                    sock.recv(65536)
            except (TimeoutError, OSError):
                pass
            for c in conns:
                try:
                    c.recv(1 << 20)
                except (TimeoutError, OSError):
                    pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def run_case(spec: str, alerts: list[dict]) -> float:
    sink = parse_sink(spec).open()
    t0 = time.perf_counter()
    for i in range(0, len(alerts), 500):
        sink.write(alerts[i:i + 500])
    sink.close()
    seconds = time.perf_counter() - t0
    d = sink.delivery
    if d.delivered != len(alerts):
        raise SystemExit(f"{spec}: {d.delivered} of {len(alerts)} delivered: {d.problems}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    alerts = [alert(i) for i in range(args.alerts)]
    size = sum(len(json.dumps(a)) for a in alerts) / len(alerts)
    work = Path(tempfile.mkdtemp(prefix="trailhound-bench-sinks-"))
    stop = threading.Event()
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix.bind(str(work / "log"))
    unix.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    for s, stream in ((unix, False), (udp, False), (tcp, True)):
        _drain(s, stop, stream)
    hook, _ = _serve(_Hook)
    bulk, _ = _serve(_Bulk)
    cases = {
        "rotating file (max_bytes=100M)": lambda r: f"file:{work}/alerts-{r}.ndjson?max_bytes=100M&keep=2",
        "syslog unix datagram": lambda r: f"syslog:unix://{work}/log",
        "syslog udp": lambda r: f"syslog:udp://127.0.0.1:{udp.getsockname()[1]}",
        "syslog tcp (octet counting)": lambda r: f"syslog:tcp://127.0.0.1:{tcp.getsockname()[1]}",
        "webhook (batch=100)": lambda r: f"webhook:http://127.0.0.1:{hook.server_address[1]}/a?spool={work}/spool{r}",
        "elasticsearch _bulk (batch=500)": lambda r: f"elasticsearch:http://127.0.0.1:{bulk.server_address[1]}",
    }
    print(f"{args.alerts} alerts of {size:.0f} B of JSON each; best of {args.repeat}; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")
    print("| sink | seconds | alerts/s |\n|---|---|---|")
    for name, spec in cases.items():
        best = min(run_case(spec(r), alerts) for r in range(args.repeat))
        print(f"| {name} | {best:.3f} | {args.alerts / best:,.0f} |")
    stop.set()
    hook.shutdown()
    bulk.shutdown()


if __name__ == "__main__":
    main()
