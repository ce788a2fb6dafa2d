"""`trailhound report` and `hunt --html/--navigator/--markdown`: what they write, how they read
an alerts file (bad lines said, not dropped), and the errors they give instead of tracebacks."""

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trailhound.cli.main import app

LAB = Path(__file__).parents[1] / "fixtures" / "lab" / "authorized_keys"
FILES = [str(LAB / "audit.log"), str(LAB / "auth.log")]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def hunted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hunt")
    alerts, summary = tmp / "alerts.ndjson", tmp / "summary.json"
    r = invoke("hunt", *FILES, "--exit-zero", "-o", str(alerts), "--summary", str(summary), "--html",
               str(tmp / "h.html"), "--navigator", str(tmp / "h.layer.json"), "--markdown", str(tmp / "h.md"))
    assert r.exit_code == 0, r.output
    return tmp, alerts, summary


def data_of(page: Path) -> dict:
    text = page.read_text()
    start = text.index('id="th-data">') + len('id="th-data">')
    return json.loads(text[start:text.index("</script>", start)])


def test_hunt_writes_the_report_layer_and_summary(hunted):
    tmp, alerts, summary = hunted
    n = sum(1 for line in alerts.read_text().splitlines() if line)
    data = data_of(tmp / "h.html")
    assert len(data["docs"]) == n == json.loads(summary.read_text())["alerts"] > 0
    assert data["summary"]["rules_run"] == 23 and data["summary"]["inputs"]["events"] > 0
    assert any(p["nodes"] for p in data["processes"])  # process trees from the hunt's event files
    layer = json.loads((tmp / "h.layer.json").read_text())
    assert {t["techniqueID"] for t in layer["techniques"]} >= {"T1098.004", "T1021.004"}
    assert f"**{n} alerts**" in (tmp / "h.md").read_text()


def test_report_from_an_alerts_file_equals_the_hunts(hunted, tmp_path):
    tmp, alerts, summary = hunted
    out = tmp_path / "r.html"
    r = invoke("report", str(alerts), *FILES, "--summary", str(summary), "-o", str(out), "--markdown",
               str(tmp_path / "r.md"), "--exceptions-out", str(tmp_path / "exc"))
    assert r.exit_code == 0, r.output
    mine, hunts = data_of(out), data_of(tmp / "h.html")
    for key in ("docs", "values", "alerts", "rules", "processes", "tuning"):
        assert mine[key] == hunts[key], key
    assert list((tmp_path / "exc").glob("*.exceptions.toml"))
    assert (tmp_path / "r.md").read_text() == (tmp / "h.md").read_text()


def test_report_reads_compressed_alerts_and_says_bad_lines(hunted, tmp_path):
    _, alerts, _ = hunted
    lines = alerts.read_text().splitlines()
    bad = tmp_path / "alerts.ndjson.gz"
    bad.write_bytes(gzip.compress(("\n".join([lines[0], "{not json", "[1, 2]", *lines[1:]]) + "\n").encode()))
    r = invoke("report", str(bad), "-o", str(tmp_path / "r.html"))
    assert r.exit_code == 0, r.output
    assert "alerts.ndjson.gz:2: not JSON" in r.output and "alerts.ndjson.gz:3: not a JSON object" in r.output
    data = data_of(tmp_path / "r.html")
    assert len(data["docs"]) == len(lines)
    assert [s["line"] for s in data["skipped"]] == [2, 3]
    assert data["summary"] is None  # no --summary: the page says inputs are not known


@pytest.mark.parametrize("case", ["not alerts", "missing", "summary", "dir as file", "same file", "stdout"])
def test_report_errors_exit_2_with_a_reason(case, tmp_path, hunted):
    _, alerts, _ = hunted
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\nworld\n")
    args = {
        "not alerts": ["report", str(junk), "-o", str(tmp_path / "r.html")],
        "missing": ["report", str(tmp_path / "nope.ndjson")],
        "summary": ["report", str(alerts), "--summary", str(junk), "-o", str(tmp_path / "r.html")],
        "dir as file": ["report", str(alerts), "--exceptions-out", str(junk)],
        "same file": ["report", str(alerts), "-o", str(tmp_path / "x"), "--markdown", str(tmp_path / "x")],
        "stdout": ["report", str(alerts), "-o", "-"],
    }[case]
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "error" in r.output
    expected = {"not alerts": "no alert; 2 bad lines", "missing": "nope.ndjson", "summary": "--summary",
                "dir as file": "give a directory", "same file": "same file", "stdout": "needs a file name"}[case]
    assert expected in " ".join(r.output.split())


def test_hunt_html_refuses_an_input_as_output():
    r = invoke("hunt", *FILES, "--html", FILES[0])
    assert r.exit_code == 2 and "--html" in r.output
