"""Lucene's wildcard query as IR, apart from the KQL parser (which imports lark): exception list
entries of type `wildcard` build it too, and a hunt whose rules come from the rule cache needs no
parser."""

from __future__ import annotations

from . import ir

_LUCENE_SPECIAL = set('.?+*|{}[]()"\\#@&<>~')


def wildcard_query(field: ir.Field, pieces: list[tuple[str, str]]) -> ir.Expr:
    """Lucene's wildcard query. `pieces` are (text, wild): wild is "*", "?" or "" for literal text."""
    if not any(w for _, w in pieces):
        return ir.Compare("==", field, ir.Literal("".join(t for t, _ in pieces)))
    if all(w == "*" for _, w in pieces):
        return ir.Not(ir.IsNull(field))  # `f:*`: the field exists
    if any(not w and ("*" in t or "?" in t) for t, w in pieces):
        # EQL wildcards cannot hold a literal `*` or `?`: say it as an anchored Lucene regex instead
        regex = "".join(".*" if w == "*" else "." if w == "?" else lucene_quote(t) for t, w in pieces)
        return ir.Match(field, "regex", (regex,), False)
    return ir.Match(field, "wildcard", ("".join(w or t for t, w in pieces),), False)


def lucene_quote(text: str) -> str:
    """`text` as literal characters of a Lucene regex."""
    return "".join("\\" + ch if ch in _LUCENE_SPECIAL else ch for ch in text)
