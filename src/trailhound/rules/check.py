"""Decide, per rule, whether Trailhound can run it: ok, unsupported (with the exact reason), or error."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import polars as pl

from ..compile.schema import FieldInfo, Schema
from ..lang import ir
from ..lang.errors import QueryError
from . import cache
from .errors import RuleError, UnsupportedError, reason_of
from .model import Rule, date_math_ms

Status = Literal["ok", "unsupported", "error"]

_POLARS_TYPE = {"long": pl.Int64, "integer": pl.Int64, "short": pl.Int64, "byte": pl.Int64, "unsigned_long": pl.Int64,
                "double": pl.Float64, "float": pl.Float64, "half_float": pl.Float64, "scaled_float": pl.Float64,
                "boolean": pl.Boolean, "date": pl.Int64, "date_nanos": pl.Int64}

#: rule types that Trailhound runs end to end
RUNNABLE_TYPES = ("eql", "query", "new_terms", "threshold")
#: why the others are not run (never skipped silently: `hunt` and `validate` print this)
UNSUPPORTED_TYPES = {
    "esql": "ES|QL rules need an ES|QL engine, which Trailhound does not have",
    "machine_learning": "machine-learning rules need Elastic's anomaly-detection jobs",
    "threat_match": "indicator-match rules need a threat-intelligence index to match against",
    "saved_query": "saved-query rules refer to a query stored in Kibana",
}


@dataclass(frozen=True)
class EcsSchema:
    version: str
    types: dict[str, str]
    arrays: frozenset[str]

    def schema(self, names: list[str]) -> Schema:
        """The engine's view of these fields as ECS types them (arrays as lists)."""
        fields = {}
        for n in names:
            t = self.types.get(n)
            if t is None:
                continue
            dt = _POLARS_TYPE.get(t, pl.String)()  # an instance, as FieldInfo.dtype (and a frame's schema) holds
            fields[n] = FieldInfo(n, pl.List(dt) if n in self.arrays else dt, t)
        return Schema(fields)

    def es_types(self) -> dict[str, str]:
        """ECS types that change comparison semantics (dates, ip, version) for the engine."""
        return {k: v for k, v in self.types.items() if v in ("date", "date_nanos", "ip", "version")}


@functools.lru_cache(maxsize=1)
def ecs() -> EcsSchema:
    data = json.loads(resources.files(__package__).joinpath("ecs_types.json").read_text())
    return EcsSchema(data["ecs_version"], data["types"], frozenset(data["arrays"]))


@dataclass(frozen=True)
class RuleCheck:
    rule: Rule
    status: Status
    reason: str = ""
    query: ir.Query | None = None
    warnings: tuple[str, ...] = field(default=())


def parse_rule_query(rule: Rule) -> ir.Query:
    """The rule's query as IR; raises QueryError (with position) when it does not parse, and
    UnsupportedError for a query language Trailhound does not have."""
    if rule.language == "eql":
        from ..lang.parser import parse  # the parsers (lark) only where a query is not in the rule cache

        return parse(rule.query or "")
    if rule.language == "kuery":
        from ..lang.kql import parse_kql_query

        return parse_kql_query(rule.query or "")
    if rule.language == "sigma":
        from .sigma import placeholders_of

        return sigma_query(rule.query or "", placeholders_of(rule))
    if rule.language in ("lucene", "esql"):
        raise UnsupportedError(f"query language {rule.language!r} is not supported"
                               + (" (Lucene query syntax)" if rule.language == "lucene" else ""))
    raise QueryError(f"query language {rule.language!r} is not supported")


def sigma_query(text: str, placeholders: Mapping[str, Sequence[str]] | None = None) -> ir.Query:
    """A Sigma rule (one YAML document, as the loader keeps it) as IR, its `|expand` placeholders given
    these values; SigmaUnsupported / SigmaRuleError."""
    from sigma.exceptions import SigmaError
    from sigma.rule import SigmaRule

    from ..lang.sigma.errors import SigmaRuleError
    from ..lang.sigma.translate import normalized, translate
    from .sigma import load_yaml

    try:
        parsed = SigmaRule.from_dict(normalized(load_yaml(text)))
    except SigmaError as e:
        raise SigmaRuleError(str(e).split("\n")[0]) from None
    return translate(parsed, {k: list(v) for k, v in (placeholders or {}).items()}, ecs_types=ecs().types).query


@functools.lru_cache(maxsize=1)
def sigma_fingerprint() -> str:
    """Of the Sigma translator and its mapping: part of the cache key of every Sigma rule's outcome."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    folder = Path(__file__).resolve().parents[1] / "lang" / "sigma"
    for p in sorted(folder.iterdir()):
        if p.suffix in (".py", ".yml"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def check_rule(rule: Rule) -> RuleCheck:
    """ok, unsupported or error, with the reason; never raises: whatever goes wrong while
    checking a rule is that rule's error (or, for a feature we lack, its unsupported reason)."""
    try:
        return _check(rule)
    except UnsupportedError as e:
        return RuleCheck(rule, "unsupported", reason_of(e))
    except Exception as e:  # noqa: BLE001 - a hostile rule must not stop the others
        return RuleCheck(rule, "error", reason_of(e))


