"""The federation store: followers, inbox records and the delivery queue."""

from __future__ import annotations

from pathlib import Path

from .base import (
    Block,
    CachedKey,
    Delivery,
    Flag,
    Follower,
    HostStatus,
    Interaction,
    InteractionCounts,
    PublishedObject,
    QueueStats,
    RemoteActor,
    RemoteKey,
    Store,
)
from .url import DatabaseUrl, parse_database_url

__all__ = [
    "Block",
    "CachedKey",
    "DatabaseUrl",
    "Delivery",
    "Flag",
    "Follower",
    "HostStatus",
    "Interaction",
    "InteractionCounts",
    "PublishedObject",
    "QueueStats",
    "RemoteActor",
    "RemoteKey",
    "Store",
    "open_store",
    "parse_database_url",
]


def open_store(url: str | None, site_dir: Path) -> Store:
    """Open and migrate the store named by `url` (FEDIPRESS_DATABASE_URL's value).

    Raises StoreError when the database cannot be opened or was migrated by a newer fedipress.
    """
    location = parse_database_url(url, site_dir)
    if location.backend == "postgres":
        # Imported here: psycopg is an optional extra.
        from .postgres import PostgresStore

        return PostgresStore(location.target)
    from .sqlite import SqliteStore

    if location.is_default:
        Path(location.target).parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(location.target)
