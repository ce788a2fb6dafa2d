#!/usr/bin/env python3
"""The HTML report's size and time to interactive in headless Chromium.

    python bench/report.py [--alerts 100000] [--repeat 3] [--chromium /usr/bin/chromium]

Two cases:
* **lab**: the lab's recorded capture (tests/fixtures/lab) hunted with the SSH pack, reported
  with its event files (process trees);
* **generated**: events from bench/generate.py hunted with one broad rule (every process start
  alerts, `--max-signals 0`) to get at least `--alerts` alerts, then `trailhound report` of that
  alerts file (no event files: the process index is the lab case's part).

For each: the report's size, the time `trailhound report` takes to write it, and, over
`--repeat` fresh browser pages, the time from navigation to the report's first view drawn
(`data-ready`: the data parsed, the overview's counts, matrix and timeline drawn), then to the
alert list's first page and to a text search over every alert. Needs the browser extra
(playwright) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "bench" / "data"
TRAILHOUND = [sys.executable, "-m", "trailhound"]

BROAD_RULE = '''
[metadata]
creation_date = "2026/12/06"
maturity = "development"
updated_date = "2026/12/06"

[rule]
author = ["Trailhound bench"]
description = "Every process start: a rule made to be noisy, for the report's benchmark."
from = "now-9m"
index = ["logs-*"]
language = "kuery"
license = "Apache-2.0"
name = "Bench: Any Process Start"
risk_score = 21
rule_id = "bench-any-process-start"
severity = "low"
type = "query"
max_signals = 1000000
query = "event.category:process and event.type:start"
note = "## Triage\\n\\nA benchmark rule: every process start."

[[rule.threat]]
framework = "MITRE ATT&CK"
[[rule.threat.technique]]
id = "T1059"
name = "Command and Scripting Interpreter"
reference = "https://attack.mitre.org/techniques/T1059/"
[rule.threat.tactic]
id = "TA0002"
name = "Execution"
reference = "https://attack.mitre.org/tactics/TA0002/"
'''


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def measure_page(chromium: str, html: Path, repeat: int) -> dict:
    from playwright.sync_api import sync_playwright

    ready, listed, searched = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m, errors=errors: errors.append(m.text))
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(html.resolve().as_uri(), timeout=120_000)
            page.wait_for_selector("html[data-ready='1']", timeout=120_000)
            ready.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            page.evaluate("location.hash = '#alerts'")
            page.wait_for_selector("#alert-table tbody tr", timeout=120_000)
            listed.append(time.perf_counter() - t1)
            t2 = time.perf_counter()
            page.evaluate("location.hash = '#alerts?q=' + encodeURIComponent('no-such-value-zz')")
            page.wait_for_selector("#match-count[data-count='0']", timeout=120_000)
            searched.append(time.perf_counter() - t2)
            if errors:
                sys.exit(f"console errors: {errors[:3]}")
            page.close()
        browser.close()
    return {"ready_s": [round(x, 3) for x in ready], "list_s": [round(x, 3) for x in listed],
            "search_s": [round(x, 3) for x in searched], "ready_median_s": round(statistics.median(ready), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alerts", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    opts = ap.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    results: dict = {}

    # the lab capture
    lab = sorted((REPO / "tests" / "fixtures" / "lab").glob("*/audit.log")) + \
        sorted((REPO / "tests" / "fixtures" / "lab").glob("*/auth.log"))
    alerts, summary, html = DATA / "report_lab.ndjson", DATA / "report_lab.summary.json", DATA / "report_lab.html"
    run([*TRAILHOUND, "hunt", *map(str, lab), "--exit-zero", "-o", str(alerts), "--summary", str(summary)])
    took = run([*TRAILHOUND, "report", str(alerts), *map(str, lab), "--summary", str(summary), "-o", str(html)])
    results["lab"] = {"alerts": sum(1 for _ in alerts.open()), "html_bytes": html.stat().st_size,
                      "report_s": round(took, 2), **measure_page(opts.chromium, html, opts.repeat)}
    print("lab", json.dumps(results["lab"]))

    # generated: about 70% of events are process starts
    events = DATA / f"report_events_{opts.alerts}.ndjson"
    if not events.exists():
        run([sys.executable, "bench/generate.py", "--events", str(int(opts.alerts / 0.69)), "--out", str(events),
             "--quiet"])
    rules = DATA / "report_rules"
    rules.mkdir(exist_ok=True)
    (rules / "bench_any_process_start.toml").write_text(BROAD_RULE)
    alerts, summary, html = (DATA / "report_generated.ndjson", DATA / "report_generated.summary.json",
                             DATA / "report_generated.html")
    hunt_s = run([*TRAILHOUND, "hunt", "--rules", str(rules), str(events), "--exit-zero", "--max-signals", "0",
                  "-o", str(alerts), "--summary", str(summary)])
    took = run([*TRAILHOUND, "report", str(alerts), "--rules", str(rules), "--summary", str(summary), "-o", str(html)])
    results["generated"] = {"alerts": sum(1 for _ in alerts.open()), "alerts_bytes": alerts.stat().st_size,
                            "html_bytes": html.stat().st_size, "hunt_s": round(hunt_s, 2), "report_s": round(took, 2),
                            **measure_page(opts.chromium, html, opts.repeat)}
    print("generated", json.dumps(results["generated"]))
    (DATA / "report_last_run.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
