"""`hunt --engine spark --master sc://...` against a real Spark Connect server started for the test (a local
Spark with the Connect plugin, in its own process): the client sends the same two stages, the server's Python
workers run them, and the alert file equals the local engine's. Skips with the reason where the Connect
client's packages (`pyspark[connect]`: grpcio, grpcio-status, googleapis-common-protos, protobuf,
zstandard) or Java are missing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "fixtures" / "lab"
SERVER = """
import sys, time
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("trailhound-connect-test")
         .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
         .config("spark.connect.grpc.binding.port", sys.argv[1]).config("spark.ui.enabled", "false").getOrCreate())
print("ready", flush=True)
sys.stdin.read()  # until the test closes our standard input
spark.stop()
"""


def _missing() -> list[str]:
    if importlib.util.find_spec("pyspark") is None:
        return ["pyspark"]
    from trailhound.spark.driver import connect_missing

    return connect_missing()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def connect_url():
    if missing := _missing():
        pytest.skip(f"Spark Connect's client packages are not installed ({', '.join(missing)}): "
                    "pip install 'pyspark[connect]'")
    if shutil.which("java") is None:
        pytest.skip("no Java on PATH: Spark needs Java 17 or later")
    port = _free_port()
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if line.strip() != "ready":
            pytest.skip("the Spark Connect server did not start")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the plugin binds its port once the context is up
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        if server.stdin:
            server.stdin.close()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.skipif(not LAB.is_dir(), reason="no recorded lab capture")
def test_hunt_over_spark_connect_writes_the_local_engines_alerts(connect_url, cli_alerts):
    files = sorted(str(p) for p in LAB.glob("*/*.log"))[:8]
    local = cli_alerts("local", files)
    assert cli_alerts("spark", files, connect_url) == local and len(local) > 10


def test_a_connect_url_without_a_server_is_one_clear_line(tmp_path):
    if missing := _missing():
        pytest.skip(f"Spark Connect's client packages are not installed ({', '.join(missing)})")
    from trailhound.spark.driver import SparkUnavailable, session

    with pytest.raises(SparkUnavailable, match="cannot connect to sc://127.0.0.1"):
        session(f"sc://127.0.0.1:{_free_port()}")
