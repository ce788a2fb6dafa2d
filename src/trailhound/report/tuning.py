"""Tuning: which rules are noisy, which field values dominate their alerts, and the exception
entry (detection-rules exception TOML) that would silence that value, for a person to review.

Over a hunt of known-benign data every alert is a false positive: a rule whose alerts mostly
share one parent executable or one user is asking for an exception on that value. Entries are
`match` entries (exact, case-sensitive), the only kind a reviewer can check at a glance.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

# The fields whose values tell benign activity apart, in the order an analyst reads them.
TUNING_FIELDS = ("process.parent.executable", "process.executable", "process.name", "user.name", "host.name",
                 "process.working_directory", "file.path", "source.ip", "destination.ip", "process.command_line")
DOMINANT_SHARE = 0.5  # a value on at least half of a rule's alerts dominates them
TOP_VALUES = 5
MAX_DISTINCT = 1000  # per rule and field: past it, the field has no dominant value worth an exception
ALERT_ENTRY_FIELDS = ("process.executable", "process.parent.executable", "user.name", "host.name", "file.path",
                      "source.ip")


def _scalar(value: Any) -> str | int | float | bool | None:
    if isinstance(value, list):
        return value[0] if len(value) == 1 and not isinstance(value[0], dict | list) else None
    return None if isinstance(value, dict) else value


class NoiseTally:
    """Counts, per rule, the values of `TUNING_FIELDS` over its alerts (a sequence counted once,
    through its shell alert, whose fields are those all its events share)."""

    def __init__(self) -> None:
        self.hits: Counter = Counter()
        self.values: dict[int, dict[str, Counter]] = {}
        self.overflow: dict[int, set[str]] = {}

    def add(self, rule: int, flat: Mapping) -> None:
        self.hits[rule] += 1
        per_field = self.values.setdefault(rule, {})
        full = self.overflow.setdefault(rule, set())
        for name in TUNING_FIELDS:
            if name in full:
                continue
            value = _scalar(flat.get(name))
            if value is None or value == "":
                continue
            counter = per_field.setdefault(name, Counter())
            counter[value] += 1
            if len(counter) > MAX_DISTINCT:
                full.add(name)
                del per_field[name]

    def ranked(self, rules: Sequence[dict]) -> list[dict]:
        """Rules by number of hits (alerts, a sequence counted once), most first, each with its
        top values per field, the dominant ones, and the exception entries they suggest."""
        out = []
        for rule, hits in sorted(self.hits.items(), key=lambda kv: (-kv[1], rules[kv[0]]["name"])):
            fields, dominant = [], []
            for name in TUNING_FIELDS:
                counter = self.values.get(rule, {}).get(name)
                if not counter:
                    continue
                top = counter.most_common(TOP_VALUES)
                fields.append({"field": name, "distinct": len(counter),
                               "top": [{"value": v, "count": c} for v, c in top]})
                value, count = top[0]
                if count / hits >= DOMINANT_SHARE and name != "process.command_line":
                    dominant.append({"field": name, "value": value, "count": count, "share": round(count / hits, 3)})
            named = {d["field"] for d in dominant}
            # the executable says what the name does, with its directory
            useful = [d for d in dominant if not (d["field"] == "process.name" and "process.executable" in named)]
            entries = [entry(d["field"], d["value"]) for d in useful[:3]]
            r = rules[rule]
            out.append({"rule": rule, "hits": hits, "fields": fields, "dominant": dominant, "entries": entries,
                        "toml": exception_toml(r["rule_id"], r["name"], [entries]) if entries else None})
        return out


def entry(name: str, value: Any) -> dict:
    return {"field": name, "type": "match", "operator": "included", "value": str(value)}


def alert_entries(flat: Mapping, query_fields: Sequence[str] = ()) -> list[dict]:
    """The entries of an exception that would except this alert's event: the single values of
    `ALERT_ENTRY_FIELDS` it carries (the page's script builds the same in the browser)."""
    out = []
    for name in ALERT_ENTRY_FIELDS:
        value = _scalar(flat.get(name))
        if value is not None and value != "":
            out.append(entry(name, value))
    return out


_TOML_ESCAPED = re.compile('[\\\\"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]')


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes, control characters and the invisible ones that
    reorder or break text (bidi controls, U+2028) escaped; everything else as it is."""
    def esc(m: re.Match) -> str:
        c = m.group(0)
        return {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c, f"\\u{ord(c):04X}")
    return '"' + _TOML_ESCAPED.sub(esc, text) + '"'


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60] or "rule"


def exception_toml(rule_id: str, rule_name: str, items: Sequence[Sequence[dict]], note: str = "") -> str:
    """A detection-rules exception list for one rule: one item per entry list (an item excepts an
    event when all its entries hold). Load it with `hunt --exceptions FILE`."""
    slug = _slug(rule_name or rule_id)
    lines = [
        "# Review before use: an exception hides every future event that matches it." + (f" {note}" if note else ""),
        "[metadata]",
        f"list_name = {toml_string('Tuning: ' + rule_name)}",
        f"rule_ids = [{toml_string(rule_id)}]",
        "rule_names = []",
        "",
        "[[exceptions]]",
        "[exceptions.container]",
        f"list_id = {toml_string('tuning-' + slug)}",
        f"name = {toml_string('Tuning: ' + rule_name)}",
        f"description = {toml_string('Suggested by trailhound report from the values that dominate the alerts')}",
        'namespace_type = "single"',
        'type = "detection"',
    ]
    for n, entries in enumerate(items):
        lines += [
            "",
            "[[exceptions.items]]",
            f"name = {toml_string(f'{rule_name} #{n + 1}')}",
            f"item_id = {toml_string(f'tuning-{slug}-{n + 1}')}",
            f"list_id = {toml_string('tuning-' + slug)}",
            'type = "simple"',
            f"description = {toml_string('Values shared by the alerts of ' + rule_name)}",
            "entries = [",
            *(f"  {{ field = {toml_string(e['field'])}, type = {toml_string(e['type'])}, "
              f"operator = {toml_string(e['operator'])}, value = {toml_string(str(e['value']))} }},"
              for e in entries),
            "]",
        ]
    return "\n".join(lines) + "\n"


def exception_files(tuning: Sequence[dict], rules: Sequence[dict]) -> dict[str, str]:
    """File name → TOML, one exception list per rule that has a dominant value."""
    out: dict[str, str] = {}
    for t in tuning:
        if not t["toml"]:
            continue
        r = rules[t["rule"]]
        name = f"{_slug(r['name'] or r['rule_id'])}.exceptions.toml"
        n = 2
        while name in out:
            name = f"{_slug(r['name'] or r['rule_id'])}-{n}.exceptions.toml"
            n += 1
        out[name] = t["toml"]
    return out
