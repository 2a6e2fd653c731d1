"""Comments: create, list with cursors, replies, edit, delete, placeholders."""
from __future__ import annotations

import threading
from collections import Counter
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from e2e_lib import User, assert_comment_shape, assert_error, new_id, sort_key


def test_create_comment(server, user):
    video = new_id()
    content = "héllo 👋 wörld\nsecond line\twith a tab"
    r = server.request("POST", f"/v1/videos/{video}/comments", {"content": content},
                       token=user.token)
    assert r.status == 201, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    c = r.json()
    assert_comment_shape(c)
    assert c["video_id"] == video
    assert c["user_id"] == user.id
    assert c["content"] == content
    assert c["parent_id"] is None and c["reply_to"] is None
    assert c["status"] == "visible"
    assert c["edited"] is False
    assert (c["likes"], c["dislikes"], c["reply_count"]) == (0, 0, 0)
    assert c["user_reacted"] is False and c["reaction_type"] is None
    assert c["updated_at"] >= c["created_at"]

    # Read back: by the author, by someone else, anonymously.
    for viewer in (user, User(), None):
        g = server.get_comment(c["id"], viewer)
        assert g.status == 200, g
        got = g.json()
        assert_comment_shape(got)
        for k in ("id", "video_id", "user_id", "parent_id", "reply_to", "content", "status",
                  "created_at", "edited"):
            assert got[k] == c[k], (k, got, c)

    # It is listed for its video.
    page = server.list_page(f"/v1/videos/{video}/comments").json()
    assert [x["id"] for x in page["comments"]] == [c["id"]]
    assert page["next_cursor"] is None


def test_list_unknown_video_is_empty(server):
    r = server.get(f"/v1/videos/{new_id()}/comments")
    assert r.status == 200, r
    assert r.json() == {"comments": [], "next_cursor": None}


def test_list_defaults_newest_first_limit_20(server, user):
    video = new_id()
    ids = [server.create_comment(user, video, f"c{i}")["id"] for i in range(23)]
    r = server.get(f"/v1/videos/{video}/comments")
    assert r.status == 200, r
    page = r.json()
    assert set(page) == {"comments", "next_cursor"}
    got = [c["id"] for c in page["comments"]]
    assert len(got) == 20
    assert got == list(reversed(ids))[:20], "default sort is newest first"
    assert isinstance(page["next_cursor"], str) and page["next_cursor"]
    for c in page["comments"]:
        assert_comment_shape(c)
    rest = server.list_page(f"/v1/videos/{video}/comments", cursor=page["next_cursor"]).json()
    assert [c["id"] for c in rest["comments"]] == list(reversed(ids))[20:]
    assert rest["next_cursor"] is None
    # limit=100 (the maximum) returns everything in one page.
    full = server.list_page(f"/v1/videos/{video}/comments", limit=100, sort="oldest").json()
    assert [c["id"] for c in full["comments"]] == ids
    assert full["next_cursor"] is None


def _page_through(server, video, sort, limit, viewer):
    seen, cursor, pages = [], None, 0
    while True:
        r = server.list_page(f"/v1/videos/{video}/comments", viewer, sort=sort, limit=limit,
                             cursor=cursor)
        assert r.status == 200, r
        page = r.json()
        assert len(page["comments"]) <= limit
        seen.extend(page["comments"])
        cursor = page["next_cursor"]
        pages += 1
        if cursor is None:
            return seen, pages
        assert pages < 200, "paging does not terminate"


