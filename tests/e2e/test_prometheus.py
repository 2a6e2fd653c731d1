"""GET /metrics: the counters move with traffic, and a real Prometheus scrapes and parses it.

The second test runs the `prometheus` binary (Debian's package, installed by
`scripts/install-deps.sh --test`) against the shared commentd, listening on loopback only, with
its TSDB in tmp_path and no remote storage. A target whose exposition Prometheus cannot parse
shows health "down" with lastError; the test prints it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from e2e_lib import Client, new_id

# ----------------------------------------------------------------------------------------------
# A small parser for the text exposition format (0.0.4): `name{label="value",...} value [ts]`.
# ----------------------------------------------------------------------------------------------

_NAME_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:")
_NAME_REST = _NAME_START | set("0123456789")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_line(line: str):
    """Returns (name, frozenset of (label, value)), float value); raises ValueError if malformed."""
    i, n = 0, len(line)
    if i >= n or line[i] not in _NAME_START:
        raise ValueError("metric name expected")
    while i < n and line[i] in _NAME_REST:
        i += 1
    name = line[:i]
    labels: dict[str, str] = {}
    if i < n and line[i] == "{":
        i += 1
        while True:
            while i < n and line[i] == " ":
                i += 1
            if i < n and line[i] == "}":
                i += 1
                break
            j = i
            while i < n and line[i] in _NAME_REST:
                i += 1
            key = line[j:i]
            if not key or key[0] not in _NAME_START or line[i:i + 2] != '="':
                raise ValueError(f"label name and =\" expected at {j}")
            i += 2
            val = []
            while True:
                if i >= n:
                    raise ValueError("unterminated label value")
                ch = line[i]
                if ch == "\\":
                    if i + 1 >= n or line[i + 1] not in _ESCAPES:
                        raise ValueError(f"bad escape at {i}")
                    val.append(_ESCAPES[line[i + 1]])
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    val.append(ch)
                    i += 1
            if key in labels:
                raise ValueError(f"duplicate label {key}")
            labels[key] = "".join(val)
            if i < n and line[i] == ",":
                i += 1
            elif i < n and line[i] == "}":
                i += 1
                break
            else:
                raise ValueError(f", or }} expected at {i}")
    rest = line[i:].split()
    if line[i:i + 1] not in (" ", "\t") or len(rest) not in (1, 2):
        raise ValueError("value (and optional timestamp) expected after the name/labels")
    value = float(rest[0])  # accepts NaN, +Inf, -Inf
    if len(rest) == 2:
        int(rest[1])
    return name, frozenset(labels.items()), value


def parse_exposition(text: str) -> dict:
    """{(name, frozenset(labels)): value} for every sample line; # lines and blanks ignored."""
    out = {}
    for ln in text.splitlines():
        if not ln.strip() or ln.startswith("#"):
            continue
        try:
            name, labels, value = _parse_line(ln)
        except ValueError as e:
            raise AssertionError(f"not a Prometheus sample line ({e}): {ln!r}") from None
        key = (name, labels)
        assert key not in out, f"duplicate series: {ln!r}"
        out[key] = value
    return out


def scrape(server) -> dict:
    r = server.get("/metrics")
    assert r.status == 200, r
    return parse_exposition(r.body.decode("utf-8"))


