"""Sigma → our IR (then EQL or TOML), correct where pySigma's own EQL backend is wrong.

Correlations are rebuilt from pySigma's rule objects: `temporal_ordered` → `sequence by ... with
maxspan`, a chained `event_count` step → `with runs=N`, `event_count` alone → a sequence of one step
`with runs=N`, `temporal` → `sample by` (with a warning: a sample has no time window).

Base-rule detections go through pySigma's EQL backend with the few templates it gets wrong for
Elasticsearch corrected (`cased` values become `like`, not `==` over a wildcard pattern; regexes are
case-sensitive unless `|i`, and PCRE is translated to Lucene's syntax, or refused naming the
construct), with the field table and logsource condition of lang/sigma/linux.yml, and the result
read by our own EQL parser. When the Sigma loader (issue #10, lang/sigma) lands, its translator is
the better source for detections; this module's correlation mapping stays.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..lang import ir
from . import ConversionRefused
from .eql import string as eql_string

_MAX_RUNS = 100


@dataclass
class SigmaQuery:
    """One Sigma output rule as a query, with what a TOML rule needs from its metadata."""

    query: ir.Query | None  # None: no EQL form (`no_eql` says why), only a threshold rule
    title: str
    rule_id: str | None
    description: str | None
    level: str | None
    tags: list[str]
    references: list[str]
    author: str | None
    falsepositives: list[str]
    warnings: list[str] = field(default_factory=list)
    threshold: dict | None = None  # a count correlation as a threshold rule's [rule.threshold]
    base: ir.EventFilter | None = None  # the events it counts
    timespan: str | None = None
    no_eql: str | None = None
    date: str | None = None  # YYYY/MM/DD, as detection-rules' metadata writes dates
    modified: str | None = None


# ---- regexes: PCRE (Sigma) → Lucene (Elasticsearch) ------------------------------------------

_CLASS_ESC = {"d": "0-9", "w": "A-Za-z0-9_", "s": " \t\n\r\f\v"}
_OUTSIDE_ESC = {"d": "[0-9]", "w": "[A-Za-z0-9_]", "s": "[ \t\n\r\f\v]", "D": "[^0-9]", "W": "[^A-Za-z0-9_]",
                "S": "[^ \t\n\r\f\v]", "t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}
_LUCENE_LITERAL = set('@#&<>~"')  # operators in Lucene, plain characters in PCRE


def pcre_to_lucene(rx: str, ignorecase: bool = False, multiline: bool = False) -> tuple[str, bool]:
    """(Lucene regex, case-insensitive) meaning what the Sigma regex means: Sigma regexes search
    (unanchored unless ^/$), Lucene's match the whole value. Raises ConversionRefused naming a
    construct Lucene lacks."""
    if multiline:
        raise ConversionRefused(f"the regex {rx!r} uses the multiline flag, which Lucene regexes lack")
    m = re.match(r"\(\?([imsx]+)\)", rx)
    if m:
        if "i" in m.group(1):
            ignorecase = True
        if "m" in m.group(1) or "x" in m.group(1):
            raise ConversionRefused(f"the regex {rx!r} uses an inline flag Lucene regexes lack")
        rx = rx[m.end():]
    whole = re.fullmatch(r"\^\(\?:(.*)\)\$", rx, re.S)
    if whole:  # the anchored form Trailhound writes
        return _translate(whole.group(1), rx), ignorecase
    out = []
    for branch in _branches(rx):  # `^a|b$`: each alternative has its own anchors
        start, end = branch.startswith("^"), bool(re.search(r"(?<!\\)(?:\\\\)*\$\Z", branch))
        body = _translate(branch[1 if start else 0: len(branch) - (1 if end else 0)], rx)
        out.append(("" if start else ".*") + body + ("" if end else ".*"))
    return "|".join(out), ignorecase


def _branches(rx: str) -> list[str]:
    """The top-level alternatives of a regex."""
    parts, depth, in_class, i, last = [], 0, False, 0, 0
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if rx[i + 1: i + 2] == "^":
                i += 1
            if rx[i + 1: i + 2] == "]":
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(rx[last:i])
            last = i + 1
        i += 1
    return parts + [rx[last:]]


def _translate(rx: str, whole: str) -> str:
    """PCRE text (no anchors at its ends) as Lucene regex text."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(rx):
        c = rx[i]
        if c == "\\" and i + 1 < len(rx):
            n = rx[i + 1]
            if in_class and n in _CLASS_ESC:
                out.append(_CLASS_ESC[n])
            elif in_class and n in "DWS":
                raise ConversionRefused(f"the regex {whole!r} uses \\{n} inside a character class, which Lucene lacks")
            elif not in_class and n in _OUTSIDE_ESC:
                out.append(_OUTSIDE_ESC[n])
            elif n.isalnum():
                raise ConversionRefused(f"the regex {whole!r} uses \\{n}, which Lucene regexes lack")
            else:
                out.append("\\" + n)
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append("\\" + c if c in _LUCENE_LITERAL else c)
        elif c == "[":
            in_class = True
            out.append(c)
            if rx[i + 1: i + 2] == "^":
                out.append("^")
                i += 1
            if rx[i + 1: i + 2] == "]":
                out.append("\\]")
                i += 1
        elif c == "(" and rx.startswith("(?:", i):
            out.append("(")
            i += 3
            continue
        elif c == "(" and rx.startswith("(?", i):
            raise ConversionRefused(f"the regex {whole!r} uses {rx[i:i + 3]!r}: Lucene regexes have no "
                                    "look-around or inline groups")
        elif c in "^$":
            raise ConversionRefused(f"the regex {whole!r} has an anchor inside it, which Lucene regexes lack")
        else:
            out.append("\\" + c if c in _LUCENE_LITERAL else c)
        i += 1
    return "".join(out)


