"""Errors a rule author can act on: what, where (line, column, caret) and a hint."""

from __future__ import annotations

import difflib


class QueryError(ValueError):
    """A query that cannot run. `line`/`column` are 1-based; `end_column` is exclusive."""

    def __init__(
        self,
        message: str,
        text: str = "",
        line: int | None = None,
        column: int | None = None,
        end_column: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.text = text
        self.line = line
        self.column = column
        self.end_column = end_column
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        return _printable(self._render())

    def _render(self) -> str:
        if self.line is None or self.column is None:
            head = self.message
        else:
            head = f"line {self.line}, column {self.column}: {self.message}"
        parts = [head]
        lines = self.text.splitlines()
        if self.line is not None and self.column is not None and 0 < self.line <= len(lines):
            src = lines[self.line - 1]
            width = max(1, (self.end_column or self.column + 1) - self.column)
            width = min(width, max(1, len(src) - self.column + 1))
            col = self.column - 1
            if len(src) > _SHOWN:  # a window of a long line around the spot, not the whole line
                start = max(0, min(col - _SHOWN // 3, len(src) - _SHOWN))
                shown = src[start:start + _SHOWN]
                lead, tail = ("…" if start else ""), ("…" if start + _SHOWN < len(src) else "")
                src, col = lead + shown + tail, col - start + len(lead)
                width = min(width, len(shown) - (col - len(lead)))
            parts.append("  " + src)
            parts.append("  " + " " * col + "^" * max(1, width))
        if self.hint:
            parts.append("hint: " + self.hint)
        return "\n".join(parts)


#: how much of a long query line an error shows around its spot
_SHOWN = 120


def _printable(text: str) -> str:
    """Lone surrogates (bytes that were not UTF-8) cannot be printed: show them as `?`."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


class EqlSyntaxError(QueryError):
    """The text is not valid EQL."""


class EqlSemanticError(QueryError):
    """Valid EQL syntax that Elasticsearch would reject (or that cannot run)."""


def nearest(word: str, candidates: list[str]) -> str | None:
    lowered = {c.lower(): c for c in candidates}
    hit = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[hit[0]] if hit else None


def transform(transformer, tree):
    """Run a Lark transformer, surfacing our own errors instead of Lark's VisitError wrapper."""
    from lark.exceptions import VisitError

    try:
        return transformer.transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, QueryError):
            raise e.orig_exc from None
        raise
