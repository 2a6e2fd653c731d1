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
import sys

from prom_text import bucket_bound, quantile, samples

NAME = "commentd_http_request_duration_seconds_bucket"


def snapshot(port: int) -> dict[str, float]:
    """Admitted requests' cumulative bucket counts, summed over routes and methods, by bound."""
    out: dict[str, float] = {}
    for name, labels, value in samples(port):
        if name == NAME and 'status="503"' not in labels:
            le = bucket_bound(labels)
            out[le] = out.get(le, 0.0) + value
    return out


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
