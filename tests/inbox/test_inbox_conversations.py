"""Conversations at the inbox: the moderation policies, replies to replies and their depth,
non-public replies, the sender's profile and avatar, the public interactions document, and
the debounced build hook. Signed POSTs from the fake remote server, a real store."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fedipress.adapters.asgi import InboxASGI
from fedipress.config import Config
from fedipress.federation.keys import RSAPrivateKey
from fedipress.federation.store import Follower
from fedipress.federation.store.base import ActorProfile, Interaction
from fedipress.inbox.service import InboxOptions
from tests.inbox.harness import AS, BLOG, POST, Database, Inbox, make_config, open_inbox
from tests.inbox.remote import RemoteServer, Reply, serve_in_thread

pytestmark = pytest.mark.anyio
PUBLIC = f"{AS}#Public"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def note(
    inbox: Inbox,
    content: str = "<p>Hi</p>",
    *,
    author: str = "alice",
    parent: str = POST,
    to: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    actor = inbox.remote.actor_id(author)
    return {
        "id": f"{actor}/statuses/{uuid.uuid4().hex[:10]}",
        "type": "Note",
        "attributedTo": actor,
        "inReplyTo": parent,
        "content": content,
        "published": "2026-01-01T10:00:00Z",
        "to": [PUBLIC] if to is None else to,
        **extra,
    }


async def send_reply(inbox: Inbox, obj: dict[str, Any], author: str = "alice") -> None:
    response = await inbox.post(inbox.activity("Create", obj, author), actor=author)
    assert response.status_code == 202, response.text


def follower(inbox: Inbox, name: str) -> None:
    remote = inbox.remote
    inbox.store.upsert_follower(
        Follower(
            remote.actor_id(name),
            remote.inbox(name),
            None,
            None,
            f"{remote.actor_id(name)}#follows/1",
            "accepted",
            T0,
            T0,
        )
    )


def state(inbox: Inbox, reply_id: str) -> str | None:
    stored = inbox.store.get_interaction(reply_id)
    return None if stored is None else stored.state


# --- moderation policies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "from_follower", "from_stranger"),
    [
        ("followers", "approved", "pending"),
        ("all", "approved", "approved"),
        ("manual", "pending", "pending"),
    ],
)
async def test_moderation__policy_decides_which_replies_are_shown_at_once(
    sqlite_db: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    policy: str,
    from_follower: str,
    from_stranger: str,
) -> None:
    inbox = await open_inbox(sqlite_db, remote, blog_key, make_config(moderation=policy))
    try:
        # Given alice follows the blog and bob does not
        follower(inbox, "alice")
        by_follower, by_stranger = note(inbox), note(inbox, author="bob")
        # When both reply
        await send_reply(inbox, by_follower)
        await send_reply(inbox, by_stranger, "bob")
        # Then the policy decides what is approved at once
        assert state(inbox, by_follower["id"]) == from_follower
        assert state(inbox, by_stranger["id"]) == from_stranger
    finally:
        await inbox.client.aclose()
        await inbox.service.aclose()


@pytest.fixture
def inbox_config() -> Config:
    return make_config(moderation="all")


# --- threads ----------------------------------------------------------------------------------


async def test_reply_to_a_reply__kept_in_the_posts_thread_with_its_depth(inbox: Inbox) -> None:
    # Given alice's reply to the post
    first = note(inbox)
    await send_reply(inbox, first)
    # When bob replies to her reply, and alice to his
    second = note(inbox, author="bob", parent=first["id"])
    await send_reply(inbox, second, "bob")
    third = note(inbox, parent=second["id"])
    await send_reply(inbox, third)
    # Then all three belong to the post, each one level deeper, answering its parent
    stored = [inbox.store.get_interaction(n["id"]) for n in (first, second, third)]
    assert [s.object_id for s in stored if s] == [POST] * 3
    assert [s.depth for s in stored if s] == [0, 1, 2]
    assert [s.in_reply_to for s in stored if s] == [POST, first["id"], second["id"]]


async def test_reply_to_an_unknown_note__ignored(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    stray = note(inbox, parent="https://elsewhere.example/notes/1")
    await send_reply(inbox, stray)
    assert inbox.store.list_interactions() == []


async def test_reply_chain__deeper_than_the_limit_refused_with_a_log_line(
    sqlite_inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = sqlite_inbox
    # Given a chain of stored replies already 101 levels deep (depth 0 to 100)
    parent = POST
    for depth in range(101):
        reply_id = f"{inbox.remote.actor_id('alice')}/statuses/chain-{depth}"
        inbox.store.add_interaction(
            Interaction(
                reply_id,
                "reply",
                inbox.remote.actor_id("alice"),
                POST,
                "approved",
                "<p>x</p>",
                None,
                parent,
                T0,
                depth=depth,
            ),
            T0,
        )
        parent = reply_id
    # When one more reply arrives below the deepest
    deeper = note(inbox, parent=parent)
    with caplog.at_level(logging.WARNING, logger="fedipress.inbox"):
        await send_reply(inbox, deeper)
    # Then it is not stored, and the log says why
    assert inbox.store.get_interaction(deeper["id"]) is None
    assert any("102 replies deep" in r.getMessage() for r in caplog.records), caplog.text


@pytest.mark.parametrize(
    "audience",
    [
        pytest.param(["FOLLOWERS"], id="followers-only"),
        pytest.param([], id="direct"),
    ],
)
async def test_reply__not_public_is_kept_pending_and_never_shown(
    sqlite_inbox: Inbox, audience: list[str]
) -> None:
    inbox = sqlite_inbox
    alice = inbox.remote.actor_id("alice")
    to = [f"{alice}/followers" if a == "FOLLOWERS" else a for a in audience] + [f"{BLOG}/ap/actor"]
    private = note(inbox, "<p>Just between us</p>", to=to)
    await send_reply(inbox, private)
    stored = inbox.store.get_interaction(private["id"])
    assert stored is not None and stored.public is False and stored.state == "pending"
    # and the public document has nothing of it
    response = await inbox.client.get("/ap/interactions")
    assert "Just between us" not in response.text
    assert private["id"] not in response.text


async def test_reply__unlisted_counts_as_public(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    alice = inbox.remote.actor_id("alice")
    unlisted = note(inbox, to=[f"{alice}/followers"], cc=[PUBLIC])
    await send_reply(inbox, unlisted)
    stored = inbox.store.get_interaction(unlisted["id"])
    assert stored is not None and stored.public and stored.state == "approved"


async def test_reply__content_warning_kept_as_plain_text(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    warned = note(inbox, summary='<b>spoilers</b> <img src=x onerror="alert(1)">\u202eevil')
    await send_reply(inbox, warned)
    stored = inbox.store.get_interaction(warned["id"])
    assert stored is not None and stored.summary == "spoilers evil"


# --- profiles and avatars ----------------------------------------------------------------------


async def test_like__stores_the_senders_profile_and_checked_avatar(inbox: Inbox) -> None:
    remote = inbox.remote
    # Given alice's actor names her, links her profile page and an avatar (a real PNG)
    remote.files["/media/alice.png"] = Reply(200, (("content-type", "image/png"),), PNG)
    remote.actor_changes["alice"] = {
        "name": "Alice \u202eecilA <script>x</script>",
        "url": f"{remote.base}/@alice",
        "icon": {"type": "Image", "url": f"{remote.base}/media/alice.png"},
    }
    # When she likes the post
    like = inbox.activity("Like", POST)
    assert (await inbox.post(like)).status_code == 202
    # Then her profile is kept: plain-text name, profile link, and the avatar bytes
    profile = inbox.store.get_profile(remote.actor_id("alice"))
    assert profile is not None
    assert profile.name == "Alice ecilA"
    assert profile.handle == "alice@127.0.0.1"
    assert profile.url == f"{remote.base}/@alice"
    assert (profile.avatar_type, profile.avatar_data) == ("image/png", PNG)
    avatar_gets = [r for r in remote.requests if r.path == "/media/alice.png"]
    # When she boosts it too, within the day
    assert (await inbox.post(inbox.activity("Announce", POST))).status_code == 202
    # Then the avatar is not fetched again
    assert [r for r in remote.requests if r.path == "/media/alice.png"] == avatar_gets


@pytest.mark.parametrize(
    ("content_type", "body", "why"),
    [
        ("image/svg+xml", SVG, "SVG can carry scripts"),
        ("image/png", b"<html>not an image</html>", "the bytes are no PNG"),
        ("image/jpeg", PNG, "the bytes say PNG, the header JPEG"),
        ("image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 600_000, "over 512 KB"),
    ],
)
async def test_avatar__refused_unless_a_small_image_of_the_type_it_says(
    sqlite_inbox: Inbox, content_type: str, body: bytes, why: str
) -> None:
    inbox = sqlite_inbox
    remote = inbox.remote
    remote.files["/media/a"] = Reply(200, (("content-type", content_type),), body)
    remote.actor_changes["alice"] = {"icon": f"{remote.base}/media/a"}
    assert (await inbox.post(inbox.activity("Like", POST))).status_code == 202
    profile = inbox.store.get_profile(remote.actor_id("alice"))
    assert profile is not None, why
    assert profile.avatar_data is None, why


async def test_update_of_the_actor__refreshes_name_and_avatar(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    remote = inbox.remote
    assert (await inbox.post(inbox.activity("Like", POST))).status_code == 202
    remote.files["/media/new.png"] = Reply(200, (("content-type", "image/png"),), PNG)
    updated = remote.actor("alice", name="Alice Renamed", icon=f"{remote.base}/media/new.png")
    assert (await inbox.post(inbox.activity("Update", updated))).status_code == 202
    profile = inbox.store.get_profile(remote.actor_id("alice"))
    assert profile is not None and profile.name == "Alice Renamed"
    assert profile.avatar_data == PNG


# --- the public interactions document ----------------------------------------------------------


async def test_interactions_document__only_approved_public_and_unblocked(inbox: Inbox) -> None:
    remote = inbox.remote
    store = inbox.store
    alice, bob = remote.actor_id("alice"), remote.actor_id("bob")
    other_post = f"{BLOG}/ap/posts/other"
    # Given an approved reply, a pending one, a hidden one, a like, and bob's boost (blocked)
    shown = note(inbox, "<p>Shown</p>")
    await send_reply(inbox, shown)
    for text, new_state in (("Held", "pending"), ("Hidden", "hidden")):
        item = note(inbox, f"<p>{text}</p>")
        await send_reply(inbox, item)
        store.set_interaction_state(item["id"], new_state)  # type: ignore[arg-type]
    assert (await inbox.post(inbox.activity("Like", POST))).status_code == 202
    assert (
        await inbox.post(inbox.activity("Announce", other_post, "bob"), actor="bob")
    ).status_code == 202
    store.add_block("actor", bob, T0)
    store.put_profile(
        ActorProfile(alice, "Alice", "alice@127.0.0.1", alice, T0, None, "image/png", PNG)
    )
    # When the document is asked for
    response = await inbox.client.get("/ap/interactions")
    # Then it is public JSON, cacheable, with exactly what the blog shows
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "max-age" in response.headers["cache-control"]
    document = response.json()
    assert list(document["posts"]) == [POST]
    entry = document["posts"][POST]
    assert [r["content"] for r in entry["replies"]] == ["<p>Shown</p>"]
    assert [lk["actor"] for lk in entry["likes"]] == [alice]
    assert entry["shares"] == []
    assert set(document["actors"]) == {alice}
    avatar = document["actors"][alice]["avatar"]
    # and the avatar it names is served, with its type
    image = await inbox.client.get(f"/ap/interactions?avatar={avatar['digest']}")
    assert (image.status_code, image.headers["content-type"], image.content) == (
        200,
        "image/png",
        PNG,
    )
    # and one post's document has only that post
    one = (await inbox.client.get("/ap/interactions?post=other")).json()
    assert one["posts"] == {}
    # and an unchanged document answers 304 to its ETag
    again = await inbox.client.get(
        "/ap/interactions", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


async def test_interactions_document__unknown_avatar_404(sqlite_inbox: Inbox) -> None:
    response = await sqlite_inbox.client.get("/ap/interactions?avatar=0123456789abcdef0123")
    assert response.status_code == 404


# --- hostile sizes -----------------------------------------------------------------------------


async def test_reply__of_10_mb_refused_with_413_and_a_log_line(
    sqlite_inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = sqlite_inbox
    huge = note(inbox, "<p>" + "x" * 10_000_000 + "</p>")
    with caplog.at_level(logging.WARNING, logger="fedipress.inbox"):
        response = await inbox.post(inbox.activity("Create", huge))
    assert response.status_code == 413
    assert inbox.store.list_interactions() == []
    assert any("over the 1000000 accepted" in r.getMessage() for r in caplog.records), caplog.text


# --- the build hook ----------------------------------------------------------------------------


class HookServer:
    """A build hook endpoint (what Netlify's is): counts POSTs."""

    def __init__(self) -> None:
        self.posts: list[str] = []
        self.port = 0
        self.status = 200

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        self.posts.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def hook_server() -> Iterator[HookServer]:
    app = HookServer()
    with serve_in_thread(app) as server:
        app.port = server.port  # type: ignore[attr-defined]
        yield app


@pytest.fixture
async def hooked_inbox(
    sqlite_db: Database, remote: RemoteServer, blog_key: RSAPrivateKey, hook_server: HookServer
) -> AsyncIterator[Inbox]:
    options = InboxOptions(
        build_hook_url=f"http://127.0.0.1:{hook_server.port}/build_hooks/secret",
        build_hook_delay=0.5,
    )
    inbox = await open_inbox(sqlite_db, remote, blog_key, make_config(moderation="all"), options)
    yield inbox
    await inbox.client.aclose()
    await inbox.service.aclose()


async def test_build_hook__a_burst_of_likes_starts_one_build(
    hooked_inbox: Inbox, hook_server: HookServer
) -> None:
    inbox = hooked_inbox
    inbox.service.start_sender()  # a long-running server, as `inbox serve` runs it
    # When 30 accounts' likes arrive at once (alice's key signs for each: the handler only
    # counts one per actor, so they are likes of 30 different posts)
    likes = [inbox.activity("Like", f"{BLOG}/ap/posts/p{i}") for i in range(30)]
    responses = await asyncio.gather(*(inbox.post(like) for like in likes))
    assert [r.status_code for r in responses] == [202] * 30
    # Then, once the delay has passed, the hook was called exactly once
    await wait_until(lambda: len(hook_server.posts) >= 1, 5)
    await asyncio.sleep(1.0)  # more than the delay: a second call would have come
    assert hook_server.posts == ["POST /build_hooks/secret"]
    # When one more reply arrives later
    await send_reply(inbox, note(inbox))
    # Then a second build starts
    await wait_until(lambda: len(hook_server.posts) == 2, 5)


async def test_build_hook__nothing_shown_changed_no_call(
    hooked_inbox: Inbox, hook_server: HookServer
) -> None:
    inbox = hooked_inbox
    inbox.service.start_sender()
    # A Follow and a report change nothing the blog shows
    assert (await inbox.post(inbox.follow())).status_code == 202
    assert (await inbox.post(inbox.activity("Flag", [POST], content="x"))).status_code == 202
    await asyncio.sleep(1.0)
    assert hook_server.posts == []


async def test_build_hook__serverless_calls_at_once_then_once_per_delay(
    hooked_inbox: Inbox, hook_server: HookServer
) -> None:
    inbox = hooked_inbox
    # A serverless adapter (Vercel's, Lambda's): no timers; after each answer it calls the
    # hook when one is due
    await inbox.client.aclose()
    inbox.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=InboxASGI(inbox.service, serverless=True)),
        base_url=BLOG,
    )
    assert (await inbox.post(inbox.activity("Like", POST))).status_code == 202
    assert len(hook_server.posts) == 1  # the first change: at once
    assert (await inbox.post(inbox.activity("Announce", POST))).status_code == 202
    assert len(hook_server.posts) == 1  # within the delay: it waits
    await asyncio.sleep(0.6)
    assert (await inbox.client.get("/ap/health")).status_code == 200
    assert len(hook_server.posts) == 2  # the next request after the delay takes it along


