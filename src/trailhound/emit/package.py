"""A rule's detection package: its TOML, its Sigma rule, its query in other platforms' languages,
and a Markdown page (description, ATT&CK, data sources and required fields, each language's query,
the lab scenarios that exercise it, false positives, the investigation guide, hunting queries and a
response playbook). Pure: the caller reads the rule and the lab evidence, and writes the files."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..lang import ir
from . import ConversionRefused
from .convert import EXTENSIONS, Converted, from_rule

LANGUAGES = {"eql": "EQL", "splunk": "Splunk SPL", "kusto": "Kusto (Microsoft Sentinel ASIM)", "esql": "ES|QL",
             "lucene": "Lucene"}
_FENCE = {"eql": "eql", "splunk": "spl", "kusto": "kusto", "esql": "esql", "lucene": "text", "sigma": "yaml",
          "kuery": "text"}


@dataclass
class LabRun:
    """What one lab scenario's recorded capture gave this rule."""

    scenario: str
    title: str
    techniques: tuple[str, ...]
    commands: str
    benign: bool
    hits: int
    telemetry: list[str] = field(default_factory=list)  # one line per event of the first hit


@dataclass
class Package:
    files: dict[str, str]  # relative path → text
    refused: dict[str, str]  # target → reason


def package(rule: Any, stem: str, rule_text: str, lab: list[LabRun] | None) -> Package:
    files = {f"{stem}.toml": rule_text}
    refused: dict[str, str] = {}
    queries: dict[str, str] = {}
    sigma = from_rule(rule, "sigma", stem)
    if isinstance(sigma, Converted):
        files[f"{stem}.yml"] = sigma.text
    else:
        refused["sigma"] = sigma.reason
    for target in LANGUAGES:
        out = from_rule(rule, target, stem)
        if isinstance(out, Converted):
            queries[target] = out.text
            files[f"queries/{stem}{EXTENSIONS[target]}"] = out.text
        else:
            refused[target] = out.reason
    files["README.md"] = page(rule, stem, queries, refused, sigma.text if isinstance(sigma, Converted) else None,
                              lab)
    return Package(files, refused)


def _fields(rule: Any) -> list[str]:
    from ..rules.check import parse_rule_query

    try:
        q = parse_rule_query(rule)
    except Exception:  # noqa: BLE001 - a rule that does not parse has no field list; the page says so
        return []
    names = [f.path for f in ir.query_fields(q)]
    if rule.type == "new_terms" and isinstance(rule.new_terms, dict):
        names += [f for f in rule.new_terms.get("value", []) if isinstance(f, str)]
    if rule.type == "threshold" and isinstance(rule.threshold, dict):
        t = rule.threshold.get("field", [])
        names += [t] if isinstance(t, str) else [f for f in t if isinstance(f, str)]
    return list(dict.fromkeys(names))


def _attack(rule: Any) -> list[str]:
    lines = []
    for t in rule.threat:
        if not isinstance(t, dict):
            continue
        tactic = t.get("tactic", {}) or {}
        for tech in t.get("technique", []) or []:
            subs = tech.get("subtechnique", []) or []
            line = f"| {tactic.get('name', '')} ({tactic.get('id', '')}) | [{tech.get('id')}]({tech.get('reference')}) " \
                   f"{tech.get('name', '')} | "
            line += ", ".join(f"[{s.get('id')}]({s.get('reference')}) {s.get('name', '')}" for s in subs) or "–"
            lines.append(line + " |")
    return lines


def _section(note: str | None, heading: str) -> str | None:
    """The text under a `### heading` of the investigation guide."""
    if not note:
        return None
    m = re.search(rf"^###\s+{re.escape(heading)}\s*\n(.*?)(?=^##|\Z)", note, re.S | re.M | re.I)
    return m.group(1).strip() if m else None


