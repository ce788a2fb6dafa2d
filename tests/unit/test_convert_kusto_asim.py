"""`--to kusto` is Microsoft Sentinel's ASIM: each query names an ASIM parser and only fields of its schema
(pySigma ships the schema as data; ASIM's common fields DvcOs/EventResult it lists only as "Dvc fields"), and the
ECS names our export keeps become ASIM's only where the meaning is the same."""

from __future__ import annotations

import re

import pytest

from trailhound.emit import ConversionRefused
from trailhound.emit.asim import COMMON_FIELDS
from trailhound.emit.convert import Converted, from_rule
from trailhound.emit.siem import Kusto
from trailhound.emit.sigma import SigmaExport
from trailhound.pack import DIR as PACK
from trailhound.rules.loader import load_rules

pytest.importorskip("sigma.backends.kusto", reason="the convert extra (pySigma backends) is not installed")


def kusto(detection: dict, logsource: dict) -> str:
    doc = {"title": "t", "id": "6a1c2b3d-0000-4000-8000-000000000151", "logsource": logsource,
           "detection": {**detection, "condition": "sel"}}
    return Kusto().convert(SigmaExport([doc])).query


def test_every_converted_pack_rule_names_an_asim_table_and_only_its_fields():
    from sigma.pipelines.sentinelasim.tables import SENTINEL_ASIM_TABLES

    done = 0
    for rule in load_rules([PACK]).rules:
        out = from_rule(rule, "kusto", "r")
        if not isinstance(out, Converted):
            continue
        done += 1
        table, _, where = out.text.partition("\n| where ")
        assert table in SENTINEL_ASIM_TABLES, (rule.name, table)
        allowed = set(SENTINEL_ASIM_TABLES[table]) | set(COMMON_FIELDS)
        strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', where)  # field names are outside the string literals
        names = set(re.findall(r"\b([A-Z][A-Za-z]+)\s+(?:=~|==|in~|in|contains|startswith|endswith|matches regex)\b",
                               strings))
        assert names and names <= allowed, (rule.name, names - allowed)
        assert where.count("(") == where.count(")"), out.text
    assert done == 4


def test_a_process_name_is_the_executable_path_ending_in_it():
    q = kusto({"sel": {"OriginalFileName|cased": ["ssh", "scp"], "process.parent.name|startswith": "python"}},
              {"product": "linux", "category": "process_creation"})
    assert q.startswith("imProcessCreate\n| where ")
    assert 'TargetProcessName endswith "/ssh"' in q and 'TargetProcessName in~ ("ssh", "scp")' in q
    assert 'ParentProcessName matches regex "(?i)(?:^|/)python[^/]*$"' in q


def test_a_process_name_with_a_wildcard_inside_is_refused_with_the_reason():
    with pytest.raises(ConversionRefused, match="no faithful form on a path"):
        kusto({"sel": {"process.name|contains": "ssh"}}, {"product": "linux", "category": "process_creation"})


def test_the_os_and_the_process_start_actions():
    q = kusto({"sel": {"host.os.type": "linux", "event.action": ["exec", "executed"], "Image|endswith": "/ssh"}},
              {"product": "linux", "category": "process_creation"})
    assert 'DvcOs =~ "Linux"' in q and "event.action" not in q and "exec" not in q  # imProcessCreate: only starts
    # an action that is not a process start is not dropped: refused by its name
    with pytest.raises(ConversionRefused, match="event.action"):
        kusto({"sel": {"event.action": ["exec", "fork"]}}, {"product": "linux", "category": "process_creation"})
    with pytest.raises(ConversionRefused, match="host.os.type"):  # no ASIM spelling known for it: kept, refused
        kusto({"sel": {"host.os.type": "plan9"}}, {"product": "linux", "category": "process_creation"})


def test_an_auth_log_is_im_authentication():
    q = kusto({"sel": {"event.category": "authentication", "event.action": ["ssh_login", "user_login"],
                       "event.outcome": "failure", "user.name": "root"}}, {"product": "linux", "service": "auth"})
    assert q.startswith("imAuthentication\n| where ")
    assert 'EventType in~ ("Logon", "Logon")' in q  # sshd's and PAM's login attempts: both ASIM's Logon
    assert 'EventResult =~ "Failure"' in q and 'TargetUsername =~ "root"' in q and "event." not in q


def test_an_auth_log_is_written_by_the_target_device():
    """Regression: host.os.type became DvcOs, which pySigma's imAuthentication mapping widens to SrcDvcOs or
    TargetDvcOs (a login *from* a Linux host to any host would match)."""
    q = kusto({"sel": {"host.os.type": "linux", "event.outcome": "failure"}}, {"product": "linux", "service": "auth"})
    assert 'TargetDvcOs =~ "Linux"' in q and "SrcDvcOs" not in q and " or " not in q


def test_an_action_without_an_asim_spelling_is_not_renamed_but_refused():
    """Regression: a value list with one unknown action was renamed to EventType with the ECS values."""
    with pytest.raises(ConversionRefused, match="event.action"):
        kusto({"sel": {"event.action": ["ssh_login", "logout"]}}, {"product": "linux", "service": "auth"})


def test_file_paths_and_names_keep_their_meaning():
    q = kusto({"sel": {"file.name": "authorized_keys", "TargetFilename|contains": "/.ssh/", "Image": "/usr/bin/vi"}},
              {"product": "linux", "category": "file_event"})
    assert q.startswith("imFileEvent\n| where ")
    # Sigma's TargetFilename is a full path: ASIM's TargetFilePath (pySigma alone would use the bare TargetFileName)
    assert 'TargetFilePath contains "/.ssh/"' in q and 'TargetFileName =~ "authorized_keys"' in q
    assert 'ActingProcessName =~ "/usr/bin/vi"' in q


def test_a_rule_without_a_category_is_refused_saying_how_tables_are_chosen():
    with pytest.raises(ConversionRefused, match="Unable to determine table name from rule: ASIM's tables are chosen"):
        kusto({"sel": {"host.os.type": "linux"}}, {"product": "linux"})
