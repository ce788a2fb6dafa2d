"""The columnar store: ECS events as Parquet, written by `trailhound normalize --to parquet DIR`
and read by every command that reads events (detected by content: Parquet files start with
``PAR1``).

The schema (version 1, stable; README "Spark and Parquet"):

* one column per leaf field of the events, named by its dotted ECS path (``process.name``), typed as
  the loader types that field over the events of the file (`ecs_values`): ``bool``, ``int64``,
  ``double`` or ``string``, or a list of one of them when some value is an array. A field whose
  values are all null has no column (Elasticsearch gives it no mapping either);
* ``__source`` (string): the event document as compact JSON, exactly as the rules see it (after
  normalization and the process tree): what alerts and ``query`` print;
* ``__file`` (string) and ``__line`` (int64): the input and line the event came from;
* (version 2) for each field with few distinct values (at most half the file's rows: `parquet_writer.CODED_SHARE`),
  ``__codes.<field>`` (uint32): each row's code; ``__values.<field>`` (the field's type): the distinct values,
  sorted (null last), in the first rows, null after them (files of the same values share their codes); ``__counts.<field>`` (uint32): the rows of each value, alike; file
  metadata ``trailhound.codes``: JSON, each such field's number of distinct values (a null value among them counts).
  A hunt reads these instead of the field's column and does not hash every row again (sources/dictionary.py);
* file metadata ``trailhound.schema = "2"``. Version 1 (without codes) reads as before.

A directory of such files is a data set: the commands take the directory and read its
``*.parquet`` files in name order. The typed columns are what make Parquet fast: a query loads
only the columns it reads, already typed, without parsing JSON. Documents are read back from
``__source`` only for the events a query or rule returns.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import orjson

from .ecs_readers import Origin, Part, Rows
from .formats import Format
from .inputs import Source, SourceError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from .dictionary import EncodedPart
    from .ecs_values import ColumnType, FieldPath

MAGIC = b"PAR1"
SCHEMA_VERSION = "2"
SOURCE, FILE, LINE = "__source", "__file", "__line"
OWN_COLUMNS = (SOURCE, FILE, LINE)
CODES, VALUES, COUNTS = "__codes.", "__values.", "__counts."
CODED = "trailhound.codes"  # file metadata: JSON, {field: its number of distinct values}


def is_own(name: str) -> bool:
    """Whether a column is the store's own (the document, its origin, a field's codes), not an event field."""
    return name in OWN_COLUMNS or name.startswith((CODES, VALUES, COUNTS))


def _not_lines(lines, skip, options):
    raise TypeError("Parquet is read by sources.parquet, not line by line")


FORMAT = Format("parquet", "ECS events as Parquet (trailhound normalize --to parquet)", lambda head: False,
                _not_lines)


def is_parquet(src: Source) -> bool:
    """Whether the input is a Parquet file (its first bytes are the magic ``PAR1``)."""
    if src.gzip or src.size < 12:
        return False
    with open(src.path, "rb") as fh:
        return fh.read(4) == MAGIC


def expand(paths: Sequence) -> list:
    """`paths` with each directory of Parquet files replaced by its ``*.parquet`` files, in name order
    (what `normalize --to parquet DIR` writes). Other paths pass as they are."""
    out: list = []
    for p in paths:
        if isinstance(p, (str, os.PathLike)) and os.path.isdir(p):
            folder = str(os.fspath(p))
            files = sorted(e.path for e in os.scandir(folder) if e.name.endswith(".parquet") and e.is_file())
            if not files:
                raise SourceError(folder, "is a directory without *.parquet files")
            out.extend(files)
        else:
            out.append(p)
    return out


def _open(src: Source):
    """The file through pyarrow: for what Polars does not read (a row group's documents, whole documents)."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(src.path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError...: the file is damaged
        raise _unreadable(src, e) from None
    if SOURCE not in pf.schema_arrow.names:
        raise _foreign(src)
    return pf


def _unreadable(src: Source, e: Exception) -> SourceError:
    return SourceError(src.name, f"not a readable Parquet file ({e})")


def _foreign(src: Source) -> SourceError:
    return SourceError(src.name, f"a Parquet file without the {SOURCE} column: not written by "
                                 "`trailhound normalize --to parquet` (README, \"Spark and Parquet\")")


def _schema(src: Source) -> dict[str, pl.DataType]:
    """The file's columns and their types, from its footer, by Polars: a query reads its columns with Polars, and
    pyarrow's Parquet module (with the filesystems it loads) is not imported for that (~30 ms of a query's 200)."""
    import polars as pl

    try:
        schema = dict(pl.read_parquet_schema(src.path))
    except Exception as e:  # noqa: BLE001 - Polars raises ComputeError, OSError...: the file is damaged
        raise _unreadable(src, e) from None
    if SOURCE not in schema:
        raise _foreign(src)
    return schema


def field_names(src: Source) -> set[str]:
    """The fields of a Parquet input (its typed columns)."""
    return {n for n in _schema(src) if not is_own(n)}


def column_type(t: pl.DataType) -> ColumnType | None:
    """The loader's type for a column's Polars type; None for one our writer never writes."""
    import polars as pl

    from .ecs_values import ColumnType

    is_list = isinstance(t, pl.List)
    base = t.inner if isinstance(t, pl.List) else t
    kind = ("bool" if base == pl.Boolean else "int" if base.is_integer() else "float" if base.is_float() else
            "str" if base == pl.String else None)
    return None if kind is None else ColumnType(kind, is_list)


class ParquetOrigin(Origin):
    """Rows of one Parquet input: documents from ``__source``, read a row group at a time.
    Lines are the rows' 1-based positions in the file (`__file`/`__line` name where they came from)."""

    def __init__(self, src: Source, file_no: int, rows: int) -> None:
        self.src, self.name, self.file_no, self.rows = src, src.name, file_no, rows
        self._starts: list[int] | None = None  # where each row group starts, read from the footer on first use

    def documents(self, local: list[int]) -> list[dict]:
        return [orjson.loads(text) for text in self.texts(local)]

    def texts(self, local: list[int]) -> list[bytes]:
        """`__source` of these sorted rows, read a row group at a time."""
        import bisect

        import pyarrow as pa

        pf = _open(self.src)
        if self._starts is None:  # every rule's alerts read documents: the layout once
            self._starts = [0]
            for g in range(pf.num_row_groups):
                self._starts.append(self._starts[-1] + pf.metadata.row_group(g).num_rows)
        starts = self._starts
        out: list[bytes] = []
        k = 0
        while k < len(local):
            g = bisect.bisect_right(starts, local[k]) - 1
            end = bisect.bisect_left(local, starts[g + 1], k)
            column = pf.read_row_group(g, columns=[SOURCE]).column(0).cast(pa.binary())
            out.extend(column.take(pa.array([r - starts[g] for r in local[k:end]], type=pa.int64())).to_pylist())
            k = end
        return out

    def lines(self, local: list[int]) -> list[int]:
        return [k + 1 for k in local]


def read_part(src: Source, file_no: int, paths: list[FieldPath], encoded: bool = False) -> Part:
    """The requested fields of a Parquet input, typed as written. A field without a column of its own
    (the parent of other fields, or a type our writer does not write) is read from ``__source``. `encoded`: a field
    whose codes the file keeps is read as its codes (`Part.encodings`), not as a column: where its values are all
    read, the column costs less (a query); where they are read through their distinct values, the codes (a hunt)."""
    import polars as pl
    import pyarrow as pa

    schema = _schema(src)
    names = {n for n in schema if not is_own(n)}
    direct = [p.name for p in paths if p.name in names and column_type(schema[p.name]) is not None]
    # Polars reads Parquet faster than pyarrow, and its Arrow export (string views) returns to Polars
    # without a copy when the loader makes its frame
    try:
        coded = _coded(src, schema, direct) if encoded else {}
        frame = pl.read_parquet(src.path, columns=[CODES + n if n in coded else n for n in direct]) if direct else None
        rows = frame.height if frame is not None else pl.scan_parquet(src.path).select(pl.len()).collect().item()
        encodings = _encodings(src, schema, coded, frame) if coded and frame is not None else {}
    except SourceError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged page or footer: the input's error, not a traceback
        raise _unreadable(src, e) from None
    plain = [n for n in direct if n not in encodings]
    # a coded field has no column here: the loader makes it from its codes where the frame needs it (EventTable)
    table = frame.select(plain).to_arrow(compat_level=pl.CompatLevel.newest()) if frame is not None else None
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    types: dict[str, ColumnType | None] = {}
    for name in direct:
        types[name] = column_type(schema[name])
        if name not in encodings:
            assert table is not None
            columns[name] = table.column(name)
    other = [p for p in paths if p.name not in types]
    deeper = [p for p in other if p.name in names or any(n.startswith(p.name + ".") for n in names)]
    if deeper:  # values only the document holds whole: the loader's own reading of them
        json_rows = Rows(deeper)
        for batch in _open(src).iter_batches(columns=[SOURCE]):
            for text in batch.column(0).to_pylist():
                json_rows.add(orjson.loads(text))
        json_part = json_rows.part(ParquetOrigin(src, file_no, rows))
        for p in deeper:
            columns[p.name], types[p.name] = json_part.columns[p.name], None
    for p in other:
        if p.name not in columns:  # no such field in this file
            columns[p.name], types[p.name] = pa.nulls(rows, pa.string()), None
    return Part(ParquetOrigin(src, file_no, rows), columns, types, encodings=encodings)


def _coded(src: Source, schema: dict[str, pl.DataType], direct: list[str]) -> dict[str, int]:
    """The requested fields whose codes the file keeps (version 2), and their numbers of distinct values."""
    import polars as pl

    if not any(CODES + n in schema for n in direct):
        return {}
    counts = orjson.loads(pl.read_parquet_metadata(src.path).get(CODED, "{}"))
    coded = {n: counts[n] for n in direct if n in counts and CODES + n in schema}
    for name in coded:  # as the writer writes them, or a damaged file (a negative code would read another value)
        if (schema[CODES + name] != pl.UInt32 or schema.get(VALUES + name) != schema[name]
                or schema.get(COUNTS + name, pl.UInt32) != pl.UInt32 or not isinstance(coded[name], int)):
            raise SourceError(src.name, f"the codes of {name} are not those of the columnar store: a damaged file")
    return coded


def _encodings(src: Source, schema: dict[str, pl.DataType], coded: dict[str, int],
               frame: pl.DataFrame) -> dict[str, EncodedPart]:
    """Each coded field's distinct values (the first rows of its ``__values`` column) and its codes, checked: a code
    past the values is a damaged file, never a wrong value."""
    import polars as pl

    values = pl.read_parquet(src.path, columns=[VALUES + n for n in coded] + [COUNTS + n for n in coded
                                                                               if COUNTS + n in schema],
                             n_rows=max(coded.values()))
    out: dict[str, EncodedPart] = {}
    for name, count in coded.items():
        codes = frame.get_column(CODES + name)
        top = codes.max() if codes.len() else None
        if codes.null_count() or (isinstance(top, int) and top >= count) or values.height < count:
            raise SourceError(src.name, f"the codes of {name} do not match its values: a damaged file")
        counts = values.get_column(COUNTS + name).head(count) if COUNTS + name in values.columns else None
        if counts is not None and (counts.null_count() or counts.sum() != codes.len()):
            raise SourceError(src.name, f"the counts of {name} do not match its codes: a damaged file")
        out[name] = (values.get_column(VALUES + name).head(count).alias(name), codes,
                     None if counts is None else counts.to_numpy())
    return out


def documents(src: Source) -> Iterator[tuple[dict, int]]:
    """(document, row number) of every event of a Parquet input, in order (for `normalize`)."""
    n = 0
    for batch in _open(src).iter_batches(columns=[SOURCE]):
        for text in batch.column(0).to_pylist():
            n += 1
            yield orjson.loads(text), n
