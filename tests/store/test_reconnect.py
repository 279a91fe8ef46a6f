"""The PostgreSQL store survives a dropped connection: the server ends its backend (restart,
admin, proxy timeout), and the next call reconnects instead of failing until a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from fedipress.errors import StoreConnectionLost
from fedipress.federation.store import Store
from fedipress.federation.store.base import Follower
from tests.store.conftest import POSTGRES_URL, Backend

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def pg_store(backend: Backend) -> Store:
    """A PostgreSQL store: each test picks only that backend (`indirect` parametrization)."""
    assert backend.name == "postgres"
    return backend.open()


def _follower(name: str) -> Follower:
    actor = f"https://social.example/users/{name}"
    return Follower(actor, f"{actor}/inbox", None, None, None, "accepted", NOW, NOW)


def _terminate_backend_of(store: Store) -> None:
    """Kill the store's server process from a second connection, as a restart would."""
    pid = store._one("SELECT pg_backend_pid()")[0]  # type: ignore[attr-defined]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_reconnect__a_read_after_the_backend_died_succeeds(pg_store: Store) -> None:
    pg_store.upsert_follower(_follower("alice"))
    _terminate_backend_of(pg_store)
    assert pg_store.count_followers() == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_reconnect__a_transaction_after_the_backend_died_succeeds(pg_store: Store) -> None:
    _terminate_backend_of(pg_store)
    with pg_store.transaction():
        pg_store.upsert_follower(_follower("bob"))
        pg_store.mark_seen("https://social.example/activities/1", NOW)
    assert pg_store.get_follower(_follower("bob").actor_id) is not None


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_reconnect__dying_inside_a_transaction_rolls_back_and_the_next_call_works(
    pg_store: Store,
) -> None:
    # When the connection dies between two statements of a transaction
    with pytest.raises(StoreConnectionLost), pg_store.transaction():
        pg_store.upsert_follower(_follower("carol"))
        _terminate_backend_of(pg_store)
        pg_store.mark_seen("https://social.example/activities/2", NOW)
    # Then nothing of it was written, and the store works again at once
    assert pg_store.get_follower(_follower("carol").actor_id) is None
    assert pg_store.mark_seen("https://social.example/activities/2", NOW)
