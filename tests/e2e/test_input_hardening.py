"""Issue 7, request input and auth: deep JSON, duplicate keys, stats auth, canonical JWTs,
replies under non-visible comments, authenticated and bound cursors, replies of a deleted
comment."""
from __future__ import annotations

import base64

import pytest

from e2e_lib import User, assert_error, b64url, config_yaml, make_token, new_id


@pytest.fixture(scope="module")
def big_body_server(commentd_bin, tmp_path_factory):
    """A server that reads bodies of up to 16 MiB, as the config allows."""
    from e2e_lib import Server
    srv = Server(tmp_path_factory.mktemp("bigbody"),
                 config_yaml() + "server:\n  max_body_bytes: 16777216\n", name="bigbody")
    srv.start()
    yield srv
    rc = srv.terminate()
    assert rc == 0, f"SIGTERM gave exit code {rc}\n{srv.stderr_tail()}"


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deep_json_is_refused_not_a_crash(big_body_server, opener):
    srv, user = big_body_server, User()
    body = (opener * 200_000).encode()
    path = f"/v1/videos/{new_id()}/comments"
    # Unauthenticated: 401 before the body is read as JSON.
    r = srv.request("POST", path, body)
    assert_error(r, 401)
    r = srv.request("POST", path, body, token=user.token)
    assert assert_error(r, 400)["code"] == "invalid_json"
    r = srv.request("PUT", f"/v1/comments/{new_id()}/reaction", body, token=user.token)
    assert assert_error(r, 400)["code"] == "invalid_json"
    assert srv.get("/healthz").status == 200
    assert srv.proc.poll() is None


def test_nesting_past_the_limit_is_400(server):
    user = User()
    path = f"/v1/videos/{new_id()}/comments"
    r = server.request("POST", path, b'{"content":"x","extra":[[[1]]]}', token=user.token)
    assert r.status == 201, r
    r = server.request("POST", path, b'{"content":"x","extra":[[[[1]]]]}', token=user.token)
    assert assert_error(r, 400)["code"] == "invalid_json"


@pytest.mark.parametrize("method,route,body", [
    ("PUT", "/reaction", b'{"type":"like","type":"bogus"}'),
    ("POST", "/reaction-plan", b'{"type":"like","type":"none"}'),
    ("PATCH", "", b'{"content":"a","content":"b"}'),
    ("PATCH", "/status", b'{"status":"hidden","status":"visible"}'),
    ("POST", "/comments", b'{"content":"a","content":"b"}'),
])
def test_duplicate_keys_are_400(server, method, route, body):
    author, mod = User(), User(role="moderator")
    video = new_id()
    cid = server.create_comment(author, video, "dup keys")["id"]
    path = {"/reaction-plan": f"/comment/{cid}/reaction",
            "/comments": f"/v1/videos/{video}/comments"}.get(route, f"/v1/comments/{cid}{route}")
    token = mod.token if route == "/status" else author.token
    r = server.request(method, path, body, token=token)
    err = assert_error(r, 400)
    assert err["code"] == "invalid_json" and "duplicate key" in err["message"], r


def test_stats_with_a_bad_token_is_401(server):
    video = new_id()
    assert server.get(f"/v1/videos/{video}/stats").status == 200
    assert server.get(f"/v1/videos/{video}/stats", token=User().token).status == 200
    forged = make_token(new_id(), secret="not-the-secret")
    assert_error(server.get(f"/v1/videos/{video}/stats", token=forged), 401)
    assert_error(server.get(f"/v1/videos/{video}/stats", headers={"Authorization": "Basic x"}), 401)


def test_only_canonical_base64url_tokens(server):
    user = User()
    head, payload, sig = user.token.split(".")
    assert server.get_comment(new_id(), user).status == 404
    raw = base64.urlsafe_b64decode(sig + "=")
    padded = base64.urlsafe_b64encode(raw).decode()  # 43 chars + '='
    standard = base64.b64encode(raw).decode().rstrip("=")
    variants = [f"{head}.{payload}.{padded}"]
    if standard != sig:
        variants.append(f"{head}.{payload}.{standard}")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    low = alphabet[alphabet.index(sig[-1]) | 1]  # an unused low bit set
    variants.append(f"{head}.{payload}.{sig[:-1]}{low}")
    for t in variants:
        assert_error(server.request("GET", f"/v1/comments/{new_id()}", token=t), 401)


