"""The HTML report in a real headless Chromium: it loads with no console error and no request,
its counts match the alerts file, filters, sorting and links work, and a hostile corpus run
through `hunt --html` stays inert on every view."""

import json
import time
from collections import Counter
from pathlib import Path

import orjson

from trailhound.report.model import SEVERITIES, flat_alert


def alerts_of(path: Path) -> list[dict]:
    return [flat_alert(orjson.loads(line)) for line in path.read_bytes().splitlines() if line.strip()]


def finds(alert: dict, text: str) -> bool:
    """What the list's search does: any value of the alert's own fields, or its rule's name."""
    values = [alert["kibana.alert.rule.name"]]
    for k, v in alert.items():
        if not k.startswith(("kibana.alert.rule.", "kibana.alert.original_event.")) and \
                k not in ("@timestamp", "kibana.alert.ancestors"):
            values += [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)]
    return any(text.lower() in v.lower() for v in values)


def until(page, test, timeout: float = 10.0) -> None:
    """Wait for the location's hash to pass `test` (polled from outside the page: the report's CSP
    refuses the string evaluation Playwright's wait_for_function would use)."""
    deadline = time.monotonic() + timeout
    while not test(page.evaluate("location.hash")):
        assert time.monotonic() < deadline, page.evaluate("location.hash")
        page.wait_for_timeout(20)


def clean(seen, url_of: Path) -> None:
    """No console message, page error or dialog; no request but the file itself."""
    assert seen.console == [], seen.console
    assert seen.errors == [], seen.errors
    assert seen.dialogs == [], seen.dialogs
    assert {u.split("#")[0] for u in seen.requests} == {url_of.resolve().as_uri()}, seen.requests


def count_shown(page) -> int:
    return int(page.get_attribute("#match-count", "data-count"))


def settled(page, read, ok, timeout: float = 10.0):
    """`read()` once the page has rendered a change made through the hash (it renders on the `hashchange`
    event, after the hash has changed): polled until `ok` holds or the timeout passes; the last value read."""
    deadline = time.monotonic() + timeout
    while not ok(value := read()) and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    return value


def settled_count(page, expected: int, timeout: float = 10.0) -> int:
    """The count shown once the page has rendered a filter change (see `settled`)."""
    return settled(page, lambda: count_shown(page), lambda n: n == expected, timeout)


def test_overview_counts_match_the_alerts_file(lab_report, open_report):
    alerts_file, html, summary = lab_report
    alerts = alerts_of(alerts_file)
    seen = open_report(html)
    page = seen.page
    by_severity = Counter(a["kibana.alert.severity"] for a in alerts)
    for sev in SEVERITIES:
        shown = page.inner_text(f"#severity-counts a[data-severity='{sev}'] .n")
        assert int(shown) == by_severity.get(sev, 0), sev
    assert sum(by_severity.values()) == len(alerts) > 0
    # per rule: the overview's table lists each rule that fired with its number of alerts
    per_rule = Counter(a["kibana.alert.rule.name"] for a in alerts)
    rows = page.eval_on_selector_all("#by-rule tbody tr", "rs => rs.map(r => [r.cells[0].innerText, r.cells[1].innerText])")
    assert {name: int(n) for name, n in rows} == dict(per_rule)
    users = Counter(a.get("user.name") for a in alerts if a.get("user.name"))
    rows = page.eval_on_selector_all("#by-user tbody tr", "rs => rs.map(r => [r.cells[0].innerText, r.cells[1].innerText])")
    assert {u: int(n) for u, n in rows if u != "(none)"} == dict(users)
    # the matrix has a cell for Lateral Movement > T1021.004 with the alerts of the rules naming it
    t1021 = sum(1 for a in alerts if "T1021.004" in json.dumps(a.get("kibana.alert.rule.threat")))
    assert int(page.inner_text("#attack-matrix a[data-technique='T1021.004'] .c")) == t1021
    assert int(page.get_attribute("#timeline svg", "data-bars")) > 0
    assert page.inner_text("#timeline .legend") == "trailhound-lab"  # by host: one host
    page.select_option("#timeline select", "ru")  # by rule: the eight busiest rules, then the others
    legend = page.inner_text("#timeline .legend").split("\n")
    assert legend[:2] == [name for name, _ in per_rule.most_common(2)] and legend[-1] == "other"
    assert len(legend) == 9
    # the run: inputs and rules run come from the hunt's report
    inputs = json.loads(summary.read_text())["inputs"]  # the hunt's own --summary
    assert inputs["files"] and inputs["events"] > 0
    assert f"{len(inputs['files'])} files, {inputs['events']} events, 0 bad lines" in page.inner_text("#inputs")
    assert page.locator("#rules-run tbody tr").count() == 23
    assert "None: every rule ran." in page.inner_text("#rules-not-run")
    clean(seen, html)


