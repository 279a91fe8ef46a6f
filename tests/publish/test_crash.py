"""Senders as processes. A delivery worker killed with SIGKILL in the middle of a fan-out
loses nothing: after a restart every inbox has the activity, copies beyond the first are the
same activity (same id, same body), and only the requests in flight at the kill are sent
twice: each outcome is recorded before its request's slot is freed, so at most PER_HOST per
host. And `fedipress deliver --loop` prunes old rows on its schedule."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.inbox.remote import Recorded, RemoteServer, Reply
from tests.inbox.test_pruning import assert_pruned, seed
from tests.publish.support import Blog, add_followers, post_text, verify_blog_post

WORKER = Path(__file__).with_name("deliver_worker.py")
ROOT = Path(__file__).parents[2]
CLI = "from fedipress.cli import main; main()"
INBOXES = 300
BATCH = 50  # rows claimed at once: what a kill re-sent when outcomes were recorded per batch
PER_HOST = 4  # concurrent requests per host; every inbox here is on one host
KILLS = (40, 150, 260)  # arrivals of each round's post when its worker is killed


def worker(blog: Blog) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(blog.root), "1", str(BATCH), str(PER_HOST)],
        # This checkout's fedipress, not whichever one the environment has installed.
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **blog.env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def complete(posts: list[Recorded], activity_id: str | None = None) -> list[Recorded]:
    """POSTs whose whole body arrived (a request cut off by the kill may be recorded half),
    of one activity or all."""
    whole = []
    for post in posts:
        try:
            document = json.loads(post.body)
        except ValueError:
            continue
        if activity_id in (None, document["id"]):
            whole.append(post)
    return whole


def kill_mid_fan_out(blog: Blog, remote: RemoteServer, activity_id: str, arrivals: int) -> None:
    """Start a worker and SIGKILL it once `arrivals` copies of the activity have arrived."""
    running = worker(blog)
    deadline = time.monotonic() + 20
    while len(complete(remote.posts(), activity_id)) < arrivals:
        assert running.poll() is None, f"the worker ended early: {running.communicate()}"
        assert time.monotonic() < deadline, f"{len(remote.posts())} deliveries arrived"
        time.sleep(0.005)
    running.send_signal(signal.SIGKILL)
    running.communicate(timeout=10)
    assert running.returncode == -signal.SIGKILL
    settle(remote)


def settle(remote: RemoteServer) -> None:
    """Wait until the server has read what the dead worker's sockets still held: no request
    being answered, and no new one recorded for a while."""
    deadline = time.monotonic() + 10
    seen, quiet_since = len(remote.requests), time.monotonic()
    while remote.active or time.monotonic() - quiet_since < 0.3:
        assert time.monotonic() < deadline, "the server never went quiet"
        if len(remote.requests) != seen:
            seen, quiet_since = len(remote.requests), time.monotonic()
        time.sleep(0.01)


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
    blog.build()
    blog.publish()
    duplicates_per_kill = []
    for round, kill_at in enumerate(KILLS):
        # and a new post queued for all of them
        slug = f"news{round}"
        blog.post(slug, post_text(f"News {round}", "Fanned out to 300 inboxes.", 2 + round))
        blog.build()
        assert "300 deliveries to 300 inboxes queued" in blog.publish("--no-deliver")
        news = blog.object_id(slug) + "#create"

        # When a worker starts the fan-out and is killed with SIGKILL part of the way through
        kill_mid_fan_out(blog, remote, news, kill_at)
        arrived = Counter(p.path for p in complete(remote.posts(), news))
        store = blog.store()
        stats = store.queue_stats()
        rows = store.list_deliveries(state="done", limit=INBOXES * len(KILLS))
        recorded_done = {d.inbox_url for d in rows if d.activity_id == news}
        store.close()
        # (the kill came mid-way: each inbox got at most one copy, every recorded one arrived)
        assert set(arrived.values()) == {1}
        assert recorded_done <= {remote.base + path for path in arrived}
        assert 0 < len(recorded_done) <= len(arrived) < INBOXES
        assert (stats.pending, stats.dead) == (INBOXES - len(recorded_done), 0)
        # Then what arrived but was not recorded, the requests in flight, is within the limit
        unrecorded = {path for path in arrived if remote.base + path not in recorded_done}
        duplicates_per_kill.append(len(unrecorded))
        assert len(unrecorded) <= PER_HOST, f"{len(unrecorded)} sent but not recorded"

        # When a worker starts again (the dead worker's one-second leases expire)
        second = worker(blog)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 0, err

        # Then every inbox has the Create, and only the unrecorded ones got it twice
        copies = Counter(p.path for p in complete(remote.posts(), news))
        assert set(copies) == set(paths), "an inbox was never delivered to"
        for path in paths:
            assert copies[path] == 1 + (path in unrecorded), path
    print(f"duplicates per kill: {duplicates_per_kill}")

    # And every copy of an inbox's delivery is the same activity, signed by the blog
    posts = complete(remote.posts())
    assert {p.json()["id"] for p in posts} == {
        blog.object_id(f"news{round}") + "#create" for round in range(len(KILLS))
    }
    by_delivery: dict[tuple[str, str], set[bytes]] = {}
    for post in posts:
        by_delivery.setdefault((post.path, post.json()["id"]), set()).add(post.body)
    assert all(len(bodies) == 1 for bodies in by_delivery.values())
    for post in posts[:: len(posts) // 20]:
        verify_blog_post(post, remote, blog.public_pem)
    # and the store shows every row done
    store = blog.store()
    stats = store.queue_stats()
    store.close()
    assert (stats.pending, stats.done, stats.dead) == (0, INBOXES * len(KILLS), 0)


def test_deliver_loop__prunes_rows_past_the_retention(
    tmp_path: Path, database_url: str | None
) -> None:
    # Given a site whose store has rows a day past the retention and a day within it
    blog = Blog.create(tmp_path / "site", database_url=database_url)
    store = blog.store()
    now = datetime.now(UTC)
    seeded = seed(store, now)
    # When `fedipress deliver --loop` runs, until its SIGTERM
    loop = subprocess.Popen(
        [sys.executable, "-c", CLI, "deliver", "--loop", str(blog.root)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **blog.env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while store.get_delivery(seeded.old_done) is not None:
            assert loop.poll() is None, loop.communicate()
            assert time.monotonic() < deadline, "the old finished delivery was never pruned"
            time.sleep(0.05)
    finally:
        loop.send_signal(signal.SIGTERM)
        _, err = loop.communicate(timeout=10)
    assert loop.returncode == 0, err
    # Then the old seen id and finished delivery are gone; the rest stays
    assert_pruned(store, seeded, now)
    store.close()
