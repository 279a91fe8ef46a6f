"""The one path for remote GETs.

`Fetcher.fetch_json` signs each GET (GoToSocial and Mastodon secure mode refuse unsigned
ones, FEDERATION.md §2.4), follows redirects by hand so each hop is checked by the SSRF guard
(federation/ssrf.py) and re-signed, and limits time and size (FEDERATION.md §6.1). `make_client`
gives every outbound client the guarded transport; POST deliveries use the same guard.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, TypeVar
from urllib.parse import urljoin

import anyio
import anyio.to_thread
import httpx

from fedipress import __version__
from fedipress.documents.media import (
    AP_ACCEPT,
    JRD_ACCEPT,
    JRD_MEDIA_TYPE,
    JSONObject,
    is_activity_media_type,
)
from fedipress.federation.keys import SigningKey
from fedipress.federation.origins import Origin, origin_of
from fedipress.federation.signatures import (
    sign_request,
)
from fedipress.federation.ssrf import DestinationRefused, GuardedTransport, check_destination

FetchFailure = Literal[
    "refused",  # the SSRF guard said no
    "unreachable",  # DNS, connection or protocol error
    "timeout",
    "not_found",  # 404
    "gone",  # 410
    "http_error",  # any other non-2xx
    "too_many_redirects",
    "too_large",
    "wrong_media_type",
    "not_json",  # not a JSON object
    "id_mismatch",
]


@dataclass(frozen=True)
class FetchLimits:
    """Mastodon's own request limits (app/lib/request.rb), and its 1 MB JSON cap."""

    connect: float = 5.0
    read: float = 10.0
    total: float = 30.0
    max_body: int = 1024 * 1024
    max_redirects: int = 3
    # GETs to one origin at a time: a host that answers slowly holds at most this many of
    # the client's `connections`, so it takes 25 slow hosts at once to fill the pool, and
    # each holds its connections only until the key fetch's deadline.
    per_host: int = 4
    connections: int = 100


@dataclass(frozen=True)
class FetchResult:
    """A fetched AP document, or why there is none (`failure`, with `reason` for humans)."""

    url: str
    status: int = 0  # the last HTTP status seen, 0 when there was no response
    document: JSONObject | None = None
    failure: FetchFailure | None = None
    reason: str = ""
    final_url: str = ""

    @property
    def ok(self) -> bool:
        return self.document is not None


@dataclass(frozen=True)
class FetchedBytes:
    """A fetched resource of an expected media type, or why there is none."""

    url: str
    status: int = 0
    data: bytes | None = None
    media_type: str = ""
    failure: FetchFailure | None = None
    reason: str = ""
    final_url: str = ""

    @property
    def ok(self) -> bool:
        return self.data is not None


_R = TypeVar("_R")


def make_client(
    allow_private: bool = False, limits: FetchLimits | None = None
) -> httpx.AsyncClient:
    """An AsyncClient for every outbound request: guarded transport, no redirects, timeouts."""
    limits = limits or FetchLimits()
    pool = httpx.Limits(max_connections=limits.connections, max_keepalive_connections=20)
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private, pool),
        timeout=_timeout(limits),
        follow_redirects=False,
        trust_env=False,
    )


def user_agent_for(site_url: str) -> str:
    """`fedipress/<version> (+<site url>)`, like Mastodon's `Mastodon/4.7.0 (…; +https://…/)`."""
    return f"fedipress/{__version__} (+{site_url})"


def _timeout(limits: FetchLimits) -> httpx.Timeout:
    return httpx.Timeout(
        connect=limits.connect, read=limits.read, write=limits.read, pool=limits.connect
    )


