"""Bad input (400/404/405/413/422), authentication (401) and the dev-header switch."""
from __future__ import annotations

import json
import os
import time

import pytest

from e2e_lib import User, assert_error, b64url, make_token, new_id


@pytest.fixture(scope="module")
def ctx(server):
    author, mod = User(), User(role="moderator")
    video, video2 = new_id(), new_id()
    cid = server.create_comment(author, video, "a comment")["id"]
    elsewhere = server.create_comment(author, video2, "in another video")["id"]
    dead = server.create_comment(author, video, "to be deleted")["id"]
    server.create_comment(author, video, "keeps the placeholder", parent_id=dead)
    r = server.request("DELETE", f"/v1/comments/{dead}", token=author.token)
    assert r.status == 204, r
    page = server.list_page(f"/v1/videos/{video}/comments", limit=1).json()
    assert page["next_cursor"], page
    return {"author": author, "mod": mod, "video": video, "cid": cid, "elsewhere": elsewhere,
            "dead": dead, "unknown": new_id(), "cursor": page["next_cursor"]}


def _content(s):
    return lambda c: {"content": s}


def _reply(key):
    return lambda c: {"content": "a reply", "parent_id": c[key] if key in c else key}


V = "/v1/videos/{video}/comments"
C = "/v1/comments/{cid}"

