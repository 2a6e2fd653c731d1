"""The cluster of `make cluster` (deploy/cluster.sh) and the faults it must survive (issue 12).

Runs against a cluster that deploy/run-tests.sh brought up (COMMENTD_CLUSTER_DIR, holding
`url`, `ports` and the nodes' state); skips when there is none, and fails instead when
COMMENTD_TEST_REQUIRE=1. Each test leaves every node running.
"""
from __future__ import annotations

import base64
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest
import yaml

DEPLOY = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(DEPLOY.parent / "tests" / "e2e"))
from e2e_lib import Client, ThreadGroup, User, WsConsumer  # noqa: E402

RUN = pathlib.Path(os.environ.get("COMMENTD_CLUSTER_DIR", DEPLOY.parent / "build" / "cluster"))


@pytest.fixture(scope="module")
def front():
    url_file = RUN / "url"
    if not url_file.exists():
        msg = f"no running cluster ({url_file} missing; make cluster)"
        if os.environ.get("COMMENTD_TEST_REQUIRE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    url = url_file.read_text().strip()
    host, port = url.removeprefix("http://").split(":")
    return Client(host, int(port))


def ctl(*args: str) -> str:
    r = subprocess.run([str(DEPLOY / "cluster.sh"), *args], capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, COMMENTD_CLUSTER_DIR=str(RUN)))
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def node_pids() -> dict[str, int]:
    return {d.name: int((d / "pid").read_text().split()[0]) for d in sorted(RUN.glob("node-*"))
            if (d / "pid").exists()}


def test_up_again_is_harmless_and_prometheus_scrapes_every_node(front):
    before = node_pids()
    url = (RUN / "url").read_text().strip()
    out = ctl("up")
    assert out.strip().splitlines()[-1] == url, "the last line printed is the front door's URL"
    assert node_pids() == before, "a second `up` restarted nodes"
    assert front.get("/readyz").status == 200
    prom = (RUN / "prometheus_url").read_text().strip()
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(prom + "/api/v1/targets", timeout=5) as r:
            targets = json.load(r)["data"]["activeTargets"]
        if len(targets) == len(before) and all(t["health"] == "up" for t in targets):
            break
        assert time.monotonic() < deadline, targets
        time.sleep(1)
    # The alerting rules of deploy/prometheus/alerts.yml are loaded and evaluate cleanly.
    with urllib.request.urlopen(prom + "/api/v1/rules", timeout=5) as r:
        groups = json.load(r)["data"]["groups"]
    assert {g["name"] for g in groups} >= {"commentd-slo", "commentd-dependencies", "commentd-capacity"}
    broken = [(rule["name"], rule.get("lastError")) for g in groups for rule in g["rules"]
              if rule.get("health") == "err"]
    assert not broken, broken


