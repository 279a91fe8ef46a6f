"""`/ap/hooks/deliver`: a scheduler's call to send the queue (Vercel Cron sends a GET with
`Authorization: Bearer <CRON_SECRET>`), served as the Vercel function of docs/deploy.md runs:
the ASGI app in serverless mode under uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from fedipress.adapters.asgi import InboxASGI
from fedipress.errors import ConfigError
from fedipress.federation.keys import RSAPrivateKey, SigningKey
from fedipress.inbox.http import InboxRequest
from fedipress.inbox.service import InboxOptions, InboxService
from fedipress.inbox.setup import inbox_options
from tests.inbox.harness import ACTOR, AS, Database, make_config, verify_blog_request
from tests.inbox.remote import RemoteServer, serve_in_thread

SECRET = "k8Jd2mQ9vX4pL7rT1wZ6"
HOOK = "/ap/hooks/deliver"
# What Vercel Cron sends (its user agent; the secret from the project's CRON_SECRET).
CRON_HEADERS = {"User-Agent": "vercel-cron/1.0", "Authorization": f"Bearer {SECRET}"}


def queue(db: Database, remote: RemoteServer, *names: str) -> None:
    """Deliveries left in the store by earlier requests whose send budget ran out."""
    for name in names:
        activity_id = f"{ACTOR}#accepts/{name}"
        body = json.dumps({"@context": AS, "id": activity_id, "type": "Accept", "actor": ACTOR})
        db.store.enqueue(activity_id, [remote.inbox(name)], body, datetime.now(UTC))


@pytest.fixture
def vercel(sqlite_db: Database, blog_key: RSAPrivateKey) -> Iterator[httpx.Client]:
    """The inbox as a Vercel function (serverless: no sender between requests), CRON_SECRET set."""
    service = InboxService.for_site(
        make_config(),
        sqlite_db.store,
        SigningKey(f"{ACTOR}#main-key", blog_key),
        InboxOptions(cron_secret=SECRET),
        allow_private=True,
    )
    with (
        serve_in_thread(InboxASGI(service, serverless=True), lifespan="on") as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.port}", trust_env=False) as client,
    ):
        yield client


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-secret", f"Basic {SECRET}", f"Bearer {SECRET}x", "Bearer ", "Bearer ü"],
    ids=["none", "wrong", "basic", "longer", "empty", "non-ascii"],
)
@pytest.mark.anyio
async def test_deliver_hook__without_the_secret_is_401_and_no_drain(
    sqlite_db: Database, remote: RemoteServer, blog_key: RSAPrivateKey, authorization: str | None
) -> None:
    # Given queued deliveries, and the inbox service itself (no adapter sending after it)
    queue(sqlite_db, remote, "alice")
    service = InboxService.for_site(
        make_config(),
        sqlite_db.store,
        SigningKey(f"{ACTOR}#main-key", blog_key),
        InboxOptions(cron_secret=SECRET),
        allow_private=True,
    )
    headers = (("Authorization", authorization),) if authorization else ()
    try:
        # When someone without the secret calls the hook
        response = await service.handle(InboxRequest("GET", HOOK, "", headers, b""))
    finally:
        await service.aclose()
    # Then 401, and no drain ran: the queue stays as it was
    assert response.status == 401
    assert "CRON_SECRET" in json.loads(response.body)["error"]
    assert remote.posts() == []
    assert sqlite_db.store.queue_stats().pending == 1


def test_deliver_hook__401_over_http_too(vercel: httpx.Client) -> None:
    response = vercel.get(HOOK, headers={"User-Agent": "vercel-cron/1.0"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_deliver_hook__vercel_cron_sends_the_queue(
    vercel: httpx.Client,
    sqlite_db: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    method: str,
) -> None:
    # Given two deliveries waiting, and no inbox traffic to send them
    queue(sqlite_db, remote, "alice", "bob")
    # When Vercel Cron calls the path with the secret
    response = vercel.request(method, HOOK, headers=CRON_HEADERS)
    # Then both went out, signed, before the answer, which says what happened
    assert response.status_code == 200, response.text
    assert response.json() == {"delivered": 2, "retrying": 0, "failed": 0, "pending": 0}
    for name in ("alice", "bob"):
        (sent,) = remote.posts(f"/users/{name}/inbox")
        assert sent.json()["id"] == f"{ACTOR}#accepts/{name}"
    (alice,) = remote.posts("/users/alice/inbox")
    key_id = asyncio.run(verify_blog_request(alice, remote, blog_key, datetime.now(UTC)))
    assert key_id == f"{ACTOR}#main-key"
    # And a second call finds nothing left to send
    again = vercel.get(HOOK, headers=CRON_HEADERS)
    assert again.json() == {"delivered": 0, "retrying": 0, "failed": 0, "pending": 0}
    assert len(remote.posts()) == 2


def test_deliver_hook__off_without_cron_secret(
    sqlite_db: Database, blog_key: RSAPrivateKey
) -> None:
    service = InboxService.for_site(
        make_config(), sqlite_db.store, SigningKey(f"{ACTOR}#main-key", blog_key)
    )
    with (
        serve_in_thread(InboxASGI(service, serverless=True), lifespan="on") as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.port}", trust_env=False) as client,
    ):
        response = client.get(HOOK, headers=CRON_HEADERS)
        put = client.put(HOOK, headers=CRON_HEADERS)
    assert response.status_code == 404
    assert response.json() == {"error": "the delivery hook is off (set CRON_SECRET)"}
    assert put.status_code == 404


def test_inbox_options__cron_secret_and_drain_budget_from_the_environment() -> None:
    options = inbox_options({"CRON_SECRET": f" {SECRET}\n", "FEDIPRESS_DRAIN_BUDGET": "45"})
    assert (options.cron_secret, options.drain_budget) == (SECRET, 45.0)
    assert inbox_options({}).drain_budget == InboxOptions().drain_budget == 20.0
    for bad in ("0", "-3", "soon", "nan", "900"):
        with pytest.raises(ConfigError, match="FEDIPRESS_DRAIN_BUDGET must be a number"):
            inbox_options({"FEDIPRESS_DRAIN_BUDGET": bad})
