"""Each delivery is signed by the account that sends it (FEDERATION.md §13): the key id it
names, or a rotation's old key pinned by fingerprint (FEDERATION.md §4.6); a key this
process lacks makes the delivery wait, never sign with another account's key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fedipress.federation.delivery import Sender
from fedipress.federation.keys import SigningKey, generate_private_key
from fedipress.federation.store.base import Delivery
from tests.inbox.harness import ACTOR, BLOG, Database, verify_blog_request
from tests.inbox.remote import RemoteServer

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 1, 1, tzinfo=UTC)
RUST = f"{BLOG}/ap/topics/rust/actor#main-key"
MAIN = SigningKey(f"{ACTOR}#main-key", generate_private_key())
TOPIC = SigningKey(RUST, generate_private_key())
OLD = SigningKey(f"{ACTOR}#main-key", generate_private_key())


def delivery(signed_by: str | None = None, signing_key: str | None = None) -> Delivery:
    return Delivery(
        "d",
        "a",
        "https://x.example/inbox",
        "{}",
        "pending",
        0,
        NOW,
        None,
        None,
        None,
        None,
        NOW,
        NOW,
        signed_by,
        signing_key,
    )


def sender(store: object) -> Sender:
    keys = {TOPIC.key_id: TOPIC, TOPIC.fingerprint: TOPIC, OLD.fingerprint: OLD}
    return Sender(store, MAIN, BLOG + "/", allow_private=True, keys=keys)  # type: ignore[arg-type]


def test_signer_for__the_account_the_row_names(sqlite_db: Database) -> None:
    send = sender(sqlite_db.store)
    assert send.signer_for(delivery()) is MAIN
    assert send.signer_for(delivery(MAIN.key_id)) is MAIN
    assert send.signer_for(delivery(RUST)) is TOPIC
    pinned = send.signer_for(delivery(MAIN.key_id, OLD.fingerprint))
    assert pinned is not None and (pinned.key_id, pinned.private_key) == (
        MAIN.key_id,
        OLD.private_key,
    )
    # A pinned key that is gone: the current key of the same id
    assert send.signer_for(delivery(MAIN.key_id, "gone")) is MAIN
    # A key id this process has no key for: no signer at all
    assert send.signer_for(delivery(f"{BLOG}/ap/topics/go/actor#main-key")) is None


async def test_drain__a_delivery_without_its_key_waits_and_reports_why(
    sqlite_db: Database, remote: RemoteServer
) -> None:
    store = sqlite_db.store
    store.enqueue("a1", [remote.inbox("alice")], "{}", NOW, f"{BLOG}/ap/topics/go/actor#main-key")
    send = sender(store)
    send.now = lambda: NOW
    try:
        (outcome,) = await send.drain()
    finally:
        await send.aclose()
    assert outcome.verdict == "retry" and "no private key" in outcome.error
    assert remote.posts() == []
    (row,) = store.list_deliveries(state="pending")
    assert row.attempts == 1 and "no private key" in (row.last_error or "")


async def test_drain__tells_when_a_pinned_key_is_no_longer_needed(
    sqlite_db: Database, remote: RemoteServer
) -> None:
    store = sqlite_db.store
    for name in ("alice", "bob"):
        store.enqueue(f"u-{name}", [remote.inbox(name)], "{}", NOW, MAIN.key_id, OLD.fingerprint)
    done: list[str] = []
    send = sender(store)
    send.now = lambda: NOW
    send.on_key_done = done.append
    try:
        outcomes = await send.drain()
    finally:
        await send.aclose()
    assert sorted(o.verdict for o in outcomes) == ["done", "done"]
    for recorded in remote.posts():  # signed with the old key, under the account's key id
        assert await verify_blog_request(recorded, remote, OLD.private_key, NOW) == MAIN.key_id
    assert done == [OLD.fingerprint]
    assert store.count_pending_signed_with(OLD.fingerprint) == 0
