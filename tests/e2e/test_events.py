"""The outbox relay and node identity against the real binary: every acknowledged write's
event leaves the outbox (depth drains to 0), the relay resumes after kill -9, and a derived
node id is kept in the data dir across restarts."""
from __future__ import annotations

from e2e_lib import User, config_yaml, new_id


def test_outbox_drains_and_relay_resumes_after_kill9(server_factory):
    srv = server_factory(config_yaml(), name="events").start()
    user, video = User(), new_id()
    ids = [srv.create_comment(user, video, f"event {i}")["id"] for i in range(5)]
    assert srv.react(User(), ids[0], "like").status == 202
    srv.wait_for(lambda: srv.metric("commentd_outbox_depth") == 0, "the outbox to drain")
    assert srv.metric("commentd_relay_published_total") >= 6  # 5 created + 1 reaction

    node_file = srv.data_dir / "node_id"
    node_id = node_file.read_text().strip()
    assert 1 <= int(node_id) <= 1023

    # Writes right before a kill -9 are in the outbox; the restarted relay publishes them.
    more = [srv.create_comment(user, video, f"late {i}")["id"] for i in range(20)]
    srv.kill9()
    srv.start()
    srv.wait_for(lambda: srv.metric("commentd_outbox_depth") == 0, "the outbox to drain after restart")
    assert node_file.read_text().strip() == node_id, "the derived node id changed across a restart"
    # Nothing was lost on the way: every comment is there.
    for cid in ids + more:
        assert srv.get_comment(cid).status == 200
    assert srv.terminate() == 0


def test_the_outbox_age_is_measured_and_no_cache_invalidation_runs_on_the_local_bus(server_factory):
    """The age of the oldest event still in the outbox drops to 0 once drained. The
    cache-invalidation subscriber runs only on a bus the nodes share (Pulsar: its event latency
    is checked in test_pulsar_outbox.py): on the embedded node's own bus it has nothing to do."""
    srv = server_factory(config_yaml(), name="latency").start()
    user, video = User(), new_id()
    for i in range(5):
        srv.create_comment(user, video, f"timed {i}")
    srv.wait_for(lambda: srv.metric("commentd_outbox_depth") == 0, "the outbox to drain")
    srv.wait_for(lambda: srv.metric("commentd_outbox_oldest_age_seconds") == 0, "the age to drop to 0 once drained")
    body = srv.get("/metrics").body.decode()
    assert 'subscription="cache-invalidation"' not in body
    assert srv.metric("commentd_relay_published_total") >= 5
