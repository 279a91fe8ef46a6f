"""`GET /ap/health` says healthy or not, and nothing more: when the store fails, the public
answer names no database user, host, port or schema; the detail goes to the log."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from fedipress.adapters.asgi import InboxASGI
from fedipress.federation.keys import RSAPrivateKey, SigningKey
from fedipress.federation.store import open_store
from fedipress.inbox.service import InboxOptions, InboxService
from tests.inbox.conftest import SchemaPool
from tests.inbox.harness import ACTOR, BLOG, make_config


class TcpRelay:
    """A TCP relay on 127.0.0.1 to PostgreSQL; `cut()` closes it and every connection through
    it, so the database becomes unreachable at the relay's address."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with suppress(OSError):
            target.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown() first: a close() alone leaves the socket listening for the thread still
        # blocked in accept(), so a reconnecting store would get through.
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self.sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@contextmanager
def relayed_schema(pool: SchemaPool) -> Iterator[tuple[TcpRelay, str]]:
    schema = pool.take()
    relay = TcpRelay(("127.0.0.1", 5432))
    try:
        yield (
            relay,
            (
                f"postgresql://postgres@127.0.0.1:{relay.port}/test"
                f"?options=-csearch_path%3D{schema}&connect_timeout=2"
            ),
        )
    finally:
        relay.cut()
        pool.drop(schema)


@pytest.mark.anyio
@pytest.mark.parametrize("serverless", [False, True], ids=["server", "serverless"])
async def test_health__an_unreachable_database_is_unhealthy_without_details(
    serverless: bool,
    schema_pool: SchemaPool,
    blog_key: RSAPrivateKey,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with relayed_schema(schema_pool) as (relay, url):
        # Given an inbox on PostgreSQL, healthy
        store = open_store(url, tmp_path)
        service = InboxService.for_site(
            make_config(), store, SigningKey(f"{ACTOR}#main-key", blog_key), InboxOptions()
        )
        transport = httpx.ASGITransport(app=InboxASGI(service, serverless=serverless))
        async with httpx.AsyncClient(transport=transport, base_url=BLOG) as client:
            assert (await client.get("/ap/health")).json()["status"] == "ok"
            # When the database becomes unreachable (its address a closed port)
            relay.cut()
            with caplog.at_level(logging.WARNING, logger="fedipress.inbox"):
                response = await client.get("/ap/health")
        await service.aclose()
        with suppress(Exception):
            store.close()
    # Then the public answer says unhealthy, and nothing about the database
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy"}
    for detail in ("postgres", "127.0.0.1", str(relay.port), "search_path"):
        assert detail not in response.text
    # while the log has the detail for the operator
    assert "PostgreSQL" in caplog.text and str(relay.port) in caplog.text
