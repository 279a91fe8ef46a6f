"""Publishing: queue Create/Update/Delete for every follower inbox, durably. The one use
case that `fedipress publish`, the deploy hook and the preview's rebuilds all call.

The published objects come from the built output (the outbox and its pages) or from the
live site (`--from URL`, the same documents over HTTP). Each change's row in the published
record and its delivery rows are written in one transaction: a crash between them loses
nothing, and running publish again queues nothing new.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from fedipress.app.wiring import Federation
from fedipress.config import Config
from fedipress.documents.media import JSONObject
from fedipress.documents.urls import Urls
from fedipress.errors import FedipressError
from fedipress.federation.fetch import Fetcher
from fedipress.federation.publish_plan import LiveObject, Planned, plan_publish
from fedipress.federation.store.base import PublishedObject, Store

Reader = Callable[[str], Awaitable[JSONObject | None]]  # absolute URL -> document


@dataclass(frozen=True)
class PublishResult:
    created: int
    updated: int
    deleted: int
    recorded: int
    queued: int  # delivery rows added
    inboxes: int

    @property
    def changes(self) -> int:
        return self.created + self.updated + self.deleted


def output_reader(config: Config, out_dir: Path) -> Reader:
    """Read the site's documents from a build folder, by their URLs."""
    urls = Urls(config)

    async def read(url: str) -> JSONObject | None:
        try:
            data = (out_dir / urls.output_path(url)).read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        document = json.loads(data)
        return document if isinstance(document, dict) else None

    return read


def live_reader(fetcher: Fetcher) -> Reader:
    """Read the site's documents from where it is deployed."""

    async def read(url: str) -> JSONObject | None:
        result = await fetcher.fetch_json(url)
        return result.document

    return read


async def load_live_objects(config: Config, read: Reader) -> list[LiveObject]:
    """Every post object of the outbox, walking its pages."""
    urls = Urls(config)
    outbox = await read(urls.outbox())
    if outbox is None:
        raise FedipressError(
            f"no outbox at {urls.outbox()}",
            hint="build the site first (fedipress build), or check --from",
        )
    objects: list[LiveObject] = []
    page_url = outbox.get("first")
    seen: set[str] = set()
    items = outbox.get("orderedItems") or []
    while True:
        for item in items:
            obj = item.get("object") if isinstance(item, dict) else None
            if isinstance(obj, dict) and isinstance(obj.get("id"), str):
                objects.append(LiveObject(obj["id"], urls.uid_of(obj["id"]), obj))
        if not isinstance(page_url, str) or page_url in seen:
            return objects
        seen.add(page_url)
        page = await read(page_url)
        if page is None:
            raise FedipressError(f"the outbox page {page_url} is missing")
        items = page.get("orderedItems") or []
        page_url = page.get("next")


def _publishing_began(config: Config, now: datetime) -> PublishedObject:
    """The record of a first publish: the outbox's id, never a post's, and 'deleted', so
    plan_publish neither sends nor deletes it; it only makes the record non-empty."""
    return PublishedObject(Urls(config).outbox(), "", "", None, "deleted", now, now)


def queue_changes(
    config: Config, store: Store, live: list[LiveObject], now: datetime, backfill: int = 0
) -> PublishResult:
    """Plan the changes and queue them, all in one transaction."""
    counts = {"create": 0, "update": 0, "delete": 0, "record": 0}
    queued = 0
    with store.transaction():
        known = {}
        offset = 0
        while batch := store.list_published(limit=1000, offset=offset):
            known.update({row.object_id: row for row in batch})
            offset += len(batch)
        plans: list[Planned] = plan_publish(config, live, known, now, backfill=backfill)
        if not known:
            # Remember that publishing began, even on a site with no posts yet: else its
            # first post would look like back catalogue, recorded and never sent.
            store.put_published(_publishing_began(config, now))
        inboxes = store.follower_inboxes()
        # A removed post's likes, boosts and replies go with it (docs/federation.md).
        store.remove_object_interactions([p.object_id for p in plans if p.change == "delete"])
        for plan in plans:
            counts[plan.change] += 1
            if plan.activity is not None and inboxes:
                body = json.dumps(plan.activity, ensure_ascii=False)
                queued += store.enqueue(str(plan.activity["id"]), inboxes, body, now)
            store.put_published(plan.record)
    return PublishResult(
        counts["create"], counts["update"], counts["delete"], counts["record"], queued, len(inboxes)
    )


def live_site_reader(federation: Federation, url: str | None = None) -> Reader:
    """Read the site's documents from the live site; `url`, when given, must be the site's
    own address: each document's id must be the URL it is read from (the fetch path checks
    it, as Mastodon does), so no other address can serve them."""
    config = federation.config
    if url is not None and urlsplit(url).netloc != urlsplit(config.base_url).netloc:
        raise FedipressError(
            f"--from {url} is not the site's address ({config.base_url})",
            hint="publish from the live site itself, or from a build with --output",
        )
    return live_reader(federation.fetcher)


async def publish(federation: Federation, read: Reader, backfill: int = 0) -> PublishResult:
    """Send new, edited and removed posts to every follower: read the published objects,
    queue the changes in one transaction, and wake the sender when rows were queued."""
    live = await load_live_objects(federation.config, read)
    result = await asyncio.to_thread(
        queue_changes, federation.config, federation.store, live, federation.now(), backfill
    )
    if result.queued:
        federation.sender.wake.set()
    return result
