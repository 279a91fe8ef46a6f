"""The SQLite store (stdlib sqlite3): the default, one file next to the site."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from fedipress.errors import StoreError

from .inbound_sql import InboundSql
from .outbound_sql import DELIVERY_COLUMNS, OutboundSql, channel_filter

BUSY_TIMEOUT_SECONDS = 10.0
# Error codes about the file or its locks, which the user can fix; others (constraints,
# syntax) are bugs and keep their own exception.
_USER_FIXABLE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_FULL",
    "SQLITE_CANTOPEN",
    "SQLITE_CORRUPT",
    "SQLITE_NOTADB",
    "SQLITE_PERM",
)


class SqliteStore(InboundSql, OutboundSql):
    """One connection shared by threads behind the store's lock (hence check_same_thread=False)."""

    # IMMEDIATE takes the write lock up front: two connections that both read and then write
    # would otherwise deadlock, and one of them fail with SQLITE_BUSY instead of waiting.
    _BEGIN: ClassVar[str] = "BEGIN IMMEDIATE"
    _driver_errors = (sqlite3.DatabaseError,)

    def __init__(self, path: Path | str, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        """Open (creating if needed) and migrate the database at `path` (or ':memory:')."""
        super().__init__()
        self.path = str(path)
        self._description = f"SQLite database {self.path}"
        try:
            # isolation_level=None: no implicit BEGINs; SqlCore issues them itself.
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open SQLite database {self.path}: {exc}",
                hint="Check that its folder exists and is writable, "
                "or set FEDIPRESS_DATABASE_URL to another path.",
            ) from exc
        try:
            with self._translate_errors():
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
                self._conn.execute("PRAGMA foreign_keys = ON")
                self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _is_user_fixable(self, exc: Exception) -> bool:
        return str(getattr(exc, "sqlite_errorname", "")).startswith(_USER_FIXABLE)

    def _execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def _claim_rows(
        self, owner: str, lease_until: str, now: str, limit: int, channels: Sequence[str] | None
    ) -> list[Any]:
        # The write lock held since BEGIN IMMEDIATE is what makes this claim exclusive.
        only, kinds = channel_filter(channels)
        return self._execute(
            "UPDATE deliveries SET lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
            "updated_at = ? WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' "
            f"AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?){only} "
            f"ORDER BY next_attempt_at, id LIMIT ?) RETURNING {DELIVERY_COLUMNS}",
            (owner, lease_until, now, now, now, *kinds, limit),
        ).fetchall()

    def _close_connection(self) -> None:
        self._conn.close()
