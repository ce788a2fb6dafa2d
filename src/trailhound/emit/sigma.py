"""EQL / KQL / detection-rules TOML → Sigma rules and correlations.

* An event query becomes one Sigma rule. Its logsource is the first entry of lang/sigma/linux.yml
  whose `where` condition the query implies (so the Sigma loader, which ANDs that condition back,
  sees the same events); conditions equal to the logsource's are left to it. ECS fields become the
  taxonomy's names where the logsource's field table has one, and stay ECS names otherwise.
* `sequence by k [..] [..] with maxspan=T` becomes one named base rule per step and a
  `temporal_ordered` correlation (group-by, aliases where a step names its key differently,
  timespan T); a step `with runs=N` is an `event_count` correlation chained in as the step.
* threshold rules become `event_count` (or `value_count`, with cardinality) correlations.
* Refused, with the reason: `until`, missing-event steps, new_terms, pipes, computed values.

Exactness: `==`, `in` and `like` compare case-sensitively in Elasticsearch, so their values carry
Sigma's `cased` modifier; `:` and `~` forms do not. Lucene regexes (anchored, their own syntax) are
translated to the anchored form every regex engine reads (`^(?:...)$`).
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..lang import ir
from ..rules.model import Rule, date_math_ms
from . import ConversionRefused

#: uuid5 namespace of the Sigma ids Trailhound derives from rule ids (stable across runs)
ID_NAMESPACE = uuid.UUID("6b1f6a52-5a0e-4f4b-9a86-3b7d3c7e2f10")
_LEVELS = {"low": "low", "medium": "medium", "high": "high", "critical": "critical"}
_SPAN_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


# ---- the taxonomy, read backwards ------------------------------------------------------------


@dataclass(frozen=True)
class LogSource:
    match: dict[str, str]
    where: tuple[ir.Expr, ...]  # the conjuncts of its condition
    to_sigma: dict[str, str]  # ECS field → the taxonomy's name in its field table


@functools.lru_cache(maxsize=1)
def logsources() -> tuple[LogSource, ...]:
    """linux.yml's logsources as the Sigma loader reads them (lang/sigma/mapping.py), those over ECS events only:
    a logsource over raw audit records has none of the ECS fields a converted detection names, so the loader
    would select nothing for it."""
    from ..lang.sigma.mapping import linux

    return tuple(LogSource(dict(e.match), tuple(_conjuncts(e.where)), {ecs: name for name, ecs in e.fields.items()})
                 for e in linux().logsources if e.events == "ecs")


def _conjuncts(e: ir.Expr) -> list[ir.Expr]:
    if isinstance(e, ir.And):
        return [c for t in e.terms for c in _conjuncts(t)]
    if isinstance(e, ir.Literal) and e.value is True:
        return []
    return [e]


def _implies(c: ir.Expr, w: ir.Expr) -> bool:
    """Does the condition `c` imply `w`? (Syntactic: equal, a narrower membership, one side of an or.)"""
    if c == w:
        return True
    if isinstance(w, ir.Or):
        return any(_implies(c, t) for t in w.terms)
    if isinstance(w, ir.InSet) and not w.case_insensitive:
        if isinstance(c, ir.Compare) and c.op == "==" and c.left == w.value and c.right in w.options:
            return True
        if isinstance(c, ir.InSet) and c.value == w.value and not c.case_insensitive:
            return all(o in w.options for o in c.options)
    if isinstance(w, ir.Compare) and w.op == "==" and isinstance(c, ir.InSet) and not c.case_insensitive:
        return c.value == w.left and c.options == (w.right,)
    return False


def infer_logsource(conjuncts: list[ir.Expr]) -> LogSource:
    """The first logsource of linux.yml whose every condition the query's conjuncts imply."""
    for source in logsources():
        if all(any(_implies(c, w) for c in conjuncts) for w in source.where):
            return source
    raise AssertionError("linux.yml ends with a catch-all logsource")


# ---- expressions → detections ----------------------------------------------------------------