async def test_build_hook__health_says_whether_it_is_set_and_working_never_its_url(
    hooked_inbox: Inbox, hook_server: HookServer, inbox: Inbox
) -> None:
    # An inbox without FEDIPRESS_BUILD_HOOK_URL says "off"
    assert (await inbox.client.get("/ap/health")).json()["build_hook"] == "off"
    # One with it says "on", and the secret URL is nowhere in the answer
    hooked = hooked_inbox
    health = await hooked.client.get("/ap/health")
    assert health.json()["build_hook"] == "on" and "secret" not in health.text
    # When the host refuses a call, it says "failing" until a call works again
    hook_server.status = 404
    assert await hooked.service.build_hook.call() is False  # type: ignore[union-attr]
    assert (await hooked.client.get("/ap/health")).json()["build_hook"] == "failing"
    hook_server.status = 200
    assert await hooked.service.build_hook.call() is True  # type: ignore[union-attr]
    assert (await hooked.client.get("/ap/health")).json()["build_hook"] == "on"


async def wait_until(condition: Any, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_document_json_is_deterministic() -> None:
    # The ETag is a hash of the body: the same data must give the same bytes.
    from fedipress.federation.shown import Shown, build_document

    item = Interaction("https://m.example/l/1", "like", "https://m.example/u/a", POST, published=T0)
    one = json.dumps(build_document(Shown((item,), {})), sort_keys=True)
    two = json.dumps(build_document(Shown((item,), {})), sort_keys=True)
    assert one == two
