"""The SSRF guard every outbound request uses: no request reaches a non-public address.

`check_destination` refuses a URL before any connection; `GuardedTransport` re-checks the
addresses a host name resolves to and connects to exactly those, so a DNS answer that
changes between check and connect (DNS rebinding) cannot reach a private address.
`allow_private` lifts the address checks, for tests and local development only.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationRefused(httpx.ConnectError):
    """The guarded transport would not connect: the host resolves to a non-public address."""


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
