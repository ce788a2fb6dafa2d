"""Value lists as an attacker would name them: list ids are names, never paths, and an error never
shows what a list file holds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trailhound.rules.errors import RuleError
from trailhound.rules.exceptions import lists_from_toml

from test_exceptions import _toml, exceptions_toml

SECRET = "AKIA-THIS-IS-A-SECRET"


def entry(list_id, kind="keyword"):
    return {"field": "user.name", "type": "list", "operator": "included", "list": {"id": list_id, "type": kind}}


def load(tmp_path, list_id, kind="keyword", dirs=()):
    return lists_from_toml(_toml(exceptions_toml([entry(list_id, kind)])), str(tmp_path / "x.toml"), dirs)


@pytest.mark.parametrize("list_id", ["../../../../proc/self/environ", "/etc/passwd", "..", ".", "",
                                     "sub/admins.txt", "..\\admins.txt", "admins\x00.txt", "a\x1b]0;x\x07"])
def test_a_list_id_that_is_not_a_plain_name_is_refused(tmp_path, list_id):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "admins.txt").write_text(SECRET)
    with pytest.raises(RuleError, match="is not a plain file name") as e:
        load(tmp_path, list_id)
    assert SECRET not in str(e.value)


def test_a_link_out_of_the_list_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text(SECRET + "\n")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "admins.txt").symlink_to(outside / "secret")
    with pytest.raises(RuleError, match="links outside its folder") as e:
        load(tmp_path, "admins.txt", dirs=[lists])
    assert SECRET not in str(e.value)
    (lists / "inner.txt").write_text("root\n")  # a link that stays inside is a name like another
    (lists / "alias.txt").symlink_to(lists / "inner.txt")
    assert load(tmp_path, "alias.txt", dirs=[lists])


def test_errors_name_the_line_never_its_text(tmp_path):
    (tmp_path / "nets.txt").write_text(f"10.0.0.0/8\n{SECRET}\n")
    with pytest.raises(RuleError, match=r"value list 'nets.txt' line 2: not an IP") as e:
        load(tmp_path, "nets.txt", "ip_range")
    assert SECRET not in str(e.value)
    (tmp_path / "bin.txt").write_bytes(b"root\n" + SECRET.encode() + b"\xff\xfe\n")
    with pytest.raises(RuleError, match=r"line 2: not UTF-8") as e:
        load(tmp_path, "bin.txt")
    assert SECRET not in str(e.value)


@pytest.mark.parametrize("line, why", [("1.1.1.1-::1", "from an IPv4 to an IPv6"),
                                       ("10.0.0.9-10.0.0.1", "first address is above its last")])
def test_bad_ranges_are_list_errors(tmp_path, line, why):
    (tmp_path / "r.txt").write_text(line + "\n")
    with pytest.raises(RuleError, match=why):
        load(tmp_path, "r.txt", "ip_range")


def test_a_device_or_fifo_is_not_a_list(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(RuleError, match="not found"):
        load(tmp_path, "fifo")


def test_hunt_with_a_traversing_list_id_exits_2_without_the_file(tmp_path):
    """Through the installed command, as the probe found it: `hunt` read the file and printed it."""
    target = tmp_path / "secret.env"
    target.write_text(f"TOKEN={SECRET}\n")
    rel = os.path.relpath(target, tmp_path / "x")
    exc = tmp_path / "x" / "exceptions.toml"
    exc.parent.mkdir()
    exc.write_text(exceptions_toml([entry(rel, "ip_range")], rule_ids=("anything",)))
    events = tmp_path / "e.ndjson"
    events.write_text('{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": "process"}}\n')
    trailhound = Path(sys.executable).with_name("trailhound")
    p = subprocess.run([str(trailhound), "hunt", "--exceptions", str(exc), str(events)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "is not a plain file name" in p.stderr
    assert SECRET not in p.stderr + p.stdout


@pytest.mark.parametrize("expire", ["5", '"2026-13-45"', '"soon"'])
def test_a_bad_expire_time_is_a_load_error_not_a_failed_rule(tmp_path, expire):
    """`rules validate` said ok, then the hunt failed the whole rule on the item."""
    text = exceptions_toml([{"field": "user.name", "type": "match", "operator": "included", "value": "x"}])
    text = text.replace('description = "d"\nentries', f'description = "d"\nexpire_time = {expire}\nentries', 1)
    with pytest.raises(RuleError, match=r"items\[0\]: expire_time must be an ISO-8601"):
        lists_from_toml(_toml(text), str(tmp_path / "x.toml"))
    ok = text.replace(f"expire_time = {expire}", 'expire_time = "2026-12-31T00:00:00Z"')
    assert lists_from_toml(_toml(ok), str(tmp_path / "x.toml"))[0].items[0].expire_time == "2026-12-31T00:00:00Z"
    for toml_value in ("2026-12-31", "2026-12-31T00:00:00Z"):  # TOML's own date and date-time, unquoted
        item = lists_from_toml(_toml(text.replace(f"expire_time = {expire}", f"expire_time = {toml_value}")),
                               str(tmp_path / "x.toml"))[0].items[0]
        assert item.expire_time.startswith("2026-12-31")


def test_rule_ids_must_be_a_list_not_a_string_split_into_letters(tmp_path):
    text = exceptions_toml([{"field": "user.name", "type": "match", "operator": "included", "value": "x"}])
    text = text.replace('rule_ids = ["r-ssh"]', 'rule_ids = "r-ssh"')
    with pytest.raises(RuleError, match=r"metadata.rule_ids: needs a list of strings"):
        lists_from_toml(_toml(text), str(tmp_path / "x.toml"))
