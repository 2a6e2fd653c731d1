"""`commentd backfill` and `commentd --verify` on Cassandra (storage.backend: cql).

V1-shaped data written by build/seed_v1 (the old service's rows: null version, V1 indexes, bare
reactions, no V2 rows, no counters); a V1 comment edited before the backfill; the backfill
killed -9 once its checkpoints show progress, then run again to the end; --verify finds 0
differences; the server lists the V1 video with the counts the seeding tool computed on its
own; --verify reports a difference made by hand (comment and video) and --repair removes it.
COMMENTD_BACKFILL_COMMENTS sets the size (default 5000; the 100k run is by hand, see
docs/operations.md section 3). Needs COMMENTD_TEST_CQL (set by `make test`)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from e2e_lib import User, binary_path, make_token
from test_cql_store import cql_address, cql_config, run_migrate

COMMENTS = int(os.environ.get("COMMENTD_BACKFILL_COMMENTS", "5000"))
VIDEOS = max(1, COMMENTS // 200)
RANGES = 64


def seed_tool():
    return binary_path().parent / "seed_v1"


def cql(addr: str, statement: str) -> list[list[str]]:
    p = subprocess.run([str(seed_tool()), "exec", addr, statement], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return [line.split("\t") for line in p.stdout.splitlines()]


def commentd(*args, timeout=1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary_path()), *args], capture_output=True, text=True, timeout=timeout)


def user_with_id(uid: str) -> User:
    u = User()
    u.id, u.token = uid, make_token(uid)
    return u


def checkpoints(addr: str, ks: str) -> list[list[str]]:
    return cql(addr, f"SELECT phase, range_id, rows, done FROM {ks}.backfill_progress WHERE job = 'v1'")


def test_backfill_resumes_after_kill9_and_verify_finds_nothing(server_factory, tmp_path):
    addr = cql_address()
    ks = f"e2e_backfill_{os.getpid()}_{int(time.time())}"
    srv = server_factory(cql_config(addr, ks), name="backfill")
    cfg = str(srv.config_path)
    run_migrate(cfg)
    seeded = subprocess.run([str(seed_tool()), "seed", addr, ks, str(COMMENTS), str(VIDEOS), "7"],
                            capture_output=True, text=True, timeout=1800)
    assert seeded.returncode == 0, seeded.stderr
    oracle = json.loads(seeded.stdout)
    video, top = oracle["video"], oracle["top"]

    # A V1 comment (null version) is editable before the backfill reaches it.
    v1_id = sorted(top)[0]
    [[author, version]] = cql(addr, f"SELECT user_id, version FROM {ks}.comments WHERE id = {v1_id}")
    assert version == "null"
    srv.start(timeout_s=60)
    r = srv.request("PATCH", f"/v1/comments/{v1_id}", {"content": "edited before backfill"},
                    token=user_with_id(author).token)
    assert r.status == 200, r
    assert cql(addr, f"SELECT version FROM {ks}.comments WHERE id = {v1_id}") == [["2"]]
    assert srv.terminate() == 0, srv.stderr_tail()

    # Backfill, slowed to small pages so that it is surely mid-run when killed.
    args = ["backfill", "--config", cfg, "--ranges", str(RANGES), "--concurrency", "2", "--page-size", "50"]
    first = subprocess.Popen([str(binary_path()), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while True:
        assert first.poll() is None, "backfill ended before its checkpoints were seen: raise COMMENTS"
        assert time.monotonic() < deadline, "no backfill checkpoint within 600 s"
        rows = [c for c in checkpoints(addr, ks) if c[0] == "comments"]
        if sum(int(c[2]) for c in rows) >= 200:
            break
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    done = [c for c in checkpoints(addr, ks) if c[0] == "comments" and c[3] == "true"]
    assert len(done) < RANGES

    second = commentd(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = second.stdout
    assert "done in" in summary, summary
    resumed_comments = int(summary.split(": ")[2].split(" comments")[0])
    assert resumed_comments < COMMENTS, summary  # resumed, not started over
    assert all(c[3] == "true" for c in checkpoints(addr, ks) if c[0] in ("comments", "videos"))
    # A third run finds everything done and changes nothing.
    third = commentd(*args)
    assert third.returncode == 0 and "0 comments, 0 videos, 0 user_hidden rows folded this run" in third.stdout, third.stdout

    verify = commentd("--verify", "--config", cfg)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr[-2000:]
    assert f"{COMMENTS} comments" in verify.stdout and " 0 differences" in verify.stdout, verify.stdout

    # The server lists the V1 video with the counts the seeding tool expects.
    srv.start(timeout_s=60)
    listed = srv.list_all(f"/v1/videos/{video}/comments", limit=100)
    assert sorted(c["id"] for c in listed) == sorted(top)
    for c in listed:
        assert [c["likes"], c["dislikes"], c["reply_count"]] == top[c["id"]], c
    stats = srv.get(f"/v1/videos/{video}/stats").json()
    assert (stats["comments_count"], stats["reactions_count"]) == (oracle["comments_count"],
                                                                   oracle["reactions_count"])
    assert srv.get_comment(v1_id).json()["content"] == "edited before backfill"
    # A backfilled V1 comment is editable (version 1 -> 2).
    other_id = sorted(top)[1]
    [[author2]] = cql(addr, f"SELECT user_id FROM {ks}.comments WHERE id = {other_id}")
    assert cql(addr, f"SELECT version FROM {ks}.comments WHERE id = {other_id}") == [["1"]]
    r = srv.request("PATCH", f"/v1/comments/{other_id}", {"content": "edited after backfill"},
                    token=user_with_id(author2).token)
    assert r.status == 200, r
    assert r.json()["likes"] == top[other_id][0]
    assert srv.terminate() == 0, srv.stderr_tail()

    # --verify reports a difference made by hand, and --repair removes it.
    cql(addr, f"UPDATE {ks}.comment_metrics SET likes = likes + 3 WHERE comment_id = {other_id}")
    cql(addr, f"UPDATE {ks}.video_stats SET comments_count = comments_count - 1 WHERE video_id = {video}")
    drift = commentd("--verify", "--config", cfg)
    assert drift.returncode == 1, drift.stdout
    assert f"comment {other_id}: stored likes={top[other_id][0] + 3}" in drift.stdout, drift.stdout
    assert f"video {video}: stored comments={oracle['comments_count'] - 1}" in drift.stdout, drift.stdout
    assert " 2 differences" in drift.stdout, drift.stdout
    repair = commentd("--verify", "--config", cfg, "--repair")
    assert repair.returncode == 0 and "2 repaired" in repair.stdout, repair.stdout
    clean = commentd("--verify", "--config", cfg)
    assert clean.returncode == 0 and " 0 differences" in clean.stdout, clean.stdout
    cql(addr, f"DROP KEYSPACE IF EXISTS {ks}")
