"""The two readers behind `ecs_json`, and where each loaded row came from.

* **DuckDB** (`read_json` with explicit ``columns=``). Fields guessed String are declared VARCHAR;
  every other field is declared ``JSON``, which accepts any value and yields its JSON text, and
  converted in the same query next to a per-row does-not-fit flag. A flagged field is read again
  as JSON text. Any DuckDB error means the file needs the Python reader.
* **orjson, line by line**: small files, in-memory documents and fallbacks. It reports each bad
  line with its number, and only it follows Elasticsearch through arrays of objects.

Both give a `Part`: columns that are typed or still JSON text, for `ecs_json` to unify.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from array import array
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # DuckDB is imported where it reads a file: raw logs (auditd, syslog) never need it
    import duckdb

from trailhound._gc import no_gc
from trailhound.sources.dictionary import EncodedPart, decode
from trailhound.sources.ecs_values import (
    JSON_KIND,
    MAX_DEPTH,
    MISSING,
    STRING,
    STRING_LIST,
    ColumnType,
    FieldPath,
    Stats,
    convert_sql,
    ident,
    leaf_names,
    literal,
    lookup,
    misfit_sql,
    py_kinds,
    too_deep,
)
from trailhound.sources.inputs import (
    MAX_JSON_LINE_BYTES,
    UTF8_BOM,
    SkipLog,
    Source,
    bounded_lines,
)

log = logging.getLogger("trailhound.sources.ecs_json")


# ----------------------------------------------------------------------------------------------
# Where rows came from, for EventTable.documents() and locations()


class Origin:
    """The rows of one input; `start` (first global row) is set when the frame is assembled."""

    name: str
    file_no: int
    rows: int
    start: int = 0

    def documents(self, local: list[int]) -> list[dict]:
        """The documents at these sorted row numbers within this input."""
        raise NotImplementedError

    def texts(self, local: list[int]) -> list[bytes]:
        """The same documents as JSON text whose `orjson.loads` is `documents` gives: the input's own text where it
        keeps one (an NDJSON line, a Parquet row's `__source`, a normalized event's kept JSON), so a caller that
        ships documents elsewhere (a Spark task) neither parses nor serializes them again."""
        return [dump_document(d, compress=False) for d in self.documents(local)]

    def lines(self, local: list[int]) -> list[int]:
        raise NotImplementedError


#: byte offsets or line numbers of a file's lines: NumPy's from the vectorized scan, array("q")'s otherwise
Positions = np.ndarray | array


class NdjsonOrigin(Origin):
    """Document k is the k-th non-blank line (the DuckDB reader fails on anything else).

    Byte offsets come from the Python reader, or from one scan of the file on first use.
    """

    def __init__(self, src: Source, file_no: int, rows: int, offsets: Positions | None = None,
                 line_numbers: Positions | None = None) -> None:
        self.src, self.name, self.file_no, self.rows = src, src.name, file_no, rows
        self._offsets, self._lines = offsets, line_numbers

    def _index(self) -> tuple[Positions, Positions]:
        if self._offsets is None or self._lines is None:
            offsets, lines = line_index(self.src)
            if len(offsets) != self.rows:
                raise RuntimeError(f"{self.name}: the file changed after it was loaded")
            self._offsets, self._lines = offsets, lines
        return self._offsets, self._lines

    def documents(self, local: list[int]) -> list[dict]:
        return [orjson.loads(line) for line in self.texts(local)]

    def texts(self, local: list[int]) -> list[bytes]:
        """The rows' lines as read (a BOM cut, as the reader cuts it)."""
        offsets, _ = self._index()
        out = []
        with self.src.open_binary() as fh:  # `local` is sorted: a gzip stream only seeks forward
            for k in local:
                at = int(offsets[k])
                fh.seek(at)
                line = fh.readline()
                out.append(line[3:] if at == 0 and self.src.bom else line)
        return out

    def lines(self, local: list[int]) -> list[int]:
        _, lines = self._index()
        return [int(lines[k]) for k in local]


_INDEX_CHUNK = 16 << 20
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True  # what bytes.strip() removes


