#!/usr/bin/env python3
"""Speed of the auditd reader: records per second on one core.

    python bench/auditd.py [--records 500000] [--seed 1] [--out bench/data/audit_500k.log] [--repeat 3]

Writes a synthetic audit.log (deterministic for a seed) of about --records records, shaped like a
busy host with execve/file/network rules: execve events (SYSCALL, EXECVE, CWD, 2 PATH, PROCTITLE,
EOE), openat/unlinkat file events, connect events with SOCKADDR, and sshd/sudo user-space records.
Then times `read()` over the file's lines (text already in memory, as the loader hands it over;
decoding and I/O are the loader's) and prints records/s and events/s, best of --repeat.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from trailhound.sources.auditd import read  # noqa: E402
from trailhound.sources.formats import ReadOptions  # noqa: E402

COMMANDS = [["ls", "-la", "/tmp"], ["ssh", "-i", "/home/u/.ssh/id", "admin@10.0.0.7"], ["curl", "-s", "http://x/y"],
            ["python3", "-c", "print(1)"], ["bash", "-c", "id; uname -a"], ["grep", "-r", "secret", "/etc"],
            ["systemctl", "status", "sshd"], ["cat", "/etc/passwd"]]


def _hex(text: str) -> str:
    return text.encode().hex().upper()


def _syscall(ts, seq, num, items, pid, comm, exe, success="yes", exit_="0", key="bench"):
    return (f"type=SYSCALL msg=audit({ts}:{seq}): arch=c000003e syscall={num} success={success} exit={exit_} "
            f"a0=7ffd1c2e a1=55d0e1f0 a2=55d0e2a0 a3=8 items={items} ppid={pid - 1} pid={pid} auid=1000 uid=1000 "
            f"gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"{comm}\" "
            f"exe=\"{exe}\" subj=unconfined key=\"{key}\"")


def generate(path: Path, records: int, seed: int) -> int:
    rng = random.Random(seed)
    seq = 1000
    sec = 1_700_000_000
    written = 0
    with path.open("w") as out:
        while written < records:
            seq += 1
            sec += rng.random() < 0.1
            ts = f"{sec}.{rng.randrange(1000):03d}"
            pid = rng.randrange(2000, 60000)
            kind = rng.random()
            lines: list[str]
            if kind < 0.55:
                argv = rng.choice(COMMANDS)
                exe = "/usr/bin/" + argv[0]
                args = " ".join(f'a{i}="{a}"' if " " not in a else f"a{i}={_hex(a)}" for i, a in enumerate(argv))
                lines = [
                    _syscall(ts, seq, 59, 2, pid, argv[0], exe, key="exec"),
                    f"type=EXECVE msg=audit({ts}:{seq}): argc={len(argv)} {args}",
                    f'type=CWD msg=audit({ts}:{seq}): cwd="/home/u"',
                    f'type=PATH msg=audit({ts}:{seq}): item=0 name="{exe}" inode=1234 dev=08:01 mode=0100755 ouid=0 '
                    f"ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0",
                    f'type=PATH msg=audit({ts}:{seq}): item=1 name="/lib64/ld-linux-x86-64.so.2" inode=99 dev=08:01 '
                    f"mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0",
                    f"type=PROCTITLE msg=audit({ts}:{seq}): proctitle={'00'.join(_hex(a) for a in argv)}",
                    f"type=EOE msg=audit({ts}:{seq}):",
                ]
            elif kind < 0.8:
                syscall, name = rng.choice([(257, "notes.txt"), (263, "old.log"), (257, ".ssh/authorized_keys")])
                lines = [
                    _syscall(ts, seq, syscall, 2, pid, "vim", "/usr/bin/vim", key="files"),
                    f'type=CWD msg=audit({ts}:{seq}): cwd="/home/u"',
                    f'type=PATH msg=audit({ts}:{seq}): item=0 name="/home/u" inode=2 dev=08:01 mode=040755 ouid=1000 '
                    f"ogid=1000 rdev=00:00 nametype=PARENT",
                    f'type=PATH msg=audit({ts}:{seq}): item=1 name="{name}" inode=3 dev=08:01 mode=0100644 ouid=1000 '
                    f"ogid=1000 rdev=00:00 nametype=CREATE",
                    f"type=PROCTITLE msg=audit({ts}:{seq}): proctitle=76696D006E6F7465732E747874",
                    f"type=EOE msg=audit({ts}:{seq}):",
                ]
            elif kind < 0.93:
                port = rng.choice(["0016", "01BB", "0050"])
                lines = [
                    _syscall(ts, seq, 42, 0, pid, "ssh", "/usr/bin/ssh", success="no", exit_="-115", key="net"),
                    f"type=SOCKADDR msg=audit({ts}:{seq}): saddr=0200{port}0A0000070000000000000000",
                    f"type=PROCTITLE msg=audit({ts}:{seq}): proctitle=73736800736572766572",
                    f"type=EOE msg=audit({ts}:{seq}):",
                ]
            else:
                res = rng.choice(["success", "failed"])
                lines = [f"type=USER_LOGIN msg=audit({ts}:{seq}): pid={pid} uid=0 auid=4294967295 ses=4294967295 "
                         f"subj=unconfined msg='op=login acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=? "
                         f"addr=203.0.113.{rng.randrange(255)} terminal=ssh res={res}'"]
            out.write("\n".join(lines) + "\n")
            written += len(lines)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "data" / "audit_500k.log")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records = generate(args.out, args.records, args.seed)
    lines = args.out.read_text().splitlines()
    best = None
    events = 0
    for _ in range(args.repeat):
        skipped: list = []
        start = time.perf_counter()
        events = sum(1 for _ in read(enumerate(lines, 1), lambda n, r, skipped=skipped: skipped.append(n), ReadOptions()))
        elapsed = time.perf_counter() - start
        assert not skipped, skipped[:5]
        best = elapsed if best is None else min(best, elapsed)
    print(f"{records} records ({events} events, {args.out.stat().st_size / 1e6:.0f} MB) in {best:.2f} s: "
          f"{records / best / 1000:.0f}k records/s, {events / best / 1000:.0f}k events/s (best of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
