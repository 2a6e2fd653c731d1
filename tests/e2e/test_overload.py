"""Admission control under a burst (issue 7, defect 7): requests over a class's in-flight bound
get a fast 503 `overloaded` with Retry-After, everything else is served, the exempt routes
are never shed, and the server is healthy afterwards. (The event-loop lag controller, PIE, is
covered by src/http/admission_test.cpp; sustained overload figures come from
`BENCH_ONLY=overload make bench`, see bench/README.md.)"""
from __future__ import annotations

import json
import socket
import uuid

import pytest

from e2e_lib import config_yaml

pytestmark = pytest.mark.needs_server

CONNS = 48


def burst(port: int, paths: list[str]) -> list[tuple[int, dict, bytes]]:
    """Sends one GET per path, each on its own connection, all before reading any answer."""
    socks = []
    for p in paths:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(s)
    for s, p in zip(socks, paths):
        s.sendall(f"GET {p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    out = []
    for s in socks:
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        out.append((int(lines[0].split()[1]), headers, body))
    return out


def test_a_burst_over_the_read_bound_is_shed_fast_and_the_rest_served(server_factory):
    cfg = config_yaml() + """\
server:
  admission:
    max_reads: 2
    queue_target: "1ms"
    queue_interval: "10ms"
"""
    srv = server_factory(cfg, name="admission").start()
    statuses: list[int] = []
    # Lists of fresh videos miss the page cache, so each read goes to the store's read pool
    # and holds its slot meanwhile: a burst of them overlaps. A few rounds make that certain.
    for _ in range(10):
        paths = [f"/v1/videos/{uuid.uuid4()}/comments" for _ in range(CONNS)] + ["/healthz"]
        answers = burst(srv.port, paths)
        *reads, health = answers
        assert health[0] == 200, "an exempt route was shed"
        for status, headers, body in reads:
            assert status in (200, 503), (status, body)
            if status == 503:
                err = json.loads(body)["error"]
                assert err["code"] == "overloaded", err
                assert headers.get("retry-after") == "1"
        statuses += [a[0] for a in reads]
        if 503 in statuses and 200 in statuses:
            break
    assert 503 in statuses, "no read was shed with 2 read slots under bursts of 48"
    assert 200 in statuses
    shed = [l for l in srv.get("/metrics").body.decode().splitlines()
            if l.startswith('commentd_http_shed_total{class="read"}')]
    assert shed and float(shed[0].split()[-1]) >= statuses.count(503)
    # After the burst: served again, and ready.
    assert srv.get(f"/v1/videos/{uuid.uuid4()}/comments").status == 200
    assert srv.get("/readyz").status == 200
