"""A delivery worker killed with SIGKILL in the middle of a fan-out loses nothing: after a
restart every inbox has the activity, copies beyond the first are the same activity (same
id, same body), and only deliveries that were sent but not yet recorded are sent twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.inbox.remote import Recorded, RemoteServer, Reply
from tests.publish.support import Blog, add_followers, post_text, verify_blog_post

WORKER = Path(__file__).with_name("deliver_worker.py")
INBOXES = 300
BATCH = 50  # rows claimed, sent and recorded together
KILL_AFTER = BATCH + 20  # arrivals: the first batch is recorded, the second is in flight


def worker(blog: Blog) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(blog.root), "1", str(BATCH)],
        env={"PATH": "/usr/bin:/bin", **blog.env},
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def complete(posts: list[Recorded]) -> list[Recorded]:
    """POSTs whose whole body arrived (a request cut off by the kill may be recorded half)."""
    whole = []
    for post in posts:
        try:
            json.loads(post.body)
        except ValueError:
            continue
        whole.append(post)
    return whole


@pytest.mark.slow
def test_deliver__killed_mid_fan_out_and_restarted_loses_nothing(
    tmp_path: Path, remote: RemoteServer, database_url: str | None
) -> None:
    # Given 300 followers, each with its own inbox on a slow server (20 ms an answer)
    blog = Blog.create(
        tmp_path / "site", database_url=database_url, hello=post_text("Hello", "Old.", 1)
    )
    names = [f"u{n:03d}" for n in range(INBOXES)]
    paths = [f"/users/{name}/inbox" for name in names]
    for path in paths:
        remote.script(path, Reply(202, delay=0.02))
    store = blog.store()
    with store.transaction():
        add_followers(store, remote, *names, shared=False)
    store.close()
    # and a new post queued for all of them
    blog.build()
    blog.publish()
    blog.post("news", post_text("News", "Fanned out to 300 inboxes.", 2))
    blog.build()
    assert "300 deliveries to 300 inboxes queued" in blog.publish("--no-deliver")

    # When a worker starts the fan-out and is killed with SIGKILL part of the way through
    first = worker(blog)
    deadline = time.monotonic() + 20
    while len(remote.posts()) < KILL_AFTER:
        assert first.poll() is None, f"the worker ended early: {first.communicate()}"
        assert time.monotonic() < deadline, f"{len(remote.posts())} deliveries arrived"
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL
    arrived = Counter(p.path for p in complete(remote.posts()))
    store = blog.store()
    stats = store.queue_stats()
    recorded_done = {d.inbox_url for d in store.list_deliveries(state="done", limit=INBOXES)}
    store.close()
    # (the kill came mid-way: some deliveries recorded, some arrived unrecorded, some not sent)
    assert BATCH <= len(recorded_done) < len(arrived) < INBOXES
    assert (stats.pending, stats.done, stats.dead) == (
        INBOXES - len(recorded_done),
        len(recorded_done),
        0,
    )

    # When a worker starts again (the dead worker's one-second leases expire)
    second = worker(blog)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err

    # Then every inbox has the Create, and nothing else
    posts = complete(remote.posts())
    news = blog.object_id("news") + "#create"
    assert {p.json()["id"] for p in posts} == {news}
    copies = Counter(p.path for p in posts)
    assert set(copies) == set(paths), "an inbox was never delivered to"
    # recorded deliveries were not sent again; those sent but unrecorded were, once
    for path in paths:
        expected = 1 if remote.base + path in recorded_done else arrived[path] + 1
        assert copies[path] == expected, path
    assert sum(copies.values()) > INBOXES  # the crash did cause repeats
    # and every copy of an inbox's delivery is the same activity, signed by the blog
    by_path: dict[str, set[bytes]] = {}
    for post in posts:
        by_path.setdefault(post.path, set()).add(post.body)
    assert all(len(bodies) == 1 for bodies in by_path.values())
    for post in posts[:: len(posts) // 20]:
        verify_blog_post(post, remote, blog.public_pem)
    # and the store shows every row done
    store = blog.store()
    stats = store.queue_stats()
    store.close()
    assert (stats.pending, stats.done, stats.dead) == (0, INBOXES, 0)
