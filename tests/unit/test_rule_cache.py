"""The rule query cache: a hit gives what parsing gives, keys and code changes separate entries."""

import pytest

from trailhound.rules import cache
from trailhound.rules.check import check_rule
from trailhound.rules.loader import load_rules, rule_from_toml

RULE = '''
[rule]
name = "r"
rule_id = "r"
description = "d"
risk_score = 1
severity = "low"
type = "eql"
language = "eql"
query = "process where process.name == \\"ssh\\""
'''


def test_second_check_comes_from_the_cache_and_equals_the_first(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILHOUND_CACHE_DIR", str(tmp_path))
    rule = rule_from_toml(RULE)
    first = check_rule(rule)
    entries = list(tmp_path.rglob("*"))
    assert any(p.is_file() for p in entries) and cache.fingerprint() in {p.name for p in entries}
    monkeypatch.setattr("trailhound.rules.check.parse_rule_query", lambda r: (_ for _ in ()).throw(AssertionError))
    second = check_rule(rule)  # the parser would raise: the result comes from the cache
    assert second.query == first.query and second.status == "ok"


def test_errors_are_cached_too_and_other_text_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILHOUND_CACHE_DIR", str(tmp_path))
    bad = rule_from_toml(RULE.replace('process.name == \\"ssh\\"', 'startWith(process.name, \\"s\\")'))
    assert check_rule(bad).status == "error" and "startsWith" in check_rule(bad).reason
    other = rule_from_toml(RULE.replace("ssh", "scp"))
    assert check_rule(other).query != check_rule(rule_from_toml(RULE)).query


def test_off_and_unwritable_directories_are_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILHOUND_CACHE_DIR", "off")
    assert cache.directory() is None and cache.get(("x",)) is None
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TRAILHOUND_CACHE_DIR", str(blocker))
    cache.put(("k",), 1)  # cannot create a folder under a file: no error
    assert check_rule(rule_from_toml(RULE)).status == "ok"


def test_rule_files_are_parsed_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILHOUND_CACHE_DIR", str(tmp_path / "cache"))
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.toml").write_text(RULE)
    (rules / "bad.toml").write_text(RULE + "\nname = 'twice'\n")  # a duplicate key: invalid TOML
    first = load_rules([rules])
    monkeypatch.setattr("tomllib.loads", lambda text: (_ for _ in ()).throw(AssertionError("parsed again")))
    second = load_rules([rules])
    assert [r.name for r in second.rules] == [r.name for r in first.rules] == ["r"]
    assert [str(e) for e in second.errors] == [str(e) for e in first.errors]
    assert "invalid TOML" in str(second.errors[0]) and "bad.toml" in str(second.errors[0])
    (rules / "good.toml").write_text(RULE.replace('name = "r"', 'name = "edited"'))
    with pytest.raises(AssertionError, match="parsed again"):  # new text: a cache miss
        load_rules([rules])
