"""Key rotation, rewritten paths and serverless sending."""

from __future__ import annotations

import json

import httpx
import pytest

from fedipress.adapters.asgi import InboxASGI
from fedipress.federation.keys import generate_private_key
from tests.inbox.harness import ACTOR, Inbox

pytestmark = pytest.mark.anyio


async def test_update_person__a_rotated_key_works_at_once(sqlite_inbox: Inbox) -> None:
    # Given alice follows, so her key is cached (in memory and in the store)
    inbox = sqlite_inbox
    await inbox.followed_by("alice")
    old_key = inbox.remote.keys["alice"]
    new_key = generate_private_key()
    inbox.remote.keys = {**inbox.remote.keys, "alice": new_key}
    # When she announces the new key in an Update signed with the old one
    update = inbox.activity("Update", inbox.remote.actor("alice"))
    body = json.dumps(update).encode()
    inbox.remote.keys = {**inbox.remote.keys, "alice": old_key}
    headers = inbox.remote.sign("alice", body)
    inbox.remote.keys = {**inbox.remote.keys, "alice": new_key}
    response = await inbox.client.post("/ap/inbox", content=body, headers=headers)
    assert response.status_code == 202
    # Then a Like signed with the new key verifies without waiting for a cache to expire
    like = inbox.activity("Like", "https://blog.example/ap/posts/x")
    assert (await inbox.post(like)).status_code == 202
    assert inbox.store.get_interaction(like["id"]) is not None


async def test_post__signature_checked_against_the_public_path(sqlite_inbox: Inbox) -> None:
    # Given a platform that rewrites /ap/inbox to its function path before our code sees it
    inbox = sqlite_inbox
    follow = inbox.follow("alice")
    body = json.dumps(follow).encode()
    headers = inbox.remote.sign("alice", body)  # signed for https://blog.example/ap/inbox
    # When the request arrives at the rewritten path
    response = await inbox.client.post("/prod/ap/inbox", content=body, headers=headers)
    # Then it verifies against the public inbox URL and is handled
    assert response.status_code == 202
    assert inbox.store.get_follower(inbox.remote.actor_id("alice")) is not None


async def test_serverless__the_accept_is_sent_before_the_answer(sqlite_inbox: Inbox) -> None:
    # Given the adapter in serverless mode (no background sender between requests)
    inbox = sqlite_inbox
    app = InboxASGI(inbox.service, serverless=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://blog.example") as client:
        follow = inbox.follow("bob")
        body = json.dumps(follow).encode()
        # When bob's Follow is answered
        response = await client.post(
            "/ap/inbox", content=body, headers=inbox.remote.sign("bob", body)
        )
    assert response.status_code == 202
    # Then the Accept already reached bob's inbox: nothing was left for later
    posts = [r for r in inbox.remote.requests if r.method == "POST"]
    assert [json.loads(r.body)["type"] for r in posts] == ["Accept"]
    assert json.loads(posts[0].body)["object"]["id"] == follow["id"]
    assert json.loads(posts[0].body)["actor"] == ACTOR
