"""Load ECS events from NDJSON or JSON-array files (optionally gzip) into one Polars frame.

Each file is read by one of two readers (`ecs_readers`): DuckDB for files of some size, orjson
line by line for small files and whenever DuckDB fails (a bad line, a field under an array of
objects, a BOM, ...). Column types are decided over all values of all files (`ecs_values`):

1. Plan: the field list (given, or for ``fields=None`` every leaf, from an exact structure scan)
   and, from a sample of each file, a guessed type per field.
2. Read: DuckDB converts guessed fields in its query and flags values that do not fit the guess;
   those fields, unguessed ones and everything the Python reader reads stay JSON text.
3. Census: the kinds of the JSON text columns (``json_type`` in DuckDB) join with the guesses
   into one type per field; every file's columns are converted or cast to it in DuckDB.

Field presence follows Elasticsearch's dynamic mapping: a field whose values are all null, ``[]``
or ``[null]`` gets no mapping there, so it is not in `EventTable.present` and has no column.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import threading
from array import array
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from trailhound._gc import no_gc
from trailhound.enrich import ProcessTree
from trailhound.sources.dictionary import Encoding
from trailhound.sources.ecs_readers import (
    Declaration,
    JsonOrigin,
    KeyScan,
    MemoryOrigin,
    Part,
    Rows,
    describe,
    duck_discover,
    duck_read,
    dump_document,
    load_document,
    py_leaf_names,
    py_read,
    scan_keys,
)
from trailhound.sources.ecs_values import (
    JSON_KIND,
    MAX_DEPTH,
    MISSING,
    ColumnType,
    FieldPath,
    Stats,
    cast_sql,
    convert_sql,
    guess,
    ident,
    join_kinds,
    kind_sql,
    leaf_names,
    lookup,
    merge_stats,
    node_names,
    py_kinds,
    too_deep,
)
from trailhound.sources.formats import Format, ReadOptions
from trailhound.sources.inputs import SkipLog, Source
from trailhound.sources.normalize import documents, format_of, year_note
from trailhound.sources.table import MAX_SKIPPED_KEPT, EventTable, InputStats, LoadReport, Skipped

if TYPE_CHECKING:
    import duckdb
    from polars._typing import PolarsDataType

_log = logging.getLogger(__name__)

# Below this size a file is parsed with orjson: a DuckDB query costs more than parsing it.
_SMALL_FILE_BYTES = 512 * 1024
# The documents of non-ECS inputs are kept as plain JSON up to this many bytes in all, and compressed
# after it: a small hunt does not pay for zlib (~30 us a document), a large one keeps its memory bound.
_PLAIN_DOCUMENT_BYTES = 32 << 20
# A field of up to this many parts is declared to DuckDB with all its spellings (2^(n-1)) in a
# file that has dotted keys; a longer one only with those the file has (`scan_keys`).
_ALL_SPELLINGS_PARTS = 6


def load_events(paths: Sequence[str | os.PathLike | Source], fields: Collection[str] | None = None, *,
                format: str | None = None, options: ReadOptions | None = None, encoded: bool = False) -> EventTable:
    """Load event files (NDJSON, or one JSON array of objects) in order.

    An input is a path, "-" for standard input, or a `Source` already opened. Pipes, FIFOs and
    process substitution are read once into a spool; gzip, bzip2, xz and zstd are recognised by
    their content, UTF-16/32 text by its byte order mark (see `Source.open`).
    Files in another format (auditd, syslog, ... detected per file, or all read as `format`) go
    through their reader (`formats`) first, then through the process tree (`enrich`), which
    adds the parent and leader fields they lack. `fields` are dotted ECS paths; None loads every leaf
    field in the data. `encoded`: the fields the columnar store keeps coded are read as their codes
    (`EventTable.encodings`, for the shared filters, which read a field through its distinct values) instead of as
    values. Raises `SourceError` if a file is missing or unreadable; bad lines are reported in `EventTable.report`,
    and what each input gave in `report.inputs`.

    Memory: the frame holds the loaded fields of every event (Arrow columns; while a part is read,
    also its JSON text columns). ECS JSON documents are not kept: `documents()` reads them again
    from the file. The documents of non-ECS inputs (auditd, syslog...) exist only once their
    reader has built them, so they are kept for `documents()`, as JSON text for the first 32 MB
    (`_PLAIN_DOCUMENT_BYTES`), then zlib-compressed (about 1 KB per auditd event, a third of its
    JSON text; as dicts they cost far more), roughly the size of the log again. Measured on bench/auditd.py's
    log (28 MB, 33,678 events), peak RSS over the interpreter's is about 6x the input with a few
    fields and 18x with every field (`fields=None`: 111 columns of JSON text, then typed).
    """
    from . import parquet

    sources = [p if isinstance(p, Source) else Source.open(os.fspath(p)) for p in parquet.expand(paths)]
    formats = [format_of(src, format) for src in sources]
    with _Loader(fields, encoded=encoded) as loader:
        return loader.load_files(sources, formats, options or ReadOptions())


def events_from_documents(docs: Iterable[Mapping], fields: Collection[str] | None = None, *,
                          source: str = "<memory>") -> EventTable:
    """`load_events` for documents already in memory; `source` names them in the report, and
    their lines are their 1-based positions in `docs`."""
    with _Loader(fields, shared_connection=True) as loader:
        return loader.load_documents(docs, source)


_local = threading.local()


def _memory_connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection for documents in memory, made once: opening one costs ~50 ms, which a watch
    paid per micro-batch. The loader only reads Arrow relations through it and leaves nothing behind."""
    con = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = _local.con = duckdb.connect()
    return con


