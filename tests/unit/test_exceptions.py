"""Exception lists: every entry type and operator, how lists attach to rules, and the hunt's counts."""

import json
from pathlib import Path

import pytest

from trailhound.engine.search import SearchOptions, search
from trailhound.lang import ir
from trailhound.rules.errors import RuleError
from trailhound.rules.exceptions import items_for, lists_from_ndjson, lists_from_toml
from trailhound.rules.loader import rule_from_toml
from trailhound.sources import events_from_documents

from helpers import hunt_cli, rule, write_case


def proc(i, **fields):
    doc = {"@timestamp": f"2026-01-01T00:00:{i:02d}Z", "event": {"category": ["process"], "id": f"e{i}"},
           "process": {"name": "ssh", "args": ["ssh", f"host{i}"]}, "host": {"name": f"h{i}"}}
    for key, value in fields.items():
        node = doc
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return doc


def exceptions_toml(*entries_per_item, rule_ids=("r-ssh",), list_id="ssh-ok"):
    items = "".join(
        f'''
[[exceptions.items]]
name = "item{n}"
item_id = "i{n}"
list_id = "{list_id}"
type = "simple"
description = "d"
entries = {_inline(entries)}
''' for n, entries in enumerate(entries_per_item))
    return f'''
[metadata]
list_name = "ok"
rule_ids = {json.dumps(list(rule_ids))}
rule_names = []

[[exceptions]]
[exceptions.container]
list_id = "{list_id}"
name = "ok"
description = "d"
namespace_type = "single"
type = "detection"
''' + items