# ---- base rules ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _linux() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(resources.files("trailhound.lang.sigma").joinpath("linux.yml").read_text())


def _entry(rule: Any) -> dict[str, Any]:
    ls = rule.logsource
    have = {k: getattr(ls, k) for k in ("product", "category", "service") if getattr(ls, k, None)}
    if have.get("product") != "linux":
        raise ConversionRefused(f"logsource {have or '{}'}: Trailhound maps Sigma's taxonomy for product: linux only")
    for e in _linux()["logsources"]:
        if all(have.get(k) == v for k, v in e["match"].items()):  # as the loader picks: keys not in match are free
            return e
    raise ConversionRefused(f"logsource {have}: not in lang/sigma/linux.yml")


@functools.lru_cache(maxsize=1)
def _backend_class() -> type:
    from sigma.backends.elasticsearch import EqlBackend

    class Eql(EqlBackend):
        """pySigma's EQL backend with what it gets wrong for Elasticsearch overridden."""

        # `cased` values: a case-sensitive wildcard match, not `==` over a pattern
        case_sensitive_match_expression = "{field} like {value}"

        def convert_condition_field_eq_val_re(self, cond: Any, state: Any) -> str:
            from sigma.types import SigmaRegularExpressionFlag as Flag

            value = cond.value
            regexp = value.regexp if isinstance(value.regexp, str) else value.regexp.to_plain()
            pattern, insensitive = pcre_to_lucene(regexp, Flag.IGNORECASE in value.flags,
                                                  Flag.MULTILINE in value.flags)
            return f"{self.escape_and_quote_field(cond.field)} regex{'~' if insensitive else ''} {eql_string(pattern)}"

        def convert_condition_field_eq_val_re_contains(self, cond: Any, state: Any) -> str:
            return self.convert_condition_field_eq_val_re(cond, state)

        def decide_convert_condition_as_in_expression(self, cond: Any, state: Any) -> bool:
            # its `f : (...)` list compares case-insensitively: never for `cased` values
            from sigma.types import SigmaCasedString, SigmaNumber

            # nor for numbers: it writes them as `like~ (4, 5)`, which takes strings
            if any(isinstance(getattr(a, "value", None), (SigmaCasedString, SigmaNumber)) for a in cond.args):
                return False
            return bool(super().decide_convert_condition_as_in_expression(cond, state))

    return Eql