def test_filters_sorting_and_links(lab_report, open_report):
    alerts_file, html, _ = lab_report
    alerts = alerts_of(alerts_file)
    seen = open_report(html, "#alerts")
    page = seen.page
    assert count_shown(page) == len(alerts)
    assert page.locator("#alert-table tbody tr").count() == len(alerts)  # the lab capture's alerts fit one page of 100
    page.select_option("select[name=sev]", label="high")
    until(page, lambda h: "sev=2" in h)
    high = sum(a["kibana.alert.severity"] == "high" for a in alerts)
    assert settled_count(page, high) == high
    page.select_option("select[name=rule]", label="Suspicious SSH Client Use")
    until(page, lambda h: "rule=" in h)
    expected = sum(a["kibana.alert.severity"] == "high" and a["kibana.alert.rule.name"] == "Suspicious SSH Client Use"
                   for a in alerts)
    assert expected > 0 and settled_count(page, expected) == expected
    page.click("text=clear filters")
    until(page, lambda h: h == "#alerts")
    page.select_option("select[name=user]", label="lab-admin")
    until(page, lambda h: "user=" in h)
    admin = sum(a.get("user.name") == "lab-admin" for a in alerts)
    assert settled_count(page, admin) == admin
    page.click("text=clear filters")
    page.fill("input[name=q]", "StrictHostKeyChecking=no -D 1080")
    page.keyboard.press("Enter")
    until(page, lambda h: "q=" in h)
    found = sum(finds(a, "StrictHostKeyChecking=no -D 1080") for a in alerts)
    assert found > 0 and settled_count(page, found) == found
    page.click("text=clear filters")
    page.select_option("select[name=steps]", "hide")
    until(page, lambda h: "steps=hide" in h)
    shells = sum("kibana.alert.group.index" not in a for a in alerts)
    assert settled_count(page, shells) == shells
    # newest first; a click on the time column turns it, another turns it back; severity sorts too
    page.click("text=clear filters")
    until(page, lambda h: h == "#alerts")
    cells = "cs => cs.map(c => c.innerText)"

    def column(n: int) -> list[str]:
        return page.eval_on_selector_all(f"#alert-table tbody tr td:nth-child({n})", cells)

    times = settled(page, lambda: column(1), lambda ts: len(ts) == len(alerts))
    assert times == sorted(times, reverse=True) and times[0] != times[-1]
    page.click("th button[data-sort=time]")
    until(page, lambda h: "dir=asc" in h)
    assert settled(page, lambda: column(1), lambda ts: ts == sorted(times)) == sorted(times)
    page.click("th button[data-sort=time]")
    until(page, lambda h: "sort=time" in h and "dir=" not in h)
    assert settled(page, lambda: column(1), lambda ts: ts == times) == times
    page.click("th button[data-sort=severity]")
    until(page, lambda h: "sort=severity" in h)
    by_severity = lambda ss: ss == sorted(ss, key=SEVERITIES.index, reverse=True)  # noqa: E731
    shown = settled(page, lambda: column(2), by_severity)
    assert by_severity(shown) and shown[0] == "high"
    # a row links to its detail; the detail names the same alert
    first = page.get_attribute("#alert-table tbody tr", "data-alert")
    page.click("#alert-table tbody tr >> nth=0 >> td >> nth=0 >> a")
    page.wait_for_selector("#detail-head")
    uuid = alerts[int(first)]["kibana.alert.uuid"]
    assert uuid in page.inner_text("#detail-head")
    clean(seen, html)