def sigma_string(text: str) -> str:
    """A literal value in Sigma: its wildcards and backslashes escaped."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _wildcard_value(pattern: str) -> str:
    """An EQL wildcard pattern (only `*` and `?` are special, nothing escapes) as a Sigma value."""
    return pattern.replace("\\", "\\\\")


def _shape(pattern: str) -> tuple[str, str]:
    """(modifier, value) for a wildcard pattern: contains / startswith / endswith where it is one."""
    inner = pattern[1:-1]
    if len(pattern) > 2 and pattern.startswith("*") and pattern.endswith("*") and not any(c in inner for c in "*?"):
        return "contains", sigma_string(inner)
    if pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?"):
        return "startswith", sigma_string(pattern[:-1])
    if pattern.startswith("*") and not any(c in pattern[1:] for c in "*?"):
        return "endswith", sigma_string(pattern[1:])
    return "", _wildcard_value(pattern)


_TOP_ALT = re.compile(r"\\.|\[(?:\\.|[^\]])*\]|[()|]", re.S)


def sigma_regex(pattern: str, case_insensitive: bool, flavor: str) -> tuple[str, list[str]]:
    """(regex, modifiers) for a Lucene regex: kept as it is for Elastic's backends (which hand it
    to Lucene), else translated to the anchored form PCRE-style engines read."""
    if flavor == "elastic":
        if case_insensitive:
            raise ConversionRefused(f"the case-insensitive regex {pattern!r} has no form in Lucene's query syntax "
                                    "(no (?i) flag)")
        return pattern, ["re"]
    from ..compile.patterns import lucene_to_regex

    rx = lucene_to_regex(pattern, case_insensitive)
    flags = re.match(r"\(\?([a-z]+)\)", rx)
    mods = ["re"]
    if flags:
        rx = rx[flags.end():]
        mods += [{"s": "s", "i": "i", "m": "m"}[f] for f in flags.group(1) if f in "sim"]
    return rx, mods


class _Detection:
    """Builds a Sigma `detection`: named selections and a condition over them."""

    def __init__(self, to_sigma: dict[str, str], flavor: str) -> None:
        self.to_sigma = to_sigma
        self.flavor = flavor
        self.items: dict[str, Any] = {}

    def name(self, f: ir.Field) -> str:
        return f.path if self.flavor == "elastic" else self.to_sigma.get(f.path, f.path)

    def _add(self, value: Any, negated: bool) -> str:
        base = "filter" if negated else "selection"
        n = sum(1 for k in self.items if k.startswith(base)) + 1
        key = f"{base}_{n}"
        self.items[key] = value
        return key

    def condition(self, e: ir.Expr, negated: bool = False) -> str:
        """The condition text for `e`, adding its selections; atoms next to each other in an
        `and` share one selection when their keys differ."""
        if isinstance(e, ir.And):
            rest: list[ir.Expr] = []
            group: dict[str, Any] = {}
            for t in e.terms:
                pair = self.atom(t)
                if pair is not None and len(pair) == 1 and next(iter(pair)) not in group:
                    group.update(pair)
                else:
                    rest.append(t)
            parts = [self._add(group, negated)] if group else []
            parts += [self._wrap(self.condition(t, negated)) for t in rest]
            return " and ".join(parts)
        if isinstance(e, ir.Or):
            atoms = [self.atom(t) for t in e.terms]
            if all(a is not None for a in atoms):
                # a Match of several shapes is several alternatives, not one map (which would AND them)
                alts: list[dict] = [{k: v} for a in atoms if a is not None for k, v in a.items()]
                if all(len(a) == 1 for a in alts) and len({next(iter(a)) for a in alts}) == 1:
                    key = next(iter(alts[0]))
                    values: list = []
                    for a in alts:
                        v = a[key]
                        values.extend(v if isinstance(v, list) else [v])
                    return self._add({key: values}, negated)
                return self._add(alts, negated)  # a list of maps: any of them
            return " or ".join(self._wrap(self.condition(t, negated)) for t in e.terms)
        if isinstance(e, ir.Not):
            return "not " + self._wrap(self.condition(e.operand, not negated))
        if isinstance(e, ir.Compare) and e.op == "!=":
            return "not " + self.condition(ir.Compare("==", e.left, e.right), not negated)
        pair = self.atom(e)
        if pair is None:
            if any(isinstance(n, ir.Call) and any(not isinstance(a, ir.Literal) for a in n.args[1:])
                   for n in ir.walk(e)):
                # e.g. the pack's `stringContains(process.command_line, concat("/home/", user.name, "/"))`
                raise ConversionRefused(f"{_describe(e)} compares with a value computed from the event's fields; "
                                        "Sigma compares fields with constant values only (or, with |fieldref, "
                                        "with another field as it is)")
            raise ConversionRefused(f"{_describe(e)} has no Sigma equivalent")
        if isinstance(e, ir.Match) and len(pair) > 1:  # patterns of different shapes: any of them
            return self._add([{k: v} for k, v in pair.items()], negated)
        return self._add(pair, negated)

    @staticmethod
    def _wrap(text: str) -> str:
        return text if re.fullmatch(r"(not )*\w+", text) else f"({text})"

    def atom(self, e: ir.Expr) -> dict[str, Any] | None:
        """`{field|modifiers: value}` for a test on one field, or None when `e` is not one."""
        if isinstance(e, ir.Compare) and e.op == "==" and ir.Literal(True) in (e.left, e.right):
            call = e.right if e.left == ir.Literal(True) else e.left
            if isinstance(call, ir.Call) and call.name in _PREDICATES:
                return self.atom(call)  # `cidrMatch(f, ..) == true`: the predicate holds, as written bare
        if isinstance(e, ir.Compare) and isinstance(e.right, ir.Field) and isinstance(e.left, ir.Literal):
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[e.op]
            return self.atom(ir.Compare(flipped, e.right, e.left))  # type: ignore[arg-type]
        if isinstance(e, ir.Compare) and isinstance(e.left, ir.Field) and isinstance(e.right, ir.Literal):
            name, value = self.name(e.left), e.right.value
            if e.op == "==":
                if isinstance(value, str):
                    return {f"{name}|cased": sigma_string(value)}
                return {name: value}
            if e.op in ("<", "<=", ">", ">=") and isinstance(value, (int, float)) and not isinstance(value, bool):
                mod = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}[e.op]
                return {f"{name}|{mod}": value}
            return None
        if isinstance(e, ir.InSet) and isinstance(e.value, ir.Field) and all(
                isinstance(o, ir.Literal) and o.value is not None for o in e.options):
            values = [o.value for o in e.options if isinstance(o, ir.Literal)]
            texts = any(isinstance(v, str) for v in values)
            key = self.name(e.value) + ("|cased" if texts and not e.case_insensitive else "")
            out = [sigma_string(v) if isinstance(v, str) else v for v in values]
            return {key: out[0] if len(out) == 1 else out}
        if isinstance(e, ir.Match) and isinstance(e.value, ir.Field):
            name = self.name(e.value)
            cased = [] if e.case_insensitive else ["cased"]
            if e.kind == "regex":
                by_mods: dict[str, list] = {}
                for p in e.patterns:
                    rx, mods = sigma_regex(p, e.case_insensitive, self.flavor)
                    by_mods.setdefault("|".join([name, *mods]), []).append(rx)
            else:
                by_mods = {}
                for p in e.patterns:
                    mod, value = _shape(p)
                    by_mods.setdefault("|".join([name, *cased, *([mod] if mod else [])]), []).append(value)
            return {k: v[0] if len(v) == 1 else v for k, v in by_mods.items()}
        if isinstance(e, ir.IsNull) and isinstance(e.operand, ir.Field):
            return {self.name(e.operand): None}
        if isinstance(e, ir.Call) and e.args and isinstance(e.args[0], ir.Field) and all(
                isinstance(a, ir.Literal) and isinstance(a.value, str) for a in e.args[1:]) and len(e.args) > 1:
            name = self.name(e.args[0])
            values = [a.value for a in e.args[1:] if isinstance(a, ir.Literal)]
            if e.name == "cidrMatch":
                nets = [_network(str(v)) for v in values]  # ES takes host bits (10.1.2.3/8); Sigma wants the network
                return {f"{name}|cidr": nets[0] if len(nets) == 1 else nets}
            fn = {"startsWith": "startswith", "endsWith": "endswith", "stringContains": "contains"}.get(e.name)
            if fn and len(values) == 1 and isinstance(values[0], str):
                return {f"{name}|{'' if e.case_insensitive else 'cased|'}{fn}": sigma_string(values[0])}
        return None


#: the functions `atom` writes as a Sigma modifier: each is true, false, or null (a missing field) in EQL
_PREDICATES = ("cidrMatch", "startsWith", "endsWith", "stringContains")


def _network(text: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text


def _describe(e: ir.Expr) -> str:
    from .eql import print_expr

    try:
        text = print_expr(e)
    except TypeError:
        text = type(e).__name__
    if len(text) > 80:
        text = text[:77] + "..."
    kind = "the test"
    for node in ir.walk(e):
        if isinstance(node, ir.Call):
            kind = f"the function {node.name}() in"
            break
        if isinstance(node, (ir.Arith, ir.Negate)):
            kind = "arithmetic in"
            break
    else:
        if isinstance(e, ir.Field):
            kind = "a bare field as a condition:"
    return f"{kind} `{text}`"


# ---- rules ----------------------------------------------------------------------------------------


@dataclass
class SigmaExport:
    """One rule's Sigma documents (base rules first, the rule that alerts last) and caveats."""

    documents: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        return dump_yaml(self.documents)


