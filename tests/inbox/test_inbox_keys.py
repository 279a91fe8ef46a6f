"""The signer's key under attack, end to end through the inbox: forged self-deletes that point
at another account's 410, hosts that trickle their keys, documents vouching for another
actor's key, freshness from unsigned parameters, and which key failures are worth a retry
(503) and which are not (401). Remote servers are real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fedipress.app.keyfiles import generate_keys
from fedipress.config import load_config
from fedipress.errors import ConfigError
from fedipress.federation.keys import RSAPrivateKey, generate_private_key, public_pem
from fedipress.federation.signatures import format_http_date, sign_request
from fedipress.inbox.http import InboxRequest
from fedipress.inbox.service import InboxOptions
from fedipress.inbox.setup import KEY_TIMEOUT_ENV, InboxSetup
from fedipress.inbox.setup import open_inbox as setup_inbox
from tests.inbox.harness import POST, Database, Inbox, make_config, open_inbox
from tests.inbox.remote import AP_JSON, AS, INBOX_URL, RemoteServer, serve_in_thread

pytestmark = pytest.mark.anyio


# --- a second remote host: documents by path, some answered slowly ------------------------------


@dataclass
class KeyHost:
    """Another fediverse host: serves the documents it is given, can answer after `delay`
    seconds, and trickles one byte every 0.1 s on `trickle` paths until stopped."""

    port: int = 0
    documents: dict[str, tuple[int, tuple[tuple[str, str], ...], bytes]] = field(
        default_factory=dict
    )
    trickle: set[str] = field(default_factory=set)
    delay: float = 0.0
    requests: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, path: str, document: Any, status: int = 200, media: str = AP_JSON) -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[path] = (status, (("content-type", media),), body)

    def redirect(self, path: str, location: str) -> None:
        self.documents[path] = (302, (("location", location),), b"")

    def actor(self, name: str, key: RSAPrivateKey, key_id: str | None = None) -> dict[str, Any]:
        actor_id = f"{self.base}/users/{name}"
        return {
            "@context": [AS, "https://w3id.org/security/v1"],
            "id": actor_id,
            "type": "Person",
            "inbox": f"{actor_id}/inbox",
            "publicKey": {
                "id": key_id or f"{actor_id}#main-key",
                "owner": actor_id,
                "publicKeyPem": public_pem(key),
            },
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["raw_path"].decode()
        self.requests.append(path)
        if path in self.trickle:
            start = {"type": "http.response.start", "status": 200}
            await send({**start, "headers": [(b"content-type", AP_JSON.encode())]})
            while not self.stopped:
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
                await asyncio.sleep(0.1)
            await send({"type": "http.response.body", "body": b""})
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        status, headers, body = self.documents.get(path, (404, (), b"not found"))
        raw = [(k.encode(), v.encode()) for k, v in headers]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def key_host() -> Iterator[KeyHost]:
    app = KeyHost()
    with serve_in_thread(app) as server:
        app.port = server.port  # type: ignore[attr-defined]
        try:
            yield app
        finally:
            app.stopped = True  # end the trickles so the server can stop


@pytest.fixture(scope="module")
def stranger_key() -> RSAPrivateKey:
    return generate_private_key()


async def custom_inbox(
    db: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    allow_private: bool = True,
    **options: Any,
) -> Inbox:
    config, inbox_options = make_config(), InboxOptions(**options)
    return await open_inbox(db, remote, blog_key, config, inbox_options, allow_private)


@pytest.fixture
async def patient_inbox(
    sqlite_db: Database, remote: RemoteServer, blog_key: RSAPrivateKey
) -> AsyncIterator[Inbox]:
    """An inbox that gives a key 30 s: what is still pending cannot be a deadline's doing."""
    inbox = await custom_inbox(sqlite_db, remote, blog_key, key_fetch_timeout=30.0)
    yield inbox
    await inbox.client.aclose()
    await inbox.service.aclose()


def like_from(actor_id: str, target: str = POST) -> dict[str, Any]:
    return {
        "@context": AS,
        "id": f"{actor_id}#likes/{uuid.uuid4().hex}",
        "type": "Like",
        "actor": actor_id,
        "object": target,
    }


