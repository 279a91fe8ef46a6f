"""The inbox under test and what the tests need around it: a store with raw row counts, a
movable clock, the Inbox harness (signed POSTs through httpx's ASGITransport), and a check of
the blog's own signatures with fedipress's verify_request."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from fedipress.adapters.asgi import InboxASGI
from fedipress.config import Config, FediverseConfig
from fedipress.federation.keys import RSAPrivateKey, SigningKey, public_pem
from fedipress.federation.signatures import RemoteKey, verify_request
from fedipress.federation.store import Store, open_store
from fedipress.inbox.service import InboxOptions, InboxService
from tests.inbox.remote import AS, Recorded, RemoteServer

BLOG = "https://blog.example"
ACTOR = f"{BLOG}/ap/actor"
POST = f"{BLOG}/ap/posts/x"
COUNTED = ("followers", "interactions", "flags", "deliveries", "seen_activities")


@dataclass
class Database:
    """A store plus raw access behind its back, to count rows."""

    name: str
    url: str
    site_dir: Path
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.store = open_store(self.url, self.site_dir)

    def counts(self) -> dict[str, int]:
        """Rows per table that an inbox request may change (keys are a cache: left out)."""
        if self.name == "sqlite":
            with closing(sqlite3.connect(self.site_dir / "inbox.db")) as conn:
                return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in COUNTED}
        with psycopg.connect(self.url, autocommit=True) as conn:
            return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in COUNTED}


class Clock:
    """The real time plus an offset that tests can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def make_config(**fediverse: Any) -> Config:
    return Config.for_test(fediverse=FediverseConfig(username="blog", **fediverse))


@dataclass
class Inbox:
    """Our inbox under test, with the remote that talks to it."""

    service: InboxService
    client: httpx.AsyncClient
    db: Database
    remote: RemoteServer
    blog_key: RSAPrivateKey
    clock: Clock

    @property
    def store(self) -> Store:
        return self.db.store

    async def post(
        self,
        activity: Any,
        *,
        actor: str = "alice",
        raw: bytes | None = None,
        **sign: Any,
    ) -> httpx.Response:
        """POST an activity to /ap/inbox signed by `actor`'s key (see RemoteServer.sign)."""
        body = raw if raw is not None else json.dumps(activity).encode()
        headers = self.remote.sign(actor, body, **sign)
        return await self.client.post("/ap/inbox", content=body, headers=headers)

    def activity(self, kind: str, obj: Any, actor: str = "alice", **extra: Any) -> dict[str, Any]:
        """An activity with a fresh id on the actor's host."""
        actor_id = self.remote.actor_id(actor)
        return {
            "@context": AS,
            "id": f"{actor_id}#{kind.lower()}/{uuid.uuid4().hex}",
            "type": kind,
            "actor": actor_id,
            "object": obj,
            **extra,
        }

    def follow(self, actor: str = "alice") -> dict[str, Any]:
        return self.activity("Follow", ACTOR, actor)

    async def followed_by(self, actor: str = "alice") -> dict[str, Any]:
        """Given `actor` follows the blog (Accept delivered, remote log then cleared)."""
        follow = self.follow(actor)
        assert (await self.post(follow, actor=actor)).status_code == 202
        await self.deliver(1)
        self.remote.reset()
        return follow

    async def deliver(self, count: int, path: str | None = None) -> list[Recorded]:
        """Drain the queue, and wait until `count` POSTs reached the remote: the sender the
        ASGI adapter started with the first request may have claimed them first."""
        await self.service.sender.drain()
        return await self.remote.wait_for_posts(count, path)

    async def verify_ours(self, recorded: Recorded) -> str:
        return await verify_blog_request(recorded, self.remote, self.blog_key, self.clock())


async def verify_blog_request(
    recorded: Recorded, remote: RemoteServer, blog_key: RSAPrivateKey, now: datetime
) -> str:
    """Check a POST the blog made with fedipress's own verify_request, the blog's public key
    served by a one-key KeyFetcher; returns the key id."""
    blog = RemoteKey(f"{ACTOR}#main-key", ACTOR, public_pem(blog_key))

    async def fetch_key(key_id: str, refresh: bool) -> RemoteKey | None:
        return blog if key_id == blog.key_id else None

    result = await verify_request(
        recorded.method,
        recorded.path,
        recorded.headers,
        recorded.body,
        public_host=f"127.0.0.1:{remote.port}",
        public_scheme="http",
        fetch_key=fetch_key,
        now=now,
    )
    assert result.ok, result.reason
    return result.key_id


async def open_inbox(
    db: Database,
    remote: RemoteServer,
    blog_key: RSAPrivateKey,
    config: Config,
    options: InboxOptions | None = None,
    allow_private: bool = True,
) -> Inbox:
    clock = Clock()
    service = InboxService.for_site(
        config,
        db.store,
        SigningKey(f"{ACTOR}#main-key", blog_key),
        options or InboxOptions(),
        allow_private=allow_private,
        now=clock,
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=InboxASGI(service)), base_url=BLOG)
    return Inbox(service, client, db, remote, blog_key, clock)
