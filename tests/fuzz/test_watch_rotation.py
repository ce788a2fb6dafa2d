"""Rotation in the middle of a live watch (issue 11): the alerts are those of the two files read one after the other.

`run_watch` follows auth.log while it grows; logrotate-style, the file is renamed to auth.log.1 (with lines still
appended to it after the rename, as a writer does until it reopens) and a new auth.log is written; or the file is
copied and truncated in place (copytruncate). The alerts written must be those of the live pipeline over the
rotated file, then the new one, with nothing lost and nothing repeated.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import orjson
import pytest
from watch_harness import Keep

from trailhound.pipeline.hunt import plan
from trailhound.pipeline.watch import StreamPipeline, WatchSettings, run_watch
from trailhound.rules.loader import load_rules
from trailhound.sources.formats import ReadOptions
from trailhound.sources.tail import LineCutter, StreamDecoder, registry

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / "tests/fixtures/lab/brute_force/auth.log"


def reference(planned, parts: list[bytes]) -> dict[str, bytes]:
    """The live pipeline over the pieces as files read one after the other, everything evaluated."""
    sink = Keep()
    pipe = StreamPipeline(planned, [sink])
    for n, data in enumerate(parts):
        i = pipe.add_source(f"part{n}", True)
        d = StreamDecoder("auth.log", registry()["syslog"], ReadOptions(year=2026), lambda *a: None)
        c = LineCutter()
        for doc, line in d.push(c.feed(data)) + d.close():
            pipe.add(i, doc, line)
        pipe.close_source(i)
    pipe.step(final=True)
    return {k: _strip(v) for k, v in sink.out.items()}


def events_in(data: bytes) -> int:
    """The events a follower has read once it has read `data` (whole lines; the decoder may hold none back)."""
    d = StreamDecoder("auth.log", registry()["syslog"], ReadOptions(year=2026), lambda *a: None)
    return len(d.push(LineCutter().feed(data)))


def _strip(blob: bytes) -> bytes:
    doc = orjson.loads(blob)
    doc.pop("@timestamp")
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("how", ["rename", "copytruncate"])
def test_rotation_in_the_middle(tmp_path, how):
    planned = plan(load_rules([REPO / "src/trailhound/pack"]))
    lines = [x + b"\n" for x in LOG.read_bytes().splitlines()]
    rng = random.Random(5)
    cut = len(lines) // 2
    log = tmp_path / "auth.log"
    log.write_bytes(b"")
    sink = Keep()
    stop = threading.Event()
    seen: list[int] = []
    notes: list = []
    settings = WatchSettings(batch_seconds=0.05, poll_seconds=0.02, idle_seconds=0.3, status_seconds=0.1)
    watcher = threading.Thread(target=lambda: seen.append(run_watch(
        planned, [str(log)], None, sinks=[sink], read_options=ReadOptions(year=2026), settings=settings,
        from_start=True, stop=stop, on_status=lambda st: seen.append(st.events), on_note=notes.append,
        on_skip=lambda *a: notes.append(a)).stats.events))
    watcher.start()
    # the file is empty: from its start is its end, and a watcher slow to start (a loaded machine) misses nothing

    def wait(what, done) -> None:
        """Until `done()`, however slow the machine: nothing here depends on how fast the watcher runs."""
        deadline = time.monotonic() + 600
        while not done():
            assert time.monotonic() < deadline, (what, seen[-5:], notes)
            time.sleep(0.05)

    def append(path: Path, chunk: list[bytes]) -> None:
        data = b"".join(chunk)
        i = 0
        while i < len(data):  # in pieces that cut lines
            j = min(len(data), i + rng.randint(1, 400))
            with open(path, "ab") as fh:
                fh.write(data[i:j])
            i = j
            if rng.random() < 0.2:
                time.sleep(0.01)

    append(log, lines[:cut - 3])
    if how == "rename":
        os.rename(log, tmp_path / "auth.log.1")
        append(tmp_path / "auth.log.1", lines[cut - 3:cut])  # the writer has not reopened yet
        append(log, lines[cut:])
        parts = [b"".join(lines[:cut]), b"".join(lines[cut:])]
    else:
        # copytruncate loses what is written between the copy and the cut and not yet read: the cut waits until the
        # watcher has read every event written so far (a fixed sleep stalled the test on a loaded machine)
        written = events_in(b"".join(lines[:cut - 3]))
        wait("read before the cut", lambda: bool(seen) and seen[-1] >= written)
        (tmp_path / "auth.log.1").write_bytes(log.read_bytes())
        with open(log, "r+b") as fh:
            fh.truncate(0)
        append(log, lines[cut - 3:])
        parts = [b"".join(lines[:cut - 3]), b"".join(lines[cut - 3:])]
    want = reference(planned, parts)
    assert len(want) > 5
    wait("every alert", lambda: all(k in sink.out for k in want))
    stop.set()
    watcher.join(60)
    got = {k: _strip(v) for k, v in sink.out.items()}
    assert sorted(set(want) - set(got)) == [] and sorted(set(got) - set(want)) == []
    assert got == want
    assert sink.times == {k: 1 for k in want}  # no suppression in the pack: each alert written once
