"""The one GET path against a real server on 127.0.0.1, the SSRF guard (refusals happen before
any traffic), and CachedKeyFetcher over actors, GoToSocial stubs, deleted actors and rotation."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fedipress import __version__
from fedipress.documents.media import AP_ACCEPT, is_activity_media_type
from fedipress.federation.fetch import Fetcher, FetchLimits, make_client
from fedipress.federation.keyfetch import CachedKeyFetcher, key_from_document
from fedipress.federation.keys import SigningKey, public_pem
from fedipress.federation.origins import normalize_url, within_actor
from fedipress.federation.signatures import (
    KeyGone,
    KeyProblem,
    RemoteKey,
    sign_request,
    verify_request,
)
from fedipress.federation.ssrf import DestinationRefused, address_refusal, check_destination
from fedipress.federation.store import open_store

BLOG_KEY = "https://blog.example/ap/actor#main-key"
SITE = "https://blog.example/"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def run(coroutine):
    return asyncio.run(coroutine)


async def fetch(url, *, signer=None, allow_private=True, client=None, limits=None, now=None):
    async with Fetcher(
        signer=signer,
        site_url=SITE,
        allow_private=allow_private,
        client=client,
        limits=limits,
        now=now or (lambda: NOW),
    ) as fetcher:
        return await fetcher.fetch_json(url)


def actor(remote, path, private_key, *, key_path=None):
    actor_id = remote.base + path
    key_id = remote.base + key_path if key_path else actor_id + "#main-key"
    return {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": actor_id,
        "type": "Person",
        "inbox": actor_id + "/inbox",
        "publicKey": {"id": key_id, "owner": actor_id, "publicKeyPem": public_pem(private_key)},
    }


# --- fetch_json ------------------------------------------------------------------------------


def test_fetch_json__get_is_signed_and_verifies(remote, alice_key, key_table, now) -> None:
    # Given: a remote actor, and our blog key known to the "remote" side's key table
    url = remote.serve_json("/users/bob", {"id": remote.base + "/users/bob", "type": "Person"})
    key_table.add(BLOG_KEY, alice_key)

    # When
    result = run(fetch(url, signer=SigningKey(BLOG_KEY, alice_key), now=lambda: now))

    # Then: the document came back and the GET carries a signature our verifier accepts
    assert result.ok and result.document == {"id": url, "type": "Person"}
    assert (result.status, result.final_url) == (200, url)
    (request,) = remote.requests
    headers = dict(request.headers)
    assert headers["accept"] == AP_ACCEPT
    assert headers["user-agent"] == f"fedipress/{__version__} (+{SITE})"
    assert 'headers="(request-target) host date"' in headers["signature"]
    verified = run(
        verify_request(
            "GET", request.path, request.headers, request.body,
            public_host=remote.host, public_scheme="http", fetch_key=key_table, now=now,
        )
    )  # fmt: skip
    assert verified.ok, verified.reason


def test_fetch_json__without_signer_sends_no_signature(remote) -> None:
    url = remote.serve_json("/notes/1", {"id": remote.base + "/notes/1"})

    result = run(fetch(url))

    assert result.ok
    assert "signature" not in dict(remote.requests[0].headers)


def test_fetch_json__follows_redirects_and_resigns_each_hop(
    remote, alice_key, key_table, now
) -> None:
    # Given: /a → /b (relative Location) → /c
    remote.redirect("/a", "/b", status=301)
    remote.redirect("/b", remote.base + "/c", status=307)
    remote.serve_json("/c", {"id": remote.base + "/c"})
    key_table.add(BLOG_KEY, alice_key)

    # When
    result = run(fetch(remote.base + "/a", signer=SigningKey(BLOG_KEY, alice_key)))

    # Then: every hop was its own signed GET, valid for its own path
    assert result.ok and result.final_url == remote.base + "/c"
    assert [r.path for r in remote.requests] == ["/a", "/b", "/c"]
    for request in remote.requests:
        verified = run(
            verify_request(
                "GET", request.path, request.headers, b"",
                public_host=remote.host, public_scheme="http", fetch_key=key_table, now=now,
            )
        )  # fmt: skip
        assert verified.ok, (request.path, verified.reason)


def test_fetch_json__too_many_redirects(remote) -> None:
    for hop in range(5):
        remote.redirect(f"/r{hop}", f"/r{hop + 1}")
    remote.serve_json("/r5", {"id": remote.base + "/r5"})

    result = run(fetch(remote.base + "/r0"))

    assert result.failure == "too_many_redirects"
    assert [r.path for r in remote.requests] == ["/r0", "/r1", "/r2", "/r3"]


def test_fetch_json__three_redirects_are_followed(remote) -> None:
    for hop in range(3):
        remote.redirect(f"/r{hop}", f"/r{hop + 1}")
    remote.serve_json("/r3", {"id": remote.base + "/r3"})

    assert run(fetch(remote.base + "/r0")).ok


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        ("application/activity+json", True),
        ("application/activity+json; charset=utf-8", True),
        ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', True),
        ("application/ld+json", False),
        ("application/json", False),
        ("text/html; charset=utf-8", False),
    ],
)
def test_fetch_json__media_types(content_type, ok, remote) -> None:
    url = remote.serve_json("/doc", {"id": remote.base + "/doc"}, content_type=content_type)

    result = run(fetch(url))

    assert result.ok is ok
    if not ok:
        assert result.failure == "wrong_media_type"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_fetch_json__oversize_body_refused(chunked, remote) -> None:
    body = b'{"id": "x", "padding": "' + b"a" * 200_000 + b'"}'
    url = remote.serve_bytes("/big", body, chunked=chunked)

    result = run(fetch(url, limits=FetchLimits(max_body=100_000)))

    assert (result.failure, result.document) == ("too_large", None)


def test_fetch_json__id_on_another_origin_refused(remote) -> None:
    url = remote.serve_json("/users/eve", {"id": "https://bank.example/users/eve"})

    result = run(fetch(url))

    assert result.failure == "id_mismatch"


def test_fetch_json__same_origin_id_accepted(remote) -> None:
    # FEP-fe34 origin check (as Fedify): a GoToSocial main-key stub carries the actor's id.
    url = remote.serve_json("/users/bob/main-key", {"id": remote.base + "/users/bob"})

    assert run(fetch(url)).document == {"id": remote.base + "/users/bob"}


def test_fetch_json__redirect_to_other_origin_cannot_vouch(remote) -> None:
    # Given: an open redirect to another origin, whose document claims the first origin's id
    other_origin = f"http://localhost:{remote.port}"
    remote.redirect("/go", other_origin + "/evil")
    remote.serve_json("/evil", {"id": remote.base + "/go"})

    # When
    result = run(fetch(remote.base + "/go"))

    # Then
    assert result.failure == "id_mismatch"
    assert "another origin" in result.reason


@pytest.mark.parametrize(
    ("status", "failure"), [(404, "not_found"), (410, "gone"), (500, "http_error")]
)
def test_fetch_json__error_statuses(status, failure, remote) -> None:
    url = remote.serve_json("/users/gone", {"error": "x"}, status=status)

    result = run(fetch(url))

    assert (result.status, result.failure, result.ok) == (status, failure, False)


@pytest.mark.parametrize("body", [b"[1, 2]", b"{not json", b'"text"'])
def test_fetch_json__not_a_json_object(body, remote) -> None:
    url = remote.serve_bytes("/odd", body)

    assert run(fetch(url)).failure == "not_json"


def test_fetch_json__connection_refused_is_unreachable(closed_port) -> None:
    result = run(fetch(f"http://127.0.0.1:{closed_port}/users/x"))

    assert (result.failure, result.status) == ("unreachable", 0)


def test_fetch_json__total_time_limit(remote) -> None:
    # Given: a transport that never answers (httpx's own seam for failure injection)
    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        raise AssertionError("the time limit should have fired first")

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.MockTransport(stall)) as client:
            return await fetch(
                "http://203.0.113.7/slow",
                client=client,
                allow_private=True,
                limits=FetchLimits(total=0.2),
            )

    # When / Then
    assert run(scenario()).failure == "timeout"


@pytest.mark.parametrize(
    "location", ["http://[", "https://127.0.0.1:99999/x", "http://exa mple/", "gopher://x/"]
)
def test_fetch_json__malformed_redirect_is_refused_not_raised(location, remote) -> None:
    url = remote.redirect("/users/a", location)

    result = run(fetch(url))

    assert result.failure == "refused"
    assert [r.path for r in remote.requests] == ["/users/a"]


@pytest.mark.parametrize(
    "url", ["https://[", "http://[::1", "https://a:99999/", "https://\u2603..x/", "https://a b/"]
)
def test_fetch_json__malformed_url_is_refused_without_traffic(url) -> None:
    # Given: a client whose transport records any request that gets through
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
            return await fetch(url, client=client, allow_private=True)

    # When / Then: a refusal (lasting), not an exception, and nothing sent
    assert run(scenario()).failure == "refused"
    assert sent == []


def test_fetch_json__per_host_limit(remote) -> None:
    # Given: a host whose answers take a while, and a fetcher allowing 2 GETs per host
    active = 0
    most = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.05)
        active -= 1
        return httpx.Response(404)

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
            limits = FetchLimits(per_host=2)
            async with Fetcher(
                signer=None, site_url=SITE, allow_private=True, client=client, limits=limits
            ) as fetcher:
                urls = [f"http://127.0.0.1:9/users/{i}" for i in range(8)]
                urls += [f"http://localhost:9/users/{i}" for i in range(2)]
                results = await asyncio.gather(*(fetcher.fetch_json(u) for u in urls))
                return results, fetcher._hosts

    # When: ten GETs start at once, eight of them to one host
    results, hosts = run(scenario())

    # Then: all were answered, never more than 2 per host (4 over two hosts) at a time
    assert [r.failure for r in results] == ["not_found"] * 10
    assert 2 <= most <= 4
    assert hosts == {}  # no slot is kept for hosts nobody waits for


# --- URL normalization -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://V.Example/users/alice", "https://v.example/users/alice"),
        ("HTTPS://v.example:443/users/alice#main-key", "https://v.example/users/alice"),
        ("http://v.example:80", "http://v.example/"),
        ("http://v.example:8080/a", "http://v.example:8080/a"),
        ("https://v.example/users/alice/../deleted", "https://v.example/users/deleted"),
        ("https://v.example/users/alice/%2e%2E/deleted", "https://v.example/users/deleted"),
        ("https://v.example/a/./b/.", "https://v.example/a/b/"),
        ("https://v.example/../../a", "https://v.example/a"),
        ("https://v.example/%7Euser/%c3%a9?q=%2f", "https://v.example/~user/%C3%A9?q=%2F"),
        ("https://[::1]:8443/a", "https://[::1]:8443/a"),
    ],
)
def test_normalize_url__rfc3986(url, normal) -> None:
    assert normalize_url(url) == normal


@pytest.mark.parametrize(
    "url", ["https://[", "ftp://v.example/", "https://u@v.example/", "https:///a", "v.example/a"]
)
def test_normalize_url__not_an_http_url(url) -> None:
    assert normalize_url(url) is None


ALICE = "https://v.example/users/alice"


@pytest.mark.parametrize(
    ("url", "within"),
    [
        (ALICE + "#main-key", True),
        (ALICE + "/main-key", True),  # GoToSocial
        ("https://V.EXAMPLE:443/users/alice#k", True),
        (ALICE + "/./main-key", True),
        (ALICE + "/../deleted#main-key", False),
        (ALICE + "/%2e%2e/deleted#main-key", False),
        (ALICE + "/x/../../deleted", False),
        (ALICE + "/statuses/1", False),  # a post of hers, not her account
        (ALICE + "/..%2fdeleted", False),
        (ALICE + "2#main-key", False),
        (ALICE + "?x=1", False),
        ("http://v.example/users/alice#main-key", False),  # another scheme
        ("https://v.example:8443/users/alice#main-key", False),
        ("https://other.example/users/alice#main-key", False),
        ("https://[", False),
    ],
)
def test_within_actor(url, within) -> None:
    assert within_actor(url, ALICE) is within


# --- SSRF guard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://192.168.1.1:8080/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::ffff:10.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[2002:a00:1::]/",  # 6to4 wrapping 10.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 wrapping 169.254.169.254
    ],
)
def test_check_destination__refuses_non_public_literals_without_traffic(url) -> None:
    # Given: a client whose transport records any request that gets through
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    async def scenario():
        refusal = await check_destination(url, allow_private=False)
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
            result = await fetch(url, client=client, allow_private=False)
        return refusal, result

    # When
    refusal, result = run(scenario())

    # Then
    assert refusal is not None
    assert (result.failure, result.reason) == ("refused", refusal)
    assert sent == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"])
def test_check_destination__refuses_other_schemes(url) -> None:
    refusal = run(check_destination(url, allow_private=True))

    assert refusal is not None and "http or https only" in refusal


def test_check_destination__public_literal_allowed() -> None:
    assert run(check_destination("https://93.184.216.34/users/a", allow_private=False)) is None
    assert run(check_destination("https://[2606:4700::1111]/", allow_private=False)) is None


def test_check_destination__allow_private_lets_loopback_through() -> None:
    assert run(check_destination("http://127.0.0.1:9/", allow_private=True)) is None


def test_check_destination__name_resolving_to_loopback_refused() -> None:
    refusal = run(check_destination("http://localhost:8080/", allow_private=False))

    assert refusal is not None and "'localhost' resolves to" in refusal


def test_fetch_json__loopback_server_refused_without_allow_private(remote) -> None:
    url = remote.serve_json("/users/a", {"id": remote.base + "/users/a"})

    result = run(fetch(url, allow_private=False))

    assert result.failure == "refused"
    assert remote.requests == []


def test_make_client__refuses_private_address_at_connect_time(remote) -> None:
    # Given: a request that skips check_destination, as a DNS-rebinding race would
    remote.serve_json("/users/a", {"id": "x"})

    async def scenario():
        async with make_client(allow_private=False) as client:
            await client.get(f"http://localhost:{remote.port}/users/a")

    # When / Then: the guarded transport refuses before connecting
    with pytest.raises(DestinationRefused, match="loopback"):
        run(scenario())
    assert remote.requests == []


def test_make_client__connects_when_private_allowed(remote) -> None:
    remote.serve_json("/users/a", {"id": "x"})

    async def scenario():
        async with make_client(allow_private=True) as client:
            return await client.get(f"http://localhost:{remote.port}/users/a")

    assert run(scenario()).status_code == 200
    assert len(remote.requests) == 1


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("100.127.255.255", "shared (CGNAT)"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("ff02::1", "multicast"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
    ],
)
def test_address_refusal__names_the_kind(address, kind) -> None:
    reason = address_refusal(ipaddress.ip_address(address))

    if kind is None:
        assert reason is None
    else:
        assert reason is not None and reason.endswith(f"is a {kind} address")


def test_is_activity_media_type__profile_among_several() -> None:
    assert is_activity_media_type(
        'application/ld+json; profile="https://example.com/x https://www.w3.org/ns/activitystreams"'
    )


# --- CachedKeyFetcher ------------------------------------------------------------------------


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class MemoryKeyCache:
    """The persistent cache seam (the store implements it), kept in a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str, str, datetime]] = {}

    def get_key(self, key_id):
        from fedipress.federation.store import CachedKey

        row = self.rows.get(key_id)
        return CachedKey(*row) if row else None

    def put_key(self, key, now):
        self.rows[key.key_id] = (key.key_id, key.owner, key.public_key_pem, now)

    def delete_key(self, key_id):
        return self.rows.pop(key_id, None) is not None