# (name, method, path, body (None | bytes | str | callable(ctx) -> dict), who, statuses)
# who: "author" (the comment's author), "mod", or "none" for no token.
CASES = [
    # --- 400: malformed JSON / wrong types -------------------------------------------------------
    ("bad_json", "POST", V, b'{"content": "x"', "author", 400),
    ("json_not_object", "POST", V, b'["content"]', "author", 400),
    ("content_not_string", "POST", V, lambda c: {"content": 42}, "author", (400, 422)),
    ("content_missing", "POST", V, lambda c: {}, "author", (400, 422)),
    ("empty_body", "POST", V, b"", "author", 400),
    ("patch_bad_json", "PATCH", C, b"{nope", "author", 400),
    ("reaction_bad_json", "PUT", C + "/reaction", b"{", "author", 400),
    # --- 400: bad UUIDs in the path --------------------------------------------------------------
    ("path_uuid_list", "GET", "/v1/videos/not-a-uuid/comments", None, "none", 400),
    ("path_uuid_create", "POST", "/v1/videos/xyz/comments", _content("hi"), "author", 400),
    ("path_uuid_get", "GET", "/v1/comments/1234", None, "none", 400),
    ("path_uuid_get_almost", "GET", "/v1/comments/0000000-0000-0000-0000-0000000000000", None,
     "none", 400),
    ("path_uuid_patch", "PATCH", "/v1/comments/zzz", _content("hi"), "author", 400),
    ("path_uuid_delete", "DELETE", "/v1/comments/zzz", None, "author", 400),
    ("path_uuid_replies", "GET", "/v1/comments/zzz/replies", None, "none", 400),
    ("path_uuid_reaction", "PUT", "/v1/comments/zzz/reaction", lambda c: {"type": "like"},
     "author", 400),
    ("path_uuid_unreact", "DELETE", "/v1/comments/zzz/reaction", None, "author", 400),
    ("path_uuid_status", "PATCH", "/v1/comments/zzz/status", lambda c: {"status": "hidden"},
     "mod", 400),
    ("path_uuid_stats", "GET", "/v1/videos/zzz/stats", None, "none", 400),
    ("path_uuid_alias_comment", "POST", "/video/zzz/comment", _content("hi"), "author", 400),
    ("path_uuid_alias_reaction", "POST", "/comment/zzz/reaction", lambda c: {"type": "like"},
     "author", 400),
    # --- 400: bad UUID in the body ---------------------------------------------------------------
    ("body_parent_not_uuid", "POST", V, _reply("not-a-uuid"), "author", 400),
    ("body_parent_not_string", "POST", V, lambda c: {"content": "x", "parent_id": 7}, "author",
     400),
    # --- 400: query parameters -------------------------------------------------------------------
    ("cursor_garbage", "GET", V + "?cursor=garbage!!", None, "none", 400),
    ("cursor_short", "GET", V + "?cursor=AQ", None, "none", 400),
    ("cursor_truncated", "GET", V + "?cursor={cursor_cut}", None, "none", 400),
    ("cursor_replies", "GET", C + "/replies?cursor=%25%25%25", None, "none", 400),
    ("sort_unknown", "GET", V + "?sort=top", None, "none", 400),
    ("sort_unknown_replies", "GET", C + "/replies?sort=random", None, "none", 400),
    ("limit_zero", "GET", V + "?limit=0", None, "none", 400),
    ("limit_101", "GET", V + "?limit=101", None, "none", 400),
    ("limit_negative", "GET", V + "?limit=-1", None, "none", 400),
    ("limit_nan", "GET", V + "?limit=abc", None, "none", 400),
    ("limit_float", "GET", V + "?limit=1.5", None, "none", 400),
    ("limit_huge", "GET", V + "?limit=99999999999999999999", None, "none", 400),
    ("limit_replies", "GET", C + "/replies?limit=0", None, "none", 400),
    # --- 400: unknown enum values ----------------------------------------------------------------
    ("reaction_type_unknown", "PUT", C + "/reaction", lambda c: {"type": "love"}, "author", 400),
    ("reaction_type_missing", "PUT", C + "/reaction", lambda c: {}, "author", 400),
    ("alias_reaction_type_unknown", "POST", "/comment/{cid}/reaction",
     lambda c: {"type": "meh"}, "author", 400),
    ("status_unknown", "PATCH", C + "/status", lambda c: {"status": "bogus"}, "mod", 400),
    ("status_deleted", "PATCH", C + "/status", lambda c: {"status": "deleted"}, "mod", 400),
    # --- 404 ---------------------------------------------------------------------------------------
    ("unknown_comment_get", "GET", "/v1/comments/{unknown}", None, "none", 404),
    ("unknown_comment_patch", "PATCH", "/v1/comments/{unknown}", _content("x"), "author", 404),
    ("unknown_comment_delete", "DELETE", "/v1/comments/{unknown}", None, "author", 404),
    ("unknown_comment_replies", "GET", "/v1/comments/{unknown}/replies", None, "none", 404),
    ("unknown_comment_reaction", "PUT", "/v1/comments/{unknown}/reaction",
     lambda c: {"type": "like"}, "author", 404),
    ("unknown_comment_status", "PATCH", "/v1/comments/{unknown}/status",
     lambda c: {"status": "hidden"}, "mod", 404),
    ("unknown_route", "GET", "/v1/nothing-here", None, "none", 404),
    ("unknown_route_root", "GET", "/", None, "none", 404),
    # --- 404/405: wrong method on a known path ---------------------------------------------------
    ("wrong_method_list", "PUT", V, _content("x"), "author", (404, 405)),
    ("wrong_method_comment", "POST", C, _content("x"), "author", (404, 405)),
    ("wrong_method_stats", "DELETE", "/v1/videos/{video}/stats", None, "author", (404, 405)),
    # --- 413 ---------------------------------------------------------------------------------------
    ("body_too_large", "POST", V, _content("a" * 70000), "author", 413),
    ("patch_body_too_large", "PATCH", C, _content("b" * 70000), "author", 413),
    # --- 422: content ------------------------------------------------------------------------------
    ("content_empty", "POST", V, _content(""), "author", 422),
    ("content_whitespace", "POST", V, _content("  \n\t \r\n "), "author", 422),
    ("content_unicode_whitespace", "POST", V, _content("\u00a0\u200b\u3000"), "author", 422),
    ("content_too_long", "POST", V, _content("a" * 10001), "author", 422),
    ("content_too_long_multibyte", "POST", V, _content("é" * 5000 + "a"), "author", 422),
    ("content_invalid_utf8", "POST", V, b'{"content": "ok \xff\xfe bad"}', "author", 422),
    ("content_overlong_utf8", "POST", V, b'{"content": "\xc0\xaf"}', "author", 422),
    ("content_nul", "POST", V, _content("a\u0000b"), "author", 422),
    ("content_ctrl_soh", "POST", V, _content("a\u0001b"), "author", 422),
    ("content_ctrl_esc", "POST", V, _content("\u001b[31mred"), "author", 422),
    ("content_ctrl_del", "POST", V, _content("a\u007fb"), "author", 422),
    ("content_ctrl_c1", "POST", V, _content("a\u0085b"), "author", 422),
    ("content_lone_surrogate", "POST", V, b'{"content": "a\\ud800b"}', "author", (400, 422)),
    ("patch_content_empty", "PATCH", C, _content(" "), "author", 422),
    ("patch_content_ctrl", "PATCH", C, _content("x\u0002"), "author", 422),
    ("patch_content_too_long", "PATCH", C, _content("z" * 10001), "author", 422),
    ("alias_content_empty", "POST", "/video/{video}/comment", _content(""), "author", 422),
    # --- 422: parent -------------------------------------------------------------------------------
    ("parent_other_video", "POST", V, _reply("elsewhere"), "author", 422),
    ("parent_deleted", "POST", V, _reply("dead"), "author", 422),
    ("parent_not_found", "POST", V, _reply("unknown"), "author", 422),
]


