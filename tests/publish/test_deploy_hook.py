"""`POST /ap/hooks/deploy` on the inbox host: authenticated by our HMAC header or Netlify's
signed deploy notification, it reads the published objects from the live site (a built
site served on 127.0.0.1 by the dev server) and publishes what changed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fedipress.adapters.asgi import InboxASGI
from fedipress.app.keyfiles import read_private_key
from fedipress.config import load_config
from fedipress.documents.urls import Urls
from fedipress.federation.keys import SigningKey
from fedipress.federation.store import Store
from fedipress.hosting import header_rules
from fedipress.inbox.hooks import hook_headers, sign_body
from fedipress.inbox.service import InboxOptions, InboxService
from fedipress.preview.server import DevServer, LiveReload
from tests.inbox.remote import RemoteServer, serve_in_thread
from tests.publish.support import Blog, add_followers, post_text

SECRET = "deploy-secret-for-tests"
HOOK = "/ap/hooks/deploy"
BODY = json.dumps({"id": "d1", "state": "ready", "context": "production"}).encode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def netlify_jws(body: bytes, secret: str = SECRET, **claims: object) -> str:
    """A token shaped like Netlify's deploy notification signature (HS256 over the SHA-256
    of the body), built here with hmac rather than with fedipress's own code."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload_claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest(), **claims}
    present = {name: value for name, value in payload_claims.items() if value is not None}
    payload = b64url(json.dumps(present).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64url(signature.digest())}"


@dataclass
class LiveSite:
    """A blog whose build is served on 127.0.0.1, its base_url pointing there."""

    blog: Blog
    url: str

    def deploy(self) -> None:
        self.blog.build()


@pytest.fixture
def live_site(tmp_path: Path) -> Iterator[LiveSite]:
    root = tmp_path / "site"
    live = LiveReload()
    live.build_finished()
    app = DevServer(root / "_site", live, live_reload=False)
    with serve_in_thread(app) as server:
        url = f"http://127.0.0.1:{server.port}/"  # type: ignore[attr-defined]
        blog = Blog.create(root, base_url=url, hello=post_text("Hello", "Old post.", 1))
        app.set_rules(header_rules(load_config(root)), ())
        site = LiveSite(blog, url)
        site.deploy()
        yield site
        live.close()


@dataclass
class Hook:
    service: InboxService
    client: httpx.AsyncClient

    @property
    def store(self) -> Store:
        return self.service.store

    async def post(
        self, headers: dict[str, str | bytes] | None = None, body: bytes = BODY
    ) -> httpx.Response:
        return await self.client.post(HOOK, content=body, headers=headers or {})

    def published(self) -> dict[str, str]:
        """object id -> state, from the store's published record (the first-publish marker,
        the outbox's id, left out)."""
        rows = self.store.list_published()
        return {r.object_id: r.state for r in rows if "/ap/posts/" in r.object_id}


async def open_hook(site: LiveSite, remote: RemoteServer, secret: str) -> Hook:
    root = site.blog.root
    config = load_config(root)
    store = site.blog.store()
    add_followers(store, remote, "alice", "bob")
    add_followers(store, remote, "carol", shared=False)
    signer = SigningKey(Urls(config).key_id(), read_private_key(root, config, {}))
    service = InboxService.for_site(
        config, store, signer, InboxOptions(deploy_secret=secret), allow_private=True
    )
    transport = httpx.ASGITransport(app=InboxASGI(service))
    client = httpx.AsyncClient(transport=transport, base_url="https://inbox.example")
    return Hook(service, client)


@pytest.fixture
async def hook(live_site: LiveSite, remote: RemoteServer) -> AsyncIterator[Hook]:
    opened = await open_hook(live_site, remote, SECRET)
    yield opened
    await opened.client.aclose()
    await opened.service.aclose()
    opened.store.close()


def hmac_headers(
    body: bytes = BODY, secret: str = SECRET, now: float | None = None
) -> dict[str, str]:
    return hook_headers(secret, body, now)


def netlify_headers(body: bytes = BODY, secret: str = SECRET, **claims: object):
    """A current token by default: issued now, expiring in five minutes (None drops a claim)."""
    now = int(time.time())
    current = {"iat": now, "exp": now + 300, **claims}
    return {"X-Webhook-Signature": netlify_jws(body, secret, **current)}


def nested_jws(part: str) -> str:
    """A correctly signed token whose header or payload is JSON nested 5,000 deep."""
    nested = b64url(b"[" * 5000 + b"]" * 5000)
    header = nested if part == "header" else b64url(b'{"alg": "HS256"}')
    payload = (
        nested if part == "payload" else netlify_headers()["X-Webhook-Signature"].split(".")[1]
    )
    signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64url(signature.digest())}"


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_deploy_hook__is_off_without_a_secret(
    live_site: LiveSite, remote: RemoteServer
) -> None:
    # Given an inbox without FEDIPRESS_DEPLOY_SECRET
    hook = await open_hook(live_site, remote, secret="")
    try:
        # When a deploy notification arrives, signed with any secret
        response = await hook.post(hmac_headers(secret=""))
        # Then the route does not exist, and nothing was read or recorded
        assert response.status_code == 404
        assert hook.store.list_published() == []
    finally:
        await hook.client.aclose()
        await hook.service.aclose()
        hook.store.close()


