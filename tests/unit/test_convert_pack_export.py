"""The pack's committed Sigma export (src/trailhound/pack_sigma/) matches what the converter makes of
the pack's rules today, and `trailhound pack export` writes a complete package per rule."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from trailhound.cli.main import app
from trailhound.emit.convert import Converted, from_rule
from trailhound.emit.sigma import check_sigma
from trailhound.lang.parser import parse
from trailhound.pack import DIR as PACK
from trailhound.rules.loader import load_rules

EXPORT = PACK.parent / "pack_sigma"
REGENERATE = "trailhound convert --to sigma -o src/trailhound/pack_sigma src/trailhound/pack/*.toml"


def test_committed_sigma_export_is_in_sync_with_the_pack():
    expected: dict[str, str] = {}
    for rule in load_rules([PACK]).rules:
        stem = Path(rule.source or "").stem
        out = from_rule(rule, "sigma", stem)
        if isinstance(out, Converted):
            expected[f"{stem}.yml"] = out.text
    committed = {p.name: p.read_text(encoding="utf-8") for p in EXPORT.glob("*.yml")}
    assert sorted(committed) == sorted(expected), f"files differ; regenerate with: {REGENERATE}"
    for name, text in expected.items():
        assert committed[name] == text, f"{name} is stale; regenerate with: {REGENERATE}"
        assert check_sigma(text) == [], name


def test_pack_export_writes_a_package_per_rule(tmp_path):
    res = CliRunner().invoke(app, ["pack", "export", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    rules = load_rules([PACK]).rules
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == sorted(Path(r.source or "").stem for r in rules)
    index = (out / "README.md").read_text()
    assert all(f"[{r.name}]" in index for r in rules)

    brute = out / "ssh_bruteforce"
    assert (brute / "ssh_bruteforce.toml").read_text() == (PACK / "ssh_bruteforce.toml").read_text()
    assert check_sigma((brute / "ssh_bruteforce.yml").read_text()) == []
    parse((brute / "queries" / "ssh_bruteforce.eql").read_text())
    page = (brute / "README.md").read_text()
    for heading in ("## MITRE ATT&CK", "## Data sources and required fields", "## The query in each language",
                    "## Lab scenarios that exercise it", "## False positives and tuning", "## Investigation guide",
                    "## Hunting queries", "## Response playbook"):
        assert heading in page, heading
    assert "[T1110.001](https://attack.mitre.org/techniques/T1110/001/)" in page
    assert "`source.ip`" in page and "`event.outcome`" in page  # required fields from the query
    assert "**brute_force**" in page and "Failed password" in page  # the lab scenario and its telemetry
    assert "### Splunk SPL" in page and "| bin _time span=1m" in page
    assert "Not converted: kusto:" in page  # refusals say why

    # every hunting query on every page is valid EQL or KQL
    from trailhound.lang.kql import parse_kql_query

    checked = 0
    for readme in out.glob("*/README.md"):
        hunting = readme.read_text().split("## Hunting queries", 1)[1]
        for block in hunting.split("```")[1::2]:
            kind, _, body = block.partition("\n")
            if kind == "eql":
                parse(body)
            else:
                parse_kql_query(body)
            checked += 1
    assert checked > 3 * len(rules)

    new_terms = (out / "ssh_login_first_seen_source_ip" / "README.md").read_text()
    assert "Not converted: new_terms rules have no Sigma equivalent" in new_terms
    assert not (out / "ssh_login_first_seen_source_ip" / "ssh_login_first_seen_source_ip.yml").exists()


def test_pack_export_without_a_capture_says_so(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.toml").write_text((PACK / "ssh_dynamic_port_forward.toml").read_text())
    res = CliRunner().invoke(app, ["pack", "export", "--rules", str(rules), "--capture", str(tmp_path / "none"),
                                   str(tmp_path / "out")])
    assert res.exit_code == 2 and "not a lab capture" in res.stderr