def test_sequence_detail(lab_report, open_report):
    alerts_file, html, _ = lab_report
    alerts = alerts_of(alerts_file)
    shell = next(n for n, a in enumerate(alerts) if a["kibana.alert.rule.name"].startswith("SSH Authorized Key Added")
                 and "kibana.alert.group.id" in a and "kibana.alert.group.index" not in a)
    group = alerts[shell]["kibana.alert.group.id"]
    steps = sorted((a["kibana.alert.group.index"], n) for n, a in enumerate(alerts)
                   if a.get("kibana.alert.group.id") == group and "kibana.alert.group.index" in a)
    seen = open_report(html, f"#alert/{shell}")
    page = seen.page
    rows = page.locator("#sequence tbody tr")
    assert rows.count() == len(steps) == 2
    assert "host.name = trailhound-lab" in rows.nth(0).inner_text()  # the join key
    assert "authorized_keys" in rows.nth(0).inner_text() and "ssh -i /tmp/.k" in rows.nth(1).inner_text()
    # the rule: query, ATT&CK, author and license (from the pack's rule file)
    rule = page.inner_text("#rule")
    assert "sequence by host.name with maxspan=1h" in rule and "T1098.004" in rule
    assert "Trailhound" in rule and "Apache-2.0" in rule
    # the guide is rendered Markdown; the exception entry names the rule
    assert page.locator("#guide h2, #guide h3").count() >= 2
    assert alerts[shell]["kibana.alert.rule.rule_id"] in page.inner_text("#exception-toml")
    # the second step's process tree: ssh under the attacker's shell (its entry leader)
    tree = page.inner_text(f"#process-tree-{steps[1][1]}")
    assert "ssh -i /tmp/.k" in tree and "LEADER" in tree.upper()
    # a step links to its own detail, which links back to the sequence
    page.click("#sequence tbody tr >> nth=1 >> a")
    until(page, lambda h: h == f"#alert/{steps[1][1]}")
    assert "Step 2 of" in page.inner_text("#detail-head")
    page.click("#detail-head >> text=a sequence")
    until(page, lambda h: h == f"#alert/{shell}")
    clean(seen, html)


def test_technique_cell_filters_the_list(lab_report, open_report):
    alerts_file, html, _ = lab_report
    alerts = alerts_of(alerts_file)
    seen = open_report(html)
    seen.page.click("#attack-matrix a[data-technique='T1552.004']")
    seen.page.wait_for_selector("#match-count")
    assert count_shown(seen.page) == sum("T1552.004" in json.dumps(a.get("kibana.alert.rule.threat"))
                                         for a in alerts) == 4
    seen.page.goto(seen.page.url.split("#")[0] + "#tuning")
    seen.page.wait_for_selector("#tuning")
    assert seen.page.locator("#tuning .card").count() == len({a["kibana.alert.rule.name"] for a in alerts})
    clean(seen, html)


