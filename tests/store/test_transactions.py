"""One inbox request, one transaction: all of its effects or none of them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from fedipress.federation.store import Follower, Store

if TYPE_CHECKING:
    from tests.store.conftest import Backend

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE = Follower(
    "https://a.example/u/alice",
    "https://a.example/u/alice/inbox",
    None,
    None,
    None,
    "accepted",
    NOW,
    NOW,
)


def handle_follow(store: Store) -> None:
    """What the inbox does for a Follow: dedupe, store the follower, queue the Accept."""
    store.mark_seen("https://a.example/follows/1", NOW)
    store.upsert_follower(ALICE)
    store.enqueue("https://blog.example/accepts/1", [ALICE.inbox], "{}", NOW)


def test_transaction__commits_every_effect(backend: Backend, store: Store) -> None:
    with store.transaction() as tx:
        handle_follow(tx)

    other = backend.open()  # another connection sees the committed state
    assert other.get_follower(ALICE.actor_id) == ALICE
    assert other.queue_stats().pending == 1
    assert other.mark_seen("https://a.example/follows/1", NOW) is False


def test_transaction__rollback_on_exception_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError, match="crash"), store.transaction() as tx:
        handle_follow(tx)
        raise RuntimeError("crash mid-request")

    assert store.get_follower(ALICE.actor_id) is None
    assert store.queue_stats().pending == 0
    assert store.mark_seen("https://a.example/follows/1", NOW) is True


def test_transaction__nested_block_rolls_back_alone(store: Store) -> None:
    with store.transaction() as tx:
        tx.upsert_follower(ALICE)
        with pytest.raises(ValueError), tx.transaction() as inner:
            inner.mark_seen("https://a.example/inner", NOW)
            raise ValueError("inner failure")
        tx.mark_seen("https://a.example/outer", NOW)

    assert store.get_follower(ALICE.actor_id) == ALICE
    assert store.mark_seen("https://a.example/inner", NOW) is True
    assert store.mark_seen("https://a.example/outer", NOW) is False


def test_transaction__other_threads_wait_for_the_commit(store: Store) -> None:
    seen_count: list[int] = []
    finished = threading.Event()

    def count_from_another_thread() -> None:
        seen_count.append(store.count_followers())
        finished.set()

    with store.transaction() as tx:
        tx.upsert_follower(ALICE)
        thread = threading.Thread(target=count_from_another_thread)
        thread.start()
        # The other thread must not run its query inside our open transaction
        assert finished.wait(0.1) is False
    thread.join(timeout=10)

    assert seen_count == [1]


def test_naive_datetime__is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        store.mark_seen("https://a.example/x", datetime(2024, 5, 1, 12, 0))
