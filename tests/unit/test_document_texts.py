"""`EventTable.document_texts`: each row's document as the input's own JSON text (what a Spark task ships of its
candidates), read back the document the local engine builds alerts from."""

from __future__ import annotations

from pathlib import Path

import orjson

LAB = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "lab"


def test_stage_one_ships_each_candidates_own_text_which_reads_as_the_local_document(tmp_path):
    """`EventTable.document_texts`: the candidates' documents leave a Spark task as the input's own text (NDJSON lines, Parquet's
    `__source`, a normalized event's kept JSON) instead of parsed and serialized again; read back they are the
    documents the local engine builds alerts from, over a BOM, blank and indented lines, gzip, duplicate keys,
    escapes, floats and big numbers, Parquet row groups, and raw auditd records."""
    import gzip

    import pyarrow.parquet as pq

    from trailhound.sources import load_events
    from trailhound.sources.ecs_readers import JsonOrigin, NdjsonOrigin
    from trailhound.sources.parquet import ParquetOrigin
    from trailhound.sources.parquet_writer import events_table

    lines = [b'\xef\xbb\xbf{"@timestamp": "2026-01-01T00:00:00Z", "a": 1, "a": 2}',
             b"",
             b'   {"@timestamp": 1767225600001, "s": "caf\\u00e9 \\"q\\"", "f": 1.10, "e": 1e300}',
             b'{"@timestamp": 1767225600002, "n": 18446744073709551615, "x": [1, {"y": null}], "z": -0.0}\t',
             b"\t",
             b'{"@timestamp": 1767225600003, "deep": {"a": {"b": {"c": "d"}}}}']
    plain, packed = tmp_path / "a.ndjson", tmp_path / "b.ndjson.gz"
    plain.write_bytes(b"\n".join(lines) + b"\n")
    packed.write_bytes(gzip.compress(b"\r\n".join(lines[1:])))
    docs = [{"@timestamp": 1767225600000 + k, "event": {"category": "process"}, "k": k, "t": "é" * (k % 3)}
            for k in range(50)]
    parquet = tmp_path / "c.parquet"
    pq.write_table(events_table(docs, [("src.ndjson", k + 1) for k in range(50)]), parquet, row_group_size=7)
    audit = next(iter(sorted((LAB / "brute_force").glob("audit.log")))) if LAB.is_dir() else None
    paths = [str(plain), str(packed), str(parquet)] + ([str(audit)] if audit else [])
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    together = [str(empty), *paths[:2], str(empty), *paths[2:], str(empty)]  # inputs without rows among them
    for group in [[p] for p in paths] + [together]:
        table = load_events(group, ["@timestamp"])
        rows = list(range(table.frame.height))
        assert rows, group
        for wanted in (rows, rows[1::3], rows[-1:], rows[:1]):
            texts = table.document_texts(wanted)
            assert [orjson.loads(t) for t in texts] == table.documents(wanted), group
    # the input's own text: each line of the NDJSON file as written (its BOM cut), each Parquet row's document
    table = load_events([str(plain)], ["@timestamp"])
    own = [line.removeprefix(b"\xef\xbb\xbf") for line in lines if line.strip()]
    assert [t.rstrip(b"\n") for t in table.document_texts(range(table.frame.height))] == own
    table = load_events([str(parquet)], ["@timestamp"])
    assert [orjson.loads(t) for t in table.document_texts(range(50))] == docs
    kinds = {type(o) for o in load_events(paths, ["@timestamp"])._origins}
    assert kinds == {NdjsonOrigin, ParquetOrigin} | ({JsonOrigin} if audit else set())  # each way is taken
