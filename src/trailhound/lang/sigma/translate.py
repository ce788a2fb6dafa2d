"""pySigma's rule objects → the IR. pySigma resolves the condition (`1 of selection_*`, `all of them`,
lists as OR, maps as AND, `|all`) and applies the value modifiers (base64, utf16, windash...) into
typed values; each leaf becomes one IR predicate here, with Sigma's meaning:

* strings match case-insensitively (`|cased`: exactly), with `*` and `?` as wildcards; a literal `*`
  or `?` (escaped in the rule) makes the value a regex, since EQL wildcards cannot escape them;
* `|re` is searched anywhere in the value (translated to an anchored Lucene regex: regex.py);
* numbers match the number, or its text where the field is not numeric in ECS;
* `null` is a missing field, `|exists` a present one, `|cidr` is cidrMatch, `|gt`... compare numbers,
  `|fieldref` compares with another field;
* keywords (values without a field) are searched, as substrings, case-insensitively, in the event's
  full text: `message`, else `event.original` (the raw line); a number, as a whole word;
* the logsource's condition (linux.yml) is ANDed with the detection.
"""

from __future__ import annotations

from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass

from .. import ir
from .errors import SigmaRuleError, SigmaUnsupported
from .mapping import Logsource, Mapping, linux
from .regex import to_lucene

#: the fields a keyword (a value without a field) is searched in: the first that the event has
TEXT_FIELDS = ("message", "event.original")
_NUMERIC = ("long", "integer", "short", "byte", "unsigned_long", "double", "float", "half_float", "scaled_float")
_COMPARE = {"LT": "<", "LTE": "<=", "GT": ">", "GTE": ">=", "NEQ": "!="}


@dataclass(frozen=True)
class Translation:
    query: ir.EventQuery
    events: str  # which events the rule reads: "ecs", or "auditd_records"
    logsource: str  # the mapping entry that applied, for messages


#: modifier names of the Sigma specification that pySigma 1.5 spells otherwise
MODIFIER_ALIASES = {"utf16le": "wide"}


