"""Helpers shared by the lab tests: reading normalized events and looking for evidence in them."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab"


def get(doc: dict, path: str):
    """A dotted field from a document with nested and/or dotted keys."""
    if path in doc:
        return doc[path]
    head, _, rest = path.partition(".")
    while rest:
        if head in doc and isinstance(doc[head], dict):
            return get(doc[head], rest)
        nxt, _, rest = rest.partition(".")
        head = f"{head}.{nxt}"
    return doc.get(head)


def values(doc: dict, path: str) -> list:
    v = get(doc, path)
    return [] if v is None else v if isinstance(v, list) else [v]


def normalized(directory: Path) -> list[dict]:
    from trailhound.sources import load_events

    files = [directory / n for n in ("audit.log", "auth.log") if (directory / n).exists()]
    table = load_events(files)
    return table.documents(range(table.frame.height))


def execs(docs: list[dict], name: str) -> list[dict]:
    return [d for d in docs if get(d, "process.name") == name and "process" in values(d, "event.category")
            and ("exec" in values(d, "event.action") or "executed" in values(d, "event.action"))
            and get(d, "event.outcome") == "success"]


def ssh_logins(docs: list[dict], outcome: str, method: str | None = None, user: str | None = None) -> list[dict]:
    """sshd's auth-log logins (Elastic's system/auth shape)."""
    return [d for d in docs if "ssh_login" in values(d, "event.action") and get(d, "event.outcome") == outcome
            and (method is None or get(d, "system.auth.ssh.method") == method)
            and (user is None or get(d, "user.name") == user)]
