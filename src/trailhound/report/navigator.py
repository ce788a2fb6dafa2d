"""An ATT&CK Navigator layer of what fired: one technique entry per (tactic, technique), scored by
its number of alerts, with the rules that raised them in the comment."""

from __future__ import annotations

from collections import defaultdict

from .model import ReportData

LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "4.9.1"
ATTACK_VERSION = "14"


def tactic_shortname(name: str) -> str:
    """The Navigator's tactic key: 'Command and Control' → 'command-and-control'."""
    return "-".join(name.lower().split())


def navigator_layer(data: ReportData, name: str = "Trailhound alerts") -> dict:
    counts = data.by_technique()
    per_rule: dict[tuple, set[str]] = defaultdict(set)
    fired = set(data.columns["ru"])
    for i in fired:
        for t in data.rules[i]["attack"]:
            per_rule[tuple(t)].add(data.rules[i]["name"])
    techniques = []
    for (tactic_id, tactic, tech_id, tech_name), n in sorted(counts.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        entry = {"techniqueID": tech_id, "score": n, "enabled": True, "showSubtechniques": "." in tech_id,
                 "comment": f"{n} alerts: " + "; ".join(sorted(per_rule[(tactic_id, tactic, tech_id, tech_name)]))}
        if tactic:
            entry["tactic"] = tactic_shortname(tactic)
        techniques.append(entry)
    top = max(counts.values(), default=1)
    return {
        "name": name,
        "versions": {"attack": ATTACK_VERSION, "navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION},
        "domain": "enterprise-attack",
        "description": f"{data.count} alerts from {len(data.rules)} rules, scored by alerts per technique "
                       "(written by trailhound report)",
        "sorting": 3,
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": ["#fff3e0", "#e65100"], "minValue": 0, "maxValue": top},
        "legendItems": [],
        "metadata": [],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": True,
    }
