"""The ECS document of a coalesced audit event (events.py gathers it): process, user ids and names,
file, network, `auditd.*`, and the event's category, type and action from the normalization tables,
as Auditbeat and Elastic's auditd integration write them."""

from __future__ import annotations

import time

from .records import UNSET, Record

# id key -> (the user.* objects it nests in, its field)
_USER_IDS = {"uid": ((), "id"), "gid": (("group",), "id"), "euid": (("effective",), "id"),
             "egid": (("effective", "group"), "id"), "suid": (("saved",), "id"), "sgid": (("saved", "group"), "id"),
             "fsuid": (("filesystem",), "id"), "fsgid": (("filesystem", "group"), "id"), "auid": (("audit",), "id")}
# Defend's event.action for syscalls that mean the same as its event (see the auditd.stream docstring)
_DEFEND_ACTIONS = {"execve": "exec", "execveat": "exec", "rename": "rename", "renameat": "rename",
                   "renameat2": "rename", "unlink": "deletion", "unlinkat": "deletion",
                   "connect": "connection_attempted", "accept": "connection_accepted",
                   "accept4": "connection_accepted", "setuid": "uid_change", "setreuid": "uid_change",
                   "setresuid": "uid_change", "setfsuid": "uid_change"}
_OPENS = frozenset(("open", "openat", "openat2", "creat"))


def _entity_set(value: str | None, source: str | None, enriched: dict) -> dict:
    """aucoalesce's ECSEntityData.set, with the ENRICHED name of the field the value came from."""
    if value is None:
        return {}
    if value in ("", "unset") or value in UNSET:
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


class Event:
    """aucoalesce.Event, reduced to what the ECS document needs."""

    # immutable defaults live on the class: an event sets only what it has
    tags = None
    result = "unknown"
    session = None
    how = None
    source: dict | None = None
    dest: dict | None = None
    direction: str | None = None
    args: list[str] | None = None
    file: dict | None = None

    data: dict  # set by _new_event
    enriched: dict  # set by _new_event

    def __init__(self):
        self.ids: dict = {}
        self.id_names: dict = {}
        self.selinux: dict = {}
        self.paths: list[dict] = []
        self.path_records: list[Record] = []
        self.actor: list[str | None] = [None, None]  # (value, source key) pairs as lists
        self.actor_src: list[str | None] = [None, None]
        self.obj: dict[str, str | None] = {"type": None, "primary": None, "secondary": None}
        self.obj_src = {"primary": None, "secondary": None}


_AT_FDCWD = ("ffffff9c", "ffffffffffffff9c")  # -100 as the record shows a 32/64-bit argument
# the *at syscalls' directory-descriptor argument (for renames and links, the one of the name reported)
_DIRFD_ARG = {name: "a0" for name in ("openat", "openat2", "unlinkat", "mkdirat", "mknodat", "fchmodat", "fchownat",
                                       "readlinkat", "newfstatat", "faccessat", "faccessat2", "utimensat")}
_DIRFD_ARG.update({"renameat": "a2", "renameat2": "a2", "linkat": "a2", "symlinkat": "a1"})


def _absolute(path: str | None, cwd: str) -> str | None:
    if path is None or path.startswith("/") or not cwd.startswith("/"):
        return path
    return cwd.rstrip("/") + "/" + (path[2:] if path.startswith("./") else path)


def document(event: Event, records: list[Record], special: Record, rtype: str, normalized: dict | None) -> dict:
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
            if not -(1 << 63) <= number < (1 << 63):  # no pid is that large: auditd.data keeps nothing odd either
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


def _apply_mappings(doc: dict, event: Event, norm: dict) -> None:
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