def key_fetcher_call(key_id, *, refresh=False, cache=None, clock=None, fetcher_kwargs=None):
    async def scenario():
        async with Fetcher(signer=None, site_url=SITE, allow_private=True) as fetcher:
            keys = CachedKeyFetcher(fetcher, cache=cache, now=clock or Clock(NOW))
            return await keys(key_id, refresh=refresh)

    return run(scenario())


def test_cached_key_fetcher__actor_document(remote, alice_key) -> None:
    document = actor(remote, "/users/alice", alice_key)
    remote.serve_json("/users/alice", document)
    key_id = document["publicKey"]["id"]

    key = key_fetcher_call(key_id)

    assert key == RemoteKey(key_id, remote.base + "/users/alice", public_pem(alice_key))
    assert [r.path for r in remote.requests] == ["/users/alice"]  # fragment stripped


def test_cached_key_fetcher__public_key_list(remote, alice_key, bob_key) -> None:
    document = actor(remote, "/users/alice", alice_key)
    second = {**document["publicKey"], "id": document["id"] + "#key-2"}
    second["publicKeyPem"] = public_pem(bob_key)
    document["publicKey"] = [document["publicKey"], second]
    remote.serve_json("/users/alice", document)

    key = key_fetcher_call(document["id"] + "#key-2")

    assert isinstance(key, RemoteKey) and key.public_key_pem == public_pem(bob_key)