def test_the_nodes_share_the_machines_cores_between_their_event_loops(front):
    nodes = sorted(RUN.glob("node-*/commentd.yaml"))
    assert nodes
    share = max(1, len(os.sched_getaffinity(0)) // int((RUN / "nodes").read_text()))
    for config in nodes:
        server = yaml.safe_load(config.read_text())["server"]
        assert server["threads"] == share, (config, server)


def test_every_node_reads_the_reaction_subscriptions_stats_through_the_admin_api(front):
    """The stall watchdog's admin calls (docs/cluster.md "Faults") work on every node before
    any fault: over https, verified against the test broker's CA, when the cluster speaks TLS
    (`CLUSTER_TLS`, as `make test` runs it), else plain http."""
    admin = [line.split(":", 1)[1].strip() for line in (RUN / "node-1" / "commentd.yaml").read_text().splitlines()
             if line.strip().startswith("admin_url:")]
    for n in nodes():
        wait_until(lambda: n.metric("commentd_pulsar_stall_checks_total") > 0, f"a stats read through {admin}", 30)
        assert n.metric("commentd_pulsar_stall_check_errors_total") == 0, f"admin calls through {admin} failed"


def test_a_node_killed_under_mixed_load_loses_no_acknowledged_write(front):
    """kill -9 of one node under concurrent comment writes, reactions and reads: HAProxy routes
    around it, clients see at most the requests that were in flight on it, every 201 is
    readable after, the reaction counts converge to exact, and --verify finds no drift left."""
    video = str(uuid.uuid4())
    user = User()
    acked: list[str] = []
    failed: list[tuple[float, int]] = []  # (when, on time.monotonic(); status)
    killed_at = 0.0  # on time.monotonic()
    stop = threading.Event()
    lock = threading.Lock()
    writers = 4
    # Reactions: each reactor likes the targets in turn, each (user, target) once; a reaction
    # that failed (in flight on the killed node) is retried after the fault, as a client does
    # (a PUT of a reaction is safe to retry), so every target ends with exactly one like per
    # reactor that reached it.
    targets = [front.request("POST", f"/v1/videos/{video}/comments", {"content": f"t{i}"}, token=user.token)
               .json()["id"] for i in range(3)]
    reactors = [User() for _ in range(2)]
    liked: dict[str, set[str]] = {t: set() for t in targets}
    retry: list[tuple[User, str]] = []
    read_failures: list[int] = []

    def react(u: User):
        i = 0
        while not stop.is_set():
            t = targets[i % len(targets)]
            i += 1
            try:
                ok = front.react(u, t, "like").status == 202
            except OSError:
                ok = False
            with lock:
                liked[t].add(u.id)
                if not ok:
                    retry.append((u, t))
            time.sleep(0.02)

    def read():
        while not stop.is_set():
            try:
                status = front.get(f"/v1/videos/{video}/comments", timeout=10).status
            except OSError:
                status = -1
            if status != 200:
                with lock:
                    read_failures.append(status)
            time.sleep(0.05)

    def write():
        n = 0
        while not stop.is_set():
            n += 1
            try:
                r = front.request("POST", f"/v1/videos/{video}/comments", {"content": f"c{n}"},
                                  token=user.token, timeout=10)
                ok, status = r.status == 201, r.status
                cid = r.json()["id"] if ok else None
            except OSError:
                ok, status, cid = False, -1, None
            with lock:
                (acked.append(cid) if ok else failed.append((time.monotonic(), status)))

    threads = [threading.Thread(target=write) for _ in range(writers)]
    threads += [threading.Thread(target=react, args=(u,)) for u in reactors]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        killed_at = time.monotonic()
        ctl("kill-node", "1")
        time.sleep(4)
    finally:
        stop.set()
        for t in threads:
            t.join()
        ctl("restart-node", "1")
    assert len(acked) > 20, f"too few writes got through: {len(acked)} acked, failures {failed}"
    # Only the requests HAProxy sent the node before it saw the node die fail: the one in flight
    # on each writer's connection, and now and then one more sent in the moment the dying
    # node's sockets were being closed (a connection its kernel had accepted; seen once in CI:
    # six 502s with four writers). So: all of them right after the kill, before the health check
    # (down after 2 fails, 1 s apart) takes the node out, and no more than two per writer.
    late = [round(at - killed_at, 2) for at, _ in failed if not 0 <= at - killed_at <= 3]
    assert not late, f"writes failed outside the kill's first 3 s (s after the kill): {late}; all {failed}"
    assert len(failed) <= 2 * writers, f"{len(failed)} failed writes: {[st for _, st in failed]}"
    assert len(read_failures) <= 1, f"failed reads: {read_failures}"
    assert len(retry) <= len(reactors), f"{len(retry)} failed reactions"
    missing = [cid for cid in acked if front.get(f"/v1/comments/{cid}").status != 200]
    assert not missing, f"{len(missing)} acknowledged comments are not readable: {missing[:5]}"
    for u, t in retry:
        assert front.react(u, t, "like").status == 202, "a retried reaction was refused"
    counts = lambda: {t: front.get(f"/v1/comments/{t}").json()["likes"] for t in targets}  # noqa: E731
    want = {t: len(v) for t, v in liked.items()}
    wait_until(lambda: counts() == want, f"the likes to converge to {want}", 60)
    verify_converges()


def test_users_read_their_reactions_through_every_node_when_owners_skip_marked_rows(front):
    """Reactions sent to both nodes, some switched through the other one: each op's request
    writes its user's row and marks it, and the comment's owner (either node) leaves out the
    rows those marks cover (docs/cluster.md "Written marks"). Every user then reads their own
    last reaction through each node, the counts are exact, and the owners did skip rows."""
    author = User()
    cid = front.request("POST", f"/v1/videos/{uuid.uuid4()}/comments", {"content": "react to me"},
                        token=author.token).json()["id"]
    ns = nodes()
    used = lambda: sum(v or 0 for v in node_metric("commentd_redis_user_rows_marks_used_total").values())  # noqa: E731
    used_before = used()
    want: dict[str, tuple[User, str]] = {}
    for i in range(30):
        u = User()
        assert ns[i % len(ns)].react(u, cid, "like").status == 202
        want[u.id] = (u, "like")
        if i % 3 == 0:
            assert ns[(i + 1) % len(ns)].react(u, cid, "dislike").status == 202
            want[u.id] = (u, "dislike")
    likes = sum(1 for _, t in want.values() if t == "like")
    counts = lambda: (lambda c: (c["likes"], c["dislikes"]))(front.get(f"/v1/comments/{cid}").json())  # noqa: E731
    wait_until(lambda: counts() == (likes, len(want) - likes), "the counts to converge", 60)
    for u, t in want.values():
        for n in ns:
            c = n.get_comment(cid, u).json()
            assert c["reaction_type"] == t and c["user_reacted"], f"{u.id} reads {c} through {n.port}, wants {t}"
    assert used() > used_before, "no owner skipped a row a request had marked"


def reader_of_one_comment(front, content: str):
    """A comment on a new video, a user to react to it, and mine(node): the user's view of it
    in the video's list read through that node."""
    author, u = User(), User()
    vid = str(uuid.uuid4())
    cid = front.request("POST", f"/v1/videos/{vid}/comments", {"content": content},
                        token=author.token).json()["id"]
    return u, cid, lambda n: next(c for c in n.list_all(f"/v1/videos/{vid}/comments", u) if c["id"] == cid)


def total(name: str) -> float:
    """An unlabelled metric summed over the nodes."""
    return sum(v or 0 for v in node_metric(name).values())


def test_a_users_reactions_go_into_their_cached_rows_through_every_node(front):
    """Once a user has read a video, their rows are cached in Redis; each reaction after that
    is written into that copy (docs/cluster.md "Written into the copy") instead of dropping
    it. Through each node the user reads the reaction they just made, whichever node took it,
    the withdrawal included, and none of those reads had to read their rows from Cassandra."""
    u, cid, mine = reader_of_one_comment(front, "my rows are cached")
    ns = nodes()
    for n in ns:
        assert mine(n)["user_reacted"] is False  # the first read fills the copy
    misses = total("commentd_redis_user_rows_misses_total")
    updates = total("commentd_redis_user_rows_updates_total")
    steps = ["like", "dislike", "none", "like"]
    for i, t in enumerate(steps):
        assert ns[i % len(ns)].react(u, cid, t).status in (202, 204)
        for n in ns:
            c = mine(n)
            assert c["reaction_type"] == (None if t == "none" else t), f"step {i} through {n.port}: {c}"
    assert total("commentd_redis_user_rows_updates_total") - updates >= len(steps)
    assert total("commentd_redis_user_rows_misses_total") == misses, "a read after a reaction missed the copy"


def test_a_users_reactions_are_read_through_the_other_node_with_near_copies(front):
    """Near copies (redis.user_rows_near_ttl, docs/cluster.md "Near copies of the users' rows"):
    a node serves a user's rows it read from Redis from its own memory, and a change through any
    node drops them by a Redis message before the user's next read. A user alternates reactions
    between the nodes and reads right after each, through the other node first, twice per node.
    The writer's node is exact at once (it drops its copy before the answer). The other node is
    exact once the change's message is in its socket: Redis writes it in the same turn as the
    writer's reply, so it is nearly always there before the next request; the window the design
    leaves is a message delayed past that request (Redis descheduled between its two writes),
    bounded by the subscription's 1 s. Such a late read is waited for and counted, and may
    happen at most twice in the 30 steps (a CI run in session 42 saw one); a node that served
    near copies without applying what its socket holds would be late far more often, and one
    that never dropped them would stay wrong past the bound. The second reads were served
    from near copies, and the changes dropped them."""
    u, cid, mine = reader_of_one_comment(front, "near me")
    ns = nodes()
    near_on = all(v == 1.0 for v in node_metric("commentd_redis_user_rows_near_up").values())
    for n in ns:
        assert mine(n)["user_reacted"] is False
    hits, dropped = total("commentd_redis_user_rows_near_hits_total"), total("commentd_redis_user_rows_near_dropped_total")
    steps, late = 30, []
    for i in range(steps):
        t = ("like", "dislike", "none")[i % 3]
        want = None if t == "none" else t
        writer, other = ns[i % len(ns)], ns[(i + 1) % len(ns)]
        assert writer.react(u, cid, t).status in (202, 204)
        c = mine(other)
        if c["reaction_type"] != want:
            late.append(i)
            until = time.monotonic() + 1.5
            while c["reaction_type"] != want and time.monotonic() < until:
                time.sleep(0.02)
                c = mine(other)
        assert c["reaction_type"] == want, f"step {i} through {other.port}, past the subscription's bound: {c}"
        assert mine(other)["reaction_type"] == want, f"step {i} through {other.port}, read again"
        for _ in range(2):
            c = mine(writer)
            assert c["reaction_type"] == want, f"step {i} through the writer {writer.port}: {c}"
    assert len(late) <= 2, f"the other node's first read came before the change's message at steps {late}"
    if near_on:  # off where the nodes reach Redis over TLS (CLUSTER_TLS): the reads above still hold
        assert total("commentd_redis_user_rows_near_hits_total") - hits >= steps
        assert total("commentd_redis_user_rows_near_dropped_total") - dropped >= steps


def statements(prefix: str) -> float:
    """CQL statements of every node whose label starts with `prefix` (commentd_cql_requests_total)."""
    total = 0.0
    for client in nodes():
        for line in client.get("/metrics", timeout=5).body.decode(errors="replace").splitlines():
            if line.startswith("commentd_cql_requests_total{") and f'statement="{prefix}' in line:
                total += float(line.split()[-1])
    return total


def test_a_users_view_is_read_from_user_reactions_alone(front):
    """A keyspace made by this release's `commentd migrate` has the user's view folded into
    user_reactions (docs/cluster.md "Tables", schema step 10): the author sees their hidden
    comment through every node, a stranger does not, and no node reads user_hidden for it."""
    author, stranger, mod = User(), User(), User(role="moderator")
    vid = str(uuid.uuid4())
    cid = front.request("POST", f"/v1/videos/{vid}/comments", {"content": "hidden from all but me"},
                        token=author.token).json()["id"]
    split_reads = statements("SELECT user_hidden")
    folded_reads = statements("SELECT user_reactions")
    assert front.set_status(mod, cid, "hidden").status == 200
    for n in nodes():
        assert cid in {c["id"] for c in n.list_all(f"/v1/videos/{vid}/comments", author)}, n.port
        assert cid not in {c["id"] for c in n.list_all(f"/v1/videos/{vid}/comments", stranger)}, n.port
    assert statements("SELECT user_reactions") > folded_reads, "the view was not read from Cassandra"
    assert statements("SELECT user_hidden") == split_reads, "a node read the view from user_hidden"
    assert set(node_metric("commentd_cql_user_view_folded").values()) == {1.0}


def test_a_comment_one_node_read_answers_the_others_reactions_until_it_changes(front):
    """Reactions' comment checks are shared by the nodes in Redis (docs/cluster.md "Reaction
    op"): a comment one node read answers the other node's first reaction to it from Redis, and
    the node that deletes a comment drops the shared copy before its answer, so the other
    node, which has no copy of its own, refuses a reaction to it at once."""
    author = User()
    vid = str(uuid.uuid4())
    shared, deleted = (front.request("POST", f"/v1/videos/{vid}/comments", {"content": t},
                                     token=author.token).json()["id"] for t in ("shared", "deleted"))
    n1, n2 = nodes()[:2]
    hits = lambda: list(node_metric("commentd_redis_comment_checks_hits_total").values())  # noqa: E731
    before = hits()
    assert n1.react(User(), shared, "like").status == 202
    assert n2.react(User(), shared, "like").status == 202
    after = hits()
    assert after[1] == before[1] + 1, f"node 2's check did not come from Redis: {before} -> {after}"

    assert n1.react(User(), deleted, "like").status == 202  # node 1 read it: the shared copy
    assert n1.request("DELETE", f"/v1/comments/{deleted}", token=author.token).status == 204
    r = n2.react(User(), deleted, "like")
    assert r.status == 404, f"node 2 took a stale copy from Redis: {r.status} {r.body[:200]!r}"


def servers_dir() -> str:
    return os.environ.get("CLUSTER_SERVERS_DIR") or str(RUN / "servers")


def verify_converges(within: float = 90.0) -> None:
    """`commentd --verify` in its cluster form recounts every counter from the CQL rows and
    reports each one still drifted. After a fault the drift must be repaired by the cluster
    itself: reaction counts by their owners' recounts, comments_count and replies_count by the
    counter repair, which waits for a dead write's marks to stand still (repair_settle: 2 x
    storage.cql.request_timeout + 2 s = 12 s here) and runs every
    workers.metrics_reconciliation.high_frequency_interval (2 s in tests/e2e/cluster.yaml)."""
    binary = os.environ.get("COMMENTD_BIN") or str(RUN.parent / "commentd")
    config = RUN / "node-1" / "commentd.yaml"
    deadline = time.monotonic() + within
    first = None
    while True:
        r = subprocess.run([binary, "--verify", "--config", str(config)], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode in (0, 1), f"commentd --verify failed ({r.returncode}): {r.stderr[-2000:]}"
        if r.returncode == 0:
            return
        first = first or r.stdout
        assert time.monotonic() < deadline, \
            f"drift still unrepaired {within:.0f} s after the fault:\n{r.stdout[-3000:]}\nfirst seen:\n{first[-2000:]}"
        time.sleep(3)


class Load(ThreadGroup):
    """Threads calling `fn() -> status` in a loop (closed loop), or one call every `every`
    seconds whatever the earlier ones do (open loop: clients that keep arriving); records
    (kind, start, seconds, status)."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, float, float, int]] = []
        self.spawned: list[threading.Thread] = []

    def _call(self, kind: str, fn):
        t = time.monotonic()
        try:
            status = fn()
        except OSError:
            status = -1
        with self.lock:
            self.log.append((kind, t, time.monotonic() - t, status))

    def add(self, kind: str, fn, n: int = 1, pause: float = 0.0):
        def run():
            while not self.stop.is_set():
                self._call(kind, fn)
                if pause:
                    time.sleep(pause)
        self.threads += [threading.Thread(target=run) for _ in range(n)]

    def add_open(self, kind: str, fn, every: float):
        def run():
            while not self.stop.wait(every):
                t = threading.Thread(target=self._call, args=(kind, fn))
                t.start()
                with self.lock:
                    self.spawned.append(t)
        self.threads.append(threading.Thread(target=run))

    def __exit__(self, *exc):
        super().__exit__(*exc)
        for t in self.spawned:
            t.join()

    def calls(self, kind: str, since: float = 0.0, until: float = float("inf")):
        return [x for x in self.log if x[0] == kind and since <= x[1] < until]


def test_cassandra_frozen_10s_cached_reads_go_on_and_writes_fail_fast(front):
    """Cassandra stopped (SIGSTOP) for 10 s under reads and writes. Cached pages keep being
    served (past cache.page_ttl, inside redis.stale_while_revalidate); the writes caught in the
    freeze wait, and once calls have waited storage.cql.stall_timeout (2 s) with no answer each
    node's storage breaker opens and writes fail at once with 503; after SIGCONT writes resume
    by themselves, and every acknowledged write is readable."""
    pid = int((pathlib.Path(servers_dir()) / "cassandra" / "pid").read_text().split()[0])
    video, other = str(uuid.uuid4()), str(uuid.uuid4())
    user = User()
    for i in range(5):
        assert front.request("POST", f"/v1/videos/{video}/comments", {"content": f"c{i}"},
                             token=user.token).status == 201
    assert front.get(f"/v1/videos/{video}/comments").status == 200  # cached now
    acked: list[str] = []

    def write(client) -> int:
        r = client.request("POST", f"/v1/videos/{other}/comments", {"content": "w"}, token=user.token,
                           timeout=30)
        if r.status == 201:
            acked.append(r.json()["id"])
        elif r.status == 503 and not r.headers.get("retry-after"):
            return -2  # a 503 must say when to retry
        return r.status

    opens_before = node_metric("commentd_storage_breaker_opens_total")
    load = Load()
    load.add("read", lambda: front.get(f"/v1/videos/{video}/comments", timeout=30).status, n=2)
    # The writers write to each node directly, 4 each: a node's breaker opens on its own calls
    # waiting (3 or more, unanswered for stall_timeout), so every node must have writes from the
    # start of the freeze. Through the balancer, a CI run had node 2 get its first writes 5.1 s
    # into the freeze, and no check of it.
    for node in nodes():
        load.add("write", lambda c=node: write(c), n=4, pause=0.05)
        # New writes keep arriving while the first ones wait: these meet the open breaker.
        load.add_open("fresh", lambda c=node: write(c), every=0.2)
    with load:
        time.sleep(1)
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            time.sleep(10)
        finally:
            os.kill(pid, signal.SIGCONT)
        t1 = time.monotonic()
        # Writes resume by themselves: a probe closes each breaker once Cassandra answers.
        while not any(x[3] == 201 for x in load.calls("write", since=t1)):
            assert time.monotonic() - t1 < 30, "writes did not resume within 30 s of the thaw"
            time.sleep(0.2)
    reads = load.calls("read", since=t0, until=t1)
    assert len(reads) > 20, f"too few reads during the freeze: {len(reads)}"
    bad = [x for x in reads if x[3] != 200]
    assert not bad, f"{len(bad)} of {len(reads)} cached reads failed during the freeze: {bad[:5]}"
    assert max(x[2] for x in reads) < 2.0, "a cached read waited on the frozen storage"
    frozen = load.calls("write", since=t0, until=t1) + load.calls("fresh", since=t0, until=t1)
    assert all(x[3] in (201, 503) for x in frozen), sorted({x[3] for x in frozen})
    assert max(x[2] for x in frozen) < 5 + 2, "a write waited longer than storage.cql.request_timeout"
    # Once the breakers are open (2 s of calls waiting unanswered, well before their 5 s
    # timeouts), arriving writes fail at once: from 3.5 s into the freeze (1.5 s of slack for a
    # loaded machine). Opened by the timeouts instead, those of 3.5 to 5 s would wait.
    late = load.calls("fresh", since=t0 + 3.5, until=t1 - 0.5)
    fast = [x for x in late if x[3] == 503 and x[2] < 0.5]
    assert late and len(fast) >= 0.9 * len(late), \
        f"{len(fast)} of {len(late)} arriving writes failed fast from 3.5 s into the freeze; " \
        f"writes in the freeze (start - t0, seconds, status): " \
        f"{[(round(x[1] - t0, 2), round(x[2], 2), x[3]) for x in frozen]}; {breaker_evidence(opens_before)}"
    missing = [cid for cid in acked if front.get(f"/v1/comments/{cid}").status != 200]
    assert not missing, f"{len(missing)} acknowledged comments are not readable: {missing[:5]}"
    verify_converges()


def node_metric(name: str) -> dict[str, float | None]:
    """One unlabelled metric of every node, read from the node itself (None: not answered)."""
    out: dict[str, float | None] = {}
    for node, client in zip(sorted(node_pids()), nodes()):
        out[node] = None
        try:
            r = client.get("/metrics", timeout=5)
        except OSError:
            continue
        for line in r.body.decode(errors="replace").splitlines():
            if line.startswith(name + " "):
                out[node] = float(line.split()[1])
    return out


def breaker_evidence(opens_before: dict[str, float | None]) -> str:
    """What each node's storage breaker did, for a failure message: its opens before and
    after, and its log's storage lines (the first failure of the freeze test left only "node 1's
    breaker never opened", with no cause)."""
    after = node_metric("commentd_storage_breaker_opens_total")
    stalls = node_metric("commentd_storage_breaker_stalls_total")
    lines = []
    for node in sorted(node_pids()):
        log = RUN / node / "commentd.log"
        tail = log.read_text(errors="replace").splitlines()[-400:] if log.exists() else []
        cql = [x for x in tail if "cql" in x.lower() or "storage" in x.lower()][-8:]
        lines.append(f"{node}: breaker opens {opens_before.get(node)} -> {after.get(node)} "
                     f"({stalls.get(node)} on stalls); log: {cql}")
    return " | ".join(lines)


def server_env() -> dict[str, str]:
    env = {}
    for line in (pathlib.Path(servers_dir()) / "env").read_text().splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def nodes() -> list[Client]:
    ports = (RUN / "ports").read_text().split()
    return [Client("127.0.0.1", int(p)) for p in ports[2:2 + len(node_pids())]]


def wait_until(cond, what: str, seconds: float):
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_pulsar_stopped_30s_writes_go_on_and_every_event_arrives_once(front):
    """Pulsar killed and kept away for 30 s under comment writes, reads and reactions: comment
    writes keep being acknowledged (each node's outbox holds their events), reactions are
    either accepted or refused with 503 + Retry-After (the documented degraded path), and
    after Pulsar returns every outbox drains by itself. The comment topic then holds exactly
    one logical event (one event_id) per acknowledged write, and every accepted reaction is
    counted (refused ones at most once each)."""
    env = server_env()
    ctl_servers = [str(DEPLOY / "test-servers.sh")]
    senv = dict(os.environ, COMMENTD_TEST_SERVERS_DIR=servers_dir())
    topic, sub = "persistent://pavilion/comments/events", "fault-check-" + uuid.uuid4().hex[:8]
    reader = WsConsumer(env["COMMENTD_TEST_PULSAR_ADMIN"], topic, sub, initial="Latest")
    reader.close()  # the subscription holds everything published from now on
    videos = [str(uuid.uuid4()) for _ in range(3)]
    writer = User()
    target = front.request("POST", f"/v1/videos/{videos[0]}/comments", {"content": "react here"},
                           token=writer.token).json()["id"]
    written: list[str] = [target]
    accepted_likes = 0
    lock = threading.Lock()

    def write() -> int:
        r = front.request("POST", f"/v1/videos/{videos[len(written) % 3]}/comments",
                          {"content": "p"}, token=writer.token, timeout=30)
        if r.status == 201:
            with lock:
                written.append(r.json()["id"])
        return r.status

    def react() -> int:
        nonlocal accepted_likes
        r = front.react(User(), target, "like")
        if r.status == 202:
            with lock:
                accepted_likes += 1
        elif r.status == 503 and not r.headers.get("retry-after"):
            return -2
        return r.status

    load = Load()
    load.add("write", write, n=2, pause=0.05)
    load.add("read", lambda: front.get(f"/v1/videos/{videos[1]}/comments", timeout=30).status)
    load.add("react", react, pause=0.1)
    with load:
        time.sleep(2)
        subprocess.run(ctl_servers + ["kill", "pulsar"], env=senv, check=True, capture_output=True, timeout=60)
        t0 = time.monotonic()
        try:
            time.sleep(30)
        finally:
            subprocess.run(ctl_servers + ["restart", "pulsar"], env=senv, check=True, capture_output=True,
                           timeout=300)
        t1 = time.monotonic()
        time.sleep(2)
    during = load.calls("write", since=t0, until=t1)
    assert len(during) > 20 and all(x[3] == 201 for x in during), \
        f"comment writes during the outage: {sorted({x[3] for x in during})}, {len(during)} calls"
    assert all(x[3] == 200 for x in load.calls("read")), \
        f"a read failed while Pulsar was away: {sorted({x[3] for x in load.calls('read')})}"
    assert all(x[3] in (202, 503) for x in load.calls("react")), sorted({x[3] for x in load.calls("react")})

    for n in nodes():
        wait_until(lambda: n.metric("commentd_outbox_depth") == 0, "an outbox to drain after Pulsar's return", 120)
    marker = front.request("POST", f"/v1/videos/{uuid.uuid4()}/comments", {"content": "marker"},
                           token=writer.token).json()["id"]
    for n in nodes():
        wait_until(lambda: n.metric("commentd_outbox_depth") == 0, "the marker to be published", 60)

    # Both relays had drained before the marker was written: reading up to it reads everything.
    reader = WsConsumer(env["COMMENTD_TEST_PULSAR_ADMIN"], topic, sub)
    event_ids: dict[str, set[str]] = {}
    deadline = time.monotonic() + 120
    try:
        while True:
            assert time.monotonic() < deadline, "the marker's event did not arrive"
            ev = json.loads(base64.b64decode(reader.receive()["payload"]))
            if ev["event_type"] == "created":
                event_ids.setdefault(ev["comment_id"], set()).add(ev["event_id"])
                if ev["comment_id"] == marker:
                    break
    finally:
        reader.close()
    missing = [c for c in written if c not in event_ids]
    assert not missing, f"{len(missing)} of {len(written)} acknowledged writes have no event on the topic"
    doubled = {c: ids for c, ids in event_ids.items() if len(ids) != 1}
    assert not doubled, f"writes with more than one logical event: {doubled}"
    # Every accepted reaction counts. A 503 whose publish timed out may still have been stored
    # by the broker before it died, and is then applied (docs/cluster.md "Reaction op": a
    # reaction PUT is safe to retry), so the likes lie between the two bounds.
    refused = sum(1 for x in load.calls("react") if x[3] == 503)
    likes = lambda: front.get(f"/v1/comments/{target}").json()["likes"]  # noqa: E731
    wait_until(lambda: likes() >= accepted_likes, f"likes to reach the {accepted_likes} accepted reactions", 60)
    assert likes() <= accepted_likes + refused, \
        f"{likes()} likes from {accepted_likes} accepted and {refused} refused reactions"
    verify_converges()


def test_redis_killed_and_restarted_under_reads_gives_no_5xx(front):
    servers = servers_dir()
    ctl_servers = [str(DEPLOY / "test-servers.sh")]
    env = dict(os.environ, COMMENTD_TEST_SERVERS_DIR=servers)
    video = str(uuid.uuid4())
    user = User()
    for i in range(5):
        assert front.request("POST", f"/v1/videos/{video}/comments", {"content": f"r{i}"},
                             token=user.token).status == 201
    bad: list[int] = []
    reads = 0
    stop = threading.Event()

    def read():
        nonlocal reads
        while not stop.is_set():
            try:
                status = front.get(f"/v1/videos/{video}/comments", timeout=10).status
            except OSError:
                status = -1
            reads += 1
            if status != 200:
                bad.append(status)

    t = threading.Thread(target=read)
    t.start()
    try:
        time.sleep(1)
        subprocess.run(ctl_servers + ["kill", "redis"], env=env, check=True, capture_output=True, timeout=60)
        time.sleep(3)
        subprocess.run(ctl_servers + ["restart", "redis"], env=env, check=True, capture_output=True, timeout=120)
        time.sleep(2)
    finally:
        stop.set()
        t.join()
    assert reads > 20
    assert not bad, f"{len(bad)} of {reads} reads failed: {sorted(set(bad))}"
    verify_converges()