def normalized(doc: dict) -> dict:
    """The rule document with the spec's modifier aliases in pySigma's spelling (`|utf16le` → `|wide`)."""
    detection = doc.get("detection")
    if not isinstance(detection, dict):
        return doc

    def key(k):
        if not isinstance(k, str) or "|" not in k:
            return k
        name, *mods = k.split("|")
        return "|".join([name, *(MODIFIER_ALIASES.get(m, m) for m in mods)])

    def fix(v):
        if isinstance(v, dict):
            return {key(k): fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return {**doc, "detection": {k: (v if k == "condition" else fix(v)) for k, v in detection.items()}}


def translate(rule, placeholders: AnyMapping[str, list[str]] | None = None,
              mapping: Mapping | None = None, ecs_types: AnyMapping[str, str] | None = None) -> Translation:
    """One pySigma SigmaRule as an event query; SigmaUnsupported names what we lack, SigmaRuleError
    what is wrong with the rule."""
    from sigma.exceptions import SigmaError

    mapping = mapping or linux()
    logsource = {"product": rule.logsource.product, "category": rule.logsource.category,
                 "service": rule.logsource.service}
    entry = mapping.select(logsource)
    shown = ", ".join(f"{k}: {v}" for k, v in logsource.items() if v)
    if entry is None:
        raise SigmaUnsupported(f"no mapping for logsource {{{shown}}} (Trailhound maps product: linux)")
    writer = _Writer(entry, placeholders or {}, ecs_types or {})
    try:
        conditions = [c.parsed for c in rule.detection.parsed_condition]
    except SigmaError as e:
        raise SigmaRuleError(f"condition: {e}") from None
    terms = [writer.expr(c) for c in conditions if c is not None]
    if not terms:
        raise SigmaRuleError("the condition selects nothing")
    detection = terms[0] if len(terms) == 1 else ir.Or(tuple(terms))
    condition = detection if entry.where == ir.Literal(True) else ir.And((entry.where, detection))
    return Translation(ir.EventQuery(ir.EventFilter(None, condition)), entry.events, shown)


class _Writer:
    def __init__(self, entry: Logsource, placeholders: AnyMapping[str, list[str]], types: AnyMapping[str, str]):
        self.entry, self.placeholders, self.types = entry, placeholders, types

    def field(self, name: str) -> ir.Field:
        return ir.Field(self.entry.fields.get(name, name))

    def expr(self, node) -> ir.Expr:
        from sigma.conditions import (
            ConditionAND,
            ConditionFieldEqualsValueExpression,
            ConditionNOT,
            ConditionOR,
            ConditionValueExpression,
        )

        # iterative would be kinder to deep trees, but pySigma's own parser recurses first
        if isinstance(node, ConditionAND):
            return _and([self.expr(a) for a in node.args])
        if isinstance(node, ConditionOR):
            return _or([self.expr(a) for a in node.args])
        if isinstance(node, ConditionNOT):
            return ir.Not(self.expr(node.args[0]))
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.value(self.field(node.field), node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        raise SigmaUnsupported(f"condition element {type(node).__name__}")

    def value(self, f: ir.Field, v) -> ir.Expr:
        from sigma import types as T

        if isinstance(v, T.SigmaExpansion):
            return _or([self.value(f, x) for x in v.values])
        if isinstance(v, T.SigmaString):
            return _or([self.string(f, s, cased=isinstance(v, T.SigmaCasedString)) for s in self.expand(v)])
        if isinstance(v, T.SigmaTimestampPart):
            # the part of the field's date in UTC, as Elasticsearch reads dates (compile/functions.part_of_ns);
            # a value that is not a date matches nothing
            part = ir.Call(ir.TIME_PART, (f, ir.Literal(v.timestamp_part.name.lower())))
            return ir.Compare("==", part, ir.Literal(int(v.number)))
        if isinstance(v, T.SigmaBool):
            return ir.Compare("==", f, ir.Literal(bool(v.boolean)))
        if isinstance(v, T.SigmaNumber):
            if self.types.get(f.path) in _NUMERIC or self.types.get(f.path) == "date":  # a date: epoch millis
                return ir.Compare("==", f, ir.Literal(v.number))
            return ir.Match(f, "wildcard", (str(v.number),), True)
        if isinstance(v, T.SigmaNull):
            return ir.IsNull(f)
        if isinstance(v, T.SigmaExists):
            return ir.Not(ir.IsNull(f)) if v.exists else ir.IsNull(f)
        if isinstance(v, T.SigmaRegularExpression):
            flags = {flag.name for flag in v.flags}
            patterns, ci = to_lucene(str(v.regexp), "IGNORECASE" in flags, "MULTILINE" in flags, "DOTALL" in flags)
            return ir.Match(f, "regex", patterns, ci)
        if isinstance(v, T.SigmaCIDRExpression):
            return ir.Call("cidrMatch", (f, ir.Literal(str(v.network))))
        if isinstance(v, T.SigmaCompareExpression):
            return ir.Compare(_COMPARE[v.op.name], f, ir.Literal(v.number.number))  # type: ignore[arg-type]
        if isinstance(v, T.SigmaFieldReference):
            other = self.field(v.field)
            if v.starts_with and v.ends_with:
                raise SigmaUnsupported("|fieldref with both |contains semantics (a field inside another)")
            if v.starts_with:
                return ir.Call("startsWith", (f, other))
            if v.ends_with:
                return ir.Call("endsWith", (f, other))
            # fields cannot be compared directly in the IR (nor in EQL): equal = one starts with the
            # other and both are as long
            same_length = ir.Compare("==", ir.Arith("-", ir.Call("length", (f,)), ir.Call("length", (other,))),
                                     ir.Literal(0))
            return ir.And((ir.Call("startsWith", (f, other)), same_length))
        raise SigmaUnsupported(f"the value type {type(v).__name__}")

    def expand(self, s) -> list:
        """`s`, or with `|expand` every combination of its placeholders' values (OR-ed)."""
        from sigma.types import Placeholder, SigmaString

        if not s.contains_placeholder():
            return [s]
        out: list[list] = [[]]
        for part in s.s:
            if isinstance(part, Placeholder):
                values = self.placeholders.get(part.name)
                if values is None:
                    raise SigmaUnsupported(f"|expand placeholder %{part.name}% has no values (give them with "
                                           "--sigma-placeholders FILE)")
                out = [prefix + list(SigmaString(val).s) for prefix in out for val in values]
                if len(out) > 10_000:
                    raise SigmaRuleError(f"|expand of %{part.name}% gives more than 10000 values")
            else:
                out = [prefix + [part] for prefix in out]
        expanded = []
        for parts in out:
            x = SigmaString("")
            x.s = parts
            expanded.append(x)
        return expanded

    def string(self, f: ir.Field, s, cased: bool) -> ir.Expr:
        from sigma.types import SpecialChars

        literal_special = any(isinstance(p, str) and ("*" in p or "?" in p) for p in s.s)
        if literal_special:
            parts = []
            for p in s.s:
                if p == SpecialChars.WILDCARD_MULTI:
                    parts.append(".*")
                elif p == SpecialChars.WILDCARD_SINGLE:
                    parts.append(".")
                else:
                    parts.append("".join(c if c.isalnum() and c.isascii() else "\\" + c for c in p))
            return ir.Match(f, "regex", ("".join(parts),), not cased)
        pattern = "".join("*" if p == SpecialChars.WILDCARD_MULTI else "?" if p == SpecialChars.WILDCARD_SINGLE
                          else p for p in s.s)
        if cased and not any(isinstance(p, SpecialChars) for p in s.s):
            # an exact value is equality: the same on text, and on a date or address field it compares the
            # value as Elasticsearch's term query would (a pattern over a date's text matches nothing)
            return ir.Compare("==", f, ir.Literal(pattern))
        return ir.Match(f, "wildcard", (pattern,), not cased)

    def keyword(self, v) -> ir.Expr:
        from sigma import types as T

        if isinstance(v, T.SigmaExpansion):
            return _or([self.keyword(x) for x in v.values])
        if isinstance(v, T.SigmaNumber) and not isinstance(v, T.SigmaTimestampPart):
            # a number is a whole word of the text (as Elasticsearch's term on every field would match
            # a value, not a digit inside a timestamp)
            word = "[^A-Za-z0-9_]"
            pattern = f"(@{word})?" + "".join("\\" + c for c in str(v.number)) + f"({word}@)?"
            text_fields = [ir.Field(name) for name in TEXT_FIELDS]
            first_match = ir.Match(text_fields[0], "regex", (pattern,), False)
            later = [ir.And((ir.IsNull(text_fields[0]), ir.Match(t, "regex", (pattern,), False)))
                     for t in text_fields[1:]]
            return _or([first_match, *later])
        if not isinstance(v, (T.SigmaString, T.SigmaRegularExpression)):
            raise SigmaUnsupported(f"a keyword (value without a field) of type {type(v).__name__}")
        out: list[ir.Expr] = []
        for s in self.expand(v) if isinstance(v, T.SigmaString) else [v]:
            inner: T.SigmaType = s
            if isinstance(s, T.SigmaString):  # a keyword is found anywhere in the text
                star = T.SpecialChars.WILDCARD_MULTI
                parts = list(s.s)
                inner = T.SigmaString("")
                inner.s = ([] if parts[:1] == [star] else [star]) + parts + ([] if parts[-1:] == [star] else [star])
            text_fields = [ir.Field(name) for name in TEXT_FIELDS]
            first = self.value(text_fields[0], inner)
            rest = [ir.And((ir.IsNull(text_fields[0]), self.value(t, inner))) for t in text_fields[1:]]
            out.append(_or([first, *rest]))
        return _or(out)


def _and(terms: list[ir.Expr]) -> ir.Expr:
    flat: list[ir.Expr] = []
    for t in terms:
        flat.extend(t.terms if isinstance(t, ir.And) else (t,))
    return flat[0] if len(flat) == 1 else ir.And(tuple(flat))


def _or(terms: list[ir.Expr]) -> ir.Expr:
    flat: list[ir.Expr] = []
    for t in terms:
        flat.extend(t.terms if isinstance(t, ir.Or) else (t,))
    folded = ir.fold_alternatives(tuple(flat))
    return folded[0] if len(folded) == 1 else ir.Or(folded)
