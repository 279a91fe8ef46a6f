"""The one path for remote GETs, and the SSRF guard every outbound request uses.

`Fetcher.fetch_json` signs each GET (GoToSocial and Mastodon secure mode refuse unsigned
ones, spec §2.4), follows redirects by hand so each hop is checked and re-signed, and limits
time and size (spec §6.1). `check_destination` refuses non-public addresses before any
connection; `make_client` adds a transport that re-checks the resolved addresses and connects
to exactly those, so a DNS answer that changes between check and connect (DNS rebinding)
cannot reach a private address. POST deliveries reuse both.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit

import anyio
import anyio.to_thread
import httpcore
import httpx

from fedipress import __version__
from fedipress.federation.keys import SigningKey
from fedipress.federation.signature_checks import key_id_problem
from fedipress.federation.signatures import (
    KeyGone,
    KeyLookup,
    KeyProblem,
    RemoteKey,
    sign_request,
)

JSONObject = dict[str, object]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
ACCEPT = f'application/activity+json, application/ld+json; profile="{AS_CONTEXT}"'

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

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchLimits:
    """Mastodon's own request limits (app/lib/request.rb), and its 1 MB JSON cap."""

    connect: float = 5.0
    read: float = 10.0
    total: float = 30.0
    max_body: int = 1024 * 1024
    max_redirects: int = 3
    # GETs to one origin at a time: a host that answers slowly holds at most this many of
    # the client's 20 connections, so it cannot starve fetches from every other host.
    per_host: int = 4


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


class DestinationRefused(httpx.ConnectError):
    """The guarded transport would not connect: the host resolves to a non-public address."""


# --- SSRF guard ------------------------------------------------------------------------------


async def check_destination(url: str, allow_private: bool) -> str | None:
    """Why `url` must not be requested, or None when it may be.

    Only http and https; the host is resolved (getaddrinfo in a thread) and every address must
    be public: no loopback, private, link-local, multicast, reserved, unspecified, CGNAT
    100.64/10, nor IPv4 embedded in IPv6 (mapped, 6to4, NAT64) of those. `allow_private`
    skips the address checks (tests, development). A host that does not resolve is not
    refused here: the request then fails as a network error, which callers may retry.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        httpx.URL(url)  # what the request is built from: its syntax and IDNA 2008 rules
        (parts.hostname or "").encode("idna")  # what the signed Host uses (IDNA 2003)
    except (ValueError, httpx.InvalidURL) as exc:
        return f"the URL is malformed: {exc}"
    if any(char <= " " or char == "\x7f" for char in url):
        return "the URL holds spaces or control characters"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme!r} is not allowed (http or https only)"
    host = parts.hostname
    if not host:
        return "the URL has no host"
    if allow_private:
        return None
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            addresses = await _resolve(host, port)
        except OSError:
            return None
    return _refusal(host, addresses)


def address_refusal(address: IPAddress) -> str | None:
    """Why this address is not public, or None. Pure."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_refusal(embedded)
            return f"{address} embeds {inner}" if inner else None
    kinds = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("shared (CGNAT)", isinstance(address, ipaddress.IPv4Address) and address in _CGNAT),
        ("private", address.is_private),
        ("non-global", not address.is_global),
    )
    for kind, matches in kinds:
        if matches:
            return f"{address} is a {kind} address"
    return None


def _refusal(host: str, addresses: Iterable[IPAddress]) -> str | None:
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            return reason if str(address) == host else f"{host!r} resolves to {reason}"
    return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    infos = await anyio.to_thread.run_sync(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        found[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    return list(found)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address: no second lookup.

    TLS still verifies the certificate against the URL's host name (httpcore passes the
    origin host as server_hostname), so pinning the address changes nothing else.
    """

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                with anyio.fail_after(timeout):
                    addresses = await _resolve(host, port)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from exc
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
        refusal = None if self._allow_private else _refusal(host, addresses)
        if refusal:
            raise DestinationRefused(refusal)
        error: Exception = httpcore.ConnectError(f"no address for {host!r}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("unix sockets are not a remote destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over the guarded network backend.

    httpx has no public hook for httpcore's `network_backend`, so the pool httpx builds is
    replaced by one built the same way with our backend (no proxies, HTTP/1.1).
    """

    def __init__(
        self,
        allow_private: bool = False,
        limits: httpx.Limits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=20, max_keepalive_connections=10)
        # Loading the CA bundle takes milliseconds: callers making many transports share one.
        ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        if not hasattr(self, "_pool"):  # an httpx upgrade changed its internals: fail loudly
            raise RuntimeError("httpx.AsyncHTTPTransport has no _pool to replace")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(allow_private),
        )