def test_list_pagination_stable_under_concurrent_inserts(server):
    video = new_id()
    writers = [User() for _ in range(5)]
    # 60 comments from 5 threads, so several share a millisecond (tie-break by id).
    with ThreadPoolExecutor(5) as pool:
        pre = list(pool.map(lambda i: server.create_comment(writers[i % 5], video, f"pre {i}"),
                            range(60)))
    acked: list[str] = [c["id"] for c in pre]
    acked_lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def inserter():
        w = User()
        n = 0
        while not stop.is_set() and n < 2000:
            r = server.request("POST", f"/v1/videos/{video}/comments",
                               {"content": f"concurrent {n}"}, token=w.token)
            if r.status != 201:
                errors.append(repr(r))
                return
            with acked_lock:
                acked.append(r.json()["id"])
            n += 1
            time.sleep(0.005)

    t = threading.Thread(target=inserter, daemon=True)
    t.start()
    try:
        viewer = User()
        for sort, limit in (("newest", 7), ("oldest", 7), ("newest", 1), ("oldest", 13)):
            # Make sure the inserter is really running while we page.
            with acked_lock:
                base = len(acked)
            server.wait_for(lambda: len(acked) >= base + 2 or errors, "concurrent inserts")
            with acked_lock:
                existing = set(acked)
            seen, pages = _page_through(server, video, sort, limit, viewer)
            ids = [c["id"] for c in seen]
            dups = sorted(i for i, n in Counter(ids).items() if n > 1)
            assert not dups, f"{sort}/{limit}: {len(dups)} comments repeated, e.g. {dups[:3]}"
            missing = existing - set(ids)
            assert not missing, f"{sort}/{limit}: skipped {len(missing)} existing comments"
            keys = [sort_key(c) for c in seen]
            bad = [(a, b) for a, b in zip(keys, keys[1:])
                   if (a >= b if sort == "oldest" else a <= b)]
            assert not bad, f"{sort}/{limit}: not strictly ordered by (created_at, id): {bad[:3]}"
            assert pages >= len(existing) // limit
    finally:
        stop.set()
        t.join(timeout=30)
    assert not errors, errors


def test_replies_and_reply_count(server, user, other):
    video = new_id()
    top = server.create_comment(user, video, "top")
    r1 = server.create_comment(other, video, "reply one", parent_id=top["id"])
    r2 = server.create_comment(user, video, "reply two", parent_id=top["id"])
    for r in (r1, r2):
        assert_comment_shape(r)
        assert r["parent_id"] == top["id"]
        assert r["reply_to"] in (None, top["id"])
        assert r["video_id"] == video

    # A reply to a reply joins the thread (max_reply_depth 1): parent is the top-level comment,
    # reply_to is the reply it answered.
    r3 = server.create_comment(User(), video, "reply to reply one", parent_id=r1["id"])
    assert r3["parent_id"] == top["id"], r3
    assert r3["reply_to"] == r1["id"], r3
    g = server.get_comment(r3["id"]).json()
    assert (g["parent_id"], g["reply_to"]) == (top["id"], r1["id"])

    assert server.get_comment(top["id"]).json()["reply_count"] == 3

    # Replies: default oldest first; newest on request; cursors.
    replies = server.list_page(f"/v1/comments/{top['id']}/replies").json()
    assert [c["id"] for c in replies["comments"]] == [r1["id"], r2["id"], r3["id"]]
    assert replies["next_cursor"] is None
    for c in replies["comments"]:
        assert_comment_shape(c)
    newest = server.list_page(f"/v1/comments/{top['id']}/replies", sort="newest").json()
    assert [c["id"] for c in newest["comments"]] == [r3["id"], r2["id"], r1["id"]]
    p1 = server.list_page(f"/v1/comments/{top['id']}/replies", limit=2).json()
    assert [c["id"] for c in p1["comments"]] == [r1["id"], r2["id"]]
    assert p1["next_cursor"]
    p2 = server.list_page(f"/v1/comments/{top['id']}/replies", limit=2,
                          cursor=p1["next_cursor"]).json()
    assert [c["id"] for c in p2["comments"]] == [r3["id"]]
    assert p2["next_cursor"] is None

    # Top-level list shows only the top-level comment, with its reply_count.
    listed = server.list_page(f"/v1/videos/{video}/comments").json()["comments"]
    assert [c["id"] for c in listed] == [top["id"]]

    # Deleting a reply decrements the parent's reply_count and removes it from the replies.
    d = server.request("DELETE", f"/v1/comments/{r2['id']}", token=user.token)
    assert d.status == 204, d
    assert server.get_comment(top["id"]).json()["reply_count"] == 2
    replies = server.list_all(f"/v1/comments/{top['id']}/replies")
    assert [c["id"] for c in replies] == [r1["id"], r3["id"]]
    assert server.get_comment(r2["id"]).status == 404


