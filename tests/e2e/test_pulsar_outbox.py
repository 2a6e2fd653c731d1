"""Pulsar mode end to end (server tier): commentd with pulsar.enabled publishes its outbox to
real Pulsar topics of its own. Pulsar is killed mid-run: comment writes keep being accepted
(the outbox holds their events), the relay backs off, and after Pulsar is back everything
drains by itself. The topic, read from the start through Pulsar's WebSocket consumer API,
holds exactly one logical event (one event_id) per acknowledged write, whatever copies a
retry left (consumers are idempotent by event_id).

Needs the test Pulsar of deploy/test-servers.sh (COMMENTD_TEST_PULSAR, ..._ADMIN and
COMMENTD_TEST_SERVERS_CTL from build/test-servers/env): skipped without it, failed under
COMMENTD_TEST_REQUIRE=1. It kills and restarts that Pulsar (same ports and data), so it must
not run beside other tests using it (make test runs e2e after the server tiers)."""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import time
import uuid
from collections import defaultdict
from urllib.parse import urlparse

import pytest

from e2e_lib import User, config_yaml, new_id


@pytest.fixture
def pulsar():
    env = {k: os.environ.get(k) for k in
           ("COMMENTD_TEST_PULSAR", "COMMENTD_TEST_PULSAR_ADMIN", "COMMENTD_TEST_SERVERS_CTL")}
    missing = [k for k, v in env.items() if not v]
    if missing:
        msg = f"{', '.join(missing)} not set: run deploy/test-servers.sh start pulsar and load build/test-servers/env"
        if os.environ.get("COMMENTD_TEST_REQUIRE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return env


def _metric(srv, name: str) -> float:
    r = srv.get("/metrics")
    assert r.status == 200, r
    m = re.search(rf"^{name} (\S+)$", r.body.decode(), re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


class WsConsumer:
    """A consumer on Pulsar's WebSocket API (RFC 6455 by hand: the standard library has no
    client). Messages are JSON objects with a base64 payload; they are acked as read."""

    def __init__(self, admin_url: str, topic: str, subscription: str):
        u = urlparse(admin_url)
        path = ("/ws/v2/consumer/" + topic.replace("://", "/") + "/" + subscription +
                "?subscriptionType=Exclusive&subscriptionInitialPosition=Earliest")
        self.sock = socket.create_connection((u.hostname, u.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "the WebSocket handshake was cut"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n", 1)[0], head.decode(errors="replace")

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "the WebSocket connection was closed"
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, opcode: int, data: bytes):
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def receive(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            op = b0 & 0x0F
            if op == 9:  # ping
                self._send(10, payload)
                continue
            assert op != 8, "the broker closed the WebSocket"
            if op in (0, 1, 2):
                data += payload
                if b0 & 0x80:
                    msg = json.loads(data)
                    self._send(1, json.dumps({"messageId": msg["messageId"]}).encode())
                    return msg

    def close(self):
        self.sock.close()


def _ctl(env, *args):
    subprocess.run([env["COMMENTD_TEST_SERVERS_CTL"], *args], check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_pulsar_down_writes_continue_and_every_event_arrives_once(server_factory, pulsar):
    suffix = uuid.uuid4().hex[:12]
    comments_topic = f"persistent://pavilion/comments/e2e-{suffix}"
    reader = WsConsumer(pulsar["COMMENTD_TEST_PULSAR_ADMIN"], comments_topic, "e2e-check")
    reader.close()  # the subscription now exists from the topic's start; read it at the end
    cfg = config_yaml() + f"""\
pulsar:
  enabled: true
  url: "{pulsar["COMMENTD_TEST_PULSAR"]}"
  send_timeout: "2s"
  connect_timeout: "2s"
  topics:
    comments: "{comments_topic}"
    reactions: "persistent://pavilion/reactions/e2e-{suffix}"
    metrics: "persistent://pavilion/metrics/e2e-{suffix}"
"""
    srv = server_factory(cfg, name="pulsar").start()
    user, videos = User(), [new_id() for _ in range(3)]
    written = [srv.create_comment(user, videos[i % 3], f"before {i}")["id"] for i in range(30)]
    srv.wait_for(lambda: _metric(srv, "commentd_outbox_depth") == 0, "the outbox to drain to Pulsar", 60)
    assert _metric(srv, "commentd_relay_published_total") >= 30

    _ctl(pulsar, "kill", "pulsar")
    try:
        # Pulsar is gone: every write is still acknowledged, its event waits in the outbox.
        during = [srv.create_comment(user, videos[i % 3], f"during {i}")["id"] for i in range(30)]
        written += during
        srv.wait_for(lambda: _metric(srv, "commentd_relay_errors_total") >= 1, "the relay to see the outage", 30)
        assert _metric(srv, "commentd_outbox_depth") >= 1
    finally:
        _ctl(pulsar, "restart", "pulsar")
    written += [srv.create_comment(user, videos[i % 3], f"after {i}")["id"] for i in range(10)]
    srv.wait_for(lambda: _metric(srv, "commentd_outbox_depth") == 0, "the outbox to drain after Pulsar is back", 120)
    marker = srv.create_comment(user, new_id(), "marker")["id"]
    srv.wait_for(lambda: _metric(srv, "commentd_outbox_depth") == 0, "the marker to be published", 60)

    # Read the topic from its start up to the marker (the relay publishes in outbox order).
    reader = WsConsumer(pulsar["COMMENTD_TEST_PULSAR_ADMIN"], comments_topic, "e2e-check")
    event_ids = defaultdict(set)  # comment id -> event ids of its "created" events
    copies = 0
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the marker's event did not arrive"
        msg = reader.receive()
        ev = json.loads(base64.b64decode(msg["payload"]))
        if ev["event_type"] != "created":
            continue
        if ev["event_id"] in event_ids[ev["comment_id"]]:
            copies += 1
        event_ids[ev["comment_id"]].add(ev["event_id"])
        if ev["comment_id"] == marker:
            break
    reader.close()
    missing = [c for c in written if not event_ids.get(c)]
    assert not missing, f"{len(missing)} acknowledged writes have no event on the topic"
    doubled = {c: ids for c, ids in event_ids.items() if len(ids) != 1}
    assert not doubled, f"writes with more than one logical event: {doubled}"
    assert set(event_ids) == set(written) | {marker}, "events for comments nobody wrote"
    print(f"{len(written)} writes, {copies} redelivered copies dropped by event_id")
    assert srv.terminate() == 0
