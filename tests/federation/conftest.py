"""Federation fixtures: test keys made at run time, a fixed clock, a key table (the KeyFetcher
seam), and a "remote server" ASGI app that uvicorn runs in a thread on 127.0.0.1 and that
records requests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn

from fedipress.federation.keys import RSAPrivateKey, generate_private_key, public_pem
from fedipress.federation.signatures import KeyGone, RemoteKey

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
AP_JSON = "application/activity+json"


@pytest.fixture(scope="session")
def alice_key() -> RSAPrivateKey:
    return generate_private_key()


@pytest.fixture(scope="session")
def bob_key() -> RSAPrivateKey:
    return generate_private_key()


@pytest.fixture
def now() -> datetime:
    return NOW


class KeyTable:
    """A KeyFetcher over a dict: what verify_request sees, without any network.

    `after_refresh` holds what a refresh=True lookup returns instead (a rotated key, a 410).
    """

    def __init__(self) -> None:
        self.keys: dict[str, RemoteKey | KeyGone | None] = {}
        self.after_refresh: dict[str, RemoteKey | KeyGone | None] = {}
        self.calls: list[tuple[str, bool]] = []

    def add(self, key_id: str, private_key: RSAPrivateKey, owner: str = "") -> RemoteKey:
        key = RemoteKey(key_id, owner or key_id.split("#")[0], public_pem(private_key))
        self.keys[key_id] = key
        return key

    async def __call__(self, key_id: str, refresh: bool) -> RemoteKey | KeyGone | None:
        self.calls.append((key_id, refresh))
        if refresh and key_id in self.after_refresh:
            return self.after_refresh[key_id]
        return self.keys.get(key_id)


@pytest.fixture
def key_table() -> KeyTable:
    return KeyTable()


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # path and query, as sent
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    chunked: bool = False  # stream the body without Content-Length


@dataclass
class RemoteServer:
    """A tiny remote fediverse server: fixed replies by path, every request recorded."""

    port: int = 0
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()

    def serve_json(
        self, path: str, document: Any, status: int = 200, content_type: str = AP_JSON
    ) -> str:
        body = json.dumps(document).encode()
        self.replies[path] = Reply(status, body, (("content-type", content_type),))
        return self.base + path

    def serve_bytes(
        self, path: str, body: bytes, content_type: str = AP_JSON, chunked: bool = False
    ) -> str:
        self.replies[path] = Reply(200, body, (("content-type", content_type),), chunked)
        return self.base + path

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.replies[path] = Reply(status, b"", (("location", location),))
        return self.base + path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["raw_path"].decode()
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode()
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        self.requests.append(Recorded(scope["method"], path, headers, body))
        reply = self.replies.get(path, Reply(404, b"not found"))
        response_headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        if not reply.chunked:
            response_headers.append((b"content-length", str(len(reply.body)).encode()))
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": response_headers}
        )
        if reply.chunked:
            for start in range(0, len(reply.body), 65536):
                chunk = reply.body[start : start + 65536]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        else:
            await send({"type": "http.response.body", "body": reply.body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def remote_server() -> Iterator[RemoteServer]:
    """uvicorn on a socket bound to 127.0.0.1:0, in a thread (httpx's serve_in_thread)."""
    app = RemoteServer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    app.port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_level="error", access_log=False, http="h11", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        assert time.monotonic() < deadline, "the loopback test server did not start"
        time.sleep(0.01)
    yield app
    server.should_exit = True
    thread.join(5)
    sock.close()


@pytest.fixture
def remote(remote_server: RemoteServer) -> RemoteServer:
    remote_server.reset()
    return remote_server


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