class _Loader:
    """One load. Its DuckDB connection opens on first use: documents that Python read (raw logs,
    small NDJSON files) convert in Python where that is exact (`_python_frame`), and then DuckDB is
    not even imported (0.1 s of every `hunt` over auditd or auth logs)."""

    def __init__(self, fields: Collection[str] | None, shared_connection: bool = False, encoded: bool = False) -> None:
        self.encoded = encoded  # the store's coded fields read as codes (load_events)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._shared = shared_connection  # this thread's kept connection (`_memory_connection`), never closed here
        self.paths = None if fields is None else _requested_paths(fields)
        self.skips = SkipLog(MAX_SKIPPED_KEPT)
        self.notes: list[str] = []
        self.inputs: list[InputStats] = []
        self.plain_bytes = 0  # documents of non-ECS inputs kept uncompressed so far

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if self._shared:
                self._con = _memory_connection()
            else:
                import duckdb

                self._con = duckdb.connect()
        return self._con

    def __enter__(self) -> _Loader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._con is not None and not self._shared:
            self._con.close()
        self._con = None

    def load_documents(self, docs: Iterable[Mapping], source: str) -> EventTable:
        kept, dicts, numbers = [], [], array("q")
        n = 0
        for n, doc in enumerate(docs, 1):
            if not isinstance(doc, Mapping):
                self.skips.add(source, n, f"not a JSON object (found {describe(doc)})")
                continue
            as_dict = doc if isinstance(doc, dict) else dict(doc)
            if (why := too_deep(as_dict)) is not None:
                self.skips.add(source, n, why)
                continue
            kept.append(doc)
            dicts.append(as_dict)
            numbers.append(n)
        self.inputs.append(InputStats(source, "ecs", n, len(kept), self.skips.count))
        if self.paths is None:
            names: set[str] = set()
            for doc in dicts:
                leaf_names(doc, "", names)
            self.paths = _field_paths(names)
            paths = self.paths
        else:
            # only the requested fields these documents carry (a rule set asks for hundreds, a micro-batch of watch
            # carries a few dozen): a field none of them has would be a column of nulls, which is left out anyway
            carried: set[str] = set()
            for doc in dicts:
                node_names(doc, "", carried)
            paths = [p for p in self.paths if p.name in carried]
        rows = Rows(paths)
        with no_gc():
            for doc in dicts:
                rows.add(doc)
        part = rows.part(MemoryOrigin(source, kept, numbers))
        return self._finish([source], [part], [self._census(part)[0]])

    def load_files(self, sources: list[Source], formats: list[Format | None], options: ReadOptions) -> EventTable:
        from . import parquet

        # inputs not read as ECS JSON: their normalized documents, or None for Parquet
        normalized: dict[int, tuple[list[bytes], array, Rows | None] | None] = {}
        extra: set[str] = set()
        self.inputs = [InputStats(src.name, fmt.name if fmt else "ecs", 0, 0, 0) for src, fmt in zip(sources, formats)]
        tree = ProcessTree()  # one across files: rotated logs of a host continue each other
        for src, fmt, stats in zip(sources, formats, self.inputs):
            self.notes.extend(src.notes)
            if fmt is parquet.FORMAT:  # columns already typed: read in _read (sources/parquet.py)
                normalized[id(src)] = None
                if self.paths is None:
                    extra |= parquet.field_names(src)
            elif fmt is not None:
                if note := year_note(src, fmt, options):
                    self.notes.append(note)
                docs, numbers = [], array("q")
                skip = functools.partial(self.skips.add, src.name)
                before, counted = self.skips.count, [0]
                # with the fields known, their columns fill now: the dicts need not be parsed again
                rows = Rows(self.paths) if self.paths is not None else None
                with no_gc():
                    for doc, line in documents(src, fmt, options, skip, counted):
                        tree.apply(doc)
                        if rows is None:
                            leaf_names(doc, "", extra)
                        else:
                            rows.add(doc)
                        blob = dump_document(doc, compress=self.plain_bytes >= _PLAIN_DOCUMENT_BYTES)
                        if blob[:1] == b"{":
                            self.plain_bytes += len(blob)
                        docs.append(blob)
                        numbers.append(line)
                normalized[id(src)] = (docs, numbers, rows)
                self._count(src, stats, counted[0], len(docs), before)
        if note := tree.eviction_note():
            self.notes.append(note)
        # the key scans (DuckDB, every core, no GIL) run while Python samples the files
        scans = concurrent.futures.ThreadPoolExecutor(1)
        # which dotted keys a file has is asked only for fields of many spellings (the scan costs more)
        extract = self.paths is not None and any(len(p.keys) > _ALL_SPELLINGS_PARTS for p in self.paths)
        dotted = {id(s): scans.submit(scan_keys, self.con.cursor(), s, extract) for s in sources
                  if id(s) not in normalized and s.size >= _SMALL_FILE_BYTES and not s.bom}
        try:
            decl, guesses, duck = self._plan([s for s in sources if id(s) not in normalized], extra)
            return self._read(sources, normalized, decl, guesses, duck, dotted)
        finally:
            for future in dotted.values():
                future.cancel()
            scans.shutdown()

    def _read(self, sources: list[Source], normalized: dict[int, tuple[list[bytes], array, Rows | None] | None],
              decl: Declaration | None, guesses: dict[str, ColumnType | None], duck: set[int],
              dotted: dict[int, concurrent.futures.Future]) -> EventTable:
        assert self.paths is not None  # _plan fixed the field list
        parts, stats = [], []
        declarations: dict[frozenset[str] | None, Declaration | None] = {frozenset(): decl}
        for file_no, src in enumerate(sources):
            part = None
            if id(src) in normalized:
                held = normalized.pop(id(src))
                if held is None:  # Parquet: columns already typed (sources/parquet.py)
                    from . import parquet

                    part = parquet.read_part(src, file_no, self.paths, self.encoded)
                    self._count(src, self.inputs[file_no], part.origin.rows, part.origin.rows, self.skips.count)
                else:
                    docs, numbers, rows = held
                    if rows is None:
                        rows = Rows(self.paths)
                        with no_gc():
                            for doc in docs:
                                rows.add(load_document(doc))
                    part = rows.part(JsonOrigin(src.name, docs, numbers, file_no))
                parts.append(part)
                stats.append(self._census(part)[0])
                continue
            before = self.skips.count
            if id(src) in duck:
                import duckdb

                file_decl = self._declaration(src, dotted[id(src)].result(), declarations)
                try:
                    part = None if file_decl is None else duck_read(self.con, src, file_no, file_decl, guesses)
                except duckdb.Error as e:
                    _log.info("%s: the DuckDB reader failed (%s); reading line by line",
                              src.name, str(e).splitlines()[0])
            if part is not None:
                part_stats, nested = self._census(part)
                if nested:  # Elasticsearch flattens nested arrays; only the Python reader does
                    _log.info("%s: nested arrays; reading line by line", src.name)
                    part = None
            counted = [part.origin.rows if part is not None else 0]
            if part is None:
                part = py_read(src, file_no, self.paths, self.skips, counted)
                part_stats, _ = self._census(part)
            parts.append(part)
            stats.append(part_stats)
            self._count(src, self.inputs[file_no], counted[0], part.origin.rows, before)
        return self._finish([s.name for s in sources], parts, stats)

    def _declaration(self, src: Source, scan: KeyScan, known: dict[frozenset[str] | None, Declaration | None]
                     ) -> Declaration | None:
        """The declaration of the spellings this file can hold; None when DuckDB should not read it
        (documents too deep to check in SQL, or more spellings than is sane)."""
        if scan.openers > MAX_DEPTH:
            _log.info("%s: a line nests deeper than %d levels; reading line by line", src.name, MAX_DEPTH)
            return None
        if scan.dotted not in known:
            assert self.paths is not None  # _plan fixed the field list
            try:
                known[scan.dotted] = Declaration(self.paths, scan.dotted)
            except ValueError as e:
                _log.info("%s: %s; reading line by line", src.name, e)
                known[scan.dotted] = None
        return known[scan.dotted]

    def _count(self, src: Source, stats: InputStats, lines: int, events: int, skips_before: int) -> None:
        """Fill what one input gave; a decompression that ended early counts as a bad line after the last."""
        if src.damage:
            self.skips.add(src.name, lines + 1, src.damage)
            lines += 1
        stats.lines, stats.events, stats.skipped = lines, events, self.skips.count - skips_before

    def _plan(self, sources: list[Source], extra: set[str]
              ) -> tuple[Declaration | None, dict[str, ColumnType | None], set[int]]:
        """Fix the field list (adding `extra` names); return the DuckDB declaration, the type
        guesses and the ids of the files for the DuckDB reader."""
        duck = {id(s) for s in sources if s.size >= _SMALL_FILE_BYTES and not s.bom}
        stats: Stats = {}
        sample = self.paths is not None
        if self.paths is None:
            # Every leaf of every file before any value is read: a field that is an object in
            # one document and a scalar in another must be read as JSON text everywhere.
            names: set[str] = set(extra)
            for src in sources:
                if id(src) in duck:
                    import duckdb

                    try:  # exact field list and kinds from a structure scan
                        found = duck_discover(self.con, src)
                        merge_stats(stats, found)
                        names |= found.keys()
                        continue
                    except (duckdb.Error, ValueError) as e:
                        _log.info("%s: %s; reading line by line", src.name, str(e).splitlines()[0])
                        duck.discard(id(src))
                names |= py_leaf_names(src)
            self.paths = _field_paths(names)
        try:
            decl = Declaration(self.paths)
        except ValueError as e:
            _log.info("the fields cannot be declared to DuckDB (%s); reading line by line", e)
            return None, {}, set()
        if sample:  # array files are not sampled: their fields are read as JSON text
            for src in sources:
                if id(src) in duck and not src.array and not self._sample(src, decl, stats):
                    duck.discard(id(src))
        return decl, {name: guess(*stat) for name, stat in stats.items()}, duck

    def _sample(self, src: Source, decl: Declaration, stats: Stats) -> bool:
        """Add the kinds seen in a sample of the file; False if DuckDB cannot read it."""
        for line in src.sample_lines():
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the real read reports it
            if not isinstance(doc, dict):
                continue
            if not decl.fits(doc):
                _log.info("%s: a field runs through an array or a scalar; reading line by line",
                          src.name)
                return False
            assert self.paths is not None  # _plan fixed the field list
            for path in self.paths:
                value = lookup(doc, path.keys)
                if value is not MISSING and value is not None:
                    kinds, is_list = stats.get(path.name, (set(), False))
                    stats[path.name] = (kinds, py_kinds(value, kinds) or is_list)
        return True

    def _census(self, part: Part) -> tuple[Stats, bool]:
        """Kinds and list-ness of each column of a part, and whether an array holds an array
        (asked only of DuckDB's parts: the Python reader flattens nested arrays)."""
        if part.stats is not None:
            return part.stats, False
        out: Stats = {}
        nested = False
        raw = []
        for name, t in part.types.items():
            if t is None:  # JSON text; fields absent from the file are all null: nothing to ask
                if part.columns[name].null_count < len(part.columns[name]):
                    raw.append(name)
                else:
                    out[name] = (set(), False)
        if raw:
            rel = self.con.from_arrow(pa.table({f"c{k}": part.columns[n] for k, n in enumerate(raw)}))
            sql = ", ".join(f"list(DISTINCT {kind_sql(f'c{k}')})" for k in range(len(raw)))
            for k, (name, found) in enumerate(zip(raw, _select(rel, "t", f"SELECT {sql} FROM t")
                                                  .fetchall()[0])):
                kinds = {kind for j in found or () if (kind := JSON_KIND[j]) is not None}
                is_list = "arr" in kinds
                if is_list:
                    (found,) = _select(rel, "t", f"SELECT list(DISTINCT {kind_sql('e')}) FROM (SELECT "
                                                 f"unnest(from_json(c{k}, '[\"JSON\"]')) AS e FROM t "
                                                 f"WHERE starts_with(c{k}, '['))").fetchall()[0]
                    elements = {kind for j in found or () if (kind := JSON_KIND[j]) is not None}
                    nested = nested or "arr" in elements
                    kinds = (kinds - {"arr"}) | elements
                out[name] = (kinds, is_list)
        for name, t in part.types.items():
            if t is not None and name not in part.columns:  # kept encoded: its distinct values tell
                distinct = part.encodings[name][0]
                items = distinct.explode() if t.is_list else distinct
                out[name] = ({t.base} if items.null_count() < items.len() else set(), t.is_list)
            elif t is not None:
                values = pc.list_flatten(part.columns[name]) if t.is_list else part.columns[name]
                out[name] = ({t.base} if values.null_count < len(values) else set(), t.is_list)
        return out, nested

    def _finish(self, files: list[str], parts: list[Part], stats: list[Stats]) -> EventTable:
        merged: Stats = {}
        for part_stats in stats:
            merge_stats(merged, part_stats)
        final = {}
        assert self.paths is not None  # _plan fixed the field list
        for path in self.paths:
            if path.name in merged and (t := join_kinds(*merged[path.name])) is not None:
                final[path.name] = t
        frames, start = [], 0
        for part in parts:
            part.origin.start = start
            start += part.origin.rows
        # columns every part keeps encoded stay so (EventTable makes them when its frame is asked for); the others
        # are made and converted as usual
        coded = _encodings(parts, final)
        whole = final
        final = {name: t for name, t in final.items() if name not in coded}
        # consecutive parts of the Python reader (JSON text columns) convert in one query: many
        # small inputs cost little more than one big one
        group: list[Part] = []
        for part in parts:
            if group and (part.stats is None or group[0].stats is None):
                frames.append(self._convert(group, final))
                group = []
            group.append(part)
        if group:
            frames.append(self._convert(group, final))
        schema: dict[str, PolarsDataType] = {**{name: _polars_type(t) for name, t in final.items()}, "__file": pl.Int32}
        frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
        frame = frame.select(*final, pl.int_range(pl.len(), dtype=pl.Int64).alias("__row"),
                             "__file")
        report = LoadReport(files, frame.height, [Skipped(*s) for s in self.skips.kept],
                            self.skips.count, self.notes, self.inputs)
        return EventTable(frame, frozenset(whole), report, [p.origin for p in parts], coded,
                          [*whole, "__row", "__file"])

    def _convert(self, parts: list[Part], final: dict[str, ColumnType]) -> pl.DataFrame:
        """The columns of these parts (of the same column types), one after the other, in their
        final types, plus ``__file``."""
        part = parts[0]
        file_col = pl.concat([pl.repeat(p.origin.file_no, p.origin.rows, dtype=pl.Int32, eager=True)
                              for p in parts]).alias("__file")  # no NumPy array: Polars imports numpy.ma for one
        if not final:
            return pl.DataFrame([file_col])
        if (converted := _python_frame(parts, final)) is not None:
            return converted.with_columns(file_col)
        columns, select = {}, []
        for k, (name, want) in enumerate(final.items()):
            x, have = f"c{k}", part.types.get(name)
            chunks = [c if (c := p.column(name)) is not None else pa.nulls(p.origin.rows, pa.string()) for p in parts]
            columns[x] = chunks[0] if len(chunks) == 1 else pa.chunked_array(
                [c for chunk in chunks for c in (chunk.chunks if isinstance(chunk, pa.ChunkedArray) else [chunk])],
                chunks[0].type)
            expr = x if have == want else (
                convert_sql(x, want) if have is None else cast_sql(x, have, want))
            select.append(f"{expr} AS {ident(name)}")
        if all(part.types.get(name) == want for name, want in final.items()):
            table = pa.table(list(columns.values()), names=list(final))  # already final
        else:
            table = _select(self.con.from_arrow(pa.table(columns)),
                            "t", f"SELECT {', '.join(select)} FROM t").to_arrow_table()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)  # a pa.Table gives one (polars cannot overload on pyarrow's types)
        frame = frame.cast({name: _polars_type(t) for name, t in final.items()})
        return frame.with_columns(file_col)


