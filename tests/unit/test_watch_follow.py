"""Following files (sources/tail.py): lines cut from appended bytes, the formats' readers fed line by line,
rotation by rename and by copytruncate, truncation, delete and re-create, globs, checkpoints of positions."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from trailhound.sources import load_events
from trailhound.sources.formats import ReadOptions
from trailhound.sources.inputs import Source
from trailhound.sources.normalize import documents
from trailhound.sources.registry import registry
from trailhound.sources.tail import Follower, FollowError, LineCutter, StreamDecoder

REPO = Path(__file__).resolve().parents[2]
AUDIT = REPO / "tests/fixtures/lab/authorized_keys/audit.log"
AUTH = REPO / "tests/fixtures/lab/brute_force/auth.log"


class Intake:
    """Collects what a Follower gives, as the pipeline would take it."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.docs: list[tuple[int, dict, int]] = []
        self.closed: set[int] = set()
        self.idle: dict[int, bool] = {}
        self.enrich: dict[int, bool] = {}

    def add_source(self, name, enrich):
        self.names.append(name)
        return len(self.names) - 1

    def set_enrich(self, source, enrich):
        self.enrich[source] = enrich

    def set_idle(self, source, idle):
        self.idle[source] = idle

    def add(self, source, doc, line):
        self.docs.append((source, doc, line))

    def close_source(self, source):
        self.closed.add(source)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def follower(paths, intake, clock=None, **kw):
    skips = []
    f = Follower([str(p) for p in paths], intake, skip=lambda *a: skips.append(a), clock=clock or Clock(), **kw)
    f.skips = skips
    return f


def test_line_cutter_keeps_a_partial_line():
    c = LineCutter()
    assert c.feed(b"ab") == []
    assert c.feed(b"c\nde\n") == [(1, b"abc", 0), (2, b"de", 4)]
    assert c.feed(b"f") == [] and c.offset == 7
    assert c.flush() == [(3, b"f", 7)] and c.offset == 8


def test_decoder_in_small_pieces_gives_the_documents_of_one_read(tmp_path):
    """An audit event whose records straddle every cut: the reader waits for its next record."""
    fmt = registry()["auditd"]
    data = AUDIT.read_bytes()[:40000]
    (tmp_path / "audit.log").write_bytes(data)
    options = ReadOptions(year=2026)
    whole = list(documents(Source.open(str(tmp_path / "audit.log")), fmt, options, lambda *a: None))
    d = StreamDecoder(str(tmp_path / "audit.log"), fmt, options, lambda *a: None)
    c = LineCutter()
    got = []
    for i in range(0, len(data), 97):
        got += d.push(c.feed(data[i:i + 97]))
    got += d.push(c.flush()) + d.close()
    assert [line for _, line in got] == [line for _, line in whole]
    assert len(got) > 10 and [doc for doc, _ in got] == [doc for doc, _ in whole]


def test_decoder_knows_the_first_line_of_an_open_event():
    fmt = registry()["auditd"]
    lines = AUDIT.read_bytes().split(b"\n")[:3]
    d = StreamDecoder("a", fmt, ReadOptions(), lambda *a: None)
    d.push([(1, lines[0], 0)])
    assert d.pending_from() == (1, 0)
    d.stop()


def _read_all(paths):
    return load_events([str(p) for p in paths]).report.events


def test_follow_from_start_and_from_end(tmp_path):
    log = tmp_path / "auth.log"
    log.write_bytes(AUTH.read_bytes())
    intake = Intake()
    f = follower([log], intake, from_start=True)
    f.poll()
    assert len(intake.docs) == _read_all([AUTH])
    intake2 = Intake()
    f2 = follower([log], intake2)
    f2.poll()
    assert intake2.docs == []  # from the end: nothing yet
    extra = AUTH.read_bytes().split(b"\n")[:3]
    with open(log, "ab") as fh:
        fh.write(b"\n".join(extra[:2]) + b"\n" + extra[2][:10])  # a partial last line waits
    f2.poll()
    assert [line for _, _, line in intake2.docs][-1] == 2 and len(intake2.docs) == 2
    with open(log, "ab") as fh:
        fh.write(extra[2][10:] + b"\n")
    f2.poll()
    assert len(intake2.docs) == 3
    assert intake2.enrich == {0: True}  # a syslog file: its events go through the process tree
    f.close()
    f2.close()


