"""Regenerate src/trailhound/sources/auditd/tables.py, the data the auditd reader needs.

Inputs (read once, here; the package ships only the generated module):
* go-libaudit's `aucoalesce/normalizations.yaml` under ../shared/corpora (or $TRAILHOUND_SHARED/corpora):
  the event.action / category / type of each syscall and record type, as Auditbeat applies them.
  Needs PyYAML (tool-only dependency).
* the kernel UAPI headers of the machine: syscall numbers (x86_64 `unistd_64.h`, i386 `unistd_32.h`,
  the generic table aarch64 uses) and the kernel audit record types (`linux/audit.h`).
* Python's `errno` module on Linux: errno number -> name, for negative syscall exit codes.

Run: python3 tools/gen_auditd_tables.py
"""

from __future__ import annotations

import errno
import os
import pprint
import re
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRAILHOUND_SHARED", REPO.parent / "shared"))
NORMALIZATIONS = SHARED / "corpora" / "go-libaudit" / "aucoalesce" / "normalizations.yaml"
OUT = REPO / "src" / "trailhound" / "sources" / "auditd" / "tables.py"
INCLUDE = Path("/usr/include")

# Kernel record types newer than some headers, or defined by AppArmor/SELinux in libaudit.h only.
EXTRA_KERNEL_TYPES = {
    "MAC_TASK_CONTEXTS": 1420, "MAC_OBJ_CONTEXTS": 1421,
    "APPARMOR_AUDIT": 1501, "APPARMOR_ALLOWED": 1502, "APPARMOR_DENIED": 1503, "APPARMOR_HINT": 1504,
    "APPARMOR_STATUS": 1505, "APPARMOR_ERROR": 1506, "APPARMOR_KILL": 1507,
}

# audit arch value (hex, as logged) -> the name go-libaudit prints
ARCHES = {
    "c000003e": "x86_64", "40000003": "i386", "c00000b7": "aarch64", "40000028": "arm", "28": "armeb",
    "c0000015": "ppc64le", "80000015": "ppc64", "14": "ppc", "80000016": "s390x", "16": "s390",
    "c00000f3": "riscv64", "400000f3": "riscv32", "8": "mips", "40000008": "mipsel",
    "80000008": "mips64", "c0000008": "mipsel64", "c0000032": "ia64", "c0000102": "loongarch64",
}


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def normalizations() -> tuple[dict, dict]:
    doc = yaml.safe_load(NORMALIZATIONS.read_text())
    by_syscall: dict[str, dict] = {}
    by_type: dict[str, list[dict]] = {}
    for index, entry in enumerate(doc["normalizations"]):
        ecs = entry.get("ecs") or {}
        norm = {
            "id": index + 1,  # identity: a syscall's entry appends its ECS values only if it differs
            "action": entry.get("action", ""),
            "object_what": entry.get("object_what", ""),
            "object_primary": _as_list(entry.get("object_primary")),
            "object_secondary": _as_list(entry.get("object_secondary")),
            "object_path_index": int(entry.get("object_path_index", 0)),
            "subject_primary": _as_list(entry.get("subject_primary")),
            "subject_secondary": _as_list(entry.get("subject_secondary")),
            "how": _as_list(entry.get("how")),
            "source_ip": _as_list(entry.get("source_ip")),
            "has_fields": _as_list(entry.get("has_fields")),
            "kind": ecs.get("kind", ""),
            "category": _as_list(ecs.get("category")),
            "type": _as_list(ecs.get("type")),
            "mappings": [(m["from"], m["to"]) for m in ecs.get("mappings") or []],
        }
        norm = {k: v for k, v in norm.items() if v not in ("", [], 0)}
        for name in _as_list(entry.get("syscalls")):
            by_syscall[name] = norm
        for name in _as_list(entry.get("record_types")):
            by_type.setdefault(name, []).append(norm)
    return by_syscall, by_type


def _defines(path: Path, prefix: str) -> dict[int, str]:
    table: dict[int, str] = {}
    for m in re.finditer(rf"^#define\s+{prefix}(\w+)\s+(\d+)\s*$", path.read_text(), re.M):
        table.setdefault(int(m.group(2)), m.group(1))
    return table


