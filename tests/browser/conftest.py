"""Reports opened in a real headless Chromium (Debian's, driven by Playwright without a download),
and the inputs they are made from: the lab's recorded capture, and a hostile corpus built from
it (an auth.log whose user names and an audit.log whose arguments are markup, script, URLs,
bidi overrides and a long value)."""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app

CHROMIUM = os.environ.get("TRAILHOUND_CHROMIUM", "/usr/bin/chromium")
LAB = Path(__file__).parents[1] / "fixtures" / "lab"

# Each payload, if it ever ran, would set window.__pwned or open a dialog; if it were fetched, a request would show.
PAYLOADS = [
    "<script>window.__pwned=1</script>",
    "</script><script>window.__pwned=2</script>",
    "<img src=x onerror=window.__pwned=3>",
    '"><svg onload=window.__pwned=4>',
    "javascript:window.__pwned=5",
    "<!--<script>window.__pwned=6</script>-->",
    "<a href=\"https://evil.example/x\">click</a>",
    "data:text/html,<script>alert(7)</script>",
    "\u202egnp.exe\u2028\u2029<iframe src=https://evil.example/>",
    "{{constructor.constructor('window.__pwned=8')()}}",
    "@@JS@@ @@DATA@@ ${window.__pwned=9}",
]


@dataclass
class Page:
    page: object
    console: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    dialogs: list = field(default_factory=list)
    errors: list = field(default_factory=list)


@pytest.fixture(scope="session")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the browser extra)")
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def open_report(chromium):
    """Open a report file; every console message, request, dialog and page error is recorded, and
    every request but the file itself is refused."""
    pages = []

    def opener(path: Path, hash: str = "") -> Page:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        seen = Page(page)
        url = path.resolve().as_uri()
        page.on("console", lambda msg: seen.console.append((msg.type, msg.text)))
        page.on("pageerror", lambda e: seen.errors.append(str(e)))
        page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))

        def intercept(route):
            seen.requests.append(route.request.url)
            if route.request.url.split("#")[0] == url:
                route.continue_()
            else:
                route.abort()

        page.route("**/*", intercept)
        page.goto(url + hash)
        page.wait_for_selector("html[data-ready='1']", timeout=30_000)
        pages.append(context)
        return seen

    yield opener
    for c in pages:
        c.close()


def hunt(tmp: Path, files: list[Path], *extra: str) -> tuple[Path, Path, Path]:
    alerts, html, summary = tmp / "alerts.ndjson", tmp / "report.html", tmp / "summary.json"
    result = CliRunner().invoke(app, ["hunt", *map(str, files), "--exit-zero", "-o", str(alerts), "--html", str(html),
                                      "--summary", str(summary), *extra])
    assert result.exit_code == 0, result.output
    return alerts, html, summary


def lab_files() -> list[Path]:
    return sorted(LAB.glob("*/audit.log")) + sorted(LAB.glob("*/auth.log"))


@pytest.fixture
def hunt_lab():
    """Hunt the lab capture again (into a directory, with more options); the alerts file."""
    return lambda tmp, *extra: hunt(tmp, lab_files(), *extra)[0]


@pytest.fixture(scope="session")
def lab_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab-report")
    return hunt(tmp, lab_files())


def hostile_auth_log() -> str:
    """Failed logins for hostile user names from one address (a brute force), then a success."""
    lines = []
    second = 0
    for _ in range(2):
        for p in PAYLOADS:
            second += 1
            lines.append(f"2026-11-23T15:00:{second:02d}.000000+00:00 victim-host sshd[{3000 + second}]: "
                         f"Failed password for invalid user {p} from 10.66.6.6 port {40000 + second} ssh2")
    lines.append("2026-11-23T15:00:59.000000+00:00 victim-host sshd[3999]: Accepted password for "
                 f"{PAYLOADS[1]} from 10.66.6.6 port 41000 ssh2")
    # a 1.1 MB line: over the reader's 1 MiB bound, so a skipped line the report lists
    lines.append("2026-11-23T15:01:00.000000+00:00 victim-host sshd[4000]: Failed password for invalid user "
                 + PAYLOADS[0] * 40_000 + " from 10.66.6.6 port 42000 ssh2")
    return "\n".join(lines) + "\n"


def hostile_audit_log() -> str:
    """The lab's socks_tunnel capture with the destination argument of its `ssh -D` replaced by
    every payload, hex-encoded as auditd writes arguments with special characters, plus a 100 KB
    argument (an audit record holds at most 256 KiB)."""
    text = (LAB / "socks_tunnel" / "audit.log").read_text()
    payload = " ".join(PAYLOADS) + " " + "A" * 100_000
    hexed = payload.encode().hex().upper()
    old = 'a9="lab-victim@10.203.77.2"'
    assert old in text, "the lab capture changed: update the hostile corpus"
    return text.replace(old, f"a9={hexed}", 1)


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile-report")
    auth, audit = tmp / "auth.log", tmp / "audit.log"
    auth.write_text(hostile_auth_log(), encoding="utf-8")
    audit.write_text(hostile_audit_log(), encoding="utf-8")
    return hunt(tmp, [audit, auth], "--year", "2026")