# --- fetching --------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Fetcher:
    """Fetches ActivityPub documents: signed, guarded, limited. Use as `async with`.

    Without `client`, it makes (and closes) a guarded one; with an injected client the
    per-hop `check_destination` still applies, but not the connect-time address pinning.
    """

    def __init__(
        self,
        *,
        signer: SigningKey | None,
        site_url: str,
        allow_private: bool = False,
        client: httpx.AsyncClient | None = None,
        limits: FetchLimits | None = None,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.signer = signer
        self.allow_private = allow_private
        self.limits = limits or FetchLimits()
        self.user_agent = user_agent_for(site_url)
        self._owns_client = client is None
        self.client = client or make_client(allow_private, self.limits)
        self._now = now
        self._hosts: dict[Origin, _HostSlot] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def fetch_json(self, url: str) -> FetchResult:
        """GET an AP document. Never raises for network or protocol trouble: see FetchResult.

        Accepted: 2xx, `application/activity+json` or `application/ld+json` with the AS
        profile (plain application/json is refused, like Mastodon), a JSON object within
        `max_body` bytes, whose `id` has the same origin as the requested URL and as the URL
        finally answered (FEP-fe34, as Fedify checks; a stub such as GoToSocial's
        `…/main-key` document has the actor's id). Mastodon wants `id` == URL exactly, but
        that refuses those stubs; checking the final URL too keeps an open redirect from
        lending an origin to another host's document (Mastodon's CVE-2024-23832 fix).
        """
        return await self._fetch(url, _AP_DOCUMENT)

    async def fetch_jrd(self, url: str) -> FetchResult:
        """GET a WebFinger answer (a JRD): as `fetch_json`, but `application/jrd+json` or
        `application/json`, and a JRD has a `subject` instead of an `id` to check."""
        return await self._fetch(url, _JRD_DOCUMENT)

    async def _fetch(self, url: str, kind: _Kind) -> FetchResult:
        try:
            with anyio.fail_after(self.limits.total):
                async with self._host_slot(url):
                    return await self._fetch_json(url, kind)
        except TimeoutError:
            return FetchResult(url, failure="timeout", reason=f"no answer in {self.limits.total} s")

    @asynccontextmanager
    async def _host_slot(self, url: str) -> AsyncIterator[None]:
        """Wait for one of the `per_host` slots of the URL's origin; slots of an origin
        nobody waits for are dropped, so the table does not grow with every host seen."""
        origin = origin_of(url)
        slot = self._hosts.get(origin)
        if slot is None:
            slot = self._hosts[origin] = _HostSlot(anyio.Semaphore(self.limits.per_host))
        slot.users += 1
        try:
            async with slot.semaphore:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._hosts[origin]

    async def _fetch_json(self, url: str, kind: _Kind) -> FetchResult:
        async def read(current: str, response: httpx.Response) -> FetchResult:
            return await self._read_document(url, current, response, kind)

        return await self._follow(url, kind.accept, self.signer if kind.signed else None, read)

    async def fetch_bytes(
        self,
        url: str,
        accept: str,
        media_types: frozenset[str],
        max_body: int,
        *,
        signed: bool = True,
    ) -> FetchedBytes:
        """GET any resource of one of `media_types` (compared without parameters), at most
        `max_body` bytes, through the same guard, redirects and limits as `fetch_json`:
        avatars, the inbox's public document. Never raises for network trouble."""

        async def read(current: str, response: httpx.Response) -> FetchedBytes:
            status = response.status_code
            failed = FetchedBytes(url, status, final_url=current)
            if not 200 <= status < 300:
                failure: FetchFailure = (
                    "not_found" if status == 404 else "gone" if status == 410 else "http_error"
                )
                return replace(failed, failure=failure, reason=f"HTTP {status}")
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in media_types:
                return replace(failed, failure="wrong_media_type", reason=repr(kind))
            body = await self._read_body(response, max_body)
            if isinstance(body, str):
                too_large = body.startswith("body over")
                return replace(
                    failed, failure="too_large" if too_large else "not_json", reason=body
                )
            return replace(failed, data=body, media_type=kind)

        try:
            with anyio.fail_after(self.limits.total):
                async with self._host_slot(url):
                    signer = self.signer if signed else None
                    result = await self._follow(url, accept, signer, read)
        except TimeoutError:
            return FetchedBytes(
                url, failure="timeout", reason=f"no answer in {self.limits.total} s"
            )
        if isinstance(result, FetchResult):  # no response to read
            return FetchedBytes(
                url, result.status, None, "", result.failure, result.reason, result.final_url
            )
        return result

    async def _follow(
        self,
        url: str,
        accept: str,
        signer: SigningKey | None,
        read: Callable[[str, httpx.Response], Awaitable[_R]],
    ) -> _R | FetchResult:
        """GET `url`, following redirects by hand (each hop guarded and signed again), and
        give the final response to `read`; a FetchResult says why there was none."""
        current = url
        for _hop in range(self.limits.max_redirects + 1):
            refusal = await check_destination(current, self.allow_private)
            if refusal:
                return FetchResult(url, failure="refused", reason=refusal, final_url=current)
            headers = {
                "Accept": accept,
                "Accept-Encoding": ACCEPT_ENCODING,
                "User-Agent": self.user_agent,
            }
            if signer is not None:
                key_id, key = signer.key_id, signer.private_key
                headers = sign_request("GET", current, headers, None, key_id, key, self._now())
            try:
                request = self.client.build_request("GET", current, headers=headers)
                response = await self.client.send(request, stream=True, follow_redirects=False)
            except DestinationRefused as exc:
                return FetchResult(url, failure="refused", reason=str(exc), final_url=current)
            except httpx.TimeoutException as exc:
                return FetchResult(url, failure="timeout", reason=repr(exc), final_url=current)
            except httpx.InvalidURL as exc:
                return FetchResult(url, failure="refused", reason=repr(exc), final_url=current)
            except httpx.TransportError as exc:
                return FetchResult(url, failure="unreachable", reason=repr(exc), final_url=current)
            try:
                if response.has_redirect_location:
                    current = _join(current, response.headers["location"])
                    continue
                return await read(current, response)
            except httpx.TimeoutException as exc:
                failure: FetchFailure = "timeout"
                return FetchResult(url, response.status_code, None, failure, repr(exc), current)
            except httpx.TransportError as exc:
                failure = "unreachable"
                return FetchResult(url, response.status_code, None, failure, repr(exc), current)
            finally:
                await response.aclose()
        return FetchResult(
            url,
            failure="too_many_redirects",
            reason=f"more than {self.limits.max_redirects} redirects",
            final_url=current,
        )

    async def _read_body(self, response: httpx.Response, cap: int) -> bytes | str:
        """The decoded body, or why not (a string): over `cap` bytes, or an encoding that
        was not asked for."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            return f"body over {cap} bytes (Content-Length {declared})"
        body, why = await read_body(response, cap)
        return why if body is None else body

    async def _read_document(
        self, url: str, final_url: str, response: httpx.Response, kind: _Kind
    ) -> FetchResult:
        failed = FetchResult(url, response.status_code, final_url=final_url)
        status = response.status_code
        if status in (404, 410):
            failure: FetchFailure = "not_found" if status == 404 else "gone"
            return replace(failed, failure=failure, reason=f"HTTP {status}")
        if not 200 <= status < 300:
            return replace(failed, failure="http_error", reason=f"HTTP {status}")
        content_type = response.headers.get("content-type", "")
        if not kind.media_type_ok(content_type):
            return replace(failed, failure="wrong_media_type", reason=repr(content_type))
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_body:
            return replace(failed, failure="too_large", reason=f"Content-Length {declared}")
        encoding = response.headers.get("content-encoding", "").strip().lower() or "identity"
        if encoding not in _DECODERS:
            reason = f"content-encoding {encoding!r} was not asked for"
            return replace(failed, failure="not_json", reason=reason)
        body = await _read_capped(response, _DECODERS[encoding], self.limits.max_body)
        if body is None:
            reason = f"body over {self.limits.max_body} bytes"
            return replace(failed, failure="too_large", reason=reason)
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return replace(failed, failure="not_json", reason=str(exc))
        if not isinstance(document, dict):
            return replace(failed, failure="not_json", reason="not a JSON object")
        mismatch = _id_mismatch(document.get("id"), url, final_url) if kind.has_id else None
        if mismatch:
            return replace(failed, failure="id_mismatch", reason=mismatch)
        return replace(failed, document=document)


@dataclass(frozen=True)
class _Kind:
    """What a GET asks for and accepts: ActivityPub documents, or WebFinger's JRDs."""

    accept: str
    media_type_ok: Callable[[str], bool]
    has_id: bool  # check the document's `id` against the URL (FEP-fe34)
    signed: bool  # WebFinger GETs go unsigned, as Mastodon sends them


def _is_jrd_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in (JRD_MEDIA_TYPE, "application/json")


_AP_DOCUMENT = _Kind(AP_ACCEPT, is_activity_media_type, True, True)
_JRD_DOCUMENT = _Kind(JRD_ACCEPT, _is_jrd_media_type, False, False)

# The encodings a GET asks for (Accept-Encoding), and the zlib window that decodes each.
_DECODERS: dict[str, int | None] = {
    "identity": None,
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,  # RFC 9110 §8.4.1.2: zlib-wrapped
}
ACCEPT_ENCODING = "gzip, deflate"


async def read_body(response: httpx.Response, cap: int) -> tuple[bytes | None, str]:
    """A streamed response's body decoded by its Content-Encoding, as `(body, "")`, or
    `(None, why)`: over `cap` bytes, or an encoding ACCEPT_ENCODING did not ask for."""
    encoding = response.headers.get("content-encoding", "").strip().lower() or "identity"
    if encoding not in _DECODERS:
        return None, f"content-encoding {encoding!r} was not asked for"
    body = await _read_capped(response, _DECODERS[encoding], cap)
    if body is None:
        return None, f"body over {cap} bytes"
    return body, ""


async def _read_capped(response: httpx.Response, wbits: int | None, cap: int) -> bytes | None:
    """The body, decoded, or None once it exceeds `cap` bytes. Compressed bytes are inflated
    with a bounded output, so a few kilobytes of gzip cannot grow into gigabytes in memory
    (httpx would inflate each received chunk whole)."""
    decoder = zlib.decompressobj(wbits) if wbits is not None else None
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            if decoder is None:
                body += chunk
            else:
                data = chunk
                while data and len(body) <= cap:
                    body += decoder.decompress(data, cap + 1 - len(body))
                    data = decoder.unconsumed_tail
            if len(body) > cap:
                return None
        if decoder is not None:
            body += decoder.flush(cap + 1 - len(body))
    except zlib.error:
        return b""  # not what the header said: no JSON either
    return None if len(body) > cap else bytes(body)


@dataclass
class _HostSlot:
    semaphore: anyio.Semaphore
    users: int = 0  # holding or waiting


def _join(base: str, location: str) -> str:
    """The redirect target; a Location that is no URL is returned as is, for
    check_destination to refuse at the next hop."""
    try:
        return urljoin(base, location)
    except ValueError:
        return location


def may_work_later(result: FetchResult) -> bool:
    """Whether a failed fetch is worth retrying: timeouts, network errors, 5xx and 429.
    Everything else (refused address, 4xx, wrong media type, not JSON, id mismatch, too
    large, too many redirects) is the remote's lasting answer."""
    if result.failure in ("timeout", "unreachable"):
        return True
    return result.failure == "http_error" and (result.status >= 500 or result.status == 429)


def _id_mismatch(document_id: object, url: str, final_url: str) -> str | None:
    if not isinstance(document_id, str):
        return "the document has no id"
    if origin_of(document_id) != origin_of(url):
        return f"id {document_id!r} is not on the origin of {url!r}"
    if origin_of(document_id) != origin_of(final_url):
        return f"id {document_id!r} was served from another origin ({final_url!r})"
    return None