def line_index(src: Source) -> tuple[Positions, Positions]:
    """Byte offset and line number of every non-blank line, by a vectorized newline scan.

    A line whose first byte is not whitespace is not blank; the few others are read to decide.
    """
    starts, first_bytes, pos, at_line_start = [], [], 0, True
    with src.open_binary() as fh:
        while chunk := fh.read(_INDEX_CHUNK):
            data = np.frombuffer(chunk, dtype=np.uint8)
            begin = np.flatnonzero(data == 10) + 1
            if at_line_start:
                begin = np.concatenate(([0], begin))
            begin = begin[begin < len(data)]  # a line starting past this chunk starts the next one
            at_line_start = chunk.endswith(b"\n")
            starts.append(begin + pos)
            first_bytes.append(data[begin])
            pos += len(chunk)
    offsets = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
    keep = ~_WHITESPACE[np.concatenate(first_bytes)] if starts else np.zeros(0, dtype=bool)
    unsure = np.flatnonzero(~keep)
    if len(unsure) > 10_000:  # e.g. every line indented: read them all line by line
        return _line_index_slow(src)
    if len(unsure):
        with src.open_binary() as fh:  # in file order: a gzip stream only seeks forward
            for k in unsure:
                fh.seek(int(offsets[k]))
                keep[k] = bool(fh.readline().strip())
    return offsets[keep], np.flatnonzero(keep) + 1


def _line_index_slow(src: Source) -> tuple[array, array]:
    offsets, lines, pos = array("q"), array("q"), 0
    with src.open_binary() as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                offsets.append(pos)
                lines.append(n)
            pos += len(line)
    return offsets, lines


class ArrayOrigin(Origin):
    """Rows of a JSON-array file; `numbers` holds each row's element number (None: all rows)."""

    def __init__(self, src: Source, file_no: int, rows: int, numbers: array | None) -> None:
        self.src, self.name, self.file_no, self.rows = src, src.name, file_no, rows
        self.numbers = numbers

    def lines(self, local: list[int]) -> list[int]:
        return [self.numbers[k] if self.numbers is not None else k + 1 for k in local]

    def documents(self, local: list[int]) -> list[dict]:
        text, _ = self.src.read_all()
        elements, _ = array_elements(text[3:] if self.src.bom else text)
        return [elements[n - 1] for n in self.lines(local)]


class MemoryOrigin(Origin):
    def __init__(self, name: str, docs: list, numbers: array, file_no: int = 0) -> None:
        self.name, self.file_no, self.rows = name, file_no, len(docs)
        self.docs, self.numbers = docs, numbers

    def documents(self, local: list[int]) -> list[dict]:
        return [self.docs[k] for k in local]

    def lines(self, local: list[int]) -> list[int]:
        return [self.numbers[k] for k in local]


class JsonOrigin(MemoryOrigin):
    """Rows of a non-ECS input: its normalized documents, kept as JSON (`dump_document`)."""

    def documents(self, local: list[int]) -> list[dict]:
        return [load_document(self.docs[k]) for k in local]

    def texts(self, local: list[int]) -> list[bytes]:
        return [blob if blob[:1] == b"{" else zlib.decompress(blob) for blob in (self.docs[k] for k in local)]


def dump_document(doc: dict, compress: bool = True) -> bytes:
    """A document as compact JSON, compressed: a normalized auditd event costs ~1 KB so, against
    ~3-7 KB as JSON and more as dicts. Ints beyond 64 bits and non-string keys too (orjson refuses
    them). `compress=False` keeps the JSON as it is (zlib costs ~30 us a document: a third of a
    small hunt's reading); `load_document` reads both."""
    try:
        text = orjson.dumps(doc)
    except orjson.JSONEncodeError:
        text = _fallback_json(doc).encode("utf-8", "replace")
    return zlib.compress(text, 1) if compress else text