@pytest.mark.parametrize("name,method,path,body,who,statuses", CASES, ids=[c[0] for c in CASES])
def test_bad_input(server, ctx, name, method, path, body, who, statuses):
    if name.endswith("body_too_large") and os.environ.get("COMMENTD_E2E_URL"):
        # The node answers 413 and closes before it has read the body; HAProxy then drops
        # the client's connection mid-upload (seen in a fresh-clone run) instead of relaying
        # the early answer. The limit itself is covered by the run against the binary.
        pytest.skip("an early 413 is not relayed by the proxy while the client still uploads")
    fmt = dict(ctx)
    fmt["cursor_cut"] = ctx["cursor"][: len(ctx["cursor"]) // 2]
    path = path.format(**{k: v for k, v in fmt.items() if isinstance(v, str)})
    if callable(body):
        body = json.dumps(body(ctx)).encode()
    token = None if who == "none" else ctx[who].token
    r = server.request(method, path, body, token=token)
    assert_error(r, statuses)
    # Nothing was created by a rejected write.
    if method == "POST" and r.status != 201:
        listed = server.list_all(f"/v1/videos/{ctx['video']}/comments")
        assert {c["id"] for c in listed} == {ctx["cid"], ctx["dead"]}


def test_content_limits_accept_boundary(server, user):
    """Exactly max_content_bytes (10000) bytes is fine, counted in bytes, not characters."""
    video = new_id()
    for content in ("a" * 10000, "é" * 5000, "\U0001F600" * 2500, "x\n\r\ty"):
        r = server.request("POST", f"/v1/videos/{video}/comments", {"content": content},
                           token=user.token)
        assert r.status == 201, (len(content.encode()), r)
        assert r.json()["content"] == content


# ------------------------------------------------------------------------------------------------
# Authentication
# ------------------------------------------------------------------------------------------------

def _tampered(sub):
    good = make_token(sub)
    h, _, s = good.split(".")
    payload = b64url(json.dumps({"sub": sub, "exp": int(time.time()) + 3600,
                                 "role": "moderator"}).encode())
    return f"{h}.{payload}.{s}"


BAD_TOKENS = {
    "bad_signature": lambda sub: make_token(sub, secret="not-the-secret"),
    "tampered_payload": _tampered,
    "expired": lambda sub: make_token(sub, exp_delta=-3600),
    "alg_none": lambda sub: make_token(sub, alg="none"),
    "alg_none_uppercase": lambda sub: make_token(sub, alg="NONE"),
    "garbage": lambda sub: "not.a.jwt",
    "two_segments": lambda sub: ".".join(make_token(sub).split(".")[:2]),
    "empty": lambda sub: "",
    "sub_not_uuid": lambda sub: make_token("someone"),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_token_is_401(server, kind):
    video = new_id()
    token = BAD_TOKENS[kind](new_id())
    r = server.request("POST", f"/v1/videos/{video}/comments", {"content": "hi"}, token=token)
    assert_error(r, 401)
    assert server.list_all(f"/v1/videos/{video}/comments") == []


def test_wrong_auth_scheme_is_401(server):
    video = new_id()
    tok = make_token(new_id())
    for value in ("Basic " + tok, tok, "Bearer", "Bearer  "):
        r = server.request("POST", f"/v1/videos/{video}/comments", {"content": "hi"},
                           headers={"Authorization": value})
        assert_error(r, 401)


WRITES = [
    ("POST", "/v1/videos/{video}/comments", {"content": "hi"}),
    ("PATCH", "/v1/comments/{cid}", {"content": "hi"}),
    ("DELETE", "/v1/comments/{cid}", None),
    ("PUT", "/v1/comments/{cid}/reaction", {"type": "like"}),
    ("DELETE", "/v1/comments/{cid}/reaction", None),
    ("PATCH", "/v1/comments/{cid}/status", {"status": "hidden"}),
    ("POST", "/video/{video}/comment", {"content": "hi"}),
    ("POST", "/comment/{cid}/reaction", {"type": "like"}),
]


@pytest.mark.parametrize("method,path,body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_write_without_token_is_401(server, ctx, method, path, body):
    r = server.request(method, path.format(video=ctx["video"], cid=ctx["cid"]), body)
    assert_error(r, 401)
    g = server.get_comment(ctx["cid"]).json()
    assert g["content"] == "a comment" and g["status"] == "visible"


def test_expired_token_rejected_on_every_write(server, ctx):
    token = make_token(ctx["author"].id, exp_delta=-3600)
    for method, path, body in WRITES:
        r = server.request(method, path.format(video=ctx["video"], cid=ctx["cid"]), body,
                           token=token)
        assert_error(r, 401)


def test_dev_headers_not_accepted_without_dev_mode(server, ctx):
    author, stranger = ctx["author"], User()
    video = new_id()
    # X-User-Id alone is not authentication.
    r = server.request("POST", f"/v1/videos/{video}/comments", {"content": "hi"},
                       headers={"X-User-Id": author.id, "X-User-Role": "moderator"})
    assert_error(r, 401)
    assert server.list_all(f"/v1/videos/{video}/comments") == []
    # ... nor does it override the token's identity or role.
    r = server.request("PATCH", f"/v1/comments/{ctx['cid']}", {"content": "hijacked"},
                       token=stranger.token, headers={"X-User-Id": author.id})
    assert_error(r, 403)
    r = server.request("PATCH", f"/v1/comments/{ctx['cid']}/status", {"status": "hidden"},
                       token=stranger.token, headers={"X-User-Role": "moderator"})
    assert_error(r, 403)
    r = server.request("DELETE", f"/v1/comments/{ctx['cid']}", token=stranger.token,
                       headers={"X-User-Id": author.id, "X-User-Role": "moderator"})
    assert_error(r, 403)
    g = server.get_comment(ctx["cid"]).json()
    assert g["content"] == "a comment" and g["status"] == "visible"
    # A created comment belongs to the token's subject, not the header's.
    r = server.request("POST", f"/v1/videos/{video}/comments", {"content": "mine"},
                       token=stranger.token, headers={"X-User-Id": author.id})
    assert r.status == 201, r
    assert r.json()["user_id"] == stranger.id
