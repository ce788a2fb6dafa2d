"""A Sigma `|re` value (Python/PCRE syntax, unanchored: it matches anywhere in the value) → the Lucene
regex (anchored to the whole value) that the IR's `Match(kind="regex")` carries, so both backends run
it as they run EQL's `regex`. Python's own regex parser reads the pattern; its tree is written back in
Lucene syntax. What Lucene cannot say (look-around, back-references, word boundaries, inline flags
mid-pattern) is refused with the construct named."""

from __future__ import annotations

import re
from re import _constants as C  # Python's own regex parser (3.11+), so we read patterns exactly as `re` does
from re import _parser as P

from .errors import SigmaRuleError, SigmaUnsupported

_CATEGORY = {
    C.CATEGORY_DIGIT: ("0-9", False), C.CATEGORY_NOT_DIGIT: ("0-9", True),
    C.CATEGORY_WORD: ("A-Za-z0-9_", False), C.CATEGORY_NOT_WORD: ("A-Za-z0-9_", True),
    C.CATEGORY_SPACE: (" \t\n\r\f\v", False), C.CATEGORY_NOT_SPACE: (" \t\n\r\f\v", True),
}


def to_lucene(pattern: str, ignorecase: bool = False, multiline: bool = False,
              dotall: bool = False) -> tuple[tuple[str, ...], bool]:
    """(Lucene regexes, case-insensitive): a value matches `pattern` somewhere exactly when it
    matches one of the regexes whole. A leading or trailing group of alternatives with an anchor in
    them (`(^|/)x`) is split into one regex per alternative."""
    try:
        tree = P.parse(pattern, 0)
    except re.error as e:
        raise SigmaRuleError(f"regex {pattern!r} is invalid: {e}") from None
    except RecursionError:
        raise SigmaRuleError(f"regex {pattern!r} nests too deeply") from None
    flags = tree.state.flags
    ignorecase = ignorecase or bool(flags & re.IGNORECASE)
    multiline = multiline or bool(flags & re.MULTILINE)
    dotall = dotall or bool(flags & re.DOTALL)
    writer = _Writer(pattern, dotall)
    out = tuple(dict.fromkeys(_whole(writer, items, multiline) for items in _split(list(tree))))
    return out, ignorecase


def _alternatives(item) -> list[list] | None:
    """The alternatives of a plain group of alternatives (or of a bare alternation), else None."""
    op, av = item
    if op == C.SUBPATTERN and not av[1] and not av[2] and len(av[3]) == 1:
        op, av = list(av[3])[0]
    if op == C.BRANCH:
        return [list(b) for b in av[1]]
    return None


def _has_anchor(items: list) -> bool:
    return any(op == C.AT for op, _ in items)


def _split(items: list) -> list[list]:
    """`items`, or one sequence per alternative of an anchored group at its start or end."""
    if len(items) > 0:
        alts = _alternatives(items[0])
        if alts and any(_has_anchor(a[:1]) for a in alts):
            return [a + items[1:] for a in alts]
        alts = _alternatives(items[-1])
        if alts and any(_has_anchor(a[-1:]) for a in alts):
            return [items[:-1] + a for a in alts]
    return [items]


def _whole(writer: _Writer, items: list, multiline: bool) -> str:
    head, tail = "@", "@"  # unanchored: anything before and after
    if items and items[0][0] == C.AT and items[0][1] in (C.AT_BEGINNING, C.AT_BEGINNING_STRING):
        # ^ under (?m) also matches after any newline
        head = "(@\n)?" if multiline and items[0][1] == C.AT_BEGINNING else ""
        items = items[1:]
    if items and items[-1][0] == C.AT and items[-1][1] in (C.AT_END, C.AT_END_STRING):
        # Python's $ also matches before a final newline; under (?m), before any newline
        tail = "" if items[-1][1] == C.AT_END_STRING else "(\n@)?" if multiline else "(\n)?"
        items = items[:-1]
    return head + "(" + writer.seq(items) + ")" + tail


class _Writer:
    def __init__(self, pattern: str, dotall: bool) -> None:
        self.pattern, self.dotall = pattern, dotall

    def refuse(self, what: str) -> SigmaUnsupported:
        return SigmaUnsupported(f"regex {self.pattern!r} uses {what}, which the engine's regex (Lucene's) "
                                "cannot express")

    def seq(self, items) -> str:
        return "".join(self.item(op, av) for op, av in items)

    def item(self, op, av) -> str:
        if op == C.LITERAL:
            return _literal(av)
        if op == C.NOT_LITERAL:
            return "[^" + _class_char(av) + "]"
        if op == C.ANY:
            return "." if self.dotall else "[^\n]"
        if op == C.IN:
            return self.klass(av)
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            inner = "(" + self.seq(sub) + ")"
            if hi == C.MAXREPEAT:
                return inner + ("*" if lo == 0 else "+" if lo == 1 else "{%d,}" % lo)
            if lo == 0 and hi == 1:
                return inner + "?"
            return inner + ("{%d}" % lo if lo == hi else "{%d,%d}" % (lo, hi))
        if op == C.SUBPATTERN:
            _group, add, remove, sub = av
            if add or remove:
                raise self.refuse("inline flags inside the pattern")
            return "(" + self.seq(sub) + ")"
        if op == getattr(C, "ATOMIC_GROUP", None):
            return "(" + self.seq(av) + ")"
        if op == C.BRANCH:
            return "(" + "|".join(self.seq(b) for b in av[1]) + ")"
        if op in (C.ASSERT, C.ASSERT_NOT):
            raise self.refuse("look-around")
        if op in (C.GROUPREF, C.GROUPREF_EXISTS):
            raise self.refuse("a back-reference")
        if op == C.AT:
            raise self.refuse("an anchor or word boundary inside the pattern")
        raise self.refuse(f"the construct {op}")

    def klass(self, items) -> str:
        negate = bool(items) and items[0][0] == C.NEGATE
        parts: list[str] = []
        for op, av in items[1:] if negate else items:
            if op == C.LITERAL:
                parts.append(_class_char(av))
            elif op == C.RANGE:
                parts.append(_class_char(av[0]) + "-" + _class_char(av[1]))
            elif op == C.CATEGORY:
                chars, negated = _CATEGORY.get(av, (None, False))
                if chars is None:
                    raise self.refuse(f"the class {av}")
                if negated:
                    if len(items) > 1 or negate:
                        raise self.refuse("a negated class escape (\\D, \\W, \\S) inside brackets")
                    return "[^" + chars + "]"
                parts.append(chars)
            else:
                raise self.refuse(f"the class item {op}")
        return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _literal(code: int) -> str:
    ch = chr(code)
    return ch if ch.isalnum() and ch.isascii() else "\\" + ch


def _class_char(code: int) -> str:
    ch = chr(code)
    return ch if ch.isalnum() and ch.isascii() else "\\" + ch
