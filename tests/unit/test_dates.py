"""compile/dates.py, the one home of timestamp parsing: its fast paths give what its general parsers
give, and a column parsed vectorized reads as the same values parsed one by one (a query compares
event fields, parsed as columns, with date constants, parsed as values)."""

from __future__ import annotations

import random

import polars as pl
import pytest

from trailhound.compile import dates
from trailhound.compile.dates import parse_date_ns, parse_dates_ns, parse_time_ns

#: layouts the general parsers read, and values they refuse
LAYOUTS = ["2026-01-01T00:00:05Z", "2026-01-01T00:00:05.123456Z", "2026-01-01T00:00:05.123456789Z",
           "2026-01-01T02:00:05+02:00", "2026-01-01T00:00:05.1-0530", "2026-01-01T00:00:05", "2026-01-01 00:00:05",
           "2026-01-01", "2026-01-01T00:00", "1767225605000", " 1767225605000 ", "-5", "1.5", "20260101T000005Z",
           "2026-01-01T00:00:05.1234567Z", "garbage", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", None]
#: the edges of the 64-bit nanosecond range, and beyond
EDGES = ["2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775808Z", "1677-09-21T00:12:43.145224192Z",
         "1677-09-21T00:12:43.145224191Z", "9999-12-31T23:59:59Z", "1677-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
         "2262-05-01 00:00:00", "1600-01-01"]


def test_iso_fast_path_equals_the_general_parser(monkeypatch):
    rng = random.Random(3)

    def stamp() -> str:
        odd = rng.random() < 0.02  # now and then a part out of range: Arrow refuses the column
        parts = [rng.choice([1970, 1999, 2000, 2024, 2025, 2262]), rng.randint(0, 13) if odd else rng.randint(1, 12),
                 rng.randint(1, 28) if not odd else rng.randint(28, 32), rng.randint(0, 24 if odd else 23),
                 rng.randint(0, 59), rng.randint(0, 60 if odd else 59)]
        text = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*parts)
        text += rng.choice(["", ".1", ".123", ".123456", ".123456789"])
        return text + rng.choice(["Z", "+00:00", "-0530", "+14:00", "+02"])

    plausible = [stamp() for _ in range(5000)]
    for nanos in (False, True):
        series = [pl.Series("t", [rng.choice(plausible) for _ in range(rng.randint(1, 8))] + [None])
                  for _ in range(600)]
        fast = [dates.parse_dates_ns(s, nanos) for s in series]
        assert 100 < sum(dates._parse_iso(s) is not None for s in series) < 600  # both paths taken
        monkeypatch.setattr(dates, "_parse_iso", lambda s: None)
        slow = [dates.parse_dates_ns(s, nanos) for s in series]
        monkeypatch.undo()
        for s, a, b in zip(series, fast, slow):
            assert a.to_list() == b.to_list(), s.to_list()
    clean = pl.Series("t", ["2025-03-11T00:00:00.123456789Z", "2025-03-11T01:00:00+01:00", None])
    assert dates._parse_iso(clean) is not None  # the fast path does serve the usual layout
    assert dates.parse_dates_ns(clean, False).to_list() == [1741651200123000000, 1741651200000000000, None]


@pytest.mark.parametrize("nanos", [False, True], ids=["date", "date_nanos"])
def test_a_column_reads_as_its_values_one_by_one(nanos):
    for value in LAYOUTS + EDGES:
        want = parse_date_ns(value, nanos)
        alone = parse_dates_ns(pl.Series("t", [value], dtype=pl.String), nanos).to_list()[0]
        # beside a value Arrow refuses, the column takes the general path
        mixed = parse_dates_ns(pl.Series("t", [value, "2026-01-01 00:00:05"], dtype=pl.String), nanos).to_list()[0]
        assert alone == mixed == want, value


def test_dates_beyond_the_nanosecond_range_are_not_wrapped_around():
    """Polars' parser wrapped 9999-12-31 around to a date in 1816 (and 1677-01-01 to one in 2261)."""
    column = pl.Series("t", ["9999-12-31T23:59:59Z", "1677-01-01T00:00:00Z", "2026-01-01 00:00:05"])
    assert parse_dates_ns(column, True).to_list() == [None, None, 1767225605000000000]
    assert parse_date_ns("9999-12-31T23:59:59Z", True) is None


def test_the_event_time_fast_path_equals_the_general_parser():
    rng = random.Random(11)
    for _ in range(3000):
        text = "{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}".format(
            rng.randint(1678, 2261), rng.randint(1, 12), rng.randint(1, 28), rng.choice("T "),
            rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
        text += rng.choice(["", ".1", ".12", ".123", ".123456", ".1234567", ".123456789"])
        text += rng.choice(["", "Z", "+00:00", "-05:30", "+0200", "+14:00"])
        assert parse_time_ns(text) == parse_date_ns(text, nanos=True), text
    for value in LAYOUTS + EDGES[:4] + [1767225605000, 1767225605000.5]:
        assert parse_time_ns(value) == parse_date_ns(value, nanos=True), value
    # beyond the nanosecond range an event's time (which only schedules its alert) is still its date
    assert parse_time_ns("9999-12-31T23:59:59Z") == 253402300799 * 10**9
