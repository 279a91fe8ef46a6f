"""The shared inbox serves every account of the site (FEDERATION.md §13): a Follow names the
account it follows, the Accept is signed by that account, followers are kept per account,
blocks and deletions apply to all; and follows of an account that moved here are accepted
under manual approval when they come from its followers (FEDERATION.md §8.4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fedipress.adapters.asgi import InboxASGI
from fedipress.config import Config, FediverseConfig, TopicAccount
from fedipress.federation.keys import RSAPrivateKey, SigningKey, generate_private_key, public_pem
from fedipress.federation.signatures import RemoteKey, verify_request
from fedipress.federation.store.base import Follower, PublishedObject
from fedipress.inbox.service import InboxService
from tests.inbox.harness import ACTOR, AS, BLOG, POST, Clock, Database, Inbox
from tests.inbox.remote import Recorded, RemoteServer

pytestmark = pytest.mark.anyio
RUST = f"{BLOG}/ap/topics/rust/actor"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def rust_key() -> RSAPrivateKey:
    return generate_private_key()


def accounts_config(**fediverse: Any) -> Config:
    rust = TopicAccount("rust", ("rust",), **fediverse.pop("rust", {}))
    return Config.for_test(
        fediverse=FediverseConfig(username="blog", accounts=(rust,), **fediverse)
    )


async def open_accounts_inbox(
    db: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    rust_key: RSAPrivateKey,
    config: Config,
) -> Inbox:
    clock = Clock()
    service = InboxService.for_site(
        config,
        db.store,
        SigningKey(f"{ACTOR}#main-key", blog_key),
        allow_private=True,
        now=clock,
        account_keys={"rust": SigningKey(f"{RUST}#main-key", rust_key)},
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=InboxASGI(service)), base_url=BLOG)
    return Inbox(service, client, db, remote, blog_key, clock)


@pytest.fixture
def config() -> Config:
    return accounts_config()


@pytest.fixture
async def inbox(
    database: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    rust_key: RSAPrivateKey,
    config: Config,
) -> AsyncIterator[Inbox]:
    inbox = await open_accounts_inbox(database, remote, blog_key, rust_key, config)
    yield inbox
    await inbox.client.aclose()
    await inbox.service.aclose()


async def signed_by(recorded: Recorded, inbox: Inbox, keys: dict[str, RSAPrivateKey]) -> str:
    """The key id that signed a POST the blog made, checked with fedipress's verifier."""
    known = {f"{actor}#main-key": (actor, key) for actor, key in keys.items()}

    async def fetch_key(key_id: str, refresh: bool) -> RemoteKey | None:
        if key_id not in known:
            return None
        actor, key = known[key_id]
        return RemoteKey(key_id, actor, public_pem(key))

    result = await verify_request(
        recorded.method,
        recorded.path,
        recorded.headers,
        recorded.body,
        public_host=f"127.0.0.1:{inbox.remote.port}",
        public_scheme="http",
        fetch_key=fetch_key,
        now=inbox.clock(),
    )
    assert result.ok, result.reason
    return result.key_id


# --- following a topic account -------------------------------------------------------------


async def test_follow__of_a_topic_account_is_kept_for_it_and_accepted_by_it(
    inbox: Inbox, rust_key: RSAPrivateKey
) -> None:
    # Given alice follows the topic account @rust, through the shared inbox
    follow = inbox.activity("Follow", RUST)
    assert (await inbox.post(follow)).status_code == 202
    alice = inbox.remote.actor_id("alice")
    # Then she follows @rust, not the main account
    stored = inbox.store.get_follower(alice, "rust")
    assert stored is not None and stored.state == "accepted" and stored.account == "rust"
    assert inbox.store.get_follower(alice) is None
    assert inbox.store.count_followers(account="rust") == 1
    assert inbox.store.count_followers() == 0
    # and the Accept comes from @rust, signed with @rust's key, embedding her Follow
    (accept,) = await inbox.deliver(1, "/users/alice/inbox")
    document = accept.json()
    assert (document["type"], document["actor"], document["object"]) == ("Accept", RUST, follow)
    keys = {RUST: rust_key, ACTOR: inbox.blog_key}
    assert await signed_by(accept, inbox, keys) == f"{RUST}#main-key"


