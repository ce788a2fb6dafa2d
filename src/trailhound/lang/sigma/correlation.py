"""Sigma v2 correlation rules (pySigma 1.5's model) → a plain, serializable spec the engine runs
(engine/sigma_correlation.py). References stay names or ids here; the hunt resolves them among the
rules it has."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from .errors import SigmaRuleError, SigmaUnsupported

TYPES = ("event_count", "value_count", "temporal", "temporal_ordered", "value_sum", "value_avg",
         "value_percentile", "value_median")
OPS = {"LT": "<", "LTE": "<=", "GT": ">", "GTE": ">=", "EQ": "==", "NEQ": "!="}

#: a temporal condition over the referenced rules: ["ref", i] | ["not", c] | ["and", [c...]] | ["or", [c...]]
Expression = list


@dataclass(frozen=True)
class CorrelationSpec:
    kind: str
    references: tuple[str, ...]  # the rules' names or ids, as written
    timespan_ms: int
    group_by: tuple[str, ...] = ()
    condition: tuple[tuple[str, float], ...] = ()  # (op, number), all must hold
    field: str | None = None  # value_* types: the field whose values are counted or measured
    percentile: float | None = None
    expression: Expression | None = None  # temporal types with an extended condition ("a and not b")
    generate: bool = False
    aliases: dict[str, dict[str, str]] = dc_field(default_factory=dict)  # alias → {reference: field}

    def field_for(self, alias_or_field: str, reference: str) -> str:
        """The field a group-by name means in the events of `reference` (its alias's, else itself)."""
        return self.aliases.get(alias_or_field, {}).get(reference, alias_or_field)


def correlation_spec(doc: dict) -> CorrelationSpec:
    """The spec of one correlation document; SigmaRuleError / SigmaUnsupported say what is wrong or lacking."""
    from sigma.correlations import SigmaCorrelationRule, SigmaExtendedCorrelationCondition
    from sigma.exceptions import SigmaError

    try:
        rule = SigmaCorrelationRule.from_dict(doc)
    except SigmaError as e:
        raise SigmaRuleError(str(e).split("\n")[0]) from None
    kind = rule.type.name.lower()
    if kind not in TYPES:
        raise SigmaUnsupported(f"correlation type {kind}")
    refs = tuple(str(r.reference) for r in (rule.rules or rule.referenced_rules or ()))
    if not refs:
        raise SigmaRuleError("a correlation needs the rules it correlates")
    cond = rule.condition
    condition: tuple[tuple[str, float], ...] = ()
    expression = None
    value_field = None
    percentile = None
    if isinstance(cond, SigmaExtendedCorrelationCondition):
        if kind not in ("temporal", "temporal_ordered"):
            raise SigmaRuleError("an extended (boolean) condition is for temporal correlations only")
        if kind == "temporal_ordered":
            raise SigmaUnsupported("an extended condition on a temporal_ordered correlation (its order is "
                                   "that of `rules`, which a boolean condition does not give)")
        expression = _expression(cond.parsed, refs)
    elif cond is not None:
        condition = ((OPS[cond.op.name], float(cond.count)),)
        fieldref = cond.fieldref
        if isinstance(fieldref, list):
            if len(fieldref) != 1:
                raise SigmaUnsupported("a correlation condition over several fields")
            fieldref = fieldref[0]
        value_field = fieldref
        percentile = float(cond.percentile) if cond.percentile is not None else None
    if kind.startswith("value_") and not value_field:
        raise SigmaRuleError(f"a {kind} correlation needs condition.field")
    if kind == "value_percentile" and percentile is None:
        raise SigmaRuleError("a value_percentile correlation needs condition.percentile")
    if kind in ("temporal", "temporal_ordered") and not condition and expression is None:
        condition = ((">=", float(len(refs))),)
    aliases = {name: {str(ref.reference): f for ref, f in alias.mapping.items()}
               for name, alias in rule.aliases.aliases.items()}
    return CorrelationSpec(kind, refs, int(rule.timespan.seconds) * 1000, tuple(rule.group_by or ()), condition,
                           value_field, percentile, expression, bool(rule.generate), aliases)


def _expression(node: Any, refs: tuple[str, ...]) -> Expression:
    from sigma.correlations import (
        CorrelationConditionAND,
        CorrelationConditionNOT,
        CorrelationConditionOR,
        SigmaRuleReference,
    )

    if isinstance(node, SigmaRuleReference):
        name = str(node.reference)
        if name not in refs:
            raise SigmaRuleError(f"the condition names {name!r}, which the correlation's rules do not list")
        return ["ref", refs.index(name)]
    if isinstance(node, CorrelationConditionNOT):
        return ["not", _expression(node.args[0], refs)]
    if isinstance(node, (CorrelationConditionAND, CorrelationConditionOR)):
        return ["and" if isinstance(node, CorrelationConditionAND) else "or",
                [_expression(a, refs) for a in node.args]]
    raise SigmaUnsupported(f"correlation condition element {type(node).__name__}")
