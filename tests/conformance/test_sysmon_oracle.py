"""Sysmon for Linux → ECS against Elastic's sysmon_linux pipeline test (its input is the Agent's
decoded `winlog` form, which we turn back into the XML's System and EventData fields).

Where we differ on purpose (see `trailhound.sources.sysmon`), the field is listed in INTENTIONAL.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from oracle import Agreement  # noqa: E402

from trailhound.sources.sysmon import fill  # noqa: E402

import es_eql  # noqa: E402

CASES = es_eql.SUITE.parent.parent / "corpora" / "integrations" / "sysmon_linux" / "log"
pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason=f"integration tests not found at {CASES}")

IGNORED = ("ecs.version", "tags", "event.ingested")
INTENTIONAL = {
    "event.action": "Defend's action for the event ('end'), not the pipeline's constant 'log'",
    "process.name": "the executable's base name, not the syslog program 'sysmon'",
}
_LEVEL = {"information": "4", "warning": "3", "error": "2", "critical": "1", "verbose": "5"}


def _xml_fields(event: dict) -> tuple[dict, dict]:
    w = event["winlog"]
    data = dict(w["event_data"])
    system = {"EventID": w["event_id"], "Provider.Name": data.pop("provider_name"), "Provider.Guid": w["provider_guid"],
              "TimeCreated.SystemTime": w["time_created"], "Level": _LEVEL[w["level"]], "EventRecordID": w["record_id"],
              "Computer": w["computer_name"], "Channel": w["channel"], "Version": data.pop("version"),
              "Opcode": "0" if data.pop("opcode") == "Info" else "",
              "Execution.ProcessID": str(w["process"]["pid"]), "Execution.ThreadID": str(w["process"]["thread"]["id"])}
    return system, data


def test_sysmon_matches_elastic_pipeline():
    inputs = json.loads((CASES / "test-sysmon.json").read_text())["events"]
    expected = json.loads((CASES / "test-sysmon.json-expected.json").read_text())["expected"]
    a = Agreement()
    for event, want in zip(inputs, expected, strict=True):
        doc = {"host": {"hostname": event["log"]["syslog"]["hostname"]}}
        fill(doc, *_xml_fields(event))
        a.add(event["winlog"]["record_id"], doc, want, IGNORED, lambda _, key: key in INTENTIONAL)
    equal, common, total, problems = a.equal, a.common, a.total, a.problems
    print(f"sysmon_linux: agreement {equal}/{common}, coverage {common}/{total}")
    assert problems == []
    assert equal == common - sum(1 for _ in inputs) * len(INTENTIONAL)