def _check_values(rule: Any) -> None:
    from sigma.types import SigmaString

    for det in rule.detection.detections.values():
        stack = list(det.detection_items)
        while stack:
            item = stack.pop()
            if hasattr(item, "detection_items"):
                stack.extend(item.detection_items)
                continue
            if item.field is None:
                raise ConversionRefused("keyword (field-less) detections search the full text, which EQL cannot")
            for v in item.value:
                if isinstance(v, SigmaString) and any(isinstance(p, str) and ("*" in p or "?" in p) for p in v.s):
                    raise ConversionRefused(f"the value {str(v)!r} of {item.field} has a literal * or ?, which an "
                                            "EQL wildcard cannot express")


def base_filter(rule: Any) -> ir.EventFilter:
    """A Sigma rule's detection and logsource as one EQL event filter over ECS."""
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldMappingTransformation

    from ..lang.errors import QueryError
    from ..lang.parser import parse

    entry = _entry(rule)
    _check_values(rule)
    table = _linux()["fields"].get(entry.get("fields"), {})
    pipeline = ProcessingPipeline(name="trailhound linux.yml", priority=20, items=[
        ProcessingItem(identifier="linux_fields", transformation=FieldMappingTransformation(dict(table)))])
    try:
        text = _backend_class()(pipeline).convert(SigmaCollection([rule.__class__.from_dict(rule.to_dict())]))[0]
    except (SigmaError, NotImplementedError) as e:
        raise ConversionRefused(str(e).splitlines()[0]) from None
    try:
        q = parse(str(text))
        where = parse(f"any where {entry['where']}")
    except QueryError as e:
        raise ConversionRefused(f"the converted detection does not read as EQL: {e.message}") from None
    assert isinstance(q, ir.EventQuery) and isinstance(where, ir.EventQuery)
    terms = _and_terms(where.filter.condition) + _and_terms(_tidy(q.filter.condition))
    category = None
    for t in terms:
        if (isinstance(t, ir.Compare) and t.op == "==" and t.left == ir.Field("event.category")
                and isinstance(t.right, ir.Literal) and isinstance(t.right.value, str)):
            category = t.right.value
            terms.remove(t)
            break
    terms = [t for t in terms if t != ir.Literal(True)] or [ir.Literal(True)]
    return ir.EventFilter(category, terms[0] if len(terms) == 1 else ir.And(tuple(terms)))


def _and_terms(e: ir.Expr) -> list[ir.Expr]:
    return [t for x in e.terms for t in _and_terms(x)] if isinstance(e, ir.And) else [e]


def _tidy(e: ir.Expr) -> ir.Expr:
    """The backend's spellings in the usual EQL form: `like` without wildcards is `==`/`in`."""
    if isinstance(e, (ir.And, ir.Or)):
        return type(e)(tuple(_tidy(t) for t in e.terms))
    if isinstance(e, ir.Not):
        return ir.Not(_tidy(e.operand))
    if isinstance(e, ir.InSet) and e.case_insensitive and not any(
            isinstance(o, ir.Literal) and isinstance(o.value, str) for o in e.options):
        return ir.InSet(e.value, e.options)  # `:` on numbers is plain equality
    if (isinstance(e, ir.Match) and e.kind == "wildcard" and not e.case_insensitive
            and not any("*" in p or "?" in p for p in e.patterns)):
        if len(e.patterns) == 1:
            return ir.Compare("==", e.value, ir.Literal(e.patterns[0]))
        return ir.InSet(e.value, tuple(ir.Literal(p) for p in e.patterns))
    return e


# ---- correlations --------------------------------------------------------------------------


def _fields(names: list[str], rule: Any) -> tuple[ir.Field, ...]:
    table = _linux()["fields"].get(_entry(rule).get("fields"), {})
    return tuple(ir.Field(table.get(n, n)) for n in names)


