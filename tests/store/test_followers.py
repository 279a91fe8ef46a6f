"""Followers: the private list of who follows the blog, and where to deliver to them."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from fedipress.federation.store import Follower, Store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def follower(actor_id: str, **overrides: object) -> Follower:
    values: dict[str, object] = {
        "actor_id": actor_id,
        "inbox": f"{actor_id}/inbox",
        "shared_inbox": None,
        "handle": None,
        "follow_activity_id": f"{actor_id}#follow",
        "state": "accepted",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(overrides)
    return Follower(**values)  # type: ignore[arg-type]


def test_upsert_follower__round_trips_every_field(store: Store) -> None:
    alice = follower(
        "https://mastodon.example/users/alice",
        shared_inbox="https://mastodon.example/inbox",
        handle="@alice@mastodon.example",
        state="pending",
    )

    store.upsert_follower(alice)

    assert store.get_follower(alice.actor_id) == alice
    assert store.get_follower("https://mastodon.example/users/nobody") is None


def test_upsert_follower__repeat_follow_updates_but_keeps_created_at(store: Store) -> None:
    # Given a follower whose server lost state and sent a new Follow (FEDERATION.md §3.3)
    first = follower("https://a.example/u/1", follow_activity_id="https://a.example/f/1")
    store.upsert_follower(first)
    later = NOW + timedelta(days=3)

    # When
    store.upsert_follower(
        replace(
            first, follow_activity_id="https://a.example/f/2", created_at=later, updated_at=later
        )
    )

    # Then
    stored = store.get_follower(first.actor_id)
    assert stored is not None
    assert stored.follow_activity_id == "https://a.example/f/2"
    assert stored.created_at == NOW
    assert stored.updated_at == later
    assert store.get_follower_by_follow_id("https://a.example/f/2") == stored
    assert store.get_follower_by_follow_id("https://a.example/f/1") is None


def test_list_followers__filters_by_state_and_pages_by_actor_id(store: Store) -> None:
    for n in range(5):
        store.upsert_follower(follower(f"https://a.example/u/{n}"))
    store.upsert_follower(follower("https://b.example/u/p", state="pending"))

    accepted = store.list_followers(state="accepted")
    page2 = store.list_followers(state="accepted", limit=2, offset=2)

    assert [f.actor_id for f in accepted] == [f"https://a.example/u/{n}" for n in range(5)]
    assert [f.actor_id for f in page2] == ["https://a.example/u/2", "https://a.example/u/3"]
    assert [f.actor_id for f in store.list_followers(state="pending")] == ["https://b.example/u/p"]
    assert len(store.list_followers()) == 6
    assert store.count_followers() == 5
    assert store.count_followers("pending") == 1
    assert store.count_followers(None) == 6


def test_set_follower_state__accepts_a_pending_follower(store: Store) -> None:
    store.upsert_follower(follower("https://a.example/u/1", state="pending"))
    later = NOW + timedelta(minutes=1)

    assert store.set_follower_state("https://a.example/u/1", "accepted", later) is True
    assert store.set_follower_state("https://a.example/u/unknown", "accepted", later) is False

    stored = store.get_follower("https://a.example/u/1")
    assert stored is not None
    assert (stored.state, stored.updated_at) == ("accepted", later)


def test_remove_follower__reports_whether_it_existed(store: Store) -> None:
    store.upsert_follower(follower("https://a.example/u/1"))

    assert store.remove_follower("https://a.example/u/1") is True
    assert store.remove_follower("https://a.example/u/1") is False
    assert store.get_follower("https://a.example/u/1") is None


def test_follower_inboxes__shared_inbox_first_deduplicated_accepted_only(store: Store) -> None:
    shared = "https://big.example/inbox"
    store.upsert_follower(follower("https://big.example/users/a", shared_inbox=shared))
    store.upsert_follower(follower("https://big.example/users/b", shared_inbox=shared))
    store.upsert_follower(follower("https://small.example/u/c"))  # no shared inbox
    store.upsert_follower(follower("https://empty.example/u/d", shared_inbox=""))
    store.upsert_follower(follower("https://wait.example/u/e", state="pending"))

    assert store.follower_inboxes() == [
        shared,
        "https://empty.example/u/d/inbox",
        "https://small.example/u/c/inbox",
    ]


def test_upsert_follower__state_outside_the_closed_set_is_a_bug_not_a_store_error(
    store: Store,
) -> None:
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
        store.upsert_follower(follower("https://a.example/u/1", state="blocked"))

    # The failed statement was rolled back; the store is still usable
    assert store.count_followers(None) == 0


def test_remove_followers_with_inbox__only_those_on_that_inbox(store: Store) -> None:
    shared = {"shared_inbox": "https://x.example/inbox"}
    store.upsert_follower(follower("https://x.example/a", **shared))
    store.upsert_follower(follower("https://x.example/b", **shared))
    assert store.remove_followers_with_inbox("https://x.example/inbox") == 0  # a shared inbox
    assert store.remove_followers_with_inbox("https://x.example/a/inbox") == 1
    assert [f.actor_id for f in store.list_followers()] == ["https://x.example/b"]
