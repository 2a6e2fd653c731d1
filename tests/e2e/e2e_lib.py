"""Helpers for the commentd end-to-end tests: start/stop the real binary, sign JWTs, speak HTTP.

Python standard library only (pytest is used by the tests, not here).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "e2e-secret"

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# make check-all runs the suite against the ASan + UBSan binary, several times slower.
SANITIZED = os.environ.get("COMMENTD_E2E_SANITIZED") == "1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
DRAIN_DEADLINE_S = 10.0


def binary_path() -> Path:
    env = os.environ.get("COMMENTD_BIN")
    if env:
        return Path(env).resolve()
    return REPO_ROOT / "build" / "commentd"


def new_id() -> str:
    return str(uuid.uuid4())


def require_servers(*names: str, start: str) -> dict[str, str]:
    """The environment variables naming the project's test servers (deploy/test-servers.sh, whose
    `env` file `make test` loads). A missing one skips the test, or fails it under
    COMMENTD_TEST_REQUIRE=1 (the run that started the servers); `start` is what to start."""
    import pytest

    env = {k: os.environ.get(k, "") for k in names}
    missing = [k for k, v in env.items() if not v]
    if missing:
        msg = f"{', '.join(missing)} not set: run deploy/test-servers.sh start {start} and load its env file"
        if os.environ.get("COMMENTD_TEST_REQUIRE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return env


def cql_address() -> str:
    """host:port of the test Cassandra (COMMENTD_TEST_CQL)."""
    return require_servers("COMMENTD_TEST_CQL", start="cassandra")["COMMENTD_TEST_CQL"]


def cql_tls_dir() -> str:
    """The test Cassandra's TLS files (COMMENTD_TEST_CQL_TLS: ca.pem, client.pem, client.key,
    other-ca.pem; deploy/cassandra/cassandra.sh)."""
    return require_servers("COMMENTD_TEST_CQL_TLS", start="cassandra")["COMMENTD_TEST_CQL_TLS"]


# ----------------------------------------------------------------------------------------------
# JWT (HS256), built by hand
# ----------------------------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(obj) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def make_token(sub: str, *, role: str | None = None, secret: str = JWT_SECRET,
               exp_delta: int = 3600, alg: str = "HS256", extra: dict | None = None) -> str:
    header = {"alg": alg, "typ": "JWT"}
    payload = {"sub": sub, "exp": int(time.time()) + exp_delta}
    if role is not None:
        payload["role"] = role
    if extra:
        payload.update(extra)
    signing_input = _segment(header) + "." + _segment(payload)
    if alg == "none":
        return signing_input + "."
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


class User:
    """A random user (uuid4) with a valid token."""

    def __init__(self, role: str | None = None):
        self.id = new_id()
        self.role = role
        self.token = make_token(self.id, role=role)

    def __repr__(self):
        return f"User({self.id[:8]}{', ' + self.role if self.role else ''})"


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------

class Resp:
    def __init__(self, status: int, headers: dict, body: bytes, method: str, path: str):
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body
        self.method = method
        self.path = path

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as e:  # noqa: BLE001
            raise AssertionError(
                f"{self.method} {self.path}: body is not JSON ({e}): {self.body[:300]!r}") from e

    def __repr__(self):
        return f"<{self.method} {self.path} -> {self.status} {self.body[:300]!r}>"


class Client:
    """One short-lived connection per request, so a Client is safe to share between threads."""

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port

    def request(self, method: str, path: str, body=None, *, token: str | None = None,
                headers: dict | None = None, timeout: float = 15.0) -> Resp:
        hdrs = {"Accept": "application/json"}
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            data = body.encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
            hdrs["Content-Type"] = "application/json"
        else:
            data = None
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if headers:
            hdrs.update(headers)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            send_error = None
            try:
                conn.request(method, path, body=data, headers=hdrs)
            except (BrokenPipeError, ConnectionResetError) as e:
                # The server may answer (e.g. 413) and close before reading the whole body.
                send_error = e
            try:
                r = conn.getresponse()
            except Exception:
                if send_error is not None:
                    raise send_error from None
                raise
            payload = r.read()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, payload, method, path)
        finally:
            conn.close()

    # conveniences --------------------------------------------------------------------------
    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def create_comment(self, user: User, video_id: str, content: str,
                       parent_id: str | None = None) -> dict:
        body = {"content": content}
        if parent_id is not None:
            body["parent_id"] = parent_id
        r = self.request("POST", f"/v1/videos/{video_id}/comments", body, token=user.token)
        assert r.status == 201, r
        return r.json()

    def get_comment(self, cid: str, user: User | None = None) -> Resp:
        return self.request("GET", f"/v1/comments/{cid}", token=user.token if user else None)

    def react(self, user: User, cid: str, rtype: str) -> Resp:
        if rtype == "none":
            return self.request("DELETE", f"/v1/comments/{cid}/reaction", token=user.token)
        return self.request("PUT", f"/v1/comments/{cid}/reaction", {"type": rtype},
                            token=user.token)

    def set_status(self, moderator: User, cid: str, status: str) -> Resp:
        return self.request("PATCH", f"/v1/comments/{cid}/status", {"status": status},
                            token=moderator.token)

    def list_page(self, path: str, user: User | None = None, **params) -> Resp:
        q = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
        return self.request("GET", path + ("?" + q if q else ""),
                            token=user.token if user else None)

    def list_all(self, path: str, user: User | None = None, sort: str | None = None,
                 limit: int = 100, max_pages: int = 1000) -> list[dict]:
        out, cursor = [], None
        for _ in range(max_pages):
            r = self.list_page(path, user, sort=sort, limit=limit, cursor=cursor)
            assert r.status == 200, r
            page = r.json()
            out.extend(page["comments"])
            cursor = page["next_cursor"]
            if cursor is None:
                return out
        raise AssertionError(f"{path}: more than {max_pages} pages")

    def wait_counts(self, cid: str, likes: int, dislikes: int,
                    deadline_s: float = DRAIN_DEADLINE_S, user: User | None = None) -> dict:
        """Polls GET /v1/comments/{cid} until likes/dislikes equal the expected values."""
        end = time.monotonic() + deadline_s
        last = None
        while True:
            r = self.get_comment(cid, user)
            if r.status == 200:
                last = r.json()
                if last["likes"] == likes and last["dislikes"] == dislikes:
                    return last
            else:
                last = r
            if time.monotonic() > end:
                got = (last["likes"], last["dislikes"]) if isinstance(last, dict) else last
                raise AssertionError(
                    f"comment {cid}: expected likes={likes} dislikes={dislikes} within "
                    f"{deadline_s}s after the log drains; last seen {got}")
            time.sleep(0.02)

    def metric(self, name: str) -> float:
        """The value of an unlabelled sample of GET /metrics."""
        r = self.get("/metrics")
        assert r.status == 200, r
        m = re.search(rf"^{name} (\S+)$", r.body.decode(), re.M)
        assert m, f"{name} not in /metrics"
        return float(m.group(1))

    def wait_for(self, fn, what: str, deadline_s: float = DRAIN_DEADLINE_S):
        """Polls fn() until it returns a truthy value; returns it."""
        end = time.monotonic() + deadline_s
        last = None
        while True:
            last = fn()
            if last:
                return last
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {deadline_s}s waiting for {what}")
            time.sleep(0.02)


def assert_error(r: Resp, statuses) -> dict:
    """The response has one of `statuses` and the body {"error":{"code":str,"message":str}}."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    assert r.status in statuses, f"expected {statuses}, got {r!r}"
    body = r.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"error shape: {r!r}"
    err = body["error"]
    assert isinstance(err, dict), f"error shape: {r!r}"
    assert isinstance(err.get("code"), str) and err["code"], f"error.code: {r!r}"
    assert isinstance(err.get("message"), str), f"error.message: {r!r}"
    return err


