"""EQL text → IR, with Elasticsearch's acceptance rules and author-friendly errors."""

from __future__ import annotations

import functools

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedInput

from . import grammars, ir
from .eql_expressions import ExpressionRules
from .eql_syntax import syntax_error
from .errors import EqlSemanticError, EqlSyntaxError, QueryError, transform
from .limits import INT64_MAX, MAX_DEPTH, check_text, check_tree_depth, expr_depth, too_deep

TIME_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_RUNS = 100
SUPPORTED_PIPES = ("head", "tail")
UNSUPPORTED_PIPES = ("count", "filter", "sort", "unique", "unique_count")


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return grammars.lalr("eql")


def parse(text: str) -> ir.Query:
    """Parse one EQL query. Raises EqlSyntaxError / EqlSemanticError."""
    check_text(text, EqlSyntaxError)
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as e:
        raise syntax_error(text, e) from None
    check_tree_depth(tree, text, EqlSemanticError)
    query = transform(_ToIR(text), tree)
    check_query_depth(query, text, EqlSemanticError)
    return query


def check_query_depth(query: ir.Query, text: str, error: type[QueryError]) -> None:
    """The last guard: no expression of the query nests deeper than the compilers may recurse."""
    exprs = [f.condition for f in ir.query_filters(query)]
    if not isinstance(query, ir.EventQuery):
        exprs += [k for s in query.stages for k in s.keys]
    memo: dict = {}
    depth = max((expr_depth(e, memo) for e in exprs), default=0)
    if depth > MAX_DEPTH:
        raise too_deep(depth, text, 1, 1, error)


