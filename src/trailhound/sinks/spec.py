"""`--sink SPEC`: where alerts go besides `--out`, as `KIND:TARGET[?OPTION=VALUE&...]`.

    ndjson:PATH | file:PATH     NDJSON file ('-': standard output); max_bytes=SIZE&keep=N rotates it,
                                append=true appends (both drop alerts the file holds already)
    stdout                      NDJSON on standard output
    syslog:unix:///dev/log      RFC 5424 to a local socket (datagram, or stream when it is one)
    syslog:udp://HOST:PORT      RFC 5424 over UDP (default port 514)
    syslog:tcp://HOST:PORT      RFC 5424 over TCP, octet-counting framing (RFC 6587)
    webhook:http(s)://HOST[:PORT]/PATH   JSON arrays of alerts, retries, an on-disk spool
    elasticsearch:http(s)://HOST[:PORT]  `_bulk` create actions into an alerts index

A spec is parsed (`parse_sink`, pure: no I/O) and checked (`SinkSpec.problem`: a path that
cannot be written, a socket that is not there, a credential variable that is not set) before any
work starts, so a mistake is an error in the first second, not after a long hunt. Credentials
never appear in a spec: a URL with a user or password is refused; they are read from environment
variables the spec may name.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from .ndjson import SinkError, output_problem

KINDS = ("ndjson", "file", "stdout", "syslog", "webhook", "elasticsearch")
_RETRY = {"attempts", "backoff", "max_backoff", "timeout"}
OPTIONS: dict[str, set[str]] = {
    "ndjson": {"max_bytes", "keep", "append"},
    "syslog": {"facility", "framing", "max_size", "attempts", "backoff", "timeout"},
    "webhook": {"batch", "spool", "spool_max", "token_env", "secret_env", "max_retry_after", "ca"} | _RETRY,
    "elasticsearch": {"index", "batch", "max_bytes", "refresh", "api_key_env", "username_env", "password_env",
                      "max_retry_after", "ca", "space"} | _RETRY,
}
_SIZE = re.compile(r"^(\d+)\s*([kmg]?)(i?b)?$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')


class SinkSpecError(ValueError):
    """A `--sink` spec that cannot be used; the message says why."""


@dataclass
class SinkSpec:
    text: str  # as given (never holds a secret: those are refused)
    kind: str  # ndjson, syslog, webhook, elasticsearch
    target: str  # a path, a socket path, host:port or a URL
    options: dict = field(default_factory=dict)
    transport: str = ""  # syslog: unix, udp, tcp

    def problem(self, inputs=()) -> str | None:
        """Why this sink cannot be used now (reads the file system and environment), or None."""
        if self.kind == "ndjson":
            return output_problem(self.target, inputs)
        if self.kind == "syslog" and self.transport == "unix":
            try:
                mode = os.stat(self.target).st_mode
            except OSError as e:
                return f"no socket at {self.target} ({e.strerror})"
            return None if stat.S_ISSOCK(mode) else f"{self.target} is not a socket"
        if self.kind in ("syslog", "webhook", "elasticsearch") and self.transport != "unix":
            host, port = (_host_port(self.target, 514) if self.kind == "syslog"
                          else (urlsplit(self.target).hostname or "", urlsplit(self.target).port or 0))
            try:
                socket.getaddrinfo(host, port)
            except (OSError, UnicodeError) as e:
                return f"cannot resolve the host {host!r} ({getattr(e, 'strerror', None) or e})"
        ca = self.options.get("ca")
        if ca is not None:
            if not os.path.isfile(ca) or not os.access(ca, os.R_OK):
                return f"ca={ca}: not a readable file"
            import ssl

            try:
                ssl.create_default_context(cafile=ca)
            except (ssl.SSLError, OSError) as e:
                return f"ca={ca}: not a PEM certificate bundle ({e})"
        if self.kind == "webhook":
            for var in ("token_env", "secret_env"):
                if var in self.options and not os.environ.get(self.options[var]):
                    return f"the environment variable {self.options[var]} ({var}) is not set"
            spool = self.options.get("spool")
            return _dir_problem(Path(spool)) if spool is not None else None
        if self.kind == "elasticsearch":
            try:
                _es_headers(self.options)
            except SinkSpecError as e:
                return str(e)
        return None

    def open(self):
        """The sink (`Sink`); raises SinkError when it cannot be opened."""
        from .delivery import Retry

        o = self.options
        retry_args = {k: o[k] for k in ("attempts", "backoff", "max_backoff", "timeout", "max_retry_after") if k in o}
        if self.kind == "ndjson":
            if "max_bytes" in o or o.get("append"):
                from .rotating import RotatingNdjsonSink

                try:
                    return RotatingNdjsonSink(self.target, o.get("max_bytes"), o.get("keep", 5), name=self.text)
                except OSError as e:
                    raise SinkError(f"cannot write {self.target}: {e.strerror or e}") from None
            from .ndjson import NdjsonSink

            return NdjsonSink(self.target, name=self.text)
        if self.kind == "syslog":
            from .syslog import SyslogSink

            retry = Retry(**{"attempts": 3, "backoff": 0.2, "max_backoff": 2.0, "timeout": 5.0, **retry_args})
            address = self.target if self.transport == "unix" else _host_port(self.target, 514)
            return SyslogSink(self.transport, address, facility=o.get("facility", "local0"),
                              framing=o.get("framing", "octet"), max_size=o.get("max_size"), retry=retry,
                              name=self.text)
        if self.kind == "webhook":
            from .webhook import WebhookSink, default_spool

            headers = {}
            if "token_env" in o:
                headers["Authorization"] = f"Bearer {_env(o['token_env'])}"
            spool = o.get("spool", default_spool(self.target))
            return WebhookSink(self.target, spool=None if spool == "off" else spool,
                               spool_max=o.get("spool_max", 64 << 20), batch=o.get("batch", 100),
                               retry=Retry(**retry_args), headers=headers, ca=o.get("ca"),
                               secret=_env(o["secret_env"]).encode() if "secret_env" in o else None, name=self.text)
        from .bulk import DEFAULT_INDEX, BulkSink

        return BulkSink(self.target, o.get("index", DEFAULT_INDEX), headers=_es_headers(o),
                        batch=o.get("batch", 500), max_bytes=o.get("max_bytes", 5 << 20), retry=Retry(**retry_args),
                        refresh=o.get("refresh"), ca=o.get("ca"), space=o.get("space"), name=self.text)


def _dir_problem(d: Path) -> str | None:
    if d == Path("off"):
        return None
    if d.exists():
        if not d.is_dir():
            return f"the spool {d} is not a directory"
        return None if os.access(d, os.W_OK | os.X_OK) else f"the spool {d} is not writable"
    parent = d.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"the spool {d} cannot be created ({parent} is not a writable directory)"
    return None


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SinkSpecError(f"the environment variable {name} is not set")
    return value


def _es_headers(o: dict) -> dict[str, str]:
    """Authorization from the environment: an API key, else basic; a variable the spec names must be set."""
    import base64

    key_var = o.get("api_key_env", "TRAILHOUND_ES_API_KEY")
    user_var = o.get("username_env", "TRAILHOUND_ES_USERNAME")
    pass_var = o.get("password_env", "TRAILHOUND_ES_PASSWORD")
    for opt in ("api_key_env", "username_env", "password_env"):
        if opt in o:
            _env(o[opt])
    if os.environ.get(key_var) and "username_env" not in o:
        return {"Authorization": f"ApiKey {os.environ[key_var]}"}
    user, password = os.environ.get(user_var), os.environ.get(pass_var)
    if user or password:
        if not (user and password):
            raise SinkSpecError(f"basic authentication needs both {user_var} and {pass_var}")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def parse_size(value: str) -> int:
    """`100M`, `512k`, `1GiB`, `4096`: bytes (K, M, G are powers of 1024)."""
    m = _SIZE.match(value.strip())
    if not m:
        raise SinkSpecError(f"{value!r} is not a size (a number with an optional K, M or G, e.g. 100M)")
    n = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if n <= 0:
        raise SinkSpecError(f"{value!r}: a size must be more than 0")
    return n


def _number(key: str, value: str, integer: bool, minimum: float) -> float | int:
    try:
        n = int(value) if integer else float(value)
    except ValueError:
        raise SinkSpecError(f"{key}={value!r} is not {'a whole number' if integer else 'a number'}") from None
    if n < minimum or n != n:
        raise SinkSpecError(f"{key}={value!r} must be at least {minimum}")
    return n


def _option(kind: str, key: str, value: str):
    from .syslog import FACILITIES

    if key in ("max_bytes", "spool_max"):
        return parse_size(value)
    if key == "max_size":
        n = parse_size(value)
        if not 480 <= n <= 65000:
            raise SinkSpecError(f"max_size={value!r} must be between 480 bytes and 65000 (RFC 5424, 5426)")
        return n
    if key in ("keep", "batch", "attempts"):
        return _number(key, value, True, 0 if key == "keep" else 1)
    if key in ("backoff", "max_backoff", "timeout", "max_retry_after"):
        return _number(key, value, False, 0.001 if key == "timeout" else 0)
    if key == "facility":
        if value.lower() not in FACILITIES:
            raise SinkSpecError(f"unknown facility {value!r}; one of {', '.join(FACILITIES)}")
        return value.lower()
    if key == "framing":
        if value not in ("octet", "lf"):
            raise SinkSpecError(f"framing={value!r}: octet (RFC 6587 octet counting) or lf")
        return value
    if key == "append":
        if value not in ("true", "false"):
            raise SinkSpecError(f"append={value!r}: true or false")
        return value == "true"
    if key == "refresh":
        if value not in ("true", "false", "wait_for"):
            raise SinkSpecError(f"refresh={value!r}: true, false or wait_for")
        return value
    if key == "index":
        return _index(value)
    if key == "space":
        if not re.fullmatch(r"[a-z0-9_-]+", value):
            raise SinkSpecError(f"space={value!r} is not a Kibana space id (lowercase letters, digits, _ and -)")
        return value
    if key.endswith("_env"):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise SinkSpecError(f"{key}={value!r} is not an environment variable name")
        return value
    return value if value == "off" else os.path.expanduser(value)  # spool, ca: paths ("~" too: no shell expands it here)


def _index(name: str) -> str:
    """Elasticsearch's rules for an index (or alias) name."""
    if not name or name in (".", "..") or name != name.lower() or name[0] in "-_+" \
            or any(c in _BAD_INDEX_CHARS for c in name) or len(name.encode()) > 255:
        raise SinkSpecError(f"index={name!r} is not a valid Elasticsearch index name (lowercase, no spaces or "
                            '\\ / * ? " < > | , # :, not starting with - _ +)')
    return name