def test_cached_key_fetcher__gotosocial_main_key_stub(remote, bob_key) -> None:
    # Given: GoToSocial's key id is a path; it serves a stub naming the real actor as owner,
    # and the actor's own document lists that key
    remote.serve_json(
        "/users/bob", actor(remote, "/users/bob", bob_key, key_path="/users/bob/main-key")
    )
    stub = {
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": remote.base + "/users/bob",
        "type": "Person",
        "preferredUsername": "bob",
        "publicKey": {
            "id": remote.base + "/users/bob/main-key",
            "owner": remote.base + "/users/bob",
            "publicKeyPem": public_pem(bob_key),
        },
    }
    remote.serve_json("/users/bob/main-key", stub)

    # When
    key = key_fetcher_call(remote.base + "/users/bob/main-key")

    # Then: the key, vouched for by the stub and by the actor it names
    assert isinstance(key, RemoteKey)
    assert (key.owner, key.public_key_pem) == (remote.base + "/users/bob", public_pem(bob_key))
    assert [r.path for r in remote.requests] == ["/users/bob/main-key", "/users/bob"]


def test_cached_key_fetcher__owner_on_another_origin_refused(remote, alice_key) -> None:
    document = actor(remote, "/users/alice", alice_key)
    document["publicKey"]["owner"] = "https://bank.example/users/alice"
    remote.serve_json("/users/alice", document)

    result = key_fetcher_call(document["publicKey"]["id"])

    assert isinstance(result, KeyProblem) and not result.retry  # lasting: 401, not 503


