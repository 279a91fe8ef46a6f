"""What the inbox refuses (FEDERATION.md §4.1-4.4, §6.3), and that a refusal changes nothing:
each test compares the rows of followers, interactions, flags, deliveries and seen ids."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from fedipress.federation.signatures import sign_request
from tests.inbox.harness import BLOG, POST, Inbox
from tests.inbox.remote import AS, INBOX_URL

pytestmark = pytest.mark.anyio
LD_JSON = f'application/ld+json; profile="{AS}"'


@pytest.fixture
async def seeded(sqlite_inbox: Inbox) -> AsyncIterator[Inbox]:
    """An inbox with some state already: alice follows and liked a post."""
    await sqlite_inbox.followed_by("alice")
    assert (await sqlite_inbox.post(sqlite_inbox.activity("Like", POST))).status_code == 202
    yield sqlite_inbox


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on: the remote is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


async def test_content_type__not_activity_json_is_415(seeded: Inbox) -> None:
    # Given a signed Like sent as plain JSON, and as text
    like = seeded.activity("Like", POST)
    before = seeded.db.counts()
    for content_type in ("application/json", "text/plain"):
        # When it is posted
        response = await seeded.post(like, content_type=content_type)
        # Then it is refused as an unsupported media type, with nothing stored
        assert response.status_code == 415
        assert "error" in response.json()
    assert seeded.db.counts() == before


async def test_content_type__ld_json_with_the_as_profile_is_accepted(seeded: Inbox) -> None:
    # Given a Like sent as application/ld+json with the ActivityStreams profile
    like = seeded.activity("Like", f"{POST}2")
    # When it is posted
    response = await seeded.post(like, content_type=LD_JSON)
    # Then it is handled like activity+json
    assert response.status_code == 202
    assert like["id"] in [i.id for i in seeded.store.list_interactions()]


async def test_body__over_one_megabyte_is_413(seeded: Inbox) -> None:
    # Given a signed activity padded past Mastodon's 1 MB limit
    like = seeded.activity("Like", POST, content="x" * 1_000_001)
    before = seeded.db.counts()
    # When it is posted
    response = await seeded.post(like)
    # Then it is refused as too large
    assert response.status_code == 413
    assert seeded.db.counts() == before


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"\xff\xfe", b'[{"type": "Like"}]', b'"Like"'],
    ids=["bad-json", "not-utf8", "array", "string"],
)
async def test_body__not_a_json_object_is_400(seeded: Inbox, raw: bytes) -> None:
    before = seeded.db.counts()
    # When a signed body that is not a JSON object arrives
    response = await seeded.post(None, raw=raw)
    # Then it is malformed (Mastodon does not retry a 400)
    assert response.status_code == 400
    assert seeded.db.counts() == before


@pytest.mark.parametrize("missing", ["@context", "type", "actor", "id"])
async def test_activity__missing_a_required_member_is_400(seeded: Inbox, missing: str) -> None:
    # Given a signed Like lacking one required member
    like = seeded.activity("Like", POST)
    del like[missing]
    before = seeded.db.counts()
    # When it is posted
    response = await seeded.post(like)
    # Then it is refused as malformed
    assert response.status_code == 400
    assert seeded.db.counts() == before


async def test_activity__context_without_activitystreams_is_400(seeded: Inbox) -> None:
    like = seeded.activity("Like", POST)
    like["@context"] = ["https://w3id.org/security/v1"]
    before = seeded.db.counts()
    assert (await seeded.post(like)).status_code == 400
    assert seeded.db.counts() == before


async def test_signature__missing_is_401(seeded: Inbox) -> None:
    # Given an unsigned Like
    like = seeded.activity("Like", f"{POST}2")
    before = seeded.db.counts()
    # When it is posted
    response = await seeded.client.post(
        "/ap/inbox", content=json.dumps(like), headers={"Content-Type": "application/activity+json"}
    )
    # Then it is refused with a JSON error (senders double-knock on 401, FEDERATION.md §6.3)
    assert response.status_code == 401
    assert "error" in response.json()
    assert seeded.db.counts() == before


async def test_signature__tampered_body_is_401_and_the_id_not_marked_seen(seeded: Inbox) -> None:
    # Given a Like whose body was changed after signing
    like = seeded.activity("Like", f"{POST}2")
    body = json.dumps(like).encode()
    headers = seeded.remote.sign("alice", body)
    tampered = body.replace(b"/posts/x2", b"/posts/x3")
    before = seeded.db.counts()
    # When it is posted
    response = await seeded.client.post("/ap/inbox", content=tampered, headers=headers)
    # Then it is refused and nothing changed
    assert response.status_code == 401
    assert seeded.db.counts() == before
    # And the genuine activity with the same id is still handled afterwards
    assert (await seeded.post(like)).status_code == 202
    assert like["id"] in [i.id for i in seeded.store.list_interactions()]


async def test_signature__date_two_hours_old_is_401(seeded: Inbox) -> None:
    # Given a Like signed two hours ago (Mastodon allows 5 min + 1 h of skew, FEDERATION.md §4.2)
    like = seeded.activity("Like", f"{POST}2")
    old = datetime.now(UTC) - timedelta(hours=2)
    before = seeded.db.counts()
    # When it is posted
    response = await seeded.post(like, now=old)
    # Then it is refused
    assert response.status_code == 401
    assert seeded.db.counts() == before


async def test_signature__another_actors_key_is_401(seeded: Inbox) -> None:
    # Given bob signs an Undo whose actor is alice (impersonation)
    alice = seeded.remote.actor_id("alice")
    follow_id = seeded.store.get_follower(alice).follow_activity_id
    undo = seeded.activity("Undo", follow_id)
    before = seeded.db.counts()
    # When it is posted with bob's key
    response = await seeded.post(undo, key_of="bob")
    # Then it is refused, and alice still follows
    assert response.status_code == 401
    assert seeded.db.counts() == before
    assert seeded.store.get_follower(alice) is not None


async def test_signature__key_unreachable_is_503(seeded: Inbox, closed_port: int) -> None:
    # Given an actor on a server that is down, so its key cannot be fetched
    actor = f"http://127.0.0.1:{closed_port}/users/carol"
    follow = {
        "@context": AS,
        "id": f"{actor}#f1",
        "type": "Follow",
        "actor": actor,
        "object": f"{BLOG}/ap/actor",
    }
    body = json.dumps(follow).encode()
    key = seeded.remote.keys["alice"]
    now = datetime.now(UTC)
    headers = sign_request("POST", INBOX_URL, {}, body, f"{actor}#main-key", key, now)
    before = seeded.db.counts()
    # When its Follow arrives
    response = await seeded.client.post("/ap/inbox", content=body, headers=headers)
    # Then the inbox asks the sender to retry later
    assert response.status_code == 503
    assert seeded.db.counts() == before


async def test_inbox__get_is_405(seeded: Inbox) -> None:
    response = await seeded.client.get("/ap/inbox")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
