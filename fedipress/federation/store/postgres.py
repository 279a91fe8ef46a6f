"""The PostgreSQL store (psycopg 3, the optional `postgres` extra): one connection, no pool."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from fedipress.errors import StoreError

from .inbound_sql import InboundSql
from .outbound_sql import DELIVERY_COLUMNS, OutboundSql, channel_filter
from .url import redact_url

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_SECONDS = 10


@lru_cache(maxsize=256)
def _to_pyformat(sql: str) -> str:
    # Our SQL uses '?' placeholders and no '?' inside literals, so this rewrite is exact.
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresStore(InboundSql, OutboundSql):
    """Statements run in autocommit mode unless SqlCore has issued BEGIN."""

    def __init__(self, conninfo: str) -> None:
        """Connect to `conninfo` (a postgresql:// URL or key=value string) and migrate.

        Choose a schema with `?options=-csearch_path%3Dname` in the URL.
        """
        super().__init__()
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                "PostgreSQL support needs the psycopg package",
                hint="Install it with: pip install 'fedipress[postgres]'",
            ) from exc
        self._description = f"PostgreSQL database {redact_url(conninfo)}"
        self._conninfo = conninfo
        # InterfaceError: psycopg's answer to a statement on a connection it already closed.
        self._driver_errors = (psycopg.OperationalError, psycopg.InterfaceError)
        try:
            self._conn: psycopg.Connection[tuple[Any, ...]] = self._connect()
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to {self._description}: {exc}".strip(),
                hint="Check FEDIPRESS_DATABASE_URL: host, port, user, password and database.",
            ) from exc
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg

        return psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="fedipress",
        )

    def _connection_lost(self) -> bool:
        return bool(self._conn.closed or self._conn.broken)

    def _reconnect(self) -> None:
        import psycopg

        with contextlib.suppress(psycopg.Error):
            self._conn.close()
        self._conn = self._connect()

    def _execute(self, sql: str, params: Sequence[object] = ()) -> psycopg.Cursor[tuple[Any, ...]]:
        if not params:
            return self._conn.execute(sql)  # no parameters: psycopg sends the text as is
        return self._conn.execute(_to_pyformat(sql), params)

    def _claim_rows(
        self, owner: str, lease_until: str, now: str, limit: int, channels: Sequence[str] | None
    ) -> list[Any]:
        # SKIP LOCKED: a second worker takes other rows instead of waiting for ours. The CTE
        # runs the locking SELECT exactly once (an IN-subquery with LIMIT may run more often).
        columns = ", ".join(f"deliveries.{c}" for c in DELIVERY_COLUMNS.split(", "))
        only, kinds = channel_filter(channels)
        return self._execute(
            "WITH due AS (SELECT id FROM deliveries WHERE state = 'pending' "
            f"AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?){only} "
            "ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED) "
            "UPDATE deliveries SET lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
            f"updated_at = ? FROM due WHERE deliveries.id = due.id RETURNING {columns}",
            (now, now, *kinds, limit, owner, lease_until, now),
        ).fetchall()

    def _lock_for_migrations(self) -> None:
        # Transaction-scoped, per schema: two processes starting at once migrate one at a time.
        self._execute("SELECT pg_advisory_xact_lock(hashtext('fedipress:' || current_schema()))")

    def _close_connection(self) -> None:
        self._conn.close()
