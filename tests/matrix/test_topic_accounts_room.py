"""A topic account and a Matrix room fed by the same publish: the topic account's follower
gets its Announce, signed with the topic account's key, while the room gets the
announcement, through the one queue; then the edit and the removal reach both. Against a
real homeserver (Synapse) and the recording remote server of the inbox tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedipress.app.keyfiles import generate_missing_keys
from fedipress.config import load_config
from fedipress.federation.keys import generate_private_key
from fedipress.federation.signatures import RemoteKey, verify_request
from fedipress.federation.store import Follower
from fedipress.federation.store.base import ACTIVITYPUB
from tests.conftest import write_site
from tests.inbox.remote import Recorded, RemoteServer, load_key, serve_in_thread
from tests.matrix.homeserver import Homeserver
from tests.publish.support import ACTOR, BLOG, Blog, add_followers

RUST = f"{BLOG}/ap/topics/rust/actor"
CAROL_INBOX = "/users/carol/inbox"
CONFIG = """
-- fedipress.yaml --
title: Topics and a room
base_url: https://blog.example/
fediverse:
  username: blog
  accounts:
    - username: rust
      tags: [rust]
matrix:
  homeserver: {homeserver}
  room: "{room}"
"""


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteServer]:
    app = RemoteServer({"alice": load_key("alice"), "carol": generate_private_key()})
    with serve_in_thread(app) as server:
        app.port = server.port  # type: ignore[attr-defined]
        yield app


@dataclass
class RoomBlog(Blog):
    token: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "FEDIPRESS_MATRIX_TOKEN": self.token}


def post(title: str, body: str, day: int, *tags: str) -> str:
    return f"---\ntitle: {title}\ndate: 2025-03-{day:02d}\ntags: [{', '.join(tags)}]\n---\n{body}\n"


def signer(recorded: Recorded, remote: RemoteServer, blog: Blog) -> str | None:
    """The actor whose published key verifies the POST (as a receiver checks it), or None."""
    pems = {
        ACTOR: (blog.root / "fedipress.pub.pem").read_text(),
        RUST: (blog.root / "fedipress.rust.pub.pem").read_text(),
    }
    keys = {f"{a}#main-key": RemoteKey(f"{a}#main-key", a, pem) for a, pem in pems.items()}

    async def fetch_key(key_id: str, refresh: bool) -> RemoteKey | None:
        return keys.get(key_id)

    result = asyncio.run(
        verify_request(
            recorded.method,
            recorded.path,
            recorded.headers,
            recorded.body,
            public_host=f"127.0.0.1:{remote.port}",
            public_scheme="http",
            fetch_key=fetch_key,
            now=datetime.now(UTC),
        )
    )
    return result.key_id.split("#")[0] if result.ok else None


def received(remote: RemoteServer) -> list[tuple[str, str, str]]:
    """(inbox path, type, actor) of each POST, sorted."""
    return sorted((p.path, p.json()["type"], p.json()["actor"]) for p in remote.posts())


def test_one_publish__boost_to_the_topic_follower_and_announcement_in_the_room(
    homeserver: Homeserver, remote: RemoteServer, tmp_path: Path
) -> None:
    # Given a blog with a topic account @rust and a Matrix room; alice follows the blog,
    # carol only @rust; a reader sits in the room
    remote.reset()
    tag = uuid.uuid4().hex[:8]
    bot, reader = homeserver.register(f"bot{tag}"), homeserver.register(f"reader{tag}")
    room = homeserver.create_room(bot, f"topics{tag}", invite=(reader,))
    root = write_site(
        tmp_path / "site", CONFIG.format(homeserver=homeserver.url, room=f"#topics{tag}:localhost")
    )
    (root / "content" / "posts").mkdir(parents=True)
    blog = RoomBlog(root)
    blog.token = bot.token
    blog.post("old", post("Old", "Before the room.", 1, "rust"))
    generate_missing_keys(root, load_config(root))
    store = blog.store()
    add_followers(store, remote, "alice")
    now = datetime.now(UTC)
    carol = remote.actor_id("carol")
    store.upsert_follower(
        Follower(
            carol, remote.inbox("carol"), None, "@carol", f"{carol}#f", "accepted", now, now, "rust"
        )
    )
    store.close()
    blog.build()
    blog.publish()  # the back catalogue: recorded, neither boosted nor announced
    assert remote.posts() == [] and homeserver.messages(reader, room) == []

    # When one publish has a new Rust post
    blog.post("crab", post("Crab", "Ferris says hi.", 2, "rust"))
    blog.build()
    out = blog.publish("--no-deliver")

    # Then it queued, in one go, the blog's Create for alice, @rust's Announce for carol and
    # the room's announcement, each on its channel and with its signer
    assert "1 new, 0 edited, 0 removed, 1 boost by a topic account" in out
    assert "1 Matrix messages" in out
    store = blog.store()
    try:
        queued = store.list_deliveries()
    finally:
        store.close()
    by_kind = sorted(
        (d.channel, d.inbox_url.removeprefix(remote.base), d.signed_by) for d in queued
    )
    room_url = f"{homeserver.url}/_matrix/client/v3/rooms/%23topics{tag}%3Alocalhost"
    assert by_kind == sorted(
        [
            (ACTIVITYPUB, "/inbox", f"{ACTOR}#main-key"),
            (ACTIVITYPUB, CAROL_INBOX, f"{RUST}#main-key"),
            ("matrix", room_url, None),
        ]
    )
    assert {d.state for d in queued} == {"pending"}

    # When the queue is sent
    blog.cli("deliver", str(blog.root))

    # Then carol received the Announce, signed by @rust, and alice the Create, signed by
    # the blog; the room has the announcement, from the bot
    assert received(remote) == [
        ("/inbox", "Create", ACTOR),
        (CAROL_INBOX, "Announce", RUST),
    ]
    for recorded in remote.posts():
        assert signer(recorded, remote, blog) == recorded.json()["actor"]
    (announce,) = remote.posts(CAROL_INBOX)
    assert announce.json()["object"] == f"{BLOG}/ap/posts/crab"
    (message,) = homeserver.messages(reader, room)
    assert message["sender"] == bot.user_id
    assert message["content"]["body"].startswith("Crab\n")
    assert message["content"]["body"].endswith("https://blog.example/posts/crab/")

    # When the post is edited, then removed: carol gets the Update, then the Delete and the
    # Undo of the boost; the room's announcement is edited, then redacted
    remote.requests.clear()
    blog.post("crab", post("Crab", "Ferris says hello.", 2, "rust"))
    blog.build()
    blog.publish()
    assert received(remote) == [("/inbox", "Update", ACTOR), (CAROL_INBOX, "Update", ACTOR)]
    (_original, edit) = homeserver.messages(reader, room)
    assert edit["content"]["m.relates_to"]["event_id"] == message["event_id"]

    remote.requests.clear()
    blog.remove("crab")
    blog.build()
    assert "1 removed, 1 boost undone" in blog.publish()
    assert received(remote) == [
        ("/inbox", "Delete", ACTOR),
        (CAROL_INBOX, "Delete", ACTOR),
        (CAROL_INBOX, "Undo", RUST),
    ]
    (undo,) = [p for p in remote.posts() if p.json()["type"] == "Undo"]
    assert signer(undo, remote, blog) == RUST
    original = homeserver.event(reader, room, message["event_id"])
    assert original["content"] == {}
    store = blog.store()
    try:
        stats = store.queue_stats()
        assert (stats.pending, stats.dead) == (0, 0)
    finally:
        store.close()