def _step(ref: Any, corr: Any, timespan_ms: int) -> tuple[ir.Stage, list[str]]:
    """A correlation's referenced rule as a stage (an event_count of one rule: `with runs=N`)."""
    from sigma.correlations import SigmaCorrelationConditionOperator as Op
    from sigma.correlations import SigmaCorrelationRule, SigmaCorrelationType

    target: Any = ref.rule
    warnings: list[str] = []
    if isinstance(ref.rule, SigmaCorrelationRule):
        if target.type != SigmaCorrelationType.EVENT_COUNT or len(target.rules) != 1 or isinstance(
                target.rules[0].rule, SigmaCorrelationRule):
            raise ConversionRefused(f"the step {ref.reference!r} is a {target.type.name.lower()} correlation: only "
                                    "an event_count of one rule chains into an EQL sequence (as `with runs=N`)")
        if not hasattr(target.condition, "op") or target.condition.op not in (Op.GTE, Op.GT) or \
                target.condition.fieldref:
            raise ConversionRefused(f"the step {ref.reference!r} counts with {target.condition}: "
                                    "`with runs=N` means at least N")
        runs = target.condition.count + (1 if target.condition.op == Op.GT else 0)
        if runs > _MAX_RUNS:
            raise ConversionRefused(f"the step {ref.reference!r} needs {runs} events; EQL allows runs up to {_MAX_RUNS}")
        if (target.group_by or []) != (corr.group_by or []):
            raise ConversionRefused(f"the step {ref.reference!r} groups by {target.group_by}, the sequence by "
                                    f"{corr.group_by}: a repeated step joins on the sequence's keys")
        if target.timespan.seconds * 1000 < timespan_ms:
            warnings.append(f"the step {ref.reference!r} counts within {target.timespan.seconds}s; in EQL its "
                            "runs only have the sequence's maxspan")
        base = target.rules[0].rule
        return ir.Stage(base_filter(base), _keys(corr, ref.reference, base), runs=runs), warnings
    return ir.Stage(base_filter(target), _keys(corr, ref.reference, target)), warnings


def _keys(corr: Any, reference: str, rule: Any) -> tuple[ir.Field, ...]:
    names = []
    aliases = getattr(corr.aliases, "aliases", {}) or {}
    for g in corr.group_by or []:
        alias = aliases.get(g)
        if alias is not None:
            mapping = getattr(alias, "mapping", {}) or {}
            found = next((f for r, f in mapping.items() if getattr(r, "reference", r) == reference), None)
            if found is None:
                raise ConversionRefused(f"the alias {g!r} names no field for {reference!r}")
            names.append(found)
        else:
            names.append(g)
    return _fields(names, rule)


def correlation_query(corr: Any) -> tuple[ir.Query, list[str]]:
    from sigma.correlations import SigmaCorrelationConditionOperator as Op
    from sigma.correlations import SigmaCorrelationType as T

    span_ms = corr.timespan.seconds * 1000
    warnings: list[str] = []
    if corr.type == T.EVENT_COUNT:
        if len(corr.rules) != 1:
            raise ConversionRefused("an event_count over several rules has no EQL form")
        if corr.condition.op not in (Op.GTE, Op.GT):
            raise ConversionRefused(f"event_count with {corr.condition.op.name.lower()}: an EQL sequence finds at "
                                    "least N events")
        runs = corr.condition.count + (1 if corr.condition.op == Op.GT else 0)
        if not 2 <= runs <= _MAX_RUNS:
            if runs == 1:
                return ir.EventQuery(base_filter(corr.rules[0].rule)), warnings
            raise ConversionRefused(f"event_count of {runs}: EQL allows runs up to {_MAX_RUNS}")
        ref = corr.rules[0]
        stage = ir.Stage(base_filter(ref.rule), _keys(corr, ref.reference, ref.rule), runs=runs)
        return ir.SequenceQuery((stage,), span_ms), warnings
    if corr.type in (T.TEMPORAL_ORDERED, T.TEMPORAL):
        cond = corr.condition
        if not hasattr(cond, "op"):
            raise ConversionRefused(f"the extended condition {getattr(cond, 'expression', cond)!r} has no EQL form")
        if getattr(cond, "fieldref", None) or cond.op != Op.GTE or cond.count != len(corr.rules):
            raise ConversionRefused(f"a {corr.type.name.lower()} condition other than all of its rules "
                                    "has no EQL form")
        stages = []
        for ref in corr.rules:
            stage, more = _step(ref, corr, span_ms)
            stages.append(stage)
            warnings += more
        if corr.type == T.TEMPORAL:
            if any(s.runs != 1 for s in stages):
                raise ConversionRefused("a repeated step in a temporal correlation has no EQL sample form")
            if not stages[0].keys:
                raise ConversionRefused("a temporal correlation without group-by has no EQL form (samples need keys)")
            warnings.append(f"temporal became an EQL sample, which has no time window: the rule's {corr.timespan.spec} "
                            "is not enforced (give the rule a lookback of that length)")
            return ir.SampleQuery(tuple(stages)), warnings
        return ir.SequenceQuery(tuple(stages), span_ms), warnings
    raise ConversionRefused(f"{corr.type.name.lower()} correlations have no EQL form "
                            "(as a threshold rule: --to toml)")