COMMENT_FIELDS = {
    "id", "video_id", "user_id", "parent_id", "reply_to", "content", "status", "created_at",
    "updated_at", "edited", "likes", "dislikes", "reply_count", "user_reacted", "reaction_type",
}


def assert_comment_shape(c: dict):
    missing = COMMENT_FIELDS - set(c)
    assert not missing, f"comment lacks {sorted(missing)}: {c}"
    for k in ("id", "video_id", "user_id"):
        assert UUID_RE.match(c[k]), f"{k} not a lowercase uuid: {c}"
    for k in ("parent_id", "reply_to"):
        assert c[k] is None or UUID_RE.match(c[k]), f"{k}: {c}"
    assert isinstance(c["content"], str)
    assert c["status"] in ("visible", "hidden", "pending", "spam", "deleted"), c
    for k in ("created_at", "updated_at"):
        assert isinstance(c[k], str) and RFC3339_MS.match(c[k]), f"{k} not RFC 3339 ms UTC: {c}"
    assert isinstance(c["edited"], bool)
    assert isinstance(c["user_reacted"], bool)
    for k in ("likes", "dislikes", "reply_count"):
        assert isinstance(c[k], int) and not isinstance(c[k], bool) and c[k] >= 0, f"{k}: {c}"
    assert c["reaction_type"] in ("like", "dislike", None), c
    assert c["user_reacted"] == (c["reaction_type"] is not None), c


def sort_key(c: dict):
    return (c["created_at"], c["id"])


