"""The columnar store's writer: ECS events as Parquet files in the schema of sources/parquet.py (`trailhound
normalize --to parquet DIR`). Apart from the reader because it types the columns with the loader
(`events_from_documents`), which reads Parquet: the reader imports none of this."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from .dictionary import encode
from .ecs_readers import dump_document
from .parquet import CODED, CODES, COUNTS, FILE, LINE, SCHEMA_VERSION, SOURCE, VALUES, is_own

if TYPE_CHECKING:
    import pyarrow as pa

ROWS_PER_FILE = 250_000
"""Events per Parquet file written: the writer holds one file's events, so this bounds its memory."""
ROW_GROUP_ROWS = 32_768
"""Rows per row group: a document is read back by reading its group's ``__source``."""
CODED_SHARE = 0.5
"""A field's codes are stored when its distinct values are at most this share of the file's rows: below it, its
codes and distinct values are read faster than its values are read and hashed (a timestamp, nearly one value per
row, has none)."""


class ParquetWriter:
    """Writes events to ``DIR/part-NNNNN.parquet``, `rows_per_file` events a file, in the schema above.

    The typed columns come from the loader (`events_from_documents`), so a field is typed in Parquet
    exactly as a hunt over the same events as NDJSON types it."""

    def __init__(self, directory: str | os.PathLike, rows_per_file: int = ROWS_PER_FILE) -> None:
        self.directory = os.fspath(directory)
        self.rows_per_file = rows_per_file
        self.files: list[str] = []
        self.events = 0
        self._docs: list[dict] = []
        self._origins: list[tuple[str, int]] = []

    def add(self, doc: dict, file: str, line: int) -> None:
        self._docs.append(doc)
        self._origins.append((file, line))
        if len(self._docs) >= self.rows_per_file:
            self.flush()

    def flush(self) -> None:
        if not self._docs:
            return
        path = os.path.join(self.directory, f"part-{len(self.files):05d}.parquet")
        write_table(events_table(self._docs, self._origins), path)
        self.files.append(path)
        self.events += len(self._docs)
        self._docs, self._origins = [], []

    def close(self) -> None:
        self.flush()


def events_table(docs: list[dict], origins: list[tuple[str, int]]) -> pa.Table:
    """The Arrow table of these documents in the schema above."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    from .ecs_json import events_from_documents

    table = events_from_documents(docs, None)
    kept = [line - 1 for _, line in table.locations(range(table.frame.height))]
    frame = table.frame.drop("__row", "__file")
    frame = frame.select([c for c in frame.columns if not is_own(c)])
    coded, extra = {}, []
    for name in frame.columns:
        dtype = frame.schema[name]
        if (dtype.inner if isinstance(dtype, pl.List) else dtype).is_float():
            continue  # floats equal without being the same (0.0, -0.0): their column, not codes
        values, codes = encode(frame[name])
        if frame.height and values.len() <= frame.height * CODED_SHARE:
            # the values in order: files of the same values (most fields of few values) then have the same codes,
            # and a hunt merging their codes only appends them (sources/dictionary.merge)
            order = values.arg_sort(nulls_last=True).to_numpy()
            rank = np.empty(len(order), dtype=np.uint32)
            rank[order] = np.arange(len(order), dtype=np.uint32)
            values, codes = values.gather(order), rank[codes]
            coded[name] = values.len()
            extra.append(pl.Series(CODES + name, codes, dtype=pl.UInt32))
            extra.append(values.extend_constant(None, frame.height - values.len()).alias(VALUES + name))
            extra.append(pl.Series(COUNTS + name, np.bincount(codes, minlength=values.len()), dtype=pl.UInt32)
                         .extend_constant(None, frame.height - values.len()))
    arrow = frame.to_arrow()
    arrow = arrow.append_column(SOURCE, pa.array([_dumps(docs[k]) for k in kept], pa.large_string()))
    arrow = arrow.append_column(FILE, pa.array([origins[k][0] for k in kept], pa.string()))
    arrow = arrow.append_column(LINE, pa.array([origins[k][1] for k in kept], pa.int64()))
    if extra:
        codes_table = pl.DataFrame(extra).to_arrow()
        for name, column in zip(codes_table.column_names, codes_table.columns):
            arrow = arrow.append_column(name, column)
    return arrow.replace_schema_metadata({"trailhound.schema": SCHEMA_VERSION,
                                          CODED: json.dumps(coded, separators=(",", ":"))})


def _dumps(doc: dict) -> str:
    """The document's compact JSON as the loader keeps it (ints beyond 64 bits and non-string keys too)."""
    return dump_document(doc, compress=False).decode()


def write_table(table: pa.Table, path: str) -> None:
    import pyarrow.parquet as pq

    tmp = path + ".part"
    # the codes in LZ4, the rest in zstd: a hunt reads every code of the fields it reads, and LZ4 decodes them faster
    # (the 32 fields of the Linux rules over 1M events: 38-41 against 48-64 ms) for 3 MB more per 250,000 events
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS,
                   compression={name: "lz4" if name.startswith(CODES) else "zstd" for name in table.column_names})
    os.replace(tmp, path)
