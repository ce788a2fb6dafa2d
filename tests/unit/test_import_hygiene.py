"""What a command imports is part of its start-up cost (bench/startup.py): a hunt over raw logs
with rules from the rule cache needs neither DuckDB (only NDJSON files read by DuckDB do), nor the
query parsers (lark), nor pandas, nor the network sinks' HTTP client; `--help` needs none of the
engine's libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[1] / "fixtures" / "lab"

# run the command in-process, then print which of these modules it had imported
PROBE = """
import json, sys
from trailhound.cli.main import app
watched = {watched!r}
try:
    app(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({{"code": code, "loaded": [m for m in watched if m in sys.modules]}}), file=sys.stderr)
"""
WATCHED = ["duckdb", "pandas", "lark", "sqlglot", "polars", "numpy", "pyarrow", "ssl", "xml.etree.ElementTree"]


def loaded(*args: str, env_cache: Path) -> tuple[int, list[str]]:
    env = {**os.environ, "TRAILHOUND_CACHE_DIR": str(env_cache)}
    res = subprocess.run([sys.executable, "-c", PROBE.format(watched=WATCHED), *args], capture_output=True,
                         text=True, timeout=300, env=env)
    last = json.loads(res.stderr.strip().splitlines()[-1])
    return last["code"], last["loaded"]


def test_raw_log_hunt_imports_no_duckdb_parser_or_pandas(tmp_path):
    logs = [str(LAB / "brute_force" / "audit.log"), str(LAB / "brute_force" / "auth.log")]
    cache = tmp_path / "cache"
    code, first = loaded("hunt", *logs, "--exit-zero", env_cache=cache)  # fills the rule cache
    assert code == 0
    assert "lark" in first  # a cold cache parses the pack: the probe sees the parsers when they run
    code, warm = loaded("hunt", *logs, "--exit-zero", env_cache=cache)
    assert code == 0
    assert "polars" in warm  # it did hunt
    assert not {"duckdb", "pandas", "lark", "sqlglot"} & set(warm), warm
    assert not {"ssl", "xml.etree.ElementTree"} & set(warm), warm  # network sinks', Sysmon XML's


def test_ndjson_hunt_still_reads_with_duckdb(tmp_path):
    """The other side: a large NDJSON file goes to DuckDB, which is then imported where it reads."""
    data = tmp_path / "events.ndjson"
    with data.open("w") as f:
        for i in range(6000):  # over the loader's small-file size: DuckDB reads it
            f.write(json.dumps({"@timestamp": f"2026-01-01T00:00:{i % 60:02d}Z", "event": {"category": "process"},
                                "process": {"name": "bash", "args": ["bash", "-c", "x" * 80]}}) + "\n")
    code, mods = loaded("hunt", str(data), "--exit-zero", env_cache=tmp_path / "cache")
    assert code == 0 and "duckdb" in mods


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["hunt", "--help"]])
def test_help_and_version_import_no_engine_library(tmp_path, args):
    code, mods = loaded(*args, env_cache=tmp_path / "cache")
    assert code == 0
    assert not {"duckdb", "pandas", "lark", "sqlglot", "polars", "numpy", "pyarrow"} & set(mods), mods


def test_in_process_hunt_leaves_the_garbage_collector_as_it_was(tmp_path, monkeypatch):
    """The start-up imports run with the collector paused; only the `trailhound` process itself
    freezes them, not a process that runs the app among other work (these tests)."""
    import gc

    from typer.testing import CliRunner

    from trailhound.cli.main import app

    monkeypatch.setenv("TRAILHOUND_CACHE_DIR", str(tmp_path / "cache"))
    frozen = gc.get_freeze_count()
    res = CliRunner().invoke(app, ["hunt", str(LAB / "brute_force" / "auth.log"), "--exit-zero"])
    assert res.exit_code == 0, res.output
    assert gc.isenabled() and gc.get_freeze_count() == frozen