def test_hostile_corpus_stays_inert(hostile_report, open_report):
    alerts_file, html, _ = hostile_report
    alerts = alerts_of(alerts_file)
    assert len(alerts) > 100
    per_rule: dict[str, list[int]] = {}
    for n, a in enumerate(alerts):
        if "__pwned" in json.dumps(a):
            per_rule.setdefault(a["kibana.alert.rule.name"], []).append(n)
    assert len(per_rule) >= 3, "the corpus must reach the alerts of several rules"
    hostile = [n for ns in per_rule.values() for n in ns[:2] + ns[-2:]]  # a sequence's steps, then its shell
    views = ["", "#alerts", "#alerts?q=%3Cscript%3E", "#tuning"] + [f"#alert/{n}" for n in hostile]
    seen = open_report(html)
    page = seen.page
    for view in views:
        page.evaluate(f"location.hash = {json.dumps(view)}")
        page.wait_for_timeout(30)
        assert page.evaluate("window.__pwned === undefined"), view
        assert page.locator("#app script, #app iframe, #app img, #app svg[onload], #app [onerror]").count() == 0, view
        hrefs = page.eval_on_selector_all("#app a[href]", "as => as.map(a => a.getAttribute('href'))")
        # links: the report's own (#...) and the rules' references; none from the logs
        assert all(h.startswith("#") or (h.startswith("https://") and "evil" not in h) for h in hrefs), (view, hrefs)
    # a long value shows its start; "show all" puts the whole of it in, still as text
    big = next(n for n in hostile if "A" * 1000 in json.dumps(alerts[n]))
    page.evaluate(f"location.hash = '#alert/{big}'")
    page.wait_for_selector("#event button.more")
    before = len(page.inner_text("#event"))
    page.click("#event button.more >> nth=0")
    assert len(page.inner_text("#event")) > before + 90_000
    assert page.evaluate("window.__pwned === undefined")
    # the payloads are shown as text: a user name with markup is readable in the list and the detail
    page.evaluate("location.hash = '#alerts?q=' + encodeURIComponent('</script><script>window.__pwned=2')")
    page.wait_for_selector("#alert-table tbody tr")
    assert "</script><script>window.__pwned=2</script>" in page.inner_text("#alert-table")
    # the bidi override and line separators are shown as escapes, not applied
    page.evaluate("location.hash = '#alerts?q=' + encodeURIComponent('gnp.exe')")
    page.wait_for_selector("#alert-table tbody tr")
    assert "\\u202egnp.exe" in page.inner_text("#alert-table")
    assert "\u202e" not in page.inner_text("#app")
    # the 1.1 MB line is listed as skipped, with its place
    page.evaluate("location.hash = '#overview'")
    page.wait_for_selector("#skipped")
    assert "auth.log" in page.inner_text("#skipped") and "over the 1048576-byte limit" in page.inner_text("#skipped")
    assert page.evaluate("window.__pwned === undefined")
    clean(seen, html)


def test_an_alerts_exception_entry_excepts_it(lab_report, open_report, hunt_lab, tmp_path):
    """The entry the page writes (in the browser, from the alert's fields) loads as an exception
    list and, given back to hunt, removes that alert and no other."""
    alerts_file, html, _ = lab_report
    alerts = alerts_of(alerts_file)
    n = next(i for i, a in enumerate(alerts) if a["kibana.alert.rule.name"] == "SSH Private Key Copied, Encoded or "
             "Transferred")
    seen = open_report(html, f"#alert/{n}")
    toml = seen.page.inner_text("#exception-toml")
    assert 'field = "process.executable"' in toml and alerts[n]["kibana.alert.rule.rule_id"] in toml
    (tmp_path / "exc").mkdir()
    (tmp_path / "exc" / "one.toml").write_text(toml)
    after = hunt_lab(tmp_path, "--exceptions", str(tmp_path / "exc"))
    left = alerts_of(after)
    assert alerts[n]["kibana.alert.uuid"] not in {a["kibana.alert.uuid"] for a in left}
    assert len(left) == len(alerts) - 1  # that rule had one alert; no other rule is touched
    clean(seen, html)


def test_a_report_without_alerts_loads_clean(tmp_path, open_report):
    from typer.testing import CliRunner

    from trailhound.cli.main import app

    (tmp_path / "alerts.ndjson").write_text("")
    html = tmp_path / "r.html"
    r = CliRunner().invoke(app, ["report", str(tmp_path / "alerts.ndjson"), "-o", str(html)])
    assert r.exit_code == 0, r.output
    for view in ("", "#alert/0"):  # an alert that does not exist shows the overview
        seen = open_report(html, view)
        assert seen.page.eval_on_selector_all("#severity-counts .n", "ns => ns.map(n => n.innerText)") == ["0"] * 4
        assert "No rule that fired" in seen.page.inner_text("#attack-matrix")
        clean(seen, html)
    seen = open_report(html, "#alerts")
    assert count_shown(seen.page) == 0 and seen.page.locator("#alert-table tbody tr").count() == 0
    clean(seen, html)
    seen = open_report(html, "#tuning")
    assert "No alert." in seen.page.inner_text("#tuning")
    clean(seen, html)
