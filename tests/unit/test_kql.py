"""KQL: Kibana's semantics for keyword fields, compiled to the same IR and engine as EQL."""

import pytest
from test_backends import both

from trailhound.engine.filter.frame import FrameOptions
from trailhound.engine.search import SearchOptions, search
from trailhound.lang.errors import QueryError
from trailhound.lang.kql import parse_kql, parse_kql_query
from trailhound.sources import events_from_documents

from helpers import ev

DOCS = [
    ev(1, 1, "process", process={"name": "ssh", "args": ["ssh", "-i", "k"], "executable": "/usr/bin/ssh"},
       destination={"port": 22}, source={"ip": "10.1.2.3"}),
    ev(2, 2, "process", process={"name": "SSH", "args": ["SSH"], "executable": "/opt/a?b/ssh"},
       destination={"port": 2222}, source={"ip": "192.168.0.9"}),
    ev(3, 3, "file", file={"name": "authorized_keys", "path": "/root/.ssh/authorized_keys"}, message="hello world"),
    ev(4, 4, "file", file={"name": "authorized_keys2"}, process={"name": "dpkg", "executable": "/usr/bin/dpkg"}),
]


def ids(kql):
    table = events_from_documents(DOCS)
    result = search(parse_kql_query(kql), table.frame, SearchOptions())
    return [DOCS[h.rows[0]]["id"] for h in result.hits]


def test_terms_are_exact_and_case_sensitive():
    assert ids("process.name:ssh") == [1]
    assert ids('process.name:"SSH"') == [2]
    assert ids("event.category:file") == [3, 4]
    assert ids("process.args:-i") == [1]  # any element of an array


def test_wildcards_star_only_and_literal_in_quotes():
    assert ids("process.executable:/usr/bin/*") == [1, 4]
    assert ids('process.executable:"/usr/bin/*"') == []
    assert ids("process.executable:/opt/a?b/*") == [2]  # ? is not a wildcard in KQL
    assert ids("process.executable:/opt/axb/*") == []
    assert ids("process.executable:\\/usr\\/bin\\/ssh") == [1]  # escapes


def test_exists_ranges_cidr_and_multi_word_values():
    assert ids("process.name:*") == [1, 2, 4]
    assert ids("destination.port >= 1000") == [2]
    assert ids("destination.port:22") == [1]
    assert ids("source.ip:10.0.0.0/8") == [1]
    assert ids("message:hello world") == [3]


def test_value_logic_and_negation_of_missing_fields():
    assert ids('file.name:("authorized_keys" or "authorized_keys2") and not process.executable:(/usr/bin/dpkg)') == [3]
    assert ids("event.category:process and not process.name:(ssh or dpkg)") == [2]
    assert ids("not source.ip:10.0.0.0/8") == [2, 3, 4]  # must_not: events without source.ip match
    assert ids("process.name:(* and not (ssh or dpkg))") == [2]
    assert ids("NOT event.category:file AND destination.port < 100") == [1]


def test_nested_groups_prefix_their_fields():
    assert parse_kql("process:{ name:ssh and pid > 1 }") == parse_kql("process.name:ssh and process.pid > 1")


def test_keywords_are_whole_words_only():
    assert parse_kql("order:1 and notes:x") == parse_kql("(order:1) AND (notes:x)")


@pytest.mark.parametrize("kql, message", [
    ("ssh", "free-text search"),
    ("process.*:x", "wildcard field names"),
    ("x:(a", "ends too early"),
    ("a:b)", "unexpected ')'"),
    ("port > 1*", "wildcard"),
])
def test_rejections_say_why_and_where(kql, message):
    with pytest.raises(QueryError) as info:
        parse_kql(kql)
    assert message in info.value.message
    assert info.value.line == 1 and "^" in str(info.value)


@pytest.mark.parametrize("kql", [
    "process.name:ssh", "process.executable:/opt/a?b/*", "not source.ip:10.0.0.0/8", "destination.port >= 1000",
    "process.name:(* and not (ssh or dpkg))", 'file.name:("authorized_keys" or x*)',
])
def test_polars_and_sql_backends_agree_on_kql(kql):
    for want, got, where in both(parse_kql_query(kql), events_from_documents(DOCS).frame, FrameOptions()):
        assert got == want, where
