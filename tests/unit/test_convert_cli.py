"""`trailhound convert`: inputs (files, directories, --query), per-rule refusals with the reason, exit
codes (0 all, 1 some refused, 2 none), -o file names, and outputs our own parsers read back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.emit.sigma import check_sigma
from trailhound.lang.parser import parse
from trailhound.pack import DIR as PACK
from trailhound.rules.check import check_rule
from trailhound.rules.loader import load_rules

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "convert"


def run(*args: str):
    return runner.invoke(app, ["convert", *args])


def test_query_to_eql_and_sigma():
    res = run("--to", "eql", "-q", 'process where process.name == "ssh" or process.name == "scp"')
    assert res.exit_code == 0, res.output
    assert res.stdout == 'process where process.name in ("ssh", "scp")\n'
    res = run("--to", "sigma", "-l", "kuery", "-q", "event.category:process and process.name:ssh*")
    assert res.exit_code == 0 and check_sigma(res.stdout) == []
    assert "process.name|cased|startswith: ssh" in res.stdout


def test_a_refused_query_exits_2_with_the_reason():
    res = run("--to", "sigma", "-q", "sequence [process where true] [file where true] until [network where true]")
    assert res.exit_code == 2
    assert "refused: Converted query: `until` has no Sigma equivalent" in res.stderr
    assert "0 converted, 1 refused" in res.stderr


def test_a_bad_query_is_an_error_not_a_traceback():
    res = run("--to", "sigma", "-q", "process where ==")
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_pack_to_sigma_files_then_back_to_eql_and_toml(tmp_path):
    sig = tmp_path / "sigma"
    # the rule files (the pack directory also holds no Sigma files: its export is in pack_sigma/)
    res = run("--to", "sigma", "-o", str(sig), *map(str, sorted(PACK.glob("*.toml"))))
    # refused: the two new_terms rules, and the three whose tests compare with concat() of fields
    assert res.exit_code == 1, res.output
    assert res.stderr.count("refused: ") == 5 and "18 converted, 5 refused" in res.stderr
    assert res.stderr.count("Sigma compares fields with constant values only") == 3
    files = sorted(sig.glob("*.yml"))
    assert len(files) == 18 and (sig / "ssh_bruteforce.yml").exists()
    for f in files:
        assert check_sigma(f.read_text()) == [], f
    eql = tmp_path / "eql"
    res = run("--to", "eql", "-o", str(eql), str(sig))
    assert res.exit_code == 0, res.output
    for f in eql.glob("*.eql"):
        parse(f.read_text())
    toml = tmp_path / "toml"
    res = run("--to", "toml", "-o", str(toml), str(sig))
    assert res.exit_code == 0, res.output
    loaded = load_rules([toml])
    assert not loaded.errors and len(loaded.rules) == 18
    brute = next(r for r in loaded.rules if r.name == "SSH Brute Force From a Single Source")
    # an event_count whose events KQL can say is a threshold rule again
    assert brute.type == "threshold" and brute.language == "kuery"
    assert brute.threshold == {"field": ["host.id", "source.ip"], "value": 5}
    assert check_rule(brute).status == "ok"
    (orig,) = load_rules([PACK / "ssh_bruteforce.toml"]).rules
    assert brute.metadata["creation_date"] == orig.metadata["creation_date"]  # Sigma's date carried through
    after = next(r for r in loaded.rules if r.name == "SSH Successful Login After Repeated Failures")
    assert after.type == "eql" and "with runs=5" in (after.query or "")
    *_, top = yaml.safe_load_all((sig / "ssh_bruteforce.yml").read_text())
    assert brute.rule_id == top["id"]  # the Sigma id is kept as the rule_id
    assert brute.false_positives and brute.references


def test_toml_to_toml_keeps_the_rule(tmp_path):
    src = PACK / "ssh_authorized_keys_then_ssh.toml"
    res = run("--to", "toml", "-o", str(tmp_path), str(src))
    assert res.exit_code == 0, res.output
    (again,) = load_rules([tmp_path / src.name]).rules
    (orig,) = load_rules([src]).rules
    for attr in ("rule_id", "name", "type", "query", "threat", "tags", "note", "false_positives", "lookback", "index"):
        assert getattr(again, attr) == getattr(orig, attr), attr


@pytest.mark.parametrize("target", ["splunk", "esql", "lucene", "kusto", "kusto-xdr"])
def test_siem_targets_convert_or_refuse_each_rule(target, tmp_path):
    pytest.importorskip("sigma.backends.splunk", reason="the convert extra (pySigma backends) is not installed")
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("ssh_bruteforce.toml", "ssh_dynamic_port_forward.toml", "ssh_authorized_keys_then_ssh.toml"):
        shutil.copy(PACK / name, rules / name)
    res = run("--to", target, "-o", str(tmp_path / "out"), str(rules))
    assert "Traceback" not in res.output
    written = sorted(p.name for p in (tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else []
    refused = res.stderr.count("refused: ")
    assert len(written) + refused == 3, res.output
    if target == "kusto":  # Sentinel ASIM has no process.args (only the command line) and no correlations
        assert res.exit_code == 2
        assert "field name encountered: process.args" in res.stderr and "does not support correlation" in res.stderr
    elif target == "kusto-xdr":
        assert res.exit_code == 2  # Defender's tables have no column for host.os.type, event.action...
        assert "Invalid SigmaDetectionItem field name encountered: host.os.type" in res.stderr
    else:
        assert "ssh_dynamic_port_forward" + {"splunk": ".spl", "esql": ".esql", "lucene": ".lucene"}[target] in written
        # temporal_ordered: none of these backends has it
        assert "SSH Authorized Key Added Then SSH Client Started: " in res.stderr


def test_missing_input_and_no_rules(tmp_path):
    res = run("--to", "eql", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "no such file" in res.stderr
    res = run("--to", "eql", str(tmp_path))
    assert res.exit_code == 2 and "no rule found" in res.stderr


def test_sigma_input_with_unsupported_logsource_is_refused(tmp_path):
    f = tmp_path / "win.yml"
    f.write_text("title: w\nlogsource: {product: windows, category: process_creation}\n"
                 "detection:\n  sel: {Image|endswith: '\\\\cmd.exe'}\n  condition: sel\n")
    res = run("--to", "eql", str(f))
    assert res.exit_code == 2
    assert "product: linux only" in res.stderr


def test_sigma_correlations_become_sequences_and_samples(tmp_path):
    f = tmp_path / "c.yml"
    f.write_text((FIXTURES / "sigma" / "correlations.yml").read_text())
    res = run("--to", "eql", str(f))
    assert res.exit_code == 1, res.output
    out = res.stdout
    assert "sequence by host.name with maxspan=5m" in out
    assert "sample by user.name" in out
    assert "sequence by user.name with maxspan=10m\n  [process where" in out and "with runs=20" in out
    assert "has no time window" in res.stderr
    assert "value_count correlations have no EQL form" in res.stderr


def test_sigma_count_correlations_to_toml(tmp_path):
    f = tmp_path / "c.yml"
    f.write_text((FIXTURES / "sigma" / "correlations.yml").read_text())
    res = run("--to", "toml", "-o", str(tmp_path / "out"), str(f))
    assert res.exit_code == 1, res.output
    # Sigma's default matching is case-insensitive: KQL cannot say it, so no threshold rule
    assert "refused: sudo by many users on one host: as a threshold rule its events need a KQL query" in res.stderr
    assert "not a threshold rule (its events have no KQL form" in res.stderr  # event_count: an EQL sequence instead
    loaded = load_rules([tmp_path / "out"])
    assert not loaded.errors and len(loaded.rules) == 3
    assert all(check_rule(r).status == "ok" for r in loaded.rules)


def test_bad_sigma_files_are_refused_with_the_file_and_reason(tmp_path):
    bad = {
        "syntax.yml": "title: [unclosed\n",
        "scalar.yml": "just a string\n",
        "list.yml": "- a\n- b\n",
        "nodetection.yml": "title: x\nlogsource: {product: linux}\n",
        "weird.yml": "title: x\nlogsource: {product: linux}\ndetection: 5\n",
        "corr.yml": "title: c\ncorrelation: {type: temporal, rules: [nope], timespan: 5m}\n",
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    for target in ("eql", "sigma", "toml", "splunk"):
        res = run("--to", target, str(tmp_path))
        assert res.exit_code == 2, (target, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), (target, res.exception)
        assert res.stderr.count("refused: ") == len(bad), (target, res.stderr)
        assert f"refused: {tmp_path / 'syntax.yml'}: not YAML: line 2" in res.stderr


def test_the_whole_pack_per_target():
    """Every pack rule in every target: converted (EQL parsed by our parser, TOML read by our loader, Sigma by
    pySigma's validators) or refused with a reason; the counts the README gives."""
    from trailhound.emit.convert import Converted, from_rule
    from trailhound.emit.siem import available
    from trailhound.rules.loader import rule_from_toml

    rules = load_rules([PACK]).rules
    counts = {}
    for target in ("sigma", "eql", "toml", "splunk", "kusto", "esql", "lucene", "kusto-xdr"):
        if target in ("splunk", "kusto", "esql", "lucene", "kusto-xdr") and available(target) is not None:
            continue
        done = 0
        for rule in rules:
            out = from_rule(rule, target, "r")
            if not isinstance(out, Converted):
                assert out.reason, (target, rule.name)
                continue
            done += 1
            if target == "eql":
                parse(out.text)
            elif target == "toml":
                assert rule_from_toml(out.text).query == rule.query
            elif target == "sigma":
                assert check_sigma(out.text) == [], rule.name
            else:
                assert out.text.strip(), (target, rule.name)
        counts[target] = done
    print(f"pack of {len(rules)} per target: {counts}")
    assert {k: counts[k] for k in ("sigma", "eql", "toml")} == {"sigma": 18, "eql": 21, "toml": 23}
    if "splunk" in counts:
        assert counts == {"sigma": 18, "eql": 21, "toml": 23, "splunk": 17, "kusto": 4, "esql": 15, "lucene": 14,
                          "kusto-xdr": 0}