def _fallback_json(value) -> str:
    """Compact JSON of what orjson refuses (an int beyond 64 bits, a key that is not a string...)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def load_document(blob: bytes) -> dict:
    """The document `dump_document` stored: JSON text starts with `{`, a zlib stream never does."""
    return orjson.loads(blob if blob[:1] == b"{" else zlib.decompress(blob))


@dataclass
class Part:
    """One input's columns, each typed with `types[name]` or JSON text when that is None."""

    origin: Origin
    columns: dict[str, pa.Array | pa.ChunkedArray]
    types: dict[str, ColumnType | None]
    stats: Stats | None = None  # kinds and list-ness of each column, when the reader saw them
    #: per column the store keeps encoded (sources/parquet.py): its distinct values and each row's code among them;
    #: such a column is not in `columns` until `column` makes it
    encodings: dict[str, EncodedPart] = field(default_factory=dict)

    def column(self, name: str) -> pa.Array | pa.ChunkedArray | None:
        """A column of the part, made from its encoding if it has one (the values gathered by the codes)."""
        if name not in self.columns and name in self.encodings:
            self.columns[name] = decode(self.encodings[name]).to_arrow(compat_level=pl.CompatLevel.newest())
        return self.columns.get(name)


# ----------------------------------------------------------------------------------------------
# Python reader


class Rows:
    """JSON text columns of the given fields, one `add` per document, and the kinds of their
    values (what DuckDB's census would find in the text, without a query per input)."""

    CHUNK = 8192  # rows kept as Python strings before they move to Arrow (a peak of ~60 bytes each)

    def __init__(self, paths: list[FieldPath]) -> None:
        self.paths = paths
        self.columns: list[list] = [[] for _ in paths]
        self.chunks: list[list[pa.Array]] = [[] for _ in paths]
        self.kinds: list[set[str]] = [set() for _ in paths]
        self.lists = [False] * len(paths)
        self.pending = 0

    def _flush(self) -> None:
        for column, chunks in zip(self.columns, self.chunks):
            chunks.append(_string_array(column))
            column.clear()
        self.pending = 0

    def add(self, doc: dict) -> None:
        self.pending += 1
        if self.pending > self.CHUNK:
            self._flush()
            self.pending = 1
        dumps = orjson.dumps
        kinds, lists = self.kinds, self.lists
        for k, path in enumerate(self.paths):
            value = lookup(doc, path.keys)
            if value is None or value is MISSING:
                self.columns[k].append(None)
                continue
            try:
                self.columns[k].append(dumps(value).decode())
            except orjson.JSONEncodeError:
                self.columns[k].append(_fallback_json(value))
            if py_kinds(value, kinds[k]):
                lists[k] = True

    def part(self, origin: Origin) -> Part:
        self._flush()
        columns = {p.name: c[0] if len(c) == 1 else pa.chunked_array(c, pa.string())
                   for p, c in zip(self.paths, self.chunks)}
        stats = {p.name: (kinds, is_list) for p, kinds, is_list in zip(self.paths, self.kinds, self.lists)}
        return Part(origin, columns, dict.fromkeys(columns), stats)


def _string_array(values: list[str | None]) -> pa.Array:
    """Python strings as an Arrow string array, built by Polars: `pa.array` imports pandas where it
    is installed (0.2 s, on every hunt over raw logs) to ask whether the list is a pandas object."""
    return pl.Series(values, dtype=pl.String).to_arrow(compat_level=pl.CompatLevel.oldest()).cast(pa.string())


def describe(value) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None or isinstance(value, bool):
        return orjson.dumps(value).decode()
    return "a number" if isinstance(value, (int, float)) else type(value).__name__


def _bad_line_reason(line: bytes, error: orjson.JSONDecodeError, last: bool) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 at byte {e.start + 1}"
    reason = f"invalid JSON: {error.msg} (at character {error.pos + 1})"
    return f"truncated last line (no newline at end of file); {reason}" if last else reason


