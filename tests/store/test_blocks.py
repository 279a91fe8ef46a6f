"""Blocks: by actor id, or by domain (which covers its subdomains)."""

from __future__ import annotations

from datetime import UTC, datetime

from fedipress.federation.store import Block, Store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_is_blocked__actor_block_matches_that_actor_only(store: Store) -> None:
    store.add_block("actor", "https://a.example/users/troll", NOW)

    assert store.is_blocked("https://a.example/users/troll") is True
    assert store.is_blocked("https://a.example/users/friend") is False


def test_is_blocked__domain_block_matches_host_and_subdomains(store: Store) -> None:
    store.add_block("domain", "Spam.Example", NOW)

    assert store.is_blocked("https://spam.example/users/x") is True
    assert store.is_blocked("https://SPAM.example:8443/users/x") is True
    assert store.is_blocked("https://eu.mx.spam.example/users/x") is True
    assert store.is_blocked("https://notspam.example/users/x") is False
    assert store.is_blocked("https://spam.example.org/users/x") is False
    assert store.is_blocked("not a url") is False


def test_add_block__normalizes_domains_and_ignores_repeats(store: Store) -> None:
    assert store.add_block("domain", "*.Bad.Example.:443", NOW) is True
    assert store.add_block("domain", "bad.example", NOW) is False
    assert store.add_block("actor", "https://x.example/u/1", NOW) is True

    assert store.list_blocks() == [
        Block("actor", "https://x.example/u/1", NOW),
        Block("domain", "bad.example", NOW),
    ]


def test_remove_block__unblocks(store: Store) -> None:
    store.add_block("domain", "bad.example", NOW)

    assert store.remove_block("domain", "BAD.example") is True
    assert store.remove_block("domain", "bad.example") is False
    assert store.is_blocked("https://bad.example/u/1") is False
    assert store.list_blocks() == []
