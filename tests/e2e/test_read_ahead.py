"""Read-ahead (src/cache/README.md "Read-ahead"): a page read from a cursor whose cache missed
also caches the pages after it, from the same scans; with no cache nothing reads ahead. Either
way the pages a reader walks are the whole list, newest first, once each."""
from __future__ import annotations

import pytest

from e2e_lib import User, config_yaml, new_id

COMMENTS = 45  # pages of 10: 1, 2 (reads 3, 4 and 5 ahead), then the list ends
READ_AHEAD = "commentd_cache_pages_read_ahead_total"


def _walk(srv, video):
    return [c["id"] for c in srv.list_all(f"/v1/videos/{video}/comments", limit=10)]


@pytest.mark.parametrize("cache", ["on", "off"])
def test_a_cursor_page_reads_the_next_pages_ahead_only_where_a_cache_keeps_them(server_factory, cache):
    extra = "cache:\n  max_entries: 0\n" if cache == "off" else ""
    srv = server_factory(config_yaml() + extra).start()
    user, video = User(), new_id()
    posted = []
    for i in range(COMMENTS):
        r = srv.request("POST", f"/v1/videos/{video}/comments", {"content": f"c{i}"}, token=user.token)
        assert r.status == 201, r
        posted.append(r.json()["id"])
    walked = _walk(srv, video)
    assert walked == posted[::-1], "every comment once, newest first"
    if cache == "on":
        # Page 2 missed and read pages 3, 4 and 5 ahead (page 5 is the last, with 5 comments).
        assert srv.metric(READ_AHEAD) == 3
        assert _walk(srv, video) == walked
    else:
        assert srv.metric(READ_AHEAD) == 0
