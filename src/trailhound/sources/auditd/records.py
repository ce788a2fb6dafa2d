"""One audit record: its header, and its key=value data parsed as go-libaudit does (quoting, hex,
ENRICHED names, the fix-ups and enrichment), parsed once and on first use. See `auditd.stream`."""

from __future__ import annotations

import ipaddress
import re

from ..formats import ascii_int
from .tables import ARCHES, ERRNO, KERNEL_RECORD_TYPES, SYSCALLS

HEADER = re.compile(r"(?:node=(\S*) )?type=([A-Za-z0-9_]+(?:\[\d+\])?) msg=audit\((\d+)\.(\d+):(\d+)\):?")
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
UNSET = ("4294967295", "-1")
# the keys Record._enrich_common reads
_COMMON_KEYS = frozenset(("auid", "old-auid", "ses", "subj", "success", "res", "exit", "key", "cwd"))
_SIGNALS = ("", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
            "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT",
            "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF",
            "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS")


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


def hex_string(orig: str) -> str | None:
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
        assert self._data is not None  # _parse sets it
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
        assert self._data is not None  # _parse_body sets it
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
        data: dict
        orig: dict
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
            if rtype == "SECCOMP" and 0 < (sig := ascii_int(data.get("sig")) or 0) < len(_SIGNALS):
                data["sig"] = _SIGNALS[sig]
            arch = data.get("arch")
            if arch is not None:
                data["arch"] = arch = ARCHES.get(arch.lower(), arch)
                number = data.get("syscall")
                if (number := ascii_int(number)) is not None:
                    name = SYSCALLS.get(arch, {}).get(number)
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
                    decoded = hex_string(value)
                    if decoded is not None:
                        data[key] = decoded

    def _enrich_common(self, data: dict, orig: dict) -> None:
        for key in ("auid", "old-auid", "ses"):
            if data.get(key) in UNSET:
                data[key] = "unset"
        _selinux(data, "subj")
        result = data.pop("success", None)
        if result is None:
            result = data.pop("res", None)
        if result is not None:
            result = result.lower()
            data["result"] = "success" if result in ("yes", "1") or result.startswith("suc") else "fail"
        exit_code = data.get("exit")
        if exit_code and exit_code[0] == "-" and (errno := ascii_int(exit_code[1:])) is not None:
            name = ERRNO.get(errno)
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
    m = HEADER.match(text)
    if m is None:
        return None
    node, rtype, sec, msec, seq = m.groups()
    if len(sec) > 11 or len(msec) > 9 or len(seq) > 19:  # past year 5000, or a serial beyond 64 bits
        return None
    number = KERNEL_RECORD_TYPES.get(rtype)
    if number is None:
        unknown = _UNKNOWN_TYPE.fullmatch(rtype)
        if unknown:
            number = int(unknown.group(1))
            rtype = _TYPE_BY_NUMBER.get(number, rtype)
        else:
            number = 0  # a user-space or daemon type: a standalone event
    return Record(rtype, number, (node, int(sec), int(msec), int(seq)), text[m.end():], text, line)