def _inline(v):
    """A value as TOML inline syntax (JSON's, with `=` in tables)."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_inline(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(map(_inline, v)) + "]"
    return json.dumps(v)


def excepted_ids(docs, *entries_per_item, tmp_path=Path(".")):
    """Ids of the events that the items of one exception list except."""
    lists = lists_from_toml(_toml(exceptions_toml(*entries_per_item)), str(tmp_path / "x.toml"))
    [r] = [rule_from_toml(rule())]
    items = items_for(r, lists)
    cond = ir.Or(tuple(i.condition for i in items)) if len(items) > 1 else items[0].condition
    table = events_from_documents(docs)
    q = ir.EventQuery(ir.EventFilter(None, cond))
    return [docs[h.rows[0]]["event"]["id"] for h in search(q, table.frame, SearchOptions()).hits]


def _toml(text):
    import tomllib

    return tomllib.loads(text)


DOCS = [proc(1, **{"user.name": "root"}), proc(2, **{"user.name": "deploy"}), proc(3),
        proc(4, **{"process.executable": "/usr/bin/ssh", "user.name": "Root"})]


def test_match_is_an_exact_case_sensitive_term():
    e = {"field": "user.name", "type": "match", "operator": "included", "value": "root"}
    assert excepted_ids(DOCS, [e]) == ["e1"]


def test_excluded_match_also_takes_events_missing_the_field():
    e = {"field": "user.name", "type": "match", "operator": "excluded", "value": "root"}
    assert excepted_ids(DOCS, [e]) == ["e2", "e3", "e4"]  # must_not: true when user.name is missing


def test_match_any_and_exists():
    any_ = {"field": "user.name", "type": "match_any", "operator": "included", "value": ["deploy", "Root"]}
    assert excepted_ids(DOCS, [any_]) == ["e2", "e4"]
    exists = {"field": "process.executable", "type": "exists", "operator": "included"}
    assert excepted_ids(DOCS, [exists]) == ["e4"]
    not_exists = {"field": "user.name", "type": "exists", "operator": "excluded"}
    assert excepted_ids(DOCS, [not_exists]) == ["e3"]


def test_wildcard_with_escapes_and_array_fields():
    star = {"field": "process.args", "type": "wildcard", "operator": "included", "value": "host?"}
    assert excepted_ids(DOCS, [star]) == ["e1", "e2", "e3", "e4"]
    one = {"field": "process.args", "type": "wildcard", "operator": "included", "value": "*st2"}
    assert excepted_ids(DOCS, [one]) == ["e2"]
    docs = [proc(1, **{"file.path": "/tmp/a*b"}), proc(2, **{"file.path": "/tmp/axxb"})]
    escaped = {"field": "file.path", "type": "wildcard", "operator": "included", "value": "/tmp/a\\*b"}
    assert excepted_ids(docs, [escaped]) == ["e1"]  # `\*` is a literal star
    case = {"field": "file.path", "type": "wildcard", "operator": "included", "value": "/TMP/*"}
    assert excepted_ids(docs, [case]) == []  # case-sensitive, as Lucene's wildcard query


def test_entries_and_items_combine_and_or():
    root = {"field": "user.name", "type": "match", "operator": "included", "value": "root"}
    h2 = {"field": "host.name", "type": "match", "operator": "included", "value": "h2"}
    assert excepted_ids(DOCS, [root, h2]) == []  # one item: all entries
    assert excepted_ids(DOCS, [root], [h2]) == ["e1", "e2"]  # two items: any item


def test_nested_entries_apply_under_the_parent_field():
    nested = {"field": "process", "type": "nested",
              "entries": [{"field": "executable", "type": "match", "operator": "included", "value": "/usr/bin/ssh"}]}
    assert excepted_ids(DOCS, [nested]) == ["e4"]


def test_value_lists_keyword_and_ip_range(tmp_path):
    (tmp_path / "admins.txt").write_text("root\ndeploy\n\n")
    (tmp_path / "lab.txt").write_text("10.0.0.0/8\n192.168.1.10-192.168.1.20\n")
    docs = [proc(1, **{"source.ip": "10.1.2.3"}), proc(2, **{"source.ip": "192.168.1.15", "user.name": "x"}),
            proc(3, **{"source.ip": "192.168.1.21", "user.name": "root"})]
    kw = {"field": "user.name", "type": "list", "operator": "included", "list": {"id": "admins.txt", "type": "keyword"}}
    ip = {"field": "source.ip", "type": "list", "operator": "included", "list": {"id": "lab.txt", "type": "ip_range"}}
    assert excepted_ids(docs, [kw], tmp_path=tmp_path) == ["e3"]
    assert excepted_ids(docs, [ip], tmp_path=tmp_path) == ["e1", "e2"]


def test_a_missing_value_list_or_bad_entry_names_the_file_and_entry(tmp_path):
    missing = {"field": "user.name", "type": "list", "operator": "included", "list": {"id": "nope.txt", "type": "keyword"}}
    with pytest.raises(RuleError, match=r"x\.toml.*item0.*entries\[0\].*value list 'nope.txt' not found"):
        lists_from_toml(_toml(exceptions_toml([missing])), str(tmp_path / "x.toml"))
    bad = {"field": "user.name", "type": "regex", "operator": "included", "value": "a"}
    with pytest.raises(RuleError, match=r"type 'regex' is not one of"):
        lists_from_toml(_toml(exceptions_toml([bad])), "x.toml")


def test_lists_attach_by_metadata_rule_ids_names_and_exceptions_list():
    lists = lists_from_toml(_toml(exceptions_toml([{"field": "a", "type": "exists", "operator": "included"}])), "x.toml")
    assert items_for(rule_from_toml(rule(rule_id="r-ssh")), lists)
    assert not items_for(rule_from_toml(rule(rule_id="other")), lists)
    linked = rule_from_toml(rule(rule_id="other", extra='exceptions_list = [{id = "1", list_id = "ssh-ok", '
                                                        'namespace_type = "single", type = "detection"}]'))
    assert items_for(linked, lists)


def test_expired_items_no_longer_apply():
    text = exceptions_toml([{"field": "a", "type": "exists", "operator": "included"}]).replace(
        'type = "simple"', 'type = "simple"\nexpire_time = "2020-01-01T00:00:00.000Z"')
    assert items_for(rule_from_toml(rule()), lists_from_toml(_toml(text), "x.toml")) == []


def test_kibana_export_ndjson():
    lines = [
        {"list_id": "exp", "name": "Exported", "type": "detection", "namespace_type": "single", "description": "d"},
        {"list_id": "exp", "item_id": "i1", "name": "root", "type": "simple", "namespace_type": "single",
         "entries": [{"field": "user.name", "type": "match", "operator": "included", "value": "root"}]},
        {"exported_exception_list_count": 1, "exported_exception_list_item_count": 1},
    ]
    [lst] = lists_from_ndjson("\n".join(json.dumps(x) for x in lines), "export.ndjson")
    assert (lst.list_id, lst.name, [i.name for i in lst.items]) == ("exp", "Exported", ["root"])
    with pytest.raises(RuleError, match=r"export\.ndjson:2: invalid JSON"):
        lists_from_ndjson(json.dumps(lines[0]) + "\n{oops", "export.ndjson")


SEQ = '''
[rule]
name = "Key then SSH"
rule_id = "r-seq"
description = "d"
risk_score = 47
severity = "medium"
type = "eql"
language = "eql"
query = "sequence by host.name [file where file.name == \\"authorized_keys\\"] [process where process.name == \\"ssh\\"]"
'''


def test_hunt_drops_excepted_events_counts_them_and_keeps_sequences_consistent(tmp_path):
    key = {"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": ["file"], "id": "k1"},
           "file": {"name": "authorized_keys"}, "host": {"name": "h1"}}
    events = [key, proc(1, **{"host.name": "h1", "user.name": "root"}), proc(2, **{"user.name": "deploy"})]
    root = {"field": "user.name", "type": "match", "operator": "included", "value": "root"}
    data, rdir = write_case(tmp_path, events, {"ssh.toml": rule(), "seq.toml": SEQ,
                                               "ssh_exceptions.toml": exceptions_toml([root], rule_ids=("r-ssh", "r-seq"))})
    res, alerts = hunt_cli(data, rdir)
    assert res.exit_code == 1, res.output
    by_rule = {}
    for a in alerts:
        by_rule.setdefault(a["kibana.alert.rule.rule_id"], []).append(a)
    assert [a["event"]["id"] for a in by_rule["r-ssh"]] == ["e2"]
    # the root ssh event was the sequence's only second step: no sequence without it
    assert "r-seq" not in by_rule
    assert "events excepted" in res.output and "ssh-ok/item0" in res.output
    counts = [line for line in res.output.splitlines() if "ssh-ok/item0" in line]
    assert len(counts) == 2 and all(line.rstrip(" │").endswith("1") for line in counts)


def test_hunt_takes_shared_exception_files_and_reports_errors(tmp_path):
    data, rdir = write_case(tmp_path, [proc(1, **{"user.name": "root"})], {"ssh.toml": rule()})
    shared = tmp_path / "shared.ndjson"
    shared.write_text("\n".join(json.dumps(x) for x in [
        {"list_id": "g", "name": "global", "type": "detection"},
        {"list_id": "g", "item_id": "i", "name": "root", "type": "simple",
         "entries": [{"field": "user.name", "type": "match", "operator": "included", "value": "root"}]}]))
    res, alerts = hunt_cli(data, rdir, "--exceptions", str(shared))
    assert res.exit_code == 1 and len(alerts) == 1  # list `g` is attached to no rule: said, not applied
    assert "exception list 'g'" in res.output and "names none of the loaded rules" in res.output
    linked = rule(extra='exceptions_list = [{id = "g", list_id = "g", namespace_type = "single", type = "detection"}]')
    (rdir / "ssh.toml").write_text(linked)
    res, alerts = hunt_cli(data, rdir, "--exceptions", str(shared))
    assert res.exit_code == 0 and alerts == [], res.output
    shared.write_text('{"list_id": "g", "entries": [{"field": "x", "type": "match"}]}')
    res, _ = hunt_cli(data, rdir, "--exceptions", str(shared))
    assert res.exit_code == 2 and "shared.ndjson:1" in res.output and "match entry needs a string value" in res.output
