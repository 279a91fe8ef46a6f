"""Store tests run against both backends: a SQLite file, and a PostgreSQL schema of their own.

PostgreSQL must be running (the tests fail, never skip, without it). Each test gets a unique
schema, dropped afterwards. Migrating a schema is ~0.1 s of mostly I/O wait, so migrated
schemas are prepared a few at a time in background threads, ahead of the tests that use them.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fedipress.errors import StoreError
from fedipress.federation.store import Store, open_store

# Read at import time: the autouse clean_environ fixture removes FEDIPRESS_* variables.
POSTGRES_URL = os.environ.get(
    "FEDIPRESS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgres"]


@dataclass
class Backend:
    """One database; `open()` gives as many connections (stores) to it as a test needs."""

    name: str
    url: str
    site_dir: Path
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store = open_store(self.url, self.site_dir)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Raw SQL behind the store's back, for tampering with the schema."""
        if self.name == "sqlite":
            with closing(sqlite3.connect(self.site_dir / "store.db")) as conn, conn:
                return conn.execute(sql, params).fetchall()
        with psycopg.connect(self.url, autocommit=True) as pg:
            cursor = pg.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []


def _schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    # Test data need not survive a crash: not waiting for the WAL flush on commit saves time.
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"


def _admin_execute(sql: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(sql)


def _create_schema(migrated: bool) -> str:
    schema = f"fedipress_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(f"CREATE SCHEMA {schema}")
    if migrated:
        open_store(_schema_url(schema), Path(tempfile.gettempdir())).close()
    return schema


def _drop_schema(schema: str) -> None:
    _admin_execute(f"DROP SCHEMA {schema} CASCADE")


def _need_postgres(exc: Exception) -> None:
    pytest.fail(
        f"The store tests need PostgreSQL at {POSTGRES_URL} and could not use it: {exc}\n"
        "Start PostgreSQL (trust auth, database 'test') or set FEDIPRESS_TEST_POSTGRES_URL.",
        pytrace=False,
    )


class SchemaPool:
    """Unique migrated schemas, prepared ahead in threads; returned schemas are dropped."""

    AHEAD = 4

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self.AHEAD, thread_name_prefix="pg-schema")
        self._ready: deque[Future[str]] = deque()
        self._drops: list[Future[None]] = []

    def take(self) -> str:
        while len(self._ready) <= self.AHEAD:
            self._ready.append(self._executor.submit(_create_schema, True))
        return self._ready.popleft().result()

    def drop(self, schema: str) -> None:
        self._drops.append(self._executor.submit(_drop_schema, schema))

    def close(self) -> None:
        for ready in self._ready:
            if ready.exception() is None:
                self.drop(ready.result())
        for dropped in self._drops:
            dropped.result()  # a failed DROP fails the run rather than leaving schemas behind
        self._executor.shutdown()


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[SchemaPool]:
    pool = SchemaPool()
    try:
        yield pool
    finally:
        pool.close()


def _backend(request: pytest.FixtureRequest, tmp_path: Path, migrated: bool) -> Iterator[Backend]:
    if request.param == "sqlite":
        # The relative URL form, resolved against the site folder.
        backend = Backend("sqlite", "sqlite:///store.db", tmp_path)
        yield backend
        backend.close_all()
        return
    pool: SchemaPool = request.getfixturevalue("postgres_schemas")
    try:
        schema = pool.take() if migrated else _create_schema(migrated=False)
    except (psycopg.Error, StoreError) as exc:
        _need_postgres(exc)
    backend = Backend("postgres", _schema_url(schema), tmp_path)
    try:
        yield backend
    finally:
        backend.close_all()
        pool.drop(schema)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A database for stores; PostgreSQL's comes migrated (opening it still checks)."""
    yield from _backend(request, tmp_path, migrated=True)


@pytest.fixture(params=BACKENDS)
def empty_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A database nothing has touched yet."""
    yield from _backend(request, tmp_path, migrated=False)


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()
