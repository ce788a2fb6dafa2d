"""Detection rules in Elastic's detection-rules shape (the `[rule]` table of their TOML files)."""

from __future__ import annotations

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

        spec = self.new_terms or {}
        fields = spec.get("value")
        if not (isinstance(fields, list) and fields and all(isinstance(f, str) for f in fields)):
            raise RuleError(self.source, "new_terms", "needs value = [fields...]")
        history = [h.get("value") for h in spec.get("history_window_start", []) if isinstance(h, dict)]
        if not history or not isinstance(history[0], str):
            raise RuleError(self.source, "new_terms", "needs [[rule.new_terms.history_window_start]] value = \"now-...\"")
        return fields, history[0]

    def threshold_spec(self):
        """The ThresholdSpec of a threshold rule; raises RuleError when malformed."""
        from ..engine.new_terms import date_math_span_ms
        from ..engine.threshold import ThresholdSpec
        from .errors import RuleError

        spec = self.threshold or {}
        fields = spec.get("field", [])
        fields = [fields] if isinstance(fields, str) else fields
        value = spec.get("value")
        if not isinstance(value, int) or value < 1 or not all(isinstance(f, str) for f in fields):
            raise RuleError(self.source, "threshold", "needs field = [fields...] and a whole-number value ≥ 1")
        card = tuple((c["field"], int(c["value"])) for c in spec.get("cardinality", []) if "field" in c and "value" in c)
        try:
            lookback = date_math_span_ms(self.lookback or "now-6m")
        except ValueError as e:
            raise RuleError(self.source, "from", str(e)) from None
        return ThresholdSpec(tuple(fields), value, card, self.interval_ns(), lookback * 1_000_000)

    def interval_ns(self) -> int:
        """The schedule's interval (Kibana's default 5m)."""
        from ..engine.new_terms import date_math_span_ms
        from .errors import RuleError

        try:
            return date_math_span_ms("now-" + (self.interval or "5m")) * 1_000_000
        except ValueError as e:
            raise RuleError(self.source, "interval", str(e)) from None

    def suppression_spec(self) -> SuppressionSpec | None:
        """The rule's alert suppression, or None; raises RuleError when malformed."""
        from .errors import RuleError

        spec = self.alert_suppression
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise RuleError(self.source, "alert_suppression", "must be a table")
        group_by = spec.get("group_by", [])
        if self.type == "threshold":
            if group_by:
                raise RuleError(self.source, "alert_suppression",
                                "threshold rules group by their threshold fields; only duration is allowed")
            group_by = self.threshold_spec().fields
        elif not (isinstance(group_by, list) and 1 <= len(group_by) <= 3 and all(isinstance(g, str) for g in group_by)):
            raise RuleError(self.source, "alert_suppression", "group_by must list 1 to 3 fields")
        duration = spec.get("duration")
        duration_ns = None
        if duration is not None:
            if not (isinstance(duration, dict) and duration.get("unit") in _UNIT_NS
                    and isinstance(duration.get("value"), int) and duration["value"] > 0):
                raise RuleError(self.source, "alert_suppression",
                                "duration needs a whole value > 0 and a unit of s, m or h")
            duration_ns = duration["value"] * _UNIT_NS[duration["unit"]]
        elif self.type == "threshold":
            raise RuleError(self.source, "alert_suppression", "a threshold rule's suppression needs a duration")
        strategy = spec.get("missing_fields_strategy", "suppress")
        if strategy not in ("suppress", "doNotSuppress"):
            raise RuleError(self.source, "alert_suppression",
                            f"missing_fields_strategy {strategy!r} is not suppress or doNotSuppress")
        return SuppressionSpec(tuple(group_by), duration_ns, strategy)

    @classmethod
    def from_table(cls, table: dict[str, Any], metadata: dict | None = None, source: str | None = None) -> "Rule":
        """Build from a `[rule]` table; raises RuleError naming the key on a missing or wrong value."""
        from .errors import RuleError

        for key in REQUIRED:
            if key not in table:
                raise RuleError(source, key, "required key is missing")
        if table["type"] not in KNOWN_TYPES:
            raise RuleError(source, "type", f"unknown rule type {table['type']!r} (known: {', '.join(KNOWN_TYPES)})")
        if table["severity"] not in SEVERITIES:
            raise RuleError(source, "severity", f"{table['severity']!r} is not one of {', '.join(SEVERITIES)}")
        risk = table["risk_score"]
        if not isinstance(risk, int) or isinstance(risk, bool) or not 0 <= risk <= 100:
            raise RuleError(source, "risk_score", f"{risk!r} is not a whole number from 0 to 100")
        if table["type"] in QUERY_TYPES and not isinstance(table.get("query"), str):
            raise RuleError(source, "query", f"a {table['type']} rule needs a query string")
        for key in ("tags", "index", "references", "false_positives"):
            if key in table and not (isinstance(table[key], list) and all(isinstance(v, str) for v in table[key])):
                raise RuleError(source, key, "must be a list of strings")
        for key, needs in (("exceptions_list", ("list_id",)), ("severity_mapping", ("field", "value", "severity")),
                           ("risk_score_mapping", ("field",))):
            items = table.get(key, [])
            if not (isinstance(items, list) and all(isinstance(i, dict) and all(n in i for n in needs) for i in items)):
                raise RuleError(source, key, f"must be a list of tables with {', '.join(needs)}")
        for item in table.get("severity_mapping", []):
            if item["severity"] not in SEVERITIES:
                raise RuleError(source, "severity_mapping", f"{item['severity']!r} is not one of {', '.join(SEVERITIES)}")
        max_signals = table.get("max_signals", 100)
        if not isinstance(max_signals, int) or max_signals < 1:
            raise RuleError(source, "max_signals", f"{max_signals!r} is not a whole number ≥ 1")
        return cls(
            rule_id=str(table["rule_id"]), name=str(table["name"]), type=table["type"], severity=table["severity"],
            risk_score=risk, description=str(table["description"]), language=table.get("language"),
            query=table.get("query"), tags=tuple(table.get("tags", ())), threat=tuple(table.get("threat", ())),
            index=tuple(table.get("index", ())), lookback=table.get("from"), interval=table.get("interval"),
            timestamp_override=table.get("timestamp_override"),
            event_category_override=table.get("event_category_override"),
            tiebreaker_field=table.get("tiebreaker_field"), timestamp_field=table.get("timestamp_field"),
            building_block_type=table.get("building_block_type"), max_signals=max_signals,
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
