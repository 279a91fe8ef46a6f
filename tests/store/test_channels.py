"""Deliveries of other channels (a Matrix room) in the one queue, and the announcements they
make: queued, claimed only by a sender of that channel, and remembered with their event id."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fedipress.federation.store import Store
from fedipress.federation.store.base import ACTIVITYPUB, Announcement
from fedipress.federation.store.schema import load_migrations

if TYPE_CHECKING:
    from tests.store.conftest import Backend

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ACTIVITY = "https://blog.example/ap/posts/hello#create"
ROOM = "https://matrix.example.org/_matrix/client/v3/rooms/%23blog%3Aexample.org"
POST = "https://blog.example/ap/posts/hello"


def test_enqueue__keeps_the_channel_and_defaults_to_activitypub(store: Store) -> None:
    store.enqueue(ACTIVITY, ["https://a.example/inbox"], "{}", NOW)
    store.enqueue(ACTIVITY, [ROOM], '{"kind": "announce"}', NOW, channel="matrix")

    rows = {row.inbox_url: row for row in store.list_deliveries()}

    assert rows["https://a.example/inbox"].channel == ACTIVITYPUB
    assert rows[ROOM].channel == "matrix"
    assert rows[ROOM].body == '{"kind": "announce"}'


def test_claim_due__only_the_channels_asked_for(store: Store) -> None:
    store.enqueue(ACTIVITY, ["https://a.example/inbox"], "{}", NOW)
    store.enqueue(ACTIVITY, [ROOM], "{}", NOW, channel="matrix")

    activitypub = store.claim_due(NOW, 10, 60, "ap-only", [ACTIVITYPUB])
    none = store.claim_due(NOW, 10, 60, "nothing", [])
    matrix = store.claim_due(NOW, 10, 60, "both", [ACTIVITYPUB, "matrix"])

    assert [d.inbox_url for d in activitypub] == ["https://a.example/inbox"]
    assert none == []
    assert [d.inbox_url for d in matrix] == [ROOM]  # the other row is leased already


def test_claim_due__every_channel_by_default(store: Store) -> None:
    store.enqueue(ACTIVITY, ["https://a.example/inbox"], "{}", NOW)
    store.enqueue(ACTIVITY, [ROOM], "{}", NOW, channel="matrix")

    assert len(store.claim_due(NOW, 10, 60, "w")) == 2


def test_announcements__stored_updated_and_found_newest_first(store: Store) -> None:
    first = Announcement("txn-1", ROOM, POST, None, NOW, NOW)
    second = Announcement("txn-2", ROOM, POST, None, NOW + timedelta(hours=1), NOW)
    store.put_announcement(first)
    store.put_announcement(second)
    store.put_announcement(Announcement("txn-3", ROOM, POST + "-other", None, NOW, NOW))

    assert store.latest_announcement(ROOM, POST) == second
    assert store.latest_announcement("https://elsewhere.example/room", POST) is None

    later = NOW + timedelta(minutes=5)
    store.put_announcement(dataclasses.replace(first, remote_id="$event", updated_at=later))
    stored = store.get_announcement("txn-1")
    assert stored is not None and stored.remote_id == "$event" and stored.updated_at == later
    assert stored.created_at == NOW


def test_announcements__removed_ones_are_not_the_latest(store: Store) -> None:
    old = Announcement("txn-1", ROOM, POST, "$old", NOW, NOW)
    new = Announcement("txn-2", ROOM, POST, "$new", NOW + timedelta(days=1), NOW)
    store.put_announcement(old)
    store.put_announcement(dataclasses.replace(new, removed_at=NOW + timedelta(days=2)))

    assert store.latest_announcement(ROOM, POST) == old
    assert store.remove_announcement("txn-1") is True
    assert store.remove_announcement("txn-1") is False
    assert store.latest_announcement(ROOM, POST) is None
    assert store.get_announcement("txn-2") is not None  # a removed one is still found by id


def test_announcements__rolled_back_with_their_transaction(store: Store) -> None:
    try:
        with store.transaction() as tx:
            tx.put_announcement(Announcement("txn-1", ROOM, POST, None, NOW, NOW))
            tx.enqueue(ACTIVITY, [ROOM], "{}", NOW, channel="matrix")
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass

    assert store.get_announcement("txn-1") is None
    assert store.list_deliveries() == []


def test_migration_2__existing_deliveries_become_activitypub_rows(
    empty_backend: Backend,
) -> None:
    backend = empty_backend
    (initial,) = [m for m in load_migrations() if m.version == 1]
    backend.execute(
        "CREATE TABLE schema_migrations ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for statement in initial.statements():
        backend.execute(statement)
    backend.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'initial', ?)",
        ("2024-01-01T00:00:00.000000Z",),
    )
    stamp = "2024-05-01T12:00:00.000000Z"
    backend.execute(
        "INSERT INTO deliveries (id, activity_id, inbox_url, body, state, attempts, "
        "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        ("d1", ACTIVITY, "https://a.example/inbox", "{}", stamp, stamp, stamp),
    )

    store = backend.open()

    assert store.schema_version() == load_migrations()[-1].version
    (row,) = store.list_deliveries()
    assert row.id == "d1" and row.channel == ACTIVITYPUB
    (claimed,) = store.claim_due(NOW, 10, 60, "w", [ACTIVITYPUB])
    assert claimed.id == "d1"
