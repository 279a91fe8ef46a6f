"""Inbox fixtures: the fake remote server, a real store (SQLite or PostgreSQL), a fresh blog
key, and `inbox`: an InboxService called in process through httpx's ASGITransport.

PostgreSQL must be running (the tests fail, never skip, without it); each test gets its own
schema, prepared ahead in threads and dropped afterwards, as tests/store does.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from fedipress.config import Config
from fedipress.federation.keys import RSAPrivateKey, generate_private_key
from fedipress.federation.store import open_store
from tests.inbox.harness import Database, Inbox, make_config, open_inbox
from tests.inbox.remote import RemoteServer, load_key, serve_in_thread

POSTGRES_URL = os.environ.get(
    "FEDIPRESS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- keys and the remote server ---------------------------------------------------------------


@pytest.fixture(scope="session")
def blog_key() -> RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="session")
def remote_keys() -> dict[str, RSAPrivateKey]:
    alice, bob, other = load_key("alice"), load_key("bob"), generate_private_key()
    return {
        "alice": alice,
        "bob": bob,
        "gts": other,
        "ghost": other,  # deleted: its actor answers 410
        "nobody": other,  # never existed: 404
        "alice2": other,  # alice's new account (alsoKnownAs alice)
        "dave": bob,  # a Move target that does not list alice
    }


@pytest.fixture(scope="session")
def remote_server(remote_keys: dict[str, RSAPrivateKey]) -> Iterator[RemoteServer]:
    app = RemoteServer(remote_keys)
    with serve_in_thread(app) as server:
        app.port = server.port  # type: ignore[attr-defined]
        yield app


@pytest.fixture
def remote(remote_server: RemoteServer) -> RemoteServer:
    remote_server.reset()
    return remote_server


# --- stores -----------------------------------------------------------------------------------


def _schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}%20-csynchronous_commit%3Doff"


def _admin(sql: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def _create_schema() -> str:
    schema = f"fedipress_inbox_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE SCHEMA {schema}")
    open_store(_schema_url(schema), Path(tempfile.gettempdir())).close()
    return schema


class SchemaPool:
    """Migrated schemas made a few at a time ahead of the tests; used ones are dropped."""

    AHEAD = 3

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(self.AHEAD, thread_name_prefix="pg-inbox")
        self._ready: deque[Future[str]] = deque()
        self._drops: list[Future[None]] = []

    def take(self) -> str:
        while len(self._ready) <= self.AHEAD:
            self._ready.append(self._executor.submit(_create_schema))
        return self._ready.popleft().result()

    def drop(self, schema: str) -> None:
        self._drops.append(self._executor.submit(_admin, f"DROP SCHEMA {schema} CASCADE"))

    def close(self) -> None:
        for ready in self._ready:
            if ready.exception() is None:
                self.drop(ready.result())
        for dropped in self._drops:
            dropped.result()
        self._executor.shutdown()


@pytest.fixture(scope="session")
def schema_pool() -> Iterator[SchemaPool]:
    pool = SchemaPool()
    yield pool
    pool.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database("sqlite", "sqlite:///inbox.db", tmp_path)
        yield db
        db.store.close()
        return
    pool: SchemaPool = request.getfixturevalue("schema_pool")
    try:
        schema = pool.take()
    except psycopg.Error as exc:
        pytest.fail(f"the inbox tests need PostgreSQL at {POSTGRES_URL}: {exc}", pytrace=False)
    db = Database("postgres", _schema_url(schema), tmp_path)
    try:
        yield db
    finally:
        db.store.close()
        pool.drop(schema)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """For tests about one code path that does not depend on the backend."""
    db = Database("sqlite", "sqlite:///inbox.db", tmp_path)
    yield db
    db.store.close()


# --- the inbox --------------------------------------------------------------------------------


@pytest.fixture
def inbox_config() -> Config:
    """Overridden by tests that need other settings (manual approval)."""
    return make_config()


@pytest.fixture
async def inbox(
    database: Database, remote: RemoteServer, blog_key: RSAPrivateKey, inbox_config: Config
) -> AsyncIterator[Inbox]:
    inbox = await open_inbox(database, remote, blog_key, inbox_config)
    yield inbox
    await inbox.client.aclose()
    await inbox.service.aclose()


@pytest.fixture
async def sqlite_inbox(
    sqlite_db: Database, remote: RemoteServer, blog_key: RSAPrivateKey, inbox_config: Config
) -> AsyncIterator[Inbox]:
    inbox = await open_inbox(sqlite_db, remote, blog_key, inbox_config)
    yield inbox
    await inbox.client.aclose()
    await inbox.service.aclose()
