#!/usr/bin/env python3
"""bench_compare.py RESULTS ROUNDS BEFORE_BIN AFTER_BIN: the before/after table of
`BENCH_ONLY=compare scripts/bench.sh` (`make bench-compare`): the load generator's scenarios,
the viral search, and the micro-benchmarks both trees have.

Each figure of each scenario was measured ROUNDS times per binary, in one run, in alternating
order. Per figure: the median per binary, after/before, and the noise: the larger of the two
binaries' own spreads between rounds ((max - min) / median), at least MIN_NOISE. A figure is
WORSE only when after/before is on its bad side by more than the noise (a 2-round spread is a
rough estimate of the noise, so a figure near the line deserves another run before any
conclusion).
Writes compare_summary.json beside the runs; prints the table.
"""
import json
import os
import statistics
import sys

# Below this relative difference no figure is called worse or better, whatever two rounds
# said: an open-loop run's achieved rate (9,996 against 9,999 per second) and a hit rate
# (97.1 % against 97.6 %) repeat to within it while their own spread can be 0.
MIN_NOISE = 0.01

# (run name, label, [(figure, unit, higher_is_better, extractor)])
def _group(name, q):
    return lambda r: r["groups"][name]["latency_ms"][q] if r["groups"][name]["count"] else None

def _overall(q):
    return lambda r: r["overall"]["latency_ms"][q]

def _hit(r):
    hr = (r.get("server_metrics") or {}).get("cache_hit_rate")
    return None if hr is None else 100.0 * hr

def _achieved(r):
    return r["overall"]["achieved_rate"]

def _errors(r):
    return r["overall"]["count"] - r["overall"]["ok"]

SLO = [("read p95 ms", "ms", False, _group("reads", "p95")),
       ("read p99 ms", "ms", False, _group("reads", "p99")),
       ("write p99 ms", "ms", False, _group("writes", "p99")),
       ("cache hit %", "%", True, _hit),
       ("achieved req/s", "/s", True, _achieved),
       ("errors", "", False, _errors)]
SCENARIOS = [
    ("viral_1x", "viral 1x", SLO),
    ("viral_10x", "viral 10x", SLO),
    ("mixed", "mixed", SLO),
    ("read_hot", "read-hot", SLO),
    ("reactions_hot_comment", "reactions, 1 hot comment (closed)",
     [("accepted 202/s", "/s", True, _achieved), ("p99 ms", "ms", False, _overall("p99")),
      ("errors", "", False, _errors)]),
    ("reactions_hot_video", "reactions, 1 hot video (closed)",
     [("accepted 202/s", "/s", True, _achieved), ("p99 ms", "ms", False, _overall("p99")),
      ("errors", "", False, _errors)]),
    ("reactions_open", "reactions open", [("p99 ms", "ms", False, _overall("p99")),
                                          ("errors", "", False, _errors)]),
]


def load(results, name):
    p = os.path.join(results, name + ".json")
    return json.load(open(p)) if os.path.exists(p) else None


def search_multiple(results, side, rnd):
    p = os.path.join(results, f"{side}_{rnd}_search.txt")
    if not os.path.exists(p):
        return None
    lo, _hi = open(p).read().split()
    return float(lo)


def spread(values):
    m = statistics.median(values)
    return (max(values) - min(values)) / m if m else 0.0


def verdict(before, after, unit, higher_is_better):
    """(ratio, noise, word) for one figure's per-round values of each binary."""
    if not before or not after:
        return None, None, "n/a"
    if unit == "" and max(before) == 0 and max(after) == 0:  # error counts, both clean
        return 1.0, 0.0, "same"
    b, a = before, after
    mb, ma = statistics.median(b), statistics.median(a)
    if mb == 0:
        return None, None, "WORSE" if ma > 0 and not higher_is_better else "n/a"
    ratio = ma / mb
    if len(b) < 2 or len(a) < 2:
        return ratio, None, "? (1 round: no noise figure)"
    noise = max(spread(b), spread(a), MIN_NOISE)
    worse = ratio < 1 - noise if higher_is_better else ratio > 1 + noise
    better = ratio > 1 + noise if higher_is_better else ratio < 1 - noise
    return ratio, noise, "WORSE" if worse else ("better" if better else "same")


def main():
    results, rounds, before_bin, after_bin = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rows, out = [], {"before": before_bin, "after": after_bin, "rounds": rounds, "figures": []}

    def add(label, figure, before, after, unit, higher_is_better):
        ratio, noise, word = verdict(before, after, unit, higher_is_better)
        fmt = lambda vs: " / ".join("n/a" if v is None else f"{v:.2f}" for v in vs)
        rows.append((label, figure, fmt(before), fmt(after),
                     "" if ratio is None else f"{ratio:.2f}", "" if noise is None else f"{100 * noise:.0f} %", word))
        out["figures"].append({"scenario": label, "figure": figure, "before": before, "after": after,
                               "after_over_before": ratio, "noise": noise, "verdict": word})

    for name, label, figures in SCENARIOS:
        runs = {side: [load(results, f"{side}_{r}_{name}") for r in range(1, rounds + 1)]
                for side in ("before", "after")}
        for figure, unit, hib, get in figures:
            vals = {side: [get(r) for r in rs if r] for side, rs in runs.items()}
            if any(v is None for vs in vals.values() for v in vs):
                continue  # a figure the scenario does not have (no writes in read-hot)
            add(label, figure, vals["before"], vals["after"], unit, hib)
    sb = [search_multiple(results, "before", r) for r in range(1, rounds + 1)]
    sa = [search_multiple(results, "after", r) for r in range(1, rounds + 1)]
    if None not in sb and None not in sa:
        add("viral search", "highest multiple, every SLO", sb, sa, "x", True)

    # Micro-benchmarks: CPU time per operation (lower is better), for the names both trees have.
    micro = {side: [load(results, f"{side}_{r}_micro") for r in range(1, rounds + 1)] for side in ("before", "after")}
    if all(all(m) for m in micro.values()):
        def times(m):  # name -> CPU time in ns
            scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
            return {b["name"]: b["cpu_time"] * scale[b.get("time_unit", "ns")] for b in m["benchmarks"]
                    if b.get("run_type", "iteration") == "iteration"}
        per = {side: [times(m) for m in ms] for side, ms in micro.items()}
        names = [n for n in per["before"][0] if all(n in t for ts in per.values() for t in ts)]
        for n in names:
            add("micro", f"{n} (ns CPU)", [t[n] for t in per["before"]], [t[n] for t in per["after"]], "ns", False)

    hdr = ("scenario", "figure", f"before ({rounds} rounds)", f"after ({rounds} rounds)",
           "after/before", "noise", "verdict")
    w = [max(len(r[i]) for r in rows + [hdr]) for i in range(len(hdr))]
    print(f"before: {before_bin}\nafter:  {after_bin}\n")
    for r in [hdr] + rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    worse = [f"{r[0]}: {r[1]}" for r in rows if r[6] == "WORSE"]
    print()
    if rounds < 2:
        print("One round: no noise figure, so no verdict (BENCH_COMPARE_ROUNDS=2 or more).")
    else:
        print("WORSE beyond the noise: " + ("; ".join(worse) if worse else "none"))
    out["worse"] = worse
    json.dump(out, open(os.path.join(results, "compare_summary.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