@pytest.mark.parametrize("status", ["hidden", "pending", "spam"])
def test_no_reply_under_a_non_visible_comment(server, status):
    author, mod, other = User(), User(role="moderator"), User()
    video = new_id()
    parent = server.create_comment(author, video, "to be moderated")["id"]
    reply = server.create_comment(other, video, "a reply before moderation", parent_id=parent)["id"]
    assert server.set_status(mod, parent, status).status == 200
    path = f"/v1/videos/{video}/comments"
    for who in (author, mod):
        for target in (parent, reply):  # a reply to the reply would join the hidden thread
            r = server.request("POST", path, {"content": "x", "parent_id": target}, token=who.token)
            assert assert_error(r, 422)["code"] == "parent_not_visible", (who, r)
    # Others cannot see the parent at all: not found, as before.
    r = server.request("POST", path, {"content": "x", "parent_id": parent}, token=other.token)
    assert assert_error(r, 422)["code"] == "parent_not_found"
    stats = server.get(f"/v1/videos/{video}/stats").json()
    assert stats["comments_count"] == 1, stats  # the reply made before moderation
    # Visible again: replies are accepted.
    assert server.set_status(mod, parent, "visible").status == 200
    server.create_comment(author, video, "now it is fine", parent_id=parent)


def _page(server, path, **params):
    r = server.list_page(path, **params)
    assert r.status == 200, r
    return r.json()


def test_cursors_are_bound_and_authenticated(server):
    user = User()
    v1, v2 = new_id(), new_id()
    for v in (v1, v2):
        for i in range(3):
            server.create_comment(user, v, f"c{i}")
    p1 = f"/v1/videos/{v1}/comments"
    cursor = _page(server, p1, limit=1)["next_cursor"]
    assert len(cursor) == 51 and _page(server, p1, limit=1, cursor=cursor)["comments"]
    # Another video, another sort, a list of replies: refused.
    for path, params in [(f"/v1/videos/{v2}/comments", {}), (p1, {"sort": "oldest"})]:
        r = server.list_page(path, limit=1, cursor=cursor, **params)
        assert assert_error(r, 400)["code"] == "invalid_cursor", r
    # Every single-bit flip of the decoded bytes is refused.
    raw = bytearray(base64.urlsafe_b64decode(cursor + "="))
    for bit in range(0, len(raw) * 8, 7):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        r = server.list_page(p1, limit=1, cursor=b64url(bytes(flipped)))
        assert assert_error(r, 400)["code"] == "invalid_cursor", (bit, r)


def test_reply_cursors_are_bound_to_their_thread(server):
    user = User()
    video = new_id()
    a = server.create_comment(user, video, "thread a")["id"]
    b = server.create_comment(user, video, "thread b")["id"]
    for parent in (a, b):
        for i in range(3):
            server.create_comment(user, video, f"r{i}", parent_id=parent)
    cursor = _page(server, f"/v1/comments/{a}/replies", limit=1)["next_cursor"]
    assert _page(server, f"/v1/comments/{a}/replies", limit=1, cursor=cursor)["comments"]
    r = server.list_page(f"/v1/comments/{b}/replies", limit=1, cursor=cursor)
    assert assert_error(r, 400)["code"] == "invalid_cursor"


def test_replies_of_a_deleted_comment_without_replies_is_404(server):
    user = User()
    video = new_id()
    lone = server.create_comment(user, video, "no replies")["id"]
    kept = server.create_comment(user, video, "has a reply")["id"]
    server.create_comment(user, video, "the reply", parent_id=kept)
    for cid in (lone, kept):
        assert server.request("DELETE", f"/v1/comments/{cid}", token=user.token).status == 204
    assert_error(server.get_comment(lone), 404)
    assert_error(server.get(f"/v1/comments/{lone}/replies"), 404)
    assert server.get_comment(kept).status == 200
    assert len(_page(server, f"/v1/comments/{kept}/replies")["comments"]) == 1
