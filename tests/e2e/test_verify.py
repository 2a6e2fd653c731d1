"""Counts stay exact across kill -9 in the middle of a reaction storm, checked by the
offline verifier (`commentd --verify`), which recounts every counter from the rows."""
from __future__ import annotations

import http.client
import random
import subprocess
import threading
import time

from e2e_lib import User, binary_path, config_yaml, new_id


def run_verify(srv) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary_path()), "--config", str(srv.config_path), "--data-dir",
                           str(srv.data_dir), "--verify"], capture_output=True, text=True, timeout=60)


def test_verify_finds_no_drift_after_kill9_mid_storm(server_factory):
    srv = server_factory(config_yaml(), name="verify").start()
    video = new_id()
    author = User()
    hot = [srv.create_comment(author, video, f"hot {i}")["id"] for i in range(3)]
    # A reply, so replies_count and comments_count are checked too.
    srv.create_comment(author, video, "reply", parent_id=hot[0])

    stop = threading.Event()
    acked = [0]
    lock = threading.Lock()

    def storm(seed: int):
        rng = random.Random(seed)
        u = User()
        while not stop.is_set():
            cid = rng.choice(hot)
            kind = rng.choice(["like", "dislike", "none"])
            try:
                if kind == "none":
                    r = srv.request("DELETE", f"/v1/comments/{cid}/reaction", token=u.token, timeout=5)
                else:
                    r = srv.request("PUT", f"/v1/comments/{cid}/reaction", {"type": kind},
                                    token=u.token, timeout=5)
            except (OSError, http.client.HTTPException):
                return
            if r.status == 202:
                with lock:
                    acked[0] += 1

    threads = [threading.Thread(target=storm, args=(s,)) for s in range(16)]
    for t in threads:
        t.start()
    deadline = time.time() + 20
    while acked[0] < 1500 and time.time() < deadline:
        time.sleep(0.05)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert acked[0] >= 200, "the storm never got going"

    # Offline, right after the crash: rows and counters agree (unapplied ops are in neither).
    r = run_verify(srv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 drifted" in r.stdout, r.stdout

    # Restart: the log drains. Deleting a comment that has reactions, and hiding another,
    # must not leave the video's counters drifted from their recount.
    srv.start()
    assert srv.request("DELETE", f"/v1/comments/{hot[2]}", token=author.token).status == 204
    mod = User(role="moderator")
    assert srv.request("PATCH", f"/v1/comments/{hot[1]}/status", {"status": "hidden"},
                       token=mod.token).status == 200
    assert srv.terminate() == 0
    r = run_verify(srv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 drifted; 0 reaction ops not yet applied" in r.stdout, r.stdout


def test_random_mixed_operations_keep_every_counter_exact(server_factory):
    """Creates, replies (also to replies), edits, deletes, hides/restores and reactions from
    several users at once on one video; afterwards every counter equals its recount."""
    srv = server_factory(config_yaml(), name="chaos").start()
    video = new_id()
    ids: list[str] = []
    ids_lock = threading.Lock()
    mod = User(role="moderator")
    errors: list[str] = []

    def worker(seed: int):
        rng = random.Random(seed)
        me = User()
        mine: list[str] = []
        for _ in range(300):
            with ids_lock:
                pool = list(ids)
            roll = rng.random()
            if roll < 0.25 or not pool:
                body = {"content": f"c{seed}-{rng.random()}"}
                if pool and rng.random() < 0.5:
                    body["parent_id"] = rng.choice(pool)
                r = srv.request("POST", f"/v1/videos/{video}/comments", body, token=me.token)
                if r.status == 201:
                    cid = r.json()["id"]
                    mine.append(cid)
                    with ids_lock:
                        ids.append(cid)
                elif r.status != 422:  # parent deleted meanwhile is a fair refusal
                    errors.append(repr(r))
            elif roll < 0.35 and mine:
                cid = rng.choice(mine)
                r = srv.request("DELETE", f"/v1/comments/{cid}", token=me.token)
                if r.status not in (204, 404):
                    errors.append(repr(r))
            elif roll < 0.45:
                status = rng.choice(["hidden", "visible", "spam", "visible"])
                r = srv.request("PATCH", f"/v1/comments/{rng.choice(pool)}/status", {"status": status},
                                token=mod.token)
                if r.status not in (200, 404, 409):
                    errors.append(repr(r))
            elif roll < 0.5 and mine:
                r = srv.request("PATCH", f"/v1/comments/{rng.choice(mine)}", {"content": "edited"},
                                token=me.token)
                if r.status not in (200, 404, 409):
                    errors.append(repr(r))
            else:
                cid = rng.choice(pool)
                kind = rng.choice(["like", "dislike", "none"])
                if kind == "none":
                    r = srv.request("DELETE", f"/v1/comments/{cid}/reaction", token=me.token)
                else:
                    r = srv.request("PUT", f"/v1/comments/{cid}/reaction", {"type": kind}, token=me.token)
                if r.status not in (202, 404):  # hidden or deleted meanwhile
                    errors.append(repr(r))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert len(ids) > 50
    assert srv.terminate() == 0
    r = run_verify(srv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 drifted; 0 reaction ops not yet applied" in r.stdout, r.stdout
