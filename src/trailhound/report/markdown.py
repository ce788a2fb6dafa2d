"""A Markdown summary of the alerts for a ticket: counts, rules, hosts, users, the most severe
alerts, what was read and what could not run. Every value from the logs is escaped so that a
ticket system renders it as text (no link, no markup, no raw HTML, one line per cell)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

from .model import SEVERITIES, ReportData

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&:])")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
MAX_ALERTS = 20
MAX_CELL = 200


def md(text) -> str:
    """Text as inert Markdown on one line: punctuation escaped, control and bidi characters as
    visible escapes, cut at MAX_CELL characters."""
    s = str(text)
    s = s if len(s) <= MAX_CELL else s[:MAX_CELL - 1] + "…"
    s = _CONTROL.sub(lambda m: "\\u%04x" % ord(m.group(0)), s)
    return _SPECIAL.sub(r"\\\1", s)


def _table(heads: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|",
            *("| " + " | ".join(str(c) for c in r) + " |" for r in rows)]


def _time(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def markdown_summary(data: ReportData, title: str = "Trailhound report") -> str:
    col = data.columns
    times = [t for t in col["tm"] if t is not None]
    lines = [f"# {md(title)}", ""]
    span = f", from {_time(min(times))} to {_time(max(times))} UTC" if times else ""
    lines.append(f"**{data.count} alerts** from {len(data.rules)} rules{span}.")
    s = data.summary
    if s:
        inputs = s.get("inputs") or {}
        lines.append(f"{s.get('rules_run', 0)} rules run over {len(inputs.get('files') or [])} inputs "
                     f"({inputs.get('events', 0)} events, {inputs.get('bad_lines', 0)} bad lines).")
    lines += ["", "## By severity", ""]
    sev = data.by("severity")
    lines += _table(["severity", "alerts"], [[s_, sev.get(s_, 0)] for s_ in reversed(SEVERITIES)])
    per_rule = Counter(col["ru"])
    lines += ["", "## By rule", ""]
    rows = []
    for i, r in sorted(enumerate(data.rules), key=lambda ir: (-per_rule[ir[0]], ir[1]["name"])):
        techs = ", ".join(sorted({t[2] for t in r["attack"] if t[2]}))
        rows.append([md(r["name"]), md(r["severity"]), per_rule[i], md(techs)])
    lines += _table(["rule", "severity", "alerts", "ATT&CK"], rows)
    for label, key in (("host", "host"), ("user", "user")):
        counts = data.by(key)
        lines += ["", f"## By {label}", ""]
        lines += _table([label, "alerts"], [[md(k), n] for k, n in counts.most_common(20)])
        if len(counts) > 20:
            lines.append(f"\n{len(counts) - 20} more {label}s.")
    order = sorted(range(data.count), key=lambda n: (-col["sv"][n], col["tm"][n] or 0))
    primary = [n for n in order if col["gp"][n] < 0][:MAX_ALERTS]  # sequence steps are in their shell
    lines += ["", f"## Most severe alerts (first {len(primary)})", ""]
    lines += _table(["time (UTC)", "severity", "rule", "host", "user", "reason"],
                    [[_time(col["tm"][n]), SEVERITIES[col["sv"][n]], md(data.rules[col["ru"][n]]["name"]),
                      md(data.values[col["ho"][n]]) if col["ho"][n] >= 0 else "",
                      md(data.values[col["us"][n]]) if col["us"][n] >= 0 else "",
                      md(data.values[col["re"][n]])] for n in primary])
    if s:
        not_run = (s.get("unsupported") or []) + (s.get("errors") or [])
        if not_run:
            lines += ["", "## Rules that could not run", ""]
            lines += _table(["rule", "reason"], [[md(r.get("name") or r.get("file") or ""), md(r.get("reason") or "")]
                                                 for r in not_run])
    return "\n".join(lines) + "\n"
