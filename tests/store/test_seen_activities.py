"""Seen activity ids: the inbox processes each activity once, even when two requests race."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fedipress.federation.store import Store

if TYPE_CHECKING:
    from tests.store.conftest import Backend

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_mark_seen__true_once_then_false(store: Store) -> None:
    assert store.mark_seen("https://a.example/activities/1", NOW) is True
    assert store.mark_seen("https://a.example/activities/1", NOW) is False
    assert store.mark_seen("https://a.example/activities/2", NOW) is True


def test_mark_seen__racing_connections_and_threads_see_each_id_once(backend: Backend) -> None:
    # Given two connections, each shared by two threads, all marking the same ids
    stores = [backend.open(), backend.open()]
    ids = [f"https://a.example/activities/{n}" for n in range(40)]
    barrier = threading.Barrier(4)
    wins: list[str] = []
    wins_lock = threading.Lock()

    def mark_all(store: Store) -> None:
        barrier.wait()
        for activity_id in ids:
            if store.mark_seen(activity_id, NOW):
                with wins_lock:
                    wins.append(activity_id)

    # When
    threads = [threading.Thread(target=mark_all, args=(stores[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then every id was new for exactly one caller
    assert sorted(wins) == sorted(ids)


def test_prune_seen__deletes_only_older_ids(store: Store) -> None:
    store.mark_seen("old", NOW - timedelta(days=30))
    store.mark_seen("edge", NOW - timedelta(days=7))
    store.mark_seen("new", NOW)

    assert store.prune_seen(NOW - timedelta(days=7)) == 1

    assert store.mark_seen("old", NOW) is True
    assert store.mark_seen("edge", NOW) is False
    assert store.mark_seen("new", NOW) is False
