"""Every reader of a format other than ECS JSON, and how a file's format is recognised from its first lines.

Apart from sources/formats.py (what a reader is), which the readers import: the registry imports the readers."""

from __future__ import annotations

from .formats import Format


def registry() -> dict[str, Format]:
    """Every reader, in the order detection tries them (imported on first use: `trailhound --help` reads none)."""
    from . import auditd, syslog

    formats = [auditd.FORMAT, syslog.FORMAT]
    return {f.name: f for f in formats}


def detect(head: list[str]) -> Format | None:
    """The format of a file whose first lines are `head`; None for ECS JSON (or unknown)."""
    stripped = [line for line in head if line.strip()]
    if not stripped or stripped[0].lstrip().startswith(("{", "[")):
        json_format = registry().get("syslog")
        # journald's JSON export is syslog in JSON clothing; the syslog reader takes it
        return json_format if json_format and json_format.sniff(stripped) else None
    for fmt in registry().values():
        if fmt.sniff(stripped):
            return fmt
    return None