def dump_yaml(documents: list[dict[str, Any]]) -> str:
    """YAML documents as people write Sigma: keys in order, multi-line text as literal blocks,
    long values on one line."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        if "\n" in value:
            return dumper.represent_scalar("tag:yaml.org,2002:str", value.strip("\n") + "\n", style="|")
        return dumper.represent_scalar("tag:yaml.org,2002:str", value)

    _Dumper.add_representer(str, text)
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096,
                         explicit_start=len(documents) > 1)


#: pySigma validators that do not apply to converted rules: `attacktag`, `d3_fendtag` download MITRE data at
#: run time; `number_as_string` and `escaped_wildcard` flag values that are exact copies of the
#: source rule's (ECS keywords hold numbers as text; a literal `*` must be escaped).
SKIPPED_VALIDATORS = frozenset({"attacktag", "d3_fendtag", "number_as_string", "escaped_wildcard", "filename_length",
                                "duplicate_filename"})


def check_sigma(text: str) -> list[str]:
    """Problems pySigma finds in Sigma YAML: parse errors, then its validators' issues."""
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError
    from sigma.validation import SigmaValidator
    from sigma.validators.core import validators

    try:
        coll = SigmaCollection.from_yaml(text, collect_errors=True)
        coll.resolve_rule_references()
    except SigmaError as e:
        return [f"pySigma cannot read it: {e}"]
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # pySigma on input it does not expect
        return [f"pySigma cannot read it: {type(e).__name__}: {e}"]
    problems = [f"{r.title}: {e}" for r in coll for e in r.errors]
    if problems:
        return problems
    chosen = [v for k, v in validators.items() if k not in SKIPPED_VALIDATORS]
    try:
        for issue in SigmaValidator(chosen).validate_rules(iter(coll)):  # type: ignore[arg-type]
            problems.append(f"{type(issue).__name__}: {issue.description}")
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        problems.append(f"pySigma's validators cannot read it: {type(e).__name__}: {e}")
    return problems


