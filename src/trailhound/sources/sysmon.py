"""Sysmon for Linux events (the `<Event>` XML it logs through syslog) to ECS, following Elastic's
sysmon_linux pipeline, with its Windows-isms fixed so that Elastic's Linux rules can fire:

* `process.name`, `file.name`/`directory`/`extension` come from the `/` path (the pipeline splits
  on `\\`, so leaves them unset or takes the syslog program name "sysmon");
* `user.name` is the Linux user name (the pipeline expects `DOMAIN\\user`);
* arguments are split with POSIX shell rules, not Windows ones;
* `event.action` is the value Elastic Defend uses for the same event ("exec", "end",
  "creation", "deletion", "connection_attempted"/"connection_accepted") instead of the pipeline's
  constant "log": Elastic's Linux rules key on Defend's actions and never read sysmon_linux
  indices;
* `@timestamp` is the event's own time (`UtcTime`), which, unlike syslog's, has a year;
* the XML is kept as `event.original`, not `message`.
Values "-" and all-zero GUIDs mean "none" and are left out, as the pipeline does.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Any

from .formats import ascii_int

_CATEGORY = {
    1: (["process"], ["start"], "exec"),
    3: (["network"], ["start", "connection", "protocol"], None),
    4: (["process"], ["change"], None),
    5: (["process"], ["end"], "end"),
    9: (["file"], ["access"], None),
    11: (["file"], ["creation"], "creation"),
    16: (["configuration"], ["change"], None),
    23: (["file"], ["deletion"], "deletion"),
}
_LEVELS = {"1": "critical", "2": "error", "3": "warning", "4": "information", "5": "verbose"}
_OPCODES = {"0": "Info"}
_EMPTY_GUID = "{00000000-0000-0000-0000-000000000000}"


def parse_xml(message: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """(System fields, EventData) of one Sysmon `<Event>`, or None when it is not one."""
    start = message.find("<Event>")
    if start < 0:
        return None
    import xml.etree.ElementTree as ET  # here: syslog's reader asks every line, few are Sysmon's

    try:
        root = ET.fromstring(message[start:])
    except ET.ParseError:
        return None
    system: dict[str, str] = {}
    node = root.find("System")
    if node is None:
        return None
    for child in node:
        if child.text and child.text.strip():
            system[child.tag] = child.text.strip()
        for key, value in child.attrib.items():
            system[f"{child.tag}.{key}"] = value
    data = {d.get("Name", ""): (d.text or "") for d in root.iterfind("EventData/Data")}
    return system, data


def interpret(doc: dict, message: str) -> bool:
    """Fill `doc` (a framed syslog event) from a Sysmon XML message; False if it is not one."""
    parsed = parse_xml(message)
    if parsed is None:
        return False
    system, data = parsed
    doc.pop("process", None)  # the syslog program ("sysmon") is not the event's process
    doc.setdefault("event", {})["original"] = doc.pop("message", message)
    fill(doc, system, data)
    return True


def fill(doc: dict, system: dict[str, str], data: dict[str, str]) -> None:
    data = {k: v for k, v in data.items() if v not in ("", "-", _EMPTY_GUID)}
    code = system.get("EventID", "0") or "0"
    eid = ascii_int(code)  # None: not a number, kept as text in event.code
    code = code if eid is None else str(eid)
    category, types, action = _CATEGORY.get(eid, (None, None, None)) if eid is not None else (None, None, None)
    event = doc.setdefault("event", {})
    event.update({"kind": "event", "code": code, "provider": system.get("Provider.Name", "Linux-Sysmon"),
                  "module": "sysmon"})
    if category:
        event["category"], event["type"] = category, types
    if "TimeCreated.SystemTime" in system:
        event["created"] = _ms(system["TimeCreated.SystemTime"])
    if "UtcTime" in data:
        doc["@timestamp"] = data["UtcTime"].replace(" ", "T") + "Z"
    if level := _LEVELS.get(system.get("Level", "")):
        doc.setdefault("log", {})["level"] = level
    if computer := system.get("Computer"):
        host = doc.setdefault("host", {"name": computer, "id": computer, "os": {"type": "linux"}})
        host.setdefault("hostname", computer)
    winlog: dict[str, Any] = {"event_id": code, "channel": system.get("Channel"),
                              "computer_name": system.get("Computer"), "provider_name": system.get("Provider.Name"),
                              "provider_guid": system.get("Provider.Guid"), "record_id": system.get("EventRecordID")}
    if (pid := ascii_int(system.get("Execution.ProcessID"))) is not None:
        thread = ascii_int(system.get("Execution.ThreadID", system["Execution.ProcessID"]))
        winlog["process"] = {"pid": pid, **({"thread": {"id": thread}} if thread is not None else {})}
    if (version := ascii_int(system.get("Version"))) is not None:
        winlog["version"] = version
    if opcode := _OPCODES.get(system.get("Opcode", "")):
        winlog["opcode"] = opcode
    doc["winlog"] = {k: v for k, v in winlog.items() if v is not None}
    if "RuleName" in data:
        doc["rule"] = {"name": data["RuleName"]}

    process = _process(data, "")
    parent = _process(data, "Parent")
    if parent:
        process["parent"] = parent
    if process:
        doc["process"] = process
    if "User" in data:
        doc["user"] = {"name": data["User"]}
    if "Hashes" in data:
        hashes = dict(h.split("=", 1) for h in data["Hashes"].split(",") if "=" in h)
        if hashes:
            (doc["process"] if eid == 1 else doc.setdefault("file", {}))["hash"] = {
                k.lower(): v.lower() for k, v in hashes.items()}
    if "TargetFilename" in data:
        path = data["TargetFilename"]
        file = doc.setdefault("file", {})
        file.update({"path": path, "name": posixpath.basename(path), "directory": posixpath.dirname(path)})
        ext = posixpath.splitext(path)[1]
        if ext:
            file["extension"] = ext[1:]
    if eid == 3:
        _network(doc, data)
    elif action:
        event["action"] = action


def _process(data: dict[str, str], prefix: str) -> dict:
    p: dict[str, Any] = {}
    if f"{prefix}ProcessGuid" in data:
        p["entity_id"] = data[f"{prefix}ProcessGuid"]
    if (pid := ascii_int(data.get(f"{prefix}ProcessId"))) is not None:
        p["pid"] = pid
    if image := data.get(f"{prefix}Image"):
        p["executable"] = image
        p["name"] = posixpath.basename(image)
    if command := data.get(f"{prefix}CommandLine"):
        p["command_line"] = command
        try:
            args = shlex.split(command)
        except ValueError:  # an unbalanced quote: fall back to whitespace
            args = command.split()
        p["args"], p["args_count"] = args, len(args)
    if not prefix and (cwd := data.get("CurrentDirectory")):
        p["working_directory"] = cwd
    if prefix and (user := data.get("ParentUser")):
        p["user"] = {"name": user}
    return p


def _network(doc: dict, data: dict[str, str]) -> None:
    egress = data.get("Initiated", "").lower() == "true"
    doc["event"]["action"] = "connection_attempted" if egress else "connection_accepted"
    network = {"direction": "egress" if egress else "ingress"}
    if proto := data.get("Protocol"):
        network["transport"] = proto.lower()
    if "SourceIsIpv6" in data:
        network["type"] = "ipv6" if data["SourceIsIpv6"].lower() == "true" else "ipv4"
    doc["network"] = network
    for side, key in (("source", "Source"), ("destination", "Destination")):
        end: dict[str, Any] = {}
        if ip := data.get(f"{key}Ip"):
            end["ip"] = ip
        if (port := ascii_int(data.get(f"{key}Port"))) is not None:
            end["port"] = port
        if name := data.get(f"{key}Hostname"):
            end["domain"] = name
        if end:
            doc[side] = end


def _ms(text: str) -> str:
    """An ISO time cut to milliseconds, as Elasticsearch stores `date` fields."""
    if "." in text:
        head, frac = text.rstrip("Z").split(".", 1)
        return f"{head}.{frac[:3].ljust(3, '0')}Z"
    return text
