"""The connection side of the SQL stores: lock, transactions, migrations, time as text.

Queries use `?` placeholders; a backend supplies `_execute` (rewriting them if it must), the
statement that begins a transaction, and the one query that differs (`_claim_rows`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self

from fedipress.errors import StoreConnectionLost, StoreError

from .schema import check_not_newer, check_same_names, load_migrations

_TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(value: datetime) -> str:
    """Aware datetime -> fixed-width UTC text, so that text order is time order."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
    return value.astimezone(UTC).strftime(_TIMESTAMP)


def format_optional_time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def parse_time(text: str) -> datetime:
    # fromisoformat reads this fixed form ('…T12:00:00.000000Z') several times faster than
    # strptime, which matters when a build reads tens of thousands of rows.
    return datetime.fromisoformat(text).astimezone(UTC)


def parse_optional_time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def normalize_host(value: str) -> str:
    """`Example.COM.` / `*.example.com` / `example.com:443` -> `example.com`."""
    host = value.strip().lower()
    if host.count(":") == 1:  # a port; IPv6 literals have more colons
        host = host.split(":")[0]
    return host.removeprefix("*.").strip(".")


def normalize_authority(value: str) -> str:
    """`Example.COM.:8443` -> `example.com:8443`: like normalize_host, but the port stays (two
    servers on one address, on different ports, are different hosts)."""
    authority = value.strip().lower()
    if authority.startswith("["):  # an IPv6 literal, with or without a port
        return authority
    name, _, port = authority.partition(":") if authority.count(":") == 1 else (authority, "", "")
    name = name.strip(".")
    return f"{name}:{port}" if port else name


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class SqlCore:
    """One connection guarded by a re-entrant lock; a transaction holds the lock throughout."""

    _BEGIN: ClassVar[str] = "BEGIN"
    _driver_errors: tuple[type[Exception], ...] = ()
    _description: str = "the database"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0

    # -- backend hooks ----------------------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        raise NotImplementedError

    def _close_connection(self) -> None:
        raise NotImplementedError

    def _is_user_fixable(self, exc: Exception) -> bool:
        """Whether a driver error is about the environment (unreachable, locked, disk) not a bug."""
        return True

    def _lock_for_migrations(self) -> None:
        """Keep two processes opening a fresh database from migrating it at once."""

    def _connection_lost(self) -> bool:
        """Whether the connection is gone (server restarted, backend killed, proxy timeout)."""
        return False

    def _reconnect(self) -> None:
        """Replace a lost connection with a new one."""
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._close_connection()

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except self._driver_errors as exc:
            if not self._is_user_fixable(exc):
                raise
            if self._connection_lost():
                raise StoreConnectionLost(
                    f"{self._description}: the connection was lost: {exc}".strip(),
                    hint="Nothing was written; the next request reconnects.",
                ) from exc
            raise StoreError(
                f"{self._description} failed: {exc}".strip(),
                hint="Check that the database is reachable, writable and not locked "
                "by a long-running process.",
            ) from exc

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        with self._lock, self._translate_errors():
            if self._depth == 0:
                yield from self._outer_transaction()
            else:
                yield from self._savepoint()

    def _outer_transaction(self) -> Iterator[Self]:
        self._execute_first(self._BEGIN)
        self._depth = 1
        try:
            yield self
            self._execute("COMMIT")
        except BaseException:
            self._execute_quietly("ROLLBACK")
            raise
        finally:
            self._depth = 0

    def _savepoint(self) -> Iterator[Self]:
        name = f"fedipress_sp{self._depth}"
        self._execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield self
        except BaseException:
            self._execute_quietly(f"ROLLBACK TO SAVEPOINT {name}")
            self._execute_quietly(f"RELEASE SAVEPOINT {name}")
            raise
        finally:
            self._depth -= 1
        self._execute(f"RELEASE SAVEPOINT {name}")

    def _execute_first(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        """A statement outside any transaction: if the connection was lost since its last use
        (idle connections die with a server restart), reconnect and run it once more. Safe:
        nothing of ours was pending on the old connection."""
        try:
            return self._execute(sql, params)
        except self._driver_errors:
            if not self._connection_lost():
                raise
            self._reconnect()
            return self._execute(sql, params)

    def _execute_quietly(self, sql: str) -> None:
        # The original exception matters more than a failed rollback (e.g. a lost connection).
        try:
            self._execute(sql)
        except self._driver_errors:
            pass

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """Join the caller's transaction, or run in a new one."""
        with self._lock:
            if self._depth:
                yield
            else:
                with self.transaction():
                    yield

    def _one(self, sql: str, params: Sequence[object] = ()) -> Any:
        with self._lock, self._translate_errors():
            return self._run(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        with self._lock, self._translate_errors():
            return self._run(sql, params).fetchall()

    def _run(self, sql: str, params: Sequence[object]) -> Cursor:
        # A read on its own may reconnect; one inside a transaction must not (it would leave it).
        return self._execute(sql, params) if self._depth else self._execute_first(sql, params)

    def _write(self, sql: str, params: Sequence[object] = ()) -> int:
        with self._atomic():
            return self._execute(sql, params).rowcount

    # -- migrations -------------------------------------------------------------------------
    def _migrate(self) -> None:
        migrations = load_migrations()
        with self.transaction():
            self._lock_for_migrations()
            self._execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            rows = self._execute("SELECT version, name FROM schema_migrations").fetchall()
            applied = {int(version): str(name) for version, name in rows}
            check_not_newer(max(applied, default=0), migrations[-1].version)
            check_same_names(applied, migrations)
            # By version, not "newer than the last": gaps in the numbers are allowed, and a
            # migration numbered below the newest applied one still gets applied.
            for migration in migrations:
                if migration.version in applied:
                    continue
                for statement in migration.statements():
                    self._execute(statement)
                # The one clock read in the store: bookkeeping nobody compares.
                self._execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, format_time(datetime.now(UTC))),
                )

    def schema_version(self) -> int:
        row = self._one("SELECT MAX(version) FROM schema_migrations")
        return int(row[0] or 0)
