"""The syslog sink: RFC 5424 messages over Unix datagram and stream sockets, UDP and TCP (octet
counting), against sockets the tests open and against a real rsyslogd the test starts with its
own configuration, sockets and output file."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from trailhound.sinks import parse_sink
from trailhound.sinks.syslog import BOM, SyslogSink, format_message

RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
# <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG
RFC5424 = re.compile(rb"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[.*?(?<!\\)\]) (.*)$", re.S)


def alert(i: int = 1, **extra) -> dict:
    return {"@timestamp": "2026-12-06T03:00:00.123456789Z", "kibana.alert.uuid": f"uuid-{i}",
            "kibana.alert.rule.name": 'SSH "odd" [login]', "kibana.alert.rule.rule_id": "r-1",
            "kibana.alert.severity": "high", "kibana.alert.risk_score": 73.0,
            "kibana.alert.original_time": "2026-12-06T02:59:59Z", "host": {"name": "db-01"},
            "user.name": "deploy", "process": {"name": "ssh", "executable": "/usr/bin/ssh"},
            "kibana.alert.reason": f"process event with process ssh, by deploy on db-01 created high alert {i}.",
            **extra}


def sd_params(sd: bytes) -> dict[str, str]:
    return {k: re.sub(r'\\(["\\\]])', r"\1", v) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', sd.decode())}


def test_the_message_is_rfc5424_with_the_key_fields_as_sd_params():
    msg = format_message(alert(), hostname="collector", procid="42")
    m = RFC5424.match(msg)
    assert m, msg
    pri, ts, host, app, procid, msgid, sd, text = m.groups()
    assert int(pri) == 16 * 8 + 3  # local0, "high" → err
    assert ts == b"2026-12-06T03:00:00.123456Z" and host == b"collector" and app == b"trailhound"
    assert (procid, msgid) == (b"42", b"alert")
    assert sd.startswith(b"[trailhound@32473 ")
    assert sd_params(sd) == {"uuid": "uuid-1", "rule": 'SSH "odd" [login]', "rule_id": "r-1", "severity": "high",
                             "risk_score": "73.0", "original_time": "2026-12-06T02:59:59Z", "host": "db-01",
                             "user": "deploy", "process": "/usr/bin/ssh"}
    assert b'rule="SSH \\"odd\\" [login\\]"' in sd  # RFC 5424 6.3.3 escapes
    assert text.startswith(BOM) and text[3:].decode().startswith("process event with process ssh")


def test_severity_facility_and_a_cut_that_keeps_the_structured_data():
    low = format_message(alert(**{"kibana.alert.severity": "critical"}), facility=4)
    assert low.startswith(b"<34>1 ")  # auth (4) * 8 + crit (2)
    long = format_message(alert(**{"kibana.alert.reason": "é" * 3000}), max_size=1024)
    assert len(long) <= 1024 and b"[trailhound@32473 " in long
    long.decode("utf-8")  # cut on a character boundary


def _sink(spec: str) -> SyslogSink:
    sink = parse_sink(spec).open()
    assert isinstance(sink, SyslogSink)
    return sink


def test_udp(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        sink = _sink(f"syslog:udp://127.0.0.1:{server.getsockname()[1]}")
        sink.write([alert(1), alert(2)])
        sink.close()
        got = [server.recv(65535) for _ in range(2)]
    assert [sd_params(RFC5424.match(g).group(7))["uuid"] for g in got] == ["uuid-1", "uuid-2"]
    assert sink.delivery.delivered == 2 and sink.delivery.complete


def test_unix_datagram(tmp_path):
    path = str(tmp_path / "log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        sink = _sink(f"syslog:unix://{path}")
        sink.write([alert(1), alert(2), alert(3)])
        sink.close()
        got = [server.recv(65535) for _ in range(3)]
    assert [sd_params(RFC5424.match(g).group(7))["uuid"] for g in got] == ["uuid-1", "uuid-2", "uuid-3"]


def _octet_frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        length, _, rest = data.partition(b" ")
        n = int(length)
        frames.append(rest[:n])
        data = rest[n:]
    return frames


class StreamServer:
    """Accepts connections one after the other and keeps every byte each one sent."""

    def __init__(self, family: int, address, expected: int = 1) -> None:
        self.expected = expected
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen()
        self.sock.settimeout(10)
        self.connections: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for _ in range(self.expected):  # bounded
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            data = b""
            with conn:
                conn.settimeout(5)
                while chunk := conn.recv(65536):
                    data += chunk
                    if data.endswith(b"CLOSE-NOW"):
                        break
            self.connections.append(data)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


def test_unix_stream_with_octet_counting(tmp_path):
    path = str(tmp_path / "log")
    server = StreamServer(socket.AF_UNIX, path)
    sink = _sink(f"syslog:unix://{path}")
    sink.write([alert(1, **{"kibana.alert.reason": "two\nlines"}), alert(2)])
    sink.close()
    server.thread.join(5)
    server.close()
    frames = _octet_frames(server.connections[0])
    assert [sd_params(RFC5424.match(f).group(7))["uuid"] for f in frames] == ["uuid-1", "uuid-2"]
    assert frames[0].endswith(BOM + b"two\nlines")  # octet counting carries a line break whole


def test_tcp_reconnects_after_the_receiver_restarts(tmp_path):
    server = StreamServer(socket.AF_INET, ("127.0.0.1", 0), expected=2)
    port = server.sock.getsockname()[1]
    sink = _sink(f"syslog:tcp://127.0.0.1:{port}?backoff=0.01")
    sink.write([alert(1)])
    sink._sock.sendall(b"CLOSE-NOW")  # the receiver drops this connection (as a restarted rsyslog does)
    time.sleep(0.3)
    sink.write([alert(2), alert(3)])
    sink.close()
    server.thread.join(5)
    server.close()
    first = _octet_frames(server.connections[0][:-len(b"CLOSE-NOW")])
    second = _octet_frames(server.connections[1])
    uuids = [sd_params(RFC5424.match(f).group(7))["uuid"] for f in first + second]
    assert uuids == ["uuid-1", "uuid-2", "uuid-3"] and sink.delivery.delivered == 3


def test_lf_framing(tmp_path):
    server = StreamServer(socket.AF_INET, ("127.0.0.1", 0))
    sink = _sink(f"syslog:tcp://127.0.0.1:{server.sock.getsockname()[1]}?framing=lf")
    sink.write([alert(1, **{"kibana.alert.reason": "two\nlines"}), alert(2)])
    sink.close()
    server.thread.join(5)
    server.close()
    lines = server.connections[0].split(b"\n")
    assert len(lines) == 3 and lines[2] == b"" and lines[0].endswith(b"two lines")


def test_an_absent_receiver_is_counted_not_raised(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens on it once closed
    sink = _sink(f"syslog:tcp://127.0.0.1:{port}?attempts=2&backoff=0.01")
    sink.write([alert(1), alert(2)])
    d = sink.delivery
    assert (d.delivered, d.failed, d.retries) == (0, 2, 1) and "refused" in d.problems[0]
    sink.write([alert(3)])  # still down: one attempt, no retry wait (a hunt with many rules does not crawl)
    assert (d.failed, d.retries) == (3, 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        sink.write([alert(4)])  # back: sent
        sink.close()
    assert d.delivered == 1


# -- the real rsyslog ------------------------------------------------------------------------------

def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def rsyslog(tmp_path):
    """rsyslogd in the foreground with its own configuration: a Unix socket, UDP and TCP inputs on
    127.0.0.1, every message parsed as RFC 5424 into its own output file."""
    if RSYSLOGD is None:
        pytest.skip("rsyslogd is not installed")
    udp, tcp = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    work = tmp_path / "rsyslog"
    work.mkdir()
    out, sock = work / "out.log", work / "log"
    conf = work / "rsyslog.conf"
    conf.write_text(f'''
global(workDirectory="{work}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" UseSpecialParser="off" ParseHostname="on")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
template(name="fields" type="string"
         string="%pri%|%protocol-version%|%hostname%|%app-name%|%msgid%|%structured-data%|%msg%\\n")
*.* action(type="omfile" file="{out}" template="fields")
''')
    proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(work / "pid")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if not sock.exists():
        proc.kill()
        output = proc.communicate(timeout=5)[0].decode(errors="replace")
        pytest.fail(f"rsyslogd did not start: {output}")
    time.sleep(0.3)  # the network inputs open after the socket
    yield {"udp": udp, "tcp": tcp, "unix": sock, "out": out}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _rsyslog_lines(out: Path, n: int) -> list[list[str]]:
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = out.read_text(errors="replace").splitlines() if out.exists() else []
        if len([x for x in lines if "|trailhound|" in x]) >= n:
            break
        time.sleep(0.1)
    return [x.split("|", 6) for x in lines if "|trailhound|" in x]


def test_rsyslog_parses_our_messages_over_every_transport(rsyslog):
    specs = {"unix": f"syslog:unix://{rsyslog['unix']}", "udp": f"syslog:udp://127.0.0.1:{rsyslog['udp']}",
             "tcp": f"syslog:tcp://127.0.0.1:{rsyslog['tcp']}"}
    for n, (transport, spec) in enumerate(specs.items()):
        sink = _sink(spec)
        reason = f"via {transport}: two\nlines" if transport == "tcp" else f"via {transport}"
        sink.write([alert(n, **{"kibana.alert.reason": reason})])
        sink.close()
        assert sink.delivery.complete
    rows = _rsyslog_lines(rsyslog["out"], 3)
    by_uuid = {sd_params(r[5].encode())["uuid"]: r for r in rows}
    assert sorted(by_uuid) == ["uuid-0", "uuid-1", "uuid-2"], rows
    for n, transport in enumerate(specs):
        pri, version, host, app, msgid, sd, msg = by_uuid[f"uuid-{n}"]
        assert (pri, version, host, app, msgid) == ("131", "1", socket.gethostname(), "trailhound", "alert")
        assert sd_params(sd.encode())["rule"] == 'SSH "odd" [login]'
        assert msg.lstrip("\ufeff").startswith(f"via {transport}")
    # octet counting kept the TCP message whole, line break included (rsyslog escapes it as #012)
    assert by_uuid["uuid-2"][6].lstrip("\ufeff") in ("via tcp: two#012lines", "via tcp: two\nlines")


def test_fields_dotted_nested_or_mixed_and_a_timestamp_that_is_not_one():
    msg = format_message({"@timestamp": ["odd"], "host.name": "a", "user": {"name": "b"}, "source": {"ip": ["1.2.3.4",
                          "::1"]}, "process.parent": {"name": "x"}, "kibana.alert.uuid": "u"}, hostname="h")
    sd = sd_params(RFC5424.match(msg).group(7))
    assert sd == {"uuid": "u", "host": "a", "user": "b", "source_ip": "1.2.3.4,::1"}
    assert re.match(rb"<133>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z h ", msg)  # now, when @timestamp is no time
