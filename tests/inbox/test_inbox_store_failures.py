"""The running inbox (uvicorn, real HTTP) against PostgreSQL trouble: a dropped connection is
survived, and a transaction waiting on a lock does not stall other requests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from fedipress.config import Config
from fedipress.federation.keys import RSAPrivateKey
from tests.inbox.conftest import POSTGRES_URL
from tests.inbox.harness import POST, Database
from tests.inbox.remote import AS, RemoteServer
from tests.inbox.served import Served, serve_inbox, signed_headers

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("database", ["postgres"], indirect=True)]


@pytest.fixture
def served(
    database: Database, remote: RemoteServer, blog_key: RSAPrivateKey, inbox_config: Config
) -> Iterator[Served]:
    with serve_inbox(database, remote, blog_key, inbox_config) as running:
        yield running


def _like(served: Served, n: int) -> tuple[bytes, dict[str, str]]:
    alice = served.remote.actor_id("alice")
    like = {"@context": AS, "id": f"{alice}/likes/{n}", "type": "Like", "actor": alice}
    body = json.dumps({**like, "object": f"{POST}{n}"}).encode()
    return body, dict(signed_headers(served.remote, body))


async def test_dropped_connection__the_next_post_and_health_succeed(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as client:
        body, headers = _like(served, 1)
        assert (await client.post("/ap/inbox", content=body, headers=headers)).status_code == 202
        # Given the server ended the store's connection (a restart, an admin, a proxy)
        pid = served.db.store._one("SELECT pg_backend_pid()")[0]  # type: ignore[attr-defined]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # When the next activity arrives
        body, headers = _like(served, 2)
        response = await client.post("/ap/inbox", content=body, headers=headers)
        # Then it is handled, and the inbox is healthy
        assert response.status_code == 202, response.text
        assert (await client.get("/ap/health")).status_code == 200
    assert len(served.db.store.list_interactions()) == 2


def _waiting_on_lock(admin: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = admin.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE NOT l.granted AND a.application_name = 'fedipress'"
    ).fetchone()
    return bool(row and row[0])


async def test_store_waiting_on_a_lock__other_requests_are_answered(served: Served) -> None:
    schema = served.db.store._one("SELECT current_schema()")[0]  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as client:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as locker:
            # Given another session holds a lock the inbox's transaction needs
            locker.execute("BEGIN")
            locker.execute(f"LOCK TABLE {schema}.interactions IN ACCESS EXCLUSIVE MODE")
            body, headers = _like(served, 3)
            post = asyncio.create_task(client.post("/ap/inbox", content=body, headers=headers))
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                deadline = time.monotonic() + 10
                while not _waiting_on_lock(admin):
                    assert time.monotonic() < deadline, "the inbox never reached the lock"
                    await asyncio.sleep(0.02)
            # When WebFinger is asked while the POST waits
            webfinger = await client.get(
                "/.well-known/webfinger", params={"resource": "acct:blog@blog.example"}
            )
            # Then it is answered at once: the waiting transaction is off the event loop
            assert webfinger.status_code == 200
            assert not post.done()
            locker.execute("COMMIT")
        # And the POST completes once the lock is gone
        assert (await post).status_code == 202


async def test_key_cache_waiting_on_a_lock__other_requests_are_answered(served: Served) -> None:
    schema = served.db.store._one("SELECT current_schema()")[0]  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=served.base, timeout=10) as client:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as locker:
            # Given another session holds a lock on the persistent key cache
            locker.execute("BEGIN")
            locker.execute(f"LOCK TABLE {schema}.remote_keys IN ACCESS EXCLUSIVE MODE")
            # When a signed activity arrives whose key must be looked up there
            body, headers = _like(served, 4)
            post = asyncio.create_task(client.post("/ap/inbox", content=body, headers=headers))
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                deadline = time.monotonic() + 10
                while not _waiting_on_lock(admin):
                    assert time.monotonic() < deadline, "the key lookup never reached the lock"
                    await asyncio.sleep(0.02)
            # Then other requests are answered while the key lookup waits
            webfinger = await client.get(
                "/.well-known/webfinger", params={"resource": "acct:blog@blog.example"}
            )
            assert webfinger.status_code == 200
            assert not post.done()
            locker.execute("COMMIT")
        # And the activity is handled once the lock is gone
        assert (await post).status_code == 202
