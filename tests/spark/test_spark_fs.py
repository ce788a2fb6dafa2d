"""`hunt --engine spark` over inputs given as URIs, read through Spark's own filesystems (binaryFile), on a
real local Spark: the same alerts (ids, documents, order) as the local engine over the same files; bad lines
named by URI and line; inputs that cannot be read said in one line, as locally."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from test_spark_connect import connect_url as _connect_server  # noqa: F401 - its Spark Connect server fixture
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.pipeline import plan, run_hunt
from trailhound.rules.loader import load_rules
from trailhound.sources import SourceError

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "fixtures" / "lab"
NOW = "2026-12-01T00:00:00.000Z"
needs_lab = pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
SSH_RULE = ('[rule]\nname = "ssh"\nrule_id = "r-ssh"\ndescription = "d"\nrisk_score = 21\n'
            'severity = "low"\ntype = "eql"\nlanguage = "eql"\n'
            'query = "sequence by host.name [process where process.name == \\"ssh\\"] '
            '[process where process.name == \\"scp\\"]"\n')


def _pack():
    from trailhound.pack import DIR as PACK

    return plan(load_rules([PACK]))


def _alerts(report) -> list[dict]:
    return [a for r in report.rules for a in r.alert_documents or ()]


def _spark_hunt(spark, planned, inputs):
    from trailhound.spark.driver import run_hunt_spark

    return run_hunt_spark(planned, inputs, spark=spark, now=NOW, keep_alerts=True)


def _same(local, remote, names: list[str]) -> None:
    """The same alerts and rule outcomes; the same per-input figures, the inputs named as Spark was given them."""
    assert _alerts(remote) == _alerts(local)
    assert [(r.name, r.status, r.hits, r.alerts, r.notes) for r in remote.rules] == \
        [(r.name, r.status, r.hits, r.alerts, r.notes) for r in local.rules]
    assert [i.file for i in remote.load.inputs] == names
    assert [(i.format, i.lines, i.events, i.skipped) for i in remote.load.inputs] == \
        [(i.format, i.lines, i.events, i.skipped) for i in local.load.inputs]
    assert remote.load.events == local.load.events


def _error(spark, planned, inputs) -> SourceError:
    with pytest.raises(SourceError) as info:
        _spark_hunt(spark, planned, inputs)
    return info.value


@needs_lab
def test_lab_capture_as_file_uris_and_as_a_glob(spark):
    """The raw audit and auth logs given as file: URIs (read by Spark's binaryFile, normalized in the tasks,
    the process tree across them in one task as locally), then as one glob: the local engine's alerts."""
    files = sorted(LAB.glob("*/*.log"))
    planned = _pack()
    local = run_hunt(planned, [str(p) for p in files], now=NOW, keep_alerts=True)
    assert len(_alerts(local)) > 50
    uris = [p.as_uri() for p in files]
    _same(local, _spark_hunt(spark, planned, uris), uris)
    glob = _spark_hunt(spark, planned, [LAB.as_uri() + "/*/*.log"])
    _same(local, glob, ["file:" + str(p) for p in files])  # a glob's files: named as Spark lists them


@needs_lab
def test_a_directory_of_compressed_raw_and_ecs_files(spark, tmp_path):
    """A directory URI (read recursively, in path order) holding gzip and zstd raw logs and a gzip ECS NDJSON
    file (written by `normalize`): recognized by content as locally, the same alerts as the local engine
    over the same files."""
    import zstandard

    scenarios = ["baseline", "brute_force", "ssh_password", "stolen_key", "socks_tunnel"]
    logs = tmp_path / "logs"
    for name in scenarios:
        (logs / name).mkdir(parents=True)
        (logs / name / "audit.log.gz").write_bytes(gzip.compress((LAB / name / "audit.log").read_bytes()))
        (logs / name / "auth.zst").write_bytes(zstandard.compress((LAB / name / "auth.log").read_bytes()))
    ecs = tmp_path / "ecs.ndjson"
    r = CliRunner().invoke(app, ["normalize", str(LAB / "proxyjump" / "audit.log"), str(LAB / "proxyjump" / "auth.log"),
                                 "-o", str(ecs)])
    assert r.exit_code == 0, r.output
    (logs / "zz-proxyjump.ndjson.gz").write_bytes(gzip.compress(ecs.read_bytes()))
    files = sorted(str(p) for p in logs.rglob("*") if p.is_file())
    assert len(files) == 2 * len(scenarios) + 1
    planned = _pack()
    local = run_hunt(planned, files, now=NOW, keep_alerts=True)
    assert any(r.hits for r in local.rules)
    remote = _spark_hunt(spark, planned, [logs.as_uri()])
    _same(local, remote, ["file:" + f for f in files])
    assert {i.format for i in remote.load.inputs} == {i.format for i in local.load.inputs} and \
        len({i.format for i in local.load.inputs}) == 3  # auditd, syslog (auth) and ECS JSON
    # a local path and a URI in one hunt: both read through Spark, each named as given
    mixed = _spark_hunt(spark, planned, [files[0], Path(files[1]).as_uri()])
    alone = run_hunt(planned, files[:2], now=NOW, keep_alerts=True)
    _same(alone, mixed, [files[0], Path(files[1]).as_uri()])


