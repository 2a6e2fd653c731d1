"""Events on the embedded node without Pulsar, against the real binary: no bus and no relay run
(nothing would read them: docs/cluster.md "Outbox relay"), so no outbox or relay metric is
exported; every write still commits its event with it. A derived node id is kept in the data
dir across restarts, kill -9 included. The relay itself, kill -9 and resume included, is
tested against a real Pulsar in test_pulsar_outbox.py."""
from __future__ import annotations

from e2e_lib import User, config_yaml, new_id


def test_no_bus_runs_without_pulsar_and_the_node_id_is_kept(server_factory):
    srv = server_factory(config_yaml(), name="events").start()
    user, video = User(), new_id()
    ids = [srv.create_comment(user, video, f"event {i}")["id"] for i in range(5)]
    assert srv.react(User(), ids[0], "like").status == 202
    body = srv.get("/metrics").body.decode()
    for name in ("commentd_outbox_depth", "commentd_outbox_oldest_age_seconds", "commentd_relay_published_total",
                 "commentd_bus_delivered_total", 'subscription="cache-invalidation"'):
        assert name not in body, f"{name} is exported though no bus runs"
    assert "commentd_http_connections" in body  # the scrape itself is whole

    node_file = srv.data_dir / "node_id"
    node_id = node_file.read_text().strip()
    assert 1 <= int(node_id) <= 1023
    more = [srv.create_comment(user, video, f"late {i}")["id"] for i in range(20)]
    srv.kill9()
    srv.start()
    assert node_file.read_text().strip() == node_id, "the derived node id changed across a restart"
    for cid in ids + more:
        assert srv.get_comment(cid).status == 200
    assert srv.terminate() == 0
