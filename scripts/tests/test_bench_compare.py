"""scripts/bench_compare.py: the verdict rule, and the table from a results folder laid out as
`BENCH_ONLY=compare scripts/bench.sh` writes it (synthetic loadgen and micro_bench files)."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import bench_compare  # noqa: E402


def test_verdict_calls_worse_and_better_only_beyond_the_noise():
    # Latency (lower is better): 10 % worse with a 5 % spread.
    ratio, noise, word = bench_compare.verdict([10.0, 10.5], [11.0, 11.0], "ms", False)
    assert word == "WORSE" and ratio == pytest.approx(11.0 / 10.25) and noise == pytest.approx(0.5 / 10.25)
    # The same 10 % within a 30 % spread.
    assert bench_compare.verdict([10.0, 13.0], [12.5, 12.5], "ms", False)[2] == "same"
    # Throughput (higher is better): lower is worse, higher is better.
    assert bench_compare.verdict([1000.0, 1010.0], [800.0, 810.0], "/s", True)[2] == "WORSE"
    assert bench_compare.verdict([1000.0, 1010.0], [1200.0, 1210.0], "/s", True)[2] == "better"
    # Under MIN_NOISE nothing is a verdict, even with no spread at all.
    assert bench_compare.verdict([9999.0, 9999.0], [9996.0, 9996.0], "/s", True)[2] == "same"
    # Error counts: clean on both sides is the same; errors after, none before, is worse.
    assert bench_compare.verdict([0, 0], [0, 0], "", False)[2] == "same"
    assert bench_compare.verdict([0, 0], [5, 7], "", False)[2] == "WORSE"
    # One round: no noise figure, so no verdict.
    assert bench_compare.verdict([10.0], [20.0], "ms", False)[2].startswith("?")


def run(reads_p95, achieved, errors=0, hit=0.95):
    lat = {"p95": reads_p95, "p99": reads_p95 * 2}
    return {"overall": {"count": 1000, "ok": 1000 - errors, "achieved_rate": achieved, "latency_ms": lat},
            "groups": {"reads": {"count": 900, "latency_ms": lat},
                       "writes": {"count": 100, "latency_ms": {"p95": 1.0, "p99": 2.0}}},
            "server_metrics": {"cache_hit_rate": hit}}


def test_the_table_from_a_results_folder(tmp_path):
    d = str(tmp_path)
    for side, p95 in (("before", 1.0), ("after", 3.0)):
        for r in (1, 2):
            json.dump(run(p95 + 0.01 * r, 2100.0), open(os.path.join(d, f"{side}_{r}_viral_1x.json"), "w"))
            open(os.path.join(d, f"{side}_{r}_search.txt"), "w").write("4 8\n")
            json.dump({"benchmarks": [{"name": "BM_x", "run_type": "iteration", "cpu_time": 1.0 + 0.01 * r,
                                       "time_unit": "us"},
                                      {"name": f"BM_only_{side}", "cpu_time": 5.0, "time_unit": "ns"}]},
                      open(os.path.join(d, f"{side}_{r}_micro.json"), "w"))
    out = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "bench_compare.py"), d, "2",
                          "/old/commentd", "/new/commentd"], capture_output=True, text=True, check=True).stdout
    summary = json.load(open(os.path.join(d, "compare_summary.json")))
    by = {(f["scenario"], f["figure"]): f for f in summary["figures"]}
    assert by[("viral 1x", "read p95 ms")]["verdict"] == "WORSE"
    assert by[("viral 1x", "achieved req/s")]["verdict"] == "same"
    assert by[("viral search", "highest multiple, every SLO")]["verdict"] == "same"
    # Micro-benchmarks: only the names both trees have, in ns.
    assert by[("micro", "BM_x (ns CPU)")]["before"] == [1010.0, 1020.0]
    assert not any("BM_only" in f["figure"] for f in summary["figures"])
    assert summary["worse"] == ["viral 1x: read p95 ms", "viral 1x: read p99 ms"]
    assert "WORSE beyond the noise: viral 1x: read p95 ms; viral 1x: read p99 ms" in out
