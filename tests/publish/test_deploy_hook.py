"""`POST /ap/hooks/deploy` on the inbox host: authenticated by our HMAC header or Netlify's
signed deploy notification, it reads the published objects from the live site (a built
site served on 127.0.0.1 by the dev server) and publishes what changed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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
from fedipress.inbox.hooks import sign_body
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
    payload = b64url(json.dumps(payload_claims).encode())
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


def hmac_headers(body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    return {"X-Fedipress-Signature": sign_body(secret, body)}


def netlify_headers(body: bytes = BODY, secret: str = SECRET, **claims: object):
    return {"X-Webhook-Signature": netlify_jws(body, secret, **claims)}


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


BAD_SIGNATURES: dict[str, dict[str, str | bytes]] = {
    "no signature": {},
    "HMAC with the wrong secret": hmac_headers(secret="wrong-secret"),
    "HMAC of another body": hmac_headers(body=b"{}"),
    "HMAC garbage": {"X-Fedipress-Signature": "sha256=zz"},
    "HMAC not ASCII": {"X-Fedipress-Signature": "sha256=é".encode()},
    "JWS with the wrong secret": netlify_headers(secret="wrong-secret"),
    "JWS hash of another body": netlify_headers(body=b"{}"),
    "JWS expired": netlify_headers(exp=int(time.time()) - 60),
    "JWS from another issuer": netlify_headers(iss="someone-else"),
    "JWS hash not ASCII": netlify_headers(sha256="é"),
    "JWS garbage": {"X-Webhook-Signature": "a.b.c"},
    "JWS unsigned": {"X-Webhook-Signature": netlify_jws(BODY).rsplit(".", 1)[0] + "."},
}


@pytest.mark.anyio
async def test_deploy_hook__refuses_a_bad_signature(hook: Hook) -> None:
    for case, headers in BAD_SIGNATURES.items():
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
    response = await hook.post(hmac_headers())
    # Then it answers 502, and no post is taken for deleted
    assert response.status_code == 502
    assert "outbox-pages/1" in response.json()["error"]
    assert set(hook.published().values()) == {"live"}
    assert hook.store.queue_stats().pending == 0


# --- publishing -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("sign", [hmac_headers, netlify_headers], ids=["hmac", "netlify-jws"])
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
    assert (await hook.post(sign())).json()["created"] == 0
    # When the site is deployed and the notification arrives
    live_site.deploy()
    body = json.dumps({"id": "d2", "state": "ready"}).encode()
    response = await hook.post(sign(body), body)
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
    replay = await hook.post(sign(body), body)
    # Then nothing new is queued
    assert replay.status_code == 202
    assert replay.json()["queued"] == 0 and replay.json()["created"] == 0
    assert len(hook.store.list_deliveries()) == 2
    assert hook.published() == {hello: "live", news: "live"}
