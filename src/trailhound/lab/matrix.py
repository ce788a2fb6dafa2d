"""Run a rule pack over a capture and attribute each alert to the scenario whose window holds its
source events (a sequence: its last event). Alerts in an attack's window are true positives, alerts
in a benign window (the baseline, the automation scenarios) are false positives."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..compile.dates import parse_time_ns

if TYPE_CHECKING:
    from rich.console import JustifyMethod

OUTSIDE = "(outside the windows)"
PAGING = ("high", "critical")  # the severities that page someone
DETECTED = ("medium", "high", "critical")  # what counts as detecting an attack


@dataclass(frozen=True)
class RuleScore:
    """One rule over a capture: attack windows it fired in (true positives) and benign windows it
    fired in (false positives), each with its alerts."""
    rule: str
    severity: str
    tp_scenarios: int
    tp_alerts: int
    fp_scenarios: int
    fp_alerts: int


@dataclass
class Matrix:
    scenarios: list[str]
    benign: set[str]
    rules: dict[str, str] = field(default_factory=dict)  # rule name → severity
    cells: dict[tuple[str, str], int] = field(default_factory=dict)  # (scenario, rule) → alerts
    notes: list[str] = field(default_factory=list)
    rules_run: int = 0

    def fired(self, scenario: str) -> dict[str, int]:
        return {r: n for (s, r), n in self.cells.items() if s == scenario}

    def false_positives(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for (s, r), n in self.cells.items():
            if s in self.benign:
                out[r] += n
        return dict(out)

    def attacks(self) -> list[str]:
        return [s for s in self.scenarios if s not in self.benign]

    def scores(self) -> list[RuleScore]:
        """Per rule that fired or ran: its true and false positives, by severity then name."""
        out = []
        for r in sorted(self.rules, key=lambda r: (-_sev(self.rules[r]), r)):
            tp = {s: n for (s, rr), n in self.cells.items() if rr == r and s in self.scenarios and s not in self.benign}
            fp = {s: n for (s, rr), n in self.cells.items() if rr == r and s in self.benign}
            out.append(RuleScore(r, self.rules[r], len(tp), sum(tp.values()), len(fp), sum(fp.values())))
        return out

    def summary(self) -> dict:
        """What the issue asks of the pack: attacks detected at medium or higher, benign windows
        free of high and critical alerts."""
        missed = [s for s in self.attacks() if not any(self.rules.get(r) in DETECTED for r in self.fired(s))]
        paging = {r: n for r, n in self.false_positives().items() if self.rules.get(r) in PAGING}
        return {"attack_windows": len(self.attacks()), "attacks_detected": len(self.attacks()) - len(missed),
                "missed": missed, "benign_windows": len(self.benign & set(self.scenarios)),
                "benign_alerts": sum(self.false_positives().values()),
                "benign_high_critical": sum(paging.values()), "paging_false_positives": paging}

    def as_dict(self) -> dict:
        return {"rules": self.rules, "rules_run": self.rules_run,
                "cells": [{"scenario": s, "rule": r, "alerts": n} for (s, r), n in sorted(self.cells.items())],
                "false_positives": self.false_positives(),
                "per_rule": [sc.__dict__ for sc in self.scores()], "summary": self.summary(), "notes": self.notes}


def epoch(value) -> float | None:
    """An ISO 8601 time (or a list whose first item is one) as seconds since the epoch; None if it is neither."""
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str):
        return None
    ns = parse_time_ns(value)  # the engine's one time parser (compile/dates.py)
    return None if ns is None else ns / 1e9


def group_times(alerts) -> dict[str, float]:
    """Per sequence group id, the time of its last building block: the time its shell alert is attributed to."""
    out: dict[str, float] = {}
    for a in alerts:
        if a.get("kibana.alert.building_block_type") and (gid := a.get("kibana.alert.group.id")):
            t = epoch(a.get("kibana.alert.original_time"))
            if t is not None:
                out[gid] = max(out.get(gid, t), t)
    return out


def alert_time(alert: dict, group_time: dict[str, float]) -> float | None:
    """When an alert's (last) source event happened: its group's last building block, or its own original time."""
    return group_time.get(alert.get("kibana.alert.group.id", "")) or epoch(alert.get("kibana.alert.original_time"))


def default_rules_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "pack"


@dataclass(frozen=True)
class RecordedWindow:
    name: str
    start: float
    end: float
    benign: bool
    skipped: str | None


def recorded(directory: str | os.PathLike) -> tuple[list[RecordedWindow], list[Path]]:
    """A capture written by `lab run -o DIR` or `--record DIR`: its windows (scenarios.json) and
    each scenario's audit.log and auth.log. Raises ValueError naming what is missing or wrong."""
    import json

    d = Path(directory)
    meta_path = d / "scenarios.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        windows = [RecordedWindow(str(s["name"]), float(s.get("start") or 0), float(s.get("end") or 0),
                                  bool(s.get("benign")), s.get("skipped")) for s in meta["scenarios"]]
    except FileNotFoundError:
        raise ValueError(f"{meta_path}: not found (a capture written by `trailhound lab run -o DIR`)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{meta_path}: not a lab capture's scenarios.json ({type(e).__name__}: {e})") from None
    files = []
    for w in windows:
        if w.skipped:
            continue
        for name in ("audit.log", "auth.log"):
            f = d / w.name / name
            if not f.is_file():
                raise ValueError(f"{f}: missing (scenario {w.name} of {meta_path})")
            files.append(f)
    return windows, files