# ----------------------------------------------------------------------------------------------
# The server process
# ----------------------------------------------------------------------------------------------

def config_yaml(*, create_limit: int = 0, create_window: str = "1m", reaction_limit: int = 0,
                flush_interval: str = "10ms", dev_mode: bool = False) -> str:
    return f"""\
log:
  level: "info"
auth:
  jwt_secret: "{JWT_SECRET}"
  dev_mode: {"true" if dev_mode else "false"}
limits:
  create_comment: {{ limit: {create_limit}, window: "{create_window}" }}
  add_reaction: {{ limit: {reaction_limit}, window: "1m" }}
workers:
  reaction_batch:
    flush_interval: "{flush_interval}"
"""


def sanitized_config(text: str) -> str:
    """The config for the sanitized binary: its queueing delays and event-loop lag exceed the
    release targets under ordinary test load, and load shedding then answers 503 where the
    suite expects its writes to be taken. A config that sets admission itself (the overload
    test) is left alone; shedding is tested against the release binary."""
    if not SANITIZED or "admission:" in text:
        return text
    block = '  admission:\n    queue_target: "5s"\n    loop_lag_target: "0ms"\n'
    m = re.search(r"^server:[ \t]*\n", text, flags=re.M)
    if m:
        return text[:m.end()] + block + text[m.end():]
    return text + "server:\n" + block


# Every Server started in this process, so a failing test can show the servers' stderr tails.
LIVE_SERVERS: list["Server"] = []
_LIVE_LOCK = threading.Lock()
CURRENT_TEST = {"nodeid": None}  # set by conftest before each test


class Server:
    def __init__(self, workdir: Path, config_text: str, data_dir: Path | None = None,
                 name: str = "commentd"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.config_path = self.workdir / "c.yaml"
        self.config_path.write_text(sanitized_config(config_text))
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.port_file = self.workdir / "port"
        self.log_path = self.workdir / "stderr.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.client: Client | None = None
        self.starts = 0
        self.preexec_fn = None  # run in the child before exec (e.g. resource.setrlimit)
        self.host = "127.0.0.1"  # the address it listens on and is reached at
        self.owner = CURRENT_TEST["nodeid"]
        with _LIVE_LOCK:
            LIVE_SERVERS.append(self)

    # lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout_s: float = START_TIMEOUT_S) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        binary = binary_path()
        if self.port_file.exists():
            self.port_file.unlink()
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== e2e: start #{self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [str(binary), "--config", str(self.config_path), "--listen", f"{self.host}:0",
             "--data-dir", str(self.data_dir), "--port-file", str(self.port_file)],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=str(self.workdir),
            preexec_fn=self.preexec_fn)
        log.close()
        end = time.monotonic() + timeout_s
        port = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} during "
                                     f"startup\n{self.stderr_tail()}")
            try:
                text = self.port_file.read_text()
            except FileNotFoundError:
                text = ""
            if text.endswith("\n") and text.strip().isdigit():
                port = int(text.strip())
                break
            time.sleep(0.02)
        if port is None:
            self.kill9()
            raise AssertionError(f"{self.name}: no port file after {timeout_s}s\n"
                                 f"{self.stderr_tail()}")
        self.port = port
        self.client = Client(self.host, port)
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} before "
                                     f"ready\n{self.stderr_tail()}")
            try:
                if self.client.get("/readyz", timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self.kill9()
        raise AssertionError(f"{self.name}: /readyz not 200 after {timeout_s}s\n"
                             f"{self.stderr_tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM; returns the exit code, or None if it had to be killed after timeout_s."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def kill9(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stderr_tail(self, n_lines: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no stderr log)"
        return "\n".join(lines[-n_lines:])

    # HTTP passthrough ----------------------------------------------------------------------------
    def __getattr__(self, item):
        client = self.__dict__.get("client")
        if client is not None and hasattr(client, item):
            return getattr(client, item)
        raise AttributeError(item)


class WsConsumer:
    """A consumer on Pulsar's WebSocket API (RFC 6455 by hand: the standard library has no
    client). Messages are JSON objects with a base64 payload; they are acked as read."""

    def __init__(self, admin_url: str, topic: str, subscription: str, initial: str = "Earliest"):
        """A new subscription starts at the topic's start (Earliest) or its end (Latest)."""
        u = urlparse(admin_url)
        path = ("/ws/v2/consumer/" + topic.replace("://", "/") + "/" + subscription +
                f"?subscriptionType=Exclusive&subscriptionInitialPosition={initial}")
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


class ThreadGroup:
    """Threads started when the `with` block is entered, and stopped when it is left: the
    `stop` event is set and every thread joined. Subclasses fill `threads` and loop until
    `stop` is set."""

    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()
