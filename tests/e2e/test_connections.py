"""The connection layer under hostile clients (issue 7, defects 4-6): descriptor exhaustion,
one address flooding idle connections, slowloris headers, idle keep-alive, HEAD, Host."""
from __future__ import annotations

import os
import re
import resource
import signal
import socket
import time

import pytest

from e2e_lib import config_yaml

pytestmark = [pytest.mark.needs_server,
              pytest.mark.skipif(bool(os.environ.get("COMMENTD_E2E_URL")),
                                 reason="the node's own connection layer; behind a proxy the proxy answers")]

TICKS = os.sysconf("SC_CLK_TCK")


def cfg(**server) -> str:
    lines = "".join(f"  {k}: {v}\n" for k, v in server.items())
    return config_yaml() + ("server:\n" + lines if lines else "")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def connect(port: int, source: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_response(s: socket.socket, buf: bytearray, head: bool = False):
    """Reads one response from `s` (leftover bytes in `buf`): (status, headers, body)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response; got {bytes(buf)!r}")
        buf += chunk
    end = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    del buf[:end + 4]
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    n = 0 if head else int(headers.get("content-length", ["0"])[0])
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError("connection closed mid-body")
        buf += chunk
    body = bytes(buf[:n])
    del buf[:n]
    return status, headers, body


def closed_within(s: socket.socket, seconds: float, trickle: bytes | None = None) -> bool:
    """True if the server closes `s` within `seconds` (optionally sending `trickle` bytes
    one at a time, 50 ms apart, meanwhile: a slowloris client)."""
    end = time.monotonic() + seconds
    s.settimeout(0.05)
    i = 0
    while time.monotonic() < end:
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        if trickle is not None:
            try:
                s.send(trickle[i % len(trickle):i % len(trickle) + 1])
            except (ConnectionResetError, BrokenPipeError):
                return True
            i += 1
    return False


def log_lines(srv, pattern: str) -> list[str]:
    text = srv.log_path.read_text(errors="replace")
    return [ln for ln in text.splitlines() if re.search(pattern, ln)]


# --------------------------------------------------------------------------------- defect 6

def test_head_has_no_body_and_a_pipelined_request_after_it_works(server):
    s = connect(server.port)
    try:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        buf = bytearray()
        status, headers, _ = read_response(s, buf, head=True)
        assert status == 200
        get_len = len(b'{"status":"ok"}')
        assert headers["content-length"] == [str(get_len)]  # the GET's length, no body bytes
        # The next bytes are the second response, not a body.
        status2, _, body2 = read_response(s, buf)
        assert status2 == 200, buf
        assert body2 == b'{"status":"ok"}'
        assert not buf
    finally:
        s.close()


@pytest.mark.parametrize("request_head, status", [
    (b"GET /healthz HTTP/1.1\r\n\r\n", 400),                          # no Host
    (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),    # two
    (b"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400),    # two, even in 1.0
    (b"GET /healthz HTTP/1.0\r\n\r\n", 200),                          # 1.0 may omit it
    (b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 200),
])
def test_host_header_rules(server, request_head, status):
    s = connect(server.port)
    try:
        s.sendall(request_head)
        got, _, body = read_response(s, bytearray())
        assert got == status, body
        if status == 400:
            assert b'"code":"bad_request"' in body
    finally:
        s.close()


# --------------------------------------------------------------------------------- defect 5

def test_slowloris_header_is_cut_off_by_header_timeout(server_factory):
    srv = server_factory(cfg(header_timeout='"300ms"', request_timeout='"30s"'), name="slowloris").start()
    s = connect(srv.port)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert closed_within(s, 5.0, trickle=b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), \
            "a header trickled byte by byte was not cut off by header_timeout"
    finally:
        s.close()
    assert srv.get("/readyz").status == 200


def test_idle_keepalive_timeout_is_separate_from_the_request_deadline(server_factory):
    srv = server_factory(cfg(idle_timeout='"300ms"', request_timeout='"30s"'), name="idle").start()
    s = connect(srv.port)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(s, bytearray())[0] == 200
        assert closed_within(s, 5.0), "an idle keep-alive connection outlived idle_timeout"
    finally:
        s.close()


def test_one_address_flooding_idle_connections_does_not_lock_others_out(server_factory):
    srv = server_factory(cfg(max_connections=120, max_connections_per_ip=50), name="flood").start()
    flood: list[socket.socket] = []
    try:
        # Over the per-address cap from one address, then over the server cap from three.
        for source in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.4"):
            for _ in range(60):
                flood.append(connect(srv.port, source))
        # A new client and the readiness probe are served (oldest idle ones were closed).
        assert srv.get("/readyz", timeout=5).status == 200
        assert srv.get("/v1/videos/00000000-0000-4000-8000-000000000001/comments",
                       timeout=5).status == 200
        metrics = srv.get("/metrics").body.decode()
        evicted = re.search(r"^commentd_http_connections_evicted_total (\S+)$", metrics, re.M)
        assert evicted and float(evicted.group(1)) >= 240 - 120, metrics[-2000:]
        open_now = re.search(r"^commentd_http_connections (\S+)$", metrics, re.M)
        assert open_now and float(open_now.group(1)) <= 122  # closes of evicted ones may lag
    finally:
        for s in flood:
            s.close()


# --------------------------------------------------------------------------------- defect 4

def _limit_nofile(n: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return apply


def _flood_and_measure(srv, sockets: list[socket.socket], count: int, seconds: float = 3.0):
    """Opens `count` connections (some may be refused or cut), then keeps the server busy
    accepting for `seconds`; returns the CPU seconds the server used meanwhile."""
    pid = srv.proc.pid
    cpu0 = cpu_seconds(pid)
    for i in range(count):
        try:
            sockets.append(connect(srv.port, f"127.0.1.{1 + i % 200}", timeout=2))
        except OSError:
            pass
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert srv.get("/healthz", timeout=10).status == 200  # responsive throughout
        time.sleep(0.1)
    return cpu_seconds(pid) - cpu0


def test_low_descriptor_limit_caps_connections_without_spinning(server_factory):
    srv = server_factory(cfg(), name="nofile")
    srv.preexec_fn = _limit_nofile(256)
    srv.start()
    cap = log_lines(srv, r"connections: at most \d+")
    assert cap and "RLIMIT_NOFILE 256" in cap[-1], srv.stderr_tail()
    assert int(re.search(r"at most (\d+)", cap[-1]).group(1)) < 256
    size0 = srv.log_path.stat().st_size
    sockets: list[socket.socket] = []
    try:
        cpu = _flood_and_measure(srv, sockets, 600)
        assert srv.running()
        assert cpu < 1.5, f"{cpu:.2f} CPU-seconds in ~3 s of connection flood"
        assert srv.log_path.stat().st_size - size0 < 20_000
    finally:
        for s in sockets:
            s.close()


def test_running_out_of_descriptors_backs_off_and_logs_little(server_factory):
    srv = server_factory(cfg(), name="emfile").start()
    pid = srv.proc.pid
    used = len(os.listdir(f"/proc/{pid}/fd"))
    # Lower the limit under the running server: accept() now fails with EMFILE.
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (used + 20, used + 20))
    sockets: list[socket.socket] = []
    try:
        cpu = _flood_and_measure(srv, sockets, 400)
        assert srv.running()
        assert cpu < 1.5, f"{cpu:.2f} CPU-seconds in ~3 s of EMFILE"
        failures = log_lines(srv, r"accept failed")
        assert failures, "the flood never hit EMFILE: the test proves nothing\n" + srv.stderr_tail()
        assert len(failures) <= 3, "\n".join(failures[:10])
        metrics = srv.get("/metrics").body.decode()
        fd_errors = re.search(r"^commentd_http_accept_fd_errors_total (\S+)$", metrics, re.M)
        assert fd_errors and float(fd_errors.group(1)) >= 1
    finally:
        for s in sockets:
            s.close()


def test_sigpipe_does_not_kill_the_server(server_factory):
    """A write to a socket its peer reset raises SIGPIPE unless the process ignores it; a
    cluster node once died silently while Pulsar was killed. The server must ignore it."""
    srv = server_factory(config_yaml(), name="sigpipe").start()
    os.kill(srv.proc.pid, signal.SIGPIPE)
    time.sleep(0.2)  # a default disposition would have ended the process by now
    assert srv.running(), "SIGPIPE killed the server"
    assert srv.get("/healthz").status == 200
    assert srv.terminate() == 0
