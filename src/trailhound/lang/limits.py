"""Bounds on what one query may cost, checked while it is parsed.

A detection tool runs queries from shared rule repositories, so a query is input like any
other: nesting, numbers, strings and patterns are bounded here, each with an error that says
where and why, before Python's recursion limit, Polars or the regex engine would decide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the compilers import this module's bounds; lark is for the parsers only
    from lark import Tree

from . import ir

#: Nesting depth of a query (nested `not`, calls, arithmetic, sub-queries). Elastic's rules
#: nest at most 16 levels (parse tree) and 9 (expression); the compilers and the engine
#: recurse over the expression, a few Python frames per level, far below Python's limit.
MAX_DEPTH = 100
#: Elasticsearch's `index.max_regex_length` default: longer regex queries are refused.
MAX_REGEX_LENGTH = 1000
#: A wildcard pattern longer than this is refused (ES rules use at most a few hundred characters);
#: each one becomes a regex whose size and run time grow with its length.
MAX_WILDCARD_LENGTH = 10_000
#: Java's long: the range of EQL's integers.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def depth_hint() -> str:
    return "split the condition, or write a long chain of alternatives as `field in (...)`"


def tree_depth(tree: Tree, limit: int = MAX_DEPTH) -> tuple[int, Any]:
    """The nesting depth of a Lark parse tree, without recursion, and the meta of the node where
    it first goes beyond `limit` (of the root when it does not)."""
    from lark import Tree

    best, where = 0, tree.meta
    stack = [(tree, 1)]
    while stack:
        node, d = stack.pop()
        if d > best:
            best = d
            if d == limit + 1:
                where = node.meta
        stack.extend((c, d + 1) for c in node.children if isinstance(c, Tree))
    return best, where


def too_deep(depth: int, text: str, line: int | None, column: int | None,
             error: Callable[..., Exception]) -> Exception:
    """The error for a query nesting `depth` levels, beyond MAX_DEPTH, at (line, column)."""
    return error(f"the query nests {depth} levels deep; the limit is {MAX_DEPTH}", text, line, column, None,
                 depth_hint())


def check_tree_depth(tree: Tree, text: str, error: Callable[..., Exception]) -> None:
    """Refuse a parse tree nesting beyond MAX_DEPTH, naming where it first does (EQL and KQL alike)."""
    depth, meta = tree_depth(tree)
    if depth > MAX_DEPTH:
        raise too_deep(depth, text, getattr(meta, "line", None), getattr(meta, "column", None), error)


def expr_depth(e: ir.Expr, memo: dict[int, tuple[ir.Expr, int]] | None = None) -> int:
    """The nesting depth of an expression, without recursion. `memo` (by id, keeping the node
    alive so that its id is not reused) makes repeated calls on growing trees linear."""
    memo = {} if memo is None else memo
    stack: list[tuple[ir.Expr, bool]] = [(e, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in memo:
            continue
        kids = ir.children(node)
        if expanded or not kids:
            memo[id(node)] = (node, 1 + max((memo[id(c)][1] for c in kids), default=0))
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in kids if id(c) not in memo)
    return memo[id(e)][1]


def first_surrogate(text: str) -> int | None:
    """The index of the first lone surrogate: bytes that were not UTF-8 (from the command line,
    decoded with surrogateescape) or an unpaired UTF-16 half. No engine can store them."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as e:
        return e.start


def line_column(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def check_text(text: str, error: Callable[..., Exception]) -> None:
    """Refuse text that is not valid Unicode, naming the spot."""
    i = first_surrogate(text)
    if i is not None:
        line, col = line_column(text, i)
        ch = text[i]
        what = (f"byte 0x{ord(ch) - 0xDC00:02x} is not valid UTF-8" if 0xDC80 <= ord(ch) <= 0xDCFF
                else f"U+{ord(ch):04X} is a lone surrogate, not a character")
        raise error(f"the query is not valid text: {what}", text, line, col, col + 1,
                    "save the query as UTF-8 (or write the character as \\u{...})")
