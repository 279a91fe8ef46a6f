"""Remote host availability, counted in distinct UTC failure days as Mastodon does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from fedipress.federation.store import Store

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_record_host_failure__counts_distinct_utc_days(store: Store) -> None:
    assert store.record_host_failure("down.example", NOW) == 1
    assert store.record_host_failure("down.example", NOW + timedelta(hours=3)) == 1
    assert store.record_host_failure("DOWN.example", NOW + timedelta(days=1)) == 2
    # 23:30 at UTC-5 is already the next day in UTC
    late_evening = datetime(2024, 5, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert store.record_host_failure("down.example", late_evening) == 3

    status = store.get_host("down.example")
    assert status is not None
    assert status.failure_days == ("2024-05-01", "2024-05-02", "2024-05-03")
    assert status.last_failure_at == late_evening
    assert status.unavailable is False
    assert store.get_host("other.example") is None


def test_record_host_success__forgets_failures_and_unavailability(store: Store) -> None:
    for day in range(7):
        store.record_host_failure("flaky.example", NOW + timedelta(days=day))
    store.set_host_unavailable("flaky.example", True)
    assert store.is_host_unavailable("flaky.example") is True

    store.record_host_success("flaky.example", NOW + timedelta(days=8))

    status = store.get_host("flaky.example")
    assert status is not None
    assert (status.failure_days, status.unavailable) == ((), False)
    assert status.last_success_at == NOW + timedelta(days=8)
    assert store.record_host_failure("flaky.example", NOW + timedelta(days=9)) == 1


def test_set_host_unavailable__toggles_for_known_and_new_hosts(store: Store) -> None:
    assert store.is_host_unavailable("never-seen.example") is False

    store.set_host_unavailable("never-seen.example", True)
    assert store.is_host_unavailable("Never-Seen.example") is True

    store.set_host_unavailable("never-seen.example", False)
    assert store.is_host_unavailable("never-seen.example") is False


def test_hosts__a_port_makes_another_host(store: Store) -> None:
    # Given one address failing for seven days on port 8443
    for day in range(7):
        store.record_host_failure("Peer.example:8443", NOW + timedelta(days=day))
    store.set_host_unavailable("peer.example:8443", True)
    # Then the same address on other ports is not affected
    assert store.is_host_unavailable("peer.example:8443") is True
    assert store.is_host_unavailable("peer.example") is False
    assert store.is_host_unavailable("peer.example:9000") is False
    assert store.get_host("peer.example") is None
    # and a success on another port leaves its failures alone
    store.record_host_success("peer.example:9000", NOW + timedelta(days=8))
    status = store.get_host("peer.example:8443")
    assert status is not None and len(status.failure_days) == 7 and status.unavailable