@dataclass(frozen=True)
class Meta:
    """What a Sigma rule carries over from its source rule."""

    rule_id: str
    title: str
    description: str = ""
    author: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    false_positives: tuple[str, ...] = ()
    level: str = "medium"
    status: str = "experimental"
    date: str | None = None
    modified: str | None = None
    lookback: str | None = None

    @classmethod
    def of(cls, rule: Rule) -> Meta:
        md = rule.metadata or {}
        return cls(rule.rule_id, rule.name, rule.description.strip(), rule.author, rule.references,
                   attack_tags(rule.threat), rule.false_positives, _LEVELS.get(rule.severity, "medium"),
                   "stable" if md.get("maturity") == "production" else "experimental",
                   _date(md.get("creation_date")), _date(md.get("updated_date")), rule.lookback)


def _date(value: Any) -> str | None:
    if isinstance(value, str) and re.fullmatch(r"\d{4}[/-]\d{2}[/-]\d{2}", value):
        return value.replace("/", "-")
    return None


def attack_tags(threat: tuple[dict, ...]) -> tuple[str, ...]:
    """Sigma's ATT&CK tags (`attack.lateral-movement`, `attack.t1021.004`) from detection-rules' threat."""
    tags: list[str] = []
    for t in threat:
        if not isinstance(t, dict) or t.get("framework") != "MITRE ATT&CK":
            continue
        tactic = t.get("tactic", {})
        if isinstance(tactic, dict) and isinstance(tactic.get("name"), str):
            tags.append("attack." + tactic["name"].strip().lower().replace(" ", "-"))
        for tech in t.get("technique", []) or []:
            if isinstance(tech, dict) and isinstance(tech.get("id"), str):
                tags.append("attack." + tech["id"].lower())
                for sub in tech.get("subtechnique", []) or []:
                    if isinstance(sub, dict) and isinstance(sub.get("id"), str):
                        tags.append("attack." + sub["id"].lower())
    return tuple(dict.fromkeys(tags))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "rule"


