"""scripts/cpu_per_request.py: thread grouping, /proc parsing, the per-request arithmetic and
the summary table (synthetic samples; the tool itself is run by hand against real binaries)."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import cpu_per_request as cpr  # noqa: E402


def test_threads_group_by_name_without_their_number():
    assert cpr.group_name("commentd-io-0", "commentd") == "commentd-io"
    assert cpr.group_name("commentd-io-1", "commentd") == "commentd-io"
    assert cpr.group_name("rocksdb:low", "commentd") == "rocksdb:low"
    assert cpr.group_name("rocksdb:high0", "commentd") == "rocksdb:high"
    assert cpr.group_name("commentd-writer", "commentd") == "commentd-writer"
    # Threads that kept the process's name (the read pool, unnamed workers), 15 characters kept.
    assert cpr.group_name("commentd", "commentd") == "main/read pool"
    assert cpr.group_name("commentd-before", "commentd-before-819b0ea") == "main/read pool"


def test_proc_stat_and_status_are_parsed_even_with_spaces_in_the_name():
    fields = ["S", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", str(3 * cpr.TICKS), str(cpr.TICKS)]
    stat = "1234 (a name) with) " + " ".join(fields) + " 0 0 0"
    cpu, switches = cpr.parse_task(stat, "Name:\tx\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t7\n")
    assert cpu == pytest.approx(4.0)
    assert switches == 42


def test_per_request_counts_the_difference_and_new_threads_from_zero():
    before = {"commentd-io": (1.0, 100), "commentd-writer": (0.5, 10)}
    after = {"commentd-io": (2.0, 300), "commentd-writer": (0.5, 10), "commentd-bus": (0.25, 50)}
    got = cpr.per_request(before, after, requests=1000.0)
    assert got["commentd-io"] == {"us": pytest.approx(1000.0), "switches": pytest.approx(0.2)}
    assert got["commentd-writer"]["us"] == 0
    assert got["commentd-bus"]["us"] == pytest.approx(250.0)


def test_the_summary_takes_medians_and_the_ratio_of_the_last_binary_to_the_first():
    def run(name, us_io, us_writer, rate=1000.0):
        groups = {"commentd-io": {"us": us_io, "switches": 0.5}, "commentd-writer": {"us": us_writer, "switches": 0.1}}
        return {"name": name, "achieved_rate": rate, "errors": 0, "us_per_request": us_io + us_writer,
                "switches_per_request": 0.6, "groups": groups}
    runs = [run("before", 70, 30), run("after", 80, 30), run("after", 84, 34), run("before", 72, 30)]
    table = cpr.summary(runs).splitlines()
    assert table[0].split() == ["before", "after", "after/before"]
    us = next(line for line in table if line.startswith("us/req")).split()
    assert float(us[1]) == pytest.approx(101.0) and float(us[2]) == pytest.approx(114.0)
    assert float(us[3]) == pytest.approx(114.0 / 101.0, abs=0.01)
    io = next(line for line in table if line.startswith("commentd-io")).split()
    assert float(io[1]) == pytest.approx(71.0) and float(io[2]) == pytest.approx(82.0)
    assert "medians of 2 rounds" in table[-1]
