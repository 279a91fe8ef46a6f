"""Publishing fixtures: the fake remote server of tests/inbox (uvicorn on 127.0.0.1:0, in a
thread), recording every POST the blog makes, reset for each test; SQLite or PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from fedipress.federation.keys import RSAPrivateKey, generate_private_key
from tests.inbox.remote import RemoteServer, load_key, serve_in_thread


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def publish_remote_keys() -> dict[str, RSAPrivateKey]:
    other = generate_private_key()
    return {"alice": load_key("alice"), "bob": load_key("bob"), "carol": other}


@pytest.fixture(scope="session")
def publish_remote_server(
    publish_remote_keys: dict[str, RSAPrivateKey],
) -> Iterator[RemoteServer]:
    app = RemoteServer(publish_remote_keys)
    with serve_in_thread(app) as server:
        app.port = server.port  # type: ignore[attr-defined]
        yield app


@pytest.fixture
def remote(publish_remote_server: RemoteServer) -> RemoteServer:
    publish_remote_server.reset()
    return publish_remote_server


# --- stores -----------------------------------------------------------------------------------

POSTGRES_URL = os.environ.get(
    "FEDIPRESS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _admin(sql: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """FEDIPRESS_DATABASE_URL for the CLI: None (the site's SQLite file), or a PostgreSQL
    schema of its own, dropped afterwards. Fails, never skips, without PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    schema = f"fedipress_publish_{uuid.uuid4().hex[:12]}"
    try:
        _admin(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        pytest.fail(f"these tests need PostgreSQL at {POSTGRES_URL}: {exc}", pytrace=False)
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        _admin(f"DROP SCHEMA {schema} CASCADE")
