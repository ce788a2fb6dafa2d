"""Elasticsearch EQL semantics on small fixtures: arrays, nulls, negation, case, patterns."""

import pytest

from helpers import ev, run

DOCS = [
    ev(1, 1, process={"name": "ssh", "args": ["ssh", "-i", "key", "host"], "pid": 10}),
    ev(2, 2, process={"name": "SSH", "args": ["SSH", "-I"], "pid": -3}),
    ev(3, 3, process={"name": "sshd", "args": [], "pid": 7}),
    ev(4, 4, process={"args": [None]}),
    ev(5, 5, "file", file={"path": "/root/.ssh/authorized_keys"}, process={"name": "cp", "args": "cp"}),
    ev(6, 6, process={"name": "1abc", "pid": 1234}),
]


def ids(q, docs=DOCS, **kw):
    return run(q, docs, **kw)


def test_category_is_exact_and_any_matches_all():
    assert ids("file where true") == [5]
    assert ids("any where true") == [1, 2, 3, 4, 5, 6]
    assert ids("FILE where true") == []


def test_case_sensitivity_per_operator():
    assert ids('process where process.name == "ssh"') == [1]
    assert ids('process where process.name : "ssh"') == [1, 2]
    assert ids('process where process.name like "SSH*"') == [2]
    assert ids('process where process.name like~ "SSH*"') == [1, 2, 3]
    assert ids('process where process.name in ("ssh", "sshd")') == [1, 3]
    assert ids('process where process.name in~ ("ssh")') == [1, 2]
    assert ids('process where startsWith(process.name, "S")') == [2]
    assert ids('process where startsWith~(process.name, "S")') == [1, 2, 3]


def test_wildcards_are_not_special_elsewhere():
    assert ids('process where process.name == "ssh*"') == []
    assert ids('process where process.name in~ ("1*")') == []
    assert ids('process where process.name : "1*"') == [6]
    assert ids('process where process.name : "ss?"') == [1, 2]
    assert ids('any where file.path : "*/.ssh/*"') == [5]


def test_regex_is_anchored_lucene():
    assert ids('process where process.name regex "ss."') == [1]
    assert ids('process where process.name regex "s"') == []
    assert ids('process where process.name regex~ "s+h"') == [1, 2]
    # \\d is a literal d in Lucene, not a digit class
    assert ids('process where process.name regex """\\d.*"""') == []
    assert ids('process where process.name regex """1[a-c]+"""') == [6]


def test_any_element_semantics_on_arrays():
    assert ids('process where process.args == "-i"') == [1]
    assert ids('process where process.args : "-i"') == [1, 2]
    assert ids('process where process.args : ("*key*", "nothing")') == [1]
    assert ids('process where length(process.args) == 2') == [1, 2]  # "-i" and "-I" have length 2
    assert ids('any where process.args : "cp"') == [5]  # a scalar in another doc is one value


def test_null_tests_treat_empty_and_null_arrays_as_missing():
    assert ids("process where process.args == null") == [3, 4, 6]
    assert ids("process where process.args != null") == [1, 2]
    assert ids("process where ?no.such.field == null") == [1, 2, 3, 4, 6]


def test_negation_follows_lucene_pushdown():
    # != and not on field-vs-constant predicates match events without the field
    assert ids('process where process.name != "ssh"') == [2, 3, 4, 6]
    assert ids('process where not process.name : "ssh*"') == [4, 6]
    assert ids('process where process.name not in ("ssh", "SSH")') == [3, 4, 6]
    # != over an array is "no value equals"
    assert ids('process where process.args != "-i"') == [2, 3, 4, 6]
    # a negated range is the opposite range: no match without the field
    assert ids("process where not process.pid > 5") == [2, 6][:1]
    # scripts (functions) keep three-valued logic: null stays no match under not
    assert ids('process where not startsWith(process.name, "s")') == [2, 6]


def test_three_valued_logic_and_null_equality():
    assert ids("process where null == (process.pid > 5)") == [4]
    assert ids("process where process.pid > 5 or process.name == \"SSH\"") == [1, 2, 3, 6]


def test_java_arithmetic():
    assert ids("process where process.pid / 2 == -1") == [2]  # -3 / 2 truncates toward zero
    assert ids("process where process.pid % 2 == -1") == [2]  # sign of the dividend
    assert ids("process where process.pid < 4.5 and process.pid > 3.9") == []
    assert ids("process where 4 / 3 == 1 and process.pid == 10") == [1]


def test_constants_take_the_field_type():
    assert ids('process where process.pid == "1234"') == [6]
    assert ids('process where process.name == 1') == []
    docs = [ev(1, 1, code="1234"), ev(2, 2, code="12")]
    assert ids("process where code == 1234", docs) == [1]


def test_ordering_tiebreaker_head_tail_and_size():
    docs = [ev(1, 5, seq=2), ev(2, 5, seq=1), ev(3, 1, seq=9), ev(4, 5)]
    assert ids("process where true", docs) == [3, 1, 2, 4]  # equal times: input order
    assert ids("process where true", docs, tiebreaker_field="seq") == [3, 2, 1, 4]  # null tiebreaker last
    assert ids("process where true | head 3 | tail 2", docs) == [1, 2]
    assert ids("process where true", docs, size=2, result_position="tail") == [2, 4]


def test_iso_and_epoch_timestamps_order_together():
    docs = [ev(1, "2024-01-01T00:00:01.000Z"), ev(2, 999 + 1704067200000), ev(3, "2024-01-01T00:00:00Z")]
    assert ids("process where true", docs) == [3, 2, 1]
    assert ids('process where @timestamp >= "2024-01-01T00:00:00.999Z"', docs) == [2, 1]


def test_field_name_typos_are_reported_not_silent():
    from trailhound.engine.search import SearchOptions, search
    from trailhound.lang.parser import parse
    from trailhound.sources import events_from_documents

    table = events_from_documents(DOCS)
    result = search(parse('process where proces.name == "ssh"'), table.frame, SearchOptions())
    assert result.hits == []
    assert any("proces.name" in w for w in result.warnings)


def test_multi_field_condition_over_an_array_is_refused_with_a_reason():
    from trailhound.lang.errors import QueryError

    with pytest.raises(QueryError, match="multi-valued field 'process.args'"):
        ids('process where concat(process.args, process.name) == "x"')