def _encodings(parts: list[Part], final: dict[str, ColumnType]) -> dict[str, Encoding]:
    """The encoding of each final column whose every part came encoded from the store in its final type (a part
    without the field is all null, one value), from its parts' encodings (merged when first asked for)."""
    out: dict[str, Encoding] = {}
    if not any(p.encodings for p in parts):  # no input of the store read as codes
        return out
    for name, want in final.items():
        got = []
        for part in parts:
            if name in part.encodings and part.types.get(name) == want:
                got.append(part.encodings[name])
            elif part.types.get(name) is None and (column := part.columns.get(name)) is not None \
                    and column.null_count == len(column):
                got.append((pl.Series(name, [None], dtype=_polars_type(want)), np.zeros(len(column), dtype=np.uint32),
                            np.array([len(column)])))
            else:
                break
        else:
            if got and all(values.dtype == _polars_type(want) for values, _, _ in got):
                out[name] = Encoding(got)
    return out


def _python_frame(parts: list[Part], final: dict[str, ColumnType]) -> pl.DataFrame | None:
    """The JSON text columns of these parts converted in Python, when that gives exactly what
    `convert_sql` would: every value of a column is of its type's own kind (a string for String,
    an int for Int64, a bool for Boolean, scalars or arrays of them for a list). Otherwise None, and
    DuckDB converts (a number rendered as a string, a float, an object: its rendering is DuckDB's)."""
    for part in parts:
        if part.stats is None or any(t is not None for t in part.types.values()):
            return None
        for name, want in final.items():
            kinds, _ = part.stats.get(name, (set(), False))
            if want.base == "float" or not kinds <= {want.base}:
                return None
    loads = orjson.loads
    series = []
    with no_gc():
        for name, want in final.items():
            values: list = []
            for part in parts:
                column = part.columns.get(name)
                if column is None:
                    values.extend([None] * part.origin.rows)
                    continue
                texts = column.to_pylist()
                if want.is_list:  # a scalar in a list column is a one-element list, as in `convert_sql`
                    values.extend(None if t is None else v if isinstance(v := loads(t), list) else [v] for t in texts)
                else:
                    values.extend(None if t is None else loads(t) for t in texts)
            series.append(_list_series(name, values, want) if want.is_list
                          else pl.Series(name, values, dtype=_polars_type(want)))
    return pl.DataFrame(series)