def _ndjson_docs(src: Source, skips: SkipLog, counted: list[int] | None = None
                 ) -> Iterator[tuple[dict, int, int]]:
    """(document, byte offset, line number) of each usable line; bad lines go to `skips`, and
    the number of lines read to `counted[0]`."""
    pos, line_no = 0, 0
    loads = orjson.loads
    with src.open_binary() as fh:
        try:
            for line_no, line in enumerate(bounded_lines(fh, MAX_JSON_LINE_BYTES), 1):
                if isinstance(line, int):
                    pos += line
                    skips.add(src.name, line_no, f"line of {line} bytes, over the {MAX_JSON_LINE_BYTES}-byte limit")
                    continue
                start, pos = pos, pos + len(line)
                if line_no == 1 and src.bom and line.startswith(UTF8_BOM):
                    line = line[3:]
                if not line.strip():
                    continue
                try:
                    doc = loads(line)
                except orjson.JSONDecodeError as e:
                    skips.add(src.name, line_no, _bad_line_reason(line, e, not line.endswith(b"\n")))
                    continue
                if not isinstance(doc, dict):
                    skips.add(src.name, line_no, f"not a JSON object (found {describe(doc)})")
                elif (line.count(b"{") + line.count(b"[") + line.count(b".") > MAX_DEPTH
                      and (why := too_deep(doc)) is not None):
                    skips.add(src.name, line_no, why)
                else:
                    yield doc, start, line_no
        except (EOFError, OSError, zlib.error) as e:  # damaged gzip stream: keep what came before
            skips.add(src.name, line_no + 1,
                      f"gzip data is truncated or corrupt ({e}); the rest of the file is lost")
        finally:
            if counted is not None:
                counted[0] = line_no


