"""Wildcard atoms of the shared filters (engine/filter/shared.py) narrowed per pattern: each pattern tested on the
texts holding its needle only (`*needle*` ones answered by the needle scan alone), never compiled to a Polars
expression; other atoms compiled when first evaluated. The same rows as the plain per-query Polars evaluation
(Kleene truth, nulls unknown, arrays element-wise, case-insensitive matches), and a filter that does not compile
still fails alone, when it is added."""

from __future__ import annotations

import random

import polars as pl
import pytest

from trailhound.engine.filter.plan import LazyExpr
from trailhound.engine.filter.shared import CompiledAtoms, SharedFilters
from trailhound.engine.search import SearchOptions, search, search_events_batch
from trailhound.lang import ir
from trailhound.lang.errors import QueryError
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

from helpers import batch_and_singles

WORDS = ["curl", "wget", "-c", "/bin/bash", "/tmp/abc.sh", "ABC", "aBc", "xabcabx", "Ärger", "KELVIN\u212a", "",
         "/home/u/.ssh/id_rsa", "nc -e", "b", "bc"]


def _docs(n: int, seed: int, rare: bool = True) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        args = [rng.choice(WORDS) + (str(rng.randint(0, 30)) if rng.random() < 0.4 else "") for _ in range(2)]
        if rare and i % 997 == 5:
            args.append("/opt/RareTool --flag")  # a needle in a handful of values: evaluated on those alone
        doc = {"@timestamp": f"2025-03-11T10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
               "event": {"category": "process"},
               "process": {"args": None if i % 17 == 0 else (args if i % 11 else []),
                           "command_line": " ".join(args) if i % 13 else None,
                           "name": rng.choice(["curl", "bash", None])},
               "file": {"path": None if i % 7 == 0 else f"/{rng.choice(['tmp', 'usr/lib', 'home/u'])}/{args[0]}"}}
        docs.append(doc)
    return docs


QUERIES = [
    'process where process.args : ("*abc*", "*b*")',  # needles inside one another: a text holds both
    'process where process.args : "*ABC*"',  # case-insensitive `*needle*`: the lower-cased companion
    'process where process.args like "*ABC*"',  # case-sensitive
    'process where process.args like~ ("*kelvin*", "*ärger*")',
    'process where not process.args : "*bash*"',  # Kleene: an array without values is false, pushed down
    'process where process.args : ("*raretool*", "/opt/*")',  # rare needles: evaluated on their own texts
    'process where process.args : "/opt/*tool*"',
    'process where process.args like ("b", "wget?", "/tmp/*.sh")',  # equals, regex and prefix... in one atom
    'process where process.command_line : "*nomatch-anywhere*"',  # no needle found: never compiled
    'process where not process.command_line : "*zzz-nowhere*"',  # null command lines stay unknown
    'process where process.command_line : ("*curl*wget*", "nc -e*", "*-c")',
    'process where process.command_line : ("*", "?")',  # no needle: over every text
    'process where not process.command_line like~ "*RARETOOL*"',
    'any where file.path : ("/tmp/*", "*/.ssh/*") and not file.path : "*id_rsa*"',
    'any where not file.path : "*/nowhere-at-all/*" or process.name == "bash"',
    'any where file.path like ("/home/*", "*.sh")',
]


def _rows(results) -> list:
    return [[h.rows for h in r.hits] for r in results]


@pytest.mark.parametrize("n", [3_000, 25_000], ids=["one-thread", "threaded"])
def test_lazy_and_contains_atoms_give_the_rows_of_single_searches(n):
    frame = events_from_documents(_docs(n, n)).frame
    shared, got, singles = batch_and_singles(QUERIES, frame)
    assert _rows(got) == _rows(singles)
    assert sum(bool(g.hits) for g in got) >= 12
    atoms = [a for a in shared._atoms.values() if a.patterns is not None]
    assert len(atoms) >= 15 and all(isinstance(a.expr, LazyExpr) for a in atoms)
    # each pattern tested on the texts holding its needle: no expression of theirs compiled, none evaluated
    assert not any(a.expr.compiled for a in atoms)  # type: ignore[union-attr]
    kinds = {kind for a in atoms for kind, _, _ in a.patterns or ()}
    assert kinds == {"contains", "equals", "prefix", "suffix", "regex"}
    (anywhere,) = [a for a in shared._atoms.values() if a.key.endswith("patterns=('*', '?'), case_insensitive=True)")]
    assert anywhere.patterns is None and isinstance(anywhere.expr, LazyExpr) and anywhere.expr.compiled