async def test_follow__of_both_accounts_makes_two_entries_undone_one_at_a_time(
    inbox: Inbox,
) -> None:
    # Given alice follows the main account and @rust
    main = inbox.activity("Follow", ACTOR)
    rust = inbox.activity("Follow", RUST)
    for follow in (main, rust):
        assert (await inbox.post(follow)).status_code == 202
    alice = inbox.remote.actor_id("alice")
    assert [f.account for f in inbox.store.list_followers(account=None)] == ["", "rust"]
    # When she undoes the @rust follow, naming it by id only
    undo = inbox.activity("Undo", rust["id"])
    assert (await inbox.post(undo)).status_code == 202
    # Then only that follow ends
    assert inbox.store.get_follower(alice, "rust") is None
    assert inbox.store.get_follower(alice) is not None
    # When she undoes the main follow with the embedded Follow
    assert (await inbox.post(inbox.activity("Undo", main))).status_code == 202
    assert inbox.store.list_followers(account=None) == []


async def test_follow__of_an_unknown_topic_path_is_ignored(inbox: Inbox) -> None:
    follow = inbox.activity("Follow", f"{BLOG}/ap/topics/bread/actor")
    assert (await inbox.post(follow)).status_code == 202
    assert inbox.store.list_followers(account=None) == []
    assert inbox.store.queue_stats().pending == 0


async def test_block_and_delete__block_ends_one_follow_delete_ends_all(inbox: Inbox) -> None:
    # Given alice and bob follow both accounts
    for name in ("alice", "bob"):
        for target in (ACTOR, RUST):
            assert (
                await inbox.post(inbox.activity("Follow", target, name), actor=name)
            ).status_code == 202
    # When alice blocks @rust
    assert (await inbox.post(inbox.activity("Block", RUST))).status_code == 202
    # Then she no longer follows @rust, and still follows the main account
    alice, bob = inbox.remote.actor_id("alice"), inbox.remote.actor_id("bob")
    assert [(f.actor_id, f.account) for f in inbox.store.list_followers(account=None)] == [
        (alice, ""),
        (bob, ""),
        (bob, "rust"),
    ]
    # When bob's account is deleted
    delete = inbox.activity("Delete", bob, "bob")
    assert (await inbox.post(delete, actor="bob")).status_code == 202
    # Then he is gone from both accounts
    assert [(f.actor_id, f.account) for f in inbox.store.list_followers(account=None)] == [
        (alice, "")
    ]


async def test_blocks__a_blocked_actor_cannot_follow_a_topic_account(inbox: Inbox) -> None:
    inbox.store.add_block("domain", "127.0.0.1", T0)
    assert (await inbox.post(inbox.activity("Follow", RUST))).status_code == 202
    assert inbox.store.list_followers(account=None) == []


async def test_followers_collection__live_count_per_account(inbox: Inbox) -> None:
    assert (await inbox.post(inbox.activity("Follow", RUST))).status_code == 202
    rust = await inbox.client.get("/ap/topics/rust/followers")
    main = await inbox.client.get("/ap/followers")
    assert rust.status_code == 200 and main.status_code == 200
    assert (rust.json()["id"], rust.json()["totalItems"]) == (f"{BLOG}/ap/topics/rust/followers", 1)
    assert main.json()["totalItems"] == 0
    assert (await inbox.client.get("/ap/topics/bread/followers")).status_code == 404


