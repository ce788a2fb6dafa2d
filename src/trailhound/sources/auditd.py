"""Linux audit logs (`/var/log/audit/audit.log`, RAW and ENRICHED) to ECS, the way Auditbeat does it.

Records are parsed like go-libaudit's `auparse` (its key=value regex, hex decoding, enrichment),
grouped into events like its `Reassembler`, and coalesced into one ECS document per event like
`aucoalesce` + Auditbeat's `buildMetricbeatEvent`, with the normalization table of
`normalizations.yaml` (generated into `auditd_tables.py` by `tools/gen_auditd_tables.py`).

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

import ipaddress
import re
import time
from collections import OrderedDict
from collections.abc import Iterator

from .auditd_tables import ARCHES, ERRNO, KERNEL_RECORD_TYPES, RECORD_NORMS, SYSCALL_NORMS, SYSCALLS
from .formats import Format, Lines, ReadOptions, Skip

MAX_IN_FLIGHT = 50  # Auditbeat's reassembler.queue_size default
MAX_LINE = 256 * 1024  # the kernel caps a record near 8.9 KB; ENRICHED adds names
MAX_RECORDS = 4096  # a 2 MB argv splits into a few hundred EXECVE records
RECENT_DONE = 4096  # emitted event keys remembered, to recognise late EOEs

_HEADER = re.compile(r"(?:node=(\S*) )?type=([A-Za-z0-9_]+(?:\[\d+\])?) msg=audit\((\d+)\.(\d+):(\d+)\):?")
# go-libaudit's kvRegex, widened to ENRICHED upper-case keys and to the `aN[i]` chunks of EXECVE
_KV = re.compile(r"""([A-Za-z0-9_-]+(?:\[\d+\])?)=((?:[^"'\s]+)|'(?:\\'|[^'])*'|"(?:\\"|[^"])*")""")
# Most kernel records are plain ` key=value key="value"` runs (the kernel hex-encodes any value with a
# space, quote or control character). When a text is only such pairs, with lower-case keys other than
# `msg` and printable ASCII values without `=`, backslash or inner quotes, _KV's matches are exactly its
# space-separated tokens: _extract_simple splits them in C. Anything else goes through _extract.
_SIMPLE = re.compile(r"""(?: [a-z0-9_-][A-Za-z0-9_-]*+(?:\[[0-9]++\])?+=(?:[!#-&(-<>-\[\]-~]++|"[!#-&(-<>-\[\]-~]*+"))++""")
_UNKNOWN_TYPE = re.compile(r"UNKNOWN\[(\d+)\]")
_AVC = re.compile(r"avc:\s+(\w+)\s+\{\s*(.*)\s*\}\s+for\s+")
_HEX = re.compile(r"(?:[0-9A-F]{2})+")
_DROP = frozenset(("", "?", "?,", "(null)"))
_DROP_IN_EXECVE = _DROP - {""}
_TYPE_BY_NUMBER = {n: name for name, n in KERNEL_RECORD_TYPES.items()}
# records the kernel writes after the SYSCALL record of the same event (audit_log_exit)
_AUXILIARY = frozenset((
    "SYSCALL", "PATH", "CWD", "EXECVE", "SOCKADDR", "PROCTITLE", "IPC", "IPC_SET_PERM", "MQ_OPEN", "MQ_SENDRECV",
    "MQ_NOTIFY", "MQ_GETSETATTR", "SOCKETCALL", "FD_PAIR", "OBJ_PID", "BPRM_FCAPS", "CAPSET", "MMAP", "KERNEL_OTHER",
    "OPENAT2", "URINGOP", "EOE",
))
_UNSET = ("4294967295", "-1")
# the keys Record._enrich_common reads
_COMMON_KEYS = frozenset(("auid", "old-auid", "ses", "subj", "success", "res", "exit", "key", "cwd"))
_SIGNALS = ("", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
            "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT",
            "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF",
            "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS")
# id key -> (the user.* objects it nests in, its field)
_USER_IDS = {"uid": ((), "id"), "gid": (("group",), "id"), "euid": (("effective",), "id"),
             "egid": (("effective", "group"), "id"), "suid": (("saved",), "id"), "sgid": (("saved", "group"), "id"),
             "fsuid": (("filesystem",), "id"), "fsgid": (("filesystem", "group"), "id"), "auid": (("audit",), "id")}
# Defend's event.action for syscalls that mean the same as its event (see the module docstring)
_DEFEND_ACTIONS = {"execve": "exec", "execveat": "exec", "rename": "rename", "renameat": "rename",
                   "renameat2": "rename", "unlink": "deletion", "unlinkat": "deletion",
                   "connect": "connection_attempted", "accept": "connection_accepted",
                   "accept4": "connection_accepted", "setuid": "uid_change", "setreuid": "uid_change",
                   "setresuid": "uid_change", "setfsuid": "uid_change"}
_OPENS = frozenset(("open", "openat", "openat2", "creat"))


# ---------------------------------------------------------------------------------------------
# one record


def _hex_bytes(orig: str) -> bytes | None:
    """go-libaudit decodes only unquoted, even-length, UPPER-case hex."""
    if _HEX.fullmatch(orig):
        return bytes.fromhex(orig)
    return None


def _hex_strings(orig: str) -> str | None:
    raw = _hex_bytes(orig)
    if raw is None:
        return None
    return " ".join(raw.decode("utf-8", "replace").split("\x00"))


def _hex_string(orig: str) -> str | None:
    raw = _hex_bytes(orig)
    if raw is None:
        return None
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace")


def _extract(text: str, data: dict, orig: dict, enriched: dict, drop: frozenset = _DROP) -> None:
    for key, value in _KV.findall(text):
        # an unquoted value cannot start or end with a quote or a space: only quoted ones need trimming
        stripped = value.strip("'\" ") if value[0] in "'\"" else value
        if stripped in drop:
            continue
        if key == "msg":  # user-space records nest their fields in msg='...'
            _extract(stripped, data, orig, enriched, drop)
        elif key[0].isupper():
            enriched[key] = stripped
        else:
            data[key] = stripped
            orig[key] = value


def _extract_simple(text: str, drop: frozenset) -> tuple[dict, dict] | None:
    """(data, orig) as _extract fills them, or None when `text` needs _extract."""
    if not _SIMPLE.fullmatch(text) or " msg=" in text:
        return None
    quoted = '"' in text
    tokens = iter((text[1:].replace('"', "") if quoted else text[1:]).replace("=", " ").split(" "))
    data = dict(zip(tokens, tokens))
    # a repeated key, or a value to drop: _extract's rules for them apply
    if len(data) != text.count(" ") or not drop.isdisjoint(data.values()):
        return None
    orig = data.copy()
    if quoted:  # the key before each `="`
        for head in text.split('="')[:-1]:
            key = head.rpartition(" ")[2]
            orig[key] = f'"{data[key]}"'
    return data, orig


_ODD_BODIES = frozenset(("AVC", "LOGIN", "CRED_DISP", "USER_START", "USER_END"))  # the types _normalize_body changes


def _normalize_body(rtype: str, body: str) -> str:
    if rtype == "AVC":
        m = _AVC.search(body)
        if m:
            body = f"seresult={m.group(1)} seperms={','.join(m.group(2).split())} {body[m.end():]}"
    elif rtype == "LOGIN":
        body = body.replace("old ", "old_", 2).replace("new ", "new_", 2)
    elif rtype in ("CRED_DISP", "USER_START", "USER_END"):
        body = body.replace(" (hostname=", " hostname=", 2).rstrip(")'")
    return body


def _sockaddr(saddr: str) -> dict | None:
    try:
        family = int(saddr[2:4] + saddr[0:2], 16)
        if family == 1:
            raw = bytes.fromhex(saddr[4:])
            return {"family": "unix", "path": raw.split(b"\x00", 1)[0].decode("utf-8", "replace")}
        if family == 2:
            port = int(saddr[4:8], 16)
            ip = ".".join(str(int(saddr[i:i + 2], 16)) for i in range(8, 16, 2))
            if len(saddr) < 16:
                return None
            return {"family": "ipv4", "addr": ip, "port": str(port)}
        if family == 10:
            port = int(saddr[4:8], 16)
            flow = int(saddr[8:16], 16)
            addr = ipaddress.IPv6Address(bytes.fromhex(saddr[16:48]))
            out = {"family": "ipv6", "addr": str(addr.ipv4_mapped or addr), "port": str(port)}
            if flow > 0:
                out["flow"] = str(flow)
            return out
        if family == 16:
            return {"family": "netlink", "saddr": saddr}
        return {"family": str(family), "saddr": saddr}
    except ValueError:
        return None


def _selinux(data: dict, key: str) -> None:
    value = data.pop(key, None)
    if value is not None:
        for part, name in zip(value.split(":", 4), ("_user", "_role", "_domain", "_level", "_category")):
            data[key + name] = part


# (type, body) -> (data, orig, enriched, tags) of records already parsed; orig, enriched and tags are
# only read once parsed, so records share them
_PARSED: dict[tuple[str, str], tuple] = {}
_PARSED_SIZE = 1024
_PARSED_BODY = 1024  # longer bodies are not kept: the cache stays within ~10 MB


class Record:
    """One audit record: header fields now, key=value data parsed on first use."""

    __slots__ = ("rtype", "number", "key", "body", "raw", "line", "_data", "orig", "enriched", "tags")

    def __init__(self, rtype, number, key, body, raw, line):
        # key: (node, seconds, milliseconds, serial), what identifies the record's event
        self.rtype, self.number, self.key = rtype, number, key
        self.body, self.raw, self.line = body, raw, line
        self._data = None
        self.tags = None

    @property
    def node(self) -> str | None:
        return self.key[0]

    @property
    def seq(self) -> int:
        return self.key[3]

    @property
    def data(self) -> dict:
        if self._data is None:
            self._parse()
        return self._data

    def _parse(self) -> None:
        rtype, body = self.rtype, self.body
        # PATH, CWD, PROCTITLE, EXECVE... records recur verbatim (the same binaries, directories and
        # command lines: over half of them in the lab captures); a SYSCALL record, with its pid, does not
        memo = rtype != "SYSCALL" and len(body) <= _PARSED_BODY
        if memo:
            parsed = _PARSED.get((rtype, body))
            if parsed is not None:
                data, self.orig, self.enriched, self.tags = parsed
                self._data = data.copy()  # documents hold the dicts (auditd.paths): one per record
                return
        self._parse_body()
        if memo:
            if len(_PARSED) >= _PARSED_SIZE:
                _PARSED.clear()
            _PARSED[(rtype, body)] = (self._data.copy(), self.orig, self.enriched, self.tags)

    def _parse_body(self) -> None:
        enriched: dict = {}
        body, _, names = self.body.partition("\x1d")
        # an EXECVE argument may be empty (`ssh-keygen -N ""`); go-libaudit drops it, and every
        # argument after it, so keep "" there
        drop = _DROP_IN_EXECVE if self.rtype == "EXECVE" else _DROP
        text = _normalize_body(self.rtype, body) if self.rtype in _ODD_BODIES else body
        simple = _extract_simple(text, drop)
        if simple is None:
            data, orig = {}, {}
            _extract(text, data, orig, enriched, drop)
        else:
            data, orig = simple
        if names:
            _extract(names, {}, {}, enriched)
        self._data, self.orig, self.enriched = data, orig, enriched
        self._enrich(data, orig)

    def _enrich(self, data: dict, orig: dict) -> None:
        if not data.keys().isdisjoint(_COMMON_KEYS):  # PATH, PROCTITLE, EXECVE... have none of them
            self._enrich_common(data, orig)
        rtype = self.rtype
        if rtype in ("SYSCALL", "SECCOMP"):
            if rtype == "SECCOMP" and data.get("sig", "").isdigit() and 0 < int(data["sig"]) < len(_SIGNALS):
                data["sig"] = _SIGNALS[int(data["sig"])]
            arch = data.get("arch")
            if arch is not None:
                data["arch"] = arch = ARCHES.get(arch.lower(), arch)
                number = data.get("syscall")
                if number is not None and number.isdigit():
                    name = SYSCALLS.get(arch, {}).get(int(number))
                    if name is None:
                        name = self.enriched.get("SYSCALL")
                    if name:
                        data["syscall"] = name
            if "exe" in data:
                self._decode(data, orig, "exe")
        elif rtype == "SOCKADDR":
            if "saddr" in data:
                parsed = _sockaddr(data["saddr"])
                if parsed is not None:
                    del data["saddr"]
                    data.update(parsed)
        elif rtype == "PROCTITLE":
            if "proctitle" in data:
                self._decode(data, orig, "proctitle")
        elif rtype == "USER_CMD":
            if "cmd" in data:
                self._decode(data, orig, "cmd")
        elif rtype in ("TTY", "USER_TTY"):
            if "data" in data:
                self._decode(data, orig, "data")
        elif rtype == "PATH":
            _selinux(data, "obj")
            if "name" in data:
                self._decode(data, orig, "name")
        elif rtype == "USER_LOGIN":
            if "acct" in data:
                self._decode(data, orig, "acct")
        elif rtype == "EXECVE":
            for key, value in orig.items():
                if key[0] == "a" and key[1:].isdigit():
                    decoded = _hex_string(value)
                    if decoded is not None:
                        data[key] = decoded

    def _enrich_common(self, data: dict, orig: dict) -> None:
        for key in ("auid", "old-auid", "ses"):
            if data.get(key) in _UNSET:
                data[key] = "unset"
        _selinux(data, "subj")
        result = data.pop("success", None)
        if result is None:
            result = data.pop("res", None)
        if result is not None:
            result = result.lower()
            data["result"] = "success" if result in ("yes", "1") or result.startswith("suc") else "fail"
        exit_code = data.get("exit")
        if exit_code and exit_code[0] == "-" and exit_code[1:].isdigit():
            name = ERRNO.get(int(exit_code[1:]))
            if name:
                data["exit"] = name
        if "key" in data:
            value = data.pop("key")
            raw = _hex_bytes(orig["key"])
            if raw is not None:
                self.tags = raw.decode("utf-8", "replace").split("\x01")
            else:
                self.tags = [value.split("=", 1)[-1]]
        if "cwd" in data:
            self._decode(data, orig, "cwd")

    @staticmethod
    def _decode(data: dict, orig: dict, key: str) -> None:
        decoded = _hex_strings(orig[key])
        if decoded is not None:
            data[key] = decoded


def parse_record(text: str, line: int = 0) -> Record | None:
    """The record of one log line, or None when the line is not an audit record."""
    m = _HEADER.match(text)
    if m is None:
        return None
    node, rtype, sec, msec, seq = m.groups()
    number = KERNEL_RECORD_TYPES.get(rtype)
    if number is None:
        unknown = _UNKNOWN_TYPE.fullmatch(rtype)
        if unknown:
            number = int(unknown.group(1))
            rtype = _TYPE_BY_NUMBER.get(number, rtype)
        else:
            number = 0  # a user-space or daemon type: a standalone event
    return Record(rtype, number, (node, int(sec), int(msec), int(seq)), text[m.end():], text, line)


# ---------------------------------------------------------------------------------------------
# one event


def _execve_args(records: list[Record]) -> tuple[str | None, list[str]]:
    """argc and the arguments, the `aN_len`/`aN[i]` chunks reassembled across EXECVE records."""
    merged: dict = {}
    origs: dict = {}
    argc = None
    for rec in records:
        data = rec.data
        if argc is None and "argc" in data:
            argc = data["argc"]
        merged.update(data)
        origs.update(rec.orig)
    args: list[str] = []
    if argc is None or not argc.isdigit():
        return argc, args
    for i in range(int(argc)):
        key = f"a{i}"
        if key in merged:
            args.append(merged[key])
            continue
        if f"{key}_len" not in merged:
            break
        chunks = []
        j = 0
        while f"{key}[{j}]" in origs:
            chunks.append(origs[f"{key}[{j}]"].strip("'\""))
            j += 1
        if not chunks:
            break
        joined = "".join(chunks)
        decoded = _hex_string(joined)
        args.append(decoded if decoded is not None else joined)
    return argc, args


def _entity_set(value: str | None, source: str | None, enriched: dict) -> dict:
    """aucoalesce's ECSEntityData.set, with the ENRICHED name of the field the value came from."""
    if value is None:
        return {}
    if value in ("", "unset") or value in _UNSET:
        return {"id": "unset"}
    if value.isdigit():
        out = {"id": value}
        name = enriched.get(source.upper()) if source else None
        if name and name != "unknown(" + value + ")":
            out["name"] = name
        return out
    return {"name": value}


_SECONDS: dict[int, str] = {}


def _timestamp(sec: int, msec: int) -> str:
    text = _SECONDS.get(sec)
    if text is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        text = _SECONDS[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{text}.{msec:03d}Z"


class _Event:
    """aucoalesce.Event, reduced to what the ECS document needs."""

    # immutable defaults live on the class: an event sets only what it has
    tags = None
    result = "unknown"
    session = None
    how = None
    source = None
    dest = None
    direction = None
    args = None
    file = None

    data: dict  # set by _new_event

    def __init__(self):
        self.ids: dict = {}
        self.id_names: dict = {}
        self.selinux: dict = {}
        self.paths: list[dict] = []
        self.path_records: list[Record] = []
        self.actor = [None, None]  # (value, source key) pairs as lists
        self.actor_src = [None, None]
        self.obj = {"type": None, "primary": None, "secondary": None}
        self.obj_src = {"primary": None, "secondary": None}


# a record's keys, in order -> its user-id keys and its subj_ keys: the same few layouts recur
_LAYOUTS: dict[tuple, tuple[tuple, tuple]] = {}


def _layout(keys: tuple) -> tuple[tuple, tuple]:
    """Classifies the keys of a layout not yet in _LAYOUTS."""
    if len(_LAYOUTS) > 4096:
        _LAYOUTS.clear()
    ids = tuple(key for key in keys if key.endswith(("uid", "gid")))
    subj = tuple(key for key in keys if key.startswith("subj_") and key not in ids)
    layout = _LAYOUTS[keys] = (ids, subj)
    return layout


def _new_event(event: _Event, rec: Record) -> None:
    data = rec.data
    enriched = event.enriched = rec.enriched
    if "result" in data:
        event.result = data["result"]
    if "ses" in data:
        event.session = data["ses"]
    if "auid" in data:
        event.actor[0], event.actor_src[0] = data["auid"], "auid"
    if "uid" in data:
        event.actor[1], event.actor_src[1] = data["uid"], "uid"
    event.tags = rec.tags
    keys = tuple(data)
    id_keys, subj_keys = _LAYOUTS.get(keys) or _layout(keys)
    # the record's data less its ids and subj_ fields, in the record's order
    event_data = event.data = data.copy()
    ids = event.ids
    for key in id_keys:
        ids[key] = event_data.pop(key)
    if enriched:  # RAW logs have no names
        for key in id_keys:
            name = enriched.get(key.upper())
            if name:
                event.id_names[key] = name
    for key in subj_keys:
        event.selinux[key[5:]] = event_data.pop(key)
    event_data.pop("result", None)
    event_data.pop("ses", None)


def _get_value(event: _Event, key: str):
    if key in event.data:
        return event.data[key]
    return event.ids.get(key)


_AT_FDCWD = ("ffffff9c", "ffffffffffffff9c")  # -100 as the record shows a 32/64-bit argument
# the *at syscalls' directory-descriptor argument (for renames and links, the one of the name reported)
_DIRFD_ARG = {name: "a0" for name in ("openat", "openat2", "unlinkat", "mkdirat", "mknodat", "fchmodat", "fchownat",
                                       "readlinkat", "newfstatat", "faccessat", "faccessat2", "utimensat")}
_DIRFD_ARG.update({"renameat": "a2", "renameat2": "a2", "linkat": "a2", "symlinkat": "a1"})


def _absolute(path: str | None, cwd: str) -> str | None:
    if path is None or path.startswith("/") or not cwd.startswith("/"):
        return path
    return cwd.rstrip("/") + "/" + (path[2:] if path.startswith("./") else path)


def _set_file_object(event: _Event, index_hint: int) -> None:
    if not event.paths:
        return
    index = index_hint if len(event.paths) > index_hint else 0
    chosen = index
    for i in range(index, len(event.paths)):
        if event.paths[i].get("nametype") not in ("PARENT", "UNKNOWN"):
            chosen = i
            break
    path = event.paths[chosen]
    enriched = event.path_records[chosen].enriched
    file: dict = {}
    if "name" in path:
        event.obj["primary"] = path["name"]
        file["path"] = path["name"]
    if "inode" in path:
        file["inode"] = path["inode"]
    if "rdev" in path:
        file["device"] = path["rdev"]
    if "mode" in path:
        try:
            mode = int(path["mode"], 8)
        except ValueError:
            mode = None
        if mode is not None:
            file["mode"] = format(mode & 0o7777, "04o")  # permission, setuid/setgid and sticky bits
            # Go's os.FileMode(raw unix mode).IsRegular() holds for any unix mode: always "file"
            event.obj["type"] = "file"
    if "ouid" in path:
        file["uid"] = path["ouid"]
        if enriched.get("OUID"):
            file["owner"] = enriched["OUID"]
    if "ogid" in path:
        file["gid"] = path["ogid"]
        if enriched.get("OGID"):
            file["group"] = enriched["OGID"]
    if "obj_" in " ".join(path):  # one C-level search spares the per-key loop
        selinux = {k[4:]: v for k, v in path.items() if k.startswith("obj_")}
        if selinux:
            file["selinux"] = selinux
    event.file = file


def _apply_normalization(event: _Event, rtype: str) -> dict | None:
    data = event.data
    how = data.get("exe", data.get("comm"))
    if how is not None:
        if how.startswith(("/usr/bin/python", "/usr/bin/sh", "/usr/bin/bash", "/usr/bin/perl")) and "comm" in data:
            how = data["comm"]
        event.how = how
    syscall_norm = None
    if "syscall" in data:
        syscall_norm = SYSCALL_NORMS.get(data["syscall"]) or SYSCALL_NORMS["*"]
    if rtype == "SYSCALL":
        norm = syscall_norm
    else:
        norm = None
        for candidate in RECORD_NORMS.get(rtype, ()):
            if all(f in data for f in candidate.get("has_fields", ())):
                norm = candidate
    if norm is None:
        return None
    category = list(norm.get("category", ()))
    types = list(norm.get("type", ()))
    outcome = None
    if syscall_norm is not None and syscall_norm["id"] != norm["id"]:
        category += syscall_norm.get("category", ())
        types += syscall_norm.get("type", ())
        if event.result == "fail":
            outcome = "failure"
    what = norm.get("object_what")
    if what:
        event.obj["type"] = what
    if what in ("file", "filesystem"):
        _set_file_object(event, norm.get("object_path_index", 0))
    elif what == "socket":
        primary = data.get("socket_addr", data.get("socket_path"))
        if primary is not None:
            event.obj["primary"] = primary
        if "socket_port" in data:
            event.obj["secondary"] = data["socket_port"]
    for slot, field in ((0, "subject_primary"), (1, "subject_secondary")):
        for key in norm.get(field, ()):
            value = _get_value(event, key)
            if value is not None:
                event.actor[slot], event.actor_src[slot] = value, key
                break
    for slot, field in (("primary", "object_primary"), ("secondary", "object_secondary")):
        for key in norm.get(field, ()):
            value = _get_value(event, key)
            if value is not None:
                event.obj[slot], event.obj_src[slot] = value, key
                break
    for key in norm.get("how", ()):
        value = _get_value(event, key)
        if value is not None:
            event.how = value
            break
    if event.source is None:
        for key in norm.get("source_ip", ()):
            if key in data:
                event.source = {"ip": data.pop(key)}
                event.direction = "ingress"
                break
    return {"norm": norm, "category": category, "type": types, "outcome": outcome}


def _coalesce(records: list[Record]) -> dict | None:
    """The ECS document of one event; None when it cannot be coalesced (no SYSCALL in a compound)."""
    event = _Event()
    head = records[0]
    if len(records) == 1:
        special, syscall = head, None
        _new_event(event, head)
    else:
        syscall = next((r for r in records if r.rtype == "SYSCALL"), None)
        if syscall is None:
            return None
        special = next((r for r in records if r.rtype not in _AUXILIARY), syscall)
        _new_event(event, syscall)
        execves = []
        for rec in records:
            rtype = rec.rtype
            if rtype == "SYSCALL":
                event.data.pop("items", None)
            elif rtype == "PATH":
                event.paths.append(rec.data)
                event.path_records.append(rec)
            elif rtype == "SOCKADDR":
                _add_sockaddr(event, rec.data)
            elif rtype == "EXECVE":
                execves.append(rec)
            else:
                for key, value in rec.data.items():
                    event.data.setdefault(key, value)
        if execves:
            argc, args = _execve_args(execves)
            if argc is not None:
                event.data["argc"] = argc
            event.args = args
    rtype = special.rtype
    normalized = _apply_normalization(event, rtype)
    return _document(event, records, special, rtype, normalized)


def _add_sockaddr(event: _Event, data: dict) -> None:
    syscall = event.data.get("syscall")
    if syscall is None:
        return
    for key, value in data.items():
        event.data["socket_" + key] = value
    address = {k: data[src] for k, src in (("ip", "addr"), ("port", "port"), ("path", "path")) if data.get(src)}
    if syscall in ("recvfrom", "recvmsg", "accept", "accept4"):
        if address:
            event.source = address
        event.direction = "ingress"
    elif syscall in ("connect", "sendto", "sendmsg"):
        if address:
            event.dest = address
        event.direction = "egress"


def _document(event: _Event, records: list[Record], special: Record, rtype: str, normalized: dict | None) -> dict:
    data = event.data
    result = event.result
    outcome = "failure" if result == "fail" else result
    host_name, sec, msec, seq = special.key
    ev: dict = {"kind": "event", "module": "auditd", "outcome": outcome, "sequence": seq}
    doc: dict = {"@timestamp": _timestamp(sec, msec), "event": ev}
    # process (aucoalesce addProcess + Auditbeat's integer pids)
    process: dict = {}
    for key, field in (("pid", "pid"), ("ppid", "ppid")):
        value = data.pop(key, None)
        if value is not None:
            try:
                number = int(value)
            except ValueError:
                continue
            if field == "pid":
                process["pid"] = number
            else:
                process["parent"] = {"pid": number}
    for key, field in (("proctitle", "title"), ("comm", "name"), ("exe", "executable"), ("cwd", "working_directory")):
        value = data.pop(key, None)
        if value:
            process[field] = value
    if event.args:
        process["args"] = event.args
        process["args_count"] = len(event.args)
        process["command_line"] = " ".join(event.args)
    elif rtype == "USER_CMD" and data.get("cmd"):
        # sudo's command, split on spaces as the integration's pipeline does (its quoting is lost)
        process["args"] = data["cmd"].split()
        process["args_count"] = len(process["args"])
        process["command_line"] = data["cmd"]
    if process:
        doc["process"] = process
    # user ids (Auditbeat addUser), names from ENRICHED
    user: dict = {}
    for key, value in event.ids.items():
        if value == "unset":
            continue
        parents, field = _USER_IDS.get(key) or ((key,), "id")
        node = user
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        node[field] = value
        name = event.id_names.get(key)
        if name and not name.startswith("unknown("):
            node["name"] = name
    if event.ids and event.selinux:
        user["selinux"] = event.selinux
    doc["user"] = user
    if event.file is not None:
        file = dict(event.file)
        cwd = process.get("working_directory", "")
        dirfd = _DIRFD_ARG.get(data.get("syscall", ""))
        if dirfd and data.get(dirfd, "ffffff9c").lower() not in _AT_FDCWD:
            cwd = ""  # relative to a directory descriptor, not to the working directory: leave it relative
        path = _absolute(file.get("path"), cwd)
        if data.get("syscall", "").startswith("rename"):
            # Defend reports a rename by its destination, with the source as the original path
            created = [p["name"] for p in event.paths if p.get("nametype") == "CREATE" and "name" in p]
            if created and path is not None:
                file.setdefault("Ext", {})["original"] = {"path": path}
                path = _absolute(created[-1], cwd)
        if path is not None:
            file["path"] = path
            slash = path.rfind("/")
            name = path[slash + 1:]
            if name:
                file["name"] = name
                dot = name.rfind(".")
                if dot > 0:
                    file["extension"] = name[dot + 1:]
            if slash > 0:
                file["directory"] = path[:slash]
            elif slash == 0:
                file["directory"] = "/"
        doc["file"] = file
    if event.source:
        doc["source"] = event.source
    if event.dest:
        doc["destination"] = event.dest
    if event.direction:
        doc["network"] = {"direction": event.direction}
    if event.tags:
        doc["tags"] = list(event.tags)
    ev["original"] = [r.raw for r in records]
    # auditd.* module fields
    auditd: dict = {"message_type": rtype.lower(), "sequence": seq, "result": result}
    if event.session is not None and event.session != "unset":
        auditd["session"] = event.session
    summary: dict = {}
    actor = {k: v for k, v in zip(("primary", "secondary"), event.actor) if v}
    if actor:
        summary["actor"] = actor
    obj = {k: v for k, v in event.obj.items() if v}
    if obj:
        summary["object"] = obj
    if event.how:
        summary["how"] = event.how
    # one C-level search spares the per-key loop when no key can start with socket_
    if "socket_" in " ".join(data):
        out_data: dict = {}
        for key, value in data.items():
            if key.startswith("socket_"):
                out_data.setdefault("socket", {})[key[7:]] = value
            else:
                out_data[key] = value
    else:
        out_data = dict(data)
    auditd["data"] = out_data
    if summary:
        auditd["summary"] = summary
    if event.paths:
        auditd["paths"] = event.paths
    if host_name:
        auditd["node"] = host_name
    doc["auditd"] = auditd
    doc["service"] = {"type": "auditd"}
    host: dict = {"os": {"type": "linux"}}
    if "arch" in data:
        host["architecture"] = data["arch"]
    if host_name:
        host["name"] = host_name
    doc["host"] = host
    if normalized is not None:
        norm = normalized["norm"]
        action = norm.get("action")
        categories, types = normalized["category"], normalized["type"]
        extra = _DEFEND_ACTIONS.get(data.get("syscall", "")) if rtype == "SYSCALL" else None
        if rtype == "SYSCALL" and data.get("syscall") in _OPENS and any(
                p.get("nametype") == "CREATE" for p in event.paths) and event.result == "success":
            extra = "creation"
            if "creation" not in types:
                types = types + ["creation"]
        elif rtype == "SYSCALL" and _opened_for_writing(data) and event.result == "success" and "change" not in types:
            types = types + ["change"]
        if action:
            summary["action"] = action
            ev["action"] = [action, extra] if extra else action
        if norm.get("kind"):
            ev["kind"] = norm["kind"]
        if categories:
            ev["category"] = categories
        if types:
            ev["type"] = types
        if normalized["outcome"]:
            ev["outcome"] = normalized["outcome"]
        _apply_mappings(doc, event, norm)
    _drop_redundant_effective(user)
    if not user:
        del doc["user"]
    return doc


# open(2) flags: the access mode, and the bits that alter content (same on x86_64 and aarch64)
_O_ACCMODE, _O_TRUNC, _O_APPEND = 0o3, 0o1000, 0o2000
_FLAGS_ARG = {"open": "a1", "openat": "a2"}  # openat2 passes them in a struct the record does not show


def _opened_for_writing(data: dict) -> bool:
    """An open that can change the file's content (write or read-write access, truncate, append)."""
    arg = _FLAGS_ARG.get(data.get("syscall", ""))
    try:
        flags = int(data[arg], 16) if arg and arg in data else None
    except ValueError:
        return False
    return flags is not None and bool(flags & _O_ACCMODE or flags & (_O_TRUNC | _O_APPEND))


def _apply_mappings(doc: dict, event: _Event, norm: dict) -> None:
    mappings = norm.get("mappings")
    if not mappings:
        return
    enriched = event.enriched
    related = set()
    for source, target in mappings:
        if source == "subject.primary":
            value, key = event.actor[0], event.actor_src[0]
        elif source == "subject.secondary":
            value, key = event.actor[1], event.actor_src[1]
        elif source in ("object.primary", "object.secondary"):
            slot = source.split(".")[1]
            value, key = event.obj[slot], event.obj_src[slot]
        elif source.startswith("uid."):
            key = source[4:]
            value = event.ids.get(key)
        elif source.startswith("data."):
            key = source[5:]
            value = event.data.get(key)
        else:
            continue
        entity = _entity_set(value, key, enriched)
        if not entity:
            continue
        root = doc["user"] if target.startswith("user") else doc.setdefault("group", {})
        parts = tuple(target.split(".")[1:]) if target.startswith("user") else ()
        node = root
        for part in parts:
            node = node.setdefault(part, {})
        ent_id = entity.get("id")
        if ent_id and ent_id != "unset":
            node["id"] = ent_id
        else:
            node.pop("id", None)
        if entity.get("name"):
            node["name"] = entity["name"]
            if target != "group":
                related.add(entity["name"])
        else:
            node.pop("name", None)
        if not node and parts:
            _prune(root, parts)
    if not doc.get("group"):
        doc.pop("group", None)
    if related:
        doc["related"] = {"user": sorted(related)}


def _prune(root: dict, parts: tuple) -> None:
    parent = root
    for part in parts[:-1]:
        parent = parent.get(part, {})
    if parent.get(parts[-1]) == {}:
        del parent[parts[-1]]


def _drop_redundant_effective(user: dict) -> None:
    effective = user.get("effective")
    if not effective:
        return
    for key in ("id", "name"):
        if user.get(key) and effective.get(key) == user.get(key):
            del user["effective"]
            return


# ---------------------------------------------------------------------------------------------
# the stream


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
                    len(records) == 1 and records[0].rtype not in _AUXILIARY):
                for r in records:
                    skip(r.line, f"audit event {r.seq} was never closed (no EOE) and has no SYSCALL record")
                return None
        doc = _coalesce(records)
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
            if text.strip():
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
    hits = sum(1 for line in lines if _HEADER.match(line))
    return hits > 0 and hits * 2 >= len(lines)


FORMAT = Format(
    "auditd",
    "Linux audit log (audit.log, RAW or ENRICHED), coalesced per event like Auditbeat",
    sniff,
    lambda lines, skip, options: read(lines, skip, options),
)