def array_elements(text: bytes) -> tuple[list, tuple[int, str] | None]:
    """Elements of a JSON array document; on a syntax error, those before it and (element, why)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    else:
        if isinstance(value, list):
            return value, None
        return [], (1, f"the file starts with '[' but is not a JSON array (found {describe(value)})")
    # Broken files only: decode element by element to keep what precedes the error.
    decoder = json.JSONDecoder(parse_int=_parse_int)
    s = text.decode("utf-8", errors="replace")
    elements: list = []
    i = s.index("[") + 1
    while True:
        while i < len(s) and s[i] in " \t\r\n":
            i += 1
        if s.startswith("]", i) and not elements:
            return elements, None
        try:
            value, i = decoder.raw_decode(s, i)
        except json.JSONDecodeError as e:
            return elements, (len(elements) + 1, f"invalid JSON at line {e.lineno} column {e.colno}: "
                                                 f"{e.msg}; the rest of the file is lost")
        except ValueError as e:  # a number orjson refuses too (infinite as a double)
            return elements, (len(elements) + 1, f"invalid JSON: {e}; the rest of the file is lost")
        except RecursionError:
            return elements, (len(elements) + 1, f"nested deeper than {MAX_DEPTH} levels; the rest of the file is lost")
        elements.append(value)
        while i < len(s) and s[i] in " \t\r\n":
            i += 1
        if s.startswith("]", i):
            return elements, None
        if not s.startswith(",", i):
            return elements, (len(elements) + 1, f"invalid JSON at line {s.count(chr(10), 0, i) + 1}: "
                                                 "expected ',' or ']'; the rest of the file is lost")
        i += 1


def _parse_int(text: str) -> int | float:
    """Integers as orjson reads them: beyond 64 bits a float, and none that is infinite as one."""
    if len(text) < 22 and -(1 << 63) <= (value := int(text)) < (1 << 64):
        return value
    as_float = float(text)
    if as_float in (float("inf"), float("-inf")):
        raise ValueError(f"number is infinity when parsed as double ({text[:20]}...)")
    return as_float


def _array_docs(src: Source, skips: SkipLog, counted: list[int] | None = None
                ) -> Iterator[tuple[dict, int, int]]:
    """(document, 0, element number) of each object element; the rest goes to `skips`, and the
    number of elements (plus one for a broken tail) to `counted[0]`."""
    text, gzip_error = src.read_all()
    elements, error = array_elements(text[3:] if src.bom else text)
    if counted is not None:
        counted[0] = len(elements) + (error is not None)
    for n, doc in enumerate(elements, 1):
        if not isinstance(doc, dict):
            skips.add(src.name, n, f"array element is not a JSON object (found {describe(doc)})")
        elif (why := too_deep(doc)) is not None:
            skips.add(src.name, n, why)
        else:
            yield doc, 0, n
    if error:
        skips.add(src.name, error[0], f"{gzip_error}; {error[1]}" if gzip_error else error[1])


def py_read(src: Source, file_no: int, paths: list[FieldPath], skips: SkipLog,
            counted: list[int] | None = None) -> Part:
    """The fields of every usable document of the file; the number of lines read goes to `counted[0]`."""
    rows, offsets, lines = Rows(paths), array("q"), array("q")
    with no_gc():
        for doc, offset, line in (_array_docs if src.array else _ndjson_docs)(src, skips, counted):
            rows.add(doc)
            offsets.append(offset)
            lines.append(line)
    origin = (ArrayOrigin(src, file_no, len(lines), lines) if src.array
              else NdjsonOrigin(src, file_no, len(lines), offsets, lines))
    return rows.part(origin)


def py_leaf_names(src: Source) -> set[str]:
    names: set[str] = set()
    with no_gc():  # bad lines are reported by the read that follows, not here
        for doc, _, _ in (_array_docs if src.array else _ndjson_docs)(src, SkipLog(0)):
            leaf_names(doc, "", names)
    return names


# ----------------------------------------------------------------------------------------------
# DuckDB reader


class Declaration:
    """The ``columns=`` map for read_json covering every spelling of every field that a file
    whose dotted keys are `dotted` (None: any) can hold (`scan_keys` finds them): DuckDB pays for every
    declared key, and a field of n parts has 2^(n-1) spellings.

    Leaves are JSON (or VARCHAR, see `columns`), the levels above them STRUCTs. `expr[name]` is
    the SQL for the field: the coalesce of its spellings, nested first as in `lookup`. Raises
    ValueError when the fields cannot be declared (see `FieldPath.variants` too).
    """

    def __init__(self, paths: list[FieldPath], dotted: Collection[str] | None = ()) -> None:
        self.paths = paths
        self.tree: dict = {}  # key -> subtree, or the field name at a leaf
        self.expr: dict[str, str] = {}
        for path in paths:
            exprs = []
            for keys in path.variants(dotted):
                node = self.tree
                for key in keys[:-1]:
                    node = node.setdefault(key, {})
                    if not isinstance(node, dict):
                        raise ValueError(f"{path.name} runs through another requested field")
                if node.setdefault(keys[-1], path.name) != path.name:
                    raise ValueError(f"{path.name} is also the parent of a requested field")
                expr = ident(keys[0])
                for key in keys[1:]:
                    expr = f"struct_extract({expr}, {literal(key)})"
                exprs.append(expr)
            self.expr[path.name] = exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"
        self._check_case(self.tree)

    def columns(self, varchar: Collection[str] = (), lists: Collection[str] = ()) -> dict[str, str]:
        """The map, with the fields in `varchar` declared VARCHAR and those in `lists` VARCHAR[]
        instead of JSON."""
        def declare(node) -> str:
            if isinstance(node, str):
                return "VARCHAR" if node in varchar else "VARCHAR[]" if node in lists else "JSON"
            return "STRUCT(" + ", ".join(f"{ident(k)} {declare(v)}" for k, v in node.items()) + ")"

        # read_json needs a column: "." is no field's key (see FieldPath) and JSON takes anything.
        return {key: declare(node) for key, node in self.tree.items()} or {".": "JSON"}

    def _check_case(self, node: dict) -> None:
        # DuckDB names are case-insensitive: "Name" and "name" cannot be declared side by side.
        if len({k.casefold() for k in node}) != len(node):
            raise ValueError("keys differing only in case")
        for child in node.values():
            if isinstance(child, dict):
                self._check_case(child)

    def fits(self, doc: dict, node: dict | None = None) -> bool:
        """False if DuckDB would fail on this document: a declared object level is not an object."""
        for key, child in (self.tree if node is None else node).items():
            if isinstance(child, str) or key not in doc:
                continue
            value = doc[key]
            if value is not None and not (isinstance(value, dict) and self.fits(value, child)):
                return False
        return True


# A JSON key holding a dot: its text between the quotes, then a colon. A string value is never
# followed by a colon, and the opening quote of a key is the last unescaped quote before it.
_DOTTED_KEY = re.compile(rb'"((?:[^"\\\n]|\\.)*\.(?:[^"\\\n]|\\.)*)"[ \t\r]*:')
# A cheap test first (a dot, then key characters, then the closing quote and a colon), so that
# only lines with such a key pay for the extraction
_HAS_DOTTED_KEY = re.compile(rb'\.[^"\\\n:,{}\[\]]*"[ \t\r]*:')


@dataclass(frozen=True)
class KeyScan:
    dotted: frozenset[str] | None  # the keys spelled with a dot (e.g. "process.name"); None: some, not listed
    openers: int  # the most `{` and `[` of any line: a bound on its nesting depth


def has_dotted_keys(con: duckdb.DuckDBPyConnection, src: Source) -> bool:
    """Whether any key in the file is spelled with a dot (e.g. `"process.name":`)."""
    return scan_keys(con, src).dotted != frozenset()


def scan_keys(con: duckdb.DuckDBPyConnection, src: Source, extract: bool = False) -> KeyScan:
    """Whether the file spells keys with a dot and, with `extract`, which (that costs a few times
    more: only fields of many parts need it), and a bound on its documents' depth. DuckDB scans the
    lines with RE2 on every core; where it cannot split them (a control byte, a huge line),
    Python's regex scans the file."""
    import duckdb

    if src.size == 0:
        return KeyScan(frozenset(), 0)
    found: bool | None
    try:
        lines = ("FROM read_csv(?, columns={'l': 'VARCHAR'}, delim='\x01', quote='', escape='', header=false, "
                 "auto_detect=false, compression=?)")
        openers = "strlen(l) - strlen(replace(replace(l, '{', ''), '[', ''))"
        if extract:
            (keys, most), = con.execute(
                f"SELECT list(DISTINCT k), max(o) FROM (SELECT {openers} AS o, unnest(list_concat(CASE WHEN "
                f"regexp_matches(l, ?) THEN regexp_extract_all(l, ?, 1) END, [NULL])) AS k {lines})",
                [_HAS_DOTTED_KEY.pattern.decode(), _DOTTED_KEY.pattern.decode(), src.path,
                 "gzip" if src.gzip else "none"]).fetchall()
            raw = {k.encode() for k in keys or () if k is not None}
        else:
            (found, most), = con.execute(f"SELECT bool_or(regexp_matches(l, ?)), max({openers}) {lines}",
                                         [_HAS_DOTTED_KEY.pattern.decode(), src.path,
                                          "gzip" if src.gzip else "none"]).fetchall()
            raw = set()
    except duckdb.Error:
        most, found, raw = 0, False, set()
        with src.open_binary() as fh:
            try:
                for line in bounded_lines(fh, MAX_JSON_LINE_BYTES):
                    if type(line) is bytes:
                        if extract:
                            raw.update(_DOTTED_KEY.findall(line))
                        else:
                            found = found or _HAS_DOTTED_KEY.search(line) is not None
                        most = max(most, line.count(b"{") + line.count(b"["))
            except (EOFError, OSError, zlib.error):
                pass  # the read reports the damage
    if not extract:
        return KeyScan(None if found else frozenset(), most or 0)
    dotted = set()
    for key in raw:
        try:
            dotted.add(orjson.loads(b'"' + key + b'"'))
        except orjson.JSONDecodeError:
            continue
    return KeyScan(frozenset(dotted), most or 0)


