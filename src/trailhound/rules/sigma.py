"""Sigma YAML files → Rule objects beside the TOML ones: pySigma parses and checks each document (a rule
it refuses is a load error with pySigma's reason); the rule's metadata becomes the Rule's (level →
severity and risk score, tags → threat, author, references, false positives, status), and the
document itself, as YAML, is the Rule's query (language "sigma"), which `check` translates to the IR.

A correlation rule (Sigma v2) is a Rule of type "sigma_correlation"; the rules it names are marked, so
that they raise no alerts of their own unless it says `generate: true`."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from .errors import RuleError
from .model import Rule

#: Sigma level → (Kibana severity, risk score), as Elastic's own Sigma conversion does
LEVELS = {"informational": ("low", 21), "low": ("low", 21), "medium": ("medium", 47), "high": ("high", 73),
          "critical": ("critical", 99)}
SIGMA_LANGUAGE = "sigma"
CORRELATION_TYPE = "sigma_correlation"
_ATTACK = "https://attack.mitre.org"
#: MITRE ATT&CK enterprise tactics: Sigma's tag (attack.<name>) → (id, name)
TACTICS = {
    "reconnaissance": ("TA0043", "Reconnaissance"), "resource_development": ("TA0042", "Resource Development"),
    "initial_access": ("TA0001", "Initial Access"), "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"), "privilege_escalation": ("TA0004", "Privilege Escalation"),
    "defense_evasion": ("TA0005", "Defense Evasion"), "credential_access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"), "lateral_movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"), "command_and_control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"), "impact": ("TA0040", "Impact"),
}
_TECHNIQUE = re.compile(r"t(\d{4})(?:\.(\d{3}))?", re.ASCII)


def is_sigma_file(path) -> bool:
    return str(path).endswith((".yml", ".yaml"))


#: top-level keys of which a Sigma document has at least one
SIGMA_KEYS = ("detection", "correlation", "filter", "logsource", "action")


def rules_from_yaml(text: str, source: str, explicit: bool = True) -> list[Rule]:
    """Every rule of a Sigma YAML file (one or more documents); RuleError for the first that pySigma
    refuses, naming the document and pySigma's reason. A file found in a directory (not `explicit`)
    whose documents have none of Sigma's keys is some other YAML (a tool's configuration): no rules."""
    import yaml
    from sigma.exceptions import SigmaError

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise RuleError(source, None, f"invalid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if not explicit and not any(isinstance(d, dict) and any(k in d for k in SIGMA_KEYS) for d in docs):
        return []
    if not docs:
        raise RuleError(source, None, "no Sigma rule in this YAML file")
    out: list[Rule] = []
    for i, doc in enumerate(docs):
        where = f"document {i + 1}: " if len(docs) > 1 else ""
        if not isinstance(doc, dict):
            raise RuleError(source, None, f"{where}a Sigma rule is a mapping, not {type(doc).__name__}")
        if "action" in doc:
            raise RuleError(source, None, f"{where}Sigma's legacy multi-document `action` is not supported")
        try:
            out.append(_rule(doc, source, where))
        except SigmaError as e:
            raise RuleError(source, None, f"{where}{_sigma_reason(e)}") from None
    return out


def _sigma_reason(e: Exception) -> str:
    text = str(e).split("\n")[0]
    return re.sub(r"\s*in (?:file )?\S+:\d+.*$", "", text) or type(e).__name__


def _rule(doc: dict, source: str, where: str) -> Rule:
    import yaml
    from sigma.correlations import SigmaCorrelationRule
    from sigma.rule import SigmaRule

    from ..lang.sigma.translate import normalized

    if "correlation" in doc:
        parsed: Any = SigmaCorrelationRule.from_dict(doc)
        kind = CORRELATION_TYPE
    elif "detection" in doc:
        parsed = SigmaRule.from_dict(normalized(doc))
        kind = "eql"
    elif "filter" in doc:
        raise RuleError(source, None, f"{where}Sigma filters (meta-rules that narrow others) are not supported")
    else:
        raise RuleError(source, None, f"{where}not a Sigma rule: it has no `detection` or `correlation`")
    if parsed.errors:
        raise parsed.errors[0]
    title = parsed.title or ""
    if not title.strip():
        raise RuleError(source, "title", f"{where}a Sigma rule needs a title")
    level = str(parsed.level).lower() if parsed.level is not None else "medium"
    severity, risk = LEVELS.get(level, ("medium", 47))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    rule_id = str(parsed.id) if parsed.id else str(uuid.UUID(hashlib.sha256(text.encode()).hexdigest()[:32]))
    tags = tuple(f"{t.namespace}.{t.name}" for t in parsed.tags)
    sigma = {"level": level, "status": str(parsed.status).lower() if parsed.status is not None else None,
             "name": parsed.name, "logsource": _logsource(parsed), "date": _text(parsed.date),
             "modified": _text(parsed.modified)}
    if kind == CORRELATION_TYPE:
        sigma["correlation"] = {"type": parsed.type.name.lower(), "generate": bool(parsed.generate),
                                "rules": [str(r.reference) for r in parsed.rules or ()],
                                "group_by": list(parsed.group_by or ()), "timespan": parsed.timespan.spec}
    return Rule(
        rule_id=rule_id, name=title, type=kind, severity=severity, risk_score=risk,
        description=parsed.description or "", language=SIGMA_LANGUAGE, query=text, tags=tags,
        threat=threat_of(tags), references=tuple(parsed.references or ()),
        false_positives=tuple(str(f) for f in parsed.falsepositives or ()),
        author=(parsed.author,) if parsed.author else (), license=parsed.license,
        extra={"sigma": sigma}, source=source,
    )


def _logsource(parsed) -> dict[str, str] | None:
    ls = getattr(parsed, "logsource", None)
    if ls is None:
        return None
    return {k: v for k in ("product", "category", "service") if (v := getattr(ls, k, None))}


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def threat_of(tags: tuple[str, ...]) -> tuple[dict, ...]:
    """Kibana's threat tables from `attack.*` tags: one per tactic tag; the technique tags go under
    the rule's first tactic (Sigma does not say which tactic a technique serves). Without a tactic
    tag, techniques cannot be placed (Kibana's threat needs one) and stay in the tags only."""
    tactics: list[tuple[str, str]] = []
    techniques: dict[str, dict] = {}
    for tag in tags:
        ns, _, name = tag.partition(".")
        if ns.lower() != "attack":
            continue
        name = name.lower().replace("-", "_")
        if name in TACTICS and TACTICS[name] not in tactics:
            tactics.append(TACTICS[name])
        elif m := _TECHNIQUE.fullmatch(name):
            tid = f"T{m[1]}"
            tech = techniques.setdefault(tid, {"id": tid, "name": tid, "reference": f"{_ATTACK}/techniques/{tid}/"})
            if m[2]:
                sub = f"{tid}.{m[2]}"
                subs = tech.setdefault("subtechnique", [])
                if all(s["id"] != sub for s in subs):
                    subs.append({"id": sub, "name": sub, "reference": f"{_ATTACK}/techniques/{tid}/{m[2]}/"})
    out = []
    for i, (tid, tname) in enumerate(tactics):
        entry: dict[str, Any] = {"framework": "MITRE ATT&CK",
                                 "tactic": {"id": tid, "name": tname, "reference": f"{_ATTACK}/tactics/{tid}/"}}
        if i == 0 and techniques:
            entry["technique"] = list(techniques.values())
        out.append(entry)
    return tuple(out)
