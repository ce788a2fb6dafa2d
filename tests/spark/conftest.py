"""One local Spark session for the whole test session (small: local[2], one shuffle partition per
rule group up to 4, no UI); the Spark tests skip with the reason where pyspark or Java is missing."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install 'trailhound[spark]')")
    if shutil.which("java") is None:
        pytest.skip("no Java on PATH: Spark needs Java 17 or later")
    from trailhound.spark.driver import SparkUnavailable, session

    try:
        s = session("local[2]")
    except SparkUnavailable as e:
        pytest.skip(str(e))
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture
def cli_alerts(tmp_path):
    """`run(engine, inputs, master=None)`: the alerts `trailhound hunt --engine ENGINE` writes (a fresh process, as a
    user runs it), each without its `@timestamp` (the time of the run)."""
    import json
    import subprocess
    import sys

    def run(engine: str, inputs: list[str], master: str | None = None) -> list[dict]:
        out = tmp_path / f"{engine}.ndjson"
        args = [sys.executable, "-m", "trailhound", "hunt", *inputs, "--exit-zero", "--out", str(out),
                "--engine", engine] + (["--master", master] if master else [])
        r = subprocess.run(args, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        docs = [json.loads(line) for line in out.read_text().splitlines()]
        for d in docs:
            d.pop("@timestamp")
        return docs

    return run