async def post_signed(
    inbox: Inbox, activity: Any, key_id: str, key: RSAPrivateKey, **sign: Any
) -> httpx.Response:
    """POST `activity` signed with `key` under any key id (draft-cavage, now)."""
    body = json.dumps(activity).encode()
    now = sign.pop("now", datetime.now(UTC))
    headers = sign_request("POST", INBOX_URL, {}, body, key_id, key, now)
    return await inbox.client.post("/ap/inbox", content=body, headers=headers)


async def wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# --- item: a 410 somewhere else is no proof that the actor is gone -------------------------------


async def seeded_alice(inbox: Inbox) -> None:
    """alice follows, liked a post and replied to it."""
    await inbox.followed_by("alice")
    assert (await inbox.post(inbox.activity("Like", POST))).status_code == 202
    note = {
        "id": f"{inbox.remote.actor_id('alice')}/statuses/{uuid.uuid4().hex}",
        "type": "Note",
        "attributedTo": inbox.remote.actor_id("alice"),
        "inReplyTo": POST,
        "content": "<p>Nice</p>",
        "to": [f"{AS}#Public"],
    }
    assert (await inbox.post(inbox.activity("Create", note))).status_code == 202
    assert len(inbox.store.list_interactions()) == 2


@pytest.mark.parametrize(
    "key_path",
    ["/users/alice/../ghost#main-key", "/users/alice/./x/../../ghost", "/users/alice/old-key"],
    ids=["dot-segments", "dot-segments-nested", "redirect"],
)
async def test_gone_self_delete__another_accounts_410_removes_nobody(
    inbox: Inbox, key_path: str
) -> None:
    # Given alice follows, liked and replied; on her server the ghost account answers 410,
    # and /users/alice/old-key redirects there
    await seeded_alice(inbox)
    inbox.remote.redirects["/users/alice/old-key"] = "/users/ghost"
    alice = inbox.remote.actor_id("alice")
    before = inbox.db.counts()
    # When an unverifiable Delete{alice} arrives whose keyId starts with alice's id but
    # resolves to the ghost's 410 (httpx removes the dot segments; the redirect leads there)
    forged = inbox.activity("Delete", alice)
    key_id = inbox.remote.base + key_path
    response = await post_signed(inbox, forged, key_id, inbox.remote.keys["ghost"])
    # Then it is refused, and alice is still a follower with her like and reply
    assert response.status_code == 401
    assert inbox.remote.requests[-1].path == "/users/ghost"  # the 410 was really reached
    assert inbox.db.counts() == before
    assert inbox.store.get_follower(alice) is not None
    assert len(inbox.store.list_interactions()) == 2


# --- item: a slow key host cannot starve the others ----------------------------------------------


async def test_slow_key_host__other_senders_are_still_served(
    patient_inbox: Inbox, key_host: KeyHost, stranger_key: RSAPrivateKey
) -> None:
    inbox = patient_inbox
    # Given 20 senders whose keys live on a host that trickles its answers forever
    names = [f"slow{i}" for i in range(20)]
    key_host.trickle |= {f"/users/{name}" for name in names}
    slow = [
        asyncio.create_task(
            post_signed(
                inbox,
                like_from(f"{key_host.base}/users/{name}"),
                f"{key_host.base}/users/{name}#main-key",
                stranger_key,
            )
        )
        for name in names
    ]
    try:
        await wait_until(lambda: len(key_host.requests) >= 4, "the slow host to be asked")
        # When bob, on another host, sends a Follow (his key is not cached yet)
        response = await inbox.post(inbox.follow("bob"), actor="bob")
        # Then it is accepted while the slow ones are all still waiting for their keys
        assert response.status_code == 202, response.text
        assert inbox.store.get_follower(inbox.remote.actor_id("bob")) is not None
        assert not any(task.done() for task in slow)
        # and the slow host never got more than its share of connections
        assert len(key_host.requests) <= 4
    finally:
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)


