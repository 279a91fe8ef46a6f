"""Numbered migrations: shipped as package resources, applied once, newer schemas refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from fedipress.errors import StoreError
from fedipress.federation.shown import load_shown
from fedipress.federation.store.base import ACTIVITYPUB, ActorProfile
from fedipress.federation.store.schema import Migration, load_migrations

if TYPE_CHECKING:
    from tests.store.conftest import Backend

TABLES = {
    "followers",
    "remote_keys",
    "remote_actors",
    "seen_activities",
    "blocks",
    "interactions",
    "flags",
    "deliveries",
    "hosts",
    "host_failure_days",
    "published_objects",
    "moved_followers",
    "announcements",
    "actor_profiles",
}


def test_load_migrations__numbered_in_order_from_package_resources() -> None:
    migrations = load_migrations()

    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions))  # gaps allowed: numbers are given out per branch
    names = {m.version: m.name for m in migrations}
    assert names[1] == "initial"
    assert names[2] == "channels"
    assert names[4] == "published_object_type"
    assert names[5] == "conversations"


def test_migration_statements__split_without_comments() -> None:
    migration = Migration(
        7, "x", "-- a; comment\nCREATE TABLE a (x TEXT); -- tail\n\nDROP TABLE b;\n"
    )

    assert migration.statements() == ["CREATE TABLE a (x TEXT)", "DROP TABLE b"]


def test_open_store__applies_each_migration_once(empty_backend: Backend) -> None:
    backend = empty_backend
    first = backend.open()
    first.close()
    second = backend.open()  # re-running 0001 would fail: CREATE TABLE without IF NOT EXISTS

    versions = backend.execute("SELECT version FROM schema_migrations ORDER BY version")
    assert [v for (v,) in versions] == [m.version for m in load_migrations()]
    assert second.schema_version() == load_migrations()[-1].version


def test_open_store__creates_every_table(empty_backend: Backend) -> None:
    empty_backend.open()

    for table in TABLES:
        assert empty_backend.execute(f"SELECT COUNT(*) FROM {table}") == [(0,)]


def test_open_store__refuses_a_newer_schema(empty_backend: Backend) -> None:
    backend = empty_backend
    backend.open().close()
    backend.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        (9999, "from_the_future", "2030-01-01T00:00:00.000000Z"),
    )

    with pytest.raises(StoreError) as caught:
        backend.open()

    assert "migration 9999" in caught.value.message
    assert "Upgrade fedipress" in caught.value.hint


def test_open_store__refuses_another_build_s_migration_under_the_same_number(
    empty_backend: Backend,
) -> None:
    # A development build once numbered its migration 2 differently: skipping our 2 for it
    # would leave the store without the tables and columns every query expects.
    backend = empty_backend
    _migrated_by_hand(backend, [m for m in load_migrations() if m.version == 1])
    backend.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        (2, "something_else", STAMP),
    )

    with pytest.raises(StoreError) as caught:
        backend.open()

    assert "migration 2 is 'something_else'" in caught.value.message
    assert "'channels'" in caught.value.message


STAMP = "2024-05-01T12:00:00.000000Z"
BLOG = "https://blog.example"
ROOM = "https://matrix.example.org/_matrix/client/v3/rooms/%21room%3Aexample.org"


def _migrated_by_hand(backend: Backend, migrations: list[Migration]) -> None:
    backend.execute(
        "CREATE TABLE schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for migration in migrations:
        for statement in migration.statements():
            backend.execute(statement)
        backend.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, STAMP),
        )


def _a_store_of_migration_2(backend: Backend) -> None:
    """A store as the release with Matrix announcements left it: migrations 1 and 2
    (channels), and the rows its publish, inbox and sender write."""
    _migrated_by_hand(backend, [m for m in load_migrations() if m.version <= 2])
    published = (
        "INSERT INTO published_objects (object_id, uid, version, updated, state, "
        "first_published_at, last_delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    backend.execute(
        published, (f"{BLOG}/ap/posts/essay", "essay", "sha256:e", STAMP, "live", STAMP, STAMP)
    )
    backend.execute(
        published, (f"{BLOG}/ap/posts/gone", "gone", "sha256:g", None, "deleted", STAMP, None)
    )
    backend.execute(
        "INSERT INTO followers (actor_id, inbox, shared_inbox, handle, follow_activity_id, "
        "state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'accepted', ?, ?)",
        (
            "https://a.example/users/ann",
            "https://a.example/users/ann/inbox",
            "https://a.example/inbox",
            "ann@a.example",
            "https://a.example/follows/1",
            STAMP,
            STAMP,
        ),
    )
    delivery = (
        "INSERT INTO deliveries (id, activity_id, inbox_url, body, state, attempts, "
        "next_attempt_at, created_at, updated_at, channel) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)"
    )
    create = f"{BLOG}/ap/posts/essay#create"
    for id, inbox, state, channel in (
        ("d-ap", "https://a.example/inbox", "pending", "activitypub"),
        ("d-dead", "https://b.example/inbox", "dead", "activitypub"),
        ("d-matrix", ROOM, "pending", "matrix"),
    ):
        backend.execute(delivery, (id, create, inbox, "{}", state, STAMP, STAMP, STAMP, channel))
    backend.execute(
        "INSERT INTO announcements (id, destination, object_id, remote_id, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ("txn-1", ROOM, f"{BLOG}/ap/posts/essay", "$event", STAMP, STAMP),
    )


def test_migration_4__a_store_of_migration_2_keeps_every_row(empty_backend: Backend) -> None:
    # Given a store migrated to 0002_channels, with posts, a follower and both channels' rows
    backend = empty_backend
    _a_store_of_migration_2(backend)

    # When this fedipress opens it
    store = backend.open()

    # Then every later migration is applied once, 0004 on top of 0002 whatever lies between
    versions = backend.execute("SELECT version, name FROM schema_migrations ORDER BY version")
    assert versions == [(m.version, m.name) for m in load_migrations()]
    assert (4, "published_object_type") in versions
    assert store.schema_version() == load_migrations()[-1].version
    # the posts published before kept what they were, and count as Notes (the only type then)
    essay = store.get_published(f"{BLOG}/ap/posts/essay")
    assert essay is not None
    assert (essay.version, essay.state, essay.type) == ("sha256:e", "live", "Note")
    assert essay.updated == essay.first_published_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert [(o.uid, o.state) for o in store.list_published()] == [
        ("essay", "live"),
        ("gone", "deleted"),
    ]
    # the follower, both channels' deliveries and the announcement are intact
    follower = store.get_follower("https://a.example/users/ann")
    assert follower is not None and follower.handle == "ann@a.example"
    rows = {d.id: (d.state, d.channel) for d in store.list_deliveries()}
    assert rows == {
        "d-ap": ("pending", ACTIVITYPUB),
        "d-dead": ("dead", ACTIVITYPUB),
        "d-matrix": ("pending", "matrix"),
    }
    now = datetime(2024, 5, 2, tzinfo=UTC)
    assert [d.id for d in store.claim_due(now, 10, 60, "w", ["matrix"])] == ["d-matrix"]
    announcement = store.get_announcement("txn-1")
    assert announcement is not None and announcement.remote_id == "$event"
    # and the new column works: an Article keeps its type
    store.put_published(dataclasses.replace(essay, type="Article"))
    stored = store.get_published(essay.object_id)
    assert stored is not None and stored.type == "Article"
    # a second opening applies nothing again
    backend.open()
    assert len(backend.execute("SELECT version FROM schema_migrations")) == len(versions)


ANN = "https://a.example/users/ann"
BOB = "https://b.example/users/bob"
ESSAY = f"{BLOG}/ap/posts/essay"


def _a_store_of_migration_4(backend: Backend) -> None:
    """A store as the release with topic accounts and Articles left it (migrations 1 to 4):
    followers of several accounts, deliveries of both channels signed by their accounts,
    likes, boosts and replies held or approved, published objects of both types."""
    _migrated_by_hand(backend, [m for m in load_migrations() if m.version <= 4])
    published = (
        "INSERT INTO published_objects (object_id, uid, version, updated, state, "
        "first_published_at, last_delivered_at, object_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    backend.execute(published, (ESSAY, "essay", "sha256:e", STAMP, "live", STAMP, STAMP, "Article"))
    backend.execute(
        published, (f"{BLOG}/ap/posts/note", "note", "sha256:n", None, "live", STAMP, None, "Note")
    )
    follower = (
        "INSERT INTO followers (account, actor_id, inbox, shared_inbox, handle, "
        "follow_activity_id, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for account, actor, state in (
        ("", ANN, "accepted"),
        ("rust", ANN, "accepted"),
        ("rust", BOB, "pending"),
    ):
        host = actor.split("/")[2]
        backend.execute(
            follower,
            (
                account,
                actor,
                f"{actor}/inbox",
                f"https://{host}/inbox",
                f"x@{host}",
                f"{actor}/follows/{account or 'main'}",
                state,
                STAMP,
                STAMP,
            ),
        )
    backend.execute(
        "INSERT INTO moved_followers (account, actor_id, target, moved_at) VALUES (?, ?, ?, ?)",
        ("rust", "https://c.example/users/cy", "https://d.example/users/cy", STAMP),
    )
    delivery = (
        "INSERT INTO deliveries (id, activity_id, inbox_url, body, state, attempts, "
        "next_attempt_at, created_at, updated_at, channel, signed_by) "
        "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)"
    )
    rust_key = f"{BLOG}/ap/topics/rust/actor#main-key"
    announce = f"{BLOG}/ap/topics/rust/announces/essay"
    for id, activity, inbox, channel, signer in (
        ("d-main", f"{ESSAY}#create", "https://a.example/inbox", "activitypub", None),
        ("d-rust", announce, "https://a.example/inbox", "activitypub", rust_key),
        ("d-matrix", f"{ESSAY}#create", ROOM, "matrix", None),
    ):
        row = (id, activity, inbox, "{}", "pending", STAMP, STAMP, STAMP, channel, signer)
        backend.execute(delivery, row)
    interaction = (
        "INSERT INTO interactions (id, kind, actor_id, object_id, content_html, url, "
        "in_reply_to, state, published, updated, raw_json, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)"
    )
    for id, kind, actor, html, state in (
        ("https://a.example/likes/1", "like", ANN, None, "approved"),
        ("https://b.example/boosts/1", "announce", BOB, None, "approved"),
        ("https://a.example/notes/1", "reply", ANN, "<p>Well put</p>", "approved"),
        ("https://b.example/notes/2", "reply", BOB, "<p>Wait</p>", "pending"),
    ):
        in_reply_to = ESSAY if kind == "reply" else None
        backend.execute(
            interaction, (id, kind, actor, ESSAY, html, id, in_reply_to, state, STAMP, STAMP)
        )


def test_migration_5__a_store_of_migration_4_keeps_every_row(empty_backend: Backend) -> None:
    # Given a store migrated to 0004, with followers of two accounts, both channels'
    # deliveries, interactions and published objects
    backend = empty_backend
    _a_store_of_migration_4(backend)

    # When this fedipress opens it
    store = backend.open()

    # Then 0005_conversations is applied on top, once
    versions = backend.execute("SELECT version, name FROM schema_migrations ORDER BY version")
    assert versions == [(m.version, m.name) for m in load_migrations()]
    assert versions[-1] == (5, "conversations")
    # the followers of each account, the moved follower, the published types are intact
    assert {f.actor_id for f in store.list_followers(account="")} == {ANN}
    rust = {f.actor_id: f.state for f in store.list_followers(account="rust")}
    assert rust == {ANN: "accepted", BOB: "pending"}
    assert store.follower_inboxes(("rust",)) == ["https://a.example/inbox"]
    essay = store.get_published(ESSAY)
    assert essay is not None and (essay.type, essay.version) == ("Article", "sha256:e")
    # the deliveries keep their channel and signer
    rows = {d.id: (d.channel, d.signed_by) for d in store.list_deliveries()}
    assert rows == {
        "d-main": (ACTIVITYPUB, None),
        "d-rust": (ACTIVITYPUB, f"{BLOG}/ap/topics/rust/actor#main-key"),
        "d-matrix": ("matrix", None),
    }
    # the interactions are public, at depth 0, not hidden: the approved ones are shown as they
    # were, the held reply still waits
    reply = store.get_interaction("https://a.example/notes/1")
    assert reply is not None
    assert (reply.state, reply.public, reply.depth, reply.summary) == ("approved", True, 0, None)
    shown = [i.id for i in load_shown(store).interactions]
    assert sorted(shown) == [
        "https://a.example/likes/1",
        "https://a.example/notes/1",
        "https://b.example/boosts/1",
    ]
    assert [i.id for i in store.list_interactions(state="pending")] == ["https://b.example/notes/2"]
    # and the new columns and table work: a hidden reply leaves the page, a profile is kept
    assert store.set_interaction_state(reply.id, "hidden")
    assert reply.id not in [i.id for i in load_shown(store).interactions]
    store.put_profile(
        ActorProfile(ANN, "Ann", "ann@a.example", ANN, datetime(2024, 5, 2, tzinfo=UTC))
    )
    profile = store.get_profile(ANN)
    assert profile is not None and profile.handle == "ann@a.example"
    # a second opening applies nothing again
    backend.open()
    assert len(backend.execute("SELECT version FROM schema_migrations")) == len(versions)
