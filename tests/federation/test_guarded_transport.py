"""The SSRF guard sits in the connection path of every client the project makes: httpx has
no public hook for httpcore's network backend, so GuardedTransport replaces httpx's private
connection pool. These tests fail if an httpx release moves that pool out of the path."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from fedipress.federation.ssrf import DestinationRefused, GuardedTransport


def _get(transport: httpx.AsyncBaseTransport, url: str) -> httpx.Response:
    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(url)

    return asyncio.run(scenario())


@pytest.mark.parametrize("limits", [None, httpx.Limits(max_connections=4)])
def test_guarded_transport__refuses_a_name_resolving_to_loopback(remote, limits) -> None:
    # Given: a server on loopback, reached by a name (no literal address to pre-check)
    remote.serve_json("/inbox", {"id": "x"})
    transport = GuardedTransport(allow_private=False, limits=limits)

    # When / Then: the connection itself is refused, and nothing reaches the server
    with pytest.raises(DestinationRefused, match="loopback"):
        _get(transport, f"http://localhost:{remote.port}/inbox")
    assert remote.requests == []


def test_guarded_transport__is_the_pool_httpx_sends_through(remote) -> None:
    # Given: private addresses allowed, so the same transport may connect
    remote.serve_json("/inbox", {"id": "x"})
    transport = GuardedTransport(allow_private=True, limits=httpx.Limits(max_connections=4))

    # When
    response = _get(transport, f"http://localhost:{remote.port}/inbox")

    # Then: the request went through the guarded pool (the one httpx owns would also work,
    # so the refusal above is what proves the guard is in the path)
    assert response.status_code == 200
    assert len(remote.requests) == 1
