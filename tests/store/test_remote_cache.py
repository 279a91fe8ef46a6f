"""Cached remote keys and actors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fedipress.federation.store import CachedKey, RemoteActor, Store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PEM = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"


@dataclass(frozen=True)
class SomeRemoteKey:
    """Shaped like signatures.RemoteKey: the store accepts any such object."""

    key_id: str
    owner: str
    public_key_pem: str


def test_put_key__caches_any_key_shaped_object(store: Store) -> None:
    key = SomeRemoteKey("https://a.example/u/1#main-key", "https://a.example/u/1", PEM)

    store.put_key(key, NOW)

    assert store.get_key(key.key_id) == CachedKey(key.key_id, key.owner, PEM, NOW)
    assert store.get_key("https://a.example/u/1#other") is None


def test_put_key__replaces_a_rotated_key(store: Store) -> None:
    key_id = "https://a.example/u/1#main-key"
    store.put_key(SomeRemoteKey(key_id, "https://a.example/u/1", PEM), NOW)
    later = NOW + timedelta(hours=1)

    store.put_key(SomeRemoteKey(key_id, "https://a.example/u/1", "NEW PEM"), later)

    assert store.get_key(key_id) == CachedKey(key_id, "https://a.example/u/1", "NEW PEM", later)


def test_delete_key__forgets_it(store: Store) -> None:
    key = SomeRemoteKey("https://a.example/u/1#main-key", "https://a.example/u/1", PEM)
    store.put_key(key, NOW)

    assert store.delete_key(key.key_id) is True
    assert store.delete_key(key.key_id) is False
    assert store.get_key(key.key_id) is None


def test_put_remote_actor__round_trips_and_replaces(store: Store) -> None:
    actor = RemoteActor("https://a.example/u/1", "https://a.example/u/1/inbox", None, None, NOW)
    store.put_remote_actor(actor)
    assert store.get_remote_actor(actor.actor_id) == actor

    # Update{Person}: the embedded actor replaces every field (FEDERATION.md §7)
    moved = RemoteActor(
        actor.actor_id,
        "https://a.example/u/1/inbox2",
        "https://a.example/inbox",
        "@one@a.example",
        NOW + timedelta(days=1),
    )
    store.put_remote_actor(moved)

    assert store.get_remote_actor(actor.actor_id) == moved
    assert store.get_remote_actor("https://a.example/u/2") is None
