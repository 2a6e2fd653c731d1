"""The table of `make bench-cluster` (scripts/bench.sh, BENCH_ONLY=cluster): per scenario the
embedded and cluster throughput and latencies as ratios, against the baseline server of the
same run, and the highest multiple of the plan's viral load at which every SLO held on the
cluster. Writes RESULTS/cluster_summary.json; prints the table.

usage: bench_cluster_summary.py RESULTS HIGHEST_PASSING FIRST_FAILING NODES
"""
from __future__ import annotations

import json
import os
import sys


def load(res: str, name: str):
    p = os.path.join(res, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None


def latency(run, group: str, q: str):
    g = run["groups"].get(group) if run else None
    return g["latency_ms"][q] if g and g["count"] else None


def fmt(v, f="{:.1f}"):
    return "-" if v is None else f.format(v)


def cpu_split(res: str, out: dict) -> None:
    """The CPU each process took during viral 1x (scripts/cpu_by_process.py) on either side,
    and commentd's CPU per request served (all nodes together on the cluster) as a ratio."""
    per_request = {}
    for side in ("embedded", "cluster"):
        p = os.path.join(res, f"{side}_viral_1x_cpu.json")
        run = load(res, f"{side}_viral_1x")
        if not os.path.exists(p) or not run:
            continue
        cpu = json.load(open(p))
        rps = run["overall"]["achieved_rate"]
        node = cpu["cores"].get("commentd", 0.0)
        per_request[side] = node * 1e6 / rps if rps else None
        out.setdefault("viral_1x_cpu", {})[side] = {**cpu, "commentd_us_per_request": per_request[side]}
        print(f"CPU during viral 1x, {side} (cores of {cpu['machine_cores']}, {cpu['seconds']:g} s mid-run): "
              + ", ".join(f"{k} {v:.2f}" for k, v in cpu["cores"].items())
              + f"; commentd {fmt(per_request[side], '{:.0f}')} us per request served")
    if per_request.get("embedded") and per_request.get("cluster"):
        ratio = per_request["cluster"] / per_request["embedded"]
        out["viral_1x_cpu"]["commentd_cluster_over_embedded_per_request"] = ratio
        print(f"commentd's CPU per request, cluster over embedded: {ratio:.2f}x")


def front_door(res: str, out: dict) -> None:
    """The anonymous cached reads straight at node 1 (cluster_cached_pages_node) beside the same
    reads through the front door and on the embedded node: what of the cluster's cached read is
    the node itself and what is the extra hop (HAProxy, on the same cores)."""
    node, front, emb = (load(res, n) for n in ("cluster_cached_pages_node", "cluster_cached_pages",
                                                "embedded_cached_pages"))
    if not node or latency(node, "reads", "p99") is None:
        return
    row = {"node_read_p50_ms": latency(node, "reads", "p50"), "node_read_p99_ms": latency(node, "reads", "p99"),
           "front_door_read_p50_ms": latency(front, "reads", "p50"),
           "front_door_read_p99_ms": latency(front, "reads", "p99"),
           "node_errors": node["overall"]["count"] - node["overall"]["ok"]}
    ratios = []
    for q in ("p50", "p99"):
        e = latency(emb, "reads", q)
        row[f"node_over_embedded_read_{q}"] = row[f"node_read_{q}_ms"] / e if e else None
        ratios.append(fmt(row[f"node_over_embedded_read_{q}"], "{:.2f}") + "x")
    out["cached_pages_node"] = row
    print(f"cached page, anonymous, straight at node 1 (no front door): read p50 "
          f"{fmt(row['node_read_p50_ms'], '{:.2f}')} ms ({ratios[0]} of embedded), p99 "
          f"{fmt(row['node_read_p99_ms'], '{:.2f}')} ms ({ratios[1]}); through the front door p50 "
          f"{fmt(row['front_door_read_p50_ms'], '{:.2f}')}, p99 {fmt(row['front_door_read_p99_ms'], '{:.2f}')} ms; "
          f"{row['node_errors']} errors")


def main() -> None:
    # The multiples may be fractions (0.5: half the plan's viral load).
    res, lo, first_fail, nodes = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    base = load(res, "baseline_closed")
    base_rps = base["overall"]["achieved_rate"] if base else None
    out = {"nodes": nodes, "baseline_closed_rps": base_rps, "highest_viral_multiple_meeting_slos": lo,
           "first_failing_multiple": first_fail, "scenarios": {}}
    print(f"{'scenario':23} {'emb/s':>6} {'clu req/s':>10} {'clu/emb':>8} {'clu/base':>9} "
          f"{'emb rd p95':>10} {'clu rd p95':>10} {'emb rd p99':>10} {'clu rd p99':>10} "
          f"{'emb wr p99':>10} {'clu wr p99':>10} {'clu errors':>10}")
    for sc in ("viral_1x", "mixed", "read_hot", "cached_pages", "cached_pages_users", "cached_pages_users_warm",
               "uncached_pages", "create"):
        e, c = load(res, "embedded_" + sc), load(res, "cluster_" + sc)
        if not e or not c:
            print(f"{sc:23} (a run is missing)")
            continue
        er, cr = e["overall"]["achieved_rate"], c["overall"]["achieved_rate"]
        row = {
            "embedded_rps": er, "cluster_rps": cr,
            "cluster_over_embedded": cr / er if er else None,
            "cluster_over_baseline": cr / base_rps if base_rps else None,
            "embedded_read_p50_ms": latency(e, "reads", "p50"), "cluster_read_p50_ms": latency(c, "reads", "p50"),
            "embedded_read_p95_ms": latency(e, "reads", "p95"), "cluster_read_p95_ms": latency(c, "reads", "p95"),
            "embedded_read_p99_ms": latency(e, "reads", "p99"), "cluster_read_p99_ms": latency(c, "reads", "p99"),
            "embedded_write_p99_ms": latency(e, "writes", "p99"), "cluster_write_p99_ms": latency(c, "writes", "p99"),
            "cluster_errors": c["overall"]["count"] - c["overall"]["ok"], "cluster_error_kinds": c["overall"]["errors"],
        }
        out["scenarios"][sc] = row
        print(f"{sc:23} {er:6.0f} {cr:10.0f} {fmt(row['cluster_over_embedded'], '{:.2f}'):>8} "
              f"{fmt(row['cluster_over_baseline'], '{:.3f}'):>9} {fmt(row['embedded_read_p95_ms']):>10} "
              f"{fmt(row['cluster_read_p95_ms']):>10} {fmt(row['embedded_read_p99_ms']):>10} "
              f"{fmt(row['cluster_read_p99_ms']):>10} {fmt(row['embedded_write_p99_ms']):>10} "
              f"{fmt(row['cluster_write_p99_ms']):>10} {row['cluster_errors']:>10}")
    # Issue 9's read goals, at rates both sides serve: cached pages within 2x of embedded at
    # p99, an uncached first page under 15 ms at p99.
    # Signed in: first the users' first reads of the video (their rows read from storage once),
    # then the same users with their rows cached.
    for sc, what in (("cached_pages", "cached page, anonymous"),
                     ("cached_pages_users", "cached page, signed in, users' first reads"),
                     ("cached_pages_users_warm", "cached page, signed in, users' rows cached"),
                     ("uncached_pages", "uncached first page")):
        row = out["scenarios"].get(sc)
        if not row or not row["embedded_read_p99_ms"] or row["cluster_read_p99_ms"] is None:
            continue
        for q in ("p50", "p99"):
            row[f"cluster_over_embedded_read_{q}"] = (row[f"cluster_read_{q}_ms"] / row[f"embedded_read_{q}_ms"]
                                                      if row.get(f"embedded_read_{q}_ms") else None)
        print(f"{what}: read p50 {fmt(row['embedded_read_p50_ms'], '{:.2f}')} ms embedded, "
              f"{fmt(row['cluster_read_p50_ms'], '{:.2f}')} ms cluster "
              f"({fmt(row['cluster_over_embedded_read_p50'], '{:.2f}')}x); p99 "
              f"{fmt(row['embedded_read_p99_ms'], '{:.2f}')} / {fmt(row['cluster_read_p99_ms'], '{:.2f}')} ms "
              f"({fmt(row['cluster_over_embedded_read_p99'], '{:.2f}')}x); "
              f"{row['cluster_errors']} cluster errors")
    front_door(res, out)
    print(f"highest multiple of the plan's viral load with every SLO held on the cluster: {lo:g}x "
          f"(first failing: {first_fail:g}x); baseline closed loop {fmt(base_rps, '{:.0f}')} req/s")
    cpu_split(res, out)
    backlog_file = os.path.join(res, "cluster_backlog.txt")
    if os.path.exists(backlog_file):
        backlog = open(backlog_file).read().strip()
        out["reactions_backlog_at_start"] = backlog
        if backlog != "0":
            print(f"the reactions topic held {backlog} unapplied reactions of an earlier run when the cluster "
                  "started: its owners applied them during these runs (fresh servers: leave CLUSTER_SERVERS_DIR unset)")
    rep_file, verify_file = os.path.join(res, "cluster_repairs.json"), os.path.join(res, "cluster_verify.txt")
    if os.path.exists(rep_file):
        rep = json.load(open(rep_file))
        out["repairs"] = rep
        print("repaired by the cluster itself (all nodes): "
              f"reaction owners' recounts {rep['commentd_reaction_recounts_total']:.0f}, "
              f"owner repairs {rep['commentd_reaction_owner_repairs_total']:.0f}; counter repair "
              f"{rep['commentd_count_repair_repaired_total']:.0f} keys, drift "
              f"{rep['commentd_count_repair_drift_total']:.0f}, pending {rep['commentd_count_repair_pending']:.0f}, "
              f"deferred count updates {rep['commentd_count_updates_deferred_total']:.0f}")
    if os.path.exists(verify_file):
        out["verify_after"] = open(verify_file).read().strip()
        print(f"commentd --verify after the run: {out['verify_after'] or '(no output)'}")
    json.dump(out, open(os.path.join(res, "cluster_summary.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
