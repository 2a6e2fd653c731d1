"""The server's own latency of the requests it admitted (every status but 503), read from its
commentd_http_request_duration_seconds histogram around one run of scripts/bench.sh: from the
handler's start to its response, so it leaves out the time a request waited in the load
generator, in the socket and in the event loop (the latter is the event-loop lag that
server.txt samples). Quantiles are the upper bounds of the buckets that hold them.

usage: bench_server_latency.py snapshot PORT OUT.json
       bench_server_latency.py report BEFORE.json AFTER.json   (prints one JSON line)
"""
from __future__ import annotations

import json
import re
import sys
import urllib.request

NAME = "commentd_http_request_duration_seconds_bucket"
# Greedy: a route label holds braces of its own (route="/v1/videos/{video_id}/comments").
LINE = re.compile(r'^' + NAME + r'\{(.*)\}\s+(\S+)$')


def snapshot(port: int) -> dict[str, float]:
    """Admitted requests' cumulative bucket counts, summed over routes and methods, by bound."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or 'status="503"' in m.group(1):
            continue
        le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
        out[le] = out.get(le, 0.0) + float(m.group(2))
    return out


def quantile(buckets: dict[str, float], q: float) -> float | None:
    bounds = sorted(buckets.items(), key=lambda kv: float(kv[0]))
    total = bounds[-1][1] if bounds else 0.0
    if total <= 0:
        return None
    return next(float(le) for le, n in bounds if n >= q * total)


def main() -> None:
    if sys.argv[1] == "snapshot":
        json.dump(snapshot(int(sys.argv[2])), open(sys.argv[3], "w"))
        return
    before, after = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
    delta = {le: n - before.get(le, 0.0) for le, n in after.items()}
    print(json.dumps({"admitted": max(delta.values(), default=0.0),
                      "p50_s": quantile(delta, 0.5), "p99_s": quantile(delta, 0.99)}))


if __name__ == "__main__":
    main()
