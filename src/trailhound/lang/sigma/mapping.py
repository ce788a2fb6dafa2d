"""The Sigma taxonomy → ECS mapping of linux.yml, read once: which events a logsource selects (an EQL
condition) and what a Sigma field name means in ECS (a name no table knows is used as it is)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .. import ir
from .errors import SigmaRuleError

#: the logsource keys an entry's `match` may name
LOGSOURCE_KEYS = ("product", "category", "service")


@dataclass(frozen=True)
class Logsource:
    """One entry of `logsources`: the rules it applies to, the events they see, their field names."""

    match: tuple[tuple[str, str], ...]
    where: ir.Expr
    fields: dict[str, str]
    events: str  # "ecs": the normalized events; "auditd_records": one event per raw auditd record

    def applies(self, logsource: dict[str, str | None]) -> bool:
        """Every `match` key equals the rule's; a rule's category must be named (an unknown category
        selects nothing rather than everything), its other keys are free when `match` leaves them out."""
        if logsource.get("category") and not any(k == "category" for k, _ in self.match):
            return False
        return all((logsource.get(k) or "").lower() == v.lower() for k, v in self.match)


@dataclass(frozen=True)
class Mapping:
    logsources: tuple[Logsource, ...]
    digest: str  # of the file: part of every cached translation's key

    def select(self, logsource: dict[str, str | None]) -> Logsource | None:
        return next((entry for entry in self.logsources if entry.applies(logsource)), None)


@functools.lru_cache(maxsize=1)
def linux() -> Mapping:
    text = resources.files(__package__).joinpath("linux.yml").read_text(encoding="utf-8")
    return parse_mapping(text, "linux.yml")


def parse_mapping(text: str, source: str) -> Mapping:
    """A mapping document (the shape linux.yml documents at its top); SigmaRuleError naming what is wrong."""
    import yaml

    from ..parser import parse

    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("logsources"), list):
        raise SigmaRuleError(f"{source}: needs a list `logsources`")
    tables = doc.get("fields") or {}
    if not isinstance(tables, dict) or not all(
            isinstance(t, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in t.items())
            for t in tables.values()):
        raise SigmaRuleError(f"{source}: `fields` must map table names to Sigma name → ECS field tables")
    out = []
    for i, entry in enumerate(doc["logsources"]):
        where = f"{source}: logsources[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), dict):
            raise SigmaRuleError(f"{where}: needs a `match` table")
        match: dict[str, Any] = entry["match"]
        if any(k not in LOGSOURCE_KEYS or not isinstance(v, str) for k, v in match.items()):
            raise SigmaRuleError(f"{where}: `match` keys are {', '.join(LOGSOURCE_KEYS)}, with string values")
        table = entry.get("fields")
        if table is not None and table not in tables:
            raise SigmaRuleError(f"{where}: no field table {table!r}")
        events = entry.get("events", "ecs")
        if events not in ("ecs", "auditd_records"):
            raise SigmaRuleError(f"{where}: events is ecs or auditd_records, not {events!r}")
        query = parse("any where " + str(entry.get("where", "true")))
        assert isinstance(query, ir.EventQuery)  # `any where` parses to an event query
        out.append(Logsource(tuple(match.items()), query.filter.condition, dict(tables.get(table) or {}), events))
    return Mapping(tuple(out), hashlib.sha256(text.encode()).hexdigest()[:16])
