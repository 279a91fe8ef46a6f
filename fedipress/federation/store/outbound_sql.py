"""The outbound half of the SQL stores: the delivery queue, remote hosts, published objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .base import (
    ACTIVITYPUB,
    Announcement,
    Delivery,
    DeliveryState,
    HostStatus,
    PublishedObject,
    PublishedState,
    QueueStats,
)
from .sqlcore import (
    SqlCore,
    format_optional_time,
    format_time,
    normalize_authority,
    parse_optional_time,
    parse_time,
    placeholders,
)

DELIVERY_COLUMNS = (
    "id, activity_id, inbox_url, body, state, attempts, next_attempt_at, lease_owner, "
    "lease_until, last_status, last_error, created_at, updated_at, signed_by, signing_key, "
    "channel"
)
_PUBLISHED = (
    "object_id, uid, version, updated, state, first_published_at, last_delivered_at, object_type"
)
_ANNOUNCEMENT = "id, destination, object_id, remote_id, created_at, updated_at, removed_at"


def channel_filter(channels: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    """The SQL condition (with its parameters) that keeps a claim to these channels."""
    if channels is None:
        return "", ()
    kinds = tuple(dict.fromkeys(channels)) or ("",)  # no channel: a condition nothing meets
    return f" AND channel IN ({placeholders(len(kinds))})", kinds


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=row[0],
        activity_id=row[1],
        inbox_url=row[2],
        body=row[3],
        state=row[4],
        attempts=row[5],
        next_attempt_at=parse_time(row[6]),
        lease_owner=row[7],
        lease_until=parse_optional_time(row[8]),
        last_status=row[9],
        last_error=row[10],
        created_at=parse_time(row[11]),
        updated_at=parse_time(row[12]),
        signed_by=row[13],
        signing_key=row[14],
        channel=row[15],
    )


def _announcement(row: Sequence[Any]) -> Announcement:
    return Announcement(
        id=row[0],
        destination=row[1],
        object_id=row[2],
        remote_id=row[3],
        created_at=parse_time(row[4]),
        updated_at=parse_time(row[5]),
        removed_at=parse_optional_time(row[6]),
    )


def _published(row: Sequence[Any]) -> PublishedObject:
    return PublishedObject(
        object_id=row[0],
        uid=row[1],
        version=row[2],
        updated=parse_optional_time(row[3]),
        state=row[4],
        first_published_at=parse_time(row[5]),
        last_delivered_at=parse_optional_time(row[6]),
        type=row[7],
    )


class OutboundSql(SqlCore):
    def _claim_rows(
        self, owner: str, lease_until: str, now: str, limit: int, channels: Sequence[str] | None
    ) -> list[Any]:
        """Backend hook: lease up to `limit` due rows (of `channels`, when given, with
        `channel_filter`), return them as DELIVERY_COLUMNS rows.

        Runs inside a transaction; must never hand a row to two concurrent callers.
        """
        raise NotImplementedError

    # -- delivery queue ---------------------------------------------------------------------
    def enqueue(
        self,
        activity_id: str,
        inboxes: Iterable[str],
        body: str,
        now: datetime,
        signed_by: str | None = None,
        signing_key: str | None = None,
        channel: str = ACTIVITYPUB,
    ) -> int:
        stamp = format_time(now)
        added = 0
        with self._atomic():
            for inbox in dict.fromkeys(inboxes):
                added += self._execute(
                    f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES ({placeholders(16)}) "
                    "ON CONFLICT (activity_id, inbox_url) DO NOTHING",
                    (
                        uuid.uuid4().hex,
                        activity_id,
                        inbox,
                        body,
                        "pending",
                        0,
                        stamp,
                        None,
                        None,
                        None,
                        None,
                        stamp,
                        stamp,
                        signed_by,
                        signing_key,
                        channel,
                    ),
                ).rowcount
        return added

    def count_pending_signed_with(self, signing_key: str) -> int:
        row = self._one(
            "SELECT COUNT(*) FROM deliveries WHERE signing_key = ? AND state = 'pending'",
            (signing_key,),
        )
        return int(row[0])

    def claim_due(
        self,
        now: datetime,
        limit: int,
        lease_seconds: int,
        owner: str,
        channels: Sequence[str] | None = None,
    ) -> list[Delivery]:
        lease_until = format_time(now + timedelta(seconds=lease_seconds))
        with self._atomic():
            rows = self._claim_rows(owner, lease_until, format_time(now), limit, channels)
        # RETURNING gives no order guarantee.
        return sorted((_delivery(row) for row in rows), key=lambda d: (d.next_attempt_at, d.id))

    def release(self, ids: Sequence[str], owner: str) -> int:
        if not ids:
            return 0
        return self._write(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, "
            "attempts = attempts - 1 WHERE state = 'pending' AND lease_owner = ? "
            f"AND id IN ({placeholders(len(ids))})",
            (owner, *ids),
        )

    def _finish(
        self,
        id: str,
        state: DeliveryState,
        next_at: datetime | None,
        status: int | None,
        error: str | None,
        now: datetime,
    ) -> None:
        self._write(
            "UPDATE deliveries SET state = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
            "lease_owner = NULL, lease_until = NULL, last_status = ?, last_error = ?, "
            "updated_at = ? WHERE id = ?",
            (state, format_optional_time(next_at), status, error, format_time(now), id),
        )

    def complete(self, id: str, status: int | None, now: datetime) -> None:
        self._finish(id, "done", None, status, None, now)

    def retry_later(
        self, id: str, next_at: datetime, status: int | None, error: str, now: datetime
    ) -> None:
        self._finish(id, "pending", next_at, status, error, now)

    def give_up(self, id: str, status: int | None, error: str, now: datetime) -> None:
        self._finish(id, "dead", None, status, error, now)

    def queue_stats(self) -> QueueStats:
        rows = self._all("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
        return QueueStats(**{state: int(count) for state, count in rows})

    def get_delivery(self, id: str) -> Delivery | None:
        row = self._one(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (id,))
        return _delivery(row) if row else None

    def list_deliveries(
        self, state: DeliveryState | None = None, limit: int = 100
    ) -> list[Delivery]:
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        rows = self._all(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries {where} "
            "ORDER BY updated_at DESC, id LIMIT ?",
            (*params, limit),
        )
        return [_delivery(row) for row in rows]

    def retry_dead(self, ids: Sequence[str] | None = None, *, now: datetime) -> int:
        if ids is not None and not ids:
            return 0
        only = f" AND id IN ({placeholders(len(ids))})" if ids is not None else ""
        stamp = format_time(now)
        return self._write(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, "
            "lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE state = 'dead'" + only,
            (stamp, stamp, *(ids or ())),
        )

    def prune_deliveries(
        self, older_than: datetime, dead_older_than: datetime | None = None
    ) -> int:
        done = self._write(
            "DELETE FROM deliveries WHERE state = 'done' AND updated_at < ?",
            (format_time(older_than),),
        )
        if dead_older_than is None:
            return done
        return done + self._write(
            "DELETE FROM deliveries WHERE state = 'dead' AND updated_at < ?",
            (format_time(dead_older_than),),
        )

    # -- hosts ------------------------------------------------------------------------------
    def record_host_failure(self, host: str, now: datetime) -> int:
        host = normalize_authority(host)
        with self._atomic():
            self._execute(
                "INSERT INTO hosts (host, last_failure_at) VALUES (?, ?) "
                "ON CONFLICT (host) DO UPDATE SET last_failure_at = excluded.last_failure_at",
                (host, format_time(now)),
            )
            self._execute(
                "INSERT INTO host_failure_days (host, day) VALUES (?, ?) "
                "ON CONFLICT (host, day) DO NOTHING",
                (host, now.astimezone(UTC).date().isoformat()),
            )
            row = self._execute(
                "SELECT COUNT(*) FROM host_failure_days WHERE host = ?", (host,)
            ).fetchone()
        return int(row[0])

    def record_host_success(self, host: str, now: datetime) -> None:
        host = normalize_authority(host)
        with self._atomic():
            self._execute(
                "INSERT INTO hosts (host, unavailable, last_success_at) VALUES (?, 0, ?) "
                "ON CONFLICT (host) DO UPDATE SET unavailable = 0, "
                "last_success_at = excluded.last_success_at",
                (host, format_time(now)),
            )
            self._execute("DELETE FROM host_failure_days WHERE host = ?", (host,))

    def set_host_unavailable(self, host: str, unavailable: bool) -> None:
        self._write(
            "INSERT INTO hosts (host, unavailable) VALUES (?, ?) "
            "ON CONFLICT (host) DO UPDATE SET unavailable = excluded.unavailable",
            (normalize_authority(host), int(unavailable)),
        )

    def is_host_unavailable(self, host: str) -> bool:
        row = self._one(
            "SELECT unavailable FROM hosts WHERE host = ?", (normalize_authority(host),)
        )
        return bool(row and row[0])

    def get_host(self, host: str) -> HostStatus | None:
        host = normalize_authority(host)
        with self._lock:
            row = self._one(
                "SELECT unavailable, last_success_at, last_failure_at FROM hosts WHERE host = ?",
                (host,),
            )
            days = self._all(
                "SELECT day FROM host_failure_days WHERE host = ? ORDER BY day", (host,)
            )
        if row is None:
            return None
        return HostStatus(
            host,
            tuple(d[0] for d in days),
            bool(row[0]),
            parse_optional_time(row[1]),
            parse_optional_time(row[2]),
        )

    # -- published objects ------------------------------------------------------------------
    def get_published(self, object_id: str) -> PublishedObject | None:
        row = self._one(
            f"SELECT {_PUBLISHED} FROM published_objects WHERE object_id = ?", (object_id,)
        )
        return _published(row) if row else None

    def put_published(self, obj: PublishedObject) -> None:
        self._write(
            f"INSERT INTO published_objects ({_PUBLISHED}) VALUES ({placeholders(8)}) "
            "ON CONFLICT (object_id) DO UPDATE SET uid = excluded.uid, "
            "version = excluded.version, updated = excluded.updated, state = excluded.state, "
            "last_delivered_at = excluded.last_delivered_at, object_type = excluded.object_type",
            (
                obj.object_id,
                obj.uid,
                obj.version,
                format_optional_time(obj.updated),
                obj.state,
                format_time(obj.first_published_at),
                format_optional_time(obj.last_delivered_at),
                obj.type,
            ),
        )

    def list_published(
        self, state: PublishedState | None = None, limit: int = 1000, offset: int = 0
    ) -> list[PublishedObject]:
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        rows = self._all(
            f"SELECT {_PUBLISHED} FROM published_objects {where} "
            "ORDER BY object_id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_published(row) for row in rows]

    # -- announcements ----------------------------------------------------------------------
    def put_announcement(self, item: Announcement) -> None:
        self._write(
            f"INSERT INTO announcements ({_ANNOUNCEMENT}) VALUES ({placeholders(7)}) "
            "ON CONFLICT (id) DO UPDATE SET destination = excluded.destination, "
            "object_id = excluded.object_id, remote_id = excluded.remote_id, "
            "updated_at = excluded.updated_at, removed_at = excluded.removed_at",
            (
                item.id,
                item.destination,
                item.object_id,
                item.remote_id,
                format_time(item.created_at),
                format_time(item.updated_at),
                format_optional_time(item.removed_at),
            ),
        )

    def get_announcement(self, id: str) -> Announcement | None:
        row = self._one(f"SELECT {_ANNOUNCEMENT} FROM announcements WHERE id = ?", (id,))
        return _announcement(row) if row else None

    def latest_announcement(self, destination: str, object_id: str) -> Announcement | None:
        row = self._one(
            f"SELECT {_ANNOUNCEMENT} FROM announcements WHERE destination = ? AND object_id = ? "
            "AND removed_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
            (destination, object_id),
        )
        return _announcement(row) if row else None

    def remove_announcement(self, id: str) -> bool:
        return self._write("DELETE FROM announcements WHERE id = ?", (id,)) > 0