def test_edit_by_author(server, user):
    video = new_id()
    c = server.create_comment(user, video, "first version")
    time.sleep(0.005)  # let the clock move so updated_at can differ
    r = server.request("PATCH", f"/v1/comments/{c['id']}", {"content": "second version"},
                       token=user.token)
    assert r.status == 200, r
    e = r.json()
    assert_comment_shape(e)
    assert e["id"] == c["id"]
    assert e["content"] == "second version"
    assert e["edited"] is True
    assert e["created_at"] == c["created_at"]
    assert e["updated_at"] >= c["updated_at"]
    g = server.get_comment(c["id"], user).json()
    assert g["content"] == "second version" and g["edited"] is True
    listed = server.list_page(f"/v1/videos/{video}/comments").json()["comments"]
    assert [(x["id"], x["content"], x["edited"]) for x in listed] == \
        [(c["id"], "second version", True)]


def test_edit_by_other_user_forbidden(server, user, other):
    c = server.create_comment(user, new_id(), "mine")
    r = server.request("PATCH", f"/v1/comments/{c['id']}", {"content": "hijacked"},
                       token=other.token)
    assert_error(r, 403)
    g = server.get_comment(c["id"]).json()
    assert g["content"] == "mine" and g["edited"] is False


def test_edit_by_moderator_forbidden(server, user, moderator):
    """Moderators moderate; they don't edit other people's words."""
    c = server.create_comment(user, new_id(), "mine")
    r = server.request("PATCH", f"/v1/comments/{c['id']}", {"content": "moderated"},
                       token=moderator.token)
    assert_error(r, 403)
    g = server.get_comment(c["id"]).json()
    assert g["content"] == "mine" and g["edited"] is False


def test_delete_by_author(server, user):
    video = new_id()
    keep = server.create_comment(user, video, "keep")
    gone = server.create_comment(user, video, "gone")
    r = server.request("DELETE", f"/v1/comments/{gone['id']}", token=user.token)
    assert r.status == 204, r
    assert r.body == b""
    assert_error(server.get_comment(gone["id"]), 404)
    assert_error(server.get_comment(gone["id"], user), 404)
    listed = server.list_all(f"/v1/videos/{video}/comments")
    assert [c["id"] for c in listed] == [keep["id"]]


def test_delete_by_other_user_forbidden(server, user, other):
    c = server.create_comment(user, new_id(), "mine")
    assert_error(server.request("DELETE", f"/v1/comments/{c['id']}", token=other.token), 403)
    g = server.get_comment(c["id"])
    assert g.status == 200 and g.json()["status"] == "visible"


def test_delete_by_moderator(server, user, moderator):
    video = new_id()
    c = server.create_comment(user, video, "rude")
    r = server.request("DELETE", f"/v1/comments/{c['id']}", token=moderator.token)
    assert r.status == 204, r
    assert_error(server.get_comment(c["id"]), 404)
    assert server.list_all(f"/v1/videos/{video}/comments") == []


def test_delete_unknown_comment_404(server, user):
    assert_error(server.request("DELETE", f"/v1/comments/{new_id()}", token=user.token), 404)


def test_deleted_comment_with_replies_is_placeholder(server, user, other):
    video = new_id()
    before = server.create_comment(other, video, "older neighbour")
    top = server.create_comment(user, video, "secret words")
    reply = server.create_comment(other, video, "an answer", parent_id=top["id"])
    after = server.create_comment(other, video, "newer neighbour")

    r = server.request("DELETE", f"/v1/comments/{top['id']}", token=user.token)
    assert r.status == 204, r

    for viewer in (None, other, user):
        listed = server.list_all(f"/v1/videos/{video}/comments", viewer, sort="oldest")
        assert [c["id"] for c in listed] == [before["id"], top["id"], after["id"]]
        ph = listed[1]
        assert_comment_shape(ph)
        assert ph["status"] == "deleted"
        assert ph["content"] == ""
        assert ph["reply_count"] == 1
        assert "secret words" not in str(ph)

    g = server.get_comment(top["id"])
    assert g.status == 200, g
    assert g.json()["status"] == "deleted" and g.json()["content"] == ""

    # Its thread is intact.
    replies = server.list_all(f"/v1/comments/{top['id']}/replies")
    assert [c["id"] for c in replies] == [reply["id"]]
    assert replies[0]["content"] == "an answer"

    # No new replies under a deleted comment.
    r = server.request("POST", f"/v1/videos/{video}/comments",
                       {"content": "late", "parent_id": top["id"]}, token=other.token)
    assert_error(r, 422)