def bad_signatures() -> dict[str, dict[str, str | bytes]]:
    now = int(time.time())
    later = hmac_headers(now=now + 1)
    return {
        "no signature": {},
        "HMAC with the wrong secret": hmac_headers(secret="wrong-secret"),
        "HMAC of another body": hmac_headers(body=b"{}"),
        "HMAC garbage": {**hmac_headers(), "X-Fedipress-Signature": "sha256=zz"},
        "HMAC not ASCII": {**hmac_headers(), "X-Fedipress-Signature": "sha256=é".encode()},
        "HMAC without a timestamp": {"X-Fedipress-Signature": sign_body(SECRET, BODY, now)},
        "HMAC of the body alone (no timestamp signed)": {
            "X-Fedipress-Timestamp": str(now),
            "X-Fedipress-Signature": "sha256="
            + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),
        },
        "HMAC an hour old": hmac_headers(now=now - 3600),
        "HMAC an hour ahead": hmac_headers(now=now + 3600),
        "HMAC timestamp not signed": {**later, "X-Fedipress-Timestamp": str(now)},
        "HMAC timestamp not a number": {**later, "X-Fedipress-Timestamp": "1e9"},
        "HMAC timestamp not ASCII digits": {**later, "X-Fedipress-Timestamp": "١٧٠٠".encode()},
        "JWS with the wrong secret": netlify_headers(secret="wrong-secret"),
        "JWS hash of another body": netlify_headers(body=b"{}"),
        "JWS expired": netlify_headers(exp=now - 60),
        "JWS without exp": netlify_headers(exp=None),
        "JWS without iat": netlify_headers(iat=None),
        "JWS issued an hour ahead": netlify_headers(iat=now + 3600, exp=now + 7200),
        "JWS that never expires": netlify_headers(exp=float("inf")),
        "JWS exp not a number": netlify_headers(exp=str(now + 300)),
        "JWS from another issuer": netlify_headers(iss="someone-else"),
        "JWS hash not ASCII": netlify_headers(sha256="é"),
        "JWS hash not a string": netlify_headers(sha256=[[[]]]),
        "JWS header nested 5,000 deep": {"X-Webhook-Signature": nested_jws("header")},
        "JWS payload nested 5,000 deep": {"X-Webhook-Signature": nested_jws("payload")},
        "JWS garbage": {"X-Webhook-Signature": "a.b.c"},
        "JWS unsigned": {
            "X-Webhook-Signature": netlify_headers()["X-Webhook-Signature"].rsplit(".", 1)[0] + "."
        },
    }


@pytest.mark.anyio
async def test_deploy_hook__refuses_a_bad_signature(hook: Hook) -> None:
    for case, headers in bad_signatures().items():
        # When a deploy notification arrives without a valid signature
        response = await hook.post(headers)
        # Then it is refused
        assert response.status_code == 401, case
        assert "signature" in response.json()["error"], case
    # and the live site was never read or published
    assert hook.store.list_published() == []
    # while the same body, well signed, is accepted (the cases above failed on their own)
    for headers in (hmac_headers(), netlify_headers(exp=int(time.time()) + 300)):
        assert (await hook.post(headers)).status_code == 202


@pytest.mark.anyio
async def test_deploy_hook__an_unreachable_site_publishes_nothing(
    live_site: LiveSite, remote: RemoteServer, hook: Hook
) -> None:
    # Given a publish that recorded the live site
    assert (await hook.post(hmac_headers())).status_code == 202
    # When the live site loses an outbox page (a broken deploy) and the hook is called
    (live_site.blog.root / "_site" / "ap" / "outbox-pages" / "1").unlink()
    response = await hook.post(hmac_headers(now=time.time() + 1))
    # Then it answers 502, and no post is taken for deleted
    assert response.status_code == 502
    assert "outbox-pages/1" in response.json()["error"]
    assert set(hook.published().values()) == {"live"}
    assert hook.store.queue_stats().pending == 0


def hmac_signed(body: bytes = BODY, later: int = 0) -> dict[str, str]:
    return hmac_headers(body, now=time.time() + later)


def netlify_signed(body: bytes = BODY, later: int = 0) -> dict[str, str]:
    now = int(time.time()) + later
    return netlify_headers(body, iat=now, exp=now + 300)


@pytest.mark.anyio
@pytest.mark.parametrize("sign", [hmac_signed, netlify_signed], ids=["hmac", "netlify-jws"])
async def test_deploy_hook__a_signed_request_works_once(hook: Hook, sign) -> None:
    # Given a deploy notification, well signed and accepted
    headers = sign()
    assert (await hook.post(headers)).status_code == 202
    published = hook.published()
    # When someone who captured it sends it again, as is
    replays = [await hook.post(headers) for _ in range(2)]
    # Then every copy is refused as already used, and the live site is not read again
    assert [r.status_code for r in replays] == [409, 409]
    assert hook.published() == published


