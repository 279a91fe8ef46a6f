"""The raw ASGI adapter under a real uvicorn on 127.0.0.1: requests over TCP, lifespan
startup (the sender starts) and shutdown (the service closes), and the body size limit."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from fedipress.adapters.asgi import InboxASGI
from fedipress.config import Config
from fedipress.federation.keys import RSAPrivateKey, SigningKey
from fedipress.inbox.service import MAX_BODY, InboxService
from tests.inbox.harness import ACTOR, AS, Database, make_config, verify_blog_request
from tests.inbox.remote import Recorded, RemoteServer, serve_in_thread


def make_service(db: Database, blog_key: RSAPrivateKey, config: Config | None = None):
    return InboxService.for_site(
        config or make_config(),
        db.store,
        SigningKey(f"{ACTOR}#main-key", blog_key),
        allow_private=True,
    )


def wait_for_posts(remote: RemoteServer, path: str, timeout: float = 3.0) -> list[Recorded]:
    deadline = time.monotonic() + timeout
    while not remote.posts(path):
        assert time.monotonic() < deadline, f"nothing was POSTed to {path}"
        time.sleep(0.01)
    return remote.posts(path)


def test_asgi_adapter__follow_over_tcp_with_lifespan(
    sqlite_db: Database, remote: RemoteServer, blog_key: RSAPrivateKey
) -> None:
    service = make_service(sqlite_db, blog_key)
    assert not service.fetcher.client.is_closed
    # Given a delivery queued before the server starts
    body = json.dumps({"@context": AS, "id": f"{ACTOR}#c1", "type": "Create", "actor": ACTOR})
    sqlite_db.store.enqueue(f"{ACTOR}#c1", [remote.inbox("bob")], body, datetime.now(UTC))
    with serve_in_thread(InboxASGI(service), lifespan="on") as server:
        # Then lifespan startup started the sender: it goes out before any request
        (create,) = wait_for_posts(remote, "/users/bob/inbox")
        assert create.json()["id"] == f"{ACTOR}#c1"
        # When alice POSTs a signed Follow over TCP
        follow = {
            "@context": AS,
            "id": f"{remote.actor_id('alice')}#f-tcp",
            "type": "Follow",
            "actor": remote.actor_id("alice"),
            "object": ACTOR,
        }
        raw = json.dumps(follow).encode()
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", trust_env=False) as client:
            response = client.post("/ap/inbox", content=raw, headers=remote.sign("alice", raw))
            health = client.get("/ap/health")
        # Then it is accepted, and the running sender delivers a verifiable Accept
        assert response.status_code == 202, response.text
        assert health.status_code == 200
        (accept,) = wait_for_posts(remote, "/users/alice/inbox")
        assert accept.json()["object"] == follow
        asyncio.run(verify_blog_request(accept, remote, blog_key, datetime.now(UTC)))
    # When the server has shut down, lifespan shutdown closed the service (and its clients)
    assert service.fetcher.client.is_closed


def test_asgi_adapter__oversize_body_refused_before_it_is_all_sent(
    sqlite_db: Database, blog_key: RSAPrivateKey
) -> None:
    service = make_service(sqlite_db, blog_key)
    with serve_in_thread(InboxASGI(service)) as server:
        # Given a request announcing 8 MB of body
        declared = 8_000_000
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
            conn.sendall(
                b"POST /ap/inbox HTTP/1.1\r\nHost: blog.example\r\n"
                b"Content-Type: application/activity+json\r\n"
                b"Content-Length: %d\r\n\r\n" % declared
            )
            # When only the first bytes of it have been sent
            conn.sendall(b"x" * 65536)
            answer = conn.recv(65536)
    # Then the server answers 413 at once, without waiting for the rest (it closes the
    # connection: sending on would meet a reset, which is why the client stops here)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert declared > MAX_BODY
    asyncio.run(service.aclose())


def test_asgi_adapter__stops_reading_the_body_past_the_limit(
    sqlite_db: Database, blog_key: RSAPrivateKey
) -> None:
    # Given a client that would send 100 chunks of 64 KiB (6.4 MB)
    service = make_service(sqlite_db, blog_key)
    chunks = {"read": 0}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunks["read"] += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": chunks["read"] < 100}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/ap/inbox",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/activity+json")],
    }

    async def main() -> None:
        try:
            await InboxASGI(service)(scope, receive, send)
        finally:
            await service.aclose()

    # When the adapter handles it
    asyncio.run(main())
    # Then it answers 413 after reading just past 1 MB, not the whole body
    assert sent[0]["status"] == 413
    assert chunks["read"] == MAX_BODY // 65536 + 1


def test_asgi_adapter__root_path_is_not_doubled(
    sqlite_db: Database, blog_key: RSAPrivateKey
) -> None:
    # Given a blog under /blog, served by uvicorn mounted with root_path /blog
    config = make_config()
    config = Config.for_test(base_url="https://blog.example/blog/", fediverse=config.fediverse)
    service = make_service(sqlite_db, blog_key, config)
    with serve_in_thread(InboxASGI(service), root_path="/blog") as server:
        # When a proxy forwards /blog/ap/health as /ap/health
        # (uvicorn then puts /blog/ap/health in scope["path"], as the ASGI spec says)
        url = f"http://127.0.0.1:{server.port}/ap/health"
        response = httpx.get(url, trust_env=False)
    # Then the inbox finds its route
    assert response.status_code == 200, response.text
    asyncio.run(service.aclose())