async def test_slow_key_hosts__many_of_them_cannot_fill_the_pool(
    patient_inbox: Inbox, stranger_key: RSAPrivateKey
) -> None:
    inbox = patient_inbox
    with ExitStack() as stack:
        # Given six slow hosts, four trickling key fetches each: 24 connections held open
        hosts = []
        for _ in range(6):
            host = KeyHost()
            server = stack.enter_context(serve_in_thread(host))
            host.port = server.port  # type: ignore[attr-defined]
            stack.callback(setattr, host, "stopped", True)
            hosts.append(host)
        slow = []
        for h, host in enumerate(hosts):
            for i in range(4):
                host.trickle.add(f"/users/slow{i}")
                actor = f"{host.base}/users/slow{i}"
                like = like_from(actor) | {"id": f"{actor}/likes/{h}"}
                post = post_signed(inbox, like, f"{actor}#main-key", stranger_key)
                slow.append(asyncio.create_task(post))
        try:
            await wait_until(
                lambda: sum(len(h.requests) for h in hosts) >= 24, "every slow host to be asked"
            )
            # When bob, on yet another host, sends a Follow (his key is not cached yet)
            response = await inbox.post(inbox.follow("bob"), actor="bob")
            # Then it is accepted while all 24 slow fetches still hold their connections
            assert response.status_code == 202, response.text
            assert not any(task.done() for task in slow)
        finally:
            for task in slow:
                task.cancel()
            await asyncio.gather(*slow, return_exceptions=True)


async def test_slow_key_host__a_key_fetch_has_a_deadline(
    sqlite_db: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    key_host: KeyHost,
    stranger_key: RSAPrivateKey,
) -> None:
    # Given an inbox that gives a key 1 s, and a sender whose key host never finishes
    inbox = await custom_inbox(sqlite_db, remote, blog_key, key_fetch_timeout=1.0)
    key_host.trickle.add("/users/slow")
    actor = f"{key_host.base}/users/slow"
    started = time.monotonic()
    try:
        # When its Like arrives
        response = await post_signed(inbox, like_from(actor), f"{actor}#main-key", stranger_key)
    finally:
        await inbox.client.aclose()
        await inbox.service.aclose()
    # Then the sender is told to retry later, well before the 30 s of a document fetch
    assert response.status_code == 503
    assert "no key within 1.0 s" in response.json()["error"]
    assert time.monotonic() - started < 10


async def test_same_key_id__concurrent_requests_share_one_fetch(
    sqlite_inbox: Inbox, key_host: KeyHost, stranger_key: RSAPrivateKey
) -> None:
    inbox = sqlite_inbox
    # Given carol's host answers after 0.5 s
    carol = key_host.actor("carol", stranger_key)
    key_host.serve("/users/carol", carol)
    key_host.delay = 0.5
    # When ten of her Likes of ten posts arrive at once
    likes = [like_from(carol["id"], f"{POST}{i}") for i in range(10)]
    responses = await asyncio.gather(
        *(post_signed(inbox, like, carol["publicKey"]["id"], stranger_key) for like in likes)
    )
    # Then all are accepted, and her key was fetched once
    assert [r.status_code for r in responses] == [202] * 10
    assert key_host.requests == ["/users/carol"]
    assert len(inbox.store.list_interactions()) == 10


# --- item: only signed values decide freshness ---------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "parameter"),
    [("gts", "created"), ("cavage", "expires")],
    ids=["hs2019-unsigned-created", "rsa-sha256-unsigned-expires"],
)
async def test_signature__unsigned_created_or_expires_cannot_renew_an_old_date(
    sqlite_inbox: Inbox, scheme: str, parameter: str
) -> None:
    inbox = sqlite_inbox
    await inbox.followed_by("alice")
    # Given a real signature over a Date two hours old
    like = inbox.activity("Like", f"{POST}2")
    body = json.dumps(like).encode()
    now = datetime.now(UTC)
    headers = inbox.remote.sign("alice", body, scheme=scheme, now=now - timedelta(hours=2))
    # and an unsigned created=now (or expires in an hour) appended to the Signature header
    value = int(now.timestamp()) + (3600 if parameter == "expires" else 0)
    headers["Signature"] += f",{parameter}={value}"
    before = inbox.db.counts()
    # When it is posted
    response = await inbox.client.post("/ap/inbox", content=body, headers=headers)
    # Then the signed Date decides: expired
    assert response.status_code == 401
    assert response.json()["error"] == "signature expired"
    assert inbox.db.counts() == before


# --- item: a document cannot vouch for another actor's key ---------------------------------------


