"""The LALR parsers of our grammars (eql.lark, kql.lark), built once at release time, not per process.

Building a Lark LALR parser from a grammar computes its tables (0.15-0.25 s for EQL), and a rule
author pays that on every `trailhound query` or `test`. `tools/gen_parser_tables.py` computes them
once and writes them as a plain Python literal (`_tables.py`, shipped in the package, so no pickle
and nothing read from a cache folder); `lalr()` loads them in milliseconds. The tables carry the
digest of the grammar, the options and Lark's version they were built from: when any differs (a
grammar being edited, another Lark installed), the parser is built from the grammar as before, and `tests/unit/test_parser_tables.py`
fails until the tables are regenerated.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from lark import Lark

#: the options of each grammar's parser
OPTIONS: dict[str, dict[str, Any]] = {
    "eql": {"parser": "lalr", "lexer": "contextual", "propagate_positions": True, "maybe_placeholders": True},
    "kql": {"parser": "lalr", "lexer": "contextual", "propagate_positions": True},
}


def grammar_text(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lark").read_text()


def fingerprint(name: str) -> str:
    """What the tables of `name` must have been built from: the grammar text, the parser options and
    Lark's version (its serialized form is its own, so tables from another version are not used)."""
    import lark

    text = grammar_text(name) + "\n" + repr(sorted(OPTIONS[name].items())) + "\n" + lark.__version__
    return hashlib.sha256(text.encode()).hexdigest()


def build(name: str) -> Lark:
    """A parser built from the grammar (slow: computes the LALR tables)."""
    return Lark(grammar_text(name), **OPTIONS[name])


def lalr(name: str) -> Lark:
    """The parser of grammar `name` ("eql" or "kql"), from the shipped tables when they are current."""
    from ._tables import FINGERPRINTS, TABLES

    if FINGERPRINTS.get(name) == fingerprint(name):
        return Lark.load(TABLES[name])  # a dict, not a file: lark deserializes it, no pickle involved
    return build(name)


def tables(name: str) -> dict:
    """The serialized tables of a freshly built parser (for the generator and its test)."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = build(name).memo_serialize([TerminalDef, Rule])
    return {"data": data, "memo": memo}
