"""The event path of `make bench-cluster` (scripts/bench.sh, BENCH_ONLY=cluster), read from the
nodes' own /metrics around the viral 1x run through the cluster's front door: outbox events the
relays published to Pulsar per second, reaction ops applied by their owners per second, and the
latency of each (an op's acceptance to its batch applied; a change's write to its event handled
by the cache-invalidation subscribers). Quantiles come from the histograms' bucket counts, so
each is the upper bound of the bucket that holds it.

After the whole run, `repairs` sums what the cluster repaired by itself over all nodes: the
reaction owners' recounts and repairs, and the CQL counter repair's (docs/cluster.md "Counter
repair"); bench.sh adds what `commentd --verify` still finds.

usage: bench_cluster_events.py snapshot CLUSTER_RUN_DIR OUT.json
       bench_cluster_events.py report BEFORE.json AFTER.json   (prints; writes nothing)
       bench_cluster_events.py repairs CLUSTER_RUN_DIR OUT.json
"""
from __future__ import annotations

import json
import pathlib
import sys
import time

from prom_text import bucket_bound, quantile, samples

COUNTERS = ("commentd_relay_published_total", "commentd_event_log_appended_total",
            "commentd_event_log_applied_total", "commentd_event_log_ignored_total")
REPAIRS = ("commentd_reaction_recounts_total", "commentd_reaction_owner_repairs_total",
           "commentd_count_repair_repaired_total", "commentd_count_repair_drift_total",
           "commentd_count_repair_pending", "commentd_count_updates_deferred_total")
HISTOGRAMS = ("commentd_reaction_apply_lag_seconds", "commentd_event_latency_seconds")

def node_ports(run: pathlib.Path) -> list[int]:
    ports = (run / "ports").read_text().split()
    nodes = len(list(run.glob("node-*/pid")))
    return [int(p) for p in ports[2:2 + nodes]]


def scrape(port: int) -> dict:
    """Counters summed over labels; histogram buckets summed over labels, by upper bound."""
    out: dict = {"counters": {}, "buckets": {h: {} for h in HISTOGRAMS}}
    for name, labels, value in samples(port):
        if name in COUNTERS:
            out["counters"][name] = out["counters"].get(name, 0.0) + value
        for h in HISTOGRAMS:
            if name == h + "_bucket":
                le = bucket_bound(labels)
                out["buckets"][h][le] = out["buckets"][h].get(le, 0.0) + value
    return out


def snapshot(run: pathlib.Path) -> dict:
    total: dict = {"at": time.time(), "counters": {}, "buckets": {h: {} for h in HISTOGRAMS}}
    for port in node_ports(run):
        s = scrape(port)
        for k, v in s["counters"].items():
            total["counters"][k] = total["counters"].get(k, 0.0) + v
        for h, b in s["buckets"].items():
            for le, v in b.items():
                total["buckets"][h][le] = total["buckets"][h].get(le, 0.0) + v
    return total


def report(before: dict, after: dict) -> dict:
    secs = after["at"] - before["at"]
    rate = {k: (after["counters"].get(k, 0.0) - before["counters"].get(k, 0.0)) / secs for k in COUNTERS}
    lat = {}
    for h in HISTOGRAMS:
        delta = {le: v - before["buckets"][h].get(le, 0.0) for le, v in after["buckets"][h].items()}
        lat[h] = {"count": max(delta.values(), default=0.0),
                  "p50_s": quantile(delta, 0.50), "p99_s": quantile(delta, 0.99)}
    return {"seconds": secs, "per_second": rate, "latency": lat}


def fmt_s(v) -> str:
    return "-" if v is None else ("> last bucket" if v == float("inf") else f"<= {v * 1e3:g} ms")


def repairs(run: pathlib.Path) -> dict:
    """REPAIRS summed over the nodes (a node restarted during the run counts from its start)."""
    out = {k: 0.0 for k in REPAIRS}
    for port in node_ports(run):
        for name, _labels, value in samples(port):
            if name in out:
                out[name] += value
    return out


def main() -> None:
    if sys.argv[1] == "repairs":
        json.dump(repairs(pathlib.Path(sys.argv[2])), open(sys.argv[3], "w"))
        return
    if sys.argv[1] == "snapshot":
        json.dump(snapshot(pathlib.Path(sys.argv[2])), open(sys.argv[3], "w"))
        return
    r = report(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])))
    ps, lat = r["per_second"], r["latency"]
    print(f"event path over {r['seconds']:.0f} s of viral 1x through the front door (all nodes):")
    print(f"  outbox events published by the relays: {ps['commentd_relay_published_total']:.0f}/s")
    handled = ps["commentd_event_log_applied_total"] + ps["commentd_event_log_ignored_total"]
    print(f"  reaction ops accepted (published, 202): {ps['commentd_event_log_appended_total']:.0f}/s; "
          f"handled by their owners: {handled:.0f}/s")
    for h, label in (("commentd_reaction_apply_lag_seconds", "reaction op accepted -> applied by its owner"),
                     ("commentd_event_latency_seconds", "comment change written -> event handled")):
        x = lat[h]
        print(f"  {label}: {x['count']:.0f} observed, p50 {fmt_s(x['p50_s'])}, p99 {fmt_s(x['p99_s'])}")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