def vouching_documents(host: KeyHost, a_key: RSAPrivateKey, b_key: RSAPrivateKey) -> None:
    """A's own actor document, and three documents of B that name A as the owner of B's key:
    B's actor, B's actor claiming A's id, and a bare key document."""
    a = f"{host.base}/users/a"
    host.serve("/users/a", host.actor("a", a_key))
    for path, document_id in (("/users/b", f"{host.base}/users/b"), ("/users/b-as-a", a)):
        document = host.actor("b", b_key, key_id=f"{host.base}{path}#main-key")
        document["id"] = document_id
        document["publicKey"]["owner"] = a
        host.serve(path, document)
    key_id = f"{host.base}/keys/b"
    host.serve(
        "/keys/b", {"@context": AS, "id": key_id, "owner": a, "publicKeyPem": public_pem(b_key)}
    )


@pytest.mark.parametrize(
    "key_path",
    ["/users/b#main-key", "/users/b-as-a#main-key", "/keys/b"],
    ids=["b-document", "b-document-claiming-a-id", "bare-key-document"],
)
async def test_key_owner__another_document_cannot_vouch_for_a(
    sqlite_inbox: Inbox, key_host: KeyHost, stranger_key: RSAPrivateKey, key_path: str
) -> None:
    inbox = sqlite_inbox
    # Given two actors on one host; B's documents name A as the owner of B's key
    b_key = generate_private_key()
    vouching_documents(key_host, stranger_key, b_key)
    a = f"{key_host.base}/users/a"
    before = inbox.db.counts()
    # When B signs a Like whose actor is A with that key
    response = await post_signed(inbox, like_from(a), f"{key_host.base}{key_path}", b_key)
    # Then it is refused for good (A's document does not list the key), nothing stored
    assert response.status_code == 401
    assert "does not list the key" in response.json()["error"]
    assert inbox.db.counts() == before
    assert key_host.requests[-1] == "/users/a"


async def test_key_owner__a_key_document_listed_by_its_actor_is_trusted(
    sqlite_inbox: Inbox, key_host: KeyHost, stranger_key: RSAPrivateKey
) -> None:
    inbox = sqlite_inbox
    # Given A lists a second key served as its own document (Mastodon's key URLs,
    # FEDERATION.md §2.4)
    a_document = key_host.actor("a", stranger_key)
    second = {**a_document["publicKey"], "id": f"{key_host.base}/keys/a2"}
    a_document["publicKey"] = [a_document["publicKey"], second]
    key_host.serve("/users/a", a_document)
    key_host.serve("/keys/a2", {"@context": AS, **second})
    # When A signs with that key
    response = await post_signed(inbox, like_from(a_document["id"]), second["id"], stranger_key)
    # Then it verifies, after reading the key and the actor that lists it
    assert response.status_code == 202, response.text
    assert key_host.requests == ["/keys/a2", "/users/a"]


# --- item: 503 only for what may work later ------------------------------------------------------


PERMANENT = {
    "forbidden": lambda host: host.serve("/users/x", {"error": "no"}, status=403),
    "wrong-media-type": lambda host: host.serve("/users/x", {"id": "x"}, media="application/json"),
    "not-json": lambda host: host.serve("/users/x", b"<html>hello</html>"),
    "id-on-another-origin": lambda host: host.serve(
        "/users/x", {"id": "https://elsewhere.example/users/x"}
    ),
    "key-not-in-document": lambda host: host.serve(
        "/users/x", {**host.actor("x", generate_private_key(), key_id=f"{host.base}/other")}
    ),
    "owner-on-another-origin": lambda host: host.serve(
        "/users/x",
        {
            **host.actor("x", generate_private_key()),
            "publicKey": {
                "id": f"{host.base}/users/x#main-key",
                "owner": "https://elsewhere.example/users/x",
                "publicKeyPem": public_pem(generate_private_key()),
            },
        },
    ),
    "redirect-loop": lambda host: host.redirect("/users/x", "/users/x"),
}
TRANSIENT = {
    "server-error": lambda host: host.serve("/users/x", {"error": "oops"}, status=500),
    "unavailable": lambda host: host.serve("/users/x", {"error": "busy"}, status=503),
    "rate-limited": lambda host: host.serve("/users/x", {"error": "slow down"}, status=429),
}


