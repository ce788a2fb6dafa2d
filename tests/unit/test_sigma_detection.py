"""Sigma detection semantics (pySigma parses, lang/sigma translates to the IR): every value modifier,
wildcards and escapes, null, lists, maps, `1 of`/`all of`, keywords and logsource selection. Each rule
runs on both backends (Polars and DuckDB), which must select the same events."""

import base64

import pytest
import yaml
from test_backends import both

from trailhound.engine.filter import FrameOptions
from trailhound.lang import ir
from trailhound.lang.sigma.errors import SigmaRuleError, SigmaUnsupported
from trailhound.rules.check import sigma_query
from trailhound.rules.errors import UnsupportedError
from trailhound.sources import events_from_documents


def rule_text(detection: dict, logsource: dict | None = None) -> str:
    return yaml.safe_dump({"title": "t", "logsource": logsource or {"product": "linux", "category": "process_creation"},
                           "detection": detection})


def proc(i: int, **fields) -> dict:
    """A process start event with id i."""
    return {"id": i, "@timestamp": 1_700_000_000_000 + i, "event": {"category": ["process"], "type": ["start"]},
            **fields}


def hits(detection: dict, docs: list[dict], logsource: dict | None = None) -> list[int]:
    """The ids of the documents the rule matches; both backends must agree."""
    query = sigma_query(rule_text(detection, logsource))
    assert isinstance(query, ir.EventQuery)
    frame = events_from_documents(docs).frame
    [(want, got, where)] = both(query, frame, FrameOptions())
    assert got is not None, where
    assert got == want, where
    return [docs[r]["id"] for r in want]


CMDS = [proc(1, process={"command_line": "curl http://x | SH", "executable": "/usr/bin/curl"}),
        proc(2, process={"command_line": "wget -q http://y", "executable": "/usr/bin/wget"}),
        proc(3, process={"command_line": "ls -la /tmp", "executable": "/bin/ls"}),
        proc(4, process={"executable": "/bin/true"})]


def test_plain_value_is_exact_and_case_insensitive():
    assert hits({"sel": {"Image": "/BIN/LS"}, "condition": "sel"}, CMDS) == [3]
    assert hits({"sel": {"Image": "/bin"}, "condition": "sel"}, CMDS) == []


@pytest.mark.parametrize("modifier,value,want", [
    ("contains", "HTTP", [1, 2]), ("startswith", "wget", [2]), ("endswith", "/TMP", [3]),
])
def test_contains_startswith_endswith(modifier, value, want):
    assert hits({"sel": {f"CommandLine|{modifier}": value}, "condition": "sel"}, CMDS) == want


def test_lists_are_or_and_all_makes_them_and():
    assert hits({"sel": {"CommandLine|contains": ["curl", "wget"]}, "condition": "sel"}, CMDS) == [1, 2]
    assert hits({"sel": {"CommandLine|contains|all": ["http", "| sh"]}, "condition": "sel"}, CMDS) == [1]


def test_maps_are_and_and_lists_of_maps_are_or():
    assert hits({"sel": {"Image|endswith": "/curl", "CommandLine|contains": "wget"}, "condition": "sel"}, CMDS) == []
    assert hits({"sel": [{"Image|endswith": "/curl"}, {"CommandLine|contains": "wget"}], "condition": "sel"},
                CMDS) == [1, 2]


def test_wildcards_and_escapes():
    assert hits({"sel": {"CommandLine": "curl*| ?h"}, "condition": "sel"}, CMDS) == [1]
    docs = [proc(1, process={"command_line": "echo *"}), proc(2, process={"command_line": "echo x"}),
            proc(3, process={"command_line": "what?"}), proc(4, process={"command_line": "whatx"}),
            proc(5, process={"command_line": "C:\\path"})]
    assert hits({"sel": {"CommandLine": "echo \\*"}, "condition": "sel"}, docs) == [1]  # an escaped star is literal
    assert hits({"sel": {"CommandLine": "echo *"}, "condition": "sel"}, docs) == [1, 2]
    assert hits({"sel": {"CommandLine": "what\\?"}, "condition": "sel"}, docs) == [3]
    assert hits({"sel": {"CommandLine": "c:\\path"}, "condition": "sel"}, docs) == [5]  # a lone backslash is literal


def test_cased():
    assert hits({"sel": {"CommandLine|cased|contains": "SH"}, "condition": "sel"}, CMDS) == [1]
    assert hits({"sel": {"CommandLine|cased|contains": "sh"}, "condition": "sel"}, CMDS) == []


