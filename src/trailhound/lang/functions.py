"""The EQL function catalogue: canonical names, arity and `~` support (ES's set)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    name: str
    min_args: int
    max_args: int | None  # None: variadic
    insensitive_variant: bool = False  # has a `name~` form
    predicate: bool = False  # returns a boolean (any-element semantics apply)
    #: per-argument kinds ("string", "numeric", "boolean", "any"); the last repeats
    args: tuple[str, ...] = ("any",)

    def arg_kind(self, i: int) -> str:
        return self.args[min(i, len(self.args) - 1)]


FUNCTIONS: dict[str, Signature] = {
    s.name.lower(): s
    for s in (
        Signature("add", 2, 2, args=("numeric",)),
        Signature("between", 3, 4, insensitive_variant=True, args=("string", "string", "string", "boolean")),
        Signature("cidrMatch", 2, None, predicate=True, args=("string",)),
        Signature("concat", 1, None),
        Signature("divide", 2, 2, args=("numeric",)),
        Signature("endsWith", 2, 2, insensitive_variant=True, predicate=True, args=("string",)),
        Signature("indexOf", 2, 3, insensitive_variant=True, args=("string", "string", "numeric")),
        Signature("length", 1, 1, args=("string",)),
        Signature("modulo", 2, 2, args=("numeric",)),
        Signature("multiply", 2, 2, args=("numeric",)),
        Signature("number", 1, 2, args=("string", "numeric")),
        Signature("startsWith", 2, 2, insensitive_variant=True, predicate=True, args=("string",)),
        Signature("string", 1, 1),
        Signature("stringContains", 2, 2, insensitive_variant=True, predicate=True, args=("string",)),
        Signature("substring", 2, 3, args=("string", "numeric")),
        Signature("subtract", 2, 2, args=("numeric",)),
    )
}

#: eql-library functions that Elasticsearch does not support: named in errors.
UNSUPPORTED = {
    "arraycontains": "arrayContains",
    "arraysearch": "arraySearch",
    "arraycount": "arrayCount",
    "match": "match",
    "matchlite": "matchLite",
    "safe": "safe",
    "wildcard": "wildcard",
    "descendant": "descendant of",
    "child": "child of",
}


def canonical_names() -> list[str]:
    return [s.name for s in FUNCTIONS.values()]


_KIND_OF = {str: "string", bool: "boolean", int: "numeric", float: "numeric"}


def literal_kind(value: object) -> str | None:
    """The argument kind of a literal value (None for null, which every argument accepts)."""
    return None if value is None else _KIND_OF[type(value)]
