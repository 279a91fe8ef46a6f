"""Announcing posts in a Matrix room, against a real homeserver (Synapse on 127.0.0.1): the
announcement arrives, an edit replaces it, a removal redacts it, and a sender killed in the
middle of a request posts nothing twice once restarted."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from fedipress.federation.matrix import Job
from tests.matrix.homeserver import Homeserver, User
from tests.matrix.relay import relay_to
from tests.publish.support import Blog, post_text

ROOT = Path(__file__).parents[2]
WORKER = ROOT / "tests" / "publish" / "deliver_worker.py"
SEND = "/send/m.room.message/"


@dataclass
class MatrixBlog(Blog):
    token: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "FEDIPRESS_MATRIX_TOKEN": self.token}


def matrix_blog(root: Path, homeserver_url: str, room: str, bot: User, **posts: str) -> MatrixBlog:
    blog = MatrixBlog.create(root, **posts)
    assert isinstance(blog, MatrixBlog)
    blog.token = bot.token
    with (root / "fedipress.yaml").open("a") as config:
        config.write(f'matrix:\n  homeserver: {homeserver_url}\n  room: "{room}"\n')
    return blog


def people(homeserver: Homeserver) -> tuple[User, User]:
    tag = uuid.uuid4().hex[:8]
    return homeserver.register(f"bot{tag}"), homeserver.register(f"reader{tag}")


def test_announcement__arrives_is_edited_and_redacted(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    bot, reader = people(homeserver)
    alias = f"blog{uuid.uuid4().hex[:8]}"
    room = homeserver.create_room(bot, alias, invite=(reader,))
    blog = matrix_blog(
        tmp_path / "blog",
        homeserver.url,
        f"#{alias}:localhost",
        bot,
        old=post_text("An old post", "Written before the room existed.", 1),
    )
    blog.build()
    assert "Matrix" not in blog.publish()  # the back catalogue is recorded, not announced
    assert homeserver.messages(reader, room) == []

    blog.post("hello", post_text("Hello <Matrix> & co", "The *first* paragraph.\n\nMore.", 2))
    blog.build()
    assert "1 Matrix messages" in blog.publish()
    (message,) = homeserver.messages(reader, room)
    link = "https://blog.example/posts/hello/"
    assert message["sender"] == bot.user_id
    assert message["content"]["msgtype"] == "m.notice"
    assert message["content"]["body"] == f"Hello <Matrix> & co\nThe first paragraph.\n{link}"
    assert message["content"]["format"] == "org.matrix.custom.html"
    formatted = message["content"]["formatted_body"]
    assert f'<a href="{link}"><strong>Hello &lt;Matrix&gt; &amp; co</strong></a>' in formatted
    assert "<p>The first paragraph.</p>" in formatted

    blog.post("hello", post_text("Hello <Matrix> & co", "A rewritten paragraph.", 2))
    blog.build()
    assert "1 edited" in blog.publish()
    first, edit = homeserver.messages(reader, room)
    assert first["event_id"] == message["event_id"]
    assert edit["content"]["m.relates_to"] == {
        "rel_type": "m.replace",
        "event_id": message["event_id"],
    }
    assert edit["content"]["m.new_content"]["body"] == (
        f"Hello <Matrix> & co\nA rewritten paragraph.\n{link}"
    )
    # The homeserver applies it: the original now carries its replacement.
    original = homeserver.event(reader, room, message["event_id"])
    assert original["unsigned"]["m.relations"]["m.replace"]["event_id"] == edit["event_id"]

    blog.remove("hello")
    blog.build()
    assert "1 removed" in blog.publish()
    original = homeserver.event(reader, room, message["event_id"])
    assert original["content"] == {}
    assert original["unsigned"]["redacted_because"]["sender"] == bot.user_id

    blog.build()
    assert "Matrix" not in blog.publish()  # nothing changed: nothing queued
    assert len(homeserver.messages(reader, room)) == 2


def worker(blog: MatrixBlog) -> subprocess.Popen[str]:
    """`fedipress deliver` as a process of its own (a lease of 1 s, so a restart need not
    wait two minutes for the dead worker's lease)."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(blog.root), "1", "10", "4"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **blog.env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_announcement__sender_killed_mid_send_posts_once(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    bot, reader = people(homeserver)
    room = homeserver.create_room(bot, invite=(reader,))
    with relay_to(homeserver.port) as relay:
        blog = matrix_blog(tmp_path / "blog", relay.url, room, bot)
        blog.build()
        blog.publish()
        blog.post("crash", post_text("Crash test", "Sent exactly once.", 3))
        blog.build()
        assert "1 Matrix messages" in blog.publish("--no-deliver")

        # The homeserver takes the message; its answer never reaches the worker, killed then.
        relay.hold(SEND)
        running = worker(blog)
        assert relay.held.wait(30), running.communicate(timeout=5)
        running.send_signal(signal.SIGKILL)
        running.communicate(timeout=10)
        assert running.returncode == -signal.SIGKILL
        assert len(homeserver.messages(reader, room)) == 1
        store = blog.store()
        try:
            assert store.queue_stats().pending == 1  # the outcome was never recorded
        finally:
            store.close()

        restarted = worker(blog)
        _, err = restarted.communicate(timeout=60)
        assert restarted.returncode == 0, err

    (message,) = homeserver.messages(reader, room)
    assert message["content"]["body"].startswith("Crash test\nSent exactly once.")
    sends = [line for line in relay.requests if SEND in line]
    assert len(sends) == 2 and sends[0] == sends[1]  # the same transaction id, sent twice
    store = blog.store()
    try:
        stats = store.queue_stats()
        assert (stats.pending, stats.done, stats.dead) == (0, 1, 0)
        (row,) = store.list_deliveries()
        announcement = store.get_announcement(_announcement_id(row.body))
        assert announcement is not None
        assert announcement.remote_id == message["event_id"]  # the repeat's answer: the same event
    finally:
        store.close()


def _announcement_id(body: str) -> str:
    return Job.from_json(body).announcement


def test_publish_without_token__queues_and_says_who_sends(tmp_path: Path) -> None:
    blog = matrix_blog(tmp_path / "blog", "http://127.0.0.1:9", "#blog:localhost", User("", ""))
    blog.build()
    blog.publish()
    blog.post("hello", post_text("Hello", "Queued for later.", 2))
    blog.build()

    out = blog.publish()

    assert "1 Matrix messages" in out
    assert "FEDIPRESS_MATRIX_TOKEN is not set" in out
    store = blog.store()
    try:
        (row,) = store.list_deliveries()
        assert (row.channel, row.state, row.attempts) == ("matrix", "pending", 0)
    finally:
        store.close()
