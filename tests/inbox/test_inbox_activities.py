"""The inbox's handling of verified activities (FEDERATION.md §3, §4.4, §7, §8), end to end:
signed POSTs from the fake remote server, a real store, Accepts delivered back over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from fedipress.federation.store import Follower
from fedipress.inbox.http import InboxRequest
from tests.inbox.harness import ACTOR, AS, BLOG, POST, Inbox, make_config

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def seed_follower(inbox: Inbox, name: str) -> None:
    remote = inbox.remote
    inbox.store.upsert_follower(
        Follower(
            remote.actor_id(name),
            remote.inbox(name),
            remote.shared_inbox,
            f"{name}@127.0.0.1",
            f"{remote.actor_id(name)}#follows/1",
            "accepted",
            T0,
            T0,
        )
    )


# --- Follow and Accept --------------------------------------------------------------------------


async def test_follow__the_handle_is_webfingers_subject(inbox: Inbox) -> None:
    # Given an actor whose WebFinger names the account with other capitals than its
    # preferredUsername (Mastodon keeps the subject's spelling)
    port = inbox.remote.port
    inbox.remote.subjects["alice"] = f"acct:Alice@127.0.0.1:{port}"
    follow = inbox.follow()
    body = json.dumps(follow).encode()
    headers = tuple(inbox.remote.sign("alice", body).items())
    assert (
        await inbox.service.handle(InboxRequest("POST", "/ap/inbox", "", headers, body))
    ).status == 202
    follower = inbox.store.get_follower(inbox.remote.actor_id("alice"))
    assert follower is not None and follower.handle == f"Alice@127.0.0.1:{port}"
    asked = [r.path for r in inbox.remote.requests if r.path.startswith("/.well-known/webfinger")]
    assert asked == [f"/.well-known/webfinger?resource=acct:alice@127.0.0.1:{port}"]


async def test_follow__a_subject_elsewhere_counts_only_when_that_domain_confirms(
    inbox: Inbox,
) -> None:
    # Given a JRD naming an account on a domain that does not lead back to the actor
    inbox.remote.subjects["bob"] = "acct:bob@127.0.0.2:1"
    follow = inbox.follow("bob")
    body = json.dumps(follow).encode()
    headers = tuple(inbox.remote.sign("bob", body).items())
    assert (
        await inbox.service.handle(InboxRequest("POST", "/ap/inbox", "", headers, body))
    ).status == 202
    # Then the handle is the actor's own host, port kept, not the unconfirmed claim
    follower = inbox.store.get_follower(inbox.remote.actor_id("bob"))
    assert follower is not None and follower.handle == f"bob@127.0.0.1:{inbox.remote.port}"


async def test_follow__stored_and_accept_sent_by_drain(inbox: Inbox) -> None:
    # Given a Follow from alice, handed to the service itself (no adapter, no background sender)
    follow = inbox.follow()
    body = json.dumps(follow).encode()
    headers = tuple(inbox.remote.sign("alice", body).items())
    # When the inbox handles it
    response = await inbox.service.handle(InboxRequest("POST", "/ap/inbox", "", headers, body))
    # Then it answers 202 and stores alice with her inboxes and handle
    assert response.status == 202
    follower = inbox.store.get_follower(inbox.remote.actor_id("alice"))
    assert follower is not None
    assert (follower.inbox, follower.shared_inbox) == (
        inbox.remote.inbox("alice"),
        inbox.remote.shared_inbox,
    )
    # the handle is the one WebFinger confirms, port and all (FEDERATION.md §1.3)
    handle = f"alice@127.0.0.1:{inbox.remote.port}"
    assert (follower.handle, follower.state) == (handle, "accepted")
    assert follower.follow_activity_id == follow["id"]
    # When the sender drains the queue
    outcomes = await inbox.service.sender.drain()
    # Then one signed Accept went to alice's personal inbox, not the shared one
    assert [(o.inbox, o.verdict) for o in outcomes] == [(inbox.remote.inbox("alice"), "done")]
    (accept,) = inbox.remote.posts()
    assert accept.path == "/users/alice/inbox"
    assert await inbox.verify_ours(accept) == f"{ACTOR}#main-key"
    document = accept.json()
    assert (document["type"], document["actor"]) == ("Accept", ACTOR)
    assert document["object"] == follow  # embedded unchanged, same id (FEDERATION.md §3.2)
    assert document["to"] == [inbox.remote.actor_id("alice")]


async def test_follow__background_sender_delivers_the_accept(inbox: Inbox) -> None:
    # Given the background sender is running
    inbox.service.start_sender()
    # When alice follows
    follow = inbox.follow()
    assert (await inbox.post(follow)).status_code == 202
    # Then the Accept arrives without anyone draining the queue
    (accept,) = await inbox.remote.wait_for_posts(1, "/users/alice/inbox", timeout=2.0)
    assert accept.json()["object"]["id"] == follow["id"]
    await inbox.verify_ours(accept)


async def test_follow__repeated_with_new_id_is_accepted_again(inbox: Inbox) -> None:
    # Given alice already follows the blog
    await inbox.followed_by("alice")
    # When her server sends a new Follow (it lost state, FEDERATION.md §3.3)
    again = inbox.follow()
    assert (await inbox.post(again)).status_code == 202
    # Then a fresh Accept of the new Follow goes out, and the stored Follow id is updated
    (accept,) = await inbox.deliver(1)
    assert accept.json()["object"]["id"] == again["id"]
    follower = inbox.store.get_follower(inbox.remote.actor_id("alice"))
    assert follower is not None and follower.follow_activity_id == again["id"]
    assert inbox.store.count_followers() == 1


async def test_follow__same_id_twice_has_no_second_effect(inbox: Inbox) -> None:
    # Given a Follow that was handled
    follow = await inbox.followed_by("alice")
    before = inbox.db.counts()
    # When the very same activity arrives again (a sender's retry)
    response = await inbox.post(follow)
    # Then it is acknowledged, and nothing is stored or queued a second time
    assert response.status_code == 202
    assert inbox.db.counts() == before
    assert await inbox.service.sender.drain() == []
    assert inbox.remote.posts() == []


@pytest.mark.parametrize("inbox_config", [make_config(manually_approves_followers=True)])
async def test_follow__manual_approval_leaves_it_pending(inbox: Inbox) -> None:
    # Given a blog that approves followers by hand
    # When alice follows
    assert (await inbox.post(inbox.follow())).status_code == 202
    # Then she is pending, not counted, and no Accept is queued
    follower = inbox.store.get_follower(inbox.remote.actor_id("alice"))
    assert follower is not None and follower.state == "pending"
    assert inbox.store.count_followers() == 0
    assert inbox.db.counts()["deliveries"] == 0


async def test_follow__of_someone_else_is_ignored(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    # Given a Follow whose object is not the blog's actor
    follow = inbox.activity("Follow", inbox.remote.actor_id("bob"))
    # When it arrives
    assert (await inbox.post(follow)).status_code == 202
    # Then nobody is stored
    assert inbox.store.get_follower(inbox.remote.actor_id("alice")) is None
    assert inbox.db.counts()["deliveries"] == 0


# --- Undo{Follow} and Block -------------------------------------------------------------------


@pytest.mark.parametrize("form", ["embedded", "id"])
async def test_undo_follow__removes_the_follower(inbox: Inbox, form: str) -> None:
    # Given alice follows the blog
    follow = await inbox.followed_by("alice")
    # When she undoes her Follow, embedded or by its id alone
    undo = inbox.activity("Undo", follow if form == "embedded" else follow["id"])
    assert (await inbox.post(undo)).status_code == 202
    # Then she is no longer a follower
    assert inbox.store.get_follower(inbox.remote.actor_id("alice")) is None


async def test_undo_follow__of_someone_elses_follow_is_ignored(inbox: Inbox) -> None:
    # Given alice follows the blog
    follow = await inbox.followed_by("alice")
    # When bob sends an Undo of alice's Follow, embedded and by id
    await inbox.post(inbox.activity("Undo", follow, "bob"), actor="bob")
    await inbox.post(inbox.activity("Undo", follow["id"], "bob"), actor="bob")
    # Then alice still follows
    assert inbox.store.get_follower(inbox.remote.actor_id("alice")) is not None


async def test_undo_follow__of_a_follow_of_another_account_keeps_the_follower(
    sqlite_inbox: Inbox,
) -> None:
    inbox = sqlite_inbox
    # Given alice follows the blog
    await inbox.followed_by("alice")
    # When she undoes a Follow of somebody else (Mastodon checks the inner object,
    # FEDERATION.md §3.4)
    other = inbox.activity("Follow", inbox.remote.actor_id("bob"))
    assert (await inbox.post(inbox.activity("Undo", other))).status_code == 202
    # Then she still follows the blog
    assert inbox.store.get_follower(inbox.remote.actor_id("alice")) is not None


async def test_block__removes_the_follower(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    await inbox.followed_by("alice")
    assert (await inbox.post(inbox.activity("Block", ACTOR))).status_code == 202
    assert inbox.store.get_follower(inbox.remote.actor_id("alice")) is None


# --- Delete of an actor -------------------------------------------------------------------------


async def test_delete_actor__removes_follower_and_interactions_without_fetching(
    inbox: Inbox,
) -> None:
    # Given alice follows and liked a post (her key is now cached)
    await inbox.followed_by("alice")
    assert (await inbox.post(inbox.activity("Like", POST))).status_code == 202
    assert len(inbox.store.list_interactions()) == 1
    inbox.remote.reset()
    # When her account is deleted and her server sends Delete{actor}
    alice = inbox.remote.actor_id("alice")
    response = await inbox.post(inbox.activity("Delete", alice))
    # Then she and her like are gone, and nothing was requested from her server
    assert response.status_code == 202
    assert inbox.store.get_follower(alice) is None
    assert inbox.store.list_interactions() == []
    assert inbox.remote.requests == []


async def test_delete_actor__key_gone_410_accepts_the_self_delete(inbox: Inbox) -> None:
    # Given a follower whose account is deleted: its actor and key answer 410
    seed_follower(inbox, "ghost")
    ghost = inbox.remote.actor_id("ghost")
    # When its self-Delete arrives, signed with the key that can no longer be fetched
    response = await inbox.post(inbox.activity("Delete", ghost, "ghost"), actor="ghost")
    # Then it is accepted (FEDERATION.md §4.4) and the follower removed
    assert response.status_code == 202
    assert inbox.store.get_follower(ghost) is None


async def test_delete_actor__key_404_is_refused(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    # Given a follower whose key answers 404 (proves nothing, FEDERATION.md §4.4)
    seed_follower(inbox, "nobody")
    nobody = inbox.remote.actor_id("nobody")
    # When a self-Delete arrives for it
    response = await inbox.post(inbox.activity("Delete", nobody, "nobody"), actor="nobody")
    # Then it is refused and the follower kept
    assert response.status_code == 401
    assert inbox.store.get_follower(nobody) is not None


async def test_delete_actor__a_gone_key_cannot_delete_another_actor(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    # Given alice follows
    await inbox.followed_by("alice")
    alice = inbox.remote.actor_id("alice")
    # When a Delete{alice} arrives signed with a key id that answers 410 (the ghost's)
    forged = inbox.activity("Delete", alice)
    response = await inbox.post(forged, key_of="ghost")
    # Then it is refused: a 410 only vouches for its own actor
    assert response.status_code == 401
    assert inbox.store.get_follower(alice) is not None


# --- Update{Person} and Move --------------------------------------------------------------------


async def test_update_person__refreshes_the_inboxes(inbox: Inbox) -> None:
    # Given alice follows
    await inbox.followed_by("alice")
    # When she sends Update{Person} with new inboxes
    base = inbox.remote.base
    person = inbox.remote.actor(
        "alice", inbox=f"{base}/v2/alice/inbox", endpoints={"sharedInbox": f"{base}/v2/inbox"}
    )
    assert (await inbox.post(inbox.activity("Update", person))).status_code == 202
    # Then the follower row uses them
    follower = inbox.store.get_follower(inbox.remote.actor_id("alice"))
    assert follower is not None
    assert (follower.inbox, follower.shared_inbox) == (f"{base}/v2/alice/inbox", f"{base}/v2/inbox")
    assert follower.state == "accepted"


async def test_move__to_a_target_listing_the_old_id_replaces_the_follower(inbox: Inbox) -> None:
    # Given alice follows, and alice2's actor lists alice in alsoKnownAs
    await inbox.followed_by("alice")
    alice, alice2 = inbox.remote.actor_id("alice"), inbox.remote.actor_id("alice2")
    # When alice moves to alice2
    move = inbox.activity("Move", alice, target=alice2)
    assert (await inbox.post(move)).status_code == 202
    # Then the follower is alice2, with alice2's inbox
    assert inbox.store.get_follower(alice) is None
    moved = inbox.store.get_follower(alice2)
    assert moved is not None and moved.inbox == inbox.remote.inbox("alice2")
    assert inbox.store.count_followers() == 1


async def test_move__to_a_target_not_listing_the_old_id_changes_nothing(inbox: Inbox) -> None:
    # Given alice follows; dave's actor has no alsoKnownAs
    await inbox.followed_by("alice")
    alice, dave = inbox.remote.actor_id("alice"), inbox.remote.actor_id("dave")
    # When alice claims to move to dave
    assert (await inbox.post(inbox.activity("Move", alice, target=dave))).status_code == 202
    # Then the followers are unchanged
    assert inbox.store.get_follower(alice) is not None
    assert inbox.store.get_follower(dave) is None


# --- Like and Announce --------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "stored"), [("Like", "like"), ("Announce", "announce")])
async def test_like_announce__stored_and_undone(inbox: Inbox, kind: str, stored: str) -> None:
    # Given a Like/Announce of one of our posts
    activity = inbox.activity(kind, POST)
    # When it arrives
    assert (await inbox.post(activity)).status_code == 202
    # Then it is stored against the post
    (item,) = inbox.store.list_interactions(kind=stored)  # type: ignore[arg-type]
    assert (item.id, item.actor_id, item.object_id) == (
        activity["id"],
        inbox.remote.actor_id("alice"),
        POST,
    )
    # When alice undoes it
    assert (await inbox.post(inbox.activity("Undo", activity))).status_code == 202
    # Then it is gone
    assert inbox.store.list_interactions() == []


async def test_like__of_someone_elses_post_is_ignored(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    elsewhere = f"{inbox.remote.base}/notes/1"
    assert (await inbox.post(inbox.activity("Like", elsewhere))).status_code == 202
    assert (await inbox.post(inbox.activity("Announce", elsewhere))).status_code == 202
    assert inbox.store.list_interactions() == []


async def test_undo_like__by_another_actor_is_ignored(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    # Given alice liked a post
    like = inbox.activity("Like", POST)
    await inbox.post(like)
    # When bob sends an Undo naming alice's Like by its id
    assert (await inbox.post(inbox.activity("Undo", like["id"], "bob"), actor="bob")).is_success
    # Then alice's like stays
    assert [i.id for i in inbox.store.list_interactions()] == [like["id"]]


# --- replies ------------------------------------------------------------------------------------


def reply(inbox: Inbox, content: str, updated: str | None = None, author: str = "alice") -> dict:
    note = {
        "id": f"{inbox.remote.actor_id('alice')}/statuses/1",
        "type": "Note",
        "attributedTo": inbox.remote.actor_id(author),
        "inReplyTo": POST,
        "content": content,
        "published": "2026-01-01T10:00:00Z",
        "to": [f"{AS}#Public"],
    }
    return note | ({"updated": updated} if updated else {})


async def test_reply__stored_pending_sanitized_updated_and_deleted(inbox: Inbox) -> None:
    # Given a reply to our post with a script, an event handler and a link
    html = (
        '<p onclick="steal()">Nice post! <script>alert(1)</script>'
        '<a href="https://example.org/more">more</a></p>'
    )
    note = reply(inbox, html)
    # When alice's Create arrives
    assert (await inbox.post(inbox.activity("Create", note))).status_code == 202
    # Then it is stored pending, without the script or the handler, the link kept as nofollow
    stored = inbox.store.get_interaction(note["id"])
    assert stored is not None
    assert (stored.kind, stored.state, stored.object_id) == ("reply", "pending", POST)
    content = stored.content_html or ""
    assert "<script" not in content and "alert(1)" not in content and "onclick" not in content
    assert '<a href="https://example.org/more"' in content and "nofollow" in content
    # When she edits it (a newer `updated`)
    edited = reply(inbox, "<p>Edited</p>", updated="2026-01-01T11:00:00Z")
    assert (await inbox.post(inbox.activity("Update", edited))).status_code == 202
    # Then the stored reply is replaced
    assert (inbox.store.get_interaction(note["id"]).content_html or "") == "<p>Edited</p>"
    # When an older edit arrives late
    stale = reply(inbox, "<p>Stale</p>", updated="2026-01-01T10:30:00Z")
    assert (await inbox.post(inbox.activity("Update", stale))).status_code == 202
    # Then it is ignored
    assert (inbox.store.get_interaction(note["id"]).content_html or "") == "<p>Edited</p>"
    # When she deletes it (as a Tombstone)
    tombstone = {"id": note["id"], "type": "Tombstone"}
    assert (await inbox.post(inbox.activity("Delete", tombstone))).status_code == 202
    # Then it is removed
    assert inbox.store.get_interaction(note["id"]) is None


async def test_reply__not_written_by_the_signer_is_ignored(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    # Given alice forwards a Create of a Note attributed to bob
    note = reply(inbox, "<p>by bob?</p>", author="bob")
    # When it arrives
    assert (await inbox.post(inbox.activity("Create", note))).status_code == 202
    # Then nothing is stored
    assert inbox.store.list_interactions() == []


async def test_flag__stored(inbox: Inbox) -> None:
    # Given a report about our actor and a post
    flag = inbox.activity("Flag", [ACTOR, POST], content="spam")
    # When it arrives
    assert (await inbox.post(flag)).status_code == 202
    # Then it is kept for the author
    (stored,) = inbox.store.list_flags()
    assert (stored.id, stored.content, stored.object_ids) == (flag["id"], "spam", (ACTOR, POST))


# --- other signers ------------------------------------------------------------------------------


async def test_follow__gotosocial_hs2019_with_main_key_stub(inbox: Inbox) -> None:
    # Given a GoToSocial-style Follow: hs2019, key id `…/main-key` serving a stub
    follow = inbox.follow("gts")
    # When it arrives
    response = await inbox.post(follow, actor="gts", scheme="gts")
    # Then it is accepted, and the Accept goes to the gts actor's inbox
    assert response.status_code == 202, response.text
    assert inbox.store.get_follower(inbox.remote.actor_id("gts")) is not None
    (accept,) = await inbox.deliver(1, "/users/gts/inbox")
    assert accept.json()["object"]["id"] == follow["id"]


async def test_follow__rfc9421_signature_is_accepted(inbox: Inbox) -> None:
    # Given a Follow signed with RFC 9421 only (Fedify, Mastodon 4.7's second knock)
    # When it arrives
    response = await inbox.post(inbox.follow("bob"), actor="bob", scheme="rfc9421")
    # Then it is verified and accepted
    assert response.status_code == 202, response.text
    assert inbox.store.get_follower(inbox.remote.actor_id("bob")) is not None


async def test_blocked_domain__acknowledged_and_dropped(inbox: Inbox) -> None:
    # Given the remote's domain is blocked
    inbox.store.add_block("domain", "127.0.0.1", T0)
    before = inbox.db.counts()
    # When alice follows and likes a post
    assert (await inbox.post(inbox.follow())).status_code == 202
    assert (await inbox.post(inbox.activity("Like", POST))).status_code == 202
    # Then nothing at all is stored or queued
    assert inbox.db.counts() == before


# --- GET routes ---------------------------------------------------------------------------------


async def test_followers__total_is_the_live_accepted_count(inbox: Inbox) -> None:
    # Given two accepted followers and a pending one
    await inbox.followed_by("alice")
    await inbox.followed_by("bob")
    seed_follower(inbox, "dave")
    inbox.store.set_follower_state(inbox.remote.actor_id("dave"), "pending", T0)
    # When the followers collection is fetched
    response = await inbox.client.get("/ap/followers")
    # Then it counts the accepted ones
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/activity+json")
    assert response.json()["id"] == f"{BLOG}/ap/followers"
    assert response.json()["totalItems"] == 2 == inbox.store.count_followers()
    # And an Undo is reflected at once
    follow_id = inbox.store.get_follower(inbox.remote.actor_id("bob")).follow_activity_id
    await inbox.post(inbox.activity("Undo", follow_id, "bob"), actor="bob")
    assert (await inbox.client.get("/ap/followers")).json()["totalItems"] == 1


async def test_health__ok(inbox: Inbox) -> None:
    response = await inbox.client.get("/ap/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("resource=acct:blog@blog.example", 200),
        ("", 400),
        ("resource=acct:other@blog.example", 404),
    ],
)
async def test_webfinger__status(sqlite_inbox: Inbox, query: str, status: int) -> None:
    response = await sqlite_inbox.client.get(f"/.well-known/webfinger?{query}")
    assert response.status_code == status
    if status == 200:
        assert response.json()["subject"] == "acct:blog@blog.example"
        assert any(link.get("href") == ACTOR for link in response.json()["links"])