@pytest.mark.parametrize(
    ("case", "status"),
    [(name, 401) for name in PERMANENT] + [(name, 503) for name in TRANSIENT],
)
async def test_key_failure__503_only_when_a_retry_may_work(
    sqlite_inbox: Inbox,
    key_host: KeyHost,
    stranger_key: RSAPrivateKey,
    case: str,
    status: int,
) -> None:
    # Given a sender whose key host answers in this way
    {**PERMANENT, **TRANSIENT}[case](key_host)
    actor = f"{key_host.base}/users/x"
    before = sqlite_inbox.db.counts()
    # When its Like arrives
    response = await post_signed(sqlite_inbox, like_from(actor), f"{actor}#main-key", stranger_key)
    # Then a lasting problem is 401 (no retries for days), a passing one 503, with a reason
    assert response.status_code == status
    assert response.json()["error"]
    assert sqlite_inbox.db.counts() == before


async def test_key_failure__refused_private_address_is_401(
    sqlite_db: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    key_host: KeyHost,
    stranger_key: RSAPrivateKey,
) -> None:
    # Given an inbox that may not fetch private addresses, and a key id on loopback
    inbox = await custom_inbox(sqlite_db, remote, blog_key, allow_private=False)
    actor = f"{key_host.base}/users/x"
    key_host.serve("/users/x", key_host.actor("x", stranger_key))
    try:
        # When a request signed with it arrives
        response = await post_signed(inbox, like_from(actor), f"{actor}#main-key", stranger_key)
    finally:
        await inbox.client.aclose()
        await inbox.service.aclose()
    # Then it is refused for good, and the address was never asked
    assert response.status_code == 401
    assert "loopback" in response.json()["error"]
    assert key_host.requests == []


# --- malformed key ids: a clear 401, never an exception ------------------------------------------


MALFORMED = [
    "https://[",
    "http://[::1",
    "https://]/users/a",
    "https://127.0.0.1:99999/users/a",
    "https://127.0.0.1:-1/users/a",
    "https://127.0.0.1:port/users/a",
    "https://127.0.0.1:0/users/a",
    "https://user@127.0.0.1/users/a",
    "https://☃..x/users/a",
    "https://exa mple/users/a",
    "https:///users/a",
    "https://",
    "//127.0.0.1/users/a",
    "ftp://127.0.0.1/users/a",
    "javascript:alert(1)",
    "acct:alice@127.0.0.1",
    "https://127.0.0.1/users/\x00a",
    "https://127.0.0.1/users/a\x7f",
    "",
]


def signature_headers(key_id: str, body: bytes, now: datetime) -> tuple[tuple[str, str], ...]:
    """A well-formed draft-cavage header around any key id; the signature itself is junk."""
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    signature = (
        f'keyId="{key_id}",algorithm="rsa-sha256",'
        f'headers="(request-target) host date digest",signature="AAAA"'
    )
    return (
        ("content-type", AP_JSON),
        ("date", format_http_date(now)),
        ("digest", digest),
        ("signature", signature),
    )


async def test_malformed_key_id__https_bracket_is_a_clear_401(sqlite_inbox: Inbox) -> None:
    # Given the keyId that answered 500: "https://["
    body = json.dumps(like_from("https://remote.example/users/a")).encode()
    headers = dict(signature_headers("https://[", body, datetime.now(UTC)))
    # When it is posted through the ASGI adapter
    response = await sqlite_inbox.client.post("/ap/inbox", content=body, headers=headers)
    # Then it is refused with a reason naming the keyId
    assert response.status_code == 401
    assert "keyId" in response.json()["error"]


@pytest.mark.parametrize("key_id", MALFORMED)
async def test_malformed_key_id__401_without_any_fetch(sqlite_inbox: Inbox, key_id: str) -> None:
    inbox = sqlite_inbox
    body = json.dumps(like_from("https://remote.example/users/a")).encode()
    headers = signature_headers(key_id, body, datetime.now(UTC))
    inbox.remote.reset()
    # When a request with this keyId reaches the service
    response = await inbox.service.handle(InboxRequest("POST", "/ap/inbox", "", headers, body))
    # Then it is a 401 with a reason, and nothing was fetched
    assert response.status == 401
    assert json.loads(response.body)["error"]
    assert inbox.remote.requests == []


