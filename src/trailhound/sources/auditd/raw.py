"""Raw audit records as events, for Sigma's `service: auditd` rules, which match one record at a time
(`type: EXECVE` with `a0`, `a1`...; `type: PATH` with `name`; `SYSCALL` with `exe`, `comm`, `key`).

Each record of an audit log becomes one flat event: its own key=value fields under their own names,
values unquoted, the values auditd hex-encodes decoded (EXECVE arguments, proctitle with its NULs as
spaces, exe, comm, cwd, name, ...: Zircolite leaves them in hex), `type`, the record's line as
`event.original`, `@timestamp` from its header, and the enriched upper-case names (`SYSCALL`, `UID`...)
of `log_format=ENRICHED` logs; a RAW log's SYSCALL record gets `SYSCALL` from its arch and number.
Nothing else is normalized: the values are the log's. The coalesced ECS events of `auditd.stream`
are untouched; these are read only when a hunt has a rule that needs them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from ..formats import ReadOptions, ascii_int
from ..inputs import Source
from .document import _timestamp
from .records import _DROP_IN_EXECVE, HEADER, _extract, _hex_bytes, _hex_strings, hex_string, parse_record
from .tables import ARCHES, SYSCALLS

#: the fields auditd writes in hex when their value holds a space, a quote or a control character
ENCODED = frozenset(("acct", "cmd", "comm", "cwd", "data", "dir", "exe", "file", "name", "new-disk", "ocomm",
                     "old-disk", "path", "proctitle", "root_dir", "sw", "vm", "watch", "key", "new", "old"))
#: fields of a raw record event that are not the record's own key=value pairs
OWN_FIELDS = ("@timestamp", "event.original", "event.module", "event.dataset", "event.sequence", "host.name", "type")


def record_document(text: str, line: int = 0, host: str | None = None) -> dict | None:
    """The event of one audit log line, or None when the line is not an audit record."""
    rec = parse_record(text, line)
    if rec is None:
        return None
    node, sec, msec, serial = rec.key
    body, _, names = rec.body.partition("\x1d")
    data: dict = {}
    orig: dict = {}
    enriched: dict = {}
    _extract(body, data, orig, enriched, _DROP_IN_EXECVE)
    if names:
        _extract(names, {}, {}, enriched)
    for key, value in orig.items():
        if rec.rtype == "EXECVE" and key[0] == "a" and key[1:].isdigit():
            decoded = hex_string(value)
        elif key == "proctitle" or key in ENCODED:
            decoded = _hex_strings(value)
            if key == "key" and decoded is not None and _hex_bytes(value) is not None:
                keys = decoded.split("\x01")
                data[key] = keys if len(keys) > 1 else keys[0]
                continue
        else:
            decoded = None
        if decoded is not None:
            data[key] = decoded
    if rec.rtype == "SYSCALL" and "SYSCALL" not in enriched:
        arch = ARCHES.get((data.get("arch") or "").lower())
        number = ascii_int(data.get("syscall"))
        if arch is not None and number is not None and (name := SYSCALLS.get(arch, {}).get(number)):
            enriched["SYSCALL"] = name
    doc: dict = {key: value for key, value in data.items() if "." not in key}
    doc.update({key: value for key, value in enriched.items() if "." not in key and key not in doc})
    doc["type"] = rec.rtype
    doc["@timestamp"] = _timestamp(sec, msec)
    doc["event"] = {"original": text, "module": "auditd", "dataset": "auditd.raw", "sequence": serial}
    if node or host:
        doc["host"] = {"name": node or host}
    return doc


def raw_documents(paths: Sequence[str | os.PathLike], input_format: str | None = None,
                  options: ReadOptions | None = None) -> Iterator[dict]:
    """The records of every audit log among `paths` (detected per file, or all if `input_format` is
    auditd), one event each, in file order. Other inputs give none. Lines that are not records are
    skipped here: the ECS load of the same files counts and reports them."""
    from ..normalize import format_of, text_lines

    if input_format not in (None, "auditd"):
        return
    for p in paths:
        src = Source.open(os.fspath(p))
        fmt = format_of(src, input_format)
        if fmt is None or fmt.name != "auditd":
            continue
        host = (options.host if options else None) or os.path.basename(src.name)
        for n, text in text_lines(src, lambda *_: None):
            if HEADER.match(text) is None:
                continue
            doc = record_document(text, n, host)
            if doc is not None:
                yield doc
