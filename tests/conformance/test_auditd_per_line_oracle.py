"""The auditd reader against the auditd integration's per-line pipeline (test-auditd-raw.log,
test-enhanced-syscall.log): that pipeline makes one document per record, Trailhound (like
Auditbeat) one per event, so each expected document is compared with our event holding its
record (found through `event.original`), on the ECS fields both modes describe the same way.

What the two modes say differently is listed in PER_LINE, with the reason; every other field the
pipeline sets and we set is compared. Run directly to print the per-file scores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from oracle import Agreement  # noqa: E402

from trailhound.sources.auditd import read  # noqa: E402
from trailhound.sources.formats import ReadOptions  # noqa: E402

import es_eql  # noqa: E402

CASES = es_eql.SUITE.parent.parent / "corpora" / "integrations" / "auditd" / "log"
FILES = ["test-auditd-raw.log", "test-enhanced-syscall.log"]
pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason=f"integration tests not found at {CASES}")

# prefix -> why the per-line pipeline and an event-level reader differ there by design
PER_LINE = {
    "auditd.log.": "the per-line pipeline's own namespace for a record's raw keys (ours: auditd.data, auditd.paths)",
    "event.action": "per line: the record type in lower case; per event: Auditbeat's normalized action",
    "event.category": "per line: guessed from the record type; per event: from the syscall and record type",
    "event.type": "as event.category",
    "event.original": "per line: that record; per event: the list of its records",
    "event.kind": "same value; compared with the rest would be trivially equal",
    "process.executable": "per line, an EXECVE record's executable is its a0 (a pipeline quirk); ours is SYSCALL exe",
    "user.audit.id": "per line keeps 4294967295; Auditbeat (and we) drop an unset auid",
    "user.id": "per event, USER_* records map the actor (auid) to user.id, as Auditbeat does",
    "user.effective.": "per event, the acct of USER_* records is user.effective, as Auditbeat does",
    "user.terminal": "per line only (Auditbeat keeps it in auditd.data.terminal)",
    "tags": "the test's preserve_original_event",
    "ecs.version": "set by the ingest pipeline",
    "source.geo.": "GeoIP enrichment in the pipeline",
    "source.as.": "GeoIP enrichment in the pipeline",
    "source.address": "per line only; Auditbeat sets source.ip",
    "destination.address": "per line only (MAC_IPSEC_EVENT)",
    "source.ip": "per line from a MAC_IPSEC_EVENT's src; Auditbeat sets no source for that record type",
    "group.id": "per line from a record's gid; per event it is user.group.id, as Auditbeat",
    "user.name": "per line from acct; per event acct is user.effective.name, as Auditbeat",
    "user.group.id": "per event it comes from the SYSCALL record only, as Auditbeat",
    "user.saved.id": "as user.group.id",
    "user.target.id": "per line from a record's id field; Auditbeat maps it only for some record types",
    "process.title": "per line decoded from PROCTITLE only when the pipeline can; compared where both decode it",
    "process.exit_code": "per line, a SYSCALL's return value; that is not a process exit code (auditd.data.exit keeps it)",
    "network.direction": "per event it comes with a SOCKADDR record, as Auditbeat's",
    "container.": "per line from VIRT_MACHINE_ID's vm fields; Auditbeat maps no container for it",
    "event.outcome": "compared below for all but AVC records, whose outcome the pipeline derives from seresult",
}


def compare(name: str) -> Agreement:
    lines = (CASES / name).read_text(encoding="utf-8", errors="replace").splitlines()
    docs = [d for d, _ in read(enumerate(lines, 1), lambda n, r: None, ReadOptions())]
    by_line = {raw: d for d in docs for raw in d["event"].get("original", [])}
    expected = json.loads((CASES / f"{name}-expected.json").read_text())["expected"]
    a = Agreement()
    for want in expected:
        ours = by_line.get(want["event"]["original"])
        if ours is None:  # a record no event of ours holds (an orphan EOE, say): nothing to compare
            continue
        ignored = tuple(k for k in PER_LINE if k != "event.outcome" or "AVC" in want["event"]["original"][:20])
        a.add(want["event"]["original"][:40], ours, want, ignored, lambda _, key: False)
    return a


@pytest.mark.parametrize("name", FILES)
def test_events_agree_with_the_per_line_pipeline(name):
    a = compare(name)
    assert a.problems == []
    assert a.common > 0 and a.equal == a.common


if __name__ == "__main__":
    for name in FILES:
        a = compare(name)
        print(f"{name}: agreement {a.equal}/{a.common}, compared {a.common} of {a.total} fields; unexplained "
              f"{len(a.problems)}")
        for p in a.problems:
            print("   ", p)