def sigma_id(rule_id: str, part: str = "") -> str:
    return str(uuid.uuid5(ID_NAMESPACE, rule_id + (":" + part if part else "")))


def timespan(ms: int) -> str:
    for unit, size in _SPAN_UNITS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    raise ConversionRefused(f"a time span of {ms}ms has no Sigma timespan (whole seconds at the finest)")


def _header(meta: Meta, title: str, rule_id: str, name: str | None, full: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"title": title, "id": rule_id}
    if name:
        doc["name"] = name
    doc["status"] = meta.status
    if full:
        if meta.description:
            doc["description"] = meta.description
        if meta.references:
            doc["references"] = list(meta.references)
    if meta.author:
        doc["author"] = ", ".join(meta.author)
    if meta.date:
        doc["date"] = meta.date
    if meta.modified:
        doc["modified"] = meta.modified
    if full and meta.tags:
        doc["tags"] = list(meta.tags)
    return doc


def _footer(doc: dict[str, Any], meta: Meta, full: bool) -> dict[str, Any]:
    if full and meta.false_positives:
        doc["falsepositives"] = list(meta.false_positives)
    doc["level"] = meta.level
    return doc


@dataclass
class _Base:
    doc: dict[str, Any]
    to_sigma: dict[str, str]


def event_rule(meta: Meta, f: ir.EventFilter, *, part: str = "", title: str | None = None, name: str | None = None,
               full: bool = True, flavor: str = "portable", keys: tuple[ir.Field, ...] = ()) -> _Base:
    """One Sigma rule for one event filter. A sequence step joins only events that have its
    `keys`: a step that matches any event says so (`not key: null`)."""
    conjuncts: list[ir.Expr] = []
    if f.category is not None:
        conjuncts.append(ir.Compare("==", ir.Field("event.category"), ir.Literal(f.category)))
    conjuncts += _conjuncts(f.condition)
    if any(isinstance(c, ir.Literal) and c.value is False for c in conjuncts):
        raise ConversionRefused("the condition is always false")
    source = infer_logsource(conjuncts)
    if flavor == "elastic":
        kept = conjuncts  # the Elastic backends get no logsource condition: keep every test
    else:
        kept = [c for c in conjuncts if c not in source.where] or conjuncts
    if not kept and keys:
        kept = [ir.Not(ir.IsNull(k)) for k in keys]
    if not kept:
        raise ConversionRefused("the query matches every event: a Sigma rule needs a detection")
    det = _Detection(source.to_sigma, flavor)
    cond = det.condition(kept[0] if len(kept) == 1 else ir.And(tuple(kept)))
    doc = _header(meta, title or meta.title, sigma_id(meta.rule_id, part), name, full)
    doc["logsource"] = dict(source.match)
    doc["detection"] = {**det.items, "condition": cond}
    return _Base(_footer(doc, meta, full), source.to_sigma)


