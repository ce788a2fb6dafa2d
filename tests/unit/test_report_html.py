"""The report's page as text: the data block cannot be escaped from, the policy forbids fetches
and any script but ours, guides are sanitized, the Markdown summary and Navigator layer are
inert and correct."""

import base64
import hashlib
import json
import re
from importlib import resources

from trailhound.report import build_report
from trailhound.report.guide import render_guide, safe_url
from trailhound.report.html import render_html, script_json
from trailhound.report.markdown import markdown_summary, md
from trailhound.report.navigator import navigator_layer, tactic_shortname

HOSTILE = ["</script><script>alert(1)</script>", "<!--", "</SCRIPT >", "<script", "\u2028\u2029", "&lt;",
           "]]>", "@@JS@@", "@@DATA@@", "\u202eevil", "</template><script>alert(2)</script>", "\\u003c"]


def alert(n: int, value: str, **extra) -> dict:
    return {"@timestamp": "2026-12-01T00:00:00.000Z", "kibana.alert.original_time": f"2026-11-01T10:00:{n:02d}.000Z",
            "kibana.alert.rule.name": f"rule {value}", "kibana.alert.rule.rule_id": "r1",
            "kibana.alert.rule.severity": "high", "kibana.alert.severity": "high",
            "kibana.alert.rule.threat": [{"tactic": {"id": "TA0008", "name": "Lateral Movement"},
                                          "technique": [{"id": "T1021", "name": value}]}],
            "kibana.alert.rule.references": [f"javascript:{value}", "https://example.org/ok"],
            "kibana.alert.rule.note": f"# Guide\n\n{value} <b>bold</b> [x](javascript:alert(1)) ![i](https://e.org/i.png)",
            "kibana.alert.reason": value, "host": {"name": value}, "user": {"name": value}, "process": {"args": [value]},
            **extra}


def test_script_json_cannot_end_its_element():
    text = script_json({"v": HOSTILE, HOSTILE[0]: 1})
    assert not re.search(r"</|<!--|<script|\u2028|\u2029|>", text, re.I)
    assert json.loads(text) == {"v": HOSTILE, HOSTILE[0]: 1}


def test_page_holds_hostile_values_as_data_only():
    data = build_report([alert(i, v) for i, v in enumerate(HOSTILE)])
    page = render_html(data, title="</title><script>alert(3)</script>")
    # one executable script (ours) and one data block; hostile text appears nowhere raw
    scripts = re.findall(r"<script\b[^>]*>", page, re.I)
    assert scripts == ['<script type="application/json" id="th-data">', "<script>"]
    assert page.count("</script>") == 2
    for v in HOSTILE[:3]:
        assert v not in page
    assert "<title>&lt;/title&gt;&lt;script&gt;alert(3)&lt;/script&gt;</title>" in page
    assert "\u2028" not in page and "\u202e" not in page.split("<template")[0]
    # the policy: our script and style by hash, nothing fetched
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    js = resources.files("trailhound.report").joinpath("assets", "report.js").read_text()
    css = resources.files("trailhound.report").joinpath("assets", "report.css").read_text()
    for asset in (js, css):
        digest = base64.b64encode(hashlib.sha256(asset.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe" not in csp
    # the script sets no markup from data
    assert "innerHTML" not in js and "outerHTML" not in js and "insertAdjacentHTML" not in js
    assert "document.write" not in js and "eval(" not in js and "new Function" not in js
    # the data block reads back to the values
    block = re.search(r'<script type="application/json" id="th-data">(.*?)</script>', page, re.S).group(1)
    assert set(HOSTILE) <= set(json.loads(block)["values"])


def test_guides_are_sanitized():
    out = render_guide("# T\n\n<script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
                       "[a](javascript:alert(1)) [b](data:text/html,x) [c](vbscript:x) [d](https://ok.example/p)"
                       " [e](//evil.example) ![i](https://e.org/i.png)\n\n<div onclick=x>")
    assert "<script" not in out and "<img" not in out and "<div" not in out
    assert "&lt;script&gt;" in out
    hrefs = re.findall(r'href="([^"]*)"', out)
    assert hrefs == ["https://ok.example/p", "https://e.org/i.png"]  # the image became a link, not a fetch
    assert out.count('rel="noopener noreferrer nofollow"') == 2
    assert safe_url("mailto:a@b.c") and not safe_url("https://a b") and not safe_url("file:///etc/passwd")
    assert not safe_url("https:\\\\evil.example") and not safe_url("http:///x")


def test_markdown_summary_is_inert():
    data = build_report([alert(i, v) for i, v in enumerate(HOSTILE + ["[x](javascript:alert(1))", "a|b\nc"])])
    text = markdown_summary(data, title="T <b>")
    assert "<" not in text.replace("\\<", "") and "](" not in text.replace("\\](", "")
    for line in text.splitlines():
        if line.startswith("|"):  # every table row keeps its cells: no raw pipe or newline from a value
            assert len(re.findall(r"(?<!\\)\|", line)) in (3, 5, 7)
    assert "**14 alerts** from 14 rules" in text
    assert "| high | 14 |" in text
    assert md("\u202eabc") == "\\\\u202eabc"  # renders as the escape \\u202e, not as an override
    assert len(md("x" * 1000)) <= 200


def test_navigator_layer():
    docs = [alert(0, "SSH"), alert(1, "SSH"), alert(2, "SSH", **{"kibana.alert.rule.rule_id": "r2",
                                                                  "kibana.alert.rule.name": "other"})]
    layer = navigator_layer(build_report(docs))
    assert layer["domain"] == "enterprise-attack" and layer["versions"]["layer"] == "4.5"
    assert [(t["techniqueID"], t["tactic"], t["score"]) for t in layer["techniques"]] == \
        [("T1021", "lateral-movement", 3)]
    assert "other" in layer["techniques"][0]["comment"] and layer["gradient"]["maxValue"] == 3
    assert tactic_shortname("Command and Control") == "command-and-control"
