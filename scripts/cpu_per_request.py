#!/usr/bin/env python3
"""CPU per request, by thread: what each commentd build spends to serve one request of a
load it keeps up with. On this shared, noisy 2-core machine a throughput figure under overload
moves by 10 % or more between runs; the CPU a process spends per request served, at a fixed
open-loop rate below its capacity, moves much less, and split by thread name it says where a
difference comes from (the event loops, the writer, the bus...).

    scripts/cpu_per_request.py --bin before=/path/commentd --bin after=build-release/commentd \\
        --rounds 2 -- --scenario viral --read-rate 4000 --comment-rate 400 --reaction-rate 4000

Each round runs every binary once, in alternating order (before, after; then after, before),
each on a fresh data dir with rate limits off. Loadgen (build-release/loadgen unless --loadgen)
gets the arguments after `--` plus the target, JWT secret and output file. The CPU of the
commentd process and of each of its threads (utime + stime from /proc) is sampled after
--warmup seconds and at the end of the load. Prints, per binary, the median over rounds of
microseconds of CPU per request served, per thread group (threads of one name, digits dropped:
"commentd-io-0" and "commentd-io-1" are "commentd-io"), and the voluntary context switches per
request; the thread of the binary's own name is shown as "main/read pool". Writes the rounds as
JSON with --out.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "cpu-per-request-secret"
TICKS = os.sysconf("SC_CLK_TCK")


def group_name(comm: str, binary: str) -> str:
    """The thread group a thread's name belongs to."""
    if comm == binary[:15]:  # the kernel keeps 15 characters of a thread's name
        return "main/read pool"
    return re.sub(r"[-:]?\d+$", "", comm) or comm


def read_threads(pid: int, binary: str) -> dict[str, tuple[float, int]]:
    """Per thread group: (CPU seconds, voluntary context switches) so far."""
    out: dict[str, tuple[float, int]] = {}
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"{task_dir}/{tid}/stat") as f:
                stat = f.read()
            with open(f"{task_dir}/{tid}/status") as f:
                status = f.read()
        except OSError:
            continue  # the thread ended
        cpu, switches = parse_task(stat, status)
        g = group_name(comm, binary)
        c0, s0 = out.get(g, (0.0, 0))
        out[g] = (c0 + cpu, s0 + switches)
    return out


def parse_task(stat: str, status: str) -> tuple[float, int]:
    """CPU seconds (utime + stime) from a /proc stat line, voluntary switches from status."""
    fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces
    cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15
    m = re.search(r"^voluntary_ctxt_switches:\s*(\d+)", status, re.M)
    return cpu, int(m.group(1)) if m else 0


def per_request(before: dict, after: dict, requests: float) -> dict[str, dict[str, float]]:
    """Per thread group: microseconds of CPU and voluntary switches per request between two
    samples (a group that appeared in between counts from zero)."""
    out = {}
    for g, (cpu, sw) in after.items():
        c0, s0 = before.get(g, (0.0, 0))
        out[g] = {"us": (cpu - c0) * 1e6 / requests, "switches": (sw - s0) / requests}
    return out


