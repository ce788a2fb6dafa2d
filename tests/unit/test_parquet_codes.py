"""The columnar store's field codes (schema version 2): written for fields of few distinct values, read instead of
the fields' columns, and the hunt's filters over them give exactly what they give over the fields' values."""

from __future__ import annotations

import json
import random

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trailhound.compile import patterns
from trailhound.engine.filter.shared import SharedFilters
from trailhound.engine.hunt import hunt
from trailhound.engine.search import SearchOptions, search_events_batch, search_samples_batch, search_sequences_batch
from trailhound.lang.errors import EqlSemanticError
from trailhound.lang.parser import parse
from trailhound.rules.check import check_rule
from trailhound.rules.loader import load_rules
from trailhound.sources import SourceError, events_from_documents, load_events
from trailhound.sources import parquet_writer as store
from trailhound.sources.dictionary import encode, merge

from helpers import rule, write_case

NAMES = ["ssh", "sshd", "scp", "bash", "sudo", None]
USERS = ["root", "alice", "bob", None]
HOSTS = ["h1", "h2", "h3"]
ARGS = [["ssh", "-i", "key", "root@h2"], ["scp", "a", "h3:/tmp"], ["bash"], ["sudo", "-u", "bob", "id"], [], None]
IPS = ["10.0.0.1", "10.0.0.2", "192.168.1.9", "172.16.0.4", None]


