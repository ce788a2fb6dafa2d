"""The shared filters' faster paths (engine/filter/shared.py) give what the plain per-query Polars evaluation
gives: cidrMatch atoms of one field evaluated together over one parse of its addresses, wildcard atoms narrowed
by one multi-pattern scan of their literal parts, and frames whose columns come in many chunks (a Parquet
store's)."""

from __future__ import annotations

import random

import polars as pl
import pytest

from trailhound.engine.filter.frame import columns
from trailhound.engine.filter.shared import SharedFilters
from trailhound.engine.search import SearchOptions, search, search_events_batch
from trailhound.lang.parser import parse
from trailhound.sources import events_from_documents

from helpers import batch_and_singles

PRIVATE = '"10.0.0.0/8", "127.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7", "FE80::/10"'


def _addresses(rng: random.Random, n: int) -> list:
    out: list = []
    for i in range(n):
        kind = i % 9
        if kind == 0:
            out.append(None)
        elif kind == 1:
            out.append(f"fe80::{rng.randint(0, 0xffff):x}")
        elif kind == 2:
            out.append(f"2001:db8::{rng.randint(0, 0xffff):x}")
        elif kind == 3:
            out.append(rng.choice(["not-an-ip", "10.0.0.256", "010.1.2.3", "", "::1", "10.1.2"]))
        else:
            first = rng.choice([10, 127, 172, 192, 8, 100, 169])
            out.append(f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}")
    return out


def _docs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    addresses = _addresses(rng, n)
    words = ["curl", "wget", "/bin/sh", "-c", "ProxyCommand=nc", "AnSiBle", "back?up", "x*y", "/tmp/a.so.1", "Ärger",
             "ſecret", "KELVIN\u212a", "", "127.0.0.1:8080"]
    docs = []
    for i in range(n):
        args = [rng.choice(words) + (str(rng.randint(0, 50)) if rng.random() < 0.5 else "") for _ in range(3)]
        doc = {"@timestamp": f"2025-03-11T10:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
               "event": {"category": rng.choice(["process", "network"])},
               "process": {"args": args if i % 11 else [], "command_line": " ".join(args) if i % 13 else None,
                           "name": rng.choice(["curl", "bash", "Python3"])},
               "file": {"path": f"/{rng.choice(['tmp', 'usr/lib', 'etc/ssl/certs'])}/{rng.choice(words)}{i % 700}"}}
        if addresses[i] is not None:
            doc["destination"] = {"ip": addresses[i]}
        docs.append(doc)
    return docs


CIDR_QUERIES = [
    f"network where cidrMatch(destination.ip, {PRIVATE})",
    f"network where not cidrMatch(destination.ip, {PRIVATE})",
    'network where cidrMatch(destination.ip, "10.0.0.0/8") and not cidrMatch(destination.ip, "10.1.0.0/16")',
    'any where cidrMatch(destination.ip, "0.0.0.0/0") or process.name == "bash"',
    'any where cidrMatch(destination.ip, "2001:db8::/32", null)',
]


@pytest.mark.parametrize("n", [300, 20_000], ids=["few-addresses", "vectorized"])
def test_cidr_atoms_of_a_field_equal_single_searches(n):
    frame = events_from_documents(_docs(n, n)).frame
    shared, got, singles = batch_and_singles(CIDR_QUERIES, frame)
    for q, g, want in zip(CIDR_QUERIES, got, singles):
        assert [h.rows for h in g.hits] == [h.rows for h in want.hits], q
    assert all(g.hits for g in got)
    atoms = [a for a in shared._atoms.values() if a.cidrs is not None]
    assert len(atoms) >= 4  # they took the shared path


def test_columns_of_a_frame_in_many_chunks_are_its_columns():
    parts = [pl.DataFrame({"a": [i, i + 1], "b": [str(i), None]}) for i in range(0, 40, 2)]
    frame = pl.concat(parts, rechunk=False)
    assert frame["a"].n_chunks() > 1
    picked = columns(frame, ["b", "a"])
    assert picked.columns == ["b", "a"]
    assert picked.equals(frame.select("b", "a"))