def _check(rule: Rule) -> RuleCheck:
    if rule.type == "query" and rule.language == "lucene":
        return RuleCheck(rule, "unsupported", "Lucene query syntax is not supported; KQL (kuery) and EQL are")
    if rule.type == "sigma_correlation":
        return _check_correlation(rule)
    if rule.type in ("esql", "machine_learning", "threat_match", "saved_query"):
        return RuleCheck(rule, "unsupported", UNSUPPORTED_TYPES[rule.type])
    if rule.extra.get("filters"):
        # ignoring them would widen the rule: better not run it than raise alerts Kibana would not
        return RuleCheck(rule, "unsupported", "query-DSL `filters` are not supported; fold them into the query")
    query, error, status = _parsed_and_compiled(rule)
    if query is None:
        return RuleCheck(rule, status, error or "")
    # raw audit records have their own field names (type, a0, exe...), not ECS's
    warnings = () if reads_audit_records(rule) else tuple(_field_warnings(query))
    if error is not None:
        return RuleCheck(rule, status, error, query, warnings)
    try:
        if rule.type == "new_terms":
            date_math_ms(rule.new_terms_spec()[1])
        elif rule.type == "threshold":
            rule.threshold_spec()
        rule.suppression_spec()
        rule.interval_ns()
    except UnsupportedError as e:
        return RuleCheck(rule, "unsupported", reason_of(e), query, warnings)
    except (RuleError, ValueError) as e:
        return RuleCheck(rule, "error", reason_of(e), query, warnings)
    if rule.type not in RUNNABLE_TYPES:
        return RuleCheck(rule, "unsupported", UNSUPPORTED_TYPES[rule.type], query, warnings)
    return RuleCheck(rule, "ok", "", query, warnings)


def reads_audit_records(rule: Rule) -> bool:
    if rule.language != "sigma":
        return False
    from ..lang.sigma.mapping import linux

    entry = linux().select((rule.extra.get("sigma") or {}).get("logsource") or {})
    return entry is not None and entry.events == "auditd_records"


def _check_correlation(rule: Rule) -> RuleCheck:
    """A Sigma correlation: its spec must read (the rules it names are found when the hunt runs)."""
    import yaml

    from ..lang.sigma.correlation import correlation_spec

    correlation_spec(yaml.safe_load(rule.query or ""))
    return RuleCheck(rule, "ok")


def _parsed_and_compiled(rule: Rule) -> tuple[ir.Query | None, str | None, Status]:
    """(query, None, "ok") when it parses and compiles; (None, why, status) or (query, why, status)
    when not, status being "unsupported" for a feature we lack, else "error". Cached, except
    for failures other than QueryError and UnsupportedError (a defect, or memory)."""
    key: tuple = (rule.language, rule.query, rule.event_category_override)
    if rule.language == "sigma":
        from .sigma import placeholders_of

        key += (sigma_fingerprint(), tuple(sorted(placeholders_of(rule).items())))
    hit = cache.get(key)
    if hit is not None:
        return hit
    cacheable = True
    query = None
    outcome: tuple[ir.Query | None, str | None, Status]
    try:
        query = parse_rule_query(rule)
        _compile(query, rule)
        outcome = (query, None, "ok")
    except UnsupportedError as e:  # first: an unsupported error may also be a QueryError
        outcome = (query, reason_of(e), "unsupported")
    except QueryError as e:
        outcome = (query, e.render(), "error")
    except Exception as e:  # noqa: BLE001 - e.g. RecursionError on a deeply nested query
        outcome, cacheable = (query, f"the query cannot be parsed or compiled: {reason_of(e)}", "error"), False
    if cacheable:
        cache.put(key, outcome)
    return outcome


def _compile(query: ir.Query, rule: Rule) -> None:
    """Compile every filter with both backends against ECS's field types. (Imported here: a rule
    found in the cache needs neither, and sqlglot alone costs a tenth of a second to import.)"""
    from ..compile.polars import PolarsCompiler
    from ..compile.sql import SqlCompiler

    category_field = rule.event_category_override or "event.category"
    schema = ecs().schema([f.path for f in ir.query_fields(query)] + [category_field])
    for backend in (PolarsCompiler(schema), SqlCompiler(schema)):
        for f in ir.query_filters(query):
            backend.category(f.category, category_field)
            backend.predicate(f.condition)


def _field_warnings(query: ir.Query) -> list[str]:
    schema = ecs()
    out = []
    for f in ir.query_fields(query):
        if f.path not in schema.types and not f.optional:
            out.append(f"field {f.path!r} is not in ECS {schema.version}")
    return out
