"""The outbound delivery queue: enqueue once, lease to one worker, retry, give up, revive."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from fedipress.federation.store import QueueStats, Store

if TYPE_CHECKING:
    from tests.store.conftest import Backend

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ACTIVITY = "https://blog.example/ap/posts/hello#create"
BODY = '{"type": "Create", "id": "https://blog.example/ap/posts/hello#create"}'


def inboxes(count: int) -> list[str]:
    return [f"https://s{n:03}.example/inbox" for n in range(count)]


def test_enqueue__one_pending_row_per_inbox_due_now(store: Store) -> None:
    added = store.enqueue(
        ACTIVITY, ["https://a.example/inbox", "https://b.example/inbox"], BODY, NOW
    )

    rows = sorted(store.list_deliveries(), key=lambda d: d.inbox_url)
    assert added == 2
    assert [d.inbox_url for d in rows] == ["https://a.example/inbox", "https://b.example/inbox"]
    first = rows[0]
    assert (first.activity_id, first.body, first.state, first.attempts) == (
        ACTIVITY,
        BODY,
        "pending",
        0,
    )
    assert first.next_attempt_at == first.created_at == NOW
    assert (first.lease_owner, first.lease_until, first.last_status, first.last_error) == (
        None,
    ) * 4
    assert rows[0].id != rows[1].id
    assert store.get_delivery(first.id) == first


def test_enqueue__twice_is_a_no_op(store: Store) -> None:
    assert store.enqueue(ACTIVITY, ["https://a.example/inbox"] * 2, BODY, NOW) == 1
    assert (
        store.enqueue(ACTIVITY, ["https://a.example/inbox", "https://b.example/inbox"], BODY, NOW)
        == 1
    )
    assert store.enqueue("https://blog.example/other", ["https://a.example/inbox"], BODY, NOW) == 1

    assert store.queue_stats() == QueueStats(pending=3)


def test_enqueue__joins_the_callers_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.enqueue(ACTIVITY, ["https://a.example/inbox"], BODY, NOW)
        raise RuntimeError("crash after enqueue")

    assert store.queue_stats() == QueueStats()


def test_claim_due__leases_due_rows_oldest_first(store: Store) -> None:
    store.enqueue(
        "https://blog.example/a2", ["https://x.example/inbox"], BODY, NOW + timedelta(seconds=2)
    )
    store.enqueue(
        "https://blog.example/a1", ["https://x.example/inbox"], BODY, NOW + timedelta(seconds=1)
    )
    store.enqueue(
        "https://blog.example/later", ["https://x.example/inbox"], BODY, NOW + timedelta(hours=1)
    )
    at = NOW + timedelta(minutes=1)

    claimed = store.claim_due(at, limit=10, lease_seconds=60, owner="worker-1")

    assert [d.activity_id for d in claimed] == [
        "https://blog.example/a1",
        "https://blog.example/a2",
    ]
    assert {(d.lease_owner, d.lease_until, d.attempts) for d in claimed} == {
        ("worker-1", at + timedelta(seconds=60), 1)
    }
    assert store.claim_due(at, limit=10, lease_seconds=60, owner="worker-2") == []


def test_claim_due__respects_limit(store: Store) -> None:
    store.enqueue(ACTIVITY, inboxes(5), BODY, NOW)

    first = store.claim_due(NOW, limit=2, lease_seconds=60, owner="w")
    rest = store.claim_due(NOW, limit=10, lease_seconds=60, owner="w")

    assert len(first) == 2
    assert len(rest) == 3
    assert not {d.id for d in first} & {d.id for d in rest}


def test_claim_due__expired_lease_is_claimable_again(store: Store) -> None:
    # Given a worker that claimed a delivery and then died
    store.enqueue(ACTIVITY, ["https://a.example/inbox"], BODY, NOW)
    (lost,) = store.claim_due(NOW, limit=1, lease_seconds=60, owner="dead-worker")

    # When another worker looks before and after the lease ends
    before = store.claim_due(NOW + timedelta(seconds=59), limit=1, lease_seconds=60, owner="w2")
    after = store.claim_due(NOW + timedelta(seconds=60), limit=1, lease_seconds=60, owner="w2")

    # Then it gets the row only once the lease has expired
    assert before == []
    assert [d.id for d in after] == [lost.id]
    assert (after[0].lease_owner, after[0].attempts) == ("w2", 2)


def test_release__hands_back_unsent_rows_as_they_were(store: Store) -> None:
    # Given three rows claimed by a worker whose time budget ran out after sending one
    store.enqueue(ACTIVITY, inboxes(3), BODY, NOW)
    claimed = store.claim_due(NOW, limit=10, lease_seconds=60, owner="w1")
    sent, *unsent = claimed
    store.complete(sent.id, 202, NOW)

    # When another worker tries to release them, then the owner does
    assert store.release([d.id for d in unsent], "w2") == 0
    released = store.release([d.id for d in claimed], "w1")

    # Then only the two unsent rows are back: no lease, the claim's attempt taken back,
    # due at once for the next drain; the delivered row is untouched
    assert released == 2
    for delivery in unsent:
        row = store.get_delivery(delivery.id)
        assert row is not None
        assert (row.state, row.attempts, row.lease_owner, row.lease_until) == (
            "pending",
            0,
            None,
            None,
        )
        assert row.next_attempt_at == NOW
    done = store.get_delivery(sent.id)
    assert done is not None and (done.state, done.attempts) == ("done", 1)
    again = store.claim_due(NOW, limit=10, lease_seconds=60, owner="w3")
    assert sorted(d.id for d in again) == sorted(d.id for d in unsent)
    assert store.release([], "w3") == 0


@pytest.mark.parametrize("sharing", ["two connections", "one shared connection"])
def test_claim_due__concurrent_workers_never_share_a_row(backend: Backend, sharing: str) -> None:
    # Given 60 due deliveries and two workers racing to drain them
    setup = backend.open()
    setup.enqueue(ACTIVITY, inboxes(60), BODY, NOW)
    workers = (
        [setup, setup] if sharing == "one shared connection" else [backend.open(), backend.open()]
    )
    barrier = threading.Barrier(2)
    claimed: list[list[str]] = [[], []]

    def drain(n: int) -> None:
        barrier.wait()
        while batch := workers[n].claim_due(NOW, limit=3, lease_seconds=300, owner=f"w{n}"):
            claimed[n].extend(d.id for d in batch)

    # When
    threads = [threading.Thread(target=drain, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # Then each row went to exactly one worker, and each row was handed out once
    all_ids = {d.id for d in setup.list_deliveries(limit=100)}
    assert sorted(claimed[0] + claimed[1]) == sorted(all_ids)
    assert {d.attempts for d in setup.list_deliveries(limit=100)} == {1}


def test_complete__marks_done_and_releases_the_lease(store: Store) -> None:
    store.enqueue(ACTIVITY, ["https://a.example/inbox"], BODY, NOW)
    (delivery,) = store.claim_due(NOW, limit=1, lease_seconds=60, owner="w")

    store.complete(delivery.id, 202, NOW + timedelta(seconds=1))

    done = store.get_delivery(delivery.id)
    assert done is not None
    assert (done.state, done.last_status, done.lease_owner, done.lease_until) == (
        "done",
        202,
        None,
        None,
    )
    assert done.updated_at == NOW + timedelta(seconds=1)
    assert store.queue_stats() == QueueStats(done=1)
    assert store.claim_due(NOW + timedelta(days=1), limit=1, lease_seconds=60, owner="w") == []


def test_retry_later__reschedules_and_keeps_the_error(store: Store) -> None:
    store.enqueue(ACTIVITY, ["https://a.example/inbox"], BODY, NOW)
    (delivery,) = store.claim_due(NOW, limit=1, lease_seconds=60, owner="w")
    retry_at = NOW + timedelta(minutes=5)

    store.retry_later(delivery.id, retry_at, 503, "Service Unavailable", NOW)

    row = store.get_delivery(delivery.id)
    assert row is not None
    assert (row.state, row.next_attempt_at, row.last_status, row.last_error) == (
        "pending",
        retry_at,
        503,
        "Service Unavailable",
    )
    assert row.lease_owner is None
    assert store.claim_due(retry_at - timedelta(seconds=1), 1, 60, "w") == []
    assert [d.attempts for d in store.claim_due(retry_at, 1, 60, "w")] == [2]


def test_give_up__dead_rows_can_be_retried(store: Store) -> None:
    store.enqueue(ACTIVITY, inboxes(3), BODY, NOW)
    claimed = store.claim_due(NOW, limit=3, lease_seconds=60, owner="w")
    for delivery in claimed:
        store.give_up(delivery.id, None, "connect timeout", NOW)
    assert store.queue_stats() == QueueStats(dead=3)
    assert {d.last_error for d in store.list_deliveries(state="dead")} == {"connect timeout"}
    later = NOW + timedelta(days=1)

    assert store.retry_dead([claimed[0].id], now=later) == 1
    assert store.retry_dead([], now=later) == 0
    assert store.queue_stats() == QueueStats(pending=1, dead=2)
    assert store.retry_dead(now=later) == 2

    revived = store.claim_due(later, limit=10, lease_seconds=60, owner="w")
    assert len(revived) == 3
    assert {d.attempts for d in revived} == {1}


def test_list_deliveries__by_state_most_recent_first(store: Store) -> None:
    store.enqueue(ACTIVITY, inboxes(3), BODY, NOW)
    first, second, third = store.claim_due(NOW, limit=3, lease_seconds=60, owner="w")
    store.complete(first.id, 200, NOW + timedelta(seconds=1))
    store.complete(second.id, 200, NOW + timedelta(seconds=2))

    assert [d.id for d in store.list_deliveries(state="done")] == [second.id, first.id]
    assert [d.id for d in store.list_deliveries(state="pending")] == [third.id]
    assert len(store.list_deliveries(limit=2)) == 2


def test_prune_deliveries__drops_old_done_rows_only(store: Store) -> None:
    store.enqueue(ACTIVITY, inboxes(3), BODY, NOW)
    old, recent, failed = store.claim_due(NOW, limit=3, lease_seconds=60, owner="w")
    store.complete(old.id, 202, NOW)
    store.complete(recent.id, 202, NOW + timedelta(days=10))
    store.give_up(failed.id, 410, "Gone", NOW)

    assert store.prune_deliveries(NOW + timedelta(days=7)) == 1

    assert store.get_delivery(old.id) is None
    assert store.queue_stats() == QueueStats(done=1, dead=1)


def test_prune_deliveries__drops_dead_rows_past_their_own_retention(store: Store) -> None:
    store.enqueue(ACTIVITY, inboxes(3), BODY, NOW)
    old_dead, new_dead, pending = store.claim_due(NOW, limit=3, lease_seconds=60, owner="w")
    store.give_up(old_dead.id, 400, "Bad Request", NOW)
    store.give_up(new_dead.id, 400, "Bad Request", NOW + timedelta(days=60))
    store.retry_later(pending.id, NOW + timedelta(days=1), 503, "later", NOW)

    pruned = store.prune_deliveries(
        NOW + timedelta(days=7), dead_older_than=NOW + timedelta(days=30)
    )

    assert pruned == 1
    assert store.get_delivery(old_dead.id) is None
    assert (
        store.get_delivery(new_dead.id) is not None and store.get_delivery(pending.id) is not None
    )