@pytest.mark.parametrize("status", [410, 404])
def test_cached_key_fetcher__deleted_actor_is_key_gone(status, remote, alice_key) -> None:
    # Given: a key cached earlier, and an actor that is now gone
    remote.serve_json("/users/gone", {"error": "Gone"}, status=status)
    key_id = remote.base + "/users/gone#main-key"
    cache = MemoryKeyCache()
    gone_key = RemoteKey(key_id, remote.base + "/users/gone", public_pem(alice_key))
    cache.put_key(gone_key, NOW - timedelta(days=30))

    # When: a refresh is asked (verification with the cached key failed)
    result = key_fetcher_call(key_id, refresh=True, cache=cache)

    # Then: gone, with the URL that answered
    assert result == KeyGone(status, remote.base + "/users/gone")
    assert key_id not in cache.rows


def test_cached_key_fetcher__network_failure_may_work_later(closed_port) -> None:
    result = key_fetcher_call(f"http://127.0.0.1:{closed_port}/users/a#main-key")

    assert isinstance(result, KeyProblem) and result.retry  # 503: the sender retries


def test_cached_key_fetcher__caches_and_refreshes(remote, alice_key, bob_key, now) -> None:
    # Given: an actor whose key we fetch once
    document = actor(remote, "/users/alice", alice_key)
    remote.serve_json("/users/alice", document)
    key_id = document["publicKey"]["id"]
    clock = Clock(now)

    async def scenario():
        async with Fetcher(signer=None, site_url=SITE, allow_private=True) as fetcher:
            keys = CachedKeyFetcher(fetcher, now=clock)
            first = await keys(key_id, refresh=False)
            cached = await keys(key_id, refresh=False)
            # the actor rotates its key
            document["publicKey"]["publicKeyPem"] = public_pem(bob_key)
            remote.serve_json("/users/alice", document)
            too_soon = await keys(key_id, refresh=True)
            clock.now += timedelta(minutes=2)
            refreshed = await keys(key_id, refresh=True)
            clock.now += timedelta(days=2)
            after_ttl = await keys(key_id, refresh=False)
            return first, cached, too_soon, refreshed, after_ttl

    # When
    first, cached, too_soon, refreshed, after_ttl = run(scenario())

    # Then: one fetch, a refresh within a minute served from cache, then real refetches
    assert first == cached == too_soon
    assert first.public_key_pem == public_pem(alice_key)
    assert refreshed.public_key_pem == after_ttl.public_key_pem == public_pem(bob_key)
    assert len(remote.requests) == 3