def make_client(
    allow_private: bool = False, limits: FetchLimits | None = None
) -> httpx.AsyncClient:
    """An AsyncClient for every outbound request: guarded transport, no redirects, timeouts."""
    limits = limits or FetchLimits()
    return httpx.AsyncClient(
        transport=GuardedTransport(allow_private),
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
        try:
            with anyio.fail_after(self.limits.total):
                async with self._host_slot(url):
                    return await self._fetch_json(url)
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

    async def _fetch_json(self, url: str) -> FetchResult:
        current = url
        for _hop in range(self.limits.max_redirects + 1):
            refusal = await check_destination(current, self.allow_private)
            if refusal:
                return FetchResult(url, failure="refused", reason=refusal, final_url=current)
            headers = {"Accept": ACCEPT, "User-Agent": self.user_agent}
            if (signer := self.signer) is not None:
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
                return await self._read_document(url, current, response)
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

    async def _read_document(
        self, url: str, final_url: str, response: httpx.Response
    ) -> FetchResult:
        failed = FetchResult(url, response.status_code, final_url=final_url)
        status = response.status_code
        if status in (404, 410):
            failure: FetchFailure = "not_found" if status == 404 else "gone"
            return replace(failed, failure=failure, reason=f"HTTP {status}")
        if not 200 <= status < 300:
            return replace(failed, failure="http_error", reason=f"HTTP {status}")
        content_type = response.headers.get("content-type", "")
        if not is_activity_media_type(content_type):
            return replace(failed, failure="wrong_media_type", reason=repr(content_type))
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_body:
            return replace(failed, failure="too_large", reason=f"Content-Length {declared}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.limits.max_body:
                reason = f"body over {self.limits.max_body} bytes"
                return replace(failed, failure="too_large", reason=reason)
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            return replace(failed, failure="not_json", reason=str(exc))
        if not isinstance(document, dict):
            return replace(failed, failure="not_json", reason="not a JSON object")
        mismatch = _id_mismatch(document.get("id"), url, final_url)
        if mismatch:
            return replace(failed, failure="id_mismatch", reason=mismatch)
        return replace(failed, document=document)


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


def is_activity_media_type(content_type: str) -> bool:
    """activity+json, or ld+json whose profile lists the AS context (GoToSocial, Mastodon)."""
    media_type, *params = (part.strip() for part in content_type.split(";"))
    if media_type.lower() == "application/activity+json":
        return True
    if media_type.lower() != "application/ld+json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "profile" and AS_CONTEXT in value.strip().strip('"').split():
            return True
    return False


def _id_mismatch(document_id: object, url: str, final_url: str) -> str | None:
    if not isinstance(document_id, str):
        return "the document has no id"
    if origin_of(document_id) != origin_of(url):
        return f"id {document_id!r} is not on the origin of {url!r}"
    if origin_of(document_id) != origin_of(final_url):
        return f"id {document_id!r} was served from another origin ({final_url!r})"
    return None


Origin = tuple[str, str, int | None]


def origin_of(url: str) -> Origin:
    """(scheme, host, port) with the default port filled in; ("", "", None) if unparsable."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return ("", "", None)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*")


def normalize_url(url: str) -> str | None:
    """An http(s) URL in RFC 3986 normal form (§6.2.2-6.2.3), without its fragment: scheme
    and host in lower case, no default port, unreserved characters decoded and other escapes
    in upper case, dot segments removed (what httpx sends, and what a server that decodes
    `%2e` would see), empty path as "/". None for anything else, credentials included. Pure."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    path = _remove_dot_segments(_normalize_escapes(parts.path)) or "/"
    return urlunsplit((scheme, netloc, path, _normalize_escapes(parts.query), ""))


def _normalize_escapes(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return _PERCENT.sub(one, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path: `.` dropped, `..` removes the segment before."""
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(kept) > 1:  # kept[0] is the "" before the leading slash
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")  # "/a/b/.." is "/a/", a directory
    return "/".join(kept)


def within_actor(url: str, actor: str) -> bool:
    """Whether `url` (its fragment ignored) is the actor's id, or one plain path segment
    below it (GoToSocial's `actor/main-key`), compared in normal form. No other URL speaks
    for the actor: `actor/../other` is another account, `actor/statuses/1` one post. Pure."""
    mine, theirs = normalize_url(url), normalize_url(actor)
    if mine is None or theirs is None:
        return False
    if mine == theirs:
        return True
    below, actor_parts = urlsplit(mine), urlsplit(theirs)
    if below.query or actor_parts.query or below[:2] != actor_parts[:2]:
        return False
    parent, _, segment = below.path.rpartition("/")
    return parent == actor_parts.path.rstrip("/") and bool(_PLAIN_SEGMENT.fullmatch(segment))


# --- remote keys -----------------------------------------------------------------------------


class StoredKey(Protocol):
    """A key as a persistent cache returns it (the store's CachedKey is one)."""

    @property
    def key_id(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def public_key_pem(self) -> str: ...
    @property
    def fetched_at(self) -> datetime: ...


class KeyCache(Protocol):
    """A persistent key cache (the store implements it) so that keys outlive the process:
    a follower's Delete(actor) can then be verified after its actor is gone (spec §4.4)."""

    def get_key(self, key_id: str) -> StoredKey | None: ...
    def put_key(self, key: RemoteKey, now: datetime) -> None: ...
    def delete_key(self, key_id: str) -> object: ...


class CachedKeyFetcher:
    """A KeyFetcher over a Fetcher, with an in-memory cache and an optional persistent one.

    Fetches the key id without its fragment and takes the `publicKey` whose id equals the key
    id (publicKey may be a list; GoToSocial's `…/main-key` URL serves a stub whose publicKey
    names the real actor as `owner`); the owner must share the key id's origin, and when the
    key was not served by the owner's own document, the owner's actor document must list it
    too: another document on that host cannot vouch for someone else's key. 404 and 410 give
    KeyGone; other failures give a KeyProblem, to retry (503) only when a later try may work.

    Keys are kept for `ttl`; a refresh within `min_refresh_interval` of the last fetch
    returns the cached key, so forged signatures cannot make us refetch in a loop. At most
    `max_entries` keys stay in memory (oldest fetched dropped first). Finding one key takes
    at most `timeout` seconds, waiting for the Fetcher's per-host slots included, and
    concurrent lookups of the same key id share one fetch.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        cache: KeyCache | None = None,
        ttl: timedelta = timedelta(days=1),
        min_refresh_interval: timedelta = timedelta(minutes=1),
        max_entries: int = 10_000,
        timeout: float = 5.0,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._fetcher = fetcher
        self._max_entries = max_entries
        self._cache = cache
        self._ttl = ttl
        self._min_refresh_interval = min_refresh_interval
        self._timeout = timeout
        self._now = now
        self._memory: dict[str, tuple[RemoteKey, datetime]] = {}
        self._pending: dict[str, _PendingKey] = {}

    async def __call__(self, key_id: str, refresh: bool = False) -> KeyLookup:
        malformed = key_id_problem(key_id)
        if malformed:
            return KeyProblem(malformed)
        now = self._now()
        cached = self._cached(key_id)
        if cached is not None:
            key, fetched_at = cached
            if now - fetched_at < (self._min_refresh_interval if refresh else self._ttl):
                return key
        found = await self._shared_fetch(key_id, now)
        if isinstance(found, KeyProblem) and found.retry and cached is not None and not refresh:
            return cached[0]  # a stale key beats a 503; but a refresh was asked as it failed
        return found

    async def _shared_fetch(self, key_id: str, now: datetime) -> RemoteKey | KeyGone | KeyProblem:
        """One fetch per key id at a time: later callers wait for the first one's answer."""
        pending = self._pending.get(key_id)
        if pending is not None:
            await pending.done.wait()
            return pending.result or KeyProblem("the key fetch was interrupted", retry=True)
        pending = self._pending[key_id] = _PendingKey()
        try:
            with anyio.move_on_after(self._timeout):
                pending.result = await self._fetch(key_id, now)
        finally:
            del self._pending[key_id]
            pending.done.set()
        return pending.result or KeyProblem(f"no key within {self._timeout} s", retry=True)

    async def _fetch(self, key_id: str, now: datetime) -> RemoteKey | KeyGone | KeyProblem:
        result = await self._fetcher.fetch_json(urldefrag(key_id).url)
        if result.document is None:
            return self._failed(key_id, result)
        key = key_from_document(result.document, key_id)
        if key is None:
            self._forget(key_id)  # the actor no longer publishes this key: revoked
            return KeyProblem(f"{result.final_url} does not hold {key_id} for an owner there")
        if normalize_url(result.final_url) != normalize_url(key.owner):
            owner = await self._fetcher.fetch_json(key.owner)
            if owner.document is None:
                return self._failed(key_id, owner)
            listed = key_from_document(owner.document, key_id)
            if owner.document.get("id") != key.owner or listed is None or listed.owner != key.owner:
                self._forget(key_id)
                return KeyProblem(f"the actor {key.owner} does not list the key {key_id}")
            key = listed  # the actor's own document is the authority on its key
        self._remember(key, now)
        if self._cache is not None:
            self._cache.put_key(key, now)
        return key

    def _failed(self, key_id: str, result: FetchResult) -> KeyGone | KeyProblem:
        if result.failure in ("not_found", "gone"):
            self._forget(key_id)
            return KeyGone(result.status, result.final_url or result.url)
        reason = f"{result.final_url or result.url}: {result.failure} ({result.reason})"
        return KeyProblem(reason, retry=may_work_later(result))

    def _cached(self, key_id: str) -> tuple[RemoteKey, datetime] | None:
        if key_id in self._memory:
            return self._memory[key_id]
        stored = self._cache.get_key(key_id) if self._cache is not None else None
        if stored is None:
            return None
        key = RemoteKey(stored.key_id, stored.owner, stored.public_key_pem)
        self._remember(key, stored.fetched_at)
        return key, stored.fetched_at

    def _remember(self, key: RemoteKey, fetched_at: datetime) -> None:
        self._memory.pop(key.key_id, None)  # re-inserted last: dict order is fetch order
        self._memory[key.key_id] = (key, fetched_at)
        while len(self._memory) > self._max_entries:
            del self._memory[next(iter(self._memory))]

    def forget(self, key_id: str) -> None:
        """Drop a key from both caches, e.g. after its actor sent an Update (key rotation)."""
        self._forget(key_id)

    def _forget(self, key_id: str) -> None:
        self._memory.pop(key_id, None)
        if self._cache is not None:
            self._cache.delete_key(key_id)


@dataclass
class _PendingKey:
    done: anyio.Event = field(default_factory=anyio.Event)
    result: RemoteKey | KeyGone | KeyProblem | None = None


def key_from_document(document: JSONObject, key_id: str) -> RemoteKey | None:
    """The key `key_id` from an actor, a GoToSocial main-key stub or a bare key document.

    None when the document does not hold that key, or when its owner is on another origin
    (a document may only vouch for keys of its own server). Pure.
    """
    candidates: list[object] = [document]
    public_key = document.get("publicKey")
    candidates += public_key if isinstance(public_key, list) else [public_key]
    for candidate in candidates:
        if not isinstance(candidate, dict) or candidate.get("id") != key_id:
            continue
        owner, pem = candidate.get("owner"), candidate.get("publicKeyPem")
        if not isinstance(owner, str) or not isinstance(pem, str):
            continue
        if origin_of(owner) != origin_of(key_id) or normalize_url(owner) is None:
            return None
        return RemoteKey(key_id, owner, pem)
    return None
