"""commentd serving on Cassandra (storage.backend: cql) as a process: `commentd migrate`, then
the binary on the migrated keyspace: create, list paging in both sorts, reply, edit, delete,
reactions -> counts, and the same reads after a restart. Needs COMMENTD_TEST_CQL (set by
`make test`): skipped without it, failed under COMMENTD_TEST_REQUIRE=1."""
from __future__ import annotations

import os
import subprocess
import time

from e2e_lib import User, binary_path, config_yaml, cql_address, cql_tls_dir, new_id, sort_key


def cql_config(hosts: str, keyspace: str, extra: str = "") -> str:
    return config_yaml() + f"""storage:
  backend: "cql"
  cql:
    hosts: ["{hosts}"]
    keyspace: "{keyspace}"
    consistency: "one"
    request_timeout: "30s"
""" + extra


def tls_config(hosts: str, keyspace: str, ca_file: str) -> str:
    """TLS to the test Cassandra, which requires the test client's certificate."""
    tls = os.path.dirname(ca_file)
    return cql_config(hosts, keyspace, f"""    tls:
      enabled: true
      ca_file: "{ca_file}"
      cert_file: "{tls}/client.pem"
      key_file: "{tls}/client.key"
""")


def run_migrate(config_path) -> None:
    p = subprocess.run([str(binary_path()), "migrate", "--config", str(config_path)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"migrate: {p.stdout}\n{p.stderr}"


def snapshot(srv, video, top, viewer):
    """What a reader sees: both sorts of the list (paged 2 at a time) and every comment."""
    return {
        "newest": [c["id"] for c in srv.list_all(f"/v1/videos/{video}/comments", limit=2)],
        "oldest": [c["id"] for c in srv.list_all(f"/v1/videos/{video}/comments", sort="oldest",
                                                 limit=2)],
        "replies": [c["id"] for c in srv.list_all(f"/v1/comments/{top}/replies", limit=2)],
        "comments": {cid: {k: v for k, v in srv.get_comment(cid, viewer).json().items()}
                     for cid in [top]},
    }


def test_serves_on_cassandra_and_keeps_it_across_a_restart(server_factory):
    keyspace = f"e2e_cql_{os.getpid()}_{int(time.time())}"
    srv = server_factory(cql_config(cql_address(), keyspace), name="cql")
    run_migrate(srv.config_path)
    # What an earlier version left: the node-local bus's own RocksDB. No bus runs without
    # Pulsar now, so the start removes it.
    (srv.data_dir / "local-bus").mkdir(parents=True, exist_ok=True)
    (srv.data_dir / "local-bus" / "CURRENT").write_text("MANIFEST-000001\n")
    srv.start(timeout_s=60)
    assert not (srv.data_dir / "local-bus").exists(), "the unused local bus was left in the data dir"

    user, other = User(), User()
    video = new_id()
    made = [srv.create_comment(user, video, f"c{i}") for i in range(7)]
    ids_newest = [c["id"] for c in sorted(made, key=sort_key, reverse=True)]
    # Paging in both sorts, two at a time, through the cursors.
    newest = [c["id"] for c in srv.list_all(f"/v1/videos/{video}/comments", limit=2)]
    assert newest == ids_newest
    oldest = [c["id"] for c in srv.list_all(f"/v1/videos/{video}/comments", sort="oldest", limit=2)]
    assert oldest == list(reversed(ids_newest))

    top = made[0]["id"]
    replies = [srv.create_comment(other, video, f"r{i}", parent_id=top) for i in range(3)]
    got = [c["id"] for c in srv.list_all(f"/v1/comments/{top}/replies", sort="oldest", limit=2)]
    assert got == [r["id"] for r in replies]
    assert srv.get_comment(top).json()["reply_count"] == 3

    r = srv.request("PATCH", f"/v1/comments/{made[1]['id']}", {"content": "edited"}, token=user.token)
    assert r.status == 200, r
    assert r.json()["content"] == "edited"
    assert srv.get_comment(made[1]["id"]).json()["edited"] is True

    r = srv.request("DELETE", f"/v1/comments/{made[2]['id']}", token=user.token)
    assert r.status == 204, r
    listed = [c["id"] for c in srv.list_all(f"/v1/videos/{video}/comments", limit=100)]
    assert made[2]["id"] not in listed and len(listed) == 6

    for u, t in ((user, "like"), (other, "like"), (User(), "dislike")):
        assert srv.react(u, top, t).status in (200, 202)
    srv.wait_counts(top, 2, 1)
    assert srv.react(other, top, "none").status in (200, 202, 204)
    srv.wait_counts(top, 1, 1)

    # The commit intents' sweep runs (every 10 s) and finds nothing: every write finished,
    # and its intent was deleted after the answer.
    srv.wait_for(lambda: srv.metric("commentd_commit_intent_sweeps_total") >= 1, "a sweep", 30)
    assert srv.metric("commentd_commit_intent_sweeps_failed_total") == 0
    body = srv.get("/metrics").body.decode()
    for outcome in ("rolled_forward", "never_applied", "lost", "unresolved"):
        assert f'commentd_commit_intents_resolved_total{{outcome="{outcome}"}} 0' in body, outcome

    stats = srv.get(f"/v1/videos/{video}/stats").json()
    before = snapshot(srv, video, top, user)
    assert srv.terminate() == 0, srv.stderr_tail()

    srv.start(timeout_s=60)
    after = snapshot(srv, video, top, user)
    assert after == before
    assert srv.get_comment(made[1]["id"]).json()["content"] == "edited"
    srv.wait_counts(top, 1, 1)
    again = srv.get(f"/v1/videos/{video}/stats").json()
    assert (again["comments_count"], again["reactions_count"]) == (stats["comments_count"],
                                                                   stats["reactions_count"])
    assert srv.terminate() == 0, srv.stderr_tail()


def test_pages_across_a_switch_to_hourly_buckets(server_factory):
    """A video that starts trending mid-stream (workers.trending.min_events: 4): its first
    comments go into the daily bucket, the later ones into hourly buckets of the same day
    (docs/cluster.md "Time buckets"). Pages in both sorts, small and large, show every
    top-level comment once and in order, without replies or a deleted comment, exactly as a
    node paging the one comments_by_video partition (storage.cql.bucketed_pages: false)."""
    keyspace = f"e2e_cqlb_{os.getpid()}_{int(time.time())}"
    trending = "workers:\n  trending:\n    min_events: 4\n"
    text = cql_config(cql_address(), keyspace).replace("workers:\n", trending, 1)
    srv = server_factory(text, name="cql-buckets")
    run_migrate(srv.config_path)
    srv.start(timeout_s=60)
    flat = server_factory(text.replace('    request_timeout: "30s"\n',
                                       '    request_timeout: "30s"\n    bucketed_pages: false\n'),
                          name="cql-flat")
    flat.start(timeout_s=60)

    user = User()
    video = new_id()
    made = [srv.create_comment(user, video, f"c{i}") for i in range(12)]
    assert srv.get(f"/v1/videos/{video}/stats").json()["is_trending"] is True
    for i in range(3):
        srv.create_comment(User(), video, f"r{i}", parent_id=made[5]["id"])
    r = srv.request("DELETE", f"/v1/comments/{made[7]['id']}", token=user.token)
    assert r.status == 204, r
    listed = sorted((c for c in made if c["id"] != made[7]["id"]), key=sort_key, reverse=True)
    want = [c["id"] for c in listed]
    for limit in (1, 3, 100):
        for node in (srv, flat):
            newest = [c["id"] for c in node.list_all(f"/v1/videos/{video}/comments", limit=limit)]
            oldest = [c["id"] for c in node.list_all(f"/v1/videos/{video}/comments", sort="oldest",
                                                     limit=limit)]
            assert newest == want, (node.name, limit)
            assert oldest == list(reversed(want)), (node.name, limit)
    assert flat.terminate() == 0, flat.stderr_tail()
    assert srv.terminate() == 0, srv.stderr_tail()


def test_migrates_and_serves_over_tls_and_refuses_a_node_it_cannot_verify(server_factory):
    """storage.cql.tls: `migrate` and the service connect over TLS, with the client certificate
    the node requires, and serve; the same config with a CA the node's certificate does not
    chain to stops the start with the reason, so the connections are TLS and verified (the bridge's CqlBridgeTls tests also see them counted as
    TLS by the node, which takes TLS and plain connections alike)."""
    tls = cql_tls_dir()
    keyspace = f"e2e_cql_tls_{os.getpid()}_{int(time.time())}"
    srv = server_factory(tls_config(cql_address(), keyspace, f"{tls}/ca.pem"), name="cql-tls")
    run_migrate(srv.config_path)
    srv.start(timeout_s=60)
    user, video = User(), new_id()
    made = [srv.create_comment(user, video, f"t{i}")["id"] for i in range(3)]
    assert [c["id"] for c in srv.list_all(f"/v1/videos/{video}/comments", limit=2)] == made[::-1]
    assert srv.terminate() == 0, srv.stderr_tail()

    bad = server_factory(tls_config(cql_address(), keyspace, f"{tls}/other-ca.pem"), name="cql-bad-ca")
    try:
        bad.start(timeout_s=60)
        raise AssertionError("commentd started on a node whose certificate it cannot verify")
    except AssertionError as e:
        assert "exited with" in str(e), e
        assert "certificate verify failed" in bad.stderr_tail(), bad.stderr_tail()
