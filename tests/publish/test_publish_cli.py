"""`fedipress publish`, `deliver` and `deliveries` end to end: a real site, its real key, the
store at .fedipress/inbox.db, and followers whose inboxes are on a loopback server that
records what arrives. Every POST is checked with fedipress's verify_request against the
public key the site publishes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.inbox.remote import Recorded, RemoteServer, Reply
from tests.publish.support import KEY_ID, Blog, add_followers, post_text, verify_blog_post

HELLO = post_text("Hello", "Hello, followers.", 1)


def activities(posts: list[Recorded]) -> list[tuple[str, str, str]]:
    """(inbox path, type, id) of each POST, in arrival order."""
    return [(p.path, p.json()["type"], p.json()["id"]) for p in posts]


@pytest.fixture
def blog(tmp_path: Path, remote: RemoteServer) -> Blog:
    """A site with one old post, followed by alice and bob (one shared inbox) and carol
    (a personal inbox only)."""
    blog = Blog.create(tmp_path / "site", hello=HELLO)
    store = blog.store()
    add_followers(store, remote, "alice", "bob")
    add_followers(store, remote, "carol", shared=False)
    store.close()
    return blog


def test_publish__new_edited_and_removed_posts_reach_every_inbox_once(
    blog: Blog, remote: RemoteServer
) -> None:
    inboxes = sorted(["/inbox", "/users/carol/inbox"])
    # Given a built site published once: its back catalogue is recorded, not sent
    blog.build()
    out = blog.publish()
    assert "1 recorded without sending" in out
    assert "0 deliveries to 2 inboxes queued" in out
    assert remote.posts() == []

    # When a new post is built and published
    blog.post("news", post_text("News", "Fresh news for followers.", 2))
    blog.build()
    out = blog.publish()
    # Then each inbox (alice and bob share one) gets one signed Create embedding the post
    assert "1 new, 0 edited, 0 removed" in out
    assert "2 deliveries to 2 inboxes queued; 2 delivered" in out
    creates = remote.posts()
    news = blog.object_id("news")
    assert sorted(activities(creates)) == [(path, "Create", news + "#create") for path in inboxes]
    for recorded in creates:
        assert verify_blog_post(recorded, remote, blog.public_pem) == KEY_ID
        obj = recorded.json()["object"]
        assert obj["id"] == news and "Fresh news for followers." in obj["content"]
        assert dict(recorded.headers)["content-type"] == "application/activity+json"

    # When publish runs again with nothing changed
    out = blog.publish()
    # Then nothing is queued or sent
    assert "0 new, 0 edited, 0 removed; 0 deliveries" in out
    assert len(remote.posts()) == 2

    # When the post is edited
    blog.post("news", post_text("News", "Corrected news for followers.", 2))
    blog.build()
    out = blog.publish()
    # Then each inbox gets an Update with the new text and a newer `updated`
    assert "0 new, 1 edited, 0 removed" in out
    updates = remote.posts()[2:]
    assert sorted(p for p, _, _ in activities(updates)) == inboxes
    for recorded in updates:
        verify_blog_post(recorded, remote, blog.public_pem)
        activity = recorded.json()
        assert activity["type"] == "Update"
        assert re.fullmatch(re.escape(news) + r"#update-[0-9a-f]{8}-[0-9a-f]+", activity["id"])
        assert "Corrected news for followers." in activity["object"]["content"]
        assert activity["object"]["updated"] > activity["object"]["published"]

    # When the post is removed
    blog.remove("news")
    blog.build()
    out = blog.publish()
    # Then each inbox gets a Delete with a Tombstone
    assert "0 new, 0 edited, 1 removed" in out
    deletes = remote.posts()[4:]
    assert sorted((path, kind) for path, kind, _ in activities(deletes)) == [
        (path, "Delete") for path in inboxes
    ]
    assert all(
        activity_id.startswith(news + "#delete-") for _, _, activity_id in activities(deletes)
    )
    for recorded in deletes:
        verify_blog_post(recorded, remote, blog.public_pem)
        assert recorded.json()["object"] == {
            "id": news,
            "type": "Tombstone",
            "formerType": "Note",
            "deleted": recorded.json()["published"],
        }
    # and the old post was never sent at all
    assert not any(blog.object_id("hello") in r.json()["id"] for r in remote.posts())


def test_publish__backfill_sends_the_newest_posts_on_a_fresh_store(
    tmp_path: Path, remote: RemoteServer
) -> None:
    # Given a site with three posts and a follower, never published
    blog = Blog.create(
        tmp_path / "site",
        one=post_text("One", "First.", 1),
        two=post_text("Two", "Second.", 2),
        three=post_text("Three", "Third.", 3),
    )
    with_store = blog.store()
    add_followers(with_store, remote, "carol", shared=False)
    with_store.close()
    blog.build()
    # When the first publish asks for a backfill of two
    out = blog.publish("--backfill", "2")
    # Then the two newest posts are sent and the oldest only recorded (the sender posts
    # concurrently, so the order they arrive in is not fixed)
    assert "2 new, 0 edited, 0 removed, 1 recorded without sending" in out
    assert sorted(activities(remote.posts())) == [
        ("/users/carol/inbox", "Create", blog.object_id("three") + "#create"),
        ("/users/carol/inbox", "Create", blog.object_id("two") + "#create"),
    ]
    for recorded in remote.posts():
        verify_blog_post(recorded, remote, blog.public_pem)
    # and a second backfill does nothing: it is for a first publish only
    assert "0 new" in blog.publish("--backfill", "2")
    assert len(remote.posts()) == 2


def test_publish__a_site_first_published_empty_sends_its_first_post(
    tmp_path: Path, remote: RemoteServer
) -> None:
    # Given a new blog with no posts yet, published once (nothing to record)
    blog = Blog.create(tmp_path / "site")
    store = blog.store()
    add_followers(store, remote, "carol", shared=False)
    store.close()
    blog.build()
    blog.publish()
    # When its very first post is published
    blog.post("first", post_text("First", "My first post.", 5))
    blog.build()
    out = blog.publish()
    # Then followers get it: it is new, not back catalogue
    assert "1 new" in out
    assert activities(remote.posts()) == [
        ("/users/carol/inbox", "Create", blog.object_id("first") + "#create")
    ]


def test_publish__a_post_removed_and_restored_is_created_again(
    blog: Blog, remote: RemoteServer
) -> None:
    # Given a post that followers received and then saw deleted
    blog.build()
    blog.publish()
    blog.post("news", post_text("News", "Back soon.", 2))
    blog.build()
    blog.publish()
    blog.remove("news")
    blog.build()
    blog.publish()
    assert [t for _, t, _ in activities(remote.posts())] == ["Create"] * 2 + ["Delete"] * 2
    # When it is restored
    blog.post("news", post_text("News", "Back soon.", 2))
    blog.build()
    out = blog.publish()
    # Then it is sent again: a Create under a new id, not dropped as a repeat
    assert "1 new" in out and "2 delivered" in out
    again = remote.posts()[4:]
    assert [t for _, t, _ in activities(again)] == ["Create", "Create"]
    first_id = blog.object_id("news") + "#create"
    assert {a["id"] for a in (r.json() for r in again)} != {first_id}


def test_publish__no_deliver_queues_and_deliver_sends(blog: Blog, remote: RemoteServer) -> None:
    blog.build()
    blog.publish()
    blog.post("news", post_text("News", "Queued news.", 2))
    blog.build()
    # When publish only queues
    out = blog.publish("--no-deliver")
    # Then nothing is sent yet, and the queue shows two pending rows
    assert "2 deliveries to 2 inboxes queued" in out and "delivered" not in out
    assert remote.posts() == []
    assert "pending 2, done 0, dead 0" in blog.cli("queue", str(blog.root)).stdout
    # When `fedipress deliver` runs
    out = blog.cli("deliver", str(blog.root)).stdout
    # Then both inboxes get the Create, and the queue is drained
    assert "2 delivered, 0 to retry, 0 failed" in out
    assert sorted(p for p, _, _ in activities(remote.posts())) == ["/inbox", "/users/carol/inbox"]
    for recorded in remote.posts():
        verify_blog_post(recorded, remote, blog.public_pem)
    assert "pending 0, done 2, dead 0" in blog.cli("queue", str(blog.root)).stdout
    assert blog.cli("deliver", str(blog.root)).stdout.startswith("0 delivered")


def test_deliveries__shows_dead_rows_and_retry_dead_revives_them(
    blog: Blog, remote: RemoteServer
) -> None:
    blog.build()
    blog.publish()
    # Given carol's inbox refuses the Create with 400 (permanent: dead at once)
    remote.script("/users/carol/inbox", Reply(400, body=b"no thanks"))
    blog.post("news", post_text("News", "Refused news.", 2))
    blog.build()
    out = blog.publish()
    assert "1 delivered, 0 to retry, 1 failed" in out
    # Then `deliveries` shows the counts and the dead row with its status
    listing = blog.cli("queue", str(blog.root), "--state", "dead").stdout
    assert "pending 0, done 1, dead 1" in listing
    (row,) = [line for line in listing.splitlines() if line.startswith("dead")]
    assert " 400 " in row and remote.inbox("carol") in row
    assert row.endswith(blog.object_id("news") + "#create")
    # When carol's server is fixed and the dead rows are revived
    remote.script("/users/carol/inbox", Reply(202))
    out = blog.cli("queue", str(blog.root), "--retry-dead").stdout
    assert "1 dead deliveries are pending again" in out
    assert "pending 1, done 1, dead 0" in out
    # Then the next deliver sends the same activity again, and it arrives
    assert blog.cli("deliver", str(blog.root)).stdout.startswith("1 delivered")
    carol = remote.posts("/users/carol/inbox")
    assert len(carol) == 2 and carol[0].body == carol[1].body
    verify_blog_post(carol[1], remote, blog.public_pem)
    assert json.loads(carol[1].body)["type"] == "Create"
    assert "pending 0, done 2, dead 0" in blog.cli("queue", str(blog.root)).stdout


def test_deliver__several_workers_send_each_row_once(blog: Blog, remote: RemoteServer) -> None:
    # Given forty followers, each with a personal inbox only
    add_followers(blog.store(), remote, *[f"f{n}" for n in range(40)], shared=False)
    blog.build()
    blog.publish()
    blog.post("news", post_text("News", "For many.", 2))
    blog.build()
    blog.publish("--no-deliver")
    # When two processes send together
    out = blog.cli("deliver", str(blog.root), "-j", "2").stdout
    # Then every inbox got the Create exactly once, and the queue is drained
    assert out.startswith("42 delivered, 0 to retry, 0 failed")
    paths = [p for p, _, _ in activities(remote.posts())]
    assert len(paths) == len(set(paths)) == 42
    assert "pending 0, done 42, dead 0" in blog.cli("queue", str(blog.root)).stdout


def test_publish__the_object_served_after_an_edit_has_the_updated_the_update_carried(
    blog: Blog, remote: RemoteServer
) -> None:
    # Given a post published to followers
    blog.build()
    blog.publish()
    blog.post("news", post_text("News", "First text.", 2))
    blog.build()
    blog.publish()
    static = blog.root / "_site/ap/posts/news"
    assert "updated" not in json.loads(static.read_text())  # never edited yet
    # When it is edited (no `updated:` in front matter), built and published
    blog.post("news", post_text("News", "Second text.", 2))
    blog.build()
    served = json.loads(static.read_text())
    blog.publish()
    # Then the object served at the post's id says when it changed, and so does the Update
    (update, *_) = [r.json() for r in remote.posts() if r.json()["type"] == "Update"]
    assert "updated" in served
    assert update["object"]["updated"] == served["updated"]
    assert update["object"]["content"] == served["content"]
    # and a rebuild keeps that time: the record in published-ids.json remembers it
    (blog.root / "content/posts/other.md").write_text(post_text("Other", "x", 3))
    blog.build()
    assert json.loads(static.read_text())["updated"] == served["updated"]
    record = json.loads((blog.root / "published-ids.json").read_text())["ids"]["news"]
    assert record["edited"] and record["version"]


def test_publish__deleting_an_article_names_its_type(blog: Blog, remote: RemoteServer) -> None:
    blog.build()
    blog.publish()
    blog.post(
        "essay",
        post_text("Essay", "Long.", 2).replace("---\nLong", "post_type: Article\n---\nLong"),
    )
    blog.build()
    blog.publish()
    blog.remove("essay")
    blog.build()
    blog.publish()
    deletes = [r.json() for r in remote.posts() if r.json()["type"] == "Delete"]
    assert deletes and all(d["object"]["formerType"] == "Article" for d in deletes)
    tombstone = json.loads((blog.root / "_site/ap/tombstones/essay").read_text())
    assert tombstone["formerType"] == "Article"


def test_cli__old_spellings_still_work_with_a_note(blog: Blog, remote: RemoteServer) -> None:
    # `deliveries` was one letter from `deliver`: it is `queue` now
    old = blog.cli("deliveries", str(blog.root), "--state", "dead")
    assert "pending 0, done 0, dead 0" in old.stdout
    assert "note: `fedipress deliveries` is now `fedipress queue`" in old.stderr
    # `-j` means processes everywhere, as in `build`: `--workers` is `--jobs` now
    sent = blog.cli("deliver", str(blog.root), "--workers", "2")
    assert "0 delivered" in sent.stdout
    assert "note: --workers is now --jobs (-j)" in sent.stderr
    assert "  deliveries " not in blog.cli("--help").stdout  # hidden, not advertised


def test_deliver__a_oneshot_run_prunes_old_rows_too(blog: Blog, remote: RemoteServer) -> None:
    # Given a delivery finished long ago (what a systemd timer's `deliver` finds)
    store = blog.store()
    long_ago = datetime.now(UTC) - timedelta(days=40)
    try:
        store.enqueue(
            "https://blog.example/ap/posts/old#create", [remote.inbox("x")], "{}", long_ago
        )
        (old,) = store.list_deliveries()
        store.complete(old.id, 202, long_ago)
    finally:
        store.close()
    # When `fedipress deliver` runs once
    assert blog.cli("deliver", str(blog.root)).stdout.startswith("0 delivered")
    # Then the old row is gone: the timer's rounds keep the store small, as the inbox's do
    store = blog.store()
    try:
        assert store.get_delivery(old.id) is None
    finally:
        store.close()
