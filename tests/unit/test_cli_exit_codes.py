"""Exit codes through the installed `trailhound` command (README "Exit codes"): 2 when the run
cannot be trusted (a rule that does not load or compile, no rule, an unreadable or mostly-bad
input, an output that cannot be written, an internal error), 1 for alerts or failing tests, 0
otherwise; never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import rule, write_case

SCRIPT = Path(sys.executable).with_name("trailhound")


def trailhound(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "trailhound"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=180, input=stdin,
                          env={**os.environ, "TRAILHOUND_CACHE_DIR": "off", **(env or {})})


def no_traceback(res: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr


EVENTS = [{"@timestamp": f"2026-01-01T00:00:0{i}Z", "event": {"category": "process", "id": f"e{i}"},
           "host": {"name": "web"}, "user": {"name": "alice"}, "process": {"name": name}}
          for i, name in enumerate(["ssh", "bash", "ssh"])]
BAD_QUERY = rule(name="broken", rule_id="r-bad").replace('process.name == \\"ssh\\"', "process.name ==")


def test_a_rule_that_does_not_compile_exits_2_alone_and_beside_a_good_one(tmp_path):
    data, rules = write_case(tmp_path, EVENTS, {"bad.toml": BAD_QUERY})
    alone = trailhound("hunt", "--rules", str(rules / "bad.toml"), str(data))
    assert alone.returncode == 2, alone.stderr  # was 0: "not run (error)" and a green build
    assert "not run (error) broken" in alone.stderr and "none of the 1 rules loaded can run" in alone.stderr
    (rules / "good.toml").write_text(rule(name="ssh client"))
    both = trailhound("hunt", "--rules", str(rules), str(data))
    assert both.returncode == 2, both.stderr  # was 1 (alerts): the error must win
    assert "2 alerts from 1 rules; 1 rules run, 0 unsupported, 1 errors" in both.stderr
    assert "1 input, 3 events read" in both.stderr
    # --exit-zero forgives alerts, not errors
    assert trailhound("hunt", "--rules", str(rules), str(data), "--exit-zero").returncode == 2
    (rules / "bad.toml").unlink()
    assert trailhound("hunt", "--rules", str(rules), str(data)).returncode == 1
    assert trailhound("hunt", "--rules", str(rules), str(data), "--exit-zero").returncode == 0


def test_a_rule_file_that_does_not_load_exits_2(tmp_path):
    data, rules = write_case(tmp_path, EVENTS, {"good.toml": rule(), "broken.toml": "[rule\nname = "})
    res = trailhound("hunt", "--rules", str(rules), str(data), "--exit-zero")
    assert res.returncode == 2 and "rule error" in res.stderr and "broken.toml" in res.stderr


def test_no_rule_loaded_exits_2(tmp_path):
    data, rules = write_case(tmp_path, EVENTS, {})
    empty = trailhound("hunt", "--rules", str(rules), str(data))
    assert empty.returncode == 2 and "no rule loaded from" in empty.stderr  # was "0 rules", exit 0
    assert "0 rules run" in empty.stderr
    (rules / "notes.txt").write_text("title: x\ndetection: {}\n")  # not a rule file
    assert trailhound("hunt", "--rules", str(rules), str(data)).returncode == 2
    val = trailhound("rules", "validate", str(rules))
    assert val.returncode == 2 and "no rule found" in val.stderr
    (rules / "sigma.yml").write_text("title: x\ndetection: {}\n")  # Sigma YAML is read: a broken rule
    assert trailhound("hunt", "--rules", str(rules), str(data)).returncode == 2
    val = trailhound("rules", "validate", str(rules))
    assert val.returncode != 0 and "must have a log source" in val.stdout


def test_unsupported_rules_alone_exit_2_but_beside_a_runnable_one_are_not_errors(tmp_path):
    esql = rule(name="esql one", rule_id="r-esql").replace('type = "eql"\nlanguage = "eql"',
                                                           'type = "esql"\nlanguage = "esql"')
    data, rules = write_case(tmp_path, EVENTS, {"e.toml": esql})
    assert trailhound("hunt", "--rules", str(rules), str(data)).returncode == 2
    (rules / "good.toml").write_text(rule())
    res = trailhound("hunt", "--rules", str(rules), str(data), "--exit-zero")
    assert res.returncode == 0 and "1 unsupported, 0 errors" in res.stderr


def test_unreadable_or_mostly_bad_inputs_exit_2(tmp_path):
    data, rules = write_case(tmp_path, EVENTS, {"good.toml": rule()})
    missing = trailhound("hunt", "--rules", str(rules), str(tmp_path / "nope.ndjson"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    garbage = tmp_path / "auth.csv"
    garbage.write_text("time,user,host\n2026-01-01,alice,web\n2026-01-02,bob,db\n")
    for cmd in (["hunt", "--rules", str(rules)], ["query", "process where true"], ["normalize", "-i", "ecs"]):
        res = trailhound(*cmd, str(garbage))
        assert res.returncode == 2, (cmd, res.stderr)  # was 0: "0 alerts", a silent pass
        assert "no events" in res.stderr and "--allow-bad-input" in res.stderr
        no_traceback(res)
        ok = trailhound(*cmd, str(garbage), "--allow-bad-input")
        assert ok.returncode == 0, (cmd, ok.stderr)
    # a few bad lines among good ones are reported, not fatal
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_text(data.read_text() + "not json\n")
    res = trailhound("query", "process where true", str(mixed))
    assert res.returncode == 0 and "1 bad lines" in res.stderr


def test_output_paths_are_checked_before_the_work(tmp_path):
    data, rules = write_case(tmp_path, EVENTS, {"good.toml": rule()})
    for cmd in (["hunt", "--rules", str(rules), str(data)], ["normalize", str(data)]):
        for bad, why in (("/nonexistent/x.ndjson", "does not exist"), (str(tmp_path), "is a directory")):
            res = trailhound(*cmd, "--out", bad)
            assert res.returncode == 2 and why in res.stderr, res.stderr  # was a traceback, exit 1
            no_traceback(res)
            assert "alerts by rule" not in res.stdout  # refused before the hunt ran
    res = trailhound("hunt", "--rules", str(rules), str(data), "--summary", "/nonexistent/s.json")
    assert res.returncode == 2 and "--summary" in res.stderr
    before = data.read_text()
    for cmd in (["hunt", "--rules", str(rules), str(data)], ["normalize", str(data)]):
        res = trailhound(*cmd, "-o", str(data))
        assert res.returncode == 2 and "it is one of the inputs" in res.stderr
        assert data.read_text() == before  # not truncated


def test_dash_is_stdout_and_gz_is_compressed(tmp_path, monkeypatch):
    data, rules = write_case(tmp_path, EVENTS, {"good.toml": rule()})
    monkeypatch.chdir(tmp_path)
    res = trailhound("hunt", "--rules", str(rules), str(data), "-o", "-")
    assert res.returncode == 1 and not (tmp_path / "-").exists()  # was a file named "-"
    assert [json.loads(x)["event"]["id"] for x in res.stdout.splitlines()] == ["e0", "e2"]
    assert "alerts by rule" in res.stderr  # the table moves out of the alerts' way
    gz = tmp_path / "alerts.ndjson.gz"
    assert trailhound("hunt", "--rules", str(rules), str(data), "-o", str(gz)).returncode == 1
    assert [json.loads(x)["event"]["id"] for x in gzip.decompress(gz.read_bytes()).splitlines()] == ["e0", "e2"]
    norm = tmp_path / "events.ndjson.gz"
    assert trailhound("normalize", str(data), "-o", str(norm)).returncode == 0
    assert len(gzip.decompress(norm.read_bytes()).splitlines()) == 3
    res = trailhound("normalize", str(data), "-o", "-")
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 3


def test_internal_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    # a failure no user input should cause: the engine module made to raise, through a sitecustomize
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import trailhound.api\n"
        "def boom(*a, **k):\n    raise RuntimeError('engine exploded')\n"
        "trailhound.api.search = boom\n")
    env = {"PYTHONPATH": str(hook)}
    data, _ = write_case(tmp_path, EVENTS, {})
    res = trailhound("query", "process where true", str(data), env=env)
    assert res.returncode == 2
    no_traceback(res)
    assert "internal error: RuntimeError: engine exploded" in res.stderr and "please report it" in res.stderr
    dbg = trailhound("--debug", "query", "process where true", str(data), env=env)
    assert dbg.returncode == 2 and "Traceback" in dbg.stderr and "engine exploded" in dbg.stderr


def test_python_dash_m_and_version():
    res = subprocess.run([sys.executable, "-m", "trailhound", "--version"], capture_output=True, text=True, timeout=60)
    from trailhound import __version__

    assert res.returncode == 0 and res.stdout.strip() == f"trailhound {__version__}"
    assert trailhound("--version").stdout.strip() == f"trailhound {__version__}"


def test_usage_errors_exit_2(tmp_path):
    data, _ = write_case(tmp_path, EVENTS, {})
    tail = trailhound("query", "process where true", str(data), "--tail")
    assert tail.returncode == 2 and "--tail needs --size" in tail.stderr  # was silently ignored
    fmt = trailhound("query", "process where true", str(data), "-i", "nope")
    assert fmt.returncode == 2 and "unknown format 'nope'" in fmt.stderr
    bad_query = trailhound("query", "process where startWith(process.name, 'x')", str(data))
    assert bad_query.returncode == 2 and "error in query" in bad_query.stderr
    assert trailhound("no-such-command").returncode == 2


def test_a_rule_that_fails_at_run_time_exits_2(tmp_path):
    """RuleRun.error (a rule the engine could not run on this data) is an error of the run."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import trailhound.engine.hunt as h\n"
        "h.search_events_batch = lambda queries, *args, **kwargs: [ValueError('cannot run here') for _ in queries]\n")
    data, rules = write_case(tmp_path, EVENTS, {"good.toml": rule(name="ssh client")})
    res = trailhound("hunt", "--rules", str(rules), str(data), "--exit-zero", env={"PYTHONPATH": str(hook)})
    assert res.returncode == 2 and "rule failed ssh client: ValueError: cannot run here" in res.stderr
    assert "0 rules run, 0 unsupported, 1 errors" in res.stderr
    case = rules / "good.test.toml"
    case.write_text('[[case]]\nname = "fires"\nhits = 1\n[[case.event]]\n"@timestamp" = "2026-01-01T00:00:00Z"\n'
                    'event = { category = "process" }\nprocess = { name = "ssh" }\n')
    test = trailhound("test", str(rules / "good.toml"), env={"PYTHONPATH": str(hook)})
    assert test.returncode == 2 and "the rule failed: ValueError: cannot run here" in test.stdout + test.stderr


def test_summary_and_out_cannot_be_one_file(tmp_path):
    """The summary silently replaced the alerts written to the same file."""
    data, rules = write_case(tmp_path, EVENTS, {"good.toml": rule()})
    same = tmp_path / "same.ndjson"
    res = trailhound("hunt", "--rules", str(rules), str(data), "-o", str(same), "--summary", str(same))
    assert res.returncode == 2 and "--out and --summary name the same file" in res.stderr and not same.exists()
    for alerts_to_stdout in (["-o", "-"], ["--format", "ndjson"]):
        res = trailhound("hunt", "--rules", str(rules), str(data), *alerts_to_stdout, "--summary", "-")
        assert res.returncode == 2 and "write --summary to a file" in res.stderr and res.stdout == ""