@v_args(meta=True)
class _ToIR(ExpressionRules):
    """The parse tree → IR: the query rules (queries, sequences, samples, pipes) over the expression rules."""

    # -- queries
    def query(self, meta, items):
        base, *pipes = items
        if isinstance(base, ir.SampleQuery) and pipes:
            raise self._err(meta, "samples do not accept pipes")
        return type(base)(**{**base.__dict__, "pipes": tuple(pipes)})

    def event_query(self, meta, items):
        return ir.EventQuery(items[0])

    def event_filter(self, meta, items):
        category, cond = items
        return ir.EventFilter(category, cond)

    def any_category(self, meta, items):
        return None

    def name_category(self, meta, items):
        return str(items[0])

    def string_category(self, meta, items):
        return items[0].value

    def sequence_by_after_with(self, meta, items):
        raise self._err(meta, "sequence keys must come before `with`", "write: sequence by <keys> with maxspan=<time>")

    def sequence(self, meta, items):
        items = [i for i in items if not (isinstance(i, Token) and i.type == "SEQUENCE")]
        keys: tuple[ir.Field, ...] = ()
        maxspan = None
        stages: list[ir.Stage] = []
        until = None
        for it in items:
            if isinstance(it, _JoinBy):
                keys = it.keys
            elif isinstance(it, _MaxSpan):
                maxspan = it.ms
            elif isinstance(it, _Until):
                until = it.stage
            elif isinstance(it, ir.Stage):
                stages.append(it)
        stages = [ir.Stage(s.filter, keys + s.keys, s.missing, s.runs) for s in stages]
        if until is not None:
            if until.missing:
                raise self._err(meta, "an until stage cannot be a missing event")
            until = ir.Stage(until.filter, keys + until.keys, False, 1)
        total = sum(s.runs for s in stages)
        if total < 2:
            raise self._err(meta, "a sequence needs at least two stages", "use an event query for a single filter")
        if all(s.missing for s in stages):
            raise self._err(meta, "a sequence needs at least one stage that is not a missing event")
        if any(s.missing for s in stages) and maxspan is None:
            raise self._err(meta, "a sequence with missing events (![...]) needs `with maxspan=...`")
        self._check_key_counts(meta, stages + ([until] if until else []))
        return ir.SequenceQuery(tuple(stages), maxspan, until)

    def sample(self, meta, items):
        keys: tuple[ir.Field, ...] = ()
        stages: list[ir.Stage] = []
        for it in items:
            if isinstance(it, _JoinBy):
                keys = it.keys
            elif isinstance(it, ir.Stage):
                if it.missing:
                    raise self._err(meta, "samples do not support missing events (![...])")
                if it.runs != 1:
                    raise self._err(meta, "samples do not support `with runs`")
                stages.append(ir.Stage(it.filter, keys + it.keys))
        self._check_key_counts(meta, stages)
        if not stages[0].keys:
            raise self._err(meta, "a sample needs join keys", "write: sample by <field> [...] [...]")
        return ir.SampleQuery(tuple(stages))

    def _check_key_counts(self, meta, stages: list[ir.Stage]) -> None:
        counts = {len(s.keys) for s in stages}
        if len(counts) > 1:
            raise self._err(
                meta,
                "every stage must have the same number of join keys "
                f"(found {', '.join(str(len(s.keys)) for s in stages)})",
                "keys match by position across stages",
            )

    def seq_params(self, meta, items):
        _, name, ms = items
        if str(name) != "maxspan":
            raise self._tok_err(name, f"unknown sequence parameter {str(name)!r}", "the only one is maxspan, e.g. with maxspan=5m")
        if ms <= 0:
            raise self._err(meta, "maxspan must be positive")
        return _MaxSpan(ms)

    def time_value(self, meta, items):
        num, unit = items
        value = self._number(num)
        if unit is None:
            raise self._tok_err(num, "maxspan needs a time unit", f"write {num}s (units: ms, s, m, h, d)")
        u = str(unit)
        if u not in TIME_UNITS_MS:
            raise self._tok_err(unit, f"unknown time unit {u!r}", "units are ms, s, m, h, d")
        if not isinstance(value, int) and str(num).isdigit():
            raise self._tok_err(num, "maxspan is too long", "the longest is about 292 years")
        if not isinstance(value, int):
            raise self._tok_err(num, "maxspan must be a whole number", "use a smaller unit, e.g. 1500ms")
        if value * TIME_UNITS_MS[u] > INT64_MAX // 1_000_000:
            raise self._tok_err(num, "maxspan is too long", "the longest is about 292 years")
        return value * TIME_UNITS_MS[u]

    def until(self, meta, items):
        return _Until(items[1])

    def stage(self, meta, items):
        (missing, filt), join, runs = items
        keys = join.keys if join is not None else ()
        return ir.Stage(filt, keys, missing, runs if runs is not None else 1)

    def present_stage(self, meta, items):
        return (False, items[0])

    def missing_stage(self, meta, items):
        return (True, items[0])

    def runs(self, meta, items):
        _, name, num = items
        if str(name) != "runs":
            raise self._tok_err(name, f"unknown stage parameter {str(name)!r}", "the only one is runs, e.g. with runs=3")
        n = self._number(num)
        if not isinstance(n, int) or not 1 <= n <= MAX_RUNS:
            raise self._tok_err(num, f"runs must be a whole number from 1 to {MAX_RUNS}")
        return n

    def join_by(self, meta, items):
        return _JoinBy(tuple(k for k in items if not isinstance(k, Token)))

    def join_key(self, meta, items):
        key = items[0]
        if not isinstance(key, ir.Field):
            raise self._err(meta, "join keys must be fields", "compute keys in the data; `by f * 2` is not supported")
        return key

    def pipe(self, meta, items):
        name, *args = items
        kind = str(name)
        args = [a for a in args if a is not None]
        if kind not in SUPPORTED_PIPES:
            why = "not supported by Elasticsearch EQL" if kind in UNSUPPORTED_PIPES else "unknown"
            raise self._tok_err(name, f"pipe {kind!r} is {why}", "supported pipes: head N, tail N")
        if len(args) > 1:
            raise self._err(meta, f"{kind} takes one number")
        count = 10
        if args:
            a = args[0]
            if not (isinstance(a, ir.Literal) and isinstance(a.value, int) and not isinstance(a.value, bool)) or a.value < 0:
                raise self._err(meta, f"{kind} takes a non-negative whole number")
            count = a.value
        return ir.Pipe("head" if kind == "head" else "tail", count)


class _JoinBy:
    def __init__(self, keys: tuple[ir.Field, ...]) -> None:
        self.keys = keys


class _MaxSpan:
    def __init__(self, ms: int) -> None:
        self.ms = ms


class _Until:
    def __init__(self, stage: ir.Stage) -> None:
        self.stage = stage
