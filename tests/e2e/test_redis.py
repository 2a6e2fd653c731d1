"""Redis mode end to end: two commentd nodes (each with its own data dir) sharing one
redis-server that this module starts on a free loopback port and stops by pid. Covers the
shared rate limit (the 6th comment in a minute is 429 on either node), the shared page cache
(one node's write is seen by the other within cache.page_ttl), and a Redis killed mid-run:
reads keep answering 200 from storage, and caching resumes after Redis is back, without a
restart of commentd. And a comment's counts read through the Redis counter cache follow every
reaction (the applier's invalidation, not the copy's TTL, moves them); with
stale-while-revalidate on, an author is never served a stale page from before their comment."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from e2e_lib import User, assert_error, config_yaml, new_id, require_servers


def _free_port() -> int:
    # Redis Cluster is not used here, so any free port works (no +10000 bus port needed).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, workdir):
        self.workdir = workdir
        self.port = _free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            assert self.proc.poll() is None, "redis-server exited at start"
            time.sleep(0.02)
        raise AssertionError("redis-server did not answer PING")

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis(tmp_path):
    if shutil.which("redis-server") is None:
        msg = "redis-server is not installed (scripts/install-deps.sh --test installs it)"
        if os.environ.get("COMMENTD_E2E_REQUIRE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    r = RedisServer(tmp_path).start()
    yield r
    r.kill9()


def redis_config(redis: RedisServer, page_ttl: str = "1s", **kw) -> str:
    return config_yaml(**kw) + f"""\
cache:
  page_ttl: "{page_ttl}"
redis:
  enabled: true
  host: "127.0.0.1"
  port: {redis.port}
  command_timeout: "200ms"
  breaker_open: "200ms"
