"""scripts/bench_cluster_summary.py: the viral 1x CPU split and commentd's CPU per request, as
the summary reads them from a results directory (synthetic files)."""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import bench_cluster_summary as bcs  # noqa: E402


def write(res, name, obj):
    with open(os.path.join(res, name), "w") as f:
        json.dump(obj, f)


def test_cpu_split_per_side_and_the_per_request_ratio(tmp_path, capsys):
    res = str(tmp_path)
    write(res, "embedded_viral_1x.json", {"overall": {"achieved_rate": 2000.0}})
    write(res, "cluster_viral_1x.json", {"overall": {"achieved_rate": 1000.0}})
    write(res, "embedded_viral_1x_cpu.json",
          {"seconds": 10, "machine_cores": 2, "cores": {"commentd": 0.2, "loadgen": 0.1}, "total": 0.3})
    write(res, "cluster_viral_1x_cpu.json",
          {"seconds": 10, "machine_cores": 2, "cores": {"cassandra": 0.9, "commentd": 0.6}, "total": 1.5})
    out = {}
    bcs.cpu_split(res, out)
    cpu = out["viral_1x_cpu"]
    assert cpu["embedded"]["commentd_us_per_request"] == pytest.approx(100.0)
    assert cpu["cluster"]["commentd_us_per_request"] == pytest.approx(600.0)
    assert cpu["commentd_cluster_over_embedded_per_request"] == pytest.approx(6.0)
    text = capsys.readouterr().out
    assert "cluster (cores of 2, 10 s mid-run): cassandra 0.90, commentd 0.60; commentd 600 us" in text
    assert "cluster over embedded: 6.00x" in text


def test_cpu_split_says_nothing_without_its_files(tmp_path, capsys):
    out = {}
    write(str(tmp_path), "cluster_viral_1x.json", {"overall": {"achieved_rate": 1000.0}})
    bcs.cpu_split(str(tmp_path), out)
    assert out == {} and capsys.readouterr().out == ""


def reads(p50, p99, count=100, ok=100):
    return {"overall": {"count": count, "ok": ok},
            "groups": {"reads": {"count": count, "latency_ms": {"p50": p50, "p99": p99}}}}


def test_front_door_puts_the_node_beside_the_front_door_and_embedded(tmp_path, capsys):
    res = str(tmp_path)
    write(res, "embedded_cached_pages.json", reads(0.2, 0.5))
    write(res, "cluster_cached_pages.json", reads(0.25, 1.2))
    write(res, "cluster_cached_pages_node.json", reads(0.1, 0.6, count=100, ok=99))
    out = {}
    bcs.front_door(res, out)
    row = out["cached_pages_node"]
    assert row["node_over_embedded_read_p50"] == pytest.approx(0.5)
    assert row["node_over_embedded_read_p99"] == pytest.approx(1.2)
    assert row["node_errors"] == 1
    text = capsys.readouterr().out
    assert "straight at node 1 (no front door): read p50 0.10 ms (0.50x of embedded), p99 0.60 ms (1.20x)" in text
    assert "through the front door p50 0.25, p99 1.20 ms; 1 errors" in text


def test_front_door_says_nothing_without_the_node_run(tmp_path, capsys):
    res = str(tmp_path)
    write(res, "cluster_cached_pages.json", reads(0.25, 1.2))
    out = {}
    bcs.front_door(res, out)
    assert out == {} and capsys.readouterr().out == ""
