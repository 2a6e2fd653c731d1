#!/usr/bin/env python3
"""cpu_by_process.py: the CPU each kind of process on this machine spent over a window, in
cores (CPU seconds per second), from /proc. `make bench-cluster` runs it during the cluster's
viral 1x run: everything shares one machine there (the nodes, Cassandra, Pulsar, Redis,
HAProxy and the load generator), so what each took says which one the latencies waited on,
and the nodes' CPU per request against the embedded binary's, in the same run, says what the
cluster's own code costs (the figures for docs/cluster.md).

    cpu_by_process.py --delay 5 --seconds 10 --out cpu.json

Sleeps --delay s (the load's warm-up), samples every process's utime + stime, sleeps --seconds
s and samples again. A process is counted in the group of the first pattern (below) its command
line matches, else in "other"; a process that started in the window counts from zero, one that
ended in it is not counted (the groups here live through the load). Writes the cores per group
as JSON with --out and prints them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

from cpu_per_request import parse_task

# (group, pattern searched in the command line, its arguments joined by spaces).
GROUPS = (
    ("cassandra", re.compile(r"org\.apache\.cassandra\.service\.CassandraDaemon")),
    ("pulsar", re.compile(r"org\.apache\.pulsar\.")),
    # By the program's file name (its path may hold anything).
    ("commentd", re.compile(r"^(?:\S*/)?commentd[^/\s]* ")),
    ("loadgen", re.compile(r"^(?:\S*/)?loadgen ")),
    ("redis", re.compile(r"^(?:\S*/)?redis-server ")),
    ("haproxy", re.compile(r"^(?:\S*/)?haproxy ")),
    ("prometheus", re.compile(r"^(?:\S*/)?prometheus ")),
)


def classify(cmdline: str) -> str:
    """The group of a process, from its command line (arguments joined by spaces)."""
    for name, pattern in GROUPS:
        if pattern.search(cmdline + " "):
            return name
    return "other"


def snapshot(proc: str = "/proc") -> dict[str, tuple[float, str]]:
    """Per pid: (CPU seconds so far, group)."""
    out = {}
    for pid in os.listdir(proc):
        if not pid.isdigit():
            continue
        try:
            with open(f"{proc}/{pid}/stat") as f:
                stat = f.read()
            with open(f"{proc}/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # it ended
        if not cmdline:
            continue  # a kernel thread
        out[pid] = (parse_task(stat, "")[0], classify(cmdline))
    return out


def cores(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Per group: CPU seconds per second between two snapshots, largest first."""
    used: dict[str, float] = {}
    for pid, (cpu, group) in after.items():
        c0 = before.get(pid, (0.0, group))[0]
        used[group] = used.get(group, 0.0) + max(0.0, cpu - c0) / seconds
    return dict(sorted(used.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--out")
    a = ap.parse_args()
    time.sleep(a.delay)
    t0, before = time.monotonic(), snapshot()
    time.sleep(a.seconds)
    t1, after = time.monotonic(), snapshot()
    split = cores(before, after, t1 - t0)
    result = {"seconds": round(t1 - t0, 2), "machine_cores": os.cpu_count(),
              "cores": {k: round(v, 3) for k, v in split.items()}, "total": round(sum(split.values()), 3)}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
    print(" ".join(f"{k} {v:.2f}" for k, v in split.items()) + f" (cores; machine {os.cpu_count()})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