def test_null_and_exists():
    assert hits({"sel": {"CommandLine": None}, "condition": "sel"}, CMDS) == [4]
    assert hits({"sel": {"CommandLine|exists": True}, "condition": "sel"}, CMDS) == [1, 2, 3]
    assert hits({"sel": {"CommandLine|exists": False}, "condition": "sel"}, CMDS) == [4]


def test_regex_is_searched_with_its_flags():
    assert hits({"sel": {"CommandLine|re": r"https?://[a-z]\b"[:-2]}, "condition": "sel"}, CMDS) == [1, 2]
    assert hits({"sel": {"CommandLine|re": r"\| sh$"}, "condition": "sel"}, CMDS) == []  # case matters
    assert hits({"sel": {"CommandLine|re|i": r"\| sh$"}, "condition": "sel"}, CMDS) == [1]
    assert hits({"sel": {"CommandLine|re": r"^ls\s+-\w+"}, "condition": "sel"}, CMDS) == [3]
    docs = [proc(1, process={"command_line": "a\nb"}), proc(2, process={"command_line": "xb"})]
    assert hits({"sel": {"CommandLine|re": "a.b"}, "condition": "sel"}, docs) == []  # . is not a newline
    assert hits({"sel": {"CommandLine|re|s": "a.b"}, "condition": "sel"}, docs) == [1]
    assert hits({"sel": {"CommandLine|re": "^b"}, "condition": "sel"}, docs) == []
    assert hits({"sel": {"CommandLine|re|m": "^b"}, "condition": "sel"}, docs) == [1]
    assert hits({"sel": {"CommandLine|re": "(^|x)b"}, "condition": "sel"}, docs) == [2]


def test_regex_that_lucene_cannot_say_is_unsupported():
    with pytest.raises(UnsupportedError, match="look-around"):
        sigma_query(rule_text({"sel": {"CommandLine|re": "a(?=b)"}, "condition": "sel"}))


def test_cidr_and_numeric_comparisons():
    docs = [{"id": 1, "@timestamp": 1, "event": {"category": ["network"], "type": ["start"]},
             "destination": {"ip": "10.1.2.3", "port": 22}},
            {"id": 2, "@timestamp": 2, "event": {"category": ["network"], "type": ["connection"]},
             "destination": {"ip": "192.168.0.1", "port": 4444}}]
    net = {"product": "linux", "category": "network_connection"}
    assert hits({"sel": {"DestinationIp|cidr": "10.0.0.0/8"}, "condition": "sel"}, docs, net) == [1]
    assert hits({"sel": {"DestinationPort": 22}, "condition": "sel"}, docs, net) == [1]
    assert hits({"sel": {"DestinationPort|gt": 22}, "condition": "sel"}, docs, net) == [2]
    assert hits({"sel": {"DestinationPort|gte": 22}, "condition": "sel"}, docs, net) == [1, 2]
    assert hits({"sel": {"DestinationPort|lt": 4444}, "condition": "sel"}, docs, net) == [1]
    assert hits({"sel": {"DestinationPort|lte": 4444}, "condition": "sel"}, docs, net) == [1, 2]


def test_base64_and_utf16_encodings():
    b64 = base64.b64encode(b"evil").decode()
    b64_wide = base64.b64encode("ping".encode("utf-16-le")).decode()
    docs = [proc(1, process={"command_line": f"echo {b64} | base64 -d"}),
            proc(2, process={"command_line": "echo " + base64.b64encode(b"xevil").decode()}),
            proc(3, process={"command_line": "sh -c " + b64_wide})]
    assert hits({"sel": {"CommandLine|base64|contains": "evil"}, "condition": "sel"}, docs) == [1]
    # base64offset: the value at any of the three offsets in a longer encoded text
    assert hits({"sel": {"CommandLine|base64offset|contains": "evil"}, "condition": "sel"}, docs) == [1, 2]
    assert hits({"sel": {"CommandLine|wide|base64|contains": "ping"}, "condition": "sel"}, docs) == [3]
    assert hits({"sel": {"CommandLine|utf16le|base64|contains": "ping"}, "condition": "sel"}, docs) == [3]
    be = base64.b64encode("ping".encode("utf-16-be")).decode()
    assert hits({"sel": {"CommandLine|utf16be|base64|contains": "ping"}, "condition": "sel"},
                docs + [proc(4, process={"command_line": be})]) == [4]


def test_windash():
    docs = [proc(1, process={"command_line": "tool -f x"}), proc(2, process={"command_line": "tool /f x"}),
            proc(3, process={"command_line": "tool f x"})]
    assert hits({"sel": {"CommandLine|windash|contains": " -f "}, "condition": "sel"}, docs) == [1, 2]


