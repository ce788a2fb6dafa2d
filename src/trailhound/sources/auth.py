"""Authentication messages (sshd, sudo, PAM, user and group tools) to ECS fields, as Elastic's
system/auth ingest pipeline maps them, so rules written for `logs-system.auth-*` fire.

Beyond that pipeline (marked "addition" below): OpenSSH ≥ 9.8 logs as `sshd-session`, which
is read like `sshd`; PAM session open/close, ssh disconnects and user/group deletions get
`event.category`/`type` so session and IAM rules see them. Empty values (`rhost=`) are left out
rather than set to "" as the pipeline does.
"""

from __future__ import annotations

import ipaddress
import re

from .formats import ascii_int

_SSH_LOGIN = re.compile(r"(?P<event>Accepted|Failed) (?P<method>\S+) for (?:invalid user )?(?P<user>.*?) "
                        r"from (?P<ip>\S+) port (?P<port>\d+)(?: ssh2)?(?:: (?P<sig>.+))?$")
_SSH_INVALID = re.compile(r"[Ii]nvalid user (?P<user>.*?) from (?P<ip>\S+)(?: port (?P<port>\d+))?$")
_SSH_DROPPED = re.compile(r"Did not receive identification string from (?P<ip>\S+)(?: port (?P<port>\d+))?")
_SSH_PAM_ERROR = re.compile(r"error: PAM: .* for (?:illegal user |invalid user )?(?P<user>\S+) from (?P<host>\S+)$")
_SSH_DISCONNECT = re.compile(r"(?:Disconnected from|Connection closed by) (?:(?:invalid|authenticating) )?"
                             r"(?:user (?P<user>\S+) )?(?P<ip>[0-9a-fA-F.:]+) port (?P<port>\d+)")
_PAM_AUTH_FAIL = re.compile(r"pam_unix\((?P<service>[^:)]+):auth\): authentication failure; (?P<kv>.*)$")
_PAM_REQUIREMENT = re.compile(r"pam_succeed_if\([^)]*\): requirement .* not met by user \"(?P<user>[^\"]+)\"")
_PAM_MORE = re.compile(r"PAM \d+ more authentication failures?;")
_PAM_SESSION = re.compile(r"pam_unix\((?P<service>[^:)]+):session\): session (?P<what>opened|closed) for user "
                          r"(?P<user>[^\s(]+)(?:\(uid=(?P<uid>\d+)\))?(?: by (?P<by>[^\s(]*)(?:\(uid=(?P<byuid>\d+)\))?)?")
_SUDO = re.compile(r"\s*(?P<user>\S+) : (?:(?P<error>[^;=]+?) ; )?TTY=(?P<tty>[^;]+?) ; PWD=(?P<pwd>[^;]+?) ; "
                   r"USER=(?P<runas>[^;]+?) ; (?:GROUP=[^;]+? ; )?(?:TSID=[^;]+? ; )?(?:ENV=[^;]+? ; )?"
                   r"COMMAND=(?P<command>.*)$")
_NEW_GROUP = re.compile(r"new group: name=(?P<name>[^,]+), GID=(?P<gid>\d+)")
_NEW_USER = re.compile(r"new user: name=(?P<name>[^,]+), UID=(?P<uid>\d+), GID=(?P<gid>\d+), home=(?P<home>[^,]+), "
                       r"shell=(?P<shell>[^,]+)")
_DEL_USER = re.compile(r"delete user '(?P<name>[^']+)'")
_DEL_GROUP = re.compile(r"(?:group '(?P<name>[^']+)' removed$|removed group '(?P<name2>[^']+)')")
_KV = re.compile(r"(\w+)=(\S*)")


def interpret(doc: dict, program: str, message: str) -> None:
    """Add the ECS fields `message` from `program` carries; lines no pattern knows keep only the framing."""
    if program in ("sshd", "sshd-session") and _sshd(doc, message):
        return
    if program == "sudo" and (m := _SUDO.match(message)):
        _sudo(doc, m)
        return
    if m := _PAM_AUTH_FAIL.match(message):
        _pam_failure(doc, m)
    elif m := _PAM_REQUIREMENT.match(message):
        _user(doc, m["user"], None)
    elif _PAM_MORE.match(message):
        _event(doc, category=["authentication"], outcome="failure")
    elif m := _PAM_SESSION.match(message):  # addition
        _event(doc, category=["session"], type=["start" if m["what"] == "opened" else "end"])
        _user(doc, m["user"], m["uid"])
        if m["by"]:
            _related_user(doc, m["by"])
    elif program == "groupadd" and (m := _NEW_GROUP.search(message)):
        _event(doc, category=["iam"], type=["group", "creation"], outcome="success")
        doc["group"] = {"id": m["gid"], "name": m["name"]}
    elif program == "useradd" and (m := _NEW_USER.search(message)):
        _event(doc, category=["iam"], type=["user", "creation"], outcome="success")
        _user(doc, m["name"], m["uid"])
        doc["group"] = {"id": m["gid"]}
        _auth(doc)["useradd"] = {"home": m["home"], "shell": m["shell"]}
    elif program == "userdel" and (m := _DEL_USER.search(message)):  # addition
        _event(doc, category=["iam"], type=["user", "deletion"], outcome="success")
        _user(doc, m["name"], None)
    elif program in ("groupdel", "userdel") and (m := _DEL_GROUP.search(message)):  # addition
        _event(doc, category=["iam"], type=["group", "deletion"], outcome="success")
        doc["group"] = {"name": m["name"] or m["name2"]}


