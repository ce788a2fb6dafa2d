"""Inputs a shell can give and content an attacker can write: stdin, FIFOs, compression by content,
UTF-16/32, hostile field values, deep documents, and what each input gave (`LoadReport.inputs`)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import subprocess
import sys
import threading
import time

import orjson
import pytest

from trailhound.sources import InputStats, SourceError, ecs_json, events_from_documents, load_events
from trailhound.sources import inputs as readers
from trailhound.sources.ecs_values import MAX_DEPTH, FieldPath
from trailhound.sources.formats import ascii_int

AUTH = ("Mar  3 10:00:01 web1 sshd[812]: Accepted publickey for deploy from 10.1.2.3 port 50022 ssh2\n"
        "Mar  3 10:00:02 web1 sshd[813]: Failed password for root from 10.1.2.4 port 50023 ssh2\n"
        "Mar  3 10:00:03 web1 sudo: deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/id\n")
AUDIT = ('type=SYSCALL msg=audit(1700000000.000:10): arch=c000003e syscall=59 success=yes exit=0 a0=1 items=1 '
         'ppid=1 pid=200 auid=1000 uid=0 comm="id" exe="/usr/bin/id" key="exec"\n'
         'type=EXECVE msg=audit(1700000000.000:10): argc=1 a0="id"\n'
         'type=EOE msg=audit(1700000000.000:10): \n')


def reasons(table) -> list[str]:
    return [s.reason for s in table.report.skipped]


# ----------------------------------------------------------------------------------------------
# Hostile values: a counted skip with its reason, or the field kept as text; never an exception


def test_ascii_int_refuses_what_int_or_isdigit_get_wrong():
    assert "²".isdigit() and ascii_int("²") is None
    assert ascii_int("٣") is None and ascii_int("9" * 5000) is None and ascii_int("") is None
    assert ascii_int("42") == 42 and ascii_int(42) is None


def test_syslog_month_13_and_bad_rfc5424_times_are_skipped_with_the_reason(tmp_path):
    f = tmp_path / "s.log"
    f.write_text("<13>1 2026-13-01T10:00:00Z host app 12 - - month 13\n"
                 "<13>1 2026-01-01T99:00:00Z host app 12 - - hour 99\n"
                 "<13>1 9999-12-31T23:59:59-23:59 host app 1 - - past year 9999 in UTC\n"
                 "<13>1 2026-01-01T10:00:00Z host app ² - - a pid of a superscript two\n"
                 "Mar  3 10:00:01 web1 sshd[1²]: pid with a superscript\n")
    t = load_events([f], ["process.pid", "process.name", "message"])
    assert t.report.events == 2 and t.report.skipped_count == 3
    assert [s.line for s in t.report.skipped] == [1, 2, 3]
    assert reasons(t)[0] == "bad RFC 5424 timestamp '2026-13-01T10:00:00Z'"
    assert t.frame["process.name"].to_list() == ["app", None]  # the odd pid is left out, the event kept
    assert "process.pid" not in t.present
    assert t.report.inputs == [InputStats(str(f), "syslog", 5, 2, 3)]


def test_journald_20_digit_timestamp_and_unicode_digit_pid(tmp_path):
    f = tmp_path / "j.json"
    f.write_text('{"__REALTIME_TIMESTAMP":"99999999999999999999","MESSAGE":"x"}\n'
                 '{"__REALTIME_TIMESTAMP":null,"MESSAGE":"x"}\n'
                 '{"__REALTIME_TIMESTAMP":"1700000000000000","MESSAGE":"x","_PID":"²","SYSLOG_IDENTIFIER":"a"}\n'
                 '{"__REALTIME_TIMESTAMP":"1700000000000000","MESSAGE":"y","_PID":"' + "9" * 5000 + '",'
                 '"SYSLOG_IDENTIFIER":{"forged":1},"_HOSTNAME":["h"]}\n')
    t = load_events([f], ["process.pid", "process.name", "host.name"], format="syslog")
    assert t.report.events == 2 and [s.line for s in t.report.skipped] == [1, 2]
    assert reasons(t)[0].startswith("bad __REALTIME_TIMESTAMP '99999999999999999999'")
    assert "process.pid" not in t.present
    assert t.frame["process.name"].to_list() == ["a", '{"forged":1}']


def test_sysmon_unicode_digits_stay_text_and_the_event_is_kept(tmp_path):
    f = tmp_path / "sysmon.log"
    f.write_text('Jan  1 10:00:00 host sysmon: <Event><System><EventID>²</EventID><Version>²</Version>'
                 '<Execution ProcessID="²" ThreadID="1"/><Computer>h</Computer></System><EventData>'
                 '<Data Name="ProcessId">²</Data><Data Name="Image">/bin/sh</Data>'
                 '<Data Name="SourcePort">²</Data></EventData></Event>\n')
    t = load_events([f], ["event.code", "winlog.version", "process.pid", "process.name"], options=None)
    assert t.report.events == 1 and t.report.skipped_count == 0
    assert t.frame.row(0, named=True) | {} == {"event.code": "²", "process.name": "sh", "__row": 0, "__file": 0}


def test_auditd_unicode_digits_and_out_of_range_headers(tmp_path):
    f = tmp_path / "audit.log"
    f.write_text('type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e syscall=² success=yes exit=-² a0=1 '
                 'ppid=1 pid=' + "9" * 30 + ' auid=0 uid=0 comm="x" exe="/x"\n'
                 'type=EXECVE msg=audit(1700000000.000:1): argc=² a0="x"\n'
                 'type=EOE msg=audit(1700000000.000:1):\n'
                 'type=SECCOMP msg=audit(1700000000.000:2): sig=² pid=1 comm="y"\n'
                 'type=SYSCALL msg=audit(99999999999999999999.000:3): arch=c000003e syscall=59 success=yes\n'
                 'type=SYSCALL msg=audit(1700000000.000:' + "9" * 5000 + '): arch=c000003e syscall=59\n')
    t = load_events([f], ["auditd.data.syscall", "auditd.data.exit", "auditd.data.sig", "process.pid"])
    assert t.report.events == 2 and [s.line for s in t.report.skipped] == [5, 6]
    assert set(reasons(t)) == {"audit record whose time or serial is out of range"}
    assert t.frame["auditd.data.syscall"].to_list() == ["²", None]  # kept as text
    assert t.frame["auditd.data.sig"].to_list() == [None, "²"]


# ----------------------------------------------------------------------------------------------
# Deep documents and long field names


def deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 300, 100_000])
@pytest.mark.parametrize("fields", [None, ["b"]])
def test_deep_documents_are_skipped_with_the_reason(tmp_path, levels, fields):
    f = tmp_path / "deep.ndjson"
    f.write_text(deep(levels) + "\n" + '{"b": 1}\n')
    start = time.perf_counter()
    t = load_events([f], fields)
    assert time.perf_counter() - start < 10
    assert t.report.events == 1 and [s.line for s in t.report.skipped] == [1]
    assert "depth" in reasons(t)[0] or "deeper than" in reasons(t)[0]
    assert t.documents([0]) == [{"b": 1}]


def test_a_document_at_the_depth_limit_loads(tmp_path):
    f = tmp_path / "deep.ndjson"
    f.write_text(deep(MAX_DEPTH - 1) + "\n")
    t = load_events([f])
    assert t.report.events == 1 and t.report.skipped_count == 0 and len(t.present) == 1


def test_a_field_name_of_too_many_parts_is_skipped(tmp_path):
    f = tmp_path / "dots.ndjson"
    f.write_text(orjson.dumps({".".join(["k"] * (MAX_DEPTH + 1)): 1}).decode() + '\n{"b": 1}\n')
    t = load_events([f])
    assert t.report.events == 1 and reasons(t) == [f"a field name of more than {MAX_DEPTH} parts"]


def test_deep_documents_in_memory_are_skipped():
    t = events_from_documents([orjson.loads(deep(300)), {"b": 2 ** 70}, {"c": {1: "x"}}])
    assert t.report.events == 1 and t.report.skipped_count == 2
    assert reasons(t)[1] == "a key that is not a string (1)"
    assert t.frame["b"].to_list() == [float(2 ** 70)]  # beyond 64 bits: no orjson error, a float column


def test_long_dotted_field_costs_linear_time(tmp_path):
    """Issue 15: a 22-part field took 24 s and 2.4 GB on two events; a 25-level event over 60 s."""
    name = ".".join(f"p{i}" for i in range(22))
    f = tmp_path / "two.ndjson"
    f.write_text('{"a": 1}\n{"a": 2}\n')
    start = time.perf_counter()
    assert load_events([f], [name, "a"]).frame["a"].to_list() == [1, 2]
    doc: object = 1
    for i in range(25):
        doc = {f"k{i}": doc}
    g = tmp_path / "lvl25.ndjson"
    g.write_bytes(orjson.dumps(doc) + b"\n" + orjson.dumps(doc) + b"\n")
    t = load_events([g])
    assert t.present == {".".join(f"k{i}" for i in reversed(range(25)))} and t.report.events == 2
    assert time.perf_counter() - start < 10


def test_variants_are_those_the_data_can_spell():
    path = FieldPath(".".join("abcdefghijklmnopqrstuv"))  # 22 parts: 2^21 spellings in all
    assert path.variants() == [tuple("abcdefghijklmnopqrstuv")]
    assert FieldPath("a.b.c").variants({"a.b", "b.c", "a.b.c"}) == [
        ("a", "b", "c"), ("a", "b.c"), ("a.b", "c"), ("a.b.c",)]  # lookup's order: nested first
    assert FieldPath("a.b.c").variants({"b.c"}) == [("a", "b", "c"), ("a", "b.c")]
    with pytest.raises(ValueError, match="spellings"):
        FieldPath(".".join(["a"] * 40)).variants({"a.a"})  # Fibonacci many: refused, read by lookup
    with pytest.raises(ValueError, match="parts"):
        FieldPath(".".join(["a"] * (MAX_DEPTH + 1)))


def test_duckdb_reads_a_file_whose_dotted_keys_would_explode_line_by_line(tmp_path, monkeypatch):
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0)
    name = ".".join(["a"] * 30)
    doc = {"a.a": {"a.a": {"a": 1}}}
    f = tmp_path / "x.ndjson"
    f.write_text("\n".join([orjson.dumps(doc).decode()] * 10 + [orjson.dumps({name: 5}).decode()]) + "\n")
    t = load_events([f], [name, "a.a.a.a.a"])
    assert t.frame[name].to_list() == [None] * 10 + [5] and t.frame["a.a.a.a.a"].to_list() == [1] * 10 + [None]


# ----------------------------------------------------------------------------------------------
# Every input a shell can give


def test_dev_zero_and_directories_are_refused(tmp_path):
    with pytest.raises(SourceError, match="character device"):
        load_events(["/dev/zero"])
    with pytest.raises(SourceError, match="directory"):
        load_events([tmp_path])
    assert load_events(["/dev/null"]).report.inputs == [InputStats("/dev/null", "ecs", 0, 0, 0)]


def test_an_endless_line_costs_a_bounded_amount(tmp_path):
    f = tmp_path / "long.log"
    with f.open("wb") as out:
        out.write(b"\0" * (17 << 20) + b'\n{"a": 1}\n')
    t = load_events([f])
    assert t.report.events == 1 and reasons(t) == [f"line of {(17 << 20) + 1} bytes, over the {16 << 20}-byte limit"]
    g = tmp_path / "long_auth.log"
    g.write_bytes(AUTH.encode() + b"x" * (2 << 20) + b"\n")
    t = load_events([g], ["message"])
    assert t.report.events == 3 and t.report.skipped[0].line == 4


def run_loader(*args: str, stdin: bytes | None = None, shell: str | None = None) -> dict:
    """What load_events reports in a fresh process (so stdin is really a pipe or a file)."""
    code = ("import sys, json; from trailhound.sources import load_events; t = load_events(sys.argv[1:]); "
            "print(json.dumps({'events': t.report.events, 'inputs': [vars(i) for i in t.report.inputs], "
            "'notes': t.report.notes}))")
    if shell is not None:
        out = subprocess.run(["bash", "-c", shell.replace("PY", f"{sys.executable} -c \"{code}\"")],
                             capture_output=True, check=True, timeout=60)
    else:
        out = subprocess.run([sys.executable, "-c", code, *args], input=stdin, capture_output=True, check=True,
                             timeout=60)
    return orjson.loads(out.stdout)


def test_stdin_as_dash_and_dev_stdin_from_a_pipe():
    got = run_loader("-", stdin=AUTH.encode())
    assert got["events"] == 3 and got["inputs"] == [{"file": "<stdin>", "format": "syslog", "lines": 3, "events": 3,
                                                      "skipped": 0}]
    assert run_loader("/dev/stdin", stdin=AUDIT.encode())["inputs"][0]["format"] == "auditd"


def test_process_substitution_and_a_fifo(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text(AUTH)
    got = run_loader(shell=f"PY <(cat {log}) <(gzip -c {log})")
    assert got["events"] == 6 and [i["format"] for i in got["inputs"]] == ["syslog", "syslog"]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "w") as out:
            out.write('{"a": 1}\n{"a": 2}\n')

    writer = threading.Thread(target=feed)
    writer.start()
    t = load_events([fifo])
    writer.join()
    assert t.frame["a"].to_list() == [1, 2] and t.documents([1]) == [{"a": 2}]  # the spool is read again


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compression_is_recognised_by_content_not_name(tmp_path, compress):
    f = tmp_path / "auth.txt"
    f.write_bytes(compress(AUTH.encode()))
    t = load_events([f], ["user.name"])
    assert t.report.events == 3 and t.report.inputs[0].format == "syslog"
    g = tmp_path / "events.log"
    g.write_bytes(compress(b'{"a": 1}\n{"a": 2}\n'))
    assert load_events([g]).frame["a"].to_list() == [1, 2]
    h = tmp_path / "plain.ndjson"  # text starting like a bzip2 header is text
    h.write_bytes(b'BZh9 is not a key\n{"a": 3}\n')
    t = load_events([h])
    assert t.frame["a"].to_list() == [3] and t.report.skipped_count == 1


def test_zstd_input_is_read_or_refused_clearly(tmp_path):
    f = tmp_path / "events.zst"
    try:
        import zstandard
    except ImportError:
        f.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 16)
        with pytest.raises(SourceError, match="zstd input needs the zstandard package"):
            load_events([f])
        return
    f.write_bytes(zstandard.ZstdCompressor().compress(b'{"a": 1}\n'))
    assert load_events([f]).frame["a"].to_list() == [1]


def test_a_truncated_xz_stream_keeps_what_came_before_and_counts_the_damage(tmp_path):
    f = tmp_path / "events.xz"
    f.write_bytes(lzma.compress(b'{"a": 1}\n' * 1000)[:-20])
    t = load_events([f])
    assert t.report.skipped_count == 1 and "xz data is damaged or truncated" in reasons(t)[0]
    assert t.report.inputs[0].skipped == 1 and t.report.inputs[0].lines == t.report.events + 1


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_bom_are_decoded(tmp_path, codec):
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(codec, b"")
    f = tmp_path / "auth.log"
    f.write_bytes(bom + AUTH.encode(codec))
    t = load_events([f], ["user.name"])
    assert t.report.inputs == [InputStats(str(f), "syslog", 3, 3, 0)]
    assert t.frame["user.name"].to_list() == ["deploy", "root", "deploy"]
    assert any("decoded from UTF" in note for note in t.report.notes)
    g = tmp_path / "events.json"
    g.write_bytes(bom + '[{"a": "é"}, {"a": "ß"}]'.encode(codec))
    assert load_events([g]).frame["a"].to_list() == ["é", "ß"]


# ----------------------------------------------------------------------------------------------
# What each input gave


def test_inputs_count_lines_events_and_bad_lines_per_file(tmp_path):
    good = tmp_path / "good.ndjson"
    good.write_text('{"a": 1}\n\n{"a": 2}\nnot json\n')
    audit = tmp_path / "audit.log"
    audit.write_text(AUDIT)
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    csv = tmp_path / "x.csv"
    csv.write_text("a,b,c\n1,2,3\n4,5,6\n")
    wide = tmp_path / "wide_auth.log"  # UTF-16 without a BOM: not decodable, every line bad
    wide.write_bytes(AUTH.encode("utf-16-le"))
    t = load_events([good, audit, binary, csv, wide])
    by_file = {i.file: i for i in t.report.inputs}
    assert by_file[str(good)] == InputStats(str(good), "ecs", 4, 2, 1)
    assert by_file[str(audit)] == InputStats(str(audit), "auditd", 3, 1, 0)
    assert by_file[str(csv)] == InputStats(str(csv), "ecs", 3, 0, 3)
    for bad in (binary, wide):
        stats = by_file[str(bad)]
        assert stats.events == 0 and stats.skipped * 2 > stats.lines > 0
    assert sum(i.skipped for i in t.report.inputs) == t.report.skipped_count
    assert [i.file for i in t.report.inputs] == t.report.files


def test_inputs_of_the_duckdb_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0)
    f = tmp_path / "big.ndjson"
    f.write_text("".join(f'{{"a": {i}}}\n' for i in range(5000)))
    t = load_events([f], ["a"])
    assert t.report.inputs == [InputStats(str(f), "ecs", 5000, 5000, 0)]


def test_a_broken_json_array_reads_numbers_as_orjson_does(tmp_path):
    """Found by the fuzzing test: the element-by-element fallback gave ints beyond 64 bits (which
    cannot be printed) and failed on ints of over 4300 digits."""
    f = tmp_path / "a.json"
    f.write_text('[{"a": 1}, {"a": ' + "9" * 25 + '}, {"a": 18446744073709551615}, {"b": ' + "9" * 5000 + "}, {")
    t = load_events([f])
    assert t.frame["a"].to_list() == [1.0, 1e25, 18446744073709551615.0]
    assert [s.line for s in t.report.skipped] == [4] and "infinity" in reasons(t)[0]
    for doc in t.documents(range(3)):
        orjson.dumps(doc)


def test_many_small_inputs_share_one_conversion(tmp_path, monkeypatch):
    """Issue 18: 24 small rotated logs took 3-10x the time of the same events in 2 files, from a
    DuckDB census and conversion query per input. Python-read inputs now count their kinds as
    they read and convert together (bench/many_files.py times it)."""
    calls = []
    convert = ecs_json._Loader._convert
    monkeypatch.setattr(ecs_json._Loader, "_convert", lambda self, parts, final: calls.append(len(parts))
                        or convert(self, parts, final))
    census = []
    monkeypatch.setattr(ecs_json._Loader, "_census", lambda self, part: census.append(part.stats is None)
                        or (part.stats, False))
    files = []
    for k in range(24):
        f = tmp_path / (f"audit.log.{k}" if k % 2 else f"events{k}.ndjson")
        f.write_text(AUDIT.replace(":10)", f":{10 + k})") if k % 2 else f'{{"a": {k}, "b": "x"}}\n')
        files.append(f)
    t = load_events(files)
    assert calls == [24] and census == [False] * 24
    assert t.report.events == 24 and t.frame["__file"].to_list() == list(range(24))
    assert t.frame["a"].to_list()[:4] == [0, None, 2, None]


def test_a_deep_document_in_a_file_for_duckdb_is_skipped_too(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ecs_json, "_SMALL_FILE_BYTES", 0)
    f = tmp_path / "big.ndjson"
    f.write_text("".join(f'{{"b": {i}}}\n' for i in range(2000)) + deep(300) + "\n")
    for fields in (["b"], None):
        t = load_events([f], fields)
        assert t.report.events == 2000 and [s.line for s in t.report.skipped] == [2001]
        for doc in t.documents([0, 1999]):
            orjson.dumps(doc)


@pytest.mark.parametrize("compress, suffix", [(lzma.compress, "xz"), (bz2.compress, "bz2")])
def test_a_truncated_xz_or_bzip2_file_keeps_all_it_can(tmp_path, compress, suffix):
    """A file object's read(1 MiB) dropped the part of that MiB decompressed before the damage."""
    lines = [orjson.dumps({"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process", "id": i},
                           "process": {"args": [os.urandom(90).hex()]}}) + b"\n" for i in range(12_000)]
    data = compress(b"".join(lines))
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    # what a decompressor fed the whole truncated file gives: every line before the damage
    d = lzma.LZMADecompressor() if suffix == "xz" else bz2.BZ2Decompressor()
    recoverable = d.decompress(cut.read_bytes()).count(b"\n")
    assert recoverable > 1_000_000 // len(lines[0])  # more than the MiB the old read lost
    table = load_events([cut], ["event.id"])
    assert table.report.events >= recoverable - 1
    assert any("truncated" in s.reason for s in table.report.skipped)


def test_a_gzip_bomb_json_array_is_refused_not_inflated(tmp_path):
    bomb = tmp_path / "bomb.json.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(b"[")
        block = b" " * (1 << 20)
        for _ in range(readers.MAX_ARRAY_BYTES // len(block) + 8):
            f.write(block)
        f.write(b"]")
    assert bomb.stat().st_size < 4 << 20
    with pytest.raises(SourceError, match="JSON array over"):
        load_events([bomb], ["event.id"])


def test_xz_streams_with_padding_between_them_are_all_read(tmp_path):
    """Stream padding (zero bytes) between two xz streams lost the second stream."""
    one = b'{"@timestamp": "2026-01-01T00:00:00Z", "event": {"id": "a"}}\n'
    two = b'{"@timestamp": "2026-01-01T00:00:01Z", "event": {"id": "b"}}\n'
    f = tmp_path / "pad.xz"
    f.write_bytes(lzma.compress(one) + b"\0" * 4 + lzma.compress(two) + b"\0" * 8)
    table = load_events([f], ["event.id"])
    assert table.report.events == 2 and table.report.skipped_count == 0