async def test_webfinger__answers_for_each_account(inbox: Inbox) -> None:
    rust = await inbox.client.get("/.well-known/webfinger?resource=acct:rust@blog.example")
    main = await inbox.client.get("/.well-known/webfinger?resource=acct:blog@blog.example")
    other = await inbox.client.get("/.well-known/webfinger?resource=acct:bread@blog.example")
    assert rust.status_code == 200 and main.status_code == 200 and other.status_code == 404
    assert rust.json()["subject"] == "acct:rust@blog.example"
    assert [link["href"] for link in rust.json()["links"] if link["rel"] == "self"] == [RUST]
    assert main.json()["subject"] == "acct:blog@blog.example"


# --- after our Move ---------------------------------------------------------------------


async def test_undo_after_our_move__records_who_followed_along(inbox: Inbox) -> None:
    # Given alice and bob follow @rust, and @rust's Move to a new account was sent
    for name in ("alice", "bob"):
        follow = inbox.activity("Follow", RUST, name)
        assert (await inbox.post(follow, actor=name)).status_code == 202
    target = inbox.remote.actor_id("alice2")
    inbox.store.put_published(PublishedObject(f"{RUST}#move", target, "1", None, "live", T0, T0))
    # When alice's server follows the target and undoes her old follow, as Mastodon does
    follow = inbox.store.get_follower(inbox.remote.actor_id("alice"), "rust")
    assert follow is not None
    assert (await inbox.post(inbox.activity("Undo", follow.follow_activity_id))).status_code == 202
    # Then she is listed as having re-followed the target; bob is still a follower
    (moved,) = inbox.store.list_moved_followers("rust")
    assert (moved.actor_id, moved.target) == (inbox.remote.actor_id("alice"), target)
    assert [f.actor_id for f in inbox.store.list_followers(account="rust")] == [
        inbox.remote.actor_id("bob")
    ]
    assert inbox.store.list_moved_followers("") == []


# --- moving in: follows from an old account's followers -----------------------------------

OLD = "/users/mara"


def old_account(remote: RemoteServer, moved_to: str | None, followers: list[str]) -> str:
    """An old account on the remote server that moved (or not) to the blog, with a public
    followers collection of one page."""
    actor = remote.base + OLD
    remote.documents[OLD] = {
        "@context": AS,
        "id": actor,
        "type": "Person",
        "inbox": actor + "/inbox",
        "followers": actor + "/followers",
        **({"movedTo": moved_to} if moved_to else {}),
    }
    remote.documents[OLD + "/followers"] = {
        "@context": AS,
        "id": actor + "/followers",
        "type": "OrderedCollection",
        "totalItems": len(followers),
        "first": actor + "/followers?page=1",
    }
    remote.documents[OLD + "/followers?page=1"] = {
        "@context": AS,
        "id": actor + "/followers?page=1",
        "type": "OrderedCollectionPage",
        "orderedItems": followers,
    }
    return actor


@pytest.fixture
def moved_config(remote_server: RemoteServer) -> Config:
    return accounts_config(
        manually_approves_followers=True,
        also_known_as=(remote_server.base + OLD,),
    )


async def test_moving_in__old_followers_accepted_under_manual_approval(
    database: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    rust_key: RSAPrivateKey,
    moved_config: Config,
) -> None:
    inbox = await open_accounts_inbox(database, remote, blog_key, rust_key, moved_config)
    try:
        # Given the old account moved to the blog, and alice followed it; bob did not
        old_account(remote, ACTOR, [remote.actor_id("alice")])
        # When both follow the blog, under manual approval
        for name in ("alice", "bob"):
            follow = inbox.activity("Follow", ACTOR, name)
            assert (await inbox.post(follow, actor=name)).status_code == 202
        # Then alice, a follower of the old account, is accepted at once, bob waits
        alice = inbox.store.get_follower(remote.actor_id("alice"))
        bob = inbox.store.get_follower(remote.actor_id("bob"))
        assert alice is not None and alice.state == "accepted"
        assert bob is not None and bob.state == "pending"
        (accept,) = await inbox.deliver(1, "/users/alice/inbox")
        assert accept.json()["type"] == "Accept"
        assert inbox.remote.posts("/users/bob/inbox") == []
    finally:
        await inbox.client.aclose()
        await inbox.service.aclose()