@pytest.mark.anyio
async def test_deploy_hook__a_jws_in_another_spelling_is_still_a_replay(hook: Hook) -> None:
    # Given an accepted Netlify notification
    token = netlify_signed()["X-Webhook-Signature"]
    assert (await hook.post({"X-Webhook-Signature": token})).status_code == 202
    head, signature = token.rsplit(".", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare_bits = alphabet[alphabet.index(signature[-1]) ^ 1]  # 32 bytes leave 2 unused bits
    for respelled in (
        f"{head}.{signature[:5]}!!!!{signature[5:]}",  # characters base64 decoding skips
        f"{head}.{signature[:-1]}{spare_bits}",
    ):
        assert respelled != token
        # When it is sent re-spelled, Then it is the same signature, and refused as used
        assert (await hook.post({"X-Webhook-Signature": respelled})).status_code == 409


# --- publishing -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("sign", [hmac_signed, netlify_signed], ids=["hmac", "netlify-jws"])
async def test_deploy_hook__publishes_what_the_live_site_serves(
    live_site: LiveSite, remote: RemoteServer, hook: Hook, sign
) -> None:
    blog = live_site.blog
    hello, news = (Urls(load_config(blog.root)).post(uid) for uid in ("hello", "news"))
    # Given the first deploy notification: the back catalogue is recorded, not sent
    first = await hook.post(sign())
    assert first.status_code == 202
    assert first.json() == {"created": 0, "updated": 0, "deleted": 0, "recorded": 1, "queued": 0}
    assert hook.published() == {hello: "live"}
    # When a post is written but not deployed
    blog.post("news", post_text("News", "Deployed news.", 2))
    # Then the hook reads the live site, which does not have it yet
    assert (await hook.post(sign(later=1))).json()["created"] == 0
    # When the site is deployed and the notification arrives
    live_site.deploy()
    body = json.dumps({"id": "d2", "state": "ready"}).encode()
    signed = sign(body)
    response = await hook.post(signed, body)
    # Then a Create is queued for each inbox (alice and bob share one)
    assert response.status_code == 202
    assert response.json() == {"created": 1, "updated": 0, "deleted": 0, "recorded": 0, "queued": 2}
    rows = hook.store.list_deliveries()
    assert sorted(r.inbox_url for r in rows) == sorted([remote.shared_inbox, remote.inbox("carol")])
    assert {r.activity_id for r in rows} == {news + "#create"}
    # and the sender, woken, delivers it with the post's text from the live site
    posts = await remote.wait_for_posts(2)
    assert {p.json()["id"] for p in posts} == {news + "#create"}
    assert all("Deployed news." in p.json()["object"]["content"] for p in posts)
    # When the same notification is replayed
    replay = await hook.post(signed, body)
    # Then it is refused: one signature authenticates one request
    assert replay.status_code == 409
    assert "already used" in replay.json()["error"]
    # When the same body is signed again and sent
    again = await hook.post(sign(body, later=2), body)
    # Then it is read, and nothing new is queued
    assert again.status_code == 202
    assert again.json()["queued"] == 0 and again.json()["created"] == 0
    assert len(hook.store.list_deliveries()) == 2
    assert hook.published() == {hello: "live", news: "live"}


def test_deploy_hook__the_ci_example_of_the_docs_works(
    live_site: LiveSite, remote: RemoteServer
) -> None:
    """The shell snippet in docs/deploy.md, run with bash, openssl and curl against the inbox
    served by uvicorn on 127.0.0.1: accepted once, its replay refused."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
    (snippet,) = [
        block
        for block in re.findall(r"^```sh\n(.*?)^```", docs.read_text(), re.MULTILINE | re.DOTALL)
        if "X-Fedipress-Signature" in block
    ]
    root = live_site.blog.root
    config = load_config(root)
    store = live_site.blog.store()
    signer = SigningKey(Urls(config).key_id(), read_private_key(root, config, {}))
    options = InboxOptions(deploy_secret=SECRET)
    service = InboxService.for_site(config, store, signer, options, allow_private=True)
    try:
        with serve_in_thread(InboxASGI(service), lifespan="on") as server:
            site = f"http://127.0.0.1:{server.port}"  # type: ignore[attr-defined]
            script = snippet.replace("SITE=https://blog.example", f"SITE={site}")
            assert script != snippet
            # The replay: the same body, timestamp and signature sent a second time.
            script += '\ncurl -sS -X POST "$SITE/ap/hooks/deploy" ' + (
                '-H "X-Fedipress-Timestamp: $TS" -H "X-Fedipress-Signature: sha256=$SIG" '
                '--data "$BODY"\n'
            )
            env = {"PATH": os.environ["PATH"], "FEDIPRESS_DEPLOY_SECRET": SECRET}
            done = subprocess.run(
                ["bash", "-euc", script], env=env, capture_output=True, text=True, timeout=30
            )
    finally:
        store.close()
    assert done.returncode == 0, done.stderr
    first, replay = (json.loads(line) for line in done.stdout.splitlines())
    assert first == {"created": 0, "updated": 0, "deleted": 0, "recorded": 1, "queued": 0}
    assert "already used" in replay["error"]
