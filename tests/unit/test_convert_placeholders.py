"""`trailhound convert --sigma-placeholders FILE` / `--sigma-placeholder NAME=VALUE`: the values of Sigma `|expand`
placeholders, as `hunt` takes them (the same file formats, the same errors); without them a rule expanding a
placeholder is refused, the placeholder named, in every target that reads the rule's detection."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.emit.eql import print_query
from trailhound.emit.sigma_in import SigmaQuery, sigma_queries
from trailhound.engine.hunt import hunt
from trailhound.rules.check import check_rule
from trailhound.rules.loader import load_rules
from trailhound.rules.sigma import with_placeholders

runner = CliRunner()
RULE = """title: Login by an admin account
id: 6a1c2b3d-0000-4000-8000-000000000140
logsource: {product: linux, service: auth}
detection:
  sel:
    event.outcome: success
    user.name|expand: '%admins%'
  condition: sel
level: medium
"""
CORRELATION = """---
title: Many admin logins from one source
id: 6a1c2b3d-0000-4000-8000-000000000141
correlation:
  type: event_count
  rules: [6a1c2b3d-0000-4000-8000-000000000140]
  group-by: [source.ip]
  timespan: 1m
  condition: {gte: 2}
"""


@pytest.fixture
def rule(tmp_path):
    path = tmp_path / "admin_login.yml"
    path.write_text(RULE)
    return path


def test_to_eql_with_values_from_a_file_or_the_command_line(tmp_path, rule):
    (tmp_path / "p.yml").write_text("admins: [ops1, 'adm*']\n")
    (tmp_path / "p.toml").write_text('admins = ["ops1", "adm*"]\n')
    outs = []
    for options in (["--sigma-placeholders", str(tmp_path / "p.yml")],
                    ["--sigma-placeholders", str(tmp_path / "p.toml")],
                    ["--sigma-placeholder", "admins=ops1", "--sigma-placeholder", "%admins%=adm*"]):
        res = runner.invoke(app, ["convert", "--to", "eql", *options, str(rule)])
        assert res.exit_code == 0, res.output
        outs.append(res.stdout)
    assert outs[0] == outs[1] == outs[2]
    assert 'user.name : ("ops1", "adm*")' in outs[0], outs[0]  # `:` compares as Sigma does: any case, `*` a wildcard


def test_without_values_the_rule_is_refused_naming_the_placeholder(rule):
    for target in ("eql", "toml"):
        res = runner.invoke(app, ["convert", "--to", target, str(rule)])
        assert res.exit_code == 2, res.output
        assert "%admins% has no values (give them with --sigma-placeholders FILE)" in res.stderr


@pytest.mark.parametrize("target", ["splunk", "kusto", "esql", "lucene"])
def test_other_siems_expand_the_values_too(tmp_path, rule, target):
    pytest.importorskip("sigma.backends.splunk", reason="the convert extra (pySigma backends) is not installed")
    res = runner.invoke(app, ["convert", "--to", target, str(rule)])
    assert res.exit_code == 2 and "%admins% has no values" in res.stderr, res.output
    res = runner.invoke(app, ["convert", "--to", target, "--sigma-placeholder", "admins=ops1",
                              "--sigma-placeholder", "admins=ops2", str(rule)])
    assert res.exit_code == 0, res.output
    if target == "kusto":  # an auth log is Sentinel ASIM's imAuthentication; user.name its TargetUsername
        assert res.stdout.startswith("imAuthentication\n| where ") and "TargetUsername" in res.stdout
    assert "ops1" in res.stdout and "ops2" in res.stdout and "%admins%" not in res.stdout


def test_to_sigma_keeps_the_placeholder(tmp_path, rule):
    """Sigma is the portable form: the rule is written as it is, `|expand` and all, values given or not."""
    res = runner.invoke(app, ["convert", "--to", "sigma", str(rule)])
    assert res.exit_code == 0 and "user.name|expand: '%admins%'" in res.stdout, res.output


@pytest.mark.parametrize("text,reason", [("admins = [\n", "invalid TOML"),
                                         ("admins = []\n", "an empty list of values")])
def test_a_bad_placeholder_file_exits_2_as_in_hunt(tmp_path, rule, text, reason):
    (tmp_path / "p.toml").write_text(text)
    res = runner.invoke(app, ["convert", "--to", "eql", "--sigma-placeholders", str(tmp_path / "p.toml"), str(rule)])
    assert res.exit_code == 2 and "p.toml" in res.output and reason in res.output, res.output
    res = runner.invoke(app, ["convert", "--to", "eql", "--sigma-placeholder", "admins", str(rule)])
    assert res.exit_code == 2 and "write NAME=VALUE" in res.output


def test_the_eql_finds_what_hunt_finds_with_the_same_values(tmp_path, rule):
    """Sigma → EQL with the values, against the native Sigma run given the same values: the same events
    (Sigma compares case-insensitively: OPS2 is an admin; the correlation counts them per source)."""
    values = {"admins": ("ops1", "ops2")}
    text = RULE + CORRELATION
    (tmp_path / "r.yml").write_text(text)
    native = with_placeholders(load_rules([tmp_path / "r.yml"]).rules, values)
    [corr] = [r for r in native if r.name == "Many admin logins from one source"]
    [back] = [q for q in sigma_queries(text, values) if isinstance(q, SigmaQuery)]
    import dataclasses

    eql = dataclasses.replace(corr, type="eql", language="eql", query=print_query(back.query), source=None,
                              rule_id="eql-of-it")
    events = tmp_path / "e.ndjson"
    events.write_text("".join(json.dumps({"@timestamp": f"2026-12-01T10:00:0{i}Z", "user": {"name": name},
                                          "source": {"ip": "10.0.0.1"},
                                          "event": {"category": ["authentication"], "outcome": "success"}}) + "\n"
                              for i, name in enumerate(["ops1", "bob", "OPS2", "root", "ops2"])))
    checks = [check_rule(r) for r in (*native, eql)]
    assert all(c.status == "ok" for c in checks), [c.reason for c in checks]
    by_id = {id(run.check.rule): run for run in hunt(checks, [events]).runs}
    sigma_hits = [h.rows for h in by_id[id(corr)].hits]
    assert sigma_hits == [(0, 2), (2, 4)]  # ops1 + OPS2, OPS2 + ops2
    assert [h.rows for h in by_id[id(eql)].hits] == sigma_hits


def test_kusto_expands_the_values_in_a_defender_table(tmp_path):
    """A process_creation rule (the taxonomy's names) goes to Defender XDR's DeviceProcessEvents, the placeholder's
    values as a list."""
    pytest.importorskip("sigma.backends.kusto", reason="the convert extra (pySigma backends) is not installed")
    path = tmp_path / "fwd.yml"
    path.write_text("title: SSH dynamic forward\nid: 6a1c2b3d-0000-4000-8000-000000000150\n"
                    "logsource: {product: linux, category: process_creation}\ndetection:\n  sel:\n"
                    "    Image|endswith: /ssh\n    CommandLine|contains: ' -D '\n    User|expand: '%admins%'\n"
                    "  condition: sel\n")
    res = runner.invoke(app, ["convert", "--to", "kusto-xdr", "--sigma-placeholder", "admins=root",
                              "--sigma-placeholder", "admins=ops1", str(path)])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("DeviceProcessEvents\n| where ")
    assert 'FolderPath endswith "/ssh"' in res.stdout and 'AccountName in~ ("root", "ops1")' in res.stdout