async def test_moving_in__no_move_no_shortcut(
    database: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    rust_key: RSAPrivateKey,
    moved_config: Config,
) -> None:
    inbox = await open_accounts_inbox(database, remote, blog_key, rust_key, moved_config)
    try:
        # Given the old account lists alice but has not moved here (no movedTo to the blog)
        old_account(remote, remote.actor_id("alice2"), [remote.actor_id("alice")])
        # When alice follows the blog
        assert (await inbox.post(inbox.activity("Follow", ACTOR))).status_code == 202
        # Then her follow waits for approval like any other
        alice = inbox.store.get_follower(remote.actor_id("alice"))
        assert alice is not None and alice.state == "pending"
    finally:
        await inbox.client.aclose()
        await inbox.service.aclose()


async def test_moving_in__hidden_collections_leave_the_follow_pending(
    database: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    rust_key: RSAPrivateKey,
    moved_config: Config,
) -> None:
    inbox = await open_accounts_inbox(database, remote, blog_key, rust_key, moved_config)
    try:
        # Given the old account moved here but hides its followers (a bare count)
        old_account(remote, ACTOR, [])
        remote.documents[OLD + "/followers"].pop("first")
        # When alice follows the blog
        assert (await inbox.post(inbox.activity("Follow", ACTOR))).status_code == 202
        # Then nothing shows she followed the old account: she waits for approval
        alice = inbox.store.get_follower(remote.actor_id("alice"))
        assert alice is not None and alice.state == "pending"
    finally:
        await inbox.client.aclose()
        await inbox.service.aclose()


# --- conversations: one post, whichever account's boost brought the reader ---------------------


def _reply(inbox: Inbox, author: str) -> dict[str, Any]:
    actor = inbox.remote.actor_id(author)
    return {
        "id": f"{actor}/statuses/{author}-1",
        "type": "Note",
        "attributedTo": actor,
        "inReplyTo": POST,
        "content": "<p>Hi</p>",
        "to": [f"{AS}#Public"],
    }


async def test_moderation__a_follower_of_a_topic_account_is_a_follower(
    database: Database, remote: RemoteServer, blog_key: RSAPrivateKey, rust_key: RSAPrivateKey
) -> None:
    # Given `moderation: followers`, alice following the topic account only, and bob's
    # follow of it still waiting for approval
    config = accounts_config(moderation="followers")
    inbox = await open_accounts_inbox(database, remote, blog_key, rust_key, config)
    try:
        for name, state in (("alice", "accepted"), ("bob", "pending")):
            actor = remote.actor_id(name)
            inbox.store.upsert_follower(
                Follower(actor, remote.inbox(name), None, None, None, state, T0, T0, "rust")
            )
        # When both reply to the post (which they saw boosted by the topic account)
        for name in ("alice", "bob"):
            create = inbox.activity("Create", _reply(inbox, name), name)
            assert (await inbox.post(create, actor=name)).status_code == 202
        # Then alice's reply is shown at once, as a follower's; bob's waits
        shown = inbox.store.get_interaction(_reply(inbox, "alice")["id"])
        held = inbox.store.get_interaction(_reply(inbox, "bob")["id"])
        assert shown is not None and shown.state == "approved"
        assert held is not None and held.state == "pending"
    finally:
        await inbox.client.aclose()
        await inbox.service.aclose()


async def test_like__of_the_post_counts_there_a_like_of_a_topic_boost_is_ignored(
    inbox: Inbox,
) -> None:
    # A like of the topic account's Announce is not a like of the post: nothing is stored
    announce = f"{BLOG}/ap/topics/rust/announces/x"
    assert (await inbox.post(inbox.activity("Like", announce))).status_code == 202
    assert inbox.store.list_interactions() == []
    # while a like of the post itself, whoever's boost showed it, counts on the post
    assert (await inbox.post(inbox.activity("Like", POST))).status_code == 202
    (like,) = inbox.store.list_interactions()
    assert (like.kind, like.object_id) == ("like", POST)