def run_one(name: str, binary: str, loadgen: str, args: list[str], warmup: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"cpr-{name}-") as tmp:
        cfg = os.path.join(tmp, "commentd.yaml")
        with open(cfg, "w") as f:
            f.write(f"""server:
  listen: "127.0.0.1:0"
log:
  level: "warn"
storage:
  data_dir: "{tmp}/data"
auth:
  jwt_secret: "{SECRET}"
limits:
  create_comment: {{ limit: 0, window: "1m" }}
  add_reaction: {{ limit: 0, window: "1m" }}
""")
        port_file = os.path.join(tmp, "port")
        log = open(os.path.join(tmp, "commentd.log"), "w")
        srv = subprocess.Popen([binary, "--config", cfg, "--port-file", port_file], stdout=log, stderr=log)
        try:
            for _ in range(300):
                if os.path.exists(port_file) and open(port_file).read().strip():
                    break
                time.sleep(0.05)
            port = open(port_file).read().strip()
            out = os.path.join(tmp, "loadgen.json")
            lg = subprocess.Popen([loadgen, "--target", f"http://127.0.0.1:{port}", "--jwt-secret", SECRET,
                                   "--out", out, "--quiet", *args], stdout=subprocess.DEVNULL)
            time.sleep(warmup)
            exe = os.path.basename(binary)
            t0, s0 = time.monotonic(), read_threads(srv.pid, exe)
            lg.wait()
            t1, s1 = time.monotonic(), read_threads(srv.pid, exe)
            report = json.load(open(out))
        finally:
            srv.terminate()
            srv.wait(30)
            log.close()
    rate = report["overall"]["achieved_rate"]
    requests = rate * (t1 - t0)
    groups = per_request(s0, s1, requests)
    return {"name": name, "achieved_rate": rate, "errors": report["overall"]["count"] - report["overall"]["ok"],
            "us_per_request": sum(g["us"] for g in groups.values()),
            "switches_per_request": sum(g["switches"] for g in groups.values()), "groups": groups}


def summary(runs: list[dict]) -> str:
    """The median of every figure over each binary's rounds, as a table."""
    names = list(dict.fromkeys(r["name"] for r in runs))
    groups = sorted({g for r in runs for g in r["groups"]},
                    key=lambda g: -statistics.median(r["groups"].get(g, {"us": 0})["us"] for r in runs))
    med = {n: {} for n in names}
    for n in names:
        mine = [r for r in runs if r["name"] == n]
        med[n]["req/s"] = statistics.median(r["achieved_rate"] for r in mine)
        med[n]["errors"] = statistics.median(r["errors"] for r in mine)
        med[n]["us/req"] = statistics.median(r["us_per_request"] for r in mine)
        med[n]["switches/req"] = statistics.median(r["switches_per_request"] for r in mine)
        for g in groups:
            med[n][g] = statistics.median(r["groups"].get(g, {"us": 0.0})["us"] for r in mine)
    rows = ["req/s", "errors", "us/req", "switches/req"] + [g for g in groups if any(med[n][g] >= 0.5 for n in names)]
    width = max(len(r) for r in rows) + 2
    lines = ["".ljust(width) + "".join(n.rjust(12) for n in names)
             + ("   " + f"{names[-1]}/{names[0]}" if len(names) > 1 else "")]
    for row in rows:
        vals = [med[n][row] for n in names]
        line = row.ljust(width) + "".join(f"{v:12.1f}" if row != "switches/req" else f"{v:12.2f}" for v in vals)
        if len(names) > 1 and vals[0]:
            line += f"   {vals[-1] / vals[0]:.2f}"
        lines.append(line)
    lines.append(f"(medians of {len(runs) // max(1, len(names))} rounds; us = microseconds of CPU per request served)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH of a commentd binary (repeatable)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the first sample")
    ap.add_argument("--loadgen", default=os.path.join(ROOT, "build-release", "loadgen"))
    ap.add_argument("--out", help="write every run as JSON here")
    ap.add_argument("loadgen_args", nargs=argparse.REMAINDER, help="after --: loadgen's scenario arguments")
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.bin]
    if any(len(b) != 2 for b in bins):
        ap.error("--bin takes NAME=PATH")
    args = a.loadgen_args[1:] if a.loadgen_args[:1] == ["--"] else a.loadgen_args
    if "--duration" not in args:
        args += ["--duration", "20"]
    runs = []
    for r in range(a.rounds):
        for name, path in (bins if r % 2 == 0 else list(reversed(bins))):
            run = run_one(name, path, a.loadgen, args, a.warmup)
            runs.append(run)
            print(f"round {r + 1} {name}: {run['achieved_rate']:.0f} req/s, {run['us_per_request']:.1f} us/req",
                  file=sys.stderr)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(runs, f, indent=1)
    print(summary(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
