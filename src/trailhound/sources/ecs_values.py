"""What a field's values are, read the way Elasticsearch reads a document (for `ecs_json`).

* A field is found under every spelling of its path: nested, flattened dotted keys, or a mix.
* Through an array of objects a path collects the values of all elements; nested arrays are
  flattened (``[1, [2, 3]]`` is ``[1, 2, 3]``).
* A field's column type is the join of the kinds of all its values, array elements included:
  only ints -> Int64; ints and floats -> Float64; only bools -> Boolean; anything else (strings,
  objects, mixes) -> String. An array anywhere makes it a list of that. Ints outside Int64 count
  as floats.

Conversions from JSON text to these types are SQL, run by DuckDB for both readers, so a value is
rendered the same whichever reader saw it: numbers as ``CAST(... AS VARCHAR)`` gives them
(``1234``, ``1.5``, ``1e+16``), booleans as ``true``/``false``, objects as compact JSON.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

RESERVED = frozenset({"__row", "__file"})  # the loader's own columns
MAX_DEPTH = 100
"""Documents nested deeper, or with a field of more parts, are refused: no log needs that many
levels, and every step after loading (spellings, columns, printing) pays for each one."""
MISSING = object()  # `lookup` result when no key of the path exists

# Kinds and list-ness of each field's values: {name: ({"str", "int", ...}, is_list)}.
Stats = dict[str, tuple[set[str], bool]]


class FieldPath:
    """A dotted field and every way a document can spell it.

    ``process.parent.pid`` may be stored nested, as the flat key ``"process.parent.pid"`` or as a
    mix (``{"process": {"parent.pid": 1}}``). `keys[i]` lists the keys that can start at part
    ``i``; trying them shortest first gives the variant order both readers coalesce in.
    """

    __slots__ = ("name", "keys")

    def __init__(self, name: str) -> None:
        parts = name.split(".")
        if not name or "" in parts:
            raise ValueError(f"invalid field name {name!r}")
        if name in RESERVED:
            raise ValueError(f"field name {name!r} is reserved for the loader's own column")
        if len(parts) > MAX_DEPTH:
            raise ValueError(f"field name {name[:60]!r}... has more than {MAX_DEPTH} parts")
        self.name = name
        self.keys = [[".".join(parts[i:j]) for j in range(i + 1, len(parts) + 1)]
                     for i in range(len(parts))]

    def variants(self, dotted: Collection[str] | None = (), limit: int = 64) -> list[tuple[str, ...]]:
        """The spellings of this field that a document whose dotted keys are among `dotted` (None:
        any) can have, nested first, in `lookup`'s coalesce order.

        A field of n parts has 2^(n-1) spellings in all; only those made of single parts and keys
        the data actually has are listed. Raises ValueError past `limit` of them (a long field, or
        data built to explode: read it with `lookup`, which walks the document instead)."""
        keys = [[k for k in ks if "." not in k or dotted is None or k in dotted] for ks in self.keys]
        out: list[tuple[str, ...]] = []
        # depth-first, shortest key first: the order the recursive definition gives
        stack: list[tuple[int, tuple[str, ...]]] = [(0, ())]
        while stack:
            i, prefix = stack.pop()
            if i == len(keys):
                out.append(prefix)
                if len(out) > limit:
                    raise ValueError(f"{self.name}: more than {limit} spellings in the data")
                continue
            for key in reversed(keys[i]):
                stack.append((i + key.count(".") + 1, (*prefix, key)))
        return out


def lookup(node: dict, keys: list[list[str]], i: int = 0):
    """The value of a field in a document (`keys` from `FieldPath`).

    MISSING if no key of the path exists, None if the field is only null, and a list when the
    value is an array or the path runs through an array of objects. The first non-null variant
    wins, as in the DuckDB reader's coalesce.
    """
    result = MISSING
    last = len(keys)
    for key in keys[i]:
        if key not in node:
            continue
        value = node[key]
        j = i + key.count(".") + 1
        if j < last:
            if isinstance(value, dict):
                value = lookup(value, keys, j)
            elif isinstance(value, list):
                value = _collect(value, keys, j)
            else:
                continue  # a scalar where an object is expected: the path does not exist here
            if value is MISSING:
                continue
        elif isinstance(value, list) and any(isinstance(e, list) for e in value):
            value = _flatten(value)
        if value is not None:
            return value
        result = None
    return result


def _collect(items: list, keys: list[list[str]], i: int):
    values: list = []
    found = False
    for item in items:
        if isinstance(item, dict):
            value = lookup(item, keys, i)
            if value is not MISSING:
                found = True
                values.extend(value) if isinstance(value, list) else values.append(value)
    return values if found else MISSING


def _flatten(items: list) -> list:
    out: list = []
    for item in items:
        out.extend(_flatten(item)) if isinstance(item, list) else out.append(item)
    return out


def too_deep(doc: dict) -> str | None:
    """Why a document is refused for its depth (see MAX_DEPTH), or None; iterative, so any depth is safe."""
    stack: list[tuple[dict | list, int, int]] = [(doc, 1, 0)]
    while stack:
        node, depth, parts = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    return f"a key that is not a string ({key!r:.40})"
                n = parts + key.count(".") + 1
                if n > MAX_DEPTH:
                    return f"a field name of more than {MAX_DEPTH} parts"
                if isinstance(value, (dict, list)) and value:
                    stack.append((value, depth + 1, n))
        else:
            for value in node:
                if isinstance(value, (dict, list)) and value:
                    stack.append((value, depth + 1, parts))
    return None


def leaf_names(node: dict, prefix: str, out: set[str]) -> None:
    """Add the dotted names of all leaves of a document (for ``fields=None``)."""
    for key, value in node.items():
        name = prefix + key
        if isinstance(value, dict):
            leaf_names(value, name + ".", out)
        elif isinstance(value, list) and any(isinstance(e, dict) for e in value):
            for item in value:
                if isinstance(item, dict):
                    leaf_names(item, name + ".", out)
            if not all(isinstance(e, dict) for e in value):
                out.add(name)
        else:
            out.add(name)


def node_names(node: dict, prefix: str, out: set[str]) -> None:
    """Add the dotted name of every key of a document, objects included, through arrays of objects: a field
    `lookup` finds in the document has its name among them."""
    for key, value in node.items():
        name = prefix + key
        out.add(name)
        if isinstance(value, dict):
            node_names(value, name + ".", out)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    node_names(item, name + ".", out)


# ----------------------------------------------------------------------------------------------
# Column types


class ColumnType(NamedTuple):
    base: str  # "bool" | "int" | "float" | "str"
    is_list: bool


STRING = ColumnType("str", False)
STRING_LIST = ColumnType("str", True)
DUCK_TYPE = {"bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE", "str": "VARCHAR"}
# DuckDB json_type() (as refined by `kind_sql`) -> kind. As an array element, ARRAY is a nested
# array; NULL and SQL NULL are null values, which have no kind.
JSON_KIND = {"VARCHAR": "str", "BIGINT": "int", "DOUBLE": "float", "BOOLEAN": "bool",
             "OBJECT": "obj", "ARRAY": "arr", "NULL": None, None: None}


def join_kinds(kinds: set[str], is_list: bool) -> ColumnType | None:
    """The column type for values of these kinds; None if there are none (no mapping in ES)."""
    if not kinds:
        return None
    if kinds == {"bool"} or kinds == {"int"}:
        base = next(iter(kinds))
    elif kinds <= {"int", "float"}:
        base = "float"
    else:
        base = "str"
    return ColumnType(base, is_list)


def merge_stats(into: Stats, stats: Stats) -> None:
    for name, (kinds, is_list) in stats.items():
        old_kinds, old_list = into.get(name, (set(), False))
        into[name] = (old_kinds | kinds, old_list or is_list)


def py_kinds(value, kinds: set[str]) -> bool:
    """Add the kinds of a value from `lookup` to `kinds`; True if it is an array."""
    for v in value if isinstance(value, list) else (value,):
        if v is None:
            continue
        if v is True or v is False:
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int" if -(1 << 63) <= v < (1 << 63) else "float")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            kinds.add("obj")
    return isinstance(value, list)


def guess(kinds: set[str], is_list: bool) -> ColumnType | None:
    """A type the DuckDB reader can convert to while checking that each value fits, or None.

    Sound because kinds seen in a sample of the input are a subset of the input's kinds: if every
    value fits the guess, the guess is the join over the whole input; if another file widens it,
    `cast_sql` gives what `convert_sql` would have. Float64 is never guessed, as widening it to
    String would need the JSON text: ``1`` would come out as "1.0".
    """
    t = join_kinds(kinds, is_list)
    if t is None or t.base == "float" or (is_list and t.base != "str"):
        return None
    return t


# ----------------------------------------------------------------------------------------------
# SQL over JSON text (DuckDB)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def kind_sql(x: str) -> str:
    """json_type(x), with UBIGINT split into BIGINT and (beyond Int64) DOUBLE."""
    return (f"CASE json_type({x}) WHEN 'UBIGINT' THEN CASE WHEN TRY_CAST({x} AS BIGINT) IS NULL "
            f"THEN 'DOUBLE' ELSE 'BIGINT' END ELSE json_type({x}) END")


def misfit_sql(x: str, t: ColumnType) -> str:
    """True where JSON text `x` holds a value `convert_sql(x, t)` would not convert exactly,
    for a type `guess` gives other than String (those are read as VARCHAR)."""
    if t.is_list:  # a list of String takes every scalar; only a nested array does not fit
        return (f"CASE WHEN starts_with({x}, '[') AND (contains({x}, '[[') OR contains({x}, ',[')) "
                f"THEN list_bool_or(list_transform(from_json({x}, '[\"JSON\"]'), "
                f"lambda e: starts_with(e, '['))) END")
    if t.base == "int":
        return (f"CASE json_type({x}) WHEN 'BIGINT' THEN false WHEN 'UBIGINT' "
                f"THEN TRY_CAST({x} AS BIGINT) IS NULL ELSE {x} IS NOT NULL END")
    return f"json_type({x}) <> 'BOOLEAN'"


def convert_sql(x: str, t: ColumnType) -> str:
    """JSON text -> a value of type `t` (a scalar in a list column becomes a one-element list).

    Only exact when every value's kind joins into `t`: DuckDB turns what it cannot convert into
    NULL, which is why the readers check (`misfit_sql`) or count (`kind_sql`) kinds first.
    """
    dt = DUCK_TYPE[t.base]
    scalar = f"from_json({x}, '\"{dt}\"')"
    if not t.is_list:
        return scalar
    return (f"CASE WHEN starts_with({x}, '[') THEN from_json({x}, '[\"{dt}\"]') "
            f"WHEN {x} IS NOT NULL THEN [{scalar}] END")


def cast_sql(x: str, have: ColumnType, want: ColumnType) -> str:
    """A typed value -> a wider type, rendered as `convert_sql` renders the JSON value."""
    dt = DUCK_TYPE[want.base]
    if have.is_list:
        return f"list_transform({x}, lambda e: CAST(e AS {dt}))"
    value = f"CAST({x} AS {dt})"
    return f"CASE WHEN {x} IS NOT NULL THEN [{value}] END" if want.is_list else value
