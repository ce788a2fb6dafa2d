"""Any chunking of the input gives the hits of one batch (issue 16, "Incremental correlators").

The correlators of engine/correlate.py take a query's candidate rows in time-ordered batches. Here
the rows are cut at random points, the state goes through a JSON checkpoint (`to_dict` → JSON text
→ `from_dict`) at every cut, and the hits must equal those of one batch, in the same order:
* on Elasticsearch's EQL QA data (every sequence and sample query of the suite; skipped without
  ../shared), including missing events, until and runs;
* on the lab capture (tests/fixtures/lab) with the SSH pack's sequence and new_terms rules, and a
  threshold and a sample query over the same events;
* on generated events with many equal timestamps (a cut may fall between two of them) for
  sequences with missing events and until, new_terms and threshold.
"""

from __future__ import annotations

import glob
import json
import random
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailhound.engine.correlate import Hit, NewTermsRun, SampleRun, SequenceRun, ThresholdRun
from trailhound.engine.sample import build_samples
from trailhound.engine.search import SearchOptions, candidates, needed_fields, search
from trailhound.engine.threshold import ThresholdHit, ThresholdSpec
from trailhound.lang import ir
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents, load_events

import es_eql

REPO = Path(__file__).resolve().parents[2]
SEC = 1_000_000_000


class Case:
    """One query over one frame: how to start, checkpoint and restore its correlator."""

    def __init__(self, name, query, cand, schema, make, restore):
        self.name, self.query, self.cand, self.schema, self.make, self.restore = name, query, cand, schema, make, restore

    def one_batch(self):
        run = self.make()
        return run.feed(self.cand, self.schema) + run.finish(self.schema)

    def chunked(self, cuts):
        run, hits = self.make(), []
        bounds = [0] + sorted(cuts) + [self.cand.height]
        for lo, hi in zip(bounds, bounds[1:]):
            hits += run.feed(self.cand.slice(lo, hi - lo), self.schema)
            run = self.restore(json.loads(json.dumps(run.to_dict())))
        return hits + run.finish(self.schema)


def _case(name, q, frame, options, max_per_key=1, fields=(), make=None, restore=None) -> Case:
    cand, schema = candidates(q, frame, options, fields)
    if make is None:
        if isinstance(q, ir.SequenceQuery):
            make, restore = (lambda: SequenceRun(q)), (lambda d: SequenceRun.from_dict(q, d))
        else:
            make = lambda: SampleRun(q, max_per_key)  # noqa: E731
            restore = lambda d: SampleRun.from_dict(q, max_per_key, d)  # noqa: E731
    return Case(name, q, cand, schema, make, restore)


def _random_cuts(rng: random.Random, n: int) -> list[int]:
    return [rng.randint(0, n) for _ in range(rng.randint(1, 6))]


# ---- Elasticsearch's QA data -------------------------------------------------------------


@cache
def es_cases() -> tuple[Case, ...]:
    out = []
    for cls in es_eql.CLASSES:
        table, types, aliases = es_eql.dataset(cls.name)
        options = SearchOptions(tiebreaker_field=cls.tiebreaker, es_types=types, aliases=aliases)
        for f in cls.specs:
            for spec in es_eql.load_specs(f):
                q = parse(spec.query)
                if isinstance(q, (ir.SequenceQuery, ir.SampleQuery)):
                    out.append(_case(f"{cls.name}:{spec.name}", q, table.frame, options, spec.max_samples_per_key or 1))
    return tuple(out)


needs_es = pytest.mark.skipif(not es_eql.available(), reason=f"ES EQL suite not found at {es_eql.SUITE}")


@needs_es
def test_es_suite_every_query_any_cuts():
    """Every sequence and sample query of the suite: row by row (missing events and until, small
    candidate sets) or cut between rows of one timestamp, and at random points, gives the hits of
    one batch."""
    cases = es_cases()
    assert len(cases) > 150
    rng = random.Random(16)
    hits = 0
    for case in cases:
        want = case.one_batch()
        hits += len(want)
        n = case.cand.height
        q = case.query
        careful = isinstance(q, ir.SequenceQuery) and (q.until is not None or any(s.missing for s in q.stages))
        ties = _tie_cuts(case.cand)
        cut_sets = [list(range(1, n)) if careful and n <= 20 else rng.sample(ties, min(10, len(ties))),
                    _random_cuts(rng, n)]
        for cuts in cut_sets:
            assert case.chunked(cuts) == want, (case.name, sorted(cuts))
    assert hits > 300
    # the selection holds what it claims to: missing events, until, runs
    seqs = [c.query for c in cases if isinstance(c.query, ir.SequenceQuery)]
    assert any(s.missing for q in seqs for s in q.stages)
    assert any(q.until is not None for q in seqs)
    assert any(len(q.expanded()) > len(q.stages) for q in seqs)