def hunting_queries(fields: list[str]) -> list[tuple[str, str, str]]:
    """(what it finds, language, query) a responder runs around an alert; CAPS and the pid 12345 stand for
    the alert's values."""
    out = [("everything the host logged around the alert", "eql", 'any where host.name == "HOST"')]
    have = set(fields)
    if any(f.startswith("process.") for f in have):
        out.append(("the process's children and what they did", "eql",
                    'any where host.name == "HOST" and (process.parent.pid == 12345 or process.pid == 12345)'))
        out.append(("the same program anywhere, with its command lines", "eql",
                    'process where event.type == "start" and process.name == "NAME"'))
        out.append(("network activity of the process soon after it started", "eql",
                    'sequence by host.name, process.pid with maxspan=10m\n  [process where process.name == "NAME"]\n'
                    "  [network where true]"))
    if {"source.ip", "user.name"} & have or any(f.startswith("event.outcome") for f in have):
        out.append(("logins from the same source, successful or not", "kuery",
                    'event.category:authentication and source.ip:"SOURCE_IP"'))
        out.append(("what the account did after logging in", "eql",
                    'sequence by host.name, user.name with maxspan=1h\n  [authentication where event.outcome == '
                    '"success" and user.name == "USER"]\n  [process where event.type == "start"]'))
    if any(f.startswith("file.") for f in have):
        out.append(("other changes under .ssh directories", "eql", 'file where file.path : "*/.ssh/*"'))
    if "user.name" in have:
        out.append(("everything the account did", "eql", 'any where user.name == "USER"'))
    return out


def _playbook(rule: Any, fields: list[str]) -> list[str]:
    have = set(fields)
    tactics = {t.get("tactic", {}).get("name", "") for t in rule.threat if isinstance(t, dict)}
    contain = ["Isolate the host from the network (keep it running: memory and open sessions are evidence)."]
    if "source.ip" in have:
        contain.append("Block the source address at the firewall; end its SSH sessions (`ss -tnp`, `pkill -t`).")
    if any(f.startswith("process.") for f in have):
        contain.append("Stop the process tree the alert names, after recording it (`ps -ef --forest`).")
    contain.append("Disable the account involved, or force a password and key reset.")
    scope = ["Run the hunting queries above over every host's logs, not only this one.",
             "List the hosts the account or key reached (`trailhound query` over the auth logs of the fleet)."]
    if "Lateral Movement" in tactics or "Command and Control" in tactics:
        scope.append("Follow the outgoing SSH connections (destination, tunnels, forwarded ports) to the next hop.")
    eradicate = ["Remove keys, files and persistence the intruder added (authorized_keys, cron, systemd units).",
                 "Rotate the credentials and keys used or exposed; re-image the host if root was reached."]
    if "Credential Access" in tactics:
        eradicate.append("Disable password authentication where keys are used; enforce lockout (fail2ban, pam_faillock).")
    return (["**Contain**", ""] + [f"- {x}" for x in contain] + ["", "**Scope**", ""] + [f"- {x}" for x in scope]
            + ["", "**Eradicate**", ""] + [f"- {x}" for x in eradicate])


