"""Elasticsearch's EQL QA suite, one test per spec query; skipped where ../shared is absent."""

import pytest

import es_eql

pytestmark = pytest.mark.skipif(not es_eql.available(), reason=f"ES EQL suite not found at {es_eql.SUITE}")

#: Cases whose expectation depends on an Elasticsearch quirk we do not reproduce, with why.
KNOWN = {
    ("EqlDateNanosSpecTestCase", "test_queries.toml", "sequencesOnDifferentEventTypes7"):
        "on a date_nanos index ES matches no sequence within maxspan=500ms although the events lie "
        "microseconds apart; the same query on the millisecond index agrees with us",
}

CASES = es_eql.all_cases()


@pytest.mark.parametrize(
    "cls, spec", CASES, ids=[f"{c.name}:{s.file}:{s.name}" for c, s in CASES]
)
def test_spec(cls, spec):
    reason = KNOWN.get((cls.name, spec.file, spec.name))
    if reason:
        pytest.xfail(reason)
    out = es_eql.run_spec(cls, spec)
    assert out.error is None, out.error
    assert out.passed, f"got ids {out.got} keys {out.got_keys}; want {spec.expected} keys {spec.join_keys}"


def test_every_goal_file_is_played():
    files = {s.file for _, s in CASES}
    assert set(es_eql.GOAL_FILES) <= files
