"""scripts/cpu_by_process.py: which group a process falls in, and the cores per group between
two snapshots of a synthetic /proc."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import cpu_by_process as cbp  # noqa: E402
from cpu_per_request import TICKS  # noqa: E402


@pytest.mark.parametrize("cmdline, group", [
    ("/usr/bin/java -Xmx512M -cp /x/lib/* org.apache.cassandra.service.CassandraDaemon", "cassandra"),
    ("/usr/bin/java -cp /x/conf org.apache.pulsar.PulsarStandaloneStarter --config s.conf", "pulsar"),
    ("/work/main/build/commentd --config /tmp/c/node-1/commentd.yaml", "commentd"),
    ("commentd-before --config x.yaml", "commentd"),
    ("/work/main/build/loadgen --target http://127.0.0.1:1", "loadgen"),
    ("redis-server 127.0.0.1:6379", "redis"),
    ("/usr/sbin/haproxy -f /tmp/c/haproxy.cfg -db", "haproxy"),
    # Only the program's own name counts, not a path or argument that mentions one.
    ("/tmp/commentd-bench.x1/baseline_server --port 1", "other"),
    ("python3 /work/main/scripts/cpu_by_process.py --out /tmp/commentd/cpu.json", "other"),
    ("bash deploy/cluster.sh up", "other"),
])
def test_a_process_is_grouped_by_its_command_line(cmdline, group):
    assert cbp.classify(cmdline) == group


def write_proc(root, procs):
    for pid, (cmdline, ticks) in procs.items():
        d = os.path.join(root, str(pid))
        os.makedirs(d, exist_ok=True)
        fields = ["S"] + ["0"] * 10 + [str(ticks), "0"] + ["0"] * 5
        with open(os.path.join(d, "stat"), "w") as f:
            f.write(f"{pid} (a (name)) " + " ".join(fields))
        with open(os.path.join(d, "cmdline"), "wb") as f:
            f.write(cmdline.replace(" ", "\0").encode() + b"\0")


def test_cores_per_group_between_two_snapshots(tmp_path):
    root = str(tmp_path)
    node = "/b/commentd --config n1.yaml"
    write_proc(root, {10: (node, 0), 11: (node, TICKS), 20: ("redis-server 127.0.0.1:1", 0),
                      30: ("gone --soon", 0), 2: ("", 500)})  # pid 2: a kernel thread (no cmdline)
    os.makedirs(os.path.join(root, "self"), exist_ok=True)  # not a pid: skipped
    before = cbp.snapshot(root)
    assert set(before) == {"10", "11", "20", "30"}
    os.remove(os.path.join(root, "30", "stat"))  # ended in the window: not counted
    write_proc(root, {10: (node, 2 * TICKS), 11: (node, 3 * TICKS), 20: ("redis-server 127.0.0.1:1", TICKS // 2),
                      40: ("/b/loadgen --target x", 4 * TICKS)})  # started in the window: from zero
    after = cbp.snapshot(root)
    got = cbp.cores(before, after, seconds=2.0)
    assert got == pytest.approx({"commentd": 2.0, "loadgen": 2.0, "redis": 0.25})
    assert list(got)[-1] == "redis"  # largest first
