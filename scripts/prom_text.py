"""Reading a commentd node's GET /metrics (Prometheus text format) for the bench scripts
(bench_cluster_events.py, bench_server_latency.py): the samples, and a quantile from a
histogram's cumulative bucket counts."""
from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

# Greedy labels: a route label holds braces of its own (route="/v1/videos/{video_id}/comments").
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$')
LE = re.compile(r'le="([^"]+)"')


def samples(port: int) -> Iterator[tuple[str, str, float]]:
    """(name, labels text with its braces or "", value) of every sample the node exposes."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            yield m.group(1), m.group(2) or "", float(m.group(3))


def bucket_bound(labels: str) -> str:
    """The `le` of a histogram bucket sample."""
    return LE.search(labels).group(1)


def quantile(buckets: dict[str, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile q of cumulative bucket counts (by `le`);
    None without observations."""
    bounds = sorted(buckets.items(), key=lambda kv: float(kv[0]))  # "+Inf" sorts last
    total = bounds[-1][1] if bounds else 0.0
    if total <= 0:
        return None
    return next(float(le) for le, count in bounds if count >= q * total)