def _docs(n: int = 420, seed: int = 7) -> list[dict]:
    """Events of few distinct values per field (so the store codes them), with nulls, empty and null arrays, a field
    absent from whole files, a field whose type changes between files, and an id distinct on every event."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        d = {"@timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "id": i,
             "event": {"category": rng.choice(["process", "authentication", "network"]),
                       "type": rng.choice([["start"], ["start", "info"], ["end"]])},
             "process": {"name": rng.choice(NAMES), "args": rng.choice(ARGS), "pid": rng.randint(1, 9)},
             "host": {"name": rng.choice(HOSTS)}, "user": {"name": rng.choice(USERS)},
             "source": {"ip": rng.choice(IPS)}}
        if 100 <= i < 200:  # absent from these events (whole files of the store)
            del d["user"]
        d["level"] = rng.choice(["low", "high"]) if i < 300 else rng.choice([1, 2])  # a string, then a number
        docs.append(d)
    return docs


def _store(tmp_path, docs: list[dict], rows_per_file: int):
    out = tmp_path / "store"
    out.mkdir()
    writer = store.ParquetWriter(out, rows_per_file=rows_per_file)
    for k, d in enumerate(docs, 1):
        writer.add(d, "in.ndjson", k)
    writer.close()
    return out, writer.files


def test_the_writer_keeps_the_codes_of_fields_of_few_values(tmp_path):
    docs = _docs(200)
    _, files = _store(tmp_path, docs, 200)
    (path,) = files
    table = pq.read_table(path)
    coded = json.loads(table.schema.metadata[b"trailhound.codes"])
    assert table.schema.metadata[b"trailhound.schema"] == b"2"
    assert {"process.name", "process.args", "host.name", "event.type"} <= set(coded)
    assert "id" not in coded and "@timestamp" not in coded  # a value per event: nothing to gain
    assert not any(n.startswith("__codes.id") for n in table.column_names)
    frame = pl.from_arrow(table)
    for name, count in coded.items():
        values = frame[f"__values.{name}"].head(count)
        codes = frame[f"__codes.{name}"].to_numpy()
        assert frame[f"__values.{name}"].slice(count).null_count() == frame.height - count  # null after them
        assert values.gather(codes).to_list() == frame[name].to_list(), name
        assert values.arg_sort(nulls_last=True).to_list() == list(range(count)), name  # in order
        assert frame[f"__counts.{name}"].head(count).to_list() == np.bincount(codes, minlength=count).tolist()


def test_the_store_loads_the_events_the_ndjson_gives(tmp_path):
    docs = _docs()
    directory, files = _store(tmp_path, docs, 70)
    assert len(files) == 6
    want = events_from_documents(docs)
    got = load_events([directory], encoded=True)
    names = sorted(want.present)
    assert got.present == want.present
    # the coded fields are not in the lean frame, and the whole frame has them as the documents give them
    assert {"process.name", "process.args", "host.name"} <= set(got.encodings)
    assert not set(got.encodings) & set(got.lean_frame.columns)
    assert "level" not in got.encodings  # a string in some files, a number in others: converted as usual
    assert got.frame.select(names).equals(want.frame.select(names))
    assert got.height == len(docs) and got.frame.columns == [*sorted(got.present, key=got.frame.columns.index),
                                                            "__row", "__file"]
    for name, encoding in got.encodings.items():
        values, codes, counts = encoding.merged()
        assert values.gather(codes).to_list() == want.frame[name].to_list(), name
        assert values.n_unique() == values.len()  # one code per distinct value, across the files
        assert counts is not None and counts.tolist() == np.bincount(codes, minlength=values.len()).tolist()
    # read as values (a query reads every value of its fields): the same frame, no codes
    plain = load_events([directory])
    assert not plain.encodings and plain.lean_frame is plain.frame
    assert plain.frame.select(names).equals(want.frame.select(names))
    # the store's files and an NDJSON of the same events, together: the fields no longer coded in every part
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_text("".join(json.dumps(d) + "\n" for d in docs))
    both = load_events([directory, ndjson], encoded=True)
    assert not both.encodings
    assert both.frame.select(names).equals(pl.concat([want.frame.select(names)] * 2))


def test_batched_searches_read_the_codes_as_they_read_the_values(tmp_path):
    """Event, sequence and sample batches over the lean frame (codes, no columns) and over the whole frame."""
    docs = _docs()
    directory, _ = _store(tmp_path, docs, 70)
    table = load_events([directory], encoded=True)
    options = SearchOptions(size=1000)
    events = [parse(q) for q in [
        'process where process.name == "ssh"', 'any where process.args : "-*"', 'any where process.args == "bob"',
        'any where process.name : ("ss*", "*do") and user.name != "root"', 'any where cidrMatch(source.ip, "10.0.0.0/8")',
        'any where concat(host.name, "-", user.name) == "h1-root" or host.name in ("h1", "h3")', 'any where user.name == null',
        'any where process.args_count > 2 or event.type : "inf*"', 'authentication where level == "high"']]
    sequences = [parse(q) for q in [
        'sequence by host.name [process where process.name == "ssh"] [authentication where user.name == "root"]',
        'sequence by user.name with maxspan=30s [any where process.args == "-i"] [any where true]']]
    samples = [parse('sample by host.name [process where process.name : "s*"] [network where true]')]
    for batch, queries in ((search_events_batch, events), (search_sequences_batch, sequences),
                           (search_samples_batch, samples)):
        whole = batch(queries, table.frame, options)
        lean = batch(queries, table.lean_frame, options,
                     shared=SharedFilters(table.lean_frame, options, encodings=table.encodings))
        assert [[(h.rows, h.join_keys) for h in r.hits] for r in lean] == \
               [[(h.rows, h.join_keys) for h in r.hits] for r in whole]
        assert any(r.hits for r in whole)


NEW_TERMS = rule("New terms", "nt").replace('type = "eql"', 'type = "new_terms"').replace(
    'language = "eql"', 'language = "kuery"').replace(
    'query = "process where process.name == \\"ssh\\""', 'query = "event.category:authentication"') + '''
[rule.new_terms]
field = "new_terms_fields"
value = ["user.name", "process.args"]
[[rule.new_terms.history_window_start]]
field = "history_window_start"
value = "now-5d"
'''
THRESHOLD = rule("Threshold", "th").replace('type = "eql"', 'type = "threshold"').replace(
    'language = "eql"', 'language = "kuery"').replace(
    'query = "process where process.name == \\"ssh\\""', 'query = "process.name:(ssh or scp)"') + '''
[rule.threshold]
field = ["host.name", "user.name"]
value = 5
'''
SEQUENCE = rule("Sequence", "seq").replace(
    'process where process.name == \\"ssh\\"',
    'sequence by host.name [process where process.args : \\"-i\\"] [authentication where user.name == \\"root\\"]')


def test_a_hunt_over_the_store_finds_what_it_finds_over_the_ndjson(tmp_path):
    docs = _docs()
    data, rules_dir = write_case(tmp_path, docs, {"ssh.toml": rule(), "nt.toml": NEW_TERMS, "th.toml": THRESHOLD,
                                                  "seq.toml": SEQUENCE})
    directory, _ = _store(tmp_path, docs, 70)
    checks = [check_rule(r) for r in load_rules([rules_dir]).rules]
    want, got = hunt(checks, [data]), hunt(checks, [directory])
    assert got.table.encodings  # read through the codes
    hits = {r.check.rule.rule_id: [(h.rows, h.join_keys) for h in r.hits] for r in want.runs}
    assert {r.check.rule.rule_id: [(h.rows, h.join_keys) for h in r.hits] for r in got.runs} == hits
    assert all(hits.values()) and not any(r.error for r in got.runs)


@pytest.mark.parametrize("damage", ["past the values", "negative", "mixed with NDJSON"])
def test_codes_that_do_not_match_their_values_are_an_input_error(tmp_path, damage):
    directory, (path,) = _store(tmp_path, _docs(100), 100)
    table = pq.read_table(path)
    count = json.loads(table.schema.metadata[b"trailhound.codes"])["host.name"]
    i = table.column_names.index("__codes.host.name")
    codes = table.column(i).to_numpy().astype(np.int64)
    codes[5] = count if damage == "past the values" else -1  # -1 would read the last value
    pq.write_table(table.set_column(i, "__codes.host.name", pa.array(codes, pa.uint32() if damage == "past the values"
                                                                      else pa.int64())), path)
    paths = [directory]
    if damage == "mixed with NDJSON":  # the field is not kept coded: its column is made from the codes
        ndjson = tmp_path / "more.ndjson"
        ndjson.write_text(json.dumps(_docs(1)[0]) + "\n")
        paths.append(ndjson)
    with pytest.raises(SourceError, match="damaged"):
        load_events(paths, ["host.name"], encoded=True)


def test_floats_keep_their_column(tmp_path):
    """0.0 and -0.0 are equal but not the same value: a float field is not coded, so neither is lost."""
    docs = [{"@timestamp": "2026-01-01T00:00:00Z", "x": {"f": v}, "xs": [v]} for v in [0.0, -0.0] * 20]
    directory, (path,) = _store(tmp_path, docs, 40)
    assert not any(n.startswith("__codes.x.") for n in pq.read_schema(path).names)
    got = load_events([directory], ["x.f", "xs"], encoded=True)
    assert [str(v) for v in got.frame["x.f"].to_list()] == ["0.0", "-0.0"] * 20


def test_merging_the_parts_of_a_column():
    parts = [pl.Series(["b", None, "a", "b"]), pl.Series(["c", "a", "a"]), pl.Series([None, None])]
    encoded = [(*encode(p), None) for p in parts]
    values, codes, counts = merge([(v, c, np.bincount(c, minlength=v.len())) for v, c, _ in encoded])
    assert values.gather(codes).to_list() == ["b", None, "a", "b", "c", "a", "a", None, None]
    assert values.n_unique() == values.len() == 4
    assert counts.tolist() == np.bincount(codes, minlength=4).tolist()
    assert merge(encoded)[2] is None  # a part without its counts: none
    arrays = [pl.Series([["x", "y"], [], None, ["x", "y"]]), pl.Series([["y"], ["x", "y"], None])]
    values, codes, _ = merge([(*encode(p), None) for p in arrays])
    assert values.gather(codes).to_list() == [["x", "y"], [], None, ["x", "y"], ["y"], ["x", "y"], None]
    assert values.len() == 4
    # the same values in the same order in every part (the store sorts them): the codes are appended as they are
    same = [(pl.Series(["a", "b", None]), np.array([2, 0, 1, 0], dtype=np.uint32), np.array([2, 1, 1])),
            (pl.Series(["a", "b", None]), pl.Series([1, 1], dtype=pl.UInt32), np.array([0, 2, 0]))]
    values, codes, counts = merge(same)
    assert values.to_list() == ["a", "b", None] and codes.tolist() == [2, 0, 1, 0, 1, 1]
    assert counts.tolist() == [2, 3, 1]


def test_wildcard_regexes_checked_together_still_fail_alone(monkeypatch):
    monkeypatch.setattr(patterns, "_PASSED", set())
    patterns.check_wildcards(["a*b?c", "*plain*", "x?y"])
    assert patterns._PASSED == {patterns.wildcard_to_regex("a*b?c"), patterns.wildcard_to_regex("x?y")}
    # a regex the engine refuses, among good ones: none is remembered, and the bad one says why when planned
    bad = patterns.WildcardPlan("regex", "(?s)^a{3,1}$")
    real = patterns._plan_wildcard
    monkeypatch.setattr(patterns, "_plan_wildcard", lambda p: bad if p == "bad*?" else real(p))
    patterns.check_wildcards(["bad*?", "q*r?s"])
    assert patterns.wildcard_to_regex("q*r?s") not in patterns._PASSED
    patterns.plan_wildcard.cache_clear()
    with pytest.raises(EqlSemanticError, match="cannot run"):
        patterns.plan_wildcard("bad*?")
    patterns.plan_wildcard.cache_clear()


def test_documents_come_back_whole_from_a_coded_store(tmp_path):
    docs = _docs(150)
    directory, _ = _store(tmp_path, docs, 50)
    got = load_events([directory], ["process.name"], encoded=True)
    assert "process.name" in got.encodings
    assert got.documents([0, 75, 149]) == [orjson.loads(json.dumps(docs[k])) for k in (0, 75, 149)]


def test_es_eql_qa_batches_over_the_codes_equal_those_over_the_values(tmp_path):
    """Every event, sequence and sample query of Elasticsearch's EQL QA suite, batched with shared filters over a
    coded store's lean frame and over its whole frame."""
    es_eql = pytest.importorskip("es_eql")
    if not es_eql.available():
        pytest.skip(f"ES EQL suite not found at {es_eql.SUITE}")
    from trailhound.lang import ir

    compared = coded = 0
    for cls in es_eql.CLASSES:
        table, types, aliases = es_eql.dataset(cls.name)
        directory = tmp_path / cls.name
        directory.mkdir()
        writer = store.ParquetWriter(directory, rows_per_file=997)
        for k, d in enumerate(table.documents(range(table.frame.height)), 1):
            writer.add(d, cls.name, k)
        writer.close()
        got = load_events([directory], encoded=True)
        coded += len(got.encodings)
        options = SearchOptions(tiebreaker_field=cls.tiebreaker, es_types=types, aliases=aliases, size=1000)
        queries = [parse(spec.query) for c, spec in es_eql.all_cases() if c.name == cls.name]
        for kind, batch in ((ir.EventQuery, search_events_batch), (ir.SequenceQuery, search_sequences_batch),
                            (ir.SampleQuery, search_samples_batch)):
            mine = [q for q in queries if isinstance(q, kind)]
            whole = batch(mine, got.frame, options)
            lean = batch(mine, got.lean_frame, options,
                         shared=SharedFilters(got.lean_frame, options, encodings=got.encodings))
            for w, v in zip(whole, lean):
                assert type(w) is type(v)
                if hasattr(w, "hits"):
                    assert [(h.rows, h.join_keys) for h in v.hits] == [(h.rows, h.join_keys) for h in w.hits]
            compared += len(mine)
    assert compared > 400 and coded > 10


def test_version_1_files_mix_with_version_2(tmp_path):
    """A file without codes (schema 1) among files with them: its fields' columns are read, the others' codes."""
    docs = _docs()
    directory, files = _store(tmp_path, docs, 70)
    table = pq.read_table(files[2])
    plain = table.select([n for n in table.column_names if not n.startswith(("__codes.", "__values.", "__counts."))])
    pq.write_table(plain.replace_schema_metadata({"trailhound.schema": "1"}), files[2])
    want = events_from_documents(docs)
    names = sorted(want.present)
    got = load_events([directory], encoded=True)
    assert not got.encodings  # no field is coded in every file
    assert got.frame.select(names).equals(want.frame.select(names))
    checks = [check_rule(r) for r in load_rules([write_case(tmp_path / "case", docs, {"r.toml": rule()})[1]]).rules]
    assert [h.rows for h in hunt(checks, [directory]).runs[0].hits] == \
        [h.rows for h in hunt(checks, [tmp_path / "case" / "events.ndjson"]).runs[0].hits]
