"""The KQL printer (threshold rules' queries): parse_kql(print_kql(ir)) == ir for what KQL itself says,
and a clear refusal for what KQL cannot say."""

from __future__ import annotations

import pytest

from trailhound.emit import ConversionRefused
from trailhound.emit.kql import filter_kql, print_kql
from trailhound.lang import ir
from trailhound.lang.kql import parse_kql
from trailhound.lang.parser import parse


@pytest.mark.parametrize("text", [
    "process.name:ssh",
    'process.name:"a b\\"c"',
    "process.name:(ssh or scp) and not user.name:root",
    "process.args:-o* and process.command_line:*authorized_keys*",
    "source.ip:10.0.0.0/8 and destination.port >= 1024 and destination.port < 2000",
    "file.path:* and not process.parent.name:*",
    "(a:1 or b:2) and (c:3 or not d:4)",
    "message:*with\\ space*",
])
def test_kql_round_trips(text):
    e = parse_kql(text)
    printed = print_kql(e)
    assert parse_kql(printed) == e, printed


@pytest.mark.parametrize("eql,reason", [
    ('process where process.name : "SSH"', "case-insensitively"),
    ('process where process.name in~ ("a", "b")', "case-insensitively"),
    ('process where process.name regex "s.h"', "is a regex"),
    ('process where process.name like "s?h"', "uses `?`"),
    ("process where length(process.name) > 2", "computed"),
])
def test_what_kql_cannot_say_is_refused(eql, reason):
    q = parse(eql)
    assert isinstance(q, ir.EventQuery)
    with pytest.raises(ConversionRefused, match=reason):
        filter_kql(q.filter)


def test_eql_filters_become_equivalent_kql():
    q = parse('authentication where event.outcome == "failure" and source.port > 22 and process.name like "ssh*"')
    assert isinstance(q, ir.EventQuery)
    assert filter_kql(q.filter) == ('event.category:"authentication" and event.outcome:"failure" and source.port > 22 '
                                    "and process.name:ssh*")