def test_fieldref():
    docs = [proc(1, process={"executable": "/bin/sh", "parent": {"executable": "/bin/sh"}}),
            proc(2, process={"executable": "/bin/sh", "parent": {"executable": "/bin/bash"}})]
    assert hits({"sel": {"Image|fieldref": "ParentImage"}, "condition": "sel"}, docs) == [1]


def test_expand_without_placeholder_values_is_refused_with_the_reason():
    with pytest.raises(SigmaUnsupported, match="%admins% has no values"):
        sigma_query(rule_text({"sel": {"User|expand": "%admins%"}, "condition": "sel"}))


#: dates for the time-part modifiers: with an offset (UTC is the day before), without a zone (read as UTC),
#: not a date, missing, ISO week 53 at a year's end and at the next year's start, epoch milliseconds
WHEN = [proc(1, custom={"when": "2026-01-01T02:30:00+05:00"}),  # 2025-12-31T21:30Z
        proc(2, custom={"when": "2026-01-01T02:30:00"}),
        proc(3, custom={"when": "not a date"}), proc(4),
        proc(5, custom={"when": "2020-12-31T10:05:00Z"}),  # ISO week 53 of 2020
        proc(6, custom={"when": "2021-01-03T23:59:59.999-00:30"}),  # 2021-01-04T00:29Z: ISO week 1 of 2021
        proc(7, custom={"when": "2021-01-03T10:00:00Z"}),  # a Sunday: still ISO week 53 of 2020
        proc(8, custom={"when": "2021-01-04T00:00:00+01:00"}),  # 2021-01-03T23:00Z: week 53
        proc(9, custom={"when": "1609459200000"})]  # epoch milliseconds: 2021-01-01T00:00Z (week 53)


@pytest.mark.parametrize("part, value, want", [
    ("hour", 21, [1]), ("hour", 2, [2]), ("hour", 0, [6, 9]), ("hour", 23, [8]),
    ("minute", 30, [1, 2]), ("minute", 29, [6]), ("minute", 5, [5]),
    ("day", 31, [1, 5]), ("day", 1, [2, 9]), ("day", 4, [6]), ("day", 3, [7, 8]),
    ("month", 12, [1, 5]), ("month", 1, [2, 6, 7, 8, 9]),
    ("year", 2025, [1]), ("year", 2026, [2]), ("year", 2021, [6, 7, 8, 9]),
    ("week", 53, [5, 7, 8, 9]), ("week", 1, [1, 2, 6]),
])
def test_time_part_is_read_in_utc(part, value, want):
    assert hits({"sel": {f"custom.when|{part}": value}, "condition": "sel"}, WHEN) == want


def test_time_part_lists_are_or_and_combine_with_other_fields():
    assert hits({"sel": {"custom.when|hour": [21, 2]}, "condition": "sel"}, WHEN) == [1, 2]
    docs = [{**d, "process": {"name": "cron" if d["id"] % 2 else "sh"}} for d in WHEN]
    assert hits({"sel": {"custom.when|hour": [21, 2, 0], "process.name": "cron"}, "condition": "sel"}, docs) == [1, 9]
    assert hits({"sel": {"custom.when|week": 53}, "filter": {"process.name": "sh"}, "condition": "sel and not filter"},
                docs) == [5, 7, 9]


def test_time_part_of_a_date_field():
    """@timestamp is a date field (stored as epoch nanoseconds): its part in UTC."""
    start = {"category": ["process"], "type": ["start"]}
    docs = [{"id": 1, "@timestamp": "2026-03-01T23:10:00-02:00", "event": start},  # 2026-03-02T01:10Z
            {"id": 2, "@timestamp": "2026-03-02T01:59:59.999999Z", "event": start},
            {"id": 3, "@timestamp": "1969-12-31T23:59:59.9995Z", "event": start}]  # before the epoch: floor
    assert hits({"sel": {"@timestamp|hour": 1}, "condition": "sel"}, docs) == [1, 2]
    assert hits({"sel": {"@timestamp|day": 2}, "condition": "sel"}, docs) == [1, 2]
    assert hits({"sel": {"@timestamp|minute": 59}, "condition": "sel"}, docs) == [2, 3]
    assert hits({"sel": {"@timestamp|year": 1969}, "condition": "sel"}, docs) == [3]
    assert hits({"sel": {"@timestamp|week": [9, 10]}, "condition": "sel"}, docs) == [1, 2]  # Monday: 10, not 9
    assert hits({"sel": {"@timestamp|week": 9}, "condition": "sel"}, docs) == []
    assert hits({"sel": {"@timestamp|week": 1}, "condition": "sel"}, docs) == [3]  # ISO week 1 of 1970