def test_cached_key_fetcher__stale_key_beats_network_failure(closed_port, alice_key, now) -> None:
    # Given: a persisted key older than the TTL, and its server unreachable
    key_id = f"http://127.0.0.1:{closed_port}/users/a#main-key"
    key = RemoteKey(key_id, key_id.split("#")[0], public_pem(alice_key))
    cache = MemoryKeyCache()
    cache.put_key(key, now - timedelta(days=3))

    # When / Then: a lookup still gets the key; a refresh (the key failed) does not
    assert key_fetcher_call(key_id, cache=cache, clock=Clock(now)) == key
    refreshed = key_fetcher_call(key_id, refresh=True, cache=cache, clock=Clock(now))
    assert isinstance(refreshed, KeyProblem) and refreshed.retry


def test_cached_key_fetcher__revoked_key_is_dropped(remote, alice_key, now) -> None:
    # Given: a stale persisted key that the actor no longer lists
    document = actor(remote, "/users/alice", alice_key)
    key_id = document["publicKey"]["id"]
    cache = MemoryKeyCache()
    cache.put_key(RemoteKey(key_id, document["id"], public_pem(alice_key)), now - timedelta(days=3))
    document["publicKey"]["id"] = document["id"] + "#new-key"
    remote.serve_json("/users/alice", document)

    # When
    result = key_fetcher_call(key_id, cache=cache, clock=Clock(now))

    # Then: no stale fallback, a lasting refusal, and the cache forgets it
    assert isinstance(result, KeyProblem) and not result.retry
    assert key_id not in cache.rows


