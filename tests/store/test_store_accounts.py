"""Several accounts on one site (FEDERATION.md §13): followers per account, who followed a
move, which key signs a delivery; and the migration that brings an existing store there."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fedipress.federation.store import Follower, Store
from fedipress.federation.store.base import ACTIVITYPUB
from fedipress.federation.store.schema import load_migrations

if TYPE_CHECKING:
    from tests.store.conftest import Backend

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE = "https://mastodon.example/users/alice"
BOB = "https://other.example/users/bob"
POST = "https://blog.example/ap/posts/hello"
ROOM = "https://matrix.example.org/_matrix/client/v3/rooms/%23blog%3Aexample.org"


def follower(actor_id: str, account: str = "", **overrides: object) -> Follower:
    values: dict[str, object] = {
        "actor_id": actor_id,
        "inbox": f"{actor_id}/inbox",
        "shared_inbox": actor_id.split("/users/")[0] + "/inbox",
        "handle": None,
        "follow_activity_id": f"{actor_id}#follow-{account or 'main'}",
        "state": "accepted",
        "created_at": NOW,
        "updated_at": NOW,
        "account": account,
    }
    values.update(overrides)
    return Follower(**values)  # type: ignore[arg-type]


def test_followers__kept_per_account(store: Store) -> None:
    # Given alice follows the main account and @rust, bob only @rust (pending)
    store.upsert_follower(follower(ALICE))
    store.upsert_follower(follower(ALICE, "rust"))
    store.upsert_follower(follower(BOB, "rust", state="pending"))
    # Then each account has its own entries, counts and inboxes
    assert [f.actor_id for f in store.list_followers()] == [ALICE]
    assert [(f.actor_id, f.state) for f in store.list_followers(account="rust")] == [
        (ALICE, "accepted"),
        (BOB, "pending"),
    ]
    assert [(f.account, f.actor_id) for f in store.list_followers(account=None)] == [
        ("", ALICE),
        ("rust", ALICE),
        ("rust", BOB),
    ]
    assert store.count_followers() == 1
    assert store.count_followers(account="rust") == 1
    assert store.count_followers(None, account=None) == 3
    assert store.follower_inboxes() == ["https://mastodon.example/inbox"]
    assert store.follower_inboxes(("rust",)) == ["https://mastodon.example/inbox"]
    store.set_follower_state(BOB, "accepted", NOW, "rust")
    assert store.follower_inboxes(("", "rust")) == [
        "https://mastodon.example/inbox",
        "https://other.example/inbox",
    ]
    assert store.follower_inboxes(()) == []
    # and the Follow id names the entry, whichever account it followed
    found = store.get_follower_by_follow_id(f"{ALICE}#follow-rust")
    assert found is not None and found.account == "rust"


def test_followers__removed_from_one_account_or_from_all(store: Store) -> None:
    store.upsert_follower(follower(ALICE))
    store.upsert_follower(follower(ALICE, "rust"))
    store.upsert_follower(follower(ALICE, "bread"))
    assert store.remove_follower(ALICE, "rust") is True
    assert store.get_follower(ALICE, "rust") is None
    assert store.get_follower(ALICE) is not None
    assert store.remove_follower(ALICE, None) is True
    assert store.list_followers(account=None) == []


def test_moved_followers__recorded_per_account(store: Store) -> None:
    store.record_moved_follower("rust", ALICE, "https://new.example/users/rust", NOW)
    store.record_moved_follower("rust", ALICE, "https://new.example/users/rust2", NOW)
    (moved,) = store.list_moved_followers("rust")
    assert (moved.actor_id, moved.target, moved.moved_at) == (
        ALICE,
        "https://new.example/users/rust2",
        NOW,
    )
    assert store.list_moved_followers() == []
    assert len(store.list_moved_followers(None)) == 1


def test_deliveries__name_the_key_that_signs_them(store: Store) -> None:
    key_id = "https://blog.example/ap/topics/rust/actor#main-key"
    store.enqueue("https://blog.example/a", ["https://x.example/inbox"], "{}", NOW, key_id, "ab12")
    store.enqueue("https://blog.example/b", ["https://x.example/inbox"], "{}", NOW)
    rows = {d.activity_id: d for d in store.list_deliveries()}
    assert (
        rows["https://blog.example/a"].signed_by,
        rows["https://blog.example/a"].signing_key,
    ) == (
        key_id,
        "ab12",
    )
    assert (
        rows["https://blog.example/b"].signed_by,
        rows["https://blog.example/b"].signing_key,
    ) == (
        None,
        None,
    )
    claimed = store.claim_due(NOW, 10, 60, "worker")
    assert {d.signing_key for d in claimed} == {"ab12", None}
    assert store.count_pending_signed_with("ab12") == 1
    store.complete(rows["https://blog.example/a"].id, 202, NOW)
    assert store.count_pending_signed_with("ab12") == 0


def _store_at(backend: Backend, version: int) -> None:
    """Bring an empty database to schema `version`, as an older fedipress left it."""
    backend.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at TEXT NOT NULL)"
    )
    for migration in load_migrations()[:version]:
        for statement in migration.statements():
            backend.execute(statement)
        backend.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, "2024-01-01T00:00:00.000000Z"),
        )


STAMP = "2024-05-01T12:00:00.000000Z"


def _old_follower(backend: Backend, actor_id: str, handle: str | None) -> None:
    backend.execute(
        "INSERT INTO followers (actor_id, inbox, shared_inbox, handle, follow_activity_id, "
        "state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (actor_id, actor_id + "/inbox", None, handle, actor_id + "#f", "accepted", STAMP, STAMP),
    )


def test_migration__an_existing_store_keeps_its_followers_and_deliveries(
    empty_backend: Backend,
) -> None:
    # Given a store at the first schema, with a follower and a queued delivery
    backend = empty_backend
    _store_at(backend, 1)
    _old_follower(backend, ALICE, "@alice")
    backend.execute(
        "INSERT INTO deliveries (id, activity_id, inbox_url, body, state, attempts, "
        "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("d1", "https://blog.example/x", ALICE + "/inbox", "{}", "pending", 0, STAMP, STAMP, STAMP),
    )
    # When this fedipress opens it
    store = backend.open()
    # Then the follower belongs to the main account, and the delivery is the main account's
    assert store.schema_version() == load_migrations()[-1].version
    (kept,) = store.list_followers(account=None)
    assert (kept.actor_id, kept.account, kept.handle, kept.created_at) == (ALICE, "", "@alice", NOW)
    delivery = store.get_delivery("d1")
    assert delivery is not None and (delivery.signed_by, delivery.signing_key) == (None, None)
    assert delivery.channel == ACTIVITYPUB
    # and one actor may now follow two accounts
    store.upsert_follower(follower(ALICE, "rust"))
    assert store.count_followers(account=None) == 2


def test_migration__a_store_with_matrix_rows_gains_accounts(empty_backend: Backend) -> None:
    # Given a store at 0002_channels (Matrix announcements), with followers, deliveries on
    # both channels and an announcement with its event id
    backend = empty_backend
    (channels,) = [m for m in load_migrations() if m.name == "channels"]
    (accounts,) = [m for m in load_migrations() if m.name == "accounts"]
    assert channels.version < accounts.version
    _store_at(backend, channels.version)
    _old_follower(backend, ALICE, "@alice")
    _old_follower(backend, BOB, None)
    columns = (
        "id, activity_id, inbox_url, body, state, attempts, next_attempt_at, created_at, "
        "updated_at, channel"
    )
    for row in (
        ("ap", POST + "#create", ALICE + "/inbox", "{}", "pending", 1, STAMP, STAMP, STAMP),
        ("mx", POST + "#create", ROOM, '{"kind": "announce"}', "done", 1, STAMP, STAMP, STAMP),
        ("dead", POST + "#update", BOB + "/inbox", "{}", "dead", 9, STAMP, STAMP, STAMP),
    ):
        channel = "matrix" if row[0] == "mx" else ACTIVITYPUB
        backend.execute(
            f"INSERT INTO deliveries ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*row, channel),
        )
    backend.execute(
        "INSERT INTO announcements (id, destination, object_id, remote_id, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ("txn-1", ROOM, POST, "$event", STAMP, STAMP),
    )
    # When this fedipress opens it
    store = backend.open()
    # Then it is at the newest schema, every follower is the main account's
    assert store.schema_version() == load_migrations()[-1].version > accounts.version
    assert [(f.account, f.actor_id) for f in store.list_followers(account=None)] == [
        ("", ALICE),
        ("", BOB),
    ]
    # every delivery keeps its channel and state, signed (if at all) by the main account
    rows = {d.id: d for d in store.list_deliveries()}
    assert {k: (d.channel, d.state, d.signed_by, d.signing_key) for k, d in rows.items()} == {
        "ap": (ACTIVITYPUB, "pending", None, None),
        "mx": ("matrix", "done", None, None),
        "dead": (ACTIVITYPUB, "dead", None, None),
    }
    assert rows["mx"].body == '{"kind": "announce"}'
    # the announcement keeps its event id, so an edit can still target it
    announced = store.latest_announcement(ROOM, POST)
    assert announced is not None and (announced.id, announced.remote_id) == ("txn-1", "$event")
    # and both new kinds of rows work side by side: a topic account's signed row, a Matrix row
    key_id = "https://blog.example/ap/topics/rust/actor#main-key"
    store.enqueue(POST + "#announce", [BOB + "/inbox"], "{}", NOW, key_id)
    store.enqueue(POST + "#update", [ROOM], "{}", NOW, channel="matrix")
    claimed = {d.activity_id + " " + d.channel: d for d in store.claim_due(NOW, 10, 60, "w")}
    assert claimed[POST + "#announce activitypub"].signed_by == key_id
    assert claimed[POST + "#update matrix"].signed_by is None
    assert POST + "#create activitypub" in claimed