def generated_key_ids(seed: int, count: int, closed: int) -> Iterator[tuple[str, bool]]:
    """(keyId, valid) built from broken and sound parts; the only sound hosts are loopback
    addresses on a closed port, so no request ever leaves this machine."""
    rng = random.Random(seed)
    schemes = [("http", True), ("https", True), ("HTTPS", True), ("ftp", False), ("", False)]
    separators = [("://", True), (":/", False), (":", False), ("//", False)]
    hosts = [
        (f"127.0.0.1:{closed}", True),
        (f"[::1]:{closed}", True),
        (f"localhost:{closed}", True),
        ("[", False),
        ("[::1", False),
        ("]", False),
        ("127.0.0.1:99999", False),
        ("127.0.0.1:x", False),
        (f"u:p@127.0.0.1:{closed}", False),
        ("☃..x", False),
        ("", False),
        ("a b", False),
    ]
    paths = ["", "/", "/users/a", "/../..", "/%2e%2e/x", "/a%zz", "/?q=[", "#frag", "/u#k"]
    junk = ["\x00", "\x7f", " ", "[", "]", "%", "@", "\\", "é", "\ufffd", "\t"]
    for _ in range(count):
        scheme, scheme_ok = rng.choice(schemes)
        separator, separator_ok = rng.choice(separators)
        host, host_ok = rng.choice(hosts)
        key_id = scheme + separator + host + rng.choice(paths)
        valid = scheme_ok and separator_ok and host_ok
        if rng.random() < 0.3:
            at = rng.randrange(len(key_id) + 1)
            key_id = key_id[:at] + rng.choice(junk) + key_id[at:]
            valid = False  # maybe still fine: then only "not a 5xx from us" is asserted
        yield key_id, valid


async def test_malformed_key_id__generated_never_raise(sqlite_inbox: Inbox) -> None:
    inbox = sqlite_inbox
    closed = _closed_port()
    body = json.dumps(like_from("https://remote.example/users/a")).encode()
    for key_id, valid in generated_key_ids(seed=9, count=400, closed=closed):
        headers = signature_headers(key_id, body, datetime.now(UTC))
        # When any of these reaches the service, it answers: never an exception
        response = await inbox.service.handle(InboxRequest("POST", "/ap/inbox", "", headers, body))
        # Then: sound loopback key ids on a closed port may work later (503); the rest is 4xx
        assert json.loads(response.body)["error"], key_id
        if valid:
            assert response.status == 503, (key_id, response.body)
        else:
            assert response.status in (400, 401, 503), (key_id, response.body)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- ids against the actor's host: the origin, not a netloc string -------------------------------


async def test_activity_id__on_another_scheme_of_the_actors_host_is_400(
    sqlite_inbox: Inbox,
) -> None:
    inbox = sqlite_inbox
    await inbox.followed_by("alice")
    # Given a Like from alice (http://127.0.0.1:port) whose id is https:// on the same netloc
    like = inbox.activity("Like", f"{POST}2")
    like["id"] = like["id"].replace("http://", "https://", 1)
    before = inbox.db.counts()
    # When it is posted, properly signed
    response = await inbox.post(like)
    # Then the id is not on the actor's origin
    assert response.status_code == 400
    assert inbox.db.counts() == before


# --- FEDIPRESS_KEY_FETCH_TIMEOUT -----------------------------------------------------------------


@pytest.fixture
def keyed_site(make_site: Any) -> Any:
    root = make_site(
        """
        -- fedipress.yaml --
        title: Keys
        base_url: https://blog.example/
        fediverse: {username: blog}
        """
    )
    generate_keys(root, load_config(root))
    return root


async def test_key_fetch_timeout__read_from_the_environment(keyed_site: Any) -> None:
    service = setup_inbox(InboxSetup(keyed_site), {KEY_TIMEOUT_ENV: "2.5"})
    try:
        assert service.options.key_fetch_timeout == 2.5
    finally:
        await service.aclose()
        service.store.close()


@pytest.mark.parametrize("value", ["0", "-1", "soon", "61", "nan"])
async def test_key_fetch_timeout__nonsense_is_a_config_error(keyed_site: Any, value: str) -> None:
    with pytest.raises(ConfigError, match=KEY_TIMEOUT_ENV):
        setup_inbox(InboxSetup(keyed_site), {KEY_TIMEOUT_ENV: value})