"""


def cql_storage(name: str, extra: str = "") -> str:
    """storage on the test Cassandra, in a keyspace of this run's own named after `name`;
    `extra`: more lines under storage.cql."""
    from e2e_lib import cql_address

    return f"""storage:
  backend: "cql"
  cql:
    hosts: ["{cql_address()}"]
    keyspace: "{name}_{os.getpid()}_{int(time.time())}"
    consistency: "one"
    request_timeout: "30s"
{extra}"""


def post(srv, user, video, content):
    return srv.request("POST", f"/v1/videos/{video}/comments", {"content": content}, token=user.token)


def metric(srv, name: str) -> float:
    text = srv.get("/metrics").body.decode()
    total = 0.0
    for ln in text.splitlines():
        if ln.startswith(name + " ") or ln.startswith(name + "{"):
            total += float(ln.rsplit(" ", 1)[1])
    return total


def test_two_nodes_share_one_rate_limit(server_factory, redis):
    cfg = redis_config(redis, create_limit=5, create_window="1m")
    a = server_factory(cfg, name="node-a").start()
    b = server_factory(cfg, name="node-b").start()
    user, other = User(), User()
    video = new_id()
    for i in range(5):
        node = a if i % 2 == 0 else b
        r = post(node, user, video, f"comment {i}")
        assert r.status == 201, r
    for node in (a, b):  # the 6th in a minute, on either node
        r = post(node, user, video, "one too many")
        assert_error(r, 429)
        retry = r.headers.get("retry-after")
        assert retry is not None and retry.strip().isdigit() and 1 <= int(retry) <= 60, r.headers
    assert post(b, other, video, "someone else").status == 201
    assert metric(a, "commentd_rate_limit_decisions_total") > 0


def assert_one_nodes_page_is_served_by_the_other(server_factory, cfg):
    # The nodes share Redis, not storage (each has its own data dir here): a page of a video
    # that only node a stores can reach b's clients only through the shared cache.
    a = server_factory(cfg, name="node-a").start()
    b = server_factory(cfg, name="node-b").start()
    user = User()
    video = new_id()
    path = f"/v1/videos/{video}/comments"
    assert post(a, user, video, "first").status == 201
    assert len(a.list_all(path)) == 1  # a fills the page
    hits = metric(b, "commentd_redis_cache_hits_total")
    assert [c["content"] for c in b.list_all(path)] == ["first"]
    assert metric(b, "commentd_redis_cache_hits_total") > hits


def test_a_page_filled_by_one_node_is_served_by_the_other(server_factory, redis):
    assert_one_nodes_page_is_served_by_the_other(server_factory, redis_config(redis, page_ttl="30s"))


def test_an_author_is_not_served_a_stale_page_from_before_their_comment(server_factory, redis):
    # With redis.stale_while_revalidate a page past cache.page_ttl is still served (and
    # refreshed behind the read) for the window after it. A new comment does not bump the
    # cache, so a page from before it could reach its author after their mark (page_ttl) ran
    # out; the author's reads skip stale pages for the window too (docs/cluster.md).
    srv = server_factory(redis_config(redis) + '  stale_while_revalidate: "30s"\n', name="node").start()
    author, reader, video = User(), User(), new_id()
    path = f"/v1/videos/{video}/comments"
    assert post(srv, User(), video, "zero").status == 201
    assert [c["content"] for c in srv.list_all(path, reader)] == ["zero"]  # the page, cached
    assert post(srv, author, video, "mine").status == 201
    time.sleep(1.5)  # past the page's TTL and the author's mark, inside the window
    stale = metric(srv, "commentd_redis_cache_stale_hits_total")
    contents = [c["content"] for c in srv.list_all(path, author)]
    assert metric(srv, "commentd_redis_cache_stale_hits_total") > stale, "the author's read met no stale page"
    assert contents == ["mine", "zero"], contents


def test_redis_killed_mid_run_reads_stay_200_and_caching_resumes(server_factory, redis):
    srv = server_factory(redis_config(redis), name="node").start()
    user = User()
    video = new_id()
    path = f"/v1/videos/{video}/comments"
    for i in range(3):
        assert post(srv, user, video, f"c{i}").status == 201
    assert len(srv.list_all(path)) == 3
    redis.kill9()
    # Redis is gone: every read still answers, from storage.
    statuses = [srv.get(path).status for _ in range(60)]
    assert statuses == [200] * 60, statuses
    assert post(srv, user, video, "written while redis is down").status == 201
    assert metric(srv, "commentd_redis_breaker_opens_total") >= 1
    # Back on the same port: caching resumes by itself (no commentd restart).
    redis.start()
    before = metric(srv, "commentd_redis_cache_puts_total")

    def resumed():
        assert srv.get(path).status == 200
        return metric(srv, "commentd_redis_cache_puts_total") > before and \
            metric(srv, "commentd_redis_breaker_state") == 0
    srv.wait_for(resumed, "caching resumes after Redis restarts", deadline_s=15)
    assert len(srv.list_all(path)) == 4


def test_comment_counts_through_the_counter_cache_follow_every_reaction(server_factory, redis):
    # GET /v1/comments/{id} reads counts through the Redis counter cache; each applied batch
    # invalidates it, so a cached copy never outlives a change (redis.counter_ttl is 1 h here:
    # only the invalidation can make the counts move).
    srv = server_factory(redis_config(redis) + '  counter_ttl: "1h"\n', name="node").start()
    cid = srv.create_comment(User(), new_id(), "count me")["id"]
    users = [User() for _ in range(6)]
    srv.wait_counts(cid, 0, 0)  # fills the cache with zeros
    for i, u in enumerate(users):
        assert srv.react(u, cid, "like" if i % 3 else "dislike").status == 202
        srv.wait_counts(cid, i + 1 - (i // 3 + 1), i // 3 + 1)
    assert srv.react(users[1], cid, "none").status == 202
    srv.wait_counts(cid, 3, 2)
    hits = metric(srv, "commentd_redis_counter_cache_hits_total")

    def served_from_cache():
        assert srv.get_comment(cid).json()["likes"] == 3
        return metric(srv, "commentd_redis_counter_cache_hits_total") > hits
    srv.wait_for(served_from_cache, "a repeated read served by the counter cache")
    assert metric(srv, "commentd_redis_counter_cache_invalidations_total") >= 7


def test_on_cql_a_users_rows_come_from_redis_and_their_own_writes_are_read_back(server_factory, redis):
    """storage.backend cql with Redis: a signed-in list's two per-user rows (view, reactions)
    are served from Redis after the first read (redis/user_rows.h), and the user's own
    reaction and comment are in their very next read (each write drops their copy before it is
    acknowledged, and drops the node's near copy). The process stops cleanly with the cache
    attached."""
    from test_cql_store import run_migrate

    cfg = redis_config(redis) + cql_storage("e2e_rows")
    srv = server_factory(cfg, name="cql-rows")
    run_migrate(srv.config_path)
    srv.start(timeout_s=60)
    user, other, video = User(), User(), new_id()
    cid = srv.create_comment(other, video, "react to me")["id"]
    path = f"/v1/videos/{video}/comments"
    for _ in range(3):
        assert srv.list_page(path, user).status == 200
    # The second read is a Redis hit, kept as the node's near copy (redis.user_rows_near_ttl,
    # on by default), which serves the third without a Redis call.
    assert metric(srv, "commentd_redis_user_rows_hits_total") >= 1, "the second read missed"
    assert metric(srv, "commentd_redis_user_rows_near_hits_total") >= 1, "the third read was not a near copy"

    assert srv.react(user, cid, "like").status == 202
    mine = {c["id"]: c for c in srv.list_page(path, user).json()["comments"]}
    assert mine[cid]["user_reacted"] is True and mine[cid]["reaction_type"] == "like", mine[cid]
    own = srv.create_comment(user, video, "mine")["id"]
    assert own in [c["id"] for c in srv.list_page(path, user).json()["comments"]]
    assert metric(srv, "commentd_redis_user_rows_invalidations_total") >= 2
    assert metric(srv, "commentd_redis_user_rows_errors_total") == 0
    assert srv.terminate() == 0, srv.stderr_tail()


def test_on_cql_an_edit_or_delete_through_one_node_is_in_the_others_pages_at_once(server_factory, redis):
    """Two nodes on one Cassandra keyspace and one Redis, no bus: node A's page builds keep the
    rows they read (storage.cql.row_reuse, here far longer than the test) under the video's
    page version. An edit and then a delete through node B move that version, so node A's
    next anonymous list builds its page again and reads the changed rows, within
    redis.local_cache_ttl and a build, not after row_reuse or cache.page_ttl (both 60 s here)."""
    from test_cql_store import run_migrate

    cql = cql_storage("e2e_reuse", '    row_reuse: "60s"\n')
    nodes = []
    for name in ("reuse-a", "reuse-b"):
        srv = server_factory(redis_config(redis, page_ttl="60s") + cql, name=name)
        if not nodes:
            run_migrate(srv.config_path)
        srv.start(timeout_s=60)
        nodes.append(srv)
    a, b = nodes
    author, video = User(), new_id()
    ids = [a.create_comment(author, video, f"comment {i}")["id"] for i in range(5)]
    path = f"/v1/videos/{video}/comments"

    def listed(srv):
        r = srv.list_page(path)
        assert r.status == 200, r
        return {c["id"]: c for c in r.json()["comments"]}

    def until(cond, what):
        end = time.monotonic() + 3
        while time.monotonic() < end:
            if cond():
                return
            time.sleep(0.05)
        raise AssertionError(what)

    # Pages built on A, with their rows kept there; then the same page again from its copy.
    until(lambda: set(ids) <= set(listed(a)), "A's page never held the five comments")
    assert listed(a)[ids[2]]["content"] == "comment 2"
    assert metric(a, 'commentd_cql_page_rows_total{outcome="miss"}') >= 5, "A's build kept no rows"
    # Another page of the same list under the same version (oldest first): its rows are A's kept ones.
    oldest = a.list_page(path, sort="oldest")
    assert oldest.status == 200 and len(oldest.json()["comments"]) == 5, oldest
    assert metric(a, 'commentd_cql_page_rows_total{outcome="hit"}') >= 5, "the oldest-first build read its rows again"

    r = b.request("PATCH", f"/v1/comments/{ids[2]}", {"content": "edited through B"}, token=author.token)
    assert r.status == 200, r
    until(lambda: listed(a)[ids[2]]["content"] == "edited through B", "A kept serving the row from before the edit")
    r = b.request("DELETE", f"/v1/comments/{ids[3]}", token=author.token)
    assert r.status in (200, 204), r
    until(lambda: listed(a).get(ids[3], {}).get("content") != "comment 3",
          "A kept serving the row from before the delete")
    for srv in nodes:
        assert srv.terminate() == 0, srv.stderr_tail()


# The TLS servers: the single Redis's TLS port, or the TLS cluster's (deploy/test-servers.sh).
TLS_SERVERS = {"single": ("COMMENTD_TEST_REDIS_TLS", "COMMENTD_TEST_REDIS_TLS_DIR", "redis"),
               "cluster": ("COMMENTD_TEST_REDIS_CLUSTER_TLS", "COMMENTD_TEST_REDIS_CLUSTER_TLS_DIR",
                           "redis-cluster-tls")}


def tls_redis_config(kind: str, page_ttl: str, ca: str) -> str:
    """A config on the `kind` TLS server, trusting `ca` (a file of its TLS dir); on the
    cluster, which requires client certificates, with the test client's."""
    addrs, dir_key, server = TLS_SERVERS[kind]
    env = require_servers(addrs, dir_key, start=server)
    host, port = env[addrs].split(",")[0].rsplit(":", 1)
    nodes = ", ".join(f'"{a}"' for a in env[addrs].split(",")) if kind == "cluster" else ""
    cert = (f'    cert_file: "{env[dir_key]}/client.pem"\n    key_file: "{env[dir_key]}/client.key"\n'
            if kind == "cluster" else "")
    return config_yaml() + f"""\
cache:
  page_ttl: "{page_ttl}"
redis:
  enabled: true
  host: "{host}"
  port: {port}
  cluster_nodes: [{nodes}]
  key_prefix: "e2e-tls-{os.getpid()}:"
  tls:
    enabled: true
    ca_file: "{env[dir_key]}/{ca}"
{cert}"""


@pytest.mark.parametrize("kind", ["single", "cluster"])
def test_over_tls_a_page_filled_by_one_node_is_served_by_the_other(server_factory, kind):
    """redis.tls against the test Redis's TLS port, or the TLS cluster's TLS ports (each
    speaks only TLS; the cluster's require a client certificate): the shared page cache
    works through it. With a CA Redis's certificate
    does not chain to, no connection is made: the node logs why and serves from storage, as
    with Redis down."""
    assert_one_nodes_page_is_served_by_the_other(server_factory, tls_redis_config(kind, "30s", "ca.pem"))

    user, video = User(), new_id()
    path = f"/v1/videos/{video}/comments"
    bad = server_factory(tls_redis_config(kind, "30s", "other-ca.pem"), name="bad-ca").start()
    assert post(bad, user, video, "stored anyway").status == 201
    for _ in range(3):
        r = bad.get(path)
        assert r.status == 200, r
        assert [c["content"] for c in r.json()["comments"]] == ["stored anyway"]
    assert metric(bad, "commentd_redis_cache_hits_total") == 0
    bad.wait_for(lambda: "certificate verify failed" in bad.stderr_tail(), "the TLS failure logged", 10)