def run_matrix(rules: Sequence[str | os.PathLike], files: Sequence[str | os.PathLike], windows,
               exception_paths: Sequence[str | os.PathLike] = ()) -> Matrix:
    """`windows`: objects with name, start, end, benign, skipped (the runner's `Window`s)."""
    from ..alerts.build import alerts_for_hits, utc_now
    from ..engine.hunt import hunt
    from ..rules.check import check_rule
    from ..rules.loader import load_rules

    ran = [w for w in windows if not w.skipped]
    m = Matrix([w.name for w in ran], {w.name for w in ran if w.benign})
    loaded = load_rules(rules, exception_paths)
    m.notes += [f"rule error: {e}" for e in loaded.errors]
    checks = [check_rule(r) for r in loaded.rules]
    m.notes += [f"not run: {c.rule.name}: {c.reason.splitlines()[0]}" for c in checks if c.status != "ok"]
    result = hunt(checks, files, loaded.exceptions)
    m.rules_run = len(result.runs)
    m.notes += [f"{s.file}:{s.line}: {s.reason}" for s in result.table.report.skipped[:20]]
    now = utc_now()
    for run in result.runs:
        rule = run.check.rule
        m.rules[rule.name] = rule.severity
        if run.error:
            m.notes.append(f"{rule.name}: {run.error}")
        if not run.hits:
            continue
        rows = sorted({r for h in run.hits for r in h.rows if r is not None})
        docs = dict(zip(rows, result.table.documents(rows)))
        batch = alerts_for_hits(rule, run.kind, run.hits, docs, run.timestamp_field, now)
        group_time = group_times(batch.alerts)
        for a in batch.alerts:
            if a.get("kibana.alert.building_block_type"):
                continue
            t = alert_time(a, group_time)
            where = next((w.name for w in ran if t is not None and w.start - 0.001 <= t <= w.end), OUTSIDE)
            m.cells[(where, rule.name)] = m.cells.get((where, rule.name), 0) + 1
    return m