def test_rotation_by_rename_reads_the_old_file_to_its_end_then_the_new(tmp_path):
    lines = AUTH.read_bytes().split(b"\n")
    log = tmp_path / "auth.log"
    log.write_bytes(b"\n".join(lines[:5]) + b"\n")
    clock = Clock()
    intake = Intake()
    f = follower([log], intake, clock=clock, from_start=True)
    f.poll()
    assert len(intake.docs) == 5
    with open(log, "ab") as fh:  # written before the rename, read after it
        fh.write(lines[5] + b"\n")
    os.rename(log, tmp_path / "auth.log.1")
    log.write_bytes(b"\n".join(lines[6:9]) + b"\n")
    f.poll()
    f.poll()
    clock.t += 5
    f.poll()
    f.poll()
    assert [(s, line) for s, _, line in intake.docs] == [(0, n) for n in range(1, 7)] + [(1, n) for n in range(1, 4)]
    assert intake.closed == {0}
    assert any("renamed or deleted" in n for n in f.notes)
    f.close()


def test_copytruncate_and_truncation_read_again_from_the_start(tmp_path):
    lines = AUTH.read_bytes().split(b"\n")
    log = tmp_path / "auth.log"
    log.write_bytes(b"\n".join(lines[:6]) + b"\n")
    intake = Intake()
    f = follower([log], intake, from_start=True)
    f.poll()
    with open(log, "r+b") as fh:  # copytruncate: the same inode, cut to nothing, written again
        fh.truncate(0)
    with open(log, "ab") as fh:
        fh.write(b"\n".join(lines[6:8]) + b"\n")
    f.poll()
    f.poll()
    assert [(s, line) for s, _, line in intake.docs] == [(0, n) for n in range(1, 7)] + [(1, 1), (1, 2)]
    assert any("truncated" in n for n in f.notes)
    # cut and written again past the old offset between two polls: the first bytes tell
    with open(log, "r+b") as fh:
        fh.truncate(0)
        fh.write(b"\n".join(lines[20:40]) + b"\n")
    f.poll()
    f.poll()
    assert [line for s, _, line in intake.docs if s == 2] == list(range(1, 21))
    f.close()


def test_delete_and_recreate_and_a_glob_picks_up_new_files(tmp_path):
    lines = AUTH.read_bytes().split(b"\n")
    clock = Clock()
    intake = Intake()
    f = follower([tmp_path / "*.log"], intake, clock=clock)
    f.poll()
    (tmp_path / "a.log").write_bytes(b"\n".join(lines[:2]) + b"\n")  # appeared after start: read from its start
    f.poll()
    f.poll()
    assert len(intake.docs) == 2
    (tmp_path / "a.log").unlink()
    f.poll()
    clock.t += 5
    f.poll()
    assert intake.closed == {0}
    (tmp_path / "a.log").write_bytes(b"\n".join(lines[2:5]) + b"\n")
    f.poll()
    f.poll()
    assert [(s, line) for s, _, line in intake.docs][2:] == [(1, 1), (1, 2), (1, 3)]
    f.close()


def test_a_missing_path_is_waited_for_and_a_directory_refused(tmp_path):
    intake = Intake()
    f = follower([tmp_path / "later.log"], intake)
    f.poll()
    assert any("waiting for it" in n for n in f.notes)
    (tmp_path / "later.log").write_text('{"@timestamp": "2026-01-01T00:00:00Z", "a": 1}\n')
    f.poll()
    f.poll()
    assert [d for _, d, _ in intake.docs] == [{"@timestamp": "2026-01-01T00:00:00Z", "a": 1}]
    assert intake.enrich == {0: False}  # ECS NDJSON: as it is
    f.close()
    (tmp_path / "dir").mkdir()
    with pytest.raises(FollowError, match="not a regular file"):
        follower([tmp_path / "dir"], Intake()).poll()


def test_bad_ndjson_lines_are_reported_with_line_and_reason(tmp_path):
    log = tmp_path / "e.ndjson"
    log.write_bytes(b'{"a": 1}\n{"a": \n[1]\n\n{"b": 2}\n')
    intake = Intake()
    f = follower([log], intake, from_start=True)
    f.poll()
    assert [line for _, _, line in intake.docs] == [1, 5]
    assert [(n, r.split(":")[0]) for _, n, r in f.skips] == [(2, "invalid JSON"), (3, "not a JSON object (found an array)")]
    f.close()