def test_cached_key_fetcher__memory_is_bounded(remote, alice_key, bob_key, now) -> None:
    first, second = actor(remote, "/users/a", alice_key), actor(remote, "/users/b", bob_key)
    remote.serve_json("/users/a", first)
    remote.serve_json("/users/b", second)

    async def scenario():
        async with Fetcher(signer=None, site_url=SITE, allow_private=True) as fetcher:
            keys = CachedKeyFetcher(fetcher, max_entries=1, now=Clock(now))
            for key_id in (first["publicKey"]["id"], second["publicKey"]["id"]) * 2:
                assert isinstance(await keys(key_id, refresh=False), RemoteKey)

    run(scenario())

    assert [r.path for r in remote.requests] == ["/users/a", "/users/b"] * 2


def test_cached_key_fetcher__persists_in_the_store_across_restarts(
    remote, alice_key, tmp_path, now
) -> None:
    # Given: the real SQLite store as the persistent cache
    document = actor(remote, "/users/alice", alice_key)
    remote.serve_json("/users/alice", document)
    key_id = document["publicKey"]["id"]
    store = open_store(None, tmp_path)

    # When: one process fetches the key, and a second one (cold start) asks for it
    first = key_fetcher_call(key_id, cache=store, clock=Clock(now))
    remote.reset()
    second = key_fetcher_call(key_id, cache=store, clock=Clock(now + timedelta(hours=1)))

    # Then: the second answer came from the store, without network
    assert first == second
    assert remote.requests == []
    stored = store.get_key(key_id)
    assert stored is not None and stored.fetched_at == now