@needs_es
def test_es_one_batch_is_search():
    """Batch search is one batch through the correlators (pipes and size aside)."""
    compared = 0
    for cls in es_eql.CLASSES:
        table, types, aliases = es_eql.dataset(cls.name)
        for f in cls.specs:
            for spec in es_eql.load_specs(f):
                q = parse(spec.query)
                if not isinstance(q, (ir.SequenceQuery, ir.SampleQuery)) or q.pipes:
                    continue
                options = SearchOptions(tiebreaker_field=cls.tiebreaker, es_types=types, aliases=aliases,
                                        max_samples_per_key=spec.max_samples_per_key or 1)
                case = _case(spec.name, q, table.frame, options, spec.max_samples_per_key or 1)
                assert case.one_batch() == search(q, table.frame, options).hits, spec.name
                compared += 1
    assert compared > 100


@needs_es
@given(st.data())
def test_es_suite_random_cuts(data):
    case = data.draw(st.sampled_from(es_cases()))
    n = case.cand.height
    cuts = data.draw(st.lists(st.integers(0, n), max_size=12))
    assert case.chunked(cuts) == case.one_batch(), case.name


# ---- the lab capture with the SSH pack -------------------------------------------------


@cache
def lab_cases() -> tuple[Case, ...]:
    from trailhound.engine.hunt import _options
    from trailhound.rules.check import check_rule
    from trailhound.rules.loader import load_rules
    from trailhound.rules.model import date_math_ms

    paths = sorted(glob.glob(str(REPO / "tests/fixtures/lab/*/audit.log"))) + sorted(
        glob.glob(str(REPO / "tests/fixtures/lab/*/auth.log")))
    threshold_q = parse('authentication where event.outcome == "failure"')
    sample_q = parse('sample by host.name [process where process.name == "ssh"] [authentication where true]')
    checks = [c for c in map(check_rule, load_rules([REPO / "src/trailhound/pack"]).rules) if c.status == "ok"]
    fields = {"@timestamp", "source.ip", "user.name"}  # only the fields the queries read, as hunt loads them
    for q in [c.query for c in checks] + [threshold_q, sample_q]:
        fields.update(needed_fields(q, SearchOptions()))
    for c in checks:
        if c.rule.type == "new_terms":
            fields.update(c.rule.new_terms_spec()[0])
    table = load_events(paths, sorted(fields))
    out = []
    for check in checks:
        rule = check.rule
        options, _ = _options(check, table.present)
        q = check.query
        if isinstance(q, ir.SequenceQuery):
            out.append(_case(rule.name, q, table.frame, options))
        elif rule.type == "new_terms":
            terms, history = rule.new_terms_spec()
            ms = date_math_ms(history)
            out.append(_case(rule.name, q, table.frame, options, fields=terms,
                             make=lambda q=q, t=terms, ms=ms: NewTermsRun(q, t, ms),
                             restore=lambda d, q=q, t=terms, ms=ms: NewTermsRun.from_dict(q, t, ms, d)))
    options = SearchOptions()
    for interval, lookback in ((60, 120), (5 * 60, 6 * 60)):
        spec = ThresholdSpec(("source.ip",), 2, (("user.name", 1),), interval * SEC, lookback * SEC)
        q = threshold_q
        out.append(_case(f"threshold {interval}s", q, table.frame, options, fields=("source.ip", "user.name"),
                         make=lambda q=q, s=spec: ThresholdRun(q, s),
                         restore=lambda d, q=q, s=spec: ThresholdRun.from_dict(q, s, d)))
    out.append(_case("sample", sample_q, table.frame, options, 3))
    return tuple(out)


def test_lab_pack_rules_any_cuts():
    cases = lab_cases()
    kinds = {type(c.make()).__name__ for c in cases}
    assert kinds == {"SequenceRun", "NewTermsRun", "ThresholdRun", "SampleRun"}
    rng = random.Random(15)
    total = 0
    for case in cases:
        want = case.one_batch()
        total += len(want)
        for _ in range(4):
            assert case.chunked(_random_cuts(rng, case.cand.height)) == want, case.name
    assert total > 20  # the capture makes hits of every kind to compare


@given(st.data())
def test_lab_pack_rules_random_cuts(data):
    case = data.draw(st.sampled_from(lab_cases()))
    cuts = data.draw(st.lists(st.integers(0, case.cand.height), max_size=12))
    assert case.chunked(cuts) == case.one_batch(), case.name


# ---- generated events: ties across cuts ------------------------------------------------

GENERATED = [
    "sequence by h with maxspan=3s [a where true] [b where true] [c where true]",
    "sequence by h with maxspan=3s [a where true] ![b where true] [c where true]",
    "sequence by h with maxspan=3s ![c where true] [a where true] [b where true]",
    "sequence by h with maxspan=3s [a where true] [b where true] ![c where true]",
    "sequence by h with maxspan=3s ![c where true] [a where true] ![b where true]",
    "sequence by h [a where true] [b where true] until [c where true]",
    "sequence by h with maxspan=2s [a where true] with runs=2 [b where true]",
    "sequence with maxspan=2s [a where true] ![c where true] [b where true]",
]