def test_bad_lines_are_named_by_uri_and_line(spark, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ssh.toml").write_text(SSH_RULE)
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson.gz"
    ev = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "host": {"name": "h"}}
    a.write_text(json.dumps({**ev, "process": {"name": "ssh"}}) + "\n{broken\n[1]\n")
    b.write_bytes(gzip.compress((json.dumps({**ev, "@timestamp": "2026-01-01T00:00:01Z",
                                             "process": {"name": "scp"}}) + "\n").encode())[:-6])  # truncated
    planned = plan(load_rules([rules]))
    local = run_hunt(planned, [str(a), str(b)], now=NOW, keep_alerts=True)
    uris = [a.as_uri(), b.as_uri()]
    remote = _spark_hunt(spark, planned, uris)
    _same(local, remote, uris)
    assert remote.load.skipped_count == local.load.skipped_count == 3
    assert [(s.file, s.line, s.reason) for s in remote.load.skipped] == \
        [(uri, s.line, s.reason) for uri, s in zip([uris[0], uris[0], uris[1]], local.load.skipped)]
    assert len(_alerts(remote)) == 3  # the sequence (ssh in a.ndjson, scp in b.ndjson.gz): its alert and two events
    # a damaged gzip header stops the hunt with the local engine's reason, the URI named
    bad = tmp_path / "bad.ndjson.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate data" * 4)
    with pytest.raises(SourceError) as want:
        run_hunt(planned, [str(bad)], now=NOW)
    got = _error(spark, planned, [bad.as_uri()])
    assert (got.path, got.reason) == (bad.as_uri(), want.value.reason) and "gzip" in got.reason


def _rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "ssh.toml").write_text(SSH_RULE)
    return rules


def test_inputs_that_cannot_be_read_are_said_in_one_line(spark, tmp_path, monkeypatch):
    planned = plan(load_rules([_rules(tmp_path)]))
    ok = tmp_path / "ok.ndjson"
    ok.write_text('{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}}\n')
    missing = (tmp_path / "missing.ndjson").as_uri()
    e = _error(spark, planned, [ok.as_uri(), missing])
    assert (e.path, e.reason) == (missing, "no such file")
    e = _error(spark, planned, [ok.as_uri(), "file://" + str(tmp_path / "nothing-*.log")])
    assert e.reason == "no file matches"
    (tmp_path / "empty").mkdir()
    e = _error(spark, planned, [(tmp_path / "empty").as_uri()])
    assert "no file there" in e.reason
    e = _error(spark, planned, ["nosuchfs://host/logs/a.log"])
    assert e.path == "nosuchfs://host/logs/a.log" and "no filesystem for nosuchfs:" in e.reason
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    if not any(j.name.startswith("hadoop-aws") for j in jars.glob("*.jar")):
        e = _error(spark, planned, ["s3a://bucket/logs/a.log"])
        assert "S3AFileSystem" in e.reason and "hadoop-aws" in e.reason
    # a file over binaryFile's per-file bound is refused before anything is read
    spark.conf.set("spark.sql.sources.binaryFile.maxLength", "10")
    try:
        e = _error(spark, planned, [ok.as_uri()])
    finally:
        spark.conf.unset("spark.sql.sources.binaryFile.maxLength")
    assert e.path == ok.as_uri() and "over the 10 bytes Spark reads as one file" in e.reason
    # a file gone between the listing and the read: named with the reason, never a failed job; one that
    # Spark's reader then finds no bytes in (here a directory now stands in its place): named too
    from trailhound.spark import driver

    gone = tmp_path / "gone.ndjson"
    real = driver._listing
    for then, reason in (("removed", "no such file"), ("replaced", "listed, but Spark could not read it")):
        shutil.copy(ok, gone)

        def listing_then_change(spark, files, then=then):
            out = real(spark, files)
            gone.unlink()
            if then == "replaced":
                gone.mkdir()
            return out

        monkeypatch.setattr(driver, "_listing", listing_then_change)
        e = _error(spark, planned, [ok.as_uri(), gone.as_uri()])
        assert e.path == gone.as_uri() and e.reason.startswith(reason)
        if gone.is_dir():
            gone.rmdir()