def page(rule: Any, stem: str, queries: dict[str, str], refused: dict[str, str], sigma: str | None,
         lab: list[LabRun] | None) -> str:
    fields = _fields(rule)
    lines = [f"# {rule.name}", "", rule.description.strip(), ""]
    lines += ["| | |", "|---|---|", f"| Rule id | `{rule.rule_id}` |", f"| Type | {rule.type} ({rule.language or '–'}) |",
              f"| Severity | {rule.severity} (risk score {rule.risk_score}) |",
              f"| Files | [`{stem}.toml`]({stem}.toml)" + (f", [`{stem}.yml`]({stem}.yml) (Sigma)" if sigma else "")
              + " |", ""]
    attack = _attack(rule)
    lines += ["## MITRE ATT&CK", ""]
    lines += (["| Tactic | Technique | Sub-technique |", "|---|---|---|"] + attack) if attack else ["Not mapped."]
    sources = [t.split(":", 1)[1].strip() for t in rule.tags if t.startswith("Data Source:")]
    lines += ["", "## Data sources and required fields", ""]
    if sources:
        lines.append("Data sources: " + ", ".join(sources) + ".")
    if rule.index:
        lines.append("Indices: " + ", ".join(f"`{i}`" for i in rule.index) + ".")
    lines += ["", "Fields the rule reads: " + (", ".join(f"`{f}`" for f in fields) or "–") + "."]
    if rule.setup:
        lines += ["", rule.setup.strip().replace("## Setup", "### Setup")]
    lines += ["", "## The query in each language", "", f"### Original ({rule.language or rule.type})", "",
              f"```{_FENCE.get(rule.language or '', 'text')}", (rule.query or "").strip(), "```", ""]
    lines += ["### Sigma", ""]
    lines += [f"```yaml\n{sigma.rstrip()}\n```" if sigma else f"Not converted: {refused.get('sigma')}", ""]
    for target, title in LANGUAGES.items():
        if target == "eql" and rule.language == "eql":
            continue
        lines += [f"### {title}", ""]
        if target in queries:
            lines += [f"```{_FENCE[target]}", queries[target].rstrip(), "```"]
        else:
            lines.append(f"Not converted: {refused.get(target)}")
        lines.append("")
    lines += ["## Lab scenarios that exercise it", ""]
    if lab is None:
        lines.append("No lab capture was given to the export (`trailhound pack export --capture DIR`).")
    else:
        firing = [r for r in lab if r.hits]
        if not firing:
            lines.append("No scenario of the recorded lab capture fires it.")
        for r in firing:
            kind = "benign baseline: a false positive" if r.benign else ", ".join(r.techniques)
            lines += [f"**{r.scenario}**: {r.title} ({kind}); {r.hits} hit{'s' if r.hits != 1 else ''}.", "",
                      "```sh", r.commands.strip(), "```", ""]
            if r.telemetry:
                lines += ["Telemetry of the first hit:", ""] + [f"- {t}" for t in r.telemetry] + [""]
    lines += ["", "## False positives and tuning", ""]
    lines += [f"- {fp}" for fp in rule.false_positives] or ["None listed."]
    tuning = _section(rule.note, "False positive analysis")
    if tuning:
        lines += ["", tuning]
    lines += ["", "## Investigation guide", ""]
    lines += [re.sub(r"^#", "##", rule.note.strip(), flags=re.M) if rule.note else "None."]
    lines += ["", "## Hunting queries", "",
              "Run around an alert with `trailhound query` over the host's logs (replace the CAPS and the pid 12345 "
              "with the alert's values), e.g. `trailhound query -l kuery '...' /var/log/audit/audit.log /var/log/auth.log`.", ""]
    for what, lang, q in hunting_queries(fields):
        lines += [f"{what.capitalize()} ({'KQL' if lang == 'kuery' else 'EQL'}):", "", f"```{_FENCE[lang]}", q, "```", ""]
    lines += ["## Response playbook", ""] + _playbook(rule, fields)
    return "\n".join(lines).rstrip() + "\n"


def telemetry_line(doc: dict) -> str:
    """One event, as a responder reads it: what happened, and the fields that tell it apart."""
    from ..alerts.build import field_value

    def get(path: str) -> Any:
        v = field_value(doc, path)
        return ",".join(map(str, v)) if isinstance(v, list) else v

    what = "/".join(str(x) for x in (get("event.category"), get("event.action")) if x)
    detail = next((f"{p} = {get(p)!r}" for p in ("process.command_line", "file.path", "message") if get(p)), "")
    who = ", ".join(f"{p} = {get(p)!r}" for p in ("user.name", "source.ip") if get(p))
    return " · ".join(x for x in (what, detail, who) if x)


__all__ = ["ConversionRefused", "LabRun", "Package", "package", "page", "telemetry_line"]
