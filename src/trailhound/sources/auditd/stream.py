"""Linux audit logs (`/var/log/audit/audit.log`, RAW and ENRICHED) to ECS, the way Auditbeat does it.

Records are parsed like go-libaudit's `auparse` (its key=value regex, hex decoding, enrichment),
grouped into events like its `Reassembler`, and coalesced into one ECS document per event like
`aucoalesce` + Auditbeat's `buildMetricbeatEvent`, with the normalization table of
`normalizations.yaml` (generated into `tables.py` by `tools/gen_auditd_tables.py`).

Grouping. Records belong to one event when they share `node` and `msg=audit(TIME:SERIAL)`. An event
is complete at its EOE, or at once for user-space and daemon record types (below 1300 or from 2100
on), as in go-libaudit. Events are emitted in the file order of their first record; at most
`MAX_IN_FLIGHT` events wait, and an event still open when that is exceeded or at the end of the
file is closed as it is: emitted when it has a SYSCALL record, or when it is a single record that
can stand alone (AVC, ANOM_ABEND, NETFILTER_CFG..., not PATH, CWD, EXECVE...); otherwise each of its
lines is reported through `skip`. Unlike go-libaudit, a PROCTITLE does not close its event and there
is no wall-clock timeout: in a file, records of an event may follow its PROCTITLE (out-of-order
streams), and the audit clock says nothing about how late a record is written, so the in-flight
bound alone closes events that have no EOE. A group
of several records without a SYSCALL cannot be coalesced (go-libaudit errors too) and is reported.
A record for an event already emitted is reported, except an EOE, which only closes its event.
Blank lines are ignored; every other line the reader cannot use is reported.

Fields beyond Auditbeat (each is what Elastic Defend or the rules expect, derived from the records):
* `process.command_line`: the EXECVE arguments joined with spaces (Defend sets it; Auditbeat has none).
* `process.args_count`, `host.architecture`, `event.sequence` (as the integration's coalesced pipeline).
* EXECVE arguments longer than the kernel's chunk size (`aN_len=`, `aN[i]=`, possibly spread over
  several EXECVE records) are reassembled; go-libaudit drops the whole EXECVE record then.
* `file.path` is made absolute with the event's CWD when PATH gives a relative name (Auditbeat keeps
  it relative; `auditd.paths` keeps the raw name), plus `file.name`, `file.directory`, `file.extension`.
  A rename is reported by its destination, the source in `file.Ext.original.path`, as Defend does
  (Auditbeat reports the source), so "key moved into authorized_keys" is seen.
* Empty EXECVE arguments (`-N ""`) are kept; go-libaudit drops them and loses the arguments after.
* A USER_CMD record (sudo) gets `process.args` from its command split on spaces, as the integration's
  per-line pipeline does, so rules on sudo'd commands see them (`auditd.data.cmd` keeps the text).
* `event.action` also carries Defend's action where the syscall means the same thing: `exec`
  (execve/execveat), `rename`, `deletion` (unlink/unlinkat), `connection_attempted` (connect),
  `connection_accepted` (accept/accept4), `uid_change` (set*uid). It is then a list, e.g.
  `["executed", "exec"]`, so rules written for either source match.
* An open/openat/openat2/creat whose PATH record says `nametype=CREATE` created the file: it gets
  `event.type` `creation` and action `creation` as well (Auditbeat says `info` for openat). An
  open/openat of an existing file for writing (access mode, O_TRUNC or O_APPEND in its flags) gets
  `event.type` `change` too, so "file changed" rules see an append to authorized_keys.
* Names come from ENRICHED fields (`UID="root"`, `AUID=`, `OUID=`...). There is no id lookup
  (Auditbeat's resolve_ids reads the local passwd, which a file reader must not).
* `host.os.type: linux`, `event.module`/`service.type: auditd`; `host.name` from `node=`.
* `tags` are the rule keys; `event.original` is the list of the event's raw lines (EOE excluded).
* An event is identified by node + time + serial rather than by serial alone, and the record that
  names an event's type is the first one that is neither SYSCALL nor one of the records the kernel
  writes after it (PATH, CWD, EXECVE...), so out-of-order input coalesces as in-order input does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from ..formats import Format, Lines, ReadOptions, Skip
from .events import AUXILIARY, coalesce
from .records import HEADER, Record, parse_record

__all__ = ["FORMAT", "MAX_IN_FLIGHT", "MAX_LINE", "parse_record", "read", "sniff"]

MAX_IN_FLIGHT = 50  # Auditbeat's reassembler.queue_size default
MAX_LINE = 256 * 1024  # the kernel caps a record near 8.9 KB; ENRICHED adds names
MAX_RECORDS = 4096  # a 2 MB argv splits into a few hundred EXECVE records
RECENT_DONE = 4096  # emitted event keys remembered, to recognise late EOEs


class _Group:
    __slots__ = ("records", "complete")

    def __init__(self):
        self.records: list[Record] = []
        self.complete = False


def _standalone(rec: Record) -> bool:
    return rec.number < 1300 or rec.number >= 2100


def read(lines: Lines, skip: Skip, options: ReadOptions | None = None) -> Iterator[tuple[dict, int]]:
    """ECS documents of the audit events in `lines`, in the file order of their first record."""
    pending: OrderedDict = OrderedDict()  # event key -> _Group, in first-line order
    done: OrderedDict = OrderedDict()  # keys of emitted events (bounded)

    def finish(key, group: _Group, closed: bool):
        records = group.records
        # a user-space record (LOGIN...) stands alone, and the kernel may log the syscall that
        # produced it under the same serial: those records make an event of their own
        if not (len(records) == 1 and _standalone(records[0])):
            done[key] = None
            if len(done) > RECENT_DONE:
                done.popitem(last=False)
        if not closed:
            if not any(r.rtype == "SYSCALL" for r in records) and not (
                    len(records) == 1 and records[0].rtype not in AUXILIARY):
                for r in records:
                    skip(r.line, f"audit event {r.seq} was never closed (no EOE) and has no SYSCALL record")
                return None
        try:
            doc = coalesce(records)
        except Exception as e:  # noqa: BLE001 - a hostile record is reported, the file goes on
            for r in records:
                skip(r.line, f"audit event {r.seq} cannot be read ({type(e).__name__}: {e})")
            return None
        if doc is None:
            for r in records:
                skip(r.line, f"audit event {r.seq} has {len(records)} records but no SYSCALL record")
            return None
        return doc, records[0].line

    def drain(force: bool):
        while pending:
            key, group = next(iter(pending.items()))
            if not (group.complete or force or len(pending) > MAX_IN_FLIGHT):
                return
            del pending[key]
            out = finish(key, group, group.complete)
            if out is not None:
                yield out

    for number, text in lines:
        if len(text) > MAX_LINE:
            skip(number, f"line of {len(text)} characters is longer than an audit record can be ({MAX_LINE})")
            continue
        text = text.rstrip("\r\n")
        rec = parse_record(text, number)
        if rec is None:
            if HEADER.match(text):
                skip(number, "audit record whose time or serial is out of range")
            elif text.strip():
                skip(number, "not an audit record (expected [node=N ]type=T msg=audit(SECONDS.MS:SERIAL):)")
            continue
        key = rec.key
        group = pending.get(key)
        if rec.rtype == "EOE":
            if group is None:
                if key not in done:
                    skip(number, f"EOE for audit event {rec.seq}, which has no record")
                continue
            group.complete = True
        elif key in done:
            skip(number, f"record for audit event {rec.seq}, which was already emitted")
            continue
        elif group is None:
            group = pending[key] = _Group()
            group.records.append(rec)
            group.complete = _standalone(rec)
        elif len(group.records) >= MAX_RECORDS:
            skip(number, f"audit event {rec.seq} has more than {MAX_RECORDS} records")
            continue
        else:
            group.records.append(rec)
            continue
        # only a new event or a completed one can make the oldest events ready to go
        if len(pending) > MAX_IN_FLIGHT or next(iter(pending.values())).complete:
            yield from drain(False)
    yield from drain(True)


def sniff(first_lines: list[str]) -> bool:
    """Audit logs: most non-blank lines start with `[node=N ]type=T msg=audit(`."""
    lines = [line for line in first_lines if line.strip()]
    if not lines:
        return False
    hits = sum(1 for line in lines if HEADER.match(line))
    return hits > 0 and hits * 2 >= len(lines)


FORMAT = Format(
    "auditd",
    "Linux audit log (audit.log, RAW or ENRICHED), coalesced per event like Auditbeat",
    sniff,
    lambda lines, skip, options: read(lines, skip, options),
)