def test_cli_takes_uris_and_says_what_is_wrong(spark, tmp_path):
    """URIs reach Spark as given (s3a://bucket/key is not a path); a missing one exits 2 with the reason and
    no stack trace; the local engine refuses a URI with the way to read it."""
    rules = _rules(tmp_path)
    ev = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}, "host": {"name": "h"}}
    data = tmp_path / "e.ndjson"
    data.write_text(json.dumps({**ev, "process": {"name": "ssh"}}) + "\n"
                    + json.dumps({**ev, "@timestamp": "2026-01-01T00:00:01Z", "process": {"name": "scp"}}) + "\n")
    out = tmp_path / "alerts.ndjson"
    r = CliRunner().invoke(app, ["hunt", "--rules", str(rules), "--engine", "spark", "--master", "local[2]",
                                 data.as_uri(), "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert len(out.read_text().splitlines()) == 3  # the sequence's alert and its two events
    missing = "file://" + str(tmp_path / "nope" / "e.ndjson")
    r = CliRunner().invoke(app, ["hunt", "--rules", str(rules), "--engine", "spark", "--master", "local[2]", missing])
    assert r.exit_code == 2, r.output
    assert f"{missing}: no such file" in r.output.replace("\n", "")
    assert "Traceback" not in r.output and "at org.apache" not in r.output and "Py4J" not in r.output
    r = CliRunner().invoke(app, ["hunt", "--rules", str(rules), data.as_uri()])
    assert r.exit_code == 2 and "--engine spark" in r.output


@needs_lab
def test_a_filesystem_other_than_the_local_one_viewfs(spark, tmp_path):
    """Hadoop's ViewFileSystem (in pyspark's own jars), its mount table set in the session's configuration
    at run time: viewfs://trailhound/lab/... resolves to the lab capture. Listed and read by Hadoop's
    viewfs code, the files named by their viewfs URIs; the same alerts as the local engine."""
    scenarios = ["baseline", "brute_force", "stolen_key", "socks_tunnel", "proxyjump"]
    key = "fs.viewfs.mounttable.trailhound.link./lab"
    spark.conf.set(key, LAB.as_uri())
    try:
        planned = _pack()
        remote = _spark_hunt(spark, planned, [f"viewfs://trailhound/lab/{s}" for s in scenarios])
    finally:
        spark.conf.unset(key)
    files = [str(LAB / s / n) for s in scenarios for n in ("audit.log", "auth.log")]
    local = run_hunt(planned, files, now=NOW, keep_alerts=True)
    assert _alerts(local)
    _same(local, remote, [f"viewfs://trailhound/lab/{s}/{n}" for s in scenarios for n in ("audit.log", "auth.log")])


@needs_lab
def test_a_network_filesystem_ftp(spark):
    """Hadoop's FTPFileSystem (pyspark's own jars) against a real FTP server on localhost (pyftpdlib): the
    lab capture listed and read over the network by Spark, never opened by path; its login set in the
    session's configuration (`fs.ftp.user.HOST`, as `--conf spark.hadoop.fs.ftp.user.HOST=...` would)."""
    pytest.importorskip("pyftpdlib", reason="pyftpdlib (a local FTP server for this test) is not installed")
    import logging
    import threading

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    users = DummyAuthorizer()
    users.add_user("hunter", "test-only", str(LAB), perm="elr")  # read-only
    server = ThreadedFTPServer(("127.0.0.1", 0), type("Handler", (FTPHandler,), {"authorizer": users}))
    port = server.socket.getsockname()[1]
    threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.5}, daemon=True).start()
    keys = {"fs.ftp.user.127.0.0.1": "hunter", "fs.ftp.password.127.0.0.1": "test-only"}
    scenarios = ["baseline", "brute_force", "ssh_password"]
    try:
        for k, v in keys.items():
            spark.conf.set(k, v)
        planned = _pack()
        remote = _spark_hunt(spark, planned, [f"ftp://127.0.0.1:{port}/{s}/" for s in scenarios])
    finally:
        for k in keys:
            spark.conf.unset(k)
        server.close_all()
    files = [str(LAB / s / n) for s in scenarios for n in ("audit.log", "auth.log")]
    local = run_hunt(planned, files, now=NOW, keep_alerts=True)
    assert _alerts(local)
    _same(local, remote, [f"ftp://127.0.0.1:{port}/{s}/{n}" for s in scenarios for n in ("audit.log", "auth.log")])


@needs_lab
def test_uris_over_spark_connect(request, cli_alerts):
    """binaryFile needs no JVM gateway in the client: over Spark Connect (a real server, started by the
    fixture of test_spark_connect.py; the client in its own process, as there), a brace glob of the lab
    capture gives the local engine's alert file, and a missing file is said in one line, exit 2."""
    import subprocess
    import sys

    connect_url = request.getfixturevalue("_connect_server")
    scenarios = ["baseline", "brute_force", "stolen_key"]
    files = [str(LAB / s / n) for s in scenarios for n in ("audit.log", "auth.log")]
    local = cli_alerts("local", files)
    spark = cli_alerts("spark", [LAB.as_uri() + "/{" + ",".join(scenarios) + "}/*.log"], connect_url)
    assert spark == local and local
    r = subprocess.run([sys.executable, "-m", "trailhound", "hunt", "file:///nonexistent/trailhound/x.log",
                        "--engine", "spark", "--master", connect_url], capture_output=True, text=True, timeout=900)
    assert r.returncode == 2 and "file:///nonexistent/trailhound/x.log: no such file" in r.stderr.replace("\n", "")
    assert "Traceback" not in r.stderr
