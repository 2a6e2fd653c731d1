"""A network partition between a node and Redis, made with the project's own network
namespace, veth pairs and `tc` (root only; CI runs as root): the node runs in a namespace of its
own, serves HTTP over one veth pair and reaches a Redis of this test's own over another. First
`tc tbf` throttles the Redis link to 16 kbit/s both ways, so Redis calls take longer than
redis.command_timeout; then the Redis link goes down (a partition: the HTTP link stays up);
then it heals. (The CI machine's kernel has no `netem` or `prio` qdisc; `tbf` is there.)
Reads and writes keep answering (cache errors count as misses, limits fail open) within
bounded times, the Redis circuit breaker opens, and after the heal the node uses Redis again
by itself, without a restart."""
from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest

from e2e_lib import ThreadGroup, User, config_yaml

CLONE_NEWNET = 0x40000000
HOST_IP, NODE_IP = "10.123.0.1", "10.123.0.2"            # HTTP: test client <-> node
REDIS_IP, NODE_REDIS_IP = "10.123.0.5", "10.123.0.6"      # Redis <-> node


def sh(*args: str):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{' '.join(args)}: {r.stderr}"


@pytest.fixture
def netns():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        pytest.skip("needs root, ip and tc (network namespaces)")
    tag = f"{os.getpid() % 100000}"
    ns = f"cdpart{tag}"
    links = {"http": (f"cdh{tag}", f"cdn{tag}", HOST_IP, NODE_IP),
             "redis": (f"cdrh{tag}", f"cdrn{tag}", REDIS_IP, NODE_REDIS_IP)}
    sh("ip", "netns", "add", ns)
    try:
        for host_if, node_if, host_ip, node_ip in links.values():
            sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", node_if)
            sh("ip", "link", "set", node_if, "netns", ns)
            sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
            sh("ip", "link", "set", host_if, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{node_ip}/30", "dev", node_if)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", node_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, links["redis"]
    finally:
        for host_if, *_ in links.values():
            subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def enter(ns: str):
    """preexec_fn: the child joins the namespace before exec."""
    def join():
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)
    return join


@pytest.fixture
def redis_on_veth(netns, tmp_path):
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("redis-server missing (scripts/install-deps.sh --test)")
    with socket.socket() as s:  # a free port on the host side of the Redis link
        s.bind((REDIS_IP, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--bind", REDIS_IP, "--port", str(port), "--save", "", "--appendonly", "no", "--protected-mode", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((REDIS_IP, port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < end, "redis did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def throttle(ns: str, link, on: bool):
    """16 kbit/s both ways on the Redis link (tbf), or no shaping."""
    host_if, node_if = link[0], link[1]
    for cmd in (["tc"], ["ip", "netns", "exec", ns, "tc"]):
        dev = host_if if len(cmd) == 1 else node_if
        subprocess.run(cmd + ["qdisc", "del", "dev", dev, "root"], capture_output=True)
        if on:
            sh(*cmd, "qdisc", "add", "dev", dev, "root", "tbf", "rate", "16kbit", "burst", "1600", "latency", "10s")


def link_state(ns: str, link, up: bool):
    """The node's side of the Redis link up or down (down: a partition from Redis only)."""
    sh("ip", "netns", "exec", ns, "ip", "link", "set", link[1], "up" if up else "down")


class Traffic(ThreadGroup):
    """Readers of one cached video and a writer of another; records (start, seconds, status)."""

    def __init__(self, srv, video: str, user: User):
        super().__init__()
        self.log: list[tuple[float, float, int]] = []
        self.srv, self.video, self.user = srv, video, user
        self.threads = [threading.Thread(target=self.run, args=(k,)) for k in range(3)]

    def run(self, k: int):
        other = str(uuid.uuid4())
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                if k == 0:
                    status = self.srv.request("POST", f"/v1/videos/{other}/comments", {"content": "w"},
                                              token=self.user.token, timeout=30).status
                else:
                    status = self.srv.get(f"/v1/videos/{self.video}/comments", timeout=30).status
            except OSError:
                status = -1
            with self.lock:
                self.log.append((t, time.monotonic() - t, status))
            time.sleep(0.02)

    def calls(self, since: float, until: float):
        with self.lock:
            return [x for x in self.log if since <= x[0] < until]


def test_a_partition_between_a_node_and_redis_is_ridden_out_and_heals(server_factory, netns, redis_on_veth):
    ns, link = netns
    port = redis_on_veth
    srv = server_factory(config_yaml() + f"""\
redis:
  enabled: true
  host: "{REDIS_IP}"
  port: {port}
""", name="partitioned")
    srv.host = NODE_IP
    srv.preexec_fn = enter(ns)
    srv.start()
    user, video = User(), str(uuid.uuid4())
    for i in range(5):
        srv.create_comment(user, video, f"c{i}")
    for _ in range(3):
        assert srv.get(f"/v1/videos/{video}/comments").status == 200
    assert srv.metric("commentd_redis_cache_hits_total") >= 1, "Redis serves the cache before the fault"

    phases = {}
    with Traffic(srv, video, user) as traffic:
        time.sleep(1)
        phases["delay"] = time.monotonic()
        throttle(ns, link, True)  # Redis calls now take longer than redis.command_timeout
        time.sleep(5)
        phases["loss"] = time.monotonic()
        link_state(ns, link, False)
        time.sleep(5)
        phases["heal"] = time.monotonic()
        throttle(ns, link, False)
        link_state(ns, link, True)
        hits = srv.metric("commentd_redis_cache_hits_total")
        # Redis is used again by itself: the breaker closes and pages are hits again.
        srv.wait_for(lambda: srv.metric("commentd_redis_breaker_state") == 0
                     and srv.metric("commentd_redis_cache_hits_total") > hits, "Redis to be used again", 30)
        phases["end"] = time.monotonic()

    during = traffic.calls(phases["delay"], phases["heal"])
    assert len(during) > 30, f"too few requests during the fault: {len(during)}"
    bad = [x for x in during if x[2] not in (200, 201)]
    assert not bad, f"{len(bad)} of {len(during)} requests failed during the partition: {bad[:5]}"
    # Every call is bounded by Redis's timeouts, never by the partition's length.
    assert max(x[1] for x in during) < 3.0, max(x[1] for x in during)
    assert srv.metric("commentd_redis_timeouts_total") >= 1, "the delay made Redis calls time out"
    assert srv.metric("commentd_redis_breaker_opens_total") >= 1, "the partition opened the breaker"
    assert all(x[2] in (200, 201) for x in traffic.calls(phases["heal"], phases["end"]))
    assert srv.terminate() == 0
