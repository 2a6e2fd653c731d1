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
