"""The report as one self-contained HTML file: our template, stylesheet and script (`assets/`),
the data as JSON in a non-executed script block, and each investigation guide as sanitized HTML
in a `<template>`.

What keeps log content inert:
* the data block is JSON with `<`, `>`, `&`, U+2028 and U+2029 written as `\\u` escapes, so no
  value can close the block (`</script>`), open a comment (`<!--`) or end a line for a parser;
* the script builds the page with DOM calls that take text (never `innerHTML` with data) and
  links only http(s)/mailto URLs;
* guides are CommonMark with raw HTML off (`guide.py`);
* a Content-Security-Policy forbids every fetch and any script or style but ours (by hash).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from importlib import resources

import orjson

from .model import ReportData

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_UNSAFE = re.compile("[<>&\u2028\u2029]")


def script_json(value) -> str:
    """JSON that is safe inside `<script type="application/json">`: it cannot end the element or
    start a comment, and it parses back to `value`."""
    text = orjson.dumps(value, default=str).decode()
    return _JSON_UNSAFE.sub(lambda m: _JSON_ESCAPES[m.group(0)], text)


def _asset(name: str) -> str:
    return resources.files("trailhound.report").joinpath("assets", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(script: str, style: str) -> str:
    """Nothing may be fetched; only our script and stylesheet (by hash) run."""
    return ("default-src 'none'; script-src " + _sha256(script) + "; style-src " + _sha256(style)
            + "; img-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'; object-src 'none'")


def render_html(data: ReportData, title: str = "Trailhound report") -> str:
    """The whole page as text."""
    script, style = _asset("report.js"), _asset("report.css")
    if "</" in script or "</" in style:  # our assets are inlined raw: they must not end their element
        raise ValueError("report assets may not contain '</'")
    notes = "\n".join(f'<template id="note-{i}">{body}</template>' for i, body in sorted(data.notes.items()))
    parts = {
        "CSP": html.escape(content_security_policy(script, style), quote=False).replace('"', "&quot;"),
        "TITLE": html.escape(title, quote=True),
        "CSS": style,
        "JS": script,
        "NOTES": notes,
        "DATA": script_json(data.to_json()),
    }
    # one pass over the template only: the inserted parts are never scanned for markers
    return re.sub(r"@@([A-Z]+)@@", lambda m: parts[m.group(1)], _asset("report.html"))