WILDCARD_QUERIES = [
    'process where process.args : ("*curl*", "wget?", "*ProxyCommand=*")',
    'process where process.args : ("*ANSIBLE*", "/bin/*")',  # case-insensitive: the lower-cased companion
    'process where process.args : "*secret*"',  # 'ſ' lower-cases to itself: no match on the needle "secret"
    'process where process.args : "*kelvin*"',  # KELVIN SIGN lower-cases to 'k'
    'process where process.args : ("?", "*")',  # no literal: every array with a value
    'process where not process.args : "*x?y*"',
    'process where process.args like ("x*y*", "back?up*")',
    'process where process.command_line : ("*curl*wget*", "*127.0.0.1:80*") or process.name == "bash"',
    'process where process.command_line like~ "*äRGER*"',
    'process where not process.command_line : "*-c*"',
    'any where file.path : ("/usr/lib/*.so.*", "*/certs/*ans*", "/tmp/x?y*")',
    'any where file.path like "/tmp/*" and not file.path : "*/Ärger*"',
    'any where process.args : "*-c*" and file.path : "/etc/*"',
]


def test_wildcard_atoms_narrowed_by_their_needles_equal_single_searches():
    frame = events_from_documents(_docs(30_000, 7)).frame
    shared, got, singles = batch_and_singles(WILDCARD_QUERIES, frame)
    for q, g, want in zip(WILDCARD_QUERIES, got, singles):
        assert [h.rows for h in g.hits] == [h.rows for h in want.hits], q
    assert sum(bool(g.hits) for g in got) >= 10
    narrowed = [a for a in shared._atoms.values() if a.needles is not None]
    assert len(narrowed) >= 8 and any(a.element_wise for a in narrowed) and any(a.lowered for a in narrowed)


def test_required_literal_is_in_every_match():
    import re

    from trailhound.compile.patterns import required_literal, wildcard_to_regex

    rng = random.Random(3)
    for _ in range(2000):
        pattern = "".join(rng.choice("ab*?c") for _ in range(rng.randint(1, 7)))
        text = "".join(rng.choice("abc") for _ in range(rng.randint(0, 9)))
        if re.match(wildcard_to_regex(pattern), text):
            assert required_literal(pattern) in text, (pattern, text)
    assert required_literal("*/bin/*sh?x") == "/bin/" and required_literal("*?*") == ""


def test_atoms_on_an_optional_field_take_the_shared_paths_with_the_same_hits():
    """`?field` reads the same column as `field`: its wildcards are narrowed by their needles and its cidrMatch
    shares the parse of the addresses, with the hits of the plain field and of a single search."""
    frame = events_from_documents(_docs(20_000, 3)).frame
    options = SearchOptions()
    pairs = [('process where ?process.command_line : ("*curl*wget*", "*127.0.0.1:80*")',
              'process where process.command_line : ("*curl*wget*", "*127.0.0.1:80*")'),
             ('any where ?file.path : "/usr/lib/*.so.*"', 'any where file.path : "/usr/lib/*.so.*"'),
             (f"network where cidrMatch(?destination.ip, {PRIVATE})", f"network where cidrMatch(destination.ip, {PRIVATE})")]
    optional = [parse(q) for q, _ in pairs]
    shared = SharedFilters(frame, options)
    got = search_events_batch(optional, frame, options, shared)
    for (q, plain), g in zip(pairs, got):
        want = [h.rows for h in search(parse(plain), frame, options).hits]
        assert want and [h.rows for h in g.hits] == want == [h.rows for h in search(parse(q), frame, options).hits], q
    atoms = [a for a in shared._atoms.values() if a.field in ("process.command_line", "file.path", "destination.ip")]
    assert len(atoms) == 3 and all(a.needles is not None or a.cidrs is not None for a in atoms)


def test_a_date_tiebreaker_orders_by_its_instant_in_batch_and_single_searches():
    """Regression: the batch searches (what a hunt runs) ordered a date tiebreaker by its text, the single search
    by its instant; Elasticsearch sorts a date field by its instant. Two events at one time whose tiebreakers are
    in the other order as text ('01:00+01:00' is 00:00Z)."""
    from trailhound.engine.search import search_sequences_batch

    docs = [{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process", "created": created},
             "host": {"name": host}, "process": {"name": name}}
            for host, name, created in (("b", "ssh", "2025-01-01T00:00:00Z"), ("a", "ssh", "2025-01-01T00:00:00Z"),
                                        ("b", "scp", "2026-01-01T00:00:30Z"), ("a", "scp", "2026-01-01T01:00:00+01:00"))]
    frame = events_from_documents(docs).frame
    q = parse('sequence by host.name [process where process.name == "ssh"] [process where process.name == "scp"]')
    options = SearchOptions(tiebreaker_field="event.created", es_types={"event.created": "date"})
    single = search(q, frame, options).hits
    (batch,) = search_sequences_batch([q], frame, options)
    assert [h.rows for h in batch.hits] == [h.rows for h in single] == [(1, 3), (0, 2)]
