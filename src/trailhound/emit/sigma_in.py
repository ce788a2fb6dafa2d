"""Sigma → our IR (then EQL or TOML), correct where pySigma's own EQL backend is wrong.

One translation of detections: a base rule's detection and logsource become IR through the Sigma loader's
own translator (lang/sigma/translate.py, with linux.yml's logsource conditions and field tables), which the
EQL printer writes as EQL; so a Sigma rule converted to EQL finds the events the native Sigma run finds
(tests/unit/test_convert_sigma_agreement.py). Rules over raw audit records (`service: auditd`) are refused:
EQL rules read ECS events.

Correlations are rebuilt from pySigma's rule objects: `temporal_ordered` → `sequence by ... with
maxspan`, a chained `event_count` step → `with runs=N`, `event_count` alone → a sequence of one step
`with runs=N`, `temporal` → `sample by` (with a warning: a sample has no time window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..lang import ir
from . import ConversionRefused

_MAX_RUNS = 100
#: the values of `|expand` placeholders: name (without the %) → its values (rules.sigma.read_placeholders)
Placeholders = Mapping[str, Sequence[str]]


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


# ---- detections: the Sigma loader's translation ------------------------------------------


def _entry(rule: Any) -> dict[str, str]:
    """The field table (Sigma name → ECS) of the linux.yml logsource the Sigma loader picks for the rule."""
    from ..lang.sigma.mapping import linux

    ls = rule.logsource
    have = {k: getattr(ls, k) for k in ("product", "category", "service") if getattr(ls, k, None)}
    if have.get("product") != "linux":
        raise ConversionRefused(f"logsource {have or '{}'}: Trailhound maps Sigma's taxonomy for product: linux only")
    entry = linux().select(have)
    if entry is None:
        raise ConversionRefused(f"logsource {have}: not in lang/sigma/linux.yml")
    return entry.fields


def base_filter(rule: Any, placeholders: Placeholders | None = None) -> ir.EventFilter:
    """A Sigma rule's detection and logsource as one EQL event filter over ECS: the Sigma loader's own
    translation (lang/sigma/translate.py: linux.yml's logsource condition and field table, Sigma's
    matching semantics), so Sigma → EQL finds what the native Sigma run finds. Refused, with the reason:
    what the loader cannot run, rules over raw audit records (EQL rules read ECS events), and IR the EQL
    printer has no text for. `placeholders`: the values of `|expand` placeholders (as `hunt
    --sigma-placeholders` gives them); a placeholder without values is refused, named."""
    from ..lang.errors import QueryError
    from ..lang.parser import parse
    from ..lang.sigma.errors import SigmaRuleError, SigmaUnsupported
    from ..lang.sigma.translate import translate
    from ..rules.check import ecs
    from .eql import print_query

    _entry(rule)
    try:
        done = translate(rule, {k: list(v) for k, v in (placeholders or {}).items()}, ecs_types=ecs().types)
    except (SigmaUnsupported, SigmaRuleError) as e:
        raise ConversionRefused(str(e).splitlines()[0]) from None
    if done.events != "ecs":
        raise ConversionRefused(f"logsource {{{done.logsource}}} matches raw audit records one at a time (their "
                                "own key=value fields), which EQL rules over ECS events do not see")
    terms = _and_terms(done.query.filter.condition)
    category = None
    for t in terms:
        if (isinstance(t, ir.Compare) and t.op == "==" and t.left == ir.Field("event.category")
                and isinstance(t.right, ir.Literal) and isinstance(t.right.value, str)):
            category = t.right.value
            terms.remove(t)
            break
    terms = [t for t in terms if t != ir.Literal(True)] or [ir.Literal(True)]
    out = ir.EventFilter(category, terms[0] if len(terms) == 1 else ir.And(tuple(terms)))
    try:
        parse(print_query(ir.EventQuery(out)))
    except (TypeError, ValueError, QueryError) as e:  # an IR node the printer or EQL's grammar lacks
        raise ConversionRefused(f"the detection has no EQL form: {_first_line(e)}") from None
    return out


def _and_terms(e: ir.Expr) -> list[ir.Expr]:
    return [t for x in e.terms for t in _and_terms(x)] if isinstance(e, ir.And) else [e]


# ---- correlations --------------------------------------------------------------------------


def _fields(names: list[str], rule: Any) -> tuple[ir.Field, ...]:
    table = _entry(rule)
    return tuple(ir.Field(table.get(n, n)) for n in names)


def _step(ref: Any, corr: Any, timespan_ms: int, ph: Placeholders | None) -> tuple[ir.Stage, list[str]]:
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
        base = target.rules[0].rule  # exact: its alerts are EQL's runs, the latest one extended (README, "Sigma")
        return ir.Stage(base_filter(base, ph), _keys(corr, ref.reference, base), runs=runs), warnings
    return ir.Stage(base_filter(target, ph), _keys(corr, ref.reference, target)), warnings


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


def correlation_query(corr: Any, ph: Placeholders | None = None) -> tuple[ir.Query, list[str]]:
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
                return ir.EventQuery(base_filter(corr.rules[0].rule, ph)), warnings
            raise ConversionRefused(f"event_count of {runs}: EQL allows runs up to {_MAX_RUNS}")
        ref = corr.rules[0]
        stage = ir.Stage(base_filter(ref.rule, ph), _keys(corr, ref.reference, ref.rule), runs=runs)
        # exact: an event_count alert links the N newest events of a window holding N (engine/sigma_correlation.py),
        # which is EQL's run of N ending at that event
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
            stage, more = _step(ref, corr, span_ms, ph)
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


def threshold_of(corr: Any, ph: Placeholders | None = None) -> tuple[ir.EventFilter, dict]:
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
    base = base_filter(ref.rule, ph)
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


def sigma_queries(text: str, placeholders: Placeholders | None = None) -> list[SigmaQuery | ConversionRefused]:
    """Every rule Sigma would alert on (correlations, and rules no correlation hides) as a query; `placeholders`
    gives the values of `|expand` placeholders."""
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
                    threshold = threshold_of(r, placeholders)
                except ConversionRefused:
                    pass
                try:
                    q, warnings = correlation_query(r, placeholders)
                except ConversionRefused as e:
                    if threshold is None:
                        raise
                    q, warnings, no_eql = None, [], e.reason
            else:
                q, warnings = ir.EventQuery(base_filter(r, placeholders)), []
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