def syscalls() -> dict[str, dict[int, str]]:
    x86_64 = _defines(INCLUDE / "x86_64-linux-gnu/asm/unistd_64.h", "__NR_")
    i386 = _defines(INCLUDE / "x86_64-linux-gnu/asm/unistd_32.h", "__NR_")
    generic_text = (INCLUDE / "asm-generic/unistd.h").read_text()
    generic: dict[int, str] = {}
    for m in re.finditer(r"^#define\s+__NR(3264)?_(\w+)\s+(\d+)\s*$", generic_text, re.M):
        name = m.group(2)
        if m.group(1):  # the 64-bit name of a 32/64 pair
            name = {"fstatat": "newfstatat", "fstat": "fstat"}.get(name, name)
        if name.startswith("syscalls") or name == "arch_specific_syscall":
            continue
        generic.setdefault(int(m.group(3)), name)
    return {"x86_64": dict(sorted(x86_64.items())), "i386": dict(sorted(i386.items())),
            "generic": dict(sorted(generic.items()))}


def kernel_record_types() -> dict[str, int]:
    types = {}
    for m in re.finditer(r"^#define\s+AUDIT_(\w+)\s+(\d+)", (INCLUDE / "linux/audit.h").read_text(), re.M):
        name, number = m.group(1), int(m.group(2))
        if 1300 <= number < 2100 and not name.startswith(("FIRST_", "LAST_")):
            types[name] = number
    types.update(EXTRA_KERNEL_TYPES)
    return dict(sorted(types.items(), key=lambda kv: kv[1]))


def _one_per_line(name: str, table: dict, annotation: str) -> str:
    """A dict literal with one entry per line (the entries are small dicts)."""
    rows = "".join(f"    {key!r}: {table[key]!r},\n" for key in sorted(table))
    return f"{name}: {annotation} = {{\n{rows}}}"


def _numbered(name: str, table: dict[int, str]) -> str:
    """A number -> name table as its names in number order, "-" for gaps, wrapped in string pieces."""
    names = " ".join(table.get(n, "-") for n in range(max(table) + 1))
    lines = textwrap.wrap(names, 110, break_long_words=False, break_on_hyphens=False)
    return f"{name} = (\n" + "".join(f'    "{line} "\n' for line in lines) + ")"


def main() -> int:
    if not NORMALIZATIONS.exists():
        print(f"missing {NORMALIZATIONS}", file=sys.stderr)
        return 2
    by_syscall, by_type = normalizations()
    errnos = {n: name for n, name in sorted(errno.errorcode.items())}
    tables = syscalls()
    parts = [
        '"""Generated by tools/gen_auditd_tables.py; do not edit by hand.',
        "",
        "SYSCALL_NORMS / RECORD_NORMS: Auditbeat's normalizations (event.action, ECS category/type, summary",
        "fields) per syscall name and per record type. SYSCALLS: arch name -> number -> syscall name.",
        "KERNEL_RECORD_TYPES: kernel-generated record types (1300-2099), which wait for EOE; any other",
        'type is a standalone event. ARCHES: audit arch (hex) -> name. ERRNO: number -> name."""',
        "",
        _one_per_line("SYSCALL_NORMS", by_syscall, "dict[str, dict]"),  # rows mix names, lists and numbers
        "",
        _one_per_line("RECORD_NORMS", by_type, "dict[str, list[dict]]"),
        "",
        "",
        "def _numbered(names: str) -> dict[int, str]:",
        '    """A table written as its names in number order, "-" where a number has none."""',
        '    return {n: name for n, name in enumerate(names.split()) if name != "-"}',
        "",
        "",
        _numbered("_X86_64", tables["x86_64"]),
        _numbered("_I386", tables["i386"]),
        "# aarch64 and riscv64 use the kernel's generic table",
        _numbered("_GENERIC", tables["generic"]),
        "SYSCALLS = {'x86_64': _numbered(_X86_64), 'i386': _numbered(_I386), 'aarch64': _numbered(_GENERIC)}",
        "SYSCALLS['riscv64'] = SYSCALLS['aarch64']",
        "",
        f"KERNEL_RECORD_TYPES = {pprint.pformat(kernel_record_types(), width=120, compact=True, sort_dicts=False)}",
        "",
        f"ARCHES = {pprint.pformat(ARCHES, width=120, compact=True)}",
        "",
        _numbered("_ERRNO", errnos),
        "ERRNO = _numbered(_ERRNO)",
        "",
    ]
    OUT.write_text("\n".join(parts))
    print(f"wrote {OUT}: {len(by_syscall)} syscall and {len(by_type)} record-type normalizations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
