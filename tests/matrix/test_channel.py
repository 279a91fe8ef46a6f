"""The Matrix channel's edges, against the real homeserver, with the sender's clock in hand:
an edit waits for its announcement's event id, a given-up announcement takes its edits
with it, a refusal is final, and a sender without the token leaves the room's rows alone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fedipress.app.publish import queue_changes
from fedipress.app.wiring import Federation
from fedipress.config import Config, parse_config
from fedipress.documents.activitypub import build_object
from fedipress.documents.post import Post
from fedipress.documents.urls import Urls
from fedipress.federation.delivery import host_of
from fedipress.federation.keys import SigningKey, generate_private_key
from fedipress.federation.matrix import WAITING
from fedipress.federation.publish_plan import LiveObject
from fedipress.federation.store import Store, open_store
from tests.inbox.remote import serve_in_thread
from tests.matrix.homeserver import Homeserver, User

T0 = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    config: Config
    store: Store
    clock: Clock = field(default_factory=Clock)

    def federation(self, token: str) -> Federation:
        signer = SigningKey(Urls(self.config).key_id(), generate_private_key())
        return Federation(
            self.config,
            self.store,
            signer,
            allow_private=True,
            now=self.clock,
            matrix_token=token,
        )

    def live(self, body: str) -> list[LiveObject]:
        post = Post(
            kind="post",
            source="content/posts/walk.md",
            title="A walk",
            slug="walk",
            url="/posts/walk/",
            uid="walk",
            date=T0 - timedelta(days=1),
            updated=None,
            tags=(),
            summary="",
            description="",
            content=f"<p>{body}</p>",
        )
        document = build_object(self.config, post)
        return [LiveObject(str(document["id"]), "walk", document)]

    def announce_then_edit(self) -> None:
        """The first publish announces the post (due at T0 + 1 s); an edit is queued due
        at T0, so a sender taking one row at a time, at T0 + 1 s, sends the edit first."""
        queue_changes(self.config, self.store, self.live("First."), T0 + timedelta(seconds=1), 1)
        queue_changes(self.config, self.store, self.live("Second."), T0)
        self.clock.now = T0 + timedelta(seconds=1)


@pytest.fixture
def people(homeserver: Homeserver) -> tuple[User, User]:
    tag = uuid.uuid4().hex[:8]
    return homeserver.register(f"bot{tag}"), homeserver.register(f"reader{tag}")


def make_site(tmp_path: Path, homeserver: Homeserver, room: str) -> Iterator[Site]:
    config = parse_config(
        "title: Blog\nbase_url: https://blog.example/\nfediverse: {username: blog}\n"
        f"matrix: {{homeserver: '{homeserver.url}', room: '{room}'}}\n"
    )
    store = open_store(None, tmp_path)
    try:
        yield Site(config, store)
    finally:
        store.close()


@pytest.mark.anyio
async def test_edit_waits_for_its_announcement(
    homeserver: Homeserver, people: tuple[User, User], tmp_path: Path
) -> None:
    bot, reader = people
    room = homeserver.create_room(bot, invite=(reader,))
    for site in make_site(tmp_path, homeserver, room):
        site.announce_then_edit()
        async with site.federation(bot.token) as federation:
            federation.sender.batch = 1
            edit, announce = await federation.sender.drain()

            assert (edit.verdict, edit.error, edit.waiting) == ("retry", WAITING, True)
            assert announce.verdict == "done" and announce.remote_id
            host = site.store.get_host(host_of(edit.inbox))
            assert host is None or host.failure_days == ()  # waiting is no failure
            assert len(homeserver.messages(reader, room)) == 1

            site.clock.now = T0 + timedelta(minutes=5)
            (sent,) = await federation.sender.drain()

        assert sent.verdict == "done"
        first, second = homeserver.messages(reader, room)
        assert first["event_id"] == announce.remote_id
        assert first["content"]["body"].startswith("A walk\nFirst.")
        assert second["content"]["m.relates_to"]["event_id"] == announce.remote_id
        assert second["content"]["m.new_content"]["body"].startswith("A walk\nSecond.")


@pytest.mark.anyio
async def test_given_up_announcement_takes_its_edit_along(
    homeserver: Homeserver, people: tuple[User, User], tmp_path: Path
) -> None:
    bot, _ = people
    for site in make_site(tmp_path, homeserver, f"#missing{uuid.uuid4().hex[:8]}:localhost"):
        site.announce_then_edit()
        async with site.federation(bot.token) as federation:
            federation.sender.batch = 1
            edit, announce = await federation.sender.drain()
            assert edit.waiting
            assert (announce.status, announce.verdict) == (404, "dead")
            assert "M_NOT_FOUND" in announce.error and "#missing" in announce.error

            site.clock.now = T0 + timedelta(minutes=5)
            (edit,) = await federation.sender.drain()

        assert (edit.verdict, edit.error) == ("dead", "the announcement was never sent")
        assert site.store.queue_stats().dead == 2


@pytest.mark.anyio
async def test_not_in_the_room__refused_for_good(
    homeserver: Homeserver, people: tuple[User, User], tmp_path: Path
) -> None:
    bot, reader = people
    room = homeserver.create_room(reader)  # the bot was never invited
    for site in make_site(tmp_path, homeserver, room):
        queue_changes(site.config, site.store, site.live("First."), T0, 1)
        async with site.federation(bot.token) as federation:
            (outcome,) = await federation.sender.drain()

        assert (outcome.status, outcome.verdict) == (403, "dead")
        assert "M_FORBIDDEN" in outcome.error
        assert homeserver.messages(reader, room) == []


@pytest.mark.anyio
async def test_sender_without_token_leaves_the_rooms_rows(
    homeserver: Homeserver, people: tuple[User, User], tmp_path: Path
) -> None:
    bot, reader = people
    room = homeserver.create_room(bot, invite=(reader,))
    for site in make_site(tmp_path, homeserver, room):
        result = queue_changes(site.config, site.store, site.live("First."), T0, 1)
        assert (result.queued, result.announcements) == (1, 1)  # no followers: only the room
        async with site.federation("") as federation:
            assert await federation.sender.drain() == []
        assert site.store.queue_stats().pending == 1
        async with site.federation(bot.token) as federation:
            (outcome,) = await federation.sender.drain()
        assert outcome.verdict == "done"
        assert len(homeserver.messages(reader, room)) == 1


async def _rate_limited(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A homeserver that is busy: M_LIMIT_EXCEEDED with retry_after_ms (Synapse's answer
    when its rate limits are on; the test homeserver has them off)."""
    while (await receive()).get("more_body"):
        pass
    body = json.dumps({"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 90_000}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.anyio
async def test_rate_limited__retried_no_sooner_than_asked(tmp_path: Path) -> None:
    with serve_in_thread(_rate_limited) as server:
        config = parse_config(
            "title: Blog\nbase_url: https://blog.example/\nfediverse: {username: blog}\n"
            f"matrix: {{homeserver: 'http://127.0.0.1:{server.port}', room: '!room:localhost'}}\n"
        )
        store = open_store(None, tmp_path)
        try:
            site = Site(config, store)
            queue_changes(config, store, site.live("First."), T0, 1)
            async with site.federation("token") as federation:
                (outcome,) = await federation.sender.drain()
            (row,) = store.list_deliveries()
        finally:
            store.close()

    assert (outcome.status, outcome.verdict) == (429, "retry")
    assert "M_LIMIT_EXCEEDED" in outcome.error
    assert row.state == "pending" and row.next_attempt_at >= T0 + timedelta(seconds=90)
