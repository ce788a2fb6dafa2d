"""One audit event: its records coalesced, as go-libaudit's aucoalesce and Auditbeat do, into an ECS
document (with the additions the `auditd.stream` module docstring lists). Coalescing gathers the records
into an Event (actor, object, how, paths, addresses: aucoalesce's normalization tables); document.py
writes it as the ECS document."""

from __future__ import annotations

from ..formats import ascii_int
from .document import Event, document
from .records import Record, hex_string
from .tables import RECORD_NORMS, SYSCALL_NORMS

# records the kernel writes after the SYSCALL record of the same event (audit_log_exit)
AUXILIARY = frozenset((
    "SYSCALL", "PATH", "CWD", "EXECVE", "SOCKADDR", "PROCTITLE", "IPC", "IPC_SET_PERM", "MQ_OPEN", "MQ_SENDRECV",
    "MQ_NOTIFY", "MQ_GETSETATTR", "SOCKETCALL", "FD_PAIR", "OBJ_PID", "BPRM_FCAPS", "CAPSET", "MMAP", "KERNEL_OTHER",
    "OPENAT2", "URINGOP", "EOE",
))


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
    count = ascii_int(argc)
    if count is None:
        return argc, args
    for i in range(count):
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
        decoded = hex_string(joined)
        args.append(decoded if decoded is not None else joined)
    return argc, args


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


def _new_event(event: Event, rec: Record) -> None:
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


def _get_value(event: Event, key: str):
    if key in event.data:
        return event.data[key]
    return event.ids.get(key)


def _set_file_object(event: Event, index_hint: int) -> None:
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


def _apply_normalization(event: Event, rtype: str) -> dict | None:
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
    for side, field in (("primary", "object_primary"), ("secondary", "object_secondary")):
        for key in norm.get(field, ()):
            value = _get_value(event, key)
            if value is not None:
                event.obj[side], event.obj_src[side] = value, key
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


def coalesce(records: list[Record]) -> dict | None:
    """The ECS document of one event; None when it cannot be coalesced (no SYSCALL in a compound)."""
    event = Event()
    head = records[0]
    if len(records) == 1:
        special, syscall = head, None
        _new_event(event, head)
    else:
        syscall = next((r for r in records if r.rtype == "SYSCALL"), None)
        if syscall is None:
            return None
        special = next((r for r in records if r.rtype not in AUXILIARY), syscall)
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
    return document(event, records, special, rtype, normalized)


def _add_sockaddr(event: Event, data: dict) -> None:
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