def sample(samples: dict, name: str, **labels) -> float:
    """The value of one series; 0 if it is absent (a labelled series appears on first use)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


# ----------------------------------------------------------------------------------------------
# 1. the counters move
# ----------------------------------------------------------------------------------------------

POST_ROUTE = "/v1/videos/{video_id}/comments"


@pytest.mark.skipif(bool(os.environ.get("COMMENTD_E2E_URL")),
                    reason="one node's counters; behind the balancer each scrape may reach another node")
def test_metrics_counters_move(server, user):
    before = scrape(server)
    assert ("comment_cache_hits_total", frozenset()) in before, sorted(k[0] for k in before)

    video = new_id()
    c = server.create_comment(user, video, "metrics move")
    for _ in range(2):  # a fresh video: the first page read is a miss, the second a hit
        r = server.get(f"/v1/videos/{video}/comments")
        assert r.status == 200, r
    # The user's own reactions in the video: read (and cached) with the signed-in page, then
    # written through when the applier applies the reaction (the row cache keeps them, changed
    # in place; the request itself writes the op alone on the embedded engine).
    r = server.list_page(f"/v1/videos/{video}/comments", user)
    assert r.status == 200, r
    r = server.react(user, c["id"], "like")
    assert r.status in (200, 202), r
    for _ in range(2):  # the comment's row: read from RocksDB once, then from the row cache
        r = server.get(f"/v1/comments/{c['id']}")
        assert r.status == 200, r

    after = scrape(server)
    deadline = time.monotonic() + 10  # the applier runs every flush_interval (5 ms)
    while (sample(after, "commentd_row_cache_updates_total") <= sample(before, "commentd_row_cache_updates_total")
           and time.monotonic() < deadline):
        time.sleep(0.05)
        after = scrape(server)

    def moved(name, **labels):
        b, a = sample(before, name, **labels), sample(after, name, **labels)
        assert a > b, f"{name}{labels or ''} did not increase: {b} -> {a}"

    moved("comment_cache_misses_total")
    moved("comment_cache_hits_total")
    moved("commentd_http_request_duration_seconds_count",
          method="POST", route=POST_ROUTE, status="201")
    moved("commentd_event_log_appended_total")
    moved("commentd_row_cache_hits_total")
    moved("commentd_row_cache_invalidations_total")
    moved("commentd_row_cache_updates_total")
    # The store's memory against its configured bounds (docs/operations.md, "Memory").
    assert 0 < sample(after, "commentd_storage_memtable_bytes") <= 128 << 20
    assert 0 <= sample(after, "commentd_storage_block_cache_bytes") <= 256 << 20


# ----------------------------------------------------------------------------------------------
# 2. a real Prometheus scrapes it
# ----------------------------------------------------------------------------------------------

PROM_DEADLINE_S = 45.0


def _prometheus_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    if os.access("/usr/bin/prometheus", os.X_OK):
        return "/usr/bin/prometheus"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, binary: str, workdir: Path, target_port: int):
        self.binary = binary
        self.workdir = workdir
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: commentd\n"
            "    metrics_path: /metrics\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n")
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.client: Client | None = None

    def start(self):
        for attempt in range(2):  # the free port may be taken between probe and bind: retry once
            self.port = _free_port()
            tsdb = self.workdir / f"tsdb-{attempt}"
            # No proxy: the scrape and our API calls stay on loopback.
            env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [self.binary, f"--config.file={self.config}",
                     f"--storage.tsdb.path={tsdb}",
                     f"--web.listen-address=127.0.0.1:{self.port}",
                     "--storage.tsdb.retention.time=1h", "--log.level=info"],
                    stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=str(self.workdir),
                    env=env)
            self.client = Client("127.0.0.1", self.port)
            end = time.monotonic() + 15
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.client.get("/-/ready", timeout=2).status == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            if self.proc.poll() is None:
                raise AssertionError(f"prometheus not ready after 15 s\n{self.log_tail()}")
            if attempt == 0 and "address already in use" in self.log_tail():
                continue
            raise AssertionError(
                f"prometheus exited with {self.proc.returncode}\n{self.log_tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no prometheus log)"

    def api(self, path: str, **params) -> dict:
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        r = self.client.get(f"/api/v1/{path}{q}", timeout=5)
        assert r.status == 200, r
        body = r.json()
        assert body.get("status") == "success", body
        return body["data"]

    def query(self, expr: str) -> list:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return data["result"]


@pytest.fixture
def prometheus(server, tmp_path):
    binary = _prometheus_binary()
    if binary is None:
        pytest.skip("prometheus is not on PATH nor at /usr/bin/prometheus "
                    "(scripts/install-deps.sh --test installs it)")
    prom = Prometheus(binary, tmp_path, server.port)
    try:
        prom.start()
        yield prom
    finally:
        prom.stop()


def test_real_prometheus_scrapes_commentd(server, user, prometheus):
    # Traffic first, so the labelled histogram series are in the exposition being parsed.
    video = new_id()
    c = server.create_comment(user, video, "scraped by prometheus")
    assert server.get(f"/v1/videos/{video}/comments").status == 200
    assert server.react(user, c["id"], "like").status in (200, 202)

    end = time.monotonic() + PROM_DEADLINE_S
    target = None
    down_since = None
    while True:
        active = prometheus.api("targets", state="active")["activeTargets"]
        target = next((t for t in active if t["labels"].get("job") == "commentd"), None)
        if target is not None and target["health"] == "up":
            break
        if target is not None and target["health"] == "down":
            # A parse failure will not fix itself: fail after ~3 failed scrapes, not at the deadline.
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > 3.0:
                print("prometheus target down, lastError:", target.get("lastError"))
                pytest.fail(f"prometheus scrape of commentd failed: lastError="
                            f"{target.get('lastError')!r}\n{json.dumps(target, indent=1)}")
        else:
            down_since = None
        if time.monotonic() > end:
            pytest.fail(f"target not up within {PROM_DEADLINE_S}s: {json.dumps(target)}\n"
                        f"{prometheus.log_tail()}")
        time.sleep(0.2)
    assert target["lastError"] == "", target
    assert target["scrapeUrl"] == f"http://127.0.0.1:{server.port}/metrics", target

    # The scrape that made the target "up" may not be queryable this very instant: poll.
    def wait_result(expr):
        while True:
            res = prometheus.query(expr)
            if res:
                return res
            if time.monotonic() > end:
                pytest.fail(f"no result for {expr} within {PROM_DEADLINE_S}s")
            time.sleep(0.2)

    misses = wait_result("comment_cache_misses_total")
    assert len(misses) == 1, misses
    assert misses[0]["metric"]["job"] == "commentd", misses
    assert float(misses[0]["value"][1]) >= 0, misses

    up = wait_result('up{job="commentd"}')
    assert len(up) == 1 and float(up[0]["value"][1]) == 1, up

    # Prometheus parsed the histogram too (labels with '/', '{', '}' in route values).
    posts = wait_result('commentd_http_request_duration_seconds_count'
                        '{route="/v1/videos/{video_id}/comments",method="POST",status="201"}')
    assert float(posts[0]["value"][1]) >= 1, posts