def query_to_sigma(q: ir.Query, meta: Meta, *, threshold: dict | None = None,
                   flavor: str = "portable") -> SigmaExport:
    """Sigma documents for a parsed query (and a threshold rule's threshold)."""
    if q.pipes:
        raise ConversionRefused(f"the pipe `| {q.pipes[0].kind}` has no Sigma equivalent")
    if threshold is not None:
        assert isinstance(q, ir.EventQuery)
        return _threshold(q, meta, threshold, flavor)
    if isinstance(q, ir.EventQuery):
        return SigmaExport([event_rule(meta, q.filter, flavor=flavor).doc])
    if isinstance(q, ir.SequenceQuery):
        return _sequence(q, meta, flavor)
    return _sample(q, meta, flavor)


def _lookback(meta: Meta) -> tuple[int, str]:
    text = meta.lookback or "now-6m"
    return date_math_ms(text), text


def _sequence(q: ir.SequenceQuery, meta: Meta, flavor: str) -> SigmaExport:
    if q.until is not None:
        raise ConversionRefused("`until` has no Sigma equivalent (a correlation cannot be cancelled by a later event)")
    if any(s.missing for s in q.stages):
        raise ConversionRefused("missing-event steps (`![...]`) have no Sigma equivalent "
                                "(temporal correlations count events that happened)")
    warnings: list[str] = []
    if q.maxspan_ms is None:
        ms, text = _lookback(meta)
        warnings.append(f"the sequence has no maxspan: the correlation's timespan is the rule's lookback "
                        f"({timespan(ms)}, from `from = \"{text}\"`)")
    else:
        ms = q.maxspan_ms
    span = timespan(ms)
    base = slug(meta.title)
    docs: list[dict[str, Any]] = []
    steps: list[tuple[str, list[str]]] = []  # (rule name, its key fields in its own names)
    for i, s in enumerate(q.stages, 1):
        name = f"{base}_step{i}"
        built = event_rule(meta, s.filter, part=f"step{i}", name=name, full=False, flavor=flavor,
                           title=f"{meta.title}: step {i}", keys=s.keys)
        docs.append(built.doc)
        keys = [f.path if flavor == "elastic" else built.to_sigma.get(f.path, f.path) for f in s.keys]
        if s.runs > 1:
            runs = f"{name}_runs"
            doc = _header(meta, f"{meta.title}: step {i} ×{s.runs}" if len(q.stages) > 1 else meta.title,
                          sigma_id(meta.rule_id, f"step{i}-runs" if len(q.stages) > 1 else ""),
                          runs if len(q.stages) > 1 else None, len(q.stages) == 1)
            doc["correlation"] = {"type": "event_count", "rules": [name], **({"group-by": keys} if keys else {}),
                                  "timespan": span, "condition": {"gte": s.runs}}
            docs.append(_footer(doc, meta, len(q.stages) == 1))
            name = runs
        steps.append((name, keys))
    if len(q.stages) == 1:  # one step with runs=N: the event_count is the rule
        return SigmaExport(docs, warnings)
    group_by: list[str] = []
    aliases: dict[str, dict[str, str]] = {}
    for j, key in enumerate(q.stages[0].keys):
        names = [k[j] for _, k in steps]
        if len(set(names)) == 1:
            group_by.append(names[0])
        else:
            alias = key.path if key.path not in names else key.path + "_key"
            group_by.append(alias)
            aliases[alias] = {rule: k[j] for rule, k in steps}
    corr: dict[str, Any] = {"type": "temporal_ordered", "rules": [n for n, _ in steps]}
    if group_by:
        corr["group-by"] = group_by
    if aliases:
        corr["aliases"] = aliases
    corr["timespan"] = span
    doc = _header(meta, meta.title, sigma_id(meta.rule_id), None, True)
    doc["correlation"] = corr
    docs.append(_footer(doc, meta, True))
    if not group_by:
        warnings.append("the sequence has no join keys: the correlation relates any events of the steps")
    return SigmaExport(docs, warnings)


