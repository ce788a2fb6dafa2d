"""Alerts as Parquet (`hunt --out DIR --out-format parquet`): the same documents, ids and order as the NDJSON
file, read back from the files; the directory checked before the hunt."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.sinks.parquet import ParquetSink, directory_problem, read_alerts

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "fixtures" / "lab"


def _without_run_time(docs: list[dict]) -> list[dict]:
    for d in docs:
        d.pop("@timestamp")  # the time of the run
    return docs


def test_hunt_writes_the_same_alerts_as_parquet_and_as_ndjson(tmp_path):
    files = sorted(str(p) for p in LAB.glob("*/*.log"))[:8]
    assert files, "the recorded lab capture is part of the repository"
    ndjson, store = tmp_path / "alerts.ndjson", tmp_path / "alerts"
    r = CliRunner().invoke(app, ["hunt", *files, "--exit-zero", "--out", str(ndjson)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["hunt", *files, "--exit-zero", "--out", str(store), "--out-format", "parquet"])
    assert r.exit_code == 0, r.output
    want = [json.loads(line) for line in ndjson.read_text().splitlines()]
    got = read_alerts(store)
    assert len(got) == len(want) > 10
    assert _without_run_time(got) == _without_run_time(want)
    table = pq.read_table(next(store.glob("alerts-*.parquet")))
    assert table.schema.metadata[b"trailhound.alerts"] == b"1"
    assert table["kibana.alert.uuid"].to_pylist() == [a["kibana.alert.uuid"] for a in want]
    assert table["kibana.alert.rule.name"].to_pylist() == [a["kibana.alert.rule.name"] for a in want]
    # a second hunt into the same directory would mix two runs' alerts: refused before the work, exit 2
    r = CliRunner().invoke(app, ["hunt", *files, "--out", str(store), "--out-format", "parquet"])
    assert r.exit_code == 2 and "already holds Parquet alert files" in r.output
    r = CliRunner().invoke(app, ["hunt", *files, "--out-format", "parquet"])
    assert r.exit_code == 2 and "--out DIR" in r.output
    r = CliRunner().invoke(app, ["hunt", *files, "--out", str(tmp_path / "x"), "--out-format", "csv"])
    assert r.exit_code == 2 and "choose ndjson or parquet" in r.output


def test_files_are_cut_at_rows_per_file_and_read_back_in_order(tmp_path):
    sink = ParquetSink(tmp_path / "out", rows_per_file=3)
    alerts = [{"kibana.alert.uuid": f"u{i}", "host": {"name": f"h{i % 2}"}, "kibana.alert.rule.name": "r",
               "n": i, "kibana.alert.risk_score": 21.0} for i in range(7)]
    sink.write(alerts[:4])
    sink.write(alerts[4:])
    sink.close()
    assert [Path(f).name for f in sink.files] == ["alerts-00000.parquet", "alerts-00001.parquet",
                                                   "alerts-00002.parquet"]
    assert read_alerts(tmp_path / "out") == alerts
    assert sink.delivery.delivered == 7 and sink.delivery.complete
    assert pq.read_table(sink.files[0])["host.name"].to_pylist() == ["h0", "h1", "h0"]
    assert not list((tmp_path / "out").glob("*.part"))


def test_the_directory_is_checked_before_the_hunt(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert "is a file" in (directory_problem(f) or "")
    assert "does not exist" in (directory_problem(tmp_path / "no" / "dir") or "")
    assert directory_problem(tmp_path / "new") is None and directory_problem(tmp_path) is None
    assert "standard output" in (directory_problem("-") or "")
