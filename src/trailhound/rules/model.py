"""Detection rules in Elastic's detection-rules shape (the `[rule]` table of their TOML files)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: keys every rule must have, and what Kibana requires of their values
REQUIRED = ("rule_id", "name", "type", "severity", "risk_score", "description")
SEVERITIES = ("low", "medium", "high", "critical")
QUERY_TYPES = ("eql", "query", "new_terms", "threshold", "threat_match", "esql", "saved_query")
KNOWN_TYPES = QUERY_TYPES + ("machine_learning",)

_FIELDS = (
    "rule_id", "name", "type", "language", "query", "severity", "risk_score", "description", "tags", "threat",
    "index", "from", "interval", "timestamp_override", "event_category_override", "tiebreaker_field",
    "timestamp_field", "building_block_type", "max_signals", "new_terms", "threshold", "alert_suppression",
    "note", "setup", "references", "false_positives", "author", "license", "exceptions_list",
    "severity_mapping", "risk_score_mapping", "rule_name_override",
)


@dataclass(frozen=True)
class SuppressionSpec:
    """`[rule.alert_suppression]`: alerts with the same group_by values fold into one, per
    rule execution or, with a duration, for that long after the first."""

    group_by: tuple[str, ...]
    duration_ns: int | None  # None: per rule execution
    missing_fields_strategy: str = "suppress"  # or "doNotSuppress"


_UNIT_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


@dataclass(frozen=True)
class Rule:
    """One rule. Keys Trailhound does not use are kept in `extra`, never dropped."""

    rule_id: str
    name: str
    type: str
    severity: str
    risk_score: int
    description: str
    language: str | None = None
    query: str | None = None
    tags: tuple[str, ...] = ()
    threat: tuple[dict, ...] = ()
    index: tuple[str, ...] = ()
    lookback: str | None = None  # `from`, e.g. "now-9m"
    interval: str | None = None
    timestamp_override: str | None = None
    event_category_override: str | None = None
    tiebreaker_field: str | None = None
    timestamp_field: str | None = None
    building_block_type: str | None = None
    max_signals: int = 100  # Kibana's default
    new_terms: dict | None = None
    threshold: dict | None = None
    alert_suppression: dict | None = None
    note: str | None = None
    setup: str | None = None
    references: tuple[str, ...] = ()
    false_positives: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    license: str | None = None
    exceptions_list: tuple[dict, ...] = ()  # [{id, list_id, namespace_type, type}]
    severity_mapping: tuple[dict, ...] = ()  # [{field, operator, value, severity}]
    risk_score_mapping: tuple[dict, ...] = ()  # [{field, operator, value}]
    rule_name_override: str | None = None
    metadata: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    source: str | None = None  # the file it came from

    def new_terms_spec(self) -> tuple[list[str], str]:
        """(fields, history_window_start) of a new_terms rule; raises RuleError when malformed."""
        from .errors import RuleError

        spec = self.new_terms if isinstance(self.new_terms, dict) else {}
        fields = spec.get("value")
        if not (isinstance(fields, list) and fields and all(isinstance(f, str) for f in fields)):
            raise RuleError(self.source, "new_terms", "needs value = [fields...]")
        windows = spec.get("history_window_start")
        history = [h.get("value") for h in windows if isinstance(h, dict)] if isinstance(windows, list) else []
        if not history or not isinstance(history[0], str):
            raise RuleError(self.source, "new_terms", "needs [[rule.new_terms.history_window_start]] value = \"now-...\"")
        return fields, history[0]

    def threshold_spec(self):
        """The ThresholdSpec of a threshold rule; raises RuleError when malformed, UnsupportedError
        when its `from` is date math the engine does not compute."""
        from ..engine.threshold import ThresholdSpec
        from .errors import RuleError

        spec = self.threshold if isinstance(self.threshold, dict) else {}
        fields = spec.get("field", [])
        fields = [fields] if isinstance(fields, str) else fields
        value = spec.get("value")
        if (not isinstance(value, int) or isinstance(value, bool) or value < 1 or not isinstance(fields, list)
                or not all(isinstance(f, str) for f in fields)):
            raise RuleError(self.source, "threshold", "needs field = [fields...] and a whole-number value ≥ 1")
        cardinality = spec.get("cardinality", [])
        if not (isinstance(cardinality, list) and all(
                isinstance(c, dict) and isinstance(c.get("field"), str) and isinstance(c.get("value"), int)
                and not isinstance(c["value"], bool) for c in cardinality)):
            raise RuleError(self.source, "threshold", "cardinality needs tables of field = \"...\" and value = N")
        card = tuple((c["field"], c["value"]) for c in cardinality)
        try:
            lookback = date_math_ms(self.lookback or "now-6m")
        except ValueError as e:
            raise RuleError(self.source, "from", str(e)) from None
        return ThresholdSpec(tuple(fields), value, card, self.interval_ns(), lookback * 1_000_000)

    def interval_ns(self) -> int:
        """The schedule's interval (Kibana's default 5m)."""
        from .errors import RuleError

        m = _INTERVAL.fullmatch(self.interval or "5m") if isinstance(self.interval or "5m", str) else None
        if m is None or int(m[1]) == 0:
            raise RuleError(self.source, "interval", f"{_show(self.interval)} is not an interval like 5m "
                                                     "(<n> > 0 then s, m, h or d)")
        return int(m[1]) * _SPAN_UNIT_MS[m[2]] * 1_000_000

    def suppression_spec(self) -> SuppressionSpec | None:
        """The rule's alert suppression, or None. Its shape was checked when the rule loaded (SCHEMA's
        alert_suppression entry and `validate`: group_by of 1 to 3 fields, or none and a duration for a
        threshold rule, which groups by its threshold fields); a threshold rule's own table may still
        raise RuleError here."""
        spec = self.alert_suppression
        if spec is None:
            return None
        group_by = self.threshold_spec().fields if self.type == "threshold" else spec["group_by"]
        duration = spec.get("duration")
        duration_ns = None if duration is None else duration["value"] * _UNIT_NS[duration["unit"]]
        return SuppressionSpec(tuple(group_by), duration_ns, spec.get("missing_fields_strategy", "suppress"))

    @classmethod
    def from_table(cls, table: dict[str, Any], metadata: Any = None, source: str | None = None) -> Rule:
        """Build from a `[rule]` table, every field checked against its schema first (types,
        ranges, enumerations, date math); raises RuleError naming the key on a missing or wrong value."""
        from .errors import RuleError

        if metadata is not None and not isinstance(metadata, dict):
            raise RuleError(source, None, "[metadata] must be a table")
        try:
            validate(table)
        except _Invalid as e:
            raise RuleError(source, e.key, e.reason) from None
        return cls(
            rule_id=table["rule_id"], name=table["name"], type=table["type"], severity=table["severity"],
            risk_score=table["risk_score"], description=table["description"], language=table.get("language"),
            query=table.get("query"), tags=tuple(table.get("tags", ())), threat=tuple(table.get("threat", ())),
            index=tuple(table.get("index", ())), lookback=table.get("from"), interval=table.get("interval"),
            timestamp_override=table.get("timestamp_override"),
            event_category_override=table.get("event_category_override"),
            tiebreaker_field=table.get("tiebreaker_field"), timestamp_field=table.get("timestamp_field"),
            building_block_type=table.get("building_block_type"), max_signals=table.get("max_signals", 100),
            new_terms=table.get("new_terms"), threshold=table.get("threshold"),
            alert_suppression=table.get("alert_suppression"), note=table.get("note"), setup=table.get("setup"),
            references=tuple(table.get("references", ())), false_positives=tuple(table.get("false_positives", ())),
            author=tuple(table.get("author", ())), license=table.get("license"),
            exceptions_list=tuple(table.get("exceptions_list", ())),
            severity_mapping=tuple(table.get("severity_mapping", ())),
            risk_score_mapping=tuple(table.get("risk_score_mapping", ())),
            rule_name_override=table.get("rule_name_override"),
            metadata=dict(metadata or {}), extra={k: v for k, v in table.items() if k not in _FIELDS}, source=source,
        )


# ---- the schema of a [rule] table ------------------------------------------------------------
# Kibana's rule API (detection-rules' api_schemas) and what the engine needs. A value of a
# wrong type would otherwise surface later, as a crash in the middle of a hunt.

#: Elasticsearch's integer: counts and limits beyond it do not fit the engine's columns
MAX_INT = 2**31 - 1
#: date math and durations reach back at most this far (their nanoseconds must fit 64 bits)
MAX_SPAN_MS = 100 * 365 * 86_400_000
_SPAN_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "H": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000,
                 "M": 30 * 86_400_000, "y": 365 * 86_400_000}
#: Elasticsearch date math anchored at now: now, then any of +<n><unit>, -<n><unit>, /<unit>
_DATE_MATH = re.compile(r"now(?:[+-][0-9]+[yMwdhHms]|/[yMwdhHms])*", re.ASCII)
_DATE_MATH_STEP = re.compile(r"[+-]([0-9]+)([yMwdhHms])", re.ASCII)
#: the form the engine computes: how far back from now
SIMPLE_DATE_MATH = re.compile(r"now-([0-9]+)([yMwdhms])", re.ASCII)
_INTERVAL = re.compile(r"([0-9]+)([smhd])", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
LANGUAGES = ("eql", "kuery", "lucene", "esql")


class _Invalid(Exception):
    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason


def _show(v: Any) -> str:
    try:
        text = repr(v)
    except RecursionError:
        return f"a deeply nested {type(v).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _text(key: str, v: Any, nonempty: bool = False) -> None:
    if not isinstance(v, str):
        raise _Invalid(key, f"must be a string, not {_show(v)}")
    if nonempty and not v.strip():
        raise _Invalid(key, "must not be empty")


def _identifier(key: str, v: Any) -> None:
    """rule_id and the like: a non-empty single-line string, without control characters."""
    _text(key, v, nonempty=True)
    if _CONTROL.search(v):
        raise _Invalid(key, f"must not hold control characters: {_show(v)}")


def _field_name(key: str, v: Any) -> None:
    """A document field name: non-empty, no control characters, of a sane length."""
    _text(key, v)
    if not v.strip():
        raise _Invalid(key, "must name a field (an empty string does not)")
    if _CONTROL.search(v):
        raise _Invalid(key, f"field name {_show(v)} holds control characters")
    if len(v) > 1024:
        raise _Invalid(key, f"field name of {len(v)} characters is too long (at most 1024)")


def _list(key: str, v: Any, item, lo: int = 0, hi: int | None = None, what: str = "items") -> None:
    if not isinstance(v, list):
        raise _Invalid(key, f"must be a list, not {_show(v)}")
    if len(v) < lo or (hi is not None and len(v) > hi):
        raise _Invalid(key, f"must list {lo} to {hi} {what}, not {len(v)}" if hi is not None
                       else f"must list at least {lo} {what}")
    for i, x in enumerate(v):
        item(f"{key}[{i}]", x)


def _strings(key: str, v: Any) -> None:
    if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        raise _Invalid(key, f"must be a list of strings, not {_show(v)}")


def _int(key: str, v: Any, lo: int, hi: int = MAX_INT) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _Invalid(key, f"{_show(v)} is not a whole number from {lo} to {hi}")


def _bool(key: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise _Invalid(key, f"must be true or false, not {_show(v)}")


def _enum(key: str, v: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(v, str) or v not in choices:
        raise _Invalid(key, f"{_show(v)} is not one of {', '.join(choices)}")


def _table(key: str, v: Any, fields: dict, required: tuple[str, ...] = (), closed: bool = True) -> None:
    """A table whose keys each pass their check; `closed`: keys not in `fields` are refused
    (a misspelt key would otherwise be ignored and change what the rule means)."""
    if not isinstance(v, dict):
        raise _Invalid(key, f"must be a table, not {_show(v)}")
    for name in required:
        if name not in v:
            raise _Invalid(key, f"needs {name}")
    for name, value in v.items():
        check = fields.get(name)
        if check is None:
            if closed:
                raise _Invalid(key, f"unknown key {name!r} (known: {', '.join(fields)})")
            continue
        check(f"{key}.{name}", value)


def _tables(key: str, v: Any, fields: dict, required: tuple[str, ...] = (), closed: bool = True, **bounds) -> None:
    _list(key, v, lambda k, x: _table(k, x, fields, required, closed), **bounds)


def date_math_ms(expr: str) -> int:
    """How far back from now Elasticsearch date math of the simple form `now-<n><unit>` reaches;
    raises UnsupportedError for other valid date math (rounding, several steps), ValueError otherwise."""
    from .errors import UnsupportedError

    m = SIMPLE_DATE_MATH.fullmatch(expr) if isinstance(expr, str) else None
    if m is None:
        if isinstance(expr, str) and _DATE_MATH.fullmatch(expr):
            raise UnsupportedError(f"date math {expr!r} is valid, but only now-<n><unit> is supported")
        raise ValueError(f"{_show(expr)} is not date math like now-6m")
    return int(m[1]) * _SPAN_UNIT_MS[m[2]]


def _date_math(key: str, v: Any) -> None:
    _text(key, v)
    if not _DATE_MATH.fullmatch(v):
        raise _Invalid(key, f"{_show(v)} is not date math like now-6m (now, then -<n><unit>, +<n><unit> or "
                            "/<unit>, with unit y, M, w, d, h, H, m or s)")
    for n, unit in _DATE_MATH_STEP.findall(v):
        if len(n) > 15 or int(n) * _SPAN_UNIT_MS[unit] > MAX_SPAN_MS:
            raise _Invalid(key, f"{_show(v)} reaches too far (at most 100 years)")


def _lookback(key: str, v: Any) -> None:
    _date_math(key, v)
    if v == "now" or v.startswith("now+"):
        raise _Invalid(key, f"{_show(v)} must reach back from now, e.g. now-6m")


def _interval(key: str, v: Any) -> None:
    _text(key, v)
    m = _INTERVAL.fullmatch(v)
    if m is None:
        raise _Invalid(key, f"{_show(v)} is not an interval like 5m (<n> then s, m, h or d)")
    if len(m[1]) > 15 or not 0 < int(m[1]) * _SPAN_UNIT_MS[m[2]] <= MAX_SPAN_MS:
        raise _Invalid(key, f"{_show(v)} must be longer than 0 and at most 100 years")


def _threshold_fields(key: str, v: Any) -> None:
    if isinstance(v, str):  # Kibana's older API took one field as a string
        _field_name(key, v)
    else:
        _list(key, v, _field_name, 0, 5, "fields")


def _suppression_duration(key: str, v: Any) -> None:
    _table(key, v, {"unit": lambda k, x: _enum(k, x, tuple(_UNIT_NS)), "value": lambda k, x: _int(k, x, 1)},
           required=("unit", "value"))
    if v["value"] * _UNIT_NS[v["unit"]] > MAX_SPAN_MS * 1_000_000:
        raise _Invalid(key, "must be at most 100 years")


_THREAT_ITEM = {"id": _identifier, "name": _text, "reference": _text}
_THREAT = {
    "framework": lambda k, v: _text(k, v, nonempty=True),
    "tactic": lambda k, v: _table(k, v, _THREAT_ITEM, ("id", "name")),
    "technique": lambda k, v: _tables(k, v, {**_THREAT_ITEM, "subtechnique": lambda k2, v2: _tables(
        k2, v2, _THREAT_ITEM, ("id", "name"))}, ("id", "name")),
}
_ANY_TABLE: dict = {}  # open tables: any keys


class _StringValues(dict):
    """Checks for an open table whose every value is a string (Kibana's exceptions_list items)."""

    def get(self, key, default=None):
        return super().get(key, _text)


_EXCEPTIONS_LIST = _StringValues({
    "id": _text, "list_id": lambda k, v: _text(k, v, nonempty=True),
    "namespace_type": lambda k, v: _enum(k, v, ("single", "agnostic")), "type": _text})

#: [rule] keys and their checks; keys not listed here are kept in Rule.extra unchecked
SCHEMA: dict[str, Any] = {
    "rule_id": _identifier,
    "name": lambda k, v: _text(k, v, nonempty=True),  # control characters: neutralized where printed
    "description": _text,
    "type": lambda k, v: _enum(k, v, KNOWN_TYPES),
    "language": lambda k, v: _enum(k, v, LANGUAGES),
    "query": _text,
    "severity": lambda k, v: _enum(k, v, SEVERITIES),
    "risk_score": lambda k, v: _int(k, v, 0, 100),
    "tags": _strings, "index": _strings, "references": _strings, "false_positives": _strings, "author": _strings,
    "threat": lambda k, v: _tables(k, v, _THREAT, ("framework",)),
    "from": _lookback,
    "to": _date_math,
    "interval": _interval,
    "max_signals": lambda k, v: _int(k, v, 1),
    "timestamp_override": _field_name, "event_category_override": _field_name, "tiebreaker_field": _field_name,
    "timestamp_field": _field_name, "rule_name_override": _field_name,
    "building_block_type": lambda k, v: _enum(k, v, ("default",)),
    "new_terms": lambda k, v: _table(k, v, {
        "field": lambda k2, v2: _text(k2, v2, nonempty=True),
        "value": lambda k2, v2: _list(k2, v2, _field_name, 1, 3, "fields"),
        "history_window_start": lambda k2, v2: _tables(k2, v2, {
            "field": lambda k3, v3: _text(k3, v3, nonempty=True), "value": _lookback}, ("value",), lo=1, hi=1),
    }, required=("value", "history_window_start")),
    "threshold": lambda k, v: _table(k, v, {
        "field": _threshold_fields,
        "value": lambda k2, v2: _int(k2, v2, 1),
        "cardinality": lambda k2, v2: _tables(k2, v2, {"field": _field_name, "value": lambda k3, v3: _int(k3, v3, 1)},
                                              ("field", "value")),
    }, required=("value",)),
    "alert_suppression": lambda k, v: _table(k, v, {
        "group_by": lambda k2, v2: _list(k2, v2, _field_name, 1, 3, "fields"),
        "duration": _suppression_duration,
        "missing_fields_strategy": lambda k2, v2: _enum(k2, v2, ("suppress", "doNotSuppress")),
    }),
    "severity_mapping": lambda k, v: _tables(k, v, {
        "field": _field_name, "operator": lambda k2, v2: _enum(k2, v2, ("equals",)), "value": _text,
        "severity": lambda k2, v2: _enum(k2, v2, SEVERITIES)}, ("field", "value", "severity")),
    "risk_score_mapping": lambda k, v: _tables(k, v, {
        "field": _field_name, "operator": lambda k2, v2: _enum(k2, v2, ("equals",)), "value": _text,
        "risk_score": lambda k2, v2: _int(k2, v2, 0, 100)}, ("field",)),
    "exceptions_list": lambda k, v: _tables(k, v, _EXCEPTIONS_LIST, ("list_id",), closed=False),
    "note": _text, "setup": _text, "license": _text,
    # kept in `extra`: checked so that a wrong type is named, not carried into alerts
    "enabled": _bool,
    "version": lambda k, v: _int(k, v, 1),
    "revision": lambda k, v: _int(k, v, 0),
    "throttle": _text, "timeline_id": _text, "timeline_title": _text, "data_view_id": _text,
    "meta": lambda k, v: _table(k, v, _ANY_TABLE, closed=False),
    "investigation_fields": lambda k, v: _table(k, v, {"field_names": lambda k2, v2: _list(k2, v2, _field_name)},
                                                ("field_names",)),
    "filters": lambda k, v: _tables(k, v, _ANY_TABLE, closed=False),
    "actions": lambda k, v: _tables(k, v, _ANY_TABLE, closed=False),
    "response_actions": lambda k, v: _tables(k, v, _ANY_TABLE, closed=False),
    "related_integrations": lambda k, v: _tables(k, v, _ANY_TABLE, closed=False),
    "required_fields": lambda k, v: _tables(k, v, _ANY_TABLE, closed=False),
    "anomaly_threshold": lambda k, v: _int(k, v, 0, 100),
    "machine_learning_job_id": lambda k, v: _text(k, v, nonempty=True) if isinstance(v, str) else _strings(k, v),
    "threat_index": _strings, "threat_query": _text, "threat_indicator_path": _text,
    "threat_language": lambda k, v: _enum(k, v, LANGUAGES),
    "threat_mapping": lambda k, v: _tables(k, v, _ANY_TABLE, closed=False),
    "threat_filters": lambda k, v: _tables(k, v, _ANY_TABLE, closed=False),
    "concurrent_searches": lambda k, v: _int(k, v, 1), "items_per_search": lambda k, v: _int(k, v, 1),
}


def validate(table: dict[str, Any]) -> None:
    """Check a [rule] table against SCHEMA and the rule types' own needs; raises _Invalid(key, reason)."""
    for key in REQUIRED:
        if key not in table:
            raise _Invalid(key, "required key is missing")
    kind = table["type"]
    if not isinstance(kind, str) or kind not in KNOWN_TYPES:
        raise _Invalid("type", f"unknown rule type {_show(kind)} (known: {', '.join(KNOWN_TYPES)})")
    for key, value in table.items():
        check = SCHEMA.get(key)
        if check is not None:
            check(key, value)
    if kind in QUERY_TYPES and not isinstance(table.get("query"), str):
        raise _Invalid("query", f"a {kind} rule needs a query string")
    # a threshold or new_terms rule without its table loads, and `check_rule` says what it needs
    suppression = table.get("alert_suppression")
    if suppression is not None:
        if kind == "threshold":
            if "group_by" in suppression:
                raise _Invalid("alert_suppression", "threshold rules group by their threshold fields; "
                                                    "only duration is allowed")
            if "duration" not in suppression:
                raise _Invalid("alert_suppression", "a threshold rule's suppression needs a duration")
        elif "group_by" not in suppression:
            raise _Invalid("alert_suppression", "group_by must list 1 to 3 fields")
