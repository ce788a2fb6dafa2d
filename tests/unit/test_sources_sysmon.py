"""Sysmon for Linux XML (in syslog lines and Azure Syslog records) → ECS events."""

import json

from trailhound.sources import ReadOptions
from trailhound.sources.registry import detect
from trailhound.sources.syslog import read

SYSTEM = ('<System><Provider Name="Linux-Sysmon" Guid="{{ff000000-0000-0000-0000-0000000000aa}}"/><EventID>{eid}</EventID>'
          '<Version>5</Version><Level>4</Level><Task>{eid}</Task><Opcode>0</Opcode>'
          '<TimeCreated SystemTime="2026-04-01T08:00:00.123456000Z"/><EventRecordID>{rec}</EventRecordID><Correlation/>'
          '<Execution ProcessID="900" ThreadID="901"/><Channel>Linux-Sysmon/Operational</Channel><Computer>lab1</Computer>'
          '<Security UserId="0"/></System>')


def line(eid, data, rec=1):
    body = "".join(f'<Data Name="{k}">{v}</Data>' for k, v in data.items())
    xml = f"<Event>{SYSTEM.format(eid=eid, rec=rec)}<EventData>{body}</EventData></Event>"
    return f"Apr  1 08:00:00 lab1 sysmon: {xml}"


def docs(*lines):
    skipped = []
    out = [d for d, _ in read(enumerate(lines, 1), lambda n, r: skipped.append((n, r)), ReadOptions(year=2026))]
    return out, skipped


def test_process_create_with_parent_and_quoted_args():
    (doc,), _ = docs(line(1, {"RuleName": "-", "UtcTime": "2026-04-01 08:00:00.125",
                              "ProcessGuid": "{aa-1}", "ProcessId": "4242", "Image": "/usr/bin/ssh",
                              "CommandLine": "ssh -o &quot;ProxyCommand nc %h %p&quot; root@10.0.0.9",
                              "CurrentDirectory": "/tmp", "User": "alice", "LogonId": "1000",
                              "ParentProcessGuid": "{00000000-0000-0000-0000-000000000000}", "ParentProcessId": "41",
                              "ParentImage": "/bin/bash", "ParentCommandLine": "bash", "ParentUser": "alice",
                              "Hashes": "SHA256=ABCD"}))
    assert doc["@timestamp"] == "2026-04-01T08:00:00.125Z" and doc["event"]["created"] == "2026-04-01T08:00:00.123Z"
    assert (doc["event"]["category"], doc["event"]["type"], doc["event"]["action"], doc["event"]["code"]) == (
        ["process"], ["start"], "exec", "1")
    p = doc["process"]
    assert (p["name"], p["executable"], p["pid"], p["entity_id"], p["working_directory"]) == (
        "ssh", "/usr/bin/ssh", 4242, "{aa-1}", "/tmp")
    assert p["args"] == ["ssh", "-o", "ProxyCommand nc %h %p", "root@10.0.0.9"] and p["args_count"] == 4
    assert p["parent"] == {"pid": 41, "executable": "/bin/bash", "name": "bash", "command_line": "bash",
                           "args": ["bash"], "args_count": 1, "user": {"name": "alice"}}  # zero GUID left out
    assert p["hash"] == {"sha256": "abcd"} and doc["user"] == {"name": "alice"}
    assert doc["host"]["hostname"] == "lab1" and doc["winlog"]["record_id"] == "1"
    assert "message" not in doc and doc["event"]["original"].startswith("<Event>")


def test_network_file_and_terminate_events():
    net, files, end = docs(
        line(3, {"UtcTime": "2026-04-01 08:00:01.000", "ProcessId": "7", "Image": "/usr/bin/nc", "Protocol": "tcp",
                 "Initiated": "true", "SourceIsIpv6": "false", "SourceIp": "10.0.0.5", "SourcePort": "40000",
                 "DestinationIp": "203.0.113.7", "DestinationPort": "4444", "DestinationHostname": "-"}),
        line(11, {"UtcTime": "2026-04-01 08:00:02.000", "Image": "/usr/bin/cp",
                  "TargetFilename": "/root/.ssh/authorized_keys2"}),
        line(5, {"UtcTime": "2026-04-01 08:00:03.000", "ProcessId": "7", "Image": "/usr/bin/nc"}))[0]
    assert net["event"]["action"] == "connection_attempted" and net["event"]["category"] == ["network"]
    assert net["network"] == {"direction": "egress", "transport": "tcp", "type": "ipv4"}
    assert net["destination"] == {"ip": "203.0.113.7", "port": 4444} and net["source"]["port"] == 40000
    assert files["file"] == {"path": "/root/.ssh/authorized_keys2", "name": "authorized_keys2",
                             "directory": "/root/.ssh"}
    assert (files["event"]["type"], files["event"]["action"]) == (["creation"], "creation")
    assert end["event"]["type"] == ["end"] and end["process"]["name"] == "nc"


def test_banners_and_broken_xml_stay_plain_syslog_events():
    (banner, broken), skipped = docs("Apr  1 08:00:00 lab1 sysmon: Sysmon v1.3.0 - Monitors system events",
                                     "Apr  1 08:00:01 lab1 sysmon: <Event><System><EventID>1</EventID>")
    assert skipped == []
    assert banner["process"]["name"] == "sysmon" and "code" not in banner["event"]
    assert broken["message"].startswith("<Event>")


def test_azure_syslog_records():
    xml = line(5, {"UtcTime": "2026-04-01 08:00:03.000", "ProcessId": "7", "Image": "/usr/bin/nc"}).split(": ", 1)[1]
    record = {"EventTime": "2026-04-01T08:00:03Z", "HostName": "lab1", "ProcessName": "sysmon", "SyslogMessage": xml}
    assert detect([json.dumps(record)]).name == "syslog"
    (doc,), _ = docs(json.dumps(record))
    assert doc["process"]["executable"] == "/usr/bin/nc" and doc["event"]["code"] == "5"