def _list_series(name: str, values: list[list | None], want: ColumnType) -> pl.Series:
    """A list column from Python lists, through Arrow's offsets: 20x faster than Polars building
    it from the nested lists (10 ms for 2,000 rows, ~40 ms of a small hunt)."""
    flat: list = []
    offsets, nulls = [0], []
    for v in values:
        if v is not None:
            flat.extend(v)
        nulls.append(v is None)
        offsets.append(len(flat))
    base = _polars_type(ColumnType(want.base, False))
    elements = pl.Series(flat, dtype=base).to_arrow(compat_level=pl.CompatLevel.oldest())
    lists = pa.LargeListArray.from_arrays(pl.Series(offsets, dtype=pl.Int64).to_arrow(), elements,
                                          mask=pl.Series(nulls, dtype=pl.Boolean).to_arrow())
    return pl.Series(name, lists, dtype=_polars_type(want))


def _requested_paths(fields: Collection[str]) -> list[FieldPath]:
    """The requested fields; one of more parts than any loaded document can have is left out."""
    paths = []
    for name in dict.fromkeys(fields):
        try:
            paths.append(FieldPath(name))
        except ValueError as e:
            if name.count(".") < MAX_DEPTH:
                raise
            _log.warning("not loaded: %s", e)
    return paths


def _field_paths(names: set[str]) -> list[FieldPath]:
    """Discovered leaf names as fields, sorted; names no field can have are left out."""
    paths = []
    for name in sorted(names):
        try:
            paths.append(FieldPath(name))
        except ValueError as e:
            _log.warning("not loaded: %s", e)
    return paths


def _select(rel: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """`rel.query(name, sql)` of a SELECT, which always gives a relation (None is for other statements)."""
    result = rel.query(name, sql)
    assert result is not None
    return result


def _polars_type(t: ColumnType) -> PolarsDataType:
    base = {"bool": pl.Boolean, "int": pl.Int64, "float": pl.Float64, "str": pl.String}[t.base]
    return pl.List(base) if t.is_list else base
