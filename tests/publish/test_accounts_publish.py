"""Publishing for several accounts, end to end through the CLI (FEDERATION.md §13, §4.6, §8.3):
a topic account boosts the matching posts to its own followers, and their edits and
removals reach them; a profile change is sent once; a key rotation is announced with the
old key; a move sends Move to the account's followers. Every POST is checked with
fedipress's verify_request against the keys the site publishes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fedipress.app.keyfiles import generate_missing_keys, retiring_path
from fedipress.app.moving import set_moved_to
from fedipress.config import load_config
from fedipress.errors import FedipressError
from fedipress.federation.signatures import RemoteKey, verify_request
from fedipress.federation.store import Follower
from tests.conftest import write_site
from tests.inbox.remote import Recorded, RemoteServer, Reply
from tests.publish.support import ACTOR, BLOG, Blog, add_followers

RUST = f"{BLOG}/ap/topics/rust/actor"
CONFIG = """
-- fedipress.yaml --
# The blog and one topic account.
title: Publishing
base_url: https://blog.example/
fediverse:
  username: blog
  display_name: The Blog
  accounts:
    - username: rust
      tags: [rust]
      summary: Only the Rust posts.
"""


def tagged(title: str, body: str, day: int, *tags: str) -> str:
    listed = f"tags: [{', '.join(tags)}]\n" if tags else ""
    return f"---\ntitle: {title}\ndate: 2025-02-{day:02d}\n{listed}---\n{body}\n"


def sent(posts: list[Recorded]) -> list[tuple[str, str, str, str]]:
    """(inbox path, type, actor, object id) of each POST, sorted."""
    found = []
    for post in posts:
        activity = post.json()
        obj = activity["object"]
        found.append(
            (
                post.path,
                activity["type"],
                activity["actor"],
                obj if isinstance(obj, str) else obj["id"],
            )
        )
    return sorted(found)


def key_of(recorded: Recorded, remote: RemoteServer, keys: dict[str, str]) -> str | None:
    """The actor whose published key (`keys`: actor -> PEM) verifies the POST, else None."""
    fetched = {
        f"{actor}#main-key": RemoteKey(f"{actor}#main-key", actor, pem)
        for actor, pem in keys.items()
    }

    async def fetch_key(key_id: str, refresh: bool) -> RemoteKey | None:
        return fetched.get(key_id)

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


@pytest.fixture
def blog(tmp_path: Path, remote: RemoteServer) -> Blog:
    """A site with a topic account @rust: alice follows the blog (the shared inbox), carol
    follows @rust only (her personal inbox), both published once."""
    root = write_site(tmp_path / "site", CONFIG)
    (root / "content" / "posts").mkdir(parents=True)
    blog = Blog(root)
    blog.post("old", tagged("Old", "An old Rust post.", 1, "rust"))
    generate_missing_keys(root, load_config(root))
    store = blog.store()
    add_followers(store, remote, "alice")
    now = datetime.now(UTC)
    carol = remote.actor_id("carol")
    store.upsert_follower(
        Follower(
            carol, remote.inbox("carol"), None, "carol", f"{carol}#f", "accepted", now, now, "rust"
        )
    )
    store.close()
    blog.build()
    assert "1 recorded without sending" in blog.publish()
    assert remote.posts() == []
    return blog


def pems(blog: Blog) -> dict[str, str]:
    return {
        ACTOR: (blog.root / "fedipress.pub.pem").read_text(),
        RUST: (blog.root / "fedipress.rust.pub.pem").read_text(),
    }


def test_topic_account__boosts_matching_posts_and_follows_their_edits_and_removals(
    blog: Blog, remote: RemoteServer
) -> None:
    carol = "/users/carol/inbox"
    crab, loaf = f"{BLOG}/ap/posts/crab", f"{BLOG}/ap/posts/loaf"
    # When a post tagged rust and a post without it are published
    blog.post("crab", tagged("Crab", "Ferris says hi.", 2, "rust"))
    blog.post("loaf", tagged("Loaf", "Sourdough.", 3, "bread"))
    blog.build()
    out = blog.publish()
    # Then alice (the blog) gets both Creates; carol (@rust) gets only the Announce of crab,
    # by @rust, of the blog's own object: one canonical object
    assert "2 new, 0 edited, 0 removed, 1 boost by a topic account" in out
    assert sent(remote.posts()) == [
        ("/inbox", "Create", ACTOR, crab),
        ("/inbox", "Create", ACTOR, loaf),
        (carol, "Announce", RUST, crab),
    ]
    keys = pems(blog)
    for post in remote.posts():
        assert key_of(post, remote, keys) == post.json()["actor"]  # signed by its actor
    (announce,) = remote.posts(carol)
    assert announce.json()["id"] == f"{BLOG}/ap/topics/rust/announces/crab"
    assert announce.json()["cc"] == [ACTOR, f"{BLOG}/ap/topics/rust/followers"]

    # When the Rust post is edited
    remote.requests.clear()
    blog.post("crab", tagged("Crab", "Ferris says hello.", 2, "rust"))
    blog.build()
    blog.publish()
    # Then the blog's Update reaches carol too: she has the post through the boost
    assert sent(remote.posts()) == [
        ("/inbox", "Update", ACTOR, crab),
        (carol, "Update", ACTOR, crab),
    ]

    # When the other post is edited, carol hears nothing
    remote.requests.clear()
    blog.post("loaf", tagged("Loaf", "Rye sourdough.", 3, "bread"))
    blog.build()
    blog.publish()
    assert sent(remote.posts()) == [("/inbox", "Update", ACTOR, loaf)]

    # When the Rust post is removed
    remote.requests.clear()
    blog.remove("crab")
    blog.build()
    out = blog.publish()
    # Then alice and carol get the Delete, and carol the Undo of the boost
    assert "1 removed, 1 boost undone" in out
    assert sent(remote.posts()) == [
        ("/inbox", "Delete", ACTOR, crab),
        (carol, "Delete", ACTOR, crab),
        (carol, "Undo", RUST, f"{BLOG}/ap/topics/rust/announces/crab"),
    ]
    (undo,) = [p for p in remote.posts() if p.json()["type"] == "Undo"]
    assert undo.json()["object"]["type"] == "Announce"
    assert undo.json()["object"]["object"] == crab
    assert key_of(undo, remote, keys) == RUST


def test_topic_account__a_retag_undoes_the_boost_and_a_new_boost_gets_a_new_id(
    blog: Blog, remote: RemoteServer
) -> None:
    carol = "/users/carol/inbox"
    blog.post("crab", tagged("Crab", "Ferris.", 2, "rust"))
    blog.build()
    blog.publish()
    first = remote.posts(carol)[0].json()["id"]
    # When the post loses its rust tag, carol gets the edit (she has the post) and the
    # boost is undone; the post stays
    remote.requests.clear()
    blog.post("crab", tagged("Crab", "Ferris.", 2, "crustaceans"))
    blog.build()
    blog.publish()
    assert sorted((p.json()["type"], p.json()["object"]["id"]) for p in remote.posts(carol)) == [
        ("Undo", first),
        ("Update", f"{BLOG}/ap/posts/crab"),
    ]
    # When it gets the tag back, carol gets the edit and a new boost, with an id never
    # sent before (receivers drop an id they have seen)
    remote.requests.clear()
    blog.post("crab", tagged("Crab", "Ferris.", 2, "rust"))
    blog.build()
    blog.publish()
    assert sorted(p.json()["type"] for p in remote.posts(carol)) == ["Announce", "Update"]
    (again,) = [p for p in remote.posts(carol) if p.json()["type"] == "Announce"]
    assert again.json()["type"] == "Announce" and again.json()["id"] != first
    assert again.json()["id"].startswith(first + "-")


def test_profile__an_update_once_per_change_to_that_accounts_followers(
    blog: Blog, remote: RemoteServer
) -> None:
    config = blog.root / "fedipress.yaml"
    # When the blog's display name changes
    config.write_text(config.read_text().replace("The Blog", "The Kitchen Table"))
    blog.build()
    out = blog.publish()
    # Then alice gets an Update of the actor with the new name; carol (@rust) nothing
    assert "1 profile update" in out
    (update,) = remote.posts()
    assert update.path == "/inbox"
    activity = update.json()
    assert (activity["type"], activity["actor"]) == ("Update", ACTOR)
    assert activity["object"]["id"] == ACTOR and activity["object"]["name"] == "The Kitchen Table"
    # When publish runs again, nothing more goes out
    assert "profile" not in blog.publish()
    assert len(remote.posts()) == 1
    # When @rust's summary changes, carol gets @rust's Update, signed by @rust
    config.write_text(config.read_text().replace("Only the Rust posts.", "Rust, and only Rust."))
    blog.build()
    blog.publish()
    (rust_update,) = remote.posts()[1:]
    assert rust_update.path == "/users/carol/inbox"
    assert rust_update.json()["object"]["id"] == RUST
    assert "Rust, and only Rust." in rust_update.json()["object"]["summary"]
    assert key_of(rust_update, remote, pems(blog)) == RUST


def test_key_rotation__update_signed_with_the_old_key_then_the_old_key_goes(
    blog: Blog, remote: RemoteServer
) -> None:
    old = pems(blog)
    retiring = retiring_path(blog.root, load_config(blog.root))
    # Given alice's server answers the first POST with 503
    remote.script("/inbox", Reply(503), Reply(202))
    # When the blog's key is rotated, the site rebuilt and published
    out = blog.cli("keys", "rotate", str(blog.root)).stdout
    assert out.startswith("new key for blog@blog.example:")
    assert retiring.exists() and oct(retiring.stat().st_mode & 0o777) == "0o600"
    new = pems(blog)
    assert new[ACTOR] != old[ACTOR] and new[RUST] == old[RUST]
    blog.build()
    blog.publish()
    # Then the Update carrying the new key was signed with the old one
    (first,) = remote.posts()
    activity = first.json()
    assert (activity["type"], activity["object"]["id"]) == ("Update", ACTOR)
    assert activity["object"]["publicKey"]["publicKeyPem"] == new[ACTOR]
    assert key_of(first, remote, old) == ACTOR
    assert key_of(first, remote, new) is None
    # and while its delivery waits for a retry, the old key stays
    assert retiring.exists()
    store = blog.store()
    try:
        (row,) = store.list_deliveries(state="pending")
        store.retry_later(
            row.id, datetime.now(UTC) - timedelta(seconds=1), 503, "", datetime.now(UTC)
        )
    finally:
        store.close()
    # When the retry is delivered
    assert "1 delivered" in blog.cli("deliver", str(blog.root)).stdout
    (retried,) = remote.posts()[1:]
    assert key_of(retried, remote, old) == ACTOR
    # Then the old private key is gone, and the next post is signed with the new key
    assert not retiring.exists()
    blog.post("crab", tagged("Crab", "Signed anew.", 2))
    blog.build()
    blog.publish()
    (create,) = remote.posts()[2:]
    assert create.json()["type"] == "Create"
    assert key_of(create, remote, new) == ACTOR


def test_key_rotation__of_a_topic_account_and_refused_twice(
    blog: Blog, remote: RemoteServer
) -> None:
    old = pems(blog)
    blog.cli("keys", "rotate", str(blog.root), "--account", "rust")
    again = blog.cli("keys", "rotate", str(blog.root), "--account", "rust", ok=False)
    assert again.exit_code == 1 and "still being retired" in again.output
    blog.build()
    blog.publish()
    (update,) = remote.posts()
    assert update.path == "/users/carol/inbox" and update.json()["object"]["id"] == RUST
    assert key_of(update, remote, old) == RUST
    # Delivered at once: the old key is gone, a new rotation may start
    assert not retiring_path(blog.root, load_config(blog.root), "rust").exists()


def test_move__checked_recorded_sent_once_and_not_cancellable_after(
    blog: Blog, remote: RemoteServer
) -> None:
    config = blog.root / "fedipress.yaml"
    before = config.read_text()
    target = remote.actor_id("bob")
    # A target that does not list the blog is refused, and nothing changes
    refused = blog.cli("move", str(blog.root), "--to", target, ok=False)
    assert refused.exit_code == 1 and "does not list" in refused.output
    assert config.read_text() == before
    # Given the new account lists the blog in alsoKnownAs, found by its handle
    remote.actor_changes["bob"] = {"alsoKnownAs": [ACTOR]}
    handle = f"bob@127.0.0.1:{remote.port}"
    remote.documents[f"/.well-known/webfinger?resource=acct:{handle}"] = {
        "subject": f"acct:{handle}",
        "links": [{"rel": "self", "type": "application/activity+json", "href": target}],
    }
    # When the blog moves there
    moved = blog.cli("move", str(blog.root), "--to", f"@{handle}")
    assert "moved_to set" in moved.stdout and "1 followers" in moved.stdout
    # Then fedipress.yaml has moved_to, its comment and layout kept
    assert config.read_text() == before.replace(
        "  username: blog\n", f'  username: blog\n  moved_to: "{target}"\n'
    )
    # and the next publish sends the actor's Update (with movedTo) and the Move, to the
    # blog's followers only
    blog.build()
    out = blog.publish()
    assert "1 profile update, 1 move" in out
    assert sent(remote.posts()) == [
        ("/inbox", "Move", ACTOR, ACTOR),
        ("/inbox", "Update", ACTOR, ACTOR),
    ]
    move = next(p.json() for p in remote.posts() if p.json()["type"] == "Move")
    assert (move["object"], move["target"]) == (ACTOR, target)
    # A second publish sends nothing, and the move can no longer be cancelled
    assert "0 new, 0 edited, 0 removed; 0 deliveries" in blog.publish()
    late = blog.cli("move", str(blog.root), "--cancel", ok=False)
    assert late.exit_code == 1 and "already sent" in late.output


def test_move__cancelled_before_it_is_sent(blog: Blog, remote: RemoteServer) -> None:
    config = blog.root / "fedipress.yaml"
    before = config.read_text()
    remote.actor_changes["bob"] = {"alsoKnownAs": [RUST]}
    blog.cli("move", str(blog.root), "--to", remote.actor_id("bob"), "--account", "rust")
    assert load_config(blog.root).fediverse.account("rust").moved_to == remote.actor_id("bob")  # type: ignore[union-attr]
    cancelled = blog.cli("move", str(blog.root), "--cancel", "--account", "rust")
    assert "cancelled the move" in cancelled.stdout
    assert config.read_text() == before
    blog.build()
    blog.publish()
    assert remote.posts() == []


def test_set_moved_to__refuses_a_flow_style_section(tmp_path: Path) -> None:
    site = write_site(
        tmp_path / "site",
        """
        -- fedipress.yaml --
        title: T
        base_url: https://blog.example/
        fediverse: {username: blog}
        """,
    )
    with pytest.raises(FedipressError, match="flow style"):
        set_moved_to(site, "", "https://new.example/users/me")
