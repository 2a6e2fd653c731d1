"""Aliases from the original plan, health/readiness/metrics, and the rate limit."""
from __future__ import annotations

import re

from e2e_lib import User, assert_comment_shape, assert_error, config_yaml, new_id


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?)\s+(\S+)(?:\s+-?\d+)?$")


def test_alias_create_comment(server, user):
    video = new_id()
    r = server.request("POST", f"/video/{video}/comment", {"content": "via the alias"},
                       token=user.token)
    assert r.status == 201, r
    c = r.json()
    assert_comment_shape(c)
    assert (c["video_id"], c["user_id"], c["content"]) == (video, user.id, "via the alias")
    reply = server.request("POST", f"/video/{video}/comment",
                           {"content": "alias reply", "parent_id": c["id"]}, token=user.token)
    assert reply.status == 201, reply
    assert reply.json()["parent_id"] == c["id"]
    listed = server.list_all(f"/v1/videos/{video}/comments")
    assert [x["id"] for x in listed] == [c["id"]]
    assert server.get_comment(c["id"]).json()["reply_count"] == 1


def test_alias_reaction(server, user, other):
    cid = server.create_comment(other, new_id(), "react via alias")["id"]
    for rtype, counts in (("like", (1, 0)), ("dislike", (0, 1)), ("none", (0, 0)),
                          ("like", (1, 0))):
        r = server.request("POST", f"/comment/{cid}/reaction", {"type": rtype},
                           token=user.token)
        assert r.status == 202, r
        body = r.json()
        assert (body["comment_id"], body["user_id"], body["type"]) == (cid, user.id, rtype)
        assert body["op_id"] and body["timestamp"] not in (None, "")
        c = server.get_comment(cid, user).json()
        assert c["reaction_type"] == (None if rtype == "none" else rtype)
        server.wait_counts(cid, *counts)


def test_healthz_readyz(server):
    for path in ("/healthz", "/readyz"):
        r = server.get(path)
        assert r.status == 200, r


def test_metrics_prometheus_text(server, user):
    server.create_comment(user, new_id(), "for the counters")
    r = server.get("/metrics")
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    text = r.body.decode()
    assert "# TYPE " in text, text[:500]
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert samples, "no samples"
    for ln in samples:
        m = SAMPLE.match(ln)
        assert m, f"not a Prometheus sample line: {ln!r}"
        float(m.group(2))  # NaN / +Inf parse too


def test_rate_limit_create_comment(server_factory):
    srv = server_factory(config_yaml(create_limit=3, create_window="1m"), name="ratelimit")
    srv.start()
    a, b = User(), User()
    video = new_id()
    for i in range(3):
        r = srv.request("POST", f"/v1/videos/{video}/comments", {"content": f"ok {i}"},
                        token=a.token)
        assert r.status == 201, r
    r = srv.request("POST", f"/v1/videos/{video}/comments", {"content": "too many"},
                    token=a.token)
    assert_error(r, 429)
    retry = r.headers.get("retry-after")
    assert retry is not None, r.headers
    assert retry.strip().isdigit() and 1 <= int(retry) <= 60, retry
    # The alias shares the limit.
    r = srv.request("POST", f"/video/{video}/comment", {"content": "still too many"},
                    token=a.token)
    assert_error(r, 429)
    # Per user: someone else is not limited.
    r = srv.request("POST", f"/v1/videos/{video}/comments", {"content": "b"}, token=b.token)
    assert r.status == 201, r
    assert len(srv.list_all(f"/v1/videos/{video}/comments")) == 4
    # Reactions have their own limit (0 = unlimited here).
    cid = r.json()["id"]
    for t in ("like", "dislike", "like", "dislike", "like"):
        assert srv.react(a, cid, t).status == 202
    assert srv.terminate() == 0