def _split_options(kind: str, text: str, strict: bool) -> tuple[str, dict]:
    """`TARGET?k=v&...` → target and options. `strict`: every key must be an option of `kind`;
    else (a webhook URL) keys that are not stay in the URL's own query."""
    known = OPTIONS[kind]
    if "?" not in text:
        return text, {}
    target, _, query = text.rpartition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not strict:
        base = urlsplit(text)
        pairs = parse_qsl(base.query, keep_blank_values=True)
        own = [(k, v) for k, v in pairs if k not in known]
        target = base._replace(query=urlencode(own)).geturl()
        pairs = [(k, v) for k, v in pairs if k in known]
    elif kind == "ndjson" and (not pairs or any(k not in known for k, _ in pairs)):
        return text, {}  # a file name with a `?` in it
    options = {}
    for k, v in pairs:
        if k not in known:
            raise SinkSpecError(f"unknown option {k!r} for {kind} (known: {', '.join(sorted(known))})")
        if k in options:
            raise SinkSpecError(f"option {k!r} given twice")
        options[k] = _option(kind, k, v)
    return target, options


def _host_port(target: str, default_port: int) -> tuple[str, int]:
    u = urlsplit("//" + target)
    try:
        port = u.port
    except ValueError:
        raise SinkSpecError(f"{target!r}: the port must be a number from 0 to 65535") from None
    if not u.hostname:
        raise SinkSpecError(f"{target!r}: a host is needed (e.g. 127.0.0.1:514)")
    return u.hostname, port if port is not None else default_port