events = st.lists(st.tuples(st.integers(0, 12), st.sampled_from("abc"), st.sampled_from(["x", "y", "z"])),
                  min_size=1, max_size=60)


def _frame(evs):
    docs = [{"@timestamp": ts * 500, "event": {"category": c}, "h": h, "i": i}
            for i, (ts, c, h) in enumerate(sorted(evs, key=lambda e: e[0]))]
    return events_from_documents(docs).frame


def _tie_cuts(cand) -> list[int]:
    """A cut between every two rows of one timestamp: the boundary the correlators must wait at."""
    ts = cand["__ts"].to_list()
    return [i for i in range(1, len(ts)) if ts[i] == ts[i - 1]]


def _check(case, cuts):
    want = case.one_batch()
    assert case.chunked([c for c in cuts if c <= case.cand.height]) == want, case.name
    assert case.chunked(_tie_cuts(case.cand)) == want, case.name


@given(events, st.sampled_from(GENERATED), st.lists(st.integers(0, 60), max_size=10))
def test_generated_sequences_any_cuts(evs, query, cuts):
    _check(_case(query, parse(query), _frame(evs), SearchOptions()), cuts)


SAMPLES = ["sample by h [any where true] [a where true] [any where i >= 0]",
           "sample by h [a where true] [any where true]"]


@given(events, st.sampled_from(SAMPLES), st.integers(1, 4), st.lists(st.integers(0, 60), max_size=10))
def test_generated_samples_any_cuts(evs, query, per_key, cuts):
    """Filters that overlap put one event in several filters' lists: the per-key cap must keep enough."""
    case = _case(query, parse(query), _frame(evs), SearchOptions(), per_key)
    _check(case, cuts)
    # and the per-key cap keeps what a sample can use: the same samples as from every row
    per_stage = [{} for _ in case.query.stages]
    for row in case.cand.sort("__row").iter_rows(named=True):
        for i, lists in enumerate(per_stage):
            if row[f"__s{i}"]:
                lists.setdefault((row["h"],), []).append(row["__row"])
    want = [Hit(tuple(rows), key) for key, rows in build_samples(per_stage, per_key)]
    assert case.one_batch() == want


@given(events, st.lists(st.integers(0, 60), max_size=10), st.integers(1, 3), st.sampled_from([(1, 1), (2, 3), (3, 2)]))
def test_generated_threshold_and_new_terms_any_cuts(evs, cuts, value, timing):
    frame = _frame(evs)
    q = parse("any where true")
    spec = ThresholdSpec(("h",), value, (), timing[0] * SEC, timing[1] * SEC)
    case = _case("threshold", q, frame, SearchOptions(), fields=("h",), make=lambda: ThresholdRun(q, spec),
                 restore=lambda d: ThresholdRun.from_dict(q, spec, d))
    rows = [(r["__ts"], r["__row"], (r["h"],), ()) for r in case.cand.iter_rows(named=True)]
    assert case.one_batch() == [Hit(h.rows, h.group) for h in _threshold_reference(rows, spec)]
    _check(_case("threshold", q, frame, SearchOptions(), fields=("h",), make=lambda: ThresholdRun(q, spec),
                 restore=lambda d: ThresholdRun.from_dict(q, spec, d)), cuts)
    _check(_case("new_terms", q, frame, SearchOptions(), fields=("h", "event.category"),
                 make=lambda: NewTermsRun(q, ["h", "event.category"], 2000),
                 restore=lambda d: NewTermsRun.from_dict(q, ["h", "event.category"], 2000, d)), cuts)


def _threshold_reference(events, spec):
    """The replay as one loop over all events (the batch algorithm the incremental state replaced)."""
    if not events:
        return []
    step, last_signal, hits, lo = spec.interval_ns, {}, [], 0
    t, end = (events[0][0] // step + 1) * step, events[-1][0] + step
    while t <= end:
        while lo < len(events) and events[lo][0] <= t - spec.lookback_ns:
            lo += 1
        buckets = {}
        for ts, row, group, card in events[lo:]:
            if ts > t:
                break
            if ts > last_signal.get(group, -1 << 62):
                buckets.setdefault(group, []).append((ts, row, card))
        for group, members in buckets.items():
            if len(members) >= spec.value:
                hits.append(ThresholdHit(group, len(members), tuple(m[1] for m in members), members[0][0], t, ()))
                last_signal[group] = members[-1][0]
        t += step
    return hits


def test_generated_cases_are_not_trivial():
    """The generated shapes do make hits (with missing events too), so the comparisons above bite."""
    rng = random.Random(3)
    evs = [(rng.randint(0, 40), rng.choice("abc"), rng.choice("xy")) for _ in range(200)]
    frame = _frame(evs)
    for query in GENERATED:
        case = _case(query, parse(query), frame, SearchOptions())
        assert case.one_batch(), query
        assert case.chunked(list(range(1, case.cand.height, 7))) == case.one_batch()