def threshold_of(corr: Any) -> tuple[ir.EventFilter, dict]:
    """An event_count / value_count of one rule as a threshold rule: (its events, [rule.threshold])."""
    from sigma.correlations import SigmaCorrelationConditionOperator as Op
    from sigma.correlations import SigmaCorrelationRule
    from sigma.correlations import SigmaCorrelationType as T

    if corr.type not in (T.EVENT_COUNT, T.VALUE_COUNT) or len(corr.rules) != 1 or isinstance(
            corr.rules[0].rule, SigmaCorrelationRule):
        raise ConversionRefused(f"a {corr.type.name.lower()} correlation is not a threshold rule")
    cond = corr.condition
    if not hasattr(cond, "op") or cond.op not in (Op.GTE, Op.GT):
        raise ConversionRefused("a threshold rule alerts at N or more: the correlation's condition is not that")
    count = cond.count + (1 if cond.op == Op.GT else 0)
    ref = corr.rules[0]
    base = base_filter(ref.rule)
    spec: dict[str, Any] = {"field": [f.path for f in _keys(corr, ref.reference, ref.rule)]}
    if corr.type == T.EVENT_COUNT:
        spec["value"] = count
    else:
        (distinct,) = _fields([cond.fieldref], ref.rule)
        spec["value"] = 1
        spec["cardinality"] = [{"field": distinct.path, "value": count}]
    return base, spec


def _date(value: Any) -> str | None:
    return value.strftime("%Y/%m/%d") if hasattr(value, "strftime") else None


#: what pySigma raises on input it cannot handle, besides its own SigmaError
_DATA_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, NotImplementedError)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def sigma_queries(text: str) -> list[SigmaQuery | ConversionRefused]:
    """Every rule Sigma would alert on (correlations, and rules no correlation hides) as a query."""
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError

    try:
        coll = SigmaCollection.from_yaml(text)
        coll.resolve_rule_references()
        rules = list(coll.get_output_rules())
    except (SigmaError, *_DATA_ERRORS) as e:
        raise ConversionRefused(f"pySigma cannot read it: {_first_line(e)}") from None
    out: list[SigmaQuery | ConversionRefused] = []
    for r in rules:
        threshold: tuple[ir.EventFilter, dict] | None = None
        no_eql = None
        q: ir.Query | None
        try:
            if isinstance(r, SigmaCorrelationRule):
                try:
                    threshold = threshold_of(r)
                except ConversionRefused:
                    pass
                try:
                    q, warnings = correlation_query(r)
                except ConversionRefused as e:
                    if threshold is None:
                        raise
                    q, warnings, no_eql = None, [], e.reason
            else:
                q, warnings = ir.EventQuery(base_filter(r)), []
        except ConversionRefused as e:
            out.append(ConversionRefused(f"{r.title}: {e.reason}"))
            continue
        except (SigmaError, *_DATA_ERRORS) as e:  # pySigma on a rule it parsed but cannot convert
            out.append(ConversionRefused(f"{r.title}: pySigma cannot convert it: {_first_line(e)}"))
            continue
        out.append(SigmaQuery(q, r.title, str(r.id) if r.id else None, r.description,
                              r.level.name.lower() if r.level else None, [str(t) for t in r.tags],
                              list(r.references), r.author, list(r.falsepositives), warnings,
                              threshold[1] if threshold else None, threshold[0] if threshold else None,
                              r.timespan.spec if isinstance(r, SigmaCorrelationRule) else None, no_eql,
                              _date(r.date), _date(r.modified or r.date)))
    return out