def _relation(con: duckdb.DuckDBPyConnection, src: Source, columns: dict[str, str],
              records: Literal["true", "false"]):
    return con.read_json(src.path, columns=columns,
                         format="array" if src.array else "newline_delimited",
                         records=records, compression="gzip" if src.gzip else "none")


def duck_read(con: duckdb.DuckDBPyConnection, src: Source, file_no: int, decl: Declaration,
              guesses: dict[str, ColumnType | None]) -> Part:
    """Read one file with DuckDB; raises duckdb.Error when the file needs the Python reader.

    Fields guessed String are declared VARCHAR, the cheapest read: DuckDB then renders numbers,
    booleans and objects exactly as `convert_sql` does, but an array as its JSON text, which
    `_holds_array` looks for. Other guessed fields are converted from JSON text in the query,
    next to a does-not-fit flag. Fields that do not fit are read again as JSON text.
    """
    import duckdb

    strings = [name for name in decl.expr if guesses.get(name) == STRING]
    lists = [name for name in decl.expr if guesses.get(name) == STRING_LIST]
    try:
        return _duck_read(con, src, file_no, decl, guesses, strings, lists)
    except duckdb.Error as e:
        # a scalar where VARCHAR[] was declared: read the lists as JSON text and convert them
        log.info("%s: %s; reading list fields as JSON", src.name, str(e).splitlines()[0])
        return _duck_read(con, src, file_no, decl, guesses, strings, [])