def test_cached_key_fetcher__verifies_rotated_key_end_to_end(
    remote, alice_key, bob_key, now
) -> None:
    # Given: the sender's actor is served by the loopback server; its key is cached
    document = actor(remote, "/users/alice", alice_key)
    remote.serve_json("/users/alice", document)
    key_id = document["publicKey"]["id"]
    clock = Clock(now)
    body = b'{"type":"Follow"}'

    def signed(private_key, at):
        url = "https://blog.example/ap/inbox"
        return sign_request("POST", url, {}, body, key_id, private_key, at)

    async def scenario():
        async with Fetcher(signer=None, site_url=SITE, allow_private=True) as fetcher:
            keys = CachedKeyFetcher(fetcher, now=clock)
            kwargs = {"public_host": "blog.example", "fetch_key": keys}
            old = signed(alice_key, now)
            before = await verify_request("POST", "/ap/inbox", old, body, now=now, **kwargs)
            # the sender rotates to a new key without sending Update
            document["publicKey"]["publicKeyPem"] = public_pem(bob_key)
            remote.serve_json("/users/alice", document)
            clock.now += timedelta(minutes=5)
            new = signed(bob_key, clock.now)
            after = await verify_request("POST", "/ap/inbox", new, body, now=clock.now, **kwargs)
            return before, after

    # When
    before, after = run(scenario())

    # Then: the cached key failed, one refresh fetched the new key, and it verified
    assert before.ok and after.ok, (before.reason, after.reason)
    assert after.owner == document["id"]
    assert len(remote.requests) == 2


def test_cached_key_fetcher__stub_whose_actor_does_not_list_the_key(remote, alice_key) -> None:
    # Given: a stub at /users/bob/main-key naming bob as owner, and bob lists another key
    remote.serve_json("/users/bob", actor(remote, "/users/bob", alice_key))
    stub = actor(remote, "/users/bob", alice_key, key_path="/users/bob/main-key")
    remote.serve_json("/users/bob/main-key", stub)

    # When
    result = key_fetcher_call(remote.base + "/users/bob/main-key")

    # Then: refused for good, as bob does not vouch for it
    assert isinstance(result, KeyProblem) and not result.retry
    assert "does not list the key" in result.reason


def test_cached_key_fetcher__owner_listing_takes_the_owners_pem(remote, alice_key, bob_key) -> None:
    # Given: a key document with one PEM, and its owner listing the key id with another
    key_id = remote.base + "/keys/1"
    owner = actor(remote, "/users/bob", bob_key, key_path="/keys/1")
    remote.serve_json("/users/bob", owner)
    document = {"id": key_id, "owner": owner["id"], "publicKeyPem": public_pem(alice_key)}
    remote.serve_json("/keys/1", document)

    # When
    key = key_fetcher_call(key_id)

    # Then: the actor's own document is the authority
    assert key == RemoteKey(key_id, owner["id"], public_pem(bob_key))


@pytest.mark.parametrize("key_id", ["https://[", "https://a:99999/", "ftp://a/", "https://a b/"])
def test_cached_key_fetcher__malformed_key_id_is_a_lasting_problem(key_id) -> None:
    result = key_fetcher_call(key_id)

    assert isinstance(result, KeyProblem) and not result.retry


def test_cached_key_fetcher__deadline_covers_the_whole_lookup(alice_key) -> None:
    # Given: a transport that never answers, and a key lookup allowed 0.2 s
    async def stall(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        raise AssertionError("the deadline should have fired first")

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.MockTransport(stall)) as client:
            async with Fetcher(
                signer=None, site_url=SITE, allow_private=True, client=client
            ) as fetcher:
                keys = CachedKeyFetcher(fetcher, timeout=0.2, now=Clock(NOW))
                return await keys("http://203.0.113.7/users/a#main-key")

    # When / Then: a problem worth retrying, long before the fetcher's own 30 s
    result = run(scenario())
    assert isinstance(result, KeyProblem) and result.retry
    assert "0.2 s" in result.reason


def test_key_from_document__bare_key_document() -> None:
    # Mastodon's non-fragment key ids dereference to the key itself (FEDERATION.md §2.4).
    document = {
        "id": "https://a.example/keys/1",
        "type": "CryptographicKey",
        "owner": "https://a.example/users/x",
        "publicKeyPem": "PEM",
    }

    key = key_from_document(document, "https://a.example/keys/1")

    assert key == RemoteKey("https://a.example/keys/1", "https://a.example/users/x", "PEM")
    assert key_from_document(document, "https://a.example/keys/2") is None