def test_a_quiet_audit_log_without_eoe_closes_its_last_event(tmp_path):
    """The lab's audit logs have no EOE: the last event would wait for the next; after a quiet second it goes."""
    data = AUDIT.read_bytes()
    log = tmp_path / "audit.log"
    log.write_bytes(data)
    clock = Clock()
    intake = Intake()
    f = follower([log], intake, clock=clock, from_start=True)
    f.poll()
    held = _read_all([AUDIT]) - len(intake.docs)
    assert held > 0
    clock.t += 2
    f.poll()
    assert len(intake.docs) == _read_all([AUDIT])
    f.close()


def test_in_a_busy_audit_log_an_event_with_no_new_record_is_closed_on_its_own(tmp_path):
    """Regression (live lab): an audit log is never quiet on a busy host, and it has no EOE, so an event waited
    for 50 later ones (seconds) before it was evaluated. Now an event that got no record for `event_seconds`
    goes, while the file keeps growing; the documents are those of one read of the file, no line reported."""
    lines = AUDIT.read_bytes().splitlines(keepends=True)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines[:-1]))
    clock = Clock()
    intake = Intake()
    f = follower([log], intake, clock=clock, from_start=True, event_seconds=0.3)
    f.poll()
    first = len(intake.docs)
    held = _read_all([log]) - first
    assert held > 0  # the last events wait for companions
    clock.t += 0.1
    with open(log, "ab") as out:
        out.write(lines[-1])  # the file is not quiet: a new record, but no companion for the held events
    f.poll()
    assert len(intake.docs) < _read_all([AUDIT])  # not yet: 0.1 s is not long enough
    clock.t += 0.25  # 0.35 s after the held events' last records, 0.25 s after the new one's
    f.poll()
    got = [d for _, d, _ in intake.docs]
    whole = load_events([str(AUDIT)])
    want = whole.documents(range(whole.frame.height))
    assert [d["@timestamp"] for d in got] == [d["@timestamp"] for d in want] and f.skips == []
    assert [d.get("process", {}).get("args") for d in got] == [d.get("process", {}).get("args") for d in want]
    f.close()


def test_a_busy_audit_log_with_event_seconds_off_waits_for_later_events(tmp_path):
    lines = AUDIT.read_bytes().splitlines(keepends=True)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines))
    clock = Clock()
    intake = Intake()
    f = follower([log], intake, clock=clock, from_start=True, event_seconds=None, close_events_after=60)
    f.poll()
    clock.t += 5
    f.poll()
    assert len(intake.docs) < _read_all([log])
    f.close()


def test_resume_from_a_checkpoint_repeats_and_loses_nothing(tmp_path):
    """Stopped in the middle of audit events, resumed from the saved positions: every event once."""
    data = AUDIT.read_bytes() + (REPO / "tests/fixtures/lab/brute_force/audit.log").read_bytes()
    log = tmp_path / "audit.log"
    log.write_bytes(data[: len(data) // 2 + 17])  # cut inside a line, inside an event
    intake = Intake()
    f = follower([log], intake, from_start=True)
    f.poll()
    saved = orjson.loads(orjson.dumps(f.to_dict()))
    f.close()
    # read again from the first record of an event not finished (the reader gives events in the order of their
    # first records, so none after it was given yet)
    given = max(line for _, _, line in intake.docs)
    assert saved[0]["line"] > given and saved[0]["offset"] < len(data) // 2 and saved[0]["done"] == []
    with open(log, "ab") as fh:
        fh.write(data[len(data) // 2 + 17:])
    f2 = follower([log], intake)
    assert f2.resume(saved) == []
    clock = f2.clock
    f2.poll()
    clock.t += 5
    f2.poll()
    lines = [line for _, _, line in intake.docs]
    assert len(lines) == len(set(lines)) == _read_all([log])
    f2.close()


def test_resume_finds_a_file_renamed_while_stopped(tmp_path):
    lines = AUTH.read_bytes().split(b"\n")
    log = tmp_path / "auth.log"
    log.write_bytes(b"\n".join(lines[:4]) + b"\n")
    intake = Intake()
    f = follower([log], intake, from_start=True)
    f.poll()
    saved = f.to_dict()
    f.close()
    with open(log, "ab") as fh:
        fh.write(lines[4] + b"\n")
    os.rename(log, tmp_path / "auth.log.1")
    log.write_bytes(lines[5] + b"\n")
    clock = Clock()
    f2 = follower([log], intake, clock=clock)
    assert f2.resume(saved) == []
    f2.poll()
    f2.poll()
    clock.t += 5
    f2.poll()
    f2.poll()
    assert [(s, line) for s, _, line in intake.docs] == [(0, n) for n in range(1, 6)] + [(1, 1)]
    f2.close()
