"""Per client address rate limits (limits.per_ip) and X-Forwarded-For trusted only from
server.trusted_proxies. The binary runs on loopback, so its TCP peer is always 127.0.0.1: one
test leaves 127.0.0.1 untrusted (a forged X-Forwarded-For changes nothing), the others trust
it as a proxy (the right-most untrusted entry is the client). Each runs with the in-process
limiter and with the Redis one (two nodes sharing one budget per address)."""
from __future__ import annotations

import pytest

from e2e_lib import User, assert_error, config_yaml, new_id
from test_redis import RedisServer, redis, redis_config  # noqa: F401  (redis: the fixture)


def ip_config(base: str, trusted: list[str], create_per_ip: int = 2,
              reaction_per_ip: int = 0) -> str:
    listed = ", ".join(f'"{t}"' for t in trusted)
    # Per-user limits stay off (config_yaml): only the per-address ones can refuse here.
    return base.replace("limits:\n", f"""limits:
  per_ip:
    create_comment: {{ limit: {create_per_ip}, window: "1m" }}
    add_reaction: {{ limit: {reaction_per_ip}, window: "1m" }}
""", 1) + f"""\
server:
  trusted_proxies: [{listed}]
"""


@pytest.fixture(params=["memory", "redis"])
def nodes(request, server_factory, tmp_path):
    """make(trusted, **kw) -> (node_a, node_b): two nodes sharing one Redis, or one
    in-process node twice."""
    def make(trusted: list[str], **kw):
        if request.param == "memory":
            srv = server_factory(ip_config(config_yaml(), trusted, **kw), name="node").start()
            return srv, srv
        r = request.getfixturevalue("redis")
        cfg = ip_config(redis_config(r), trusted, **kw)
        return (server_factory(cfg, name="node-a").start(),
                server_factory(cfg, name="node-b").start())
    return make


def post(srv, user: User, xff: str | None = None):
    headers = {"X-Forwarded-For": xff} if xff is not None else None
    return srv.request("POST", f"/v1/videos/{new_id()}/comments", {"content": "hi"},
                       token=user.token, headers=headers)


def test_forged_forwarded_for_from_an_untrusted_peer_is_ignored(nodes):
    a, b = nodes(trusted=[])
    # Three users each claim another address; all come from 127.0.0.1, which has a budget of 2.
    assert post(a, User(), "198.51.100.1").status == 201
    assert post(b, User(), "198.51.100.2").status == 201
    r = post(a, User(), "198.51.100.3")
    assert_error(r, 429)
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert_error(post(b, User()), 429)


def test_forwarded_for_from_a_trusted_proxy_names_the_client(nodes):
    a, b = nodes(trusted=["127.0.0.1", "10.0.0.0/8"])
    client = "198.51.100.1"
    assert post(a, User(), client).status == 201
    assert post(b, User(), f"{client}, 10.1.2.3").status == 201  # through a second trusted hop
    # Spoofed entries left of the client's own are not believed: still the same client.
    assert_error(post(a, User(), f"6.6.6.6, {client}"), 429)
    assert_error(post(b, User(), client), 429)
    # Another client behind the same proxy has its own budget; so has IPv6 (per /64).
    assert post(a, User(), "198.51.100.2").status == 201
    assert post(a, User(), "2001:db8:1:2::5").status == 201
    assert post(b, User(), "[2001:db8:1:2::6]:4431").status == 201
    assert_error(post(a, User(), "2001:db8:1:2::7"), 429)
    # Malformed forwarding from the proxy: the peer (127.0.0.1) is the client, with its budget.
    assert post(a, User(), "garbage").status == 201
    assert post(b, User(), f"{client},").status == 201
    assert_error(post(a, User()), 429)


def test_reactions_have_their_own_per_address_budget(nodes):
    a, b = nodes(trusted=["127.0.0.1"], create_per_ip=0, reaction_per_ip=1)
    author = User()
    cid = a.create_comment(author, new_id(), "react to me")["id"]
    xff = {"X-Forwarded-For": "198.51.100.9"}
    r = a.request("PUT", f"/v1/comments/{cid}/reaction", {"type": "like"},
                  token=User().token, headers=xff)
    assert r.status == 202, r
    r = b.request("PUT", f"/v1/comments/{cid}/reaction", {"type": "like"},
                  token=User().token, headers=xff)
    assert_error(r, 429)
    # The comment is stored on node a (in the Redis variant each node has its own storage).
    r = a.request("PUT", f"/v1/comments/{cid}/reaction", {"type": "like"}, token=User().token)
    assert r.status == 202, r