def render_matrix(m: Matrix, console=None) -> None:
    """One row per scenario with the rules it fired (R-numbers, ×alerts), then the rule legend."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    fired = sorted({r for (_, r) in m.cells}, key=lambda r: (-_sev(m.rules.get(r, "")), r))
    ids = {r: f"R{i}" for i, r in enumerate(fired, 1)}
    t = Table(title=f"scenario × rule ({m.rules_run} rules run)")
    columns: list[tuple[str, JustifyMethod]] = [("scenario", "left"), ("alerts", "right"),
                                                ("rules fired (×alerts)", "left")]
    for c, j in columns:
        t.add_column(c, justify=j, overflow="fold")
    for s in m.scenarios + ([OUTSIDE] if any(k[0] == OUTSIDE for k in m.cells) else []):
        hits = [(r, m.cells[(s, r)]) for r in fired if (s, r) in m.cells]
        label = s + (" (benign: false positives)" if s in m.benign else "")
        t.add_row(label, str(sum(n for _, n in hits)),
                  ", ".join(ids[r] + (f"×{n}" if n > 1 else "") for r, n in hits) or "-")
    console.print(t)
    legend = Table(title="rules")
    for c in ("", "rule", "severity", "scenarios", "false positives"):
        legend.add_column(c, overflow="fold")
    fps = m.false_positives()
    for r in fired:
        where = sorted({s for (s, rr) in m.cells if rr == r and s not in m.benign})
        legend.add_row(ids[r], r, m.rules.get(r, "?"), str(len(where)), str(fps.get(r, 0)))
    console.print(legend)
    scores = Table(title="per rule: true positives (attack windows) and false positives (benign windows)")
    for c, j in (("rule", "left"), ("severity", "left"), ("TP windows", "right"), ("TP alerts", "right"),
                 ("FP windows", "right"), ("FP alerts", "right")):
        scores.add_column(c, justify=j, overflow="fold")
    for sc in m.scores():
        scores.add_row(sc.rule, sc.severity, f"{sc.tp_scenarios}/{len(m.attacks())}", str(sc.tp_alerts),
                       f"{sc.fp_scenarios}/{len(m.benign & set(m.scenarios))}", str(sc.fp_alerts))
    console.print(scores)
    silent = [s for s in m.scenarios if s not in m.benign and not m.fired(s)]
    if silent:
        console.print(f"no rule fired for: {', '.join(silent)}")
    console.print(summary_line(m))


def summary_line(m: Matrix) -> str:
    s = m.summary()
    text = (f"attacks detected at medium or higher: {s['attacks_detected']}/{s['attack_windows']}; "
            f"high or critical alerts in benign windows: {s['benign_high_critical']} "
            f"({s['benign_alerts']} alerts of any severity in {s['benign_windows']} benign windows)")
    if s["missed"]:
        text += f"; missed: {', '.join(s['missed'])}"
    return text


def markdown_rules(m: Matrix) -> str:
    """Per rule, as Markdown: true positives over the attack windows, false positives over the benign ones."""
    n_att, n_ben = len(m.attacks()), len(m.benign & set(m.scenarios))
    rows = [f"| rule | severity | TP: attack windows (of {n_att}) | TP alerts | FP: benign windows (of {n_ben}) "
            "| FP alerts |", "|---|---|---|---|---|---|"]
    for sc in m.scores():
        rows.append(f"| {sc.rule} | {sc.severity} | {sc.tp_scenarios} | {sc.tp_alerts} | {sc.fp_scenarios} "
                    f"| {sc.fp_alerts} |")
    return "\n".join(rows) + "\n"


def markdown(m: Matrix) -> str:
    """The matrix as a Markdown table: per scenario, its alerts and the rules (severity) that fired."""
    fired = sorted({r for (_, r) in m.cells}, key=lambda r: (-_sev(m.rules.get(r, "")), r))
    rows = ["| scenario | alerts | rules fired (severity, ×alerts) |", "|---|---|---|"]
    for s in m.scenarios + ([OUTSIDE] if any(k[0] == OUTSIDE for k in m.cells) else []):
        hits = [(r, m.cells[(s, r)]) for r in fired if (s, r) in m.cells]
        label = s + (" (benign: false positives)" if s in m.benign else "")
        text = "; ".join(f"{r} ({m.rules.get(r, '?')}" + (f", ×{n})" if n > 1 else ")") for r, n in hits)
        rows.append(f"| {label} | {sum(n for _, n in hits)} | {text or '-'} |")
    return "\n".join(rows) + "\n"


def _sev(s: str) -> int:
    return {"critical": 4, "high": 3, "medium": 2, "low": 1}.get(s, 0)