def _sample(q: ir.SampleQuery, meta: Meta, flavor: str) -> SigmaExport:
    ms, text = _lookback(meta)
    seq = _sequence(ir.SequenceQuery(q.stages, ms), meta, flavor)
    corr = seq.documents[-1]["correlation"]
    corr["type"] = "temporal"
    return SigmaExport(seq.documents, [f"an EQL sample has no time window: the temporal correlation's timespan is "
                                       f"the rule's lookback ({corr['timespan']}, from `from = \"{text}\"`)"])


def _threshold(q: ir.EventQuery, meta: Meta, spec: dict, flavor: str) -> SigmaExport:
    fields = spec.get("field", [])
    fields = [fields] if isinstance(fields, str) else list(fields or [])
    value = spec.get("value", 1)
    card = list(spec.get("cardinality", []) or [])
    ms, text = _lookback(meta)
    name = slug(meta.title) + "_events"
    built = event_rule(meta, q.filter, part="events", name=name, full=False, flavor=flavor,
                       title=f"{meta.title}: events")

    def sig(path: str) -> str:
        return path if flavor == "elastic" else built.to_sigma.get(path, path)

    corr: dict[str, Any]
    if card:
        if len(card) > 1:
            raise ConversionRefused("a threshold with more than one cardinality field has no Sigma equivalent")
        c_field, c_value = card[0]["field"], card[0]["value"]
        if value > c_value:
            raise ConversionRefused(f"threshold value {value} with cardinality {c_field} >= {c_value} needs both an "
                                    f"event count and a distinct count: a Sigma correlation has one condition")
        corr = {"type": "value_count", "rules": [name]}
        if fields:
            corr["group-by"] = [sig(f) for f in fields]
        corr["timespan"] = timespan(ms)
        corr["condition"] = {"field": sig(c_field), "gte": c_value}
    else:
        corr = {"type": "event_count", "rules": [name]}
        if fields:
            corr["group-by"] = [sig(f) for f in fields]
        corr["timespan"] = timespan(ms)
        corr["condition"] = {"gte": value}
    doc = _header(meta, meta.title, sigma_id(meta.rule_id), None, True)
    doc["correlation"] = corr
    warning = (f"Kibana counts a threshold over each run's lookback; the correlation's timespan is that lookback "
               f"({corr['timespan']}, from `from = \"{text}\"`)")
    return SigmaExport([built.doc, _footer(doc, meta, True)], [warning])


def rule_to_sigma(rule: Rule, flavor: str = "portable") -> SigmaExport:
    """A detection rule's Sigma documents; raises ConversionRefused with the reason."""
    from ..rules.check import parse_rule_query

    if rule.type == "new_terms":
        raise ConversionRefused("new_terms rules have no Sigma equivalent (Sigma has no first-seen correlation)")
    if rule.type not in ("eql", "query", "threshold"):
        raise ConversionRefused(f"{rule.type} rules have no Sigma equivalent")
    if rule.language not in ("eql", "kuery", None):
        raise ConversionRefused(f"{rule.language} queries are not converted (eql and kuery are)")
    query = parse_rule_query(rule)
    threshold = rule.threshold if rule.type == "threshold" else None
    if rule.type == "threshold" and not isinstance(threshold, dict):
        raise ConversionRefused("the threshold rule has no [rule.threshold] table")
    return query_to_sigma(query, Meta.of(rule), threshold=threshold, flavor=flavor)
