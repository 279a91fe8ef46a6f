"""Compressed answers: a GET asks for gzip or deflate only, inflates them with a bounded
output, and refuses an encoding it did not ask for. A compressed bomb (a few kilobytes that
inflate to many megabytes) is refused without ever holding the inflated bytes."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import zlib

from fedipress.federation.fetch import Fetcher, FetchResult
from tests.federation.conftest import AP_JSON, RemoteServer, Reply

SITE = "https://blog.example/"


def _serve(remote: RemoteServer, path: str, body: bytes, encoding: str) -> str:
    headers = (("content-type", AP_JSON), ("content-encoding", encoding))
    remote.replies[path] = Reply(200, body, headers)
    return remote.base + path


def _fetch(url: str) -> FetchResult:
    async def scenario() -> FetchResult:
        async with Fetcher(signer=None, site_url=SITE, allow_private=True) as fetcher:
            return await fetcher.fetch_json(url)

    return asyncio.run(scenario())


def test_fetch__gzip_and_deflate_documents_are_read(remote: RemoteServer) -> None:
    document = {"type": "Person", "name": "A" * 5000}
    for path, encoding in (("/users/a", "gzip"), ("/users/a?deflate", "deflate")):
        document["id"] = remote.base + path
        raw = json.dumps(document).encode()
        body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
        result = _fetch(_serve(remote, path, body, encoding))
        assert result.document == document, (encoding, result.reason)
    # And the request said which encodings it takes
    asked = [dict(r.headers).get("accept-encoding") for r in remote.requests]
    assert asked == ["gzip, deflate"] * 2


def test_fetch__a_gzip_bomb_is_refused_without_inflating_it(remote: RemoteServer) -> None:
    # Given 64 MB of JSON whitespace, gzipped to about 64 KB
    bomb = gzip.compress(b"{" + b" " * 64_000_000 + b"}", compresslevel=9)
    assert len(bomb) < 200_000
    url = _serve(remote, "/users/bomb", bomb, "gzip")
    # When it is fetched
    tracemalloc.start()
    try:
        result = _fetch(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then it is too large, and never more than a few times the 1 MB cap was held
    assert result.failure == "too_large", result.reason
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"


def test_fetch__an_encoding_not_asked_for_is_refused(remote: RemoteServer) -> None:
    url = _serve(remote, "/users/br", b"\x1b\x00\x00", "br")
    result = _fetch(url)
    assert result.document is None and "content-encoding 'br'" in result.reason


def test_fetch__a_body_that_is_not_what_its_encoding_says_is_not_json(
    remote: RemoteServer,
) -> None:
    url = _serve(remote, "/users/liar", b"plainly not gzip", "gzip")
    assert _fetch(url).failure == "not_json"