def test_a_stream_of_frames_alike_compiles_an_atom_once_and_narrows_the_others():
    """Frames alike share compiled atoms (watch): an atom without needles is compiled for the first batch and
    read by the next ones; a narrowed one is never compiled; each batch gets the rows of a single search."""
    options = SearchOptions()
    compiled = CompiledAtoms()
    q = parse('process where process.args : ("/opt/*tool*", "*raretool*") and not process.command_line : "?"')
    seen = []
    for rare in (False, True, False):
        frame = events_from_documents(_docs(2_000, 5, rare=rare)).frame
        shared = SharedFilters(frame, options, compiled)
        (got,) = search_events_batch([q], frame, options, shared)
        assert _rows([got]) == _rows([search(q, frame, options)])
        assert bool(got.hits) == rare
        (narrowed,) = [a for a in shared._atoms.values() if "/opt/" in a.key]
        (whole,) = [a for a in shared._atoms.values() if "patterns=('?',)" in a.key]
        assert isinstance(narrowed.expr, LazyExpr) and not narrowed.expr.compiled and narrowed.patterns
        assert isinstance(whole.expr, LazyExpr) and whole.expr.compiled and whole.patterns is None
        seen.append(whole.expr)
    assert seen[0] is seen[1] is seen[2]


def test_a_wildcard_that_cannot_compile_fails_its_own_filter_when_added():
    """A lazily compiled wildcard is checked when its filter is added: its error belongs to that filter (a rule's
    error in a hunt), and the other filters of the batch keep their rows."""
    frame = events_from_documents(_docs(2_000, 9)).frame
    options = SearchOptions()
    too_long = ir.Match(ir.Field("process.command_line"), "wildcard", ("*a?" + "b" * 10_001 + "*",), False)
    bad = ir.EventQuery(ir.EventFilter("process", too_long), ())
    good = parse('process where process.command_line : "*curl*"')
    shared = SharedFilters(frame, options)
    with pytest.raises(QueryError, match="characters long"):
        shared.add(bad.filter)
    assert not shared._pending.get("process.command_line") or all(
        "bbbb" not in a.key for a in shared._pending["process.command_line"])
    got = search_events_batch([good, bad, good], frame, options, SharedFilters(frame, options))
    assert isinstance(got[1], QueryError) and "characters long" in str(got[1])
    assert _rows([got[0], got[2]]) == _rows([search(good, frame, options)] * 2) and got[0].hits


def test_needle_rows_are_the_texts_holding_each_needle():
    from trailhound.engine.filter.plan import Atom
    from trailhound.engine.filter.shared import _needle_rows

    texts = ["abc", "aaa", None, "xabcabx", "", "bcb", "Ärger", "abcabc"]
    frame = pl.DataFrame({"f": texts})
    atoms = [Atom(pl.lit(True), "f", False, needles=n) for n in (("abc",), ("b", "bc"), ("aa",), ("zz",), ("ärg",))]
    atoms.append(Atom(pl.lit(True), "f", False))  # no needles
    got = _needle_rows(frame, "f", atoms)
    needles = ["aa", "abc", "b", "bc", "zz", "ärg"]
    want = {(False, x): [i for i, t in enumerate(texts) if t is not None and x in t] for x in needles}
    assert {k: list(v) for k, v in got.items()} == {k: v for k, v in want.items() if v}
    assert (False, "zz") not in got and (False, "ärg") not in got  # 'Ärger' is not lower-cased here


def test_narrowed_truths_of_scalar_atoms_equal_their_full_evaluation():
    """Per distinct text: true, false, or unknown (a missing text), as the atom's expression says over every text;
    atoms with rare needles, common needles, none found, and `*needle*` ones."""
    from trailhound.compile.polars import lowered_columns

    frame = events_from_documents(_docs(6_000, 11)).frame
    shared = SharedFilters(frame, SearchOptions())
    for q in QUERIES:
        shared.add(parse(q).filter)
    shared._evaluate_pending()
    atoms = [a for a in shared._atoms.values() if a.needles is not None and not a.element_wise]
    assert len(atoms) >= 8 and all(a.patterns for a in atoms)
    for a in atoms:
        assert a.field is not None
        values = shared.field(a.field).values
        values = values.with_columns(lowered_columns([ir.Match(ir.Field(a.field), "wildcard", ("",), True)],
                                                     shared.schema).values())
        full = values.select(a.expression().alias("v")).to_series()
        assert full.null_count() == 1  # the missing text
        assert a.true is not None and a.false is not None
        assert a.true.tolist() == full.fill_null(False).to_list(), a.key
        assert a.false.tolist() == (~full).fill_null(False).to_list(), a.key


def test_a_narrowable_atom_over_values_that_are_not_text_is_evaluated_whole():
    """The needles are looked for in text columns only: over values the compiler reads as something else (a date
    field's values are instants) the atom's own expression decides, not the absence of needles."""
    from trailhound.engine.filter.plan import Atom
    from trailhound.engine.filter.shared import _evaluate_narrowed

    frame = pl.DataFrame({"f": [10, 21, None, 13]})
    atom = Atom(pl.col("f").cast(pl.String).str.starts_with("1"), "f", False, needles=("1",),
                patterns=(("prefix", "1", "1"),))
    true, false = _evaluate_narrowed(frame, "f", [atom])
    assert true[0].tolist() == [True, False, False, True] and false[0].tolist() == [False, True, False, False]