def _url(kind: str, url: str) -> str:
    u = urlsplit(url)
    if u.scheme not in ("http", "https"):
        raise SinkSpecError(f"{kind} needs an http:// or https:// URL, not {url!r}")
    if not u.hostname:
        raise SinkSpecError(f"{url!r} names no host")
    if u.username is not None or u.password is not None:
        raise SinkSpecError("credentials in the URL would be visible to every user of the machine; "
                            + ("use token_env=VARIABLE" if kind == "webhook"
                               else "set TRAILHOUND_ES_API_KEY, or TRAILHOUND_ES_USERNAME and TRAILHOUND_ES_PASSWORD"))
    try:
        u.port  # noqa: B018 - parsing it checks it
    except ValueError:
        raise SinkSpecError(f"{url!r}: the port must be a number from 0 to 65535") from None
    if u.fragment:
        raise SinkSpecError(f"{url!r}: a URL fragment (#...) is never sent; remove it")
    return url


def parse_sink(text: str) -> SinkSpec:
    """Parse one `--sink` spec; raises SinkSpecError saying what is wrong. No I/O."""
    if text in ("stdout", "-"):
        return SinkSpec(text, "ndjson", "-")
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS:
        raise SinkSpecError(f"unknown sink {text!r}; a spec is KIND:TARGET with KIND one of "
                            + ", ".join(KINDS) + " (e.g. ndjson:alerts.ndjson, syslog:udp://127.0.0.1:514)")
    if not rest:
        raise SinkSpecError(f"{kind}: what follows the colon is missing")
    if kind == "stdout":
        raise SinkSpecError(f"stdout takes nothing after it (use ndjson:PATH for a file), not {text!r}")
    if kind in ("ndjson", "file"):
        target, options = _split_options("ndjson", rest, strict=True)
        if target == "-" and options:
            raise SinkSpecError("standard output cannot rotate or append (max_bytes, keep, append)")
        if "keep" in options and "max_bytes" not in options:
            raise SinkSpecError("keep= needs max_bytes= (the size at which the file rotates)")
        if ("max_bytes" in options or options.get("append")) and Path(target).suffix.lower() in (".gz", ".bz2", ".xz"):
            raise SinkSpecError("a rotating or appended file is not compressed; drop the .gz/.bz2/.xz suffix")
        return SinkSpec(text, "ndjson", target if target == "-" else os.path.expanduser(target), options)
    if kind == "syslog":
        transport, sep, address = rest.partition("://")
        if not sep or transport not in ("unix", "udp", "tcp"):
            raise SinkSpecError(f"syslog needs unix://PATH, udp://HOST:PORT or tcp://HOST:PORT, not {rest!r}")
        address, options = _split_options("syslog", address, strict=True)
        if transport == "unix":
            address = os.path.expanduser(address)
            if not address.startswith("/"):
                raise SinkSpecError(f"syslog:unix:// needs an absolute socket path (unix:///dev/log), not {address!r}")
        else:
            _host_port(address, 514)
        return SinkSpec(text, "syslog", address, options, transport)
    target, options = _split_options(kind, rest, strict=kind == "elasticsearch")
    return SinkSpec(text, kind, _url(kind, target), options)