def _duck_read(con, src: Source, file_no: int, decl: Declaration, guesses: dict[str, ColumnType | None],
               strings: list[str], lists: list[str]) -> Part:
    rel = _relation(con, src, decl.columns(strings, lists), "true")
    select, checks = [], {}
    for name, x in decl.expr.items():
        t = guesses.get(name)
        if t is None or t == STRING or name in lists:
            select.append(f"{x} AS {ident(name)}")
        else:
            checks[name] = f"{name}..misfit"  # no field name has an empty part
            select.append(f"{convert_sql(x, t)} AS {ident(name)}, "
                          f"{misfit_sql(x, t)} AS {ident(checks[name])}")
    table = rel.query("src", f"SELECT {', '.join(select) or 'NULL'} FROM src").to_arrow_table()
    columns = {name: table.column(name) for name in decl.expr}
    types = {name: guesses.get(name) for name in decl.expr}

    def misfit(name: str) -> bool:
        if name in checks:
            return bool(pc.any(table.column(checks[name])).as_py())
        if name in lists:  # a nested array arrives as an element holding its JSON text
            return _holds_array(pc.list_flatten(columns[name]))
        return name in strings and _holds_array(columns[name])

    misfits = [name for name in decl.expr if misfit(name)]
    if misfits:  # values the sample did not foresee: read those fields again as JSON text
        log.info("%s: %s do not fit the sampled types; reading them again", src.name, misfits)
        raw = _relation(con, src, decl.columns(), "true").query(
            "src", "SELECT " + ", ".join(decl.expr[n] for n in misfits) + " FROM src").to_arrow_table()
        for k, name in enumerate(misfits):
            columns[name] = raw.column(k)
            types[name] = None
    rows = table.num_rows
    origin = ArrayOrigin(src, file_no, rows, None) if src.array else NdjsonOrigin(src, file_no, rows)
    return Part(origin, columns, types)


def _holds_array(values: pa.ChunkedArray) -> bool:
    """Whether a column read as VARCHAR got an array, which DuckDB renders as its JSON text.

    A string that starts with '[' and is valid JSON, like "[1]", counts too: it only costs a
    re-read. Strings like "[kworker/0:1]" are not valid JSON.
    """
    for text in values.filter(pc.starts_with(values, "[")).to_pylist():
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        return True
    return False


def duck_discover(con: duckdb.DuckDBPyConnection, src: Source) -> Stats:
    """Every leaf of the file with its exact kinds, from the distinct per-document structures.

    Raises duckdb.Error, or ValueError when only the Python reader can handle the file (a line
    that is not an object, arrays of objects or of mixed values).
    """
    leaves: Stats = {}

    def walk(node: dict, prefix: str, depth: int = 1) -> None:
        if depth > MAX_DEPTH or prefix.count(".") >= MAX_DEPTH:
            raise ValueError(f"a document nested deeper than {MAX_DEPTH} levels")
        for key, value in node.items():
            name = prefix + key
            is_list = isinstance(value, list)
            if is_list:
                value = value[0]
                if not isinstance(value, str) or value == "JSON":
                    raise ValueError(f"{name}: an array of objects, arrays or mixed values")
            if isinstance(value, dict):
                walk(value, name + ".", depth + 1)
                continue
            if value == "UBIGINT":
                value = "BIGINT"  # a guess: the reader's misfit check catches ints beyond Int64
            if value not in JSON_KIND:
                raise ValueError(f"{name}: values of type {value}")
            kinds, was_list = leaves.get(name, (set(), False))
            kind = JSON_KIND[value]
            leaves[name] = (kinds | {kind} if kind else kinds, was_list or is_list)

    rel = _relation(con, src, {"json": "JSON"}, "false")
    for (structure,) in rel.query("src", "SELECT DISTINCT json_structure(json) FROM src").fetchall():
        node = orjson.loads(structure)
        if not isinstance(node, dict):
            raise ValueError("a line is not a JSON object")
        walk(node, "")
    return leaves