def _sshd(doc: dict, message: str) -> bool:
    if m := _SSH_LOGIN.match(message):
        ok = m["event"] == "Accepted"
        _event(doc, action="ssh_login", category=["authentication", "session"] if ok else ["authentication"],
               type=["info"], outcome="success" if ok else "failure")
        _user(doc, m["user"], None)
        _source(doc, m["ip"], m["port"])
        ssh = {"event": m["event"], "method": m["method"]}
        if m["sig"]:
            ssh["signature"] = m["sig"]
        _auth(doc)["ssh"] = ssh
    elif m := _SSH_INVALID.match(message):
        _event(doc, action="ssh_login", category=["authentication"], type=["info"], outcome="failure")
        _user(doc, m["user"], None)
        _source(doc, m["ip"], m["port"])
        _auth(doc)["ssh"] = {"event": "Invalid"}
    elif m := _SSH_DROPPED.match(message):
        _source(doc, m["ip"], None, address=False)
        _auth(doc)["ssh"] = {"dropped_ip": m["ip"]}
    elif m := _SSH_PAM_ERROR.match(message):
        _user(doc, m["user"], None)
        _source(doc, m["host"], None)
    elif m := _SSH_DISCONNECT.match(message):  # addition
        _event(doc, category=["session"], type=["end"])
        if m["user"]:
            _user(doc, m["user"], None)
        _source(doc, m["ip"], m["port"])
        _auth(doc)["ssh"] = {"event": "Disconnected"}
    else:
        return False
    return True


def _sudo(doc: dict, m: re.Match) -> None:
    _event(doc, category=["process"])
    _user(doc, m["user"], None)
    doc["user"]["effective"] = {"name": m["runas"]}
    _related_user(doc, m["runas"])
    sudo = {"command": m["command"], "pwd": m["pwd"], "tty": m["tty"], "user": m["runas"]}
    if m["error"]:
        sudo["error"] = m["error"].strip()
    _auth(doc)["sudo"] = sudo
    doc["process"].pop("pid", None)  # the pipeline keeps sudo's pid only on PAM lines


def _pam_failure(doc: dict, m: re.Match) -> None:
    kv = {k: v for k, v in _KV.findall(m["kv"]) if v}
    _event(doc, category=["authentication"], outcome="failure")
    user: dict = {}
    if "ruser" in kv:
        user["name"] = kv["ruser"]
        _related_user(doc, kv["ruser"])
    if "uid" in kv:
        user["id"] = kv["uid"]
    if "user" in kv:
        user["effective"] = {"name": kv["user"], **({"id": kv["euid"]} if "euid" in kv else {})}
        _related_user(doc, kv["user"])
    if user:
        doc["user"] = user
    if "rhost" in kv:
        _source(doc, kv["rhost"], None)


def _event(doc: dict, action: str | None = None, category: list | None = None, type: list | None = None,
           outcome: str | None = None) -> None:
    ev = doc["event"]
    for key, value in (("action", action), ("category", category), ("type", type), ("outcome", outcome)):
        if value is not None:
            ev[key] = value


def _user(doc: dict, name: str, uid: str | None) -> None:
    user = doc.setdefault("user", {})
    user["name"] = name
    if uid is not None:
        user["id"] = uid
    _related_user(doc, name)


def _related_user(doc: dict, name: str) -> None:
    users = doc.setdefault("related", {}).setdefault("user", [])
    if name and name not in users:
        users.append(name)


def _source(doc: dict, host: str, port: str | None, address: bool = True) -> None:
    source: dict = {}
    try:
        ipaddress.ip_address(host)
        source["ip"] = host
        doc.setdefault("related", {}).setdefault("ip", []).append(host)
    except ValueError:
        source["domain"] = host
    if address:
        source["address"] = host
    if (number := ascii_int(port)) is not None:
        source["port"] = number
    doc["source"] = source


def _auth(doc: dict) -> dict:
    return doc.setdefault("system", {}).setdefault("auth", {})