def test_time_part_of_a_number_that_is_not_a_date_field_matches_nothing():
    docs = [proc(1, process={"pid": 3}), proc(2, process={"pid": 1609459200000})]
    assert hits({"sel": {"process.pid|hour": [0, 3]}, "condition": "sel"}, docs) == []


def test_time_part_is_not_an_eql_function():
    """Only the Sigma translator emits the time-part function: EQL's names do not include it."""
    from trailhound.lang.errors import EqlSemanticError
    from trailhound.lang.parser import parse

    with pytest.raises(EqlSemanticError, match="unknown function"):
        parse(f'any where {ir.TIME_PART}(custom.when, "hour") == 1')


def test_one_of_all_of_and_them():
    det = {"sel_a": {"Image|endswith": "/curl"}, "sel_b": {"CommandLine|contains": "wget"},
           "filter": {"CommandLine|contains": "-q"}}
    assert hits({**det, "condition": "1 of sel_*"}, CMDS) == [1, 2]
    assert hits({**det, "condition": "all of sel_*"}, CMDS) == []
    assert hits({**det, "condition": "1 of sel_* and not filter"}, CMDS) == [1]
    assert hits({**det, "condition": "1 of them"}, CMDS) == [1, 2]
    assert hits({**det, "condition": "all of them"}, CMDS) == []


def test_keywords_search_message_else_event_original():
    docs = [{"id": 1, "@timestamp": 1, "message": "Accepted password for ROOT from 1.2.3.4"},
            {"id": 2, "@timestamp": 2, "event": {"original": "accepted password for bob"}},
            {"id": 3, "@timestamp": 3, "message": "nothing here", "event": {"original": "accepted password"}},
            {"id": 4, "@timestamp": 4, "message": "session opened"}]
    syslog = {"product": "linux"}
    assert hits({"keywords": ["accepted password", "opened"], "condition": "keywords"}, docs, syslog) == [1, 2, 4]
    assert hits({"keywords": {"|all": ["accepted", "root"]}, "condition": "keywords"}, docs, syslog) == [1]


def test_a_number_keyword_is_a_whole_word():
    docs = [{"id": 1, "@timestamp": 1, "message": "runlevel 6 requested"},
            {"id": 2, "@timestamp": 2, "message": "pid 1600 at 16:00"},
            {"id": 3, "@timestamp": 3, "event": {"original": 'a0="init" a1="6"'}}]
    assert hits({"keywords": [6], "condition": "keywords"}, docs, {"product": "linux"}) == [1, 3]


def test_logsource_selects_events():
    file_event = {"id": 9, "@timestamp": 9, "event": {"category": ["file"], "type": ["creation"]},
                  "process": {"executable": "/usr/bin/curl"}, "file": {"path": "/tmp/x"}}
    docs = [*CMDS, file_event]
    assert hits({"sel": {"Image|endswith": "/curl"}, "condition": "sel"}, docs) == [1]
    assert hits({"sel": {"Image|endswith": "/curl"}, "condition": "sel"}, docs,
                {"product": "linux", "category": "file_event"}) == [9]
    assert hits({"sel": {"TargetFilename|startswith": "/tmp/"}, "condition": "sel"}, docs,
                {"product": "linux", "category": "file_event"}) == [9]


def test_unknown_field_names_are_ecs_names():
    assert hits({"sel": {"process.executable|endswith": "/ls"}, "condition": "sel"}, CMDS) == [3]


def test_other_products_are_unsupported_with_the_reason():
    with pytest.raises(SigmaUnsupported, match="no mapping for logsource"):
        sigma_query(rule_text({"sel": {"Image": "x"}, "condition": "sel"}, {"product": "windows"}))


def test_an_unknown_category_is_unsupported_not_every_event():
    with pytest.raises(SigmaUnsupported, match="category: process_access"):
        sigma_query(rule_text({"sel": {"Image": "x"}, "condition": "sel"},
                              {"product": "linux", "category": "process_access"}))


def test_bad_condition_is_a_rule_error():
    with pytest.raises(SigmaRuleError):
        sigma_query(rule_text({"sel": {"Image": "x"}, "condition": "sel and nosuch"}))


def test_expand_with_placeholder_values_is_an_or_of_them():
    from sigma.rule import SigmaRule

    from trailhound.lang.sigma.translate import translate

    rule = SigmaRule.from_yaml(rule_text({"sel": {"User|expand": "%admins%"}, "condition": "sel"}))
    query = translate(rule, {"admins": ["root", "toor"]}).query
    docs = [proc(1, user={"name": "ROOT"}), proc(2, user={"name": "toor"}), proc(3, user={"name": "bob"})]
    frame = events_from_documents(docs).frame
    [(want, got, where)] = both(query, frame, FrameOptions())
    assert want == got == [0, 1], where
